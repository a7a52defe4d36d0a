"""What the agreement plots' factor heatmaps show: mean agreement per pair of factor levels
(annotator, tool, skill level), with the image ids behind every cell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.tables import (
    factor_table,
    is_consensus_pair,
)
from iaa_desktop.core.display.pair_matrix import HeatmapColours, colour_limits, heatmap_colours
from iaa_desktop.core.statistics.factors import factor_matrices

#: Factor matrix metrics: factor-table column -> (menu name, colour-bar label, higher is better).
FACTOR_METRICS: dict[str, tuple[str, str, bool]] = {
    "dice_score_mean": ("Mean Dice", "Mean Dice (unitless)", True),
    "hd95_score_normalized_mean": ("Mean HD95 / diagonal", "Mean HD95 / image diagonal (unitless)", False),
}


FACTOR_NAMES = {"annotator": "Annotator", "tool": "Tool", "skill_level": "Skill level"}


def _image_ids(img_ids, known: set[str]) -> list[str]:
    """Pairwise ``img_id`` (the image file name) -> the lesion's image id."""
    out = []
    for img_id in img_ids:
        img_id = str(img_id)
        out.append(img_id if img_id in known else os.path.splitext(img_id)[0])
    return out


def _pairwise(agreement) -> pd.DataFrame:
    return agreement.pairwise if hasattr(agreement, "pairwise") else agreement


@dataclass(frozen=True, eq=False)
class FactorView:
    """Mean agreement between the levels of a factor, lower-triangular, with ids per cell."""

    factor: str
    metric: str
    levels: tuple[str, ...]
    values: np.ndarray
    n_pairs: np.ndarray
    image_ids: tuple[tuple[tuple[str, ...], ...], ...]
    colours: HeatmapColours

    @property
    def value_label(self) -> str:
        return FACTOR_METRICS[self.metric][1]

    @property
    def title(self) -> str:
        return f"{FACTOR_METRICS[self.metric][0]} by {FACTOR_NAMES.get(self.factor, self.factor).lower()}"

    def cell_ids(self, row: int, column: int) -> list[str]:
        """Image ids of the pairs in cell (row, column); the matrix is symmetric in meaning."""
        row, column = max(row, column), min(row, column)
        return list(self.image_ids[row][column])

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.values, columns=list(self.levels))
        frame.insert(0, self.factor, list(self.levels))
        return frame


def factor_views(agreement, factor: str, *, include_consensus: bool = True,
                 known_ids: set[str] | None = None) -> dict[str, FactorView]:
    """Every metric of :data:`FACTOR_METRICS` for one factor (the pairs are grouped once)."""
    pairwise = _pairwise(agreement)
    table = factor_table(pairwise, factor, include_consensus=include_consensus)
    matrices = factor_matrices(table)
    levels = tuple(str(level) for level in matrices["n_pairs"].index)
    counts = matrices["n_pairs"].to_numpy(dtype=np.float64, na_value=np.nan)
    counts = np.where(np.isnan(counts), 0, counts).astype(np.int64)
    position = {level: i for i, level in enumerate(levels)}
    first = pairwise[f"{factor}1"].astype("string").to_numpy(dtype=object, na_value=None)
    second = pairwise[f"{factor}2"].astype("string").to_numpy(dtype=object, na_value=None)
    keep = ~is_consensus_pair(pairwise) if not include_consensus else np.ones(len(pairwise), bool)
    images = _image_ids(pairwise["img_id"], known_ids or set())
    cells: dict[tuple[int, int], set[str]] = {}
    for a, b, image_id, ok in zip(first, second, images, keep, strict=True):
        if ok and a is not None and b is not None and a in position and b in position:
            i, j = position[a], position[b]
            cells.setdefault((max(i, j), min(i, j)), set()).add(image_id)
    k = len(levels)
    ids = tuple(tuple(tuple(sorted(cells.get((r, c), ()))) for c in range(k)) for r in range(k))
    views = {}
    for metric, (_, _, higher) in FACTOR_METRICS.items():
        values = matrices[metric].to_numpy(dtype=np.float64, na_value=np.nan)
        colours = heatmap_colours(values, higher, colour_limits(values, higher))
        views[metric] = FactorView(factor, metric, levels, values, counts, ids, colours)
    return views


def factor_view(agreement, factor: str, metric: str = "dice_score_mean", *,
                include_consensus: bool = True, known_ids: set[str] | None = None) -> FactorView:
    """The factor matrix of ``metric`` (see :data:`FACTOR_METRICS`) with the image ids per cell."""
    if metric not in FACTOR_METRICS:
        raise ValueError(f"metric must be one of {', '.join(FACTOR_METRICS)}, not {metric!r}")
    return factor_views(agreement, factor, include_consensus=include_consensus, known_ids=known_ids)[metric]
