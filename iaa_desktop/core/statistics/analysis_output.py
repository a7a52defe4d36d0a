"""The analysis as files: ``stats.json`` (:func:`stats_json`) and the CSV tables
(:func:`analysis_tables`, :func:`write_analysis_tables`).

:func:`stats_json` gives a JSON-safe dict (NaN as ``null``) with these keys:

==========================  =====================================================================
key                         content
==========================  =====================================================================
format                      ``"iaa-desktop-stats/1"``
parameters                  ``include_indeterminate``, ``seed``, ``n_boot``
n_images                    images with an IAA (at least one human-human pair)
n_human_pairs               human-human pairs (consensus masks excluded)
mean_iaa, median_iaa        over those images
malignant_vs_benign         :meth:`TwoGroupComparison.as_dict` of the IAA, ``a`` = malignant,
                            ``b`` = benign (``p_a_less``: malignant IAA lower), plus
                            ``excluded`` (label -> images left out; ``"unknown"`` for no label,
                            ``"not in metadata"`` for images the metadata lacks) and
                            ``n_excluded``
intra_inter                 factor (``annotator``, ``tool``, ``skill_level``) -> comparison of the
                            Dice of human-human pairs with the same level (``a`` = intra) vs
                            different levels (``b`` = inter)
per_annotator               list of records: ``annotator``, ``n_pairs``, ``n_images``,
                            ``dice_mean``, ``dice_median``, ``dice_sd``, ``hd95_normalized_mean``
                            over the pairs of that annotator with another annotator
correlations                variable (``image_pixels``, ``n_human_masks``, ``n_annotators``,
                            ``age_approx``) -> Spearman ``rho``, ``p``, ``n`` against the IAA
factor_matrices             factor -> ``levels`` (humans sorted, then ``ST``, ``MV``) and square
                            lower-triangular lists ``dice_score_mean``,
                            ``hd95_score_normalized_mean``, ``n_pairs`` (row i, column j <= i;
                            ``null`` above the diagonal, and for the means where no pair exists)
excluded_by_review          ``n_images`` and ``image_ids`` left out because a reviewer marked them
                            ``exclude`` (``run_analysis(excluded_ids=...)``; none by default)
inputs                      only in the CLI's ``stats.json``: ``pairwise_metrics`` and
                            ``image_metadata`` paths, or ``dataset`` (its root); and
                            ``dataset_fingerprint`` (``masks:`` + a hash of every mask's bytes,
                            or ``tables:`` + a hash of the two input tables)
==========================  =====================================================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.table_io import write_table
from iaa_desktop.core.agreement.tables import FACTORS
from iaa_desktop.core.statistics.analysis import AnalysisError, AnalysisResult
from iaa_desktop.core.statistics.stats import json_safe

STATS_FORMAT = "iaa-desktop-stats/1"

__all__ = ["STATS_FORMAT", "analysis_tables", "stats_json", "write_analysis_tables"]


def stats_json(result: AnalysisResult) -> dict:
    """The statistics of an analysis as a JSON-safe dict (keys in the module docstring)."""
    iaa = result.images["iaa"].to_numpy(dtype=np.float64)
    matrices = {}
    for factor, by_name in result.matrices.items():
        entry: dict[str, object] = {"levels": [str(level) for level in next(iter(by_name.values())).index]}
        for name, frame in by_name.items():
            values = frame.astype("float64").to_numpy(na_value=np.nan)
            if name == "n_pairs":
                values = [[None if np.isnan(v) else int(v) for v in row] for row in values]
            entry[name] = values if isinstance(values, list) else values.tolist()
        matrices[factor] = entry
    return json_safe({
        "format": STATS_FORMAT,
        "parameters": dict(result.parameters),
        "n_images": len(result.images),
        "n_human_pairs": result.n_human_pairs,
        "mean_iaa": float(np.nanmean(iaa)) if np.isfinite(iaa).any() else float("nan"),
        "median_iaa": float(np.nanmedian(iaa)) if np.isfinite(iaa).any() else float("nan"),
        "malignant_vs_benign": {**result.malignancy.as_dict(), "excluded": dict(result.excluded),
                                "n_excluded": sum(result.excluded.values())},
        "intra_inter": {factor: comparison.as_dict() for factor, comparison in result.intra_inter.items()},
        "per_annotator": result.per_annotator.to_dict(orient="records"),
        "correlations": {name: r.as_dict() for name, r in result.correlations.items()},
        "factor_matrices": matrices,
        "excluded_by_review": {"n_images": len(result.review_excluded),
                               "image_ids": list(result.review_excluded)},
    })


def analysis_tables(result: AnalysisResult) -> dict[str, pd.DataFrame]:
    """The analysis tables by CSV file stem.

    ``image_level`` (IMA++ schema), ``images`` (:data:`IMAGE_COLUMNS`),
    ``per_annotator``, ``intra_inter_<factor>``, ``factor_<factor>`` (tidy, with
    consensus levels) and ``factor_matrix_<factor>_<name>`` for each name of
    :data:`MATRIX_METRICS` (first column: the row level).
    """
    tables = {"image_level": result.image_level, "images": result.images,
              "per_annotator": result.per_annotator}
    for factor in FACTORS:
        tables[f"intra_inter_{factor}"] = result.intra_inter_tables[factor]
    for factor in FACTORS:
        tables[f"factor_{factor}"] = result.factor_tables[factor]
        for name, frame in result.matrices[factor].items():
            tables[f"factor_matrix_{factor}_{name}"] = frame.rename_axis(factor).reset_index()
    return tables


def write_analysis_tables(result: AnalysisResult, out_dir: str | Path) -> dict[str, Path]:
    """Write :func:`analysis_tables` as ``<name>.csv`` in ``out_dir`` (created if needed)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return {name: write_table(table, out_dir / f"{name}.csv")
                for name, table in analysis_tables(result).items()}
    except OSError as exc:
        raise AnalysisError(f"{out_dir}: cannot write the analysis tables ({exc})") from None
