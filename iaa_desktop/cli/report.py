"""``iaa-desktop report``: the agreement statistics of a dataset, as tables, JSON and figures.

Two ways in:

- ``iaa-desktop report --pairwise-metrics CSV --image-metadata CSV --out DIR``
  works from published tables alone (no masks), e.g. IMA++'s
  ``IMAplusplus_multiannotator_subset_IAA_metrics.csv`` and
  ``IMAplusplus_img_metadata.csv``;
- ``iaa-desktop report [DATASET] --out DIR`` (default: the demo dataset)
  computes the pairwise table from the masks (cached) and takes the labels,
  image sizes and ages from the loaded lesions.

Writes to DIR only (never into the dataset, nor over the input tables):
``stats.json`` (:func:`iaa_desktop.core.statistics.analysis_output.stats_json` plus ``inputs``:
the paths read), the analysis tables as CSV
(:func:`iaa_desktop.core.statistics.analysis_output.analysis_tables`), and, when the figure and
HTML modules are installed, the figures and ``report.html``. Prints the group
sizes, means, SDs and tests of malignant vs benign and intra vs inter pairs.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import sys
from pathlib import Path

from iaa_desktop.cli.common import (
    add_dataset_argument,
    add_review_exclusion_arguments,
    fail,
    is_inside,
    load_or_explain,
    measure_agreement,
)


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "report",
        help="statistics of agreement: malignant vs benign, intra vs inter, annotators, factor matrices",
        description=(
            "Analyse inter-annotator agreement: IAA of malignant vs benign lesions "
            "(Mann-Whitney U, KS, Cohen's d, AUC, bootstrap CI), intra vs inter "
            "tool/skill/annotator pairs, each annotator's agreement, Spearman "
            "correlates and factor matrices. From published tables "
            "(--pairwise-metrics and --image-metadata) or from a dataset's masks."
        ),
    )
    add_dataset_argument(parser)
    parser.add_argument("--pairwise-metrics", type=Path, metavar="CSV",
                        help="pairwise metrics CSV (IMA++ layout) instead of a dataset")
    parser.add_argument("--image-metadata", type=Path, metavar="CSV",
                        help="image metadata CSV (isic_id, benign_malignant, pixels_x, pixels_y, "
                             "age_approx), with --pairwise-metrics")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the report")
    parser.add_argument("--include-indeterminate", action="store_true",
                        help="count indeterminate/benign as benign and indeterminate/malignant as malignant")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default %(default)s)")
    parser.add_argument("--n-boot", type=int, default=10_000,
                        help="bootstrap resamples for the CIs (default %(default)s)")
    parser.add_argument("--no-figures", action="store_true", help="write statistics and tables only")
    parser.add_argument("--figure-formats", default="png,svg,pdf", metavar="LIST",
                        help="comma-separated figure formats (default %(default)s)")
    parser.add_argument("--dpi", type=int, default=200, help="PNG resolution (default %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"processes when computing from masks (default: every core, "
                             f"{os.cpu_count() or 1}, or this process alone for a small dataset)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every lesion, cache nothing")
    parser.add_argument("--lesion-figures", type=int, default=6, metavar="N",
                        help="from a dataset: overlay, pairwise Dice and disagreement figures of the "
                             "N lesions with the lowest IAA (default %(default)s; 0 for none)")
    parser.add_argument("--iaa-metric", action="append", default=[], metavar="NAME",
                        help="also rerun malignant vs benign with NAME as the image's IAA: any "
                             "pairwise column (dice_score, hd95_score, mr_nsd_2px, "
                             "mr_boundary_iou_2px, mr_hd95, mr_masd, ...) averaged over the human "
                             "pairs, or fleiss_kappa / krippendorff_alpha per lesion (from a "
                             "dataset's masks); repeatable")
    add_review_exclusion_arguments(parser)
    parser.set_defaults(func=run)


def _review_exclusions(args, inputs: dict) -> frozenset[str] | str:
    """Image ids marked ``exclude`` in the workspace (and note it in ``inputs``), or an error."""
    from iaa_desktop.core.review.reviews import excluded_ids
    from iaa_desktop.core.review.workspace import Workspace
    from iaa_desktop.core.workspace_paths import workspace_dir_for

    folder = args.workspace
    if folder is None:
        if "dataset" not in inputs:
            return "--exclude-reviewed with published tables needs --workspace DIR"
        folder = workspace_dir_for(inputs["dataset"])
    with Workspace.open(folder, read_only=True) as workspace:
        ids = excluded_ids(workspace)
    inputs["review_workspace"] = str(folder)
    return ids


def _num(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3g}"


def _print_comparison(title: str, comparison) -> None:
    c = comparison
    print(title)
    for label, n, mean, sd, median in ((c.label_a, c.n_a, c.mean_a, c.sd_a, c.median_a),
                                       (c.label_b, c.n_b, c.mean_b, c.sd_b, c.median_b)):
        print(f"  {label:<10} n={n:<7,} mean {_num(mean)}  SD {_num(sd)}  median {_num(median)}")
    print(f"  difference {_num(c.mean_difference)} (95% CI {_num(c.ci_low)} to {_num(c.ci_high)}); "
          f"Cohen's d {_num(c.cohens_d, 3)}; AUC {_num(c.auc, 3)}")
    print(f"  Mann-Whitney U={_num(c.mannwhitney_u, 1)} p={_p(c.p_mannwhitney)} "
          f"({c.label_a} < {c.label_b}: p={_p(c.p_a_less)}; {c.label_a} > {c.label_b}: "
          f"p={_p(c.p_a_greater)}); KS D={_num(c.ks_statistic, 3)} p={_p(c.p_ks)}")


def _print_metric(entry: dict, result, args) -> None:
    """One --iaa-metric block: the comparison, whether it goes Dice's way, rank agreement."""
    from types import SimpleNamespace

    c = SimpleNamespace(**{k: (math.nan if v is None else v)
                           for k, v in entry["malignant_vs_benign"].items()})
    direction = {True: "yes", False: "no", None: "undefined"}[entry["malignant_agree_less"]]
    _print_comparison(f"Malignant vs benign, IAA = {entry['label']} ({entry['n_images']:,} images)", c)
    rho = entry["spearman_with_dice"]
    print(f"  malignant lesions agree less by this metric too: {direction}; Spearman rho with "
          f"mean Dice {_num(rho['rho'] if rho['rho'] is not None else math.nan, 3)} (n={rho['n']:,})")


def _load_tables(args):
    """(pairwise, metadata, inputs) from the published tables, or raise IAAError."""
    from iaa_desktop.core.agreement.table_io import read_pairwise_csv
    from iaa_desktop.core.dataset.io.tables import read_table

    pairwise = read_pairwise_csv(args.pairwise_metrics)
    metadata = read_table(args.image_metadata, ("benign_malignant",), "image metadata")
    digest = hashlib.blake2b(digest_size=12)
    for source in (args.pairwise_metrics, args.image_metadata):
        digest.update(Path(source).read_bytes())
    return pairwise, metadata, {"pairwise_metrics": str(args.pairwise_metrics),
                                "image_metadata": str(args.image_metadata),
                                "dataset_fingerprint": f"tables:{digest.hexdigest()}"}


def _compute_from_dataset(args):
    """(pairwise, metadata, inputs) computed from a dataset's masks, or an exit code."""
    from iaa_desktop.core.agreement.lesion import dataset_fingerprint
    from iaa_desktop.core.statistics.analysis import image_metadata_from_dataset

    dataset, code = load_or_explain(args)
    if dataset is None:
        return code
    if is_inside(args.out, dataset.root):
        return fail(f"{args.out}: refusing to write into the dataset directory {dataset.root}")
    from iaa_desktop.core.agreement.boundary import spec_including

    try:
        spec = spec_including(args.iaa_metric)
    except ValueError as exc:
        return fail(f"--iaa-metric: {exc}")
    result = measure_agreement(dataset, args, boundary=spec)
    if isinstance(result, int):
        return result
    args.chance_table = result.chance  # per-lesion kappa/alpha, for --iaa-metric
    if result.pairwise.empty:
        return fail(f"{dataset.root}: no lesion has two readable human masks: nothing to analyse", 1)
    args.loaded_dataset = dataset  # for the per-lesion figures
    inputs = {"dataset": str(dataset.root), "dataset_fingerprint": f"masks:{dataset_fingerprint(dataset)}"}
    return result.pairwise, image_metadata_from_dataset(dataset), inputs


def _write_lesion_figures(args, result, formats: tuple[str, ...]) -> list[Path]:
    """Per-lesion figures of the lowest-IAA lesions (dataset mode only)."""
    dataset = getattr(args, "loaded_dataset", None)
    if dataset is None or args.lesion_figures <= 0:
        return []
    from iaa_desktop.core.figures.lesion_set import write_lesion_figures

    by_file = {(lesion.image_path.name if lesion.image_path else f"{lesion.image_id}.JPG"): lesion
               for lesion in dataset}
    lowest = result.image_level.nsmallest(args.lesion_figures, "dice_score_mean")["img_id"]
    written = []
    for img_id in lowest:
        lesion = by_file.get(img_id)
        if lesion is not None and lesion.image_path is not None:
            rows = result.pairwise[result.pairwise["img_id"] == img_id]
            written += write_lesion_figures(lesion, rows, args.out / "lesions", formats=formats,
                                            dpi=args.dpi)
    return written


def _write_extras(result, stats: dict, out: Path, parameters: dict, formats: tuple[str, ...],
                  dpi: int, by_metric=()) -> list[Path]:
    """Figures and the HTML report, when their modules are installed (a note otherwise).

    Each ``--iaa-metric`` gets the IAA distribution figure of its own values
    (``iaa_distribution_<metric>``), malignant vs benign, with its test on it.
    """
    import numpy as np

    written: list[Path] = []
    figures: dict = {}
    try:
        from iaa_desktop.core.figures import export_figure, iaa_distribution_figure, write_report_figures
    except ImportError as exc:
        print(f"note: figures skipped (iaa_desktop.core.figures not available: {exc})")
    else:
        figures = write_report_figures(result, out, formats=formats, dpi=dpi)
        for entry in by_metric:
            if np.isfinite(entry.malignant_values).any() or np.isfinite(entry.benign_values).any():
                fig = iaa_distribution_figure(entry.benign_values, entry.malignant_values,
                                              annotation=entry.annotation, value_label=entry.label)
                figures[f"iaa_distribution_{entry.metric}"] = export_figure(
                    fig, out / f"iaa_distribution_{entry.metric}", formats=formats, dpi=dpi)
        written += [path for paths in figures.values() for path in paths]
    try:
        from iaa_desktop.core.statistics.html_report import write_html_report
    except ImportError as exc:
        print(f"note: HTML report skipped (iaa_desktop.core.statistics.html_report not available: {exc})")
    else:
        # Matrices and per-annotator records read better as tables than as flattened statistics.
        shown = {k: v for k, v in stats.items() if k not in ("factor_matrices", "per_annotator", "inputs")}
        options = {}
        if "tables" in inspect.signature(write_html_report).parameters:
            options["tables"] = {
                "Agreement of each annotator with the others": result.per_annotator,
                **{f"Intra vs inter {factor}": table for factor, table in result.intra_inter_tables.items()},
            }
        written.append(write_html_report(result, shown, figures, out, parameters=parameters, **options))
    return written


def run(args) -> int:
    # Imported here so that `iaa-desktop --help` and the other commands start fast.
    import json

    from iaa_desktop.core.errors import IAAError
    from iaa_desktop.core.statistics.analysis import run_analysis
    from iaa_desktop.core.statistics.analysis_output import stats_json, write_analysis_tables
    from iaa_desktop.core.statistics.iaa_metric import metric_malignancy

    if args.n_boot < 0:
        return fail(f"--n-boot must be 0 or more, not {args.n_boot}")
    formats = tuple(f.strip().lower().lstrip(".") for f in args.figure_formats.split(",") if f.strip())
    unknown = sorted(set(formats) - {"png", "svg", "pdf"})
    if unknown or not formats:
        return fail(f"--figure-formats: choose among png, svg, pdf (got {args.figure_formats!r})")
    if args.dpi < 1:
        return fail(f"--dpi must be positive, not {args.dpi}")
    from iaa_desktop.core.agreement.conventions import is_known_metric

    unknown_metrics = [name for name in args.iaa_metric if not is_known_metric(name)]
    if unknown_metrics:
        return fail(f"--iaa-metric: unknown metric {', '.join(unknown_metrics)} (e.g. dice_score, "
                    "mr_nsd_2px, mr_boundary_iou_2px, mr_hd95, fleiss_kappa, krippendorff_alpha)")
    from_tables = args.pairwise_metrics is not None or args.image_metadata is not None
    if from_tables:
        if args.dataset is not None:
            return fail("give either a DATASET or --pairwise-metrics/--image-metadata, not both")
        if args.pairwise_metrics is None or args.image_metadata is None:
            return fail("--pairwise-metrics and --image-metadata go together: give both")
        for source in (args.pairwise_metrics, args.image_metadata):
            if is_inside(source, args.out):
                return fail(f"{args.out}: refusing to write next to the input table {source}")
        try:
            loaded = _load_tables(args)
        except IAAError as exc:
            return fail(str(exc))
    else:
        loaded = _compute_from_dataset(args)
        if isinstance(loaded, int):
            return loaded
    pairwise, metadata, inputs = loaded
    reviewed_out: frozenset[str] = frozenset()
    if args.exclude_reviewed:
        try:
            found = _review_exclusions(args, inputs)
        except IAAError as exc:
            return fail(str(exc))
        if isinstance(found, str):
            return fail(found)
        reviewed_out = found
    try:
        result = run_analysis(pairwise, metadata, include_indeterminate=args.include_indeterminate,
                              seed=args.seed, n_boot=args.n_boot, excluded_ids=reviewed_out)
        by_metric = [metric_malignancy(result, name, getattr(args, "chance_table", None),
                                       n_boot=args.n_boot, seed=args.seed)
                     for name in dict.fromkeys(args.iaa_metric)]
        args.out.mkdir(parents=True, exist_ok=True)
        paths = list(write_analysis_tables(result, args.out).values())
        stats = {**stats_json(result), "inputs": inputs}
        if by_metric:
            stats["iaa_metrics"] = [entry.as_dict() for entry in by_metric]
        stats_path = args.out / "stats.json"
        stats_path.write_text(json.dumps(stats, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        paths.append(stats_path)
    except IAAError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{args.out}: cannot write the report ({exc.strerror or exc})")

    print(f"IAA (mean Dice of the human-human pairs of an image): {stats['n_images']:,} images, "
          f"{stats['n_human_pairs']:,} human pairs, mean {_num(stats['mean_iaa'] or math.nan)}")
    if args.exclude_reviewed:
        shown = ", ".join(result.review_excluded[:10]) + (" ..." if len(result.review_excluded) > 10 else "")
        print(f"Excluded by review ('exclude' in {inputs['review_workspace']}): "
              f"{len(result.review_excluded):,} lesions{': ' + shown if shown else ''}")
    else:
        print("Excluded by review: none (reviews not applied; --exclude-reviewed applies them)")
    excluded = ", ".join(f"{label} {n:,}" for label, n in result.excluded.items()) or "none"
    _print_comparison(f"Malignant vs benign IAA (excluded: {excluded})", result.malignancy)
    for factor, comparison in result.intra_inter.items():
        _print_comparison(f"Intra vs inter {factor} (Dice of human pairs)", comparison)
    for entry in stats.get("iaa_metrics", ()):
        _print_metric(entry, result, args)
    print("Spearman correlation with the IAA:")
    for name, corr in result.correlations.items():
        print(f"  {name:<14} rho {_num(corr.rho, 3):>7}  p={_p(corr.p):<9} n={corr.n:,}")
    if not args.no_figures:
        parameters = {**inputs, **result.parameters}
        try:
            paths += _write_extras(result, stats, args.out, parameters, formats, args.dpi, by_metric)
            paths += _write_lesion_figures(args, result, formats)
        except (IAAError, OSError, ValueError) as exc:
            print(f"iaa-desktop: warning: figures/HTML report not written ({exc})", file=sys.stderr)
            print(f"wrote {len(paths)} files to {args.out}")
            return 1
    print(f"wrote {len(paths)} files to {args.out}")
    return 0
