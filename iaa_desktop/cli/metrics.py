"""``iaa-desktop metrics [DATASET] --out DIR``: every pair, consensus, per-image and factor tables.

Writes to DIR (never into the dataset): ``pairwise.csv`` (IMA++ pairwise
schema), ``image_level.csv`` (IMA++ image-level schema; ``dice_score_mean`` is
the IAA), ``factor_*.csv`` and ``intra_inter_*.csv``, ``staple_annotators.csv``
(STAPLE's sensitivity and specificity per mask), ``chance_agreement.csv`` (Fleiss'
kappa and Krippendorff's alpha per lesion), ``metric_conventions.json`` (what every
column is: convention, unit, tolerance, empty-mask policy), ``problems.csv``, and unless
``--no-maps`` the consensus masks and disagreement maps as PNG.

``--convention medpy`` (default) keeps ``pairwise.csv`` exactly IMA++'s columns, so the
tables diff cleanly against the published ones. ``--convention metricsreloaded`` appends
MetricsReloaded's columns (``mr_*``: HD95 as the max of the directed percentiles, MASD,
NSD at each ``--nsd-tau``, Boundary IoU at each ``--biou-d``) and writes their per-image
means to ``image_level_metricsreloaded.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

from iaa_desktop.cli.common import (
    add_dataset_argument,
    fail,
    is_inside,
    load_or_explain,
    measure_agreement,
    run_with_bar,
)

#: Image problems printed by name; the rest are counted (all are in problems.csv).
_IMAGE_PROBLEMS_SHOWN = 5


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "metrics",
        help="pairwise Dice/Jaccard/HD/HD95/ASSD, MV and STAPLE consensus, per-image IAA, factor tables",
    )
    add_dataset_argument(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the results")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"processes (default: every core, {os.cpu_count() or 1}, or this process "
                             "alone for a small dataset, where starting them costs more)")
    parser.add_argument("--no-maps", action="store_true",
                        help="skip writing consensus masks and disagreement maps (PNG)")
    parser.add_argument("--no-cache", action="store_true", help="recompute everything, cache nothing")
    parser.add_argument("--convention", choices=("medpy", "metricsreloaded"), default="medpy",
                        help="medpy (default): IMA++'s columns only; metricsreloaded: also "
                             "MetricsReloaded's mr_* columns (HD95 max-directed, MASD, NSD, "
                             "Boundary IoU)")
    parser.add_argument("--nsd-tau", default="1,2,5", metavar="LIST",
                        help="NSD tolerances in pixels, comma-separated (default %(default)s)")
    parser.add_argument("--biou-d", default="1,2", metavar="LIST",
                        help="Boundary IoU widths in pixels, comma-separated (default %(default)s)")
    parser.set_defaults(func=run)


def parse_pixels(text: str, option: str) -> tuple[float, ...]:
    """``"1,2,5"`` -> ``(1.0, 2.0, 5.0)``; ``ValueError`` naming ``option`` otherwise."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise ValueError(f"{option}: {part!r} is not a number of pixels") from None
    if not values:
        raise ValueError(f"{option}: give at least one number of pixels")
    return tuple(dict.fromkeys(values))  # keep order, drop repeats


def run(args) -> int:
    # Imported here so that `iaa-desktop --help` and the other commands start fast.
    import json

    import pandas as pd

    from iaa_desktop.core.agreement.boundary import BoundarySpec
    from iaa_desktop.core.agreement.conventions import conventions_document
    from iaa_desktop.core.agreement.image_metrics import image_means
    from iaa_desktop.core.agreement.table_io import write_agreement_tables, write_table
    from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS, agreement_tables
    from iaa_desktop.core.dataset.image_checks import iter_image_checks
    from iaa_desktop.core.errors import IAAError

    try:
        spec = BoundarySpec(parse_pixels(args.nsd_tau, "--nsd-tau"), parse_pixels(args.biou_d, "--biou-d"))
    except ValueError as exc:
        return fail(str(exc))
    dataset, code = load_or_explain(args)
    if dataset is None:
        return code
    if is_inside(args.out, dataset.root):
        return fail(f"{args.out}: refusing to write into the dataset directory {dataset.root}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(f"{args.out}: cannot create the output folder ({exc.strerror})")
    result = measure_agreement(dataset, args, maps_dir=None if args.no_maps else args.out,
                               boundary=spec)
    if isinstance(result, int):
        return result
    image_problems = run_with_bar("Checking images", iter_image_checks(dataset, decode=True,
                                                                        workers=args.workers))
    problems = pd.DataFrame([p.__dict__ for p in (*dataset.problems, *result.problems, *image_problems)],
                            columns=["kind", "severity", "message", "path", "image_id"])
    write_table(problems, args.out / "problems.csv")
    if result.pairwise.empty:
        n_masks = sum(len(lesion.segmentations) for lesion in dataset)
        if n_masks and (problems["kind"] == "missing_mask").sum() == n_masks:
            return fail(f"{dataset.root}: none of the {n_masks:,} mask files was found; "
                        "point at their folder with --masks-dir", 1)
        return fail(
            f"{dataset.root}: nothing could be computed: no lesion has two readable human masks "
            f"({len(problems):,} problems, listed in {args.out / 'problems.csv'})", 1)
    mr_columns = list(spec.columns) if args.convention == "metricsreloaded" else []
    pairwise = result.pairwise[[*PAIRWISE_COLUMNS, *mr_columns]]
    try:
        write_table(pairwise, args.out / "pairwise.csv")
        write_table(result.staple, args.out / "staple_annotators.csv")
        write_table(result.chance, args.out / "chance_agreement.csv")
        tables = agreement_tables(pairwise)
        write_agreement_tables(pairwise, args.out, tables)
        if mr_columns:
            write_table(image_means(pairwise, mr_columns),
                        args.out / "image_level_metricsreloaded.csv")
        document = conventions_document(
            [*pairwise.columns, *result.chance.columns], convention=args.convention,
            nsd_taus=spec.nsd_taus if mr_columns else (), biou_ds=spec.biou_ds if mr_columns else ())
        (args.out / "metric_conventions.json").write_text(
            json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except (IAAError, OSError) as exc:
        return fail(str(exc))
    image_level = tables["image_level"]
    print(f"{dataset.root}: {result.n_lesions_with_pairs:,} lesions with 2+ human masks, "
          f"{len(result.pairwise):,} pairs ({result.computed:,} lesions computed, "
          f"{result.from_cache:,} from the cache)")
    print(f"  mean IAA (mean pairwise Dice, human pairs) {image_level['dice_score_mean'].mean():.4f}")
    if len(result.chance):
        print(f"  mean Fleiss' kappa {result.chance['fleiss_kappa'].mean():.4f}, "
              f"Krippendorff's alpha {result.chance['krippendorff_alpha'].mean():.4f} "
              "(per lesion, pixels near the masks)")
    labels = {lesion.image_path.name if lesion.image_path else f"{lesion.image_id}.JPG":
              lesion.benign_malignant for lesion in dataset}
    by_label = image_level.assign(label=image_level["img_id"].map(labels))
    for label, group in by_label.groupby("label"):
        print(f"    {label:<12} n={len(group):<6} IAA {group['dice_score_mean'].mean():.4f}")
    if image_problems:
        print(f"  {len(image_problems):,} image file(s) with problems:")
        for problem in image_problems[:_IMAGE_PROBLEMS_SHOWN]:
            print(f"    [{problem.kind}] {problem.message}")
        if len(image_problems) > _IMAGE_PROBLEMS_SHOWN:
            print(f"    ... and {len(image_problems) - _IMAGE_PROBLEMS_SHOWN:,} more")
    if len(problems):
        print(f"  {len(problems):,} problems (see problems.csv)")
    print(f"wrote results to {args.out}")
    return 0
