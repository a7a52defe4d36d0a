"""Per-annotator agreement and the factor matrices (annotator, tool, skill level) of an analysis."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.tables import human_pairs
from iaa_desktop.core.dataset.model import CONSENSUS_ANNOTATORS

__all__ = ["MATRIX_METRICS", "PER_ANNOTATOR_COLUMNS", "factor_matrices", "per_annotator_table"]

#: Columns of :attr:`AnalysisResult.per_annotator`.
PER_ANNOTATOR_COLUMNS = ("annotator", "n_pairs", "n_images", "dice_mean", "dice_median", "dice_sd",
                         "hd95_normalized_mean")

#: Matrices per factor: the factor table's column for each matrix name.
MATRIX_METRICS = {"dice_score_mean": "dice_score_mean",
                  "hd95_score_normalized_mean": "hd95_score_normalized_mean",
                  "n_pairs": "n_pairs"}


def per_annotator_table(pairwise: pd.DataFrame) -> pd.DataFrame:
    """Each human annotator's agreement with the others (columns :data:`PER_ANNOTATOR_COLUMNS`).

    A pair counts for both its annotators; pairs of an annotator with themself
    (repeat masks) and pairs with a consensus mask are left out.
    """
    humans = human_pairs(pairwise)
    humans = humans.loc[humans["annotator1"].to_numpy() != humans["annotator2"].to_numpy()]
    both = pd.concat([
        pd.DataFrame({"annotator": humans["annotator1"].to_numpy(), "img_id": humans["img_id"].to_numpy(),
                      "dice": humans["dice_score"].to_numpy(dtype=np.float64),
                      "hd95": humans["hd95_score_normalized"].to_numpy(dtype=np.float64)}),
        pd.DataFrame({"annotator": humans["annotator2"].to_numpy(), "img_id": humans["img_id"].to_numpy(),
                      "dice": humans["dice_score"].to_numpy(dtype=np.float64),
                      "hd95": humans["hd95_score_normalized"].to_numpy(dtype=np.float64)}),
    ])
    grouped = both.groupby("annotator", sort=True)
    table = pd.DataFrame({
        "annotator": pd.Series(list(grouped.groups), dtype="str"),
        "n_pairs": grouped.size().to_numpy(dtype=np.int64),
        "n_images": grouped["img_id"].nunique().to_numpy(dtype=np.int64),
        "dice_mean": grouped["dice"].mean().to_numpy(),
        "dice_median": grouped["dice"].median().to_numpy(),
        "dice_sd": grouped["dice"].std(ddof=1).to_numpy(),
        "hd95_normalized_mean": grouped["hd95"].mean().to_numpy(),
    }, columns=list(PER_ANNOTATOR_COLUMNS))
    return table


def _level_order(levels: Iterable[str]) -> list[str]:
    """Human levels sorted, then the consensus levels (ST, MV, reference) present."""
    levels = set(levels)
    humans = sorted(level for level in levels if level not in CONSENSUS_ANNOTATORS)
    return humans + [c for c in CONSENSUS_ANNOTATORS if c in levels]


def factor_matrices(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Square lower-triangular matrices of a factor table, one per :data:`MATRIX_METRICS` name.

    Rows and columns are the levels (humans sorted, then ``ST``, ``MV``); cell
    (i, j) with j <= i holds the pairs of levels i and j; cells above the
    diagonal are NaN (``<NA>`` in the integer ``n_pairs`` matrix).
    """
    levels = _level_order([*table["level_a"].tolist(), *table["level_b"].tolist()])
    index = {level: i for i, level in enumerate(levels)}
    k = len(levels)
    matrices: dict[str, pd.DataFrame] = {}
    for name, column in MATRIX_METRICS.items():
        values = np.full((k, k), np.nan)
        for a, b, value in zip(table["level_a"], table["level_b"], table[column], strict=True):
            i, j = index[a], index[b]
            values[max(i, j), min(i, j)] = value
        labels = pd.Index(levels, dtype="str")
        frame = pd.DataFrame(values, index=labels, columns=labels.copy())
        if name == "n_pairs":
            filled = np.tril(np.ones((k, k), dtype=bool))
            frame = frame.fillna(0).where(filled).astype("Int64")
        matrices[name] = frame
    return matrices
