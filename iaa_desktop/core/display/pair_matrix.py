"""One lesion's mask-by-mask agreement matrix, for the pairwise heatmap.

:func:`pair_matrix` arranges the pairs of a :class:`LesionAgreement` (IMA++
pairwise rows) as an N x N symmetric matrix of one metric. Rows are the
lesion's human masks in ``lesion.human_segmentations`` order (a repeated mask
of the same annotator is its own row), then optionally the consensus masks
STAPLE and majority vote. The diagonal holds the metric's identity value
(Dice/Jaccard 1, distances 0). Each row carries a :class:`MaskRef` whose
``key`` is the mask's index in ``lesion.human_segmentations`` or the string
``"STAPLE"`` / ``"MV"``, so a clicked cell maps back to its two masks.

:func:`heatmap_colours` gives the cell colours (cividis, reversed for
distances so that good agreement always looks the same) and a readable text
colour per cell; the GUI only paints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import colormaps

from iaa_desktop.core.agreement.boundary import DEFAULT_SPEC
from iaa_desktop.core.agreement.conventions import metric_info
from iaa_desktop.core.agreement.lesion import LesionAgreement
from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS
from iaa_desktop.core.dataset.model import Lesion
from iaa_desktop.core.display.overlay import segmentation_label
from iaa_desktop.core.palette import HEATMAP_CMAP, text_colour_for


def _mr_entry(column: str) -> tuple[str, str]:
    """Menu name naming the convention; colour-bar label with tolerance and unit (short enough
    for the bar's height)."""
    info = metric_info(column)
    name = info.name.removesuffix(" (MR)")
    label = info.label.replace(", MetricsReloaded)", ")")
    if column == "mr_hd95":
        label = "HD95, max of the directed P95 (px)"
    return f"{name} (MetricsReloaded)", label


#: Metrics the heatmap offers: pairwise column -> (menu name, axis label with unit).
PAIR_METRICS: dict[str, tuple[str, str]] = {
    "dice_score": ("Dice", "Dice (unitless)"),
    "jaccard_score": ("Jaccard", "Jaccard (unitless)"),
    "hd95_score": ("HD95", "HD95 (px)"),
    "assd_score": ("ASSD", "ASSD (px)"),
    "hd95_score_normalized": ("HD95 / diagonal", "HD95 / image diagonal (unitless)"),
    # MetricsReloaded's, at the engine's default tolerances: the boundary metrics first.
    **{column: _mr_entry(column) for column in DEFAULT_SPEC.columns
       if column.startswith(("mr_nsd", "mr_boundary_iou"))},
    **{column: _mr_entry(column) for column in ("mr_hd95", "mr_masd")},
}

#: Overlap metrics: higher is better, identity 1. Every other metric is a distance (identity 0).
OVERLAP_METRICS = frozenset({"dice_score", "jaccard_score"} | {
    column for column in PAIR_METRICS
    if column.startswith("mr_") and metric_info(column).higher_is_better})

#: Keys and labels of the consensus masks, by IMA++ annotator code.
CONSENSUS_KEYS = {"ST": ("STAPLE", "STAPLE"), "MV": ("MV", "Majority vote")}

#: Colour of cells that carry no information (a mask against itself).
NEUTRAL_RGBA = (232, 232, 232, 255)


@dataclass(frozen=True)
class MaskRef:
    """One row/column of a pair matrix.

    ``key`` is the index in ``lesion.human_segmentations`` (int) or ``"STAPLE"``
    / ``"MV"`` for a consensus mask; ``label`` is ``"A00 · T1 · S1"`` (with
    ``#2`` for a repeated annotator).
    """

    key: int | str
    name: str
    annotator: str
    tool: str
    skill: str
    label: str

    @property
    def is_consensus(self) -> bool:
        return isinstance(self.key, str)

    @property
    def short_label(self) -> str:
        """``"A05 #2"``, ``"STAPLE"``: for a crowded axis."""
        if self.is_consensus:
            return "MV" if self.key == "MV" else "STAPLE"
        repeat = self.label.rfind(" #")
        return self.annotator + (self.label[repeat:] if repeat >= 0 else "")


@dataclass(frozen=True)
class MaskPair:
    """The two masks behind one cell, with the cell's value: what a click on the heatmap gives."""

    image_id: str
    first: MaskRef
    second: MaskRef
    metric: str
    value: float

    @property
    def keys(self) -> tuple[int | str, int | str]:
        return self.first.key, self.second.key


@dataclass(frozen=True, eq=False)
class PairMatrix:
    """An N x N matrix of one metric between one lesion's masks (see the module docstring)."""

    image_id: str
    metric: str
    masks: tuple[MaskRef, ...]
    values: np.ndarray

    @property
    def labels(self) -> list[str]:
        return [m.label for m in self.masks]

    @property
    def metric_name(self) -> str:
        return PAIR_METRICS.get(self.metric, (self.metric, self.metric))[0]

    @property
    def value_label(self) -> str:
        return PAIR_METRICS.get(self.metric, (self.metric, self.metric))[1]

    @property
    def higher_is_better(self) -> bool:
        return self.metric in OVERLAP_METRICS

    def cell_masks(self, row: int, column: int) -> MaskPair:
        """The two masks of cell (``row``, ``column``) and its value (``IndexError`` outside)."""
        n = len(self.masks)
        if not (0 <= row < n and 0 <= column < n):
            raise IndexError(f"cell ({row}, {column}) is outside the {n} x {n} matrix")
        return MaskPair(self.image_id, self.masks[row], self.masks[column], self.metric,
                        float(self.values[row, column]))

    def to_frame(self) -> pd.DataFrame:
        """The matrix as a table: first column ``mask`` (the labels), then one column per mask."""
        frame = pd.DataFrame(self.values, columns=self.labels)
        frame.insert(0, "mask", self.labels)
        return frame


def _identity(metric: str) -> float:
    return 1.0 if metric in OVERLAP_METRICS else 0.0


def _human_refs(lesion: Lesion) -> tuple[list[MaskRef], dict[tuple[str, str], int]]:
    """A MaskRef per human segmentation, and (file name, annotator) -> index."""
    segs = lesion.human_segmentations
    totals: dict[str, int] = {}
    for seg in segs:
        totals[seg.annotator] = totals.get(seg.annotator, 0) + 1
    seen: dict[str, int] = {}
    refs, index = [], {}
    for i, seg in enumerate(segs):
        seen[seg.annotator] = seen.get(seg.annotator, 0) + 1
        label = segmentation_label(seg)
        if totals[seg.annotator] > 1:
            label += f" #{seen[seg.annotator]}"
        refs.append(MaskRef(i, seg.name, seg.annotator, seg.tool, seg.skill, label))
        # Folder layouts name every annotator's mask <id>.png: the annotator tells them apart.
        index[(seg.name, seg.annotator)] = i
    return refs, index


def pair_matrix(
    agreement: LesionAgreement,
    lesion: Lesion,
    metric: str = "dice_score",
    *,
    include_consensus: bool = False,
) -> PairMatrix:
    """The matrix of ``metric`` between the masks of ``lesion`` (see the module docstring).

    Parameters
    ----------
    agreement
        ``lesion_agreement(lesion)``: its pairs in the IMA++ pairwise layout.
    lesion
        The lesion, whose ``human_segmentations`` order the rows follow.
    metric
        A pairwise column: one of :data:`PAIR_METRICS` (any of ``METRIC_COLUMNS`` or of the
        agreement's ``extra_columns`` works).
    include_consensus
        Add STAPLE and majority-vote rows after the human masks.

    Returns
    -------
    PairMatrix
        Only masks that take part in a pair are rows (an unreadable mask is
        left out). Pairs without a value (e.g. HD of an empty mask) are NaN.
    """
    columns = agreement.pair_columns
    if metric not in (*PAIRWISE_COLUMNS[5:13], *agreement.extra_columns):
        raise ValueError(f"metric must be one of {', '.join(PAIR_METRICS)}, not {metric!r}")
    refs, index = _human_refs(lesion)
    column = columns.index(metric)
    present: set[int | str] = set()
    cells: dict[tuple[int | str, int | str], float] = {}
    consensus_names: dict[str, str] = {}
    for row in agreement.pairs:
        keys = []
        for name, annotator in ((row[1], row[3]), (row[2], row[4])):
            if annotator in CONSENSUS_KEYS:
                keys.append(CONSENSUS_KEYS[annotator][0])
                consensus_names[annotator] = name
            else:
                keys.append(index.get((name, annotator)))
        if None in keys:
            continue  # a mask the lesion does not list (should not happen)
        a, b = keys
        if not include_consensus and (isinstance(a, str) or isinstance(b, str)):
            continue
        value = row[column]
        value = np.nan if value is None else float(value)
        cells[(a, b)] = cells[(b, a)] = value
        present.update((a, b))
    masks = [ref for ref in refs if ref.key in present]
    if include_consensus:
        for code in ("ST", "MV"):
            key, label = CONSENSUS_KEYS[code]
            if key in present:
                masks.append(MaskRef(key, consensus_names[code], code, code, code, label))
    n = len(masks)
    values = np.full((n, n), np.nan)
    for i, a in enumerate(masks):
        for j, b in enumerate(masks):
            values[i, j] = _identity(metric) if i == j else cells.get((a.key, b.key), np.nan)
    values.setflags(write=False)
    return PairMatrix(agreement.image_id, metric, tuple(masks), values)


def lesion_agreement_from_table(pairwise: pd.DataFrame, lesion: Lesion) -> LesionAgreement:
    """The pairs of ``lesion`` taken from a dataset's pairwise table (no mask is decoded again).

    Rows are matched on ``img_id``: the lesion's image file name, or its id
    when the table names images without extension.
    """
    name = lesion.image_path.name if lesion.image_path else f"{lesion.image_id}.JPG"
    ids = pairwise["img_id"].astype(str)
    extra = tuple(c for c in pairwise.columns if c.startswith("mr_"))
    chosen = pairwise.loc[(ids == name) | (ids == lesion.image_id), [*PAIRWISE_COLUMNS, *extra]]
    rows = tuple(tuple(row) for row in chosen.itertuples(index=False, name=None))
    return LesionAgreement(lesion.image_id, rows, image_file_name=name, extra_columns=extra)


def pair_matrices(agreement: LesionAgreement, lesion: Lesion) -> dict[tuple[str, bool], PairMatrix]:
    """Every heatmap view of one lesion: ``(metric, include_consensus)`` -> :func:`pair_matrix`."""
    offered = (*PAIRWISE_COLUMNS[5:13], *agreement.extra_columns)
    return {(metric, consensus): pair_matrix(agreement, lesion, metric, include_consensus=consensus)
            for metric in PAIR_METRICS if metric in offered for consensus in (False, True)}


@dataclass(frozen=True, eq=False)
class HeatmapColours:
    """How to paint a heatmap: RGBA per cell, text colour per cell, and the colour bar.

    ``rgba`` is (rows, columns, 4) uint8 (fully transparent where the value is
    NaN); ``text`` holds ``"black"``/``"white"``; ``bar_rgba`` (256, 4) uint8
    runs from ``limits[0]`` to ``limits[1]``.
    """

    rgba: np.ndarray
    text: tuple[tuple[str, ...], ...]
    limits: tuple[float, float]
    bar_rgba: np.ndarray


def colour_limits(values: np.ndarray, higher_is_better: bool, *, skip_diagonal: bool = False
                  ) -> tuple[float, float]:
    """Colour range: [min, 1] for overlaps, [0, max] for distances (never empty).

    ``skip_diagonal`` leaves out the diagonal (the identity values) of a square matrix.
    """
    values = np.asarray(values, dtype=np.float64)
    if skip_diagonal and values.ndim == 2 and values.shape[0] == values.shape[1]:
        values = values[~np.eye(values.shape[0], dtype=bool)]
    finite = values[np.isfinite(values)]
    if higher_is_better:
        low = float(finite.min()) if finite.size else 0.0
        low, high = min(low, 1.0), 1.0
    else:
        high = float(finite.max()) if finite.size else 1.0
        low, high = 0.0, max(high, 0.0)
    if high <= low:
        low, high = (high - 1.0, high) if higher_is_better else (low, low + 1.0)
    return low, high


def heatmap_colours(values: np.ndarray, higher_is_better: bool,
                    limits: tuple[float, float] | None = None, *,
                    neutral_diagonal: bool = False) -> HeatmapColours:
    """Cividis colours for ``values``: bright is good agreement whatever the metric.

    For distances (``higher_is_better=False``) the map is reversed, so that a
    distance of 0 and a Dice of 1 get the same colour. ``neutral_diagonal``
    paints the diagonal light grey: a mask against itself says nothing.
    """
    values = np.asarray(values, dtype=np.float64)
    if limits is None:
        limits = colour_limits(values, higher_is_better, skip_diagonal=True)
    low, high = limits
    cmap = colormaps[HEATMAP_CMAP] if higher_is_better else colormaps[HEATMAP_CMAP].reversed()
    with np.errstate(invalid="ignore"):
        scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    finite = np.isfinite(values)
    rgba = (np.asarray(cmap(np.where(finite, scaled, 0.0))) * 255).round().astype(np.uint8)
    rgba[~finite] = 0
    text = [[text_colour_for(cmap, s) if ok else "black" for s, ok in zip(row, ok_row, strict=True)]
            for row, ok_row in zip(scaled, finite, strict=True)]
    if neutral_diagonal and values.ndim == 2 and values.shape[0] == values.shape[1]:
        for i in range(values.shape[0]):
            rgba[i, i] = NEUTRAL_RGBA
            text[i][i] = "black"
    bar = (np.asarray(cmap(np.linspace(0.0, 1.0, 256))) * 255).round().astype(np.uint8)
    return HeatmapColours(rgba, tuple(map(tuple, text)), (float(low), float(high)), bar)


def format_value(value: float, metric: str) -> str:
    """A cell's text: 3 decimals for overlaps and normalized distances, 1 for pixels; ``–`` if NaN."""
    if not np.isfinite(value):
        return "–"
    unitless = metric in OVERLAP_METRICS or "normalized" in metric or metric.startswith(("dice", "jaccard"))
    return f"{value:.3f}" if unitless else f"{value:.1f}"
