"""What the dataset-level agreement plots show, with the image ids behind every mark.

From a :class:`~iaa_desktop.core.agreement.engine.DatasetAgreement` (or its
pairwise table) and the lesion table (``overlay.lesion_table_frame``):

- :func:`image_table`: one row per image with an IAA (mean human-human Dice),
  its malignancy group and every numeric column (image-level means and SDs,
  annotator and mask counts, image size and age when metadata is given);
- :func:`malignancy_view`: IAA of malignant vs benign images, the test result
  (``stats.compare_groups``) as a caption, and a histogram whose every bar
  knows its image ids;
- :func:`factor_view`: the mean agreement between the levels of a factor
  (annotator, tool, skill level) as a lower-triangular matrix, with the image
  ids of the pairs in each cell;
- :func:`scatter_view`: IAA against any numeric column, with the image id per point.

:func:`dataset_views` computes all of them at once, off the GUI thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.conventions import is_known_metric, metric_info
from iaa_desktop.core.agreement.image_metrics import LESION_METRICS, image_metric
from iaa_desktop.core.agreement.tables import (
    FACTORS,
    human_pairs,
    image_level_table,
)
from iaa_desktop.core.dataset.labels import normalise_benign_malignant
from iaa_desktop.core.statistics.factor_views import (
    FactorView,
    _image_ids,
    _pairwise,
    factor_views,
)
from iaa_desktop.core.statistics.stats import SpearmanResult, TwoGroupComparison, compare_groups, spearman

IAA_LABEL = "IAA (mean pairwise Dice, unitless)"

#: Metrics the plots can use as an image's IAA, in menu order, when the tables hold them.
IAA_METRIC_CHOICES = ("dice_score", "jaccard_score", "hd95_score_normalized", "assd_score_normalized",
                      "mr_nsd_1px", "mr_nsd_2px", "mr_nsd_5px", "mr_boundary_iou_1px",
                      "mr_boundary_iou_2px", "mr_hd95", "mr_masd", "fleiss_kappa",
                      "krippendorff_alpha")


def iaa_label(metric: str) -> str:
    """Axis label of ``metric`` used as the IAA: what is averaged, the unit, the convention."""
    if metric == "dice_score":
        return IAA_LABEL
    info = metric_info(metric)
    if metric in LESION_METRICS:
        return f"IAA: {info.name} per lesion ({info.unit}, chance-corrected)"
    return f"IAA: mean {info.label} over human pairs"


def iaa_menu_name(metric: str) -> str:
    """Short menu text of ``metric`` as IAA: ``"Dice (MedPy)"``, ``"NSD 2 px (MetricsReloaded)"``."""
    info = metric_info(metric)
    if metric in LESION_METRICS:
        return f"{info.name} (per lesion)"
    convention = "MedPy" if info.convention == "medpy" else "MetricsReloaded"
    return f"{info.name.removesuffix(' (MR)')} ({convention})"


def iaa_choices(agreement) -> tuple[str, ...]:
    """The :data:`IAA_METRIC_CHOICES` that ``agreement`` (or its pairwise table) can give."""
    pairwise = _pairwise(agreement)
    chance = getattr(agreement, "chance", None)
    have = set(pairwise.columns) | (set(chance.columns) if chance is not None and len(chance) else set())
    return tuple(m for m in IAA_METRIC_CHOICES if m in have)

#: Malignancy groups in drawing order (benign first, as in the report figures).
GROUPS = ("benign", "malignant")


#: Axis labels (with units) of the numeric columns :func:`image_table` can hold.
COLUMN_LABELS: dict[str, str] = {
    "dice_score_std": "Dice SD over pairs (unitless)",
    "jaccard_score_mean": "Mean Jaccard (unitless)",
    "jaccard_score_std": "Jaccard SD over pairs (unitless)",
    "hd_score_mean": "Mean Hausdorff distance (px)",
    "hd_score_std": "Hausdorff distance SD (px)",
    "hd95_score_mean": "Mean HD95 (px)",
    "hd95_score_std": "HD95 SD (px)",
    "assd_score_mean": "Mean ASSD (px)",
    "assd_score_std": "ASSD SD (px)",
    "hd95_score_normalized_mean": "Mean HD95 / image diagonal (unitless)",
    "n_pairs": "Human-human pairs (count)",
    "annotators": "Annotators (count)",
    "masks": "Mask files (count)",
    "pixels_x": "Image width (px)",
    "pixels_y": "Image height (px)",
    "image_megapixels": "Image size (megapixels)",
    "age_approx": "Age (years)",
}


def image_table(agreement, lesion_table: pd.DataFrame, image_metadata: pd.DataFrame | None = None
                ) -> pd.DataFrame:
    """One row per image with an IAA: ``image_id``, ``iaa``, ``benign_malignant``, ``group``, numbers.

    Parameters
    ----------
    agreement
        A ``DatasetAgreement`` or its pairwise table (IMA++ schema).
    lesion_table
        ``overlay.lesion_table_frame(dataset)``: adds diagnosis, split and the
        ``annotators`` / ``masks`` counts.
    image_metadata
        Optional ``analysis.image_metadata_from_dataset(dataset)``: adds image
        width, height, megapixels and age.

    Returns
    -------
    pandas.DataFrame
        ``group`` is ``"benign"``, ``"malignant"`` or None (any other label);
        the numeric columns are those of :func:`numeric_columns`.
    """
    pairwise = _pairwise(agreement)
    level = image_level_table(pairwise)
    known = set(lesion_table["image_id"].astype(str)) if "image_id" in lesion_table else set()
    humans = human_pairs(pairwise)
    table = pd.DataFrame({"img_id": level["img_id"].astype(str).to_numpy(),
                          "image_id": _image_ids(level["img_id"], known),
                          "iaa": level["dice_score_mean"].to_numpy(dtype=np.float64)})
    for name in level.columns[3:]:
        table[name] = level[name].to_numpy(dtype=np.float64)
    by_image = humans.groupby("img_id")
    table["hd95_score_normalized_mean"] = by_image["hd95_score_normalized"].mean().reindex(
        table["img_id"]).to_numpy(dtype=np.float64)
    table["n_pairs"] = by_image.size().reindex(table["img_id"]).to_numpy(dtype=np.int64)
    # MetricsReloaded's means and the per-lesion kappa/alpha, when computed: more to plot against.
    for column in (c for c in pairwise.columns if c.startswith("mr_") and is_known_metric(c)):
        table[f"{column}_mean"] = by_image[column].mean().reindex(table["img_id"]).to_numpy(dtype=np.float64)
    chance = getattr(agreement, "chance", None)
    if chance is not None and len(chance):
        by_img = chance.set_index(chance["img_id"].astype(str))
        for column in LESION_METRICS:
            table[column] = by_img[column].reindex(table["img_id"]).to_numpy(dtype=np.float64)
    wanted = ("diagnosis", "benign_malignant", "split", "annotators", "masks")
    extra = [c for c in wanted if c in lesion_table]
    if extra:
        lesions = lesion_table.drop_duplicates("image_id").set_index("image_id")[extra]
        table = table.join(lesions, on="image_id")
    if "benign_malignant" not in table:
        table["benign_malignant"] = None
    labels = [normalise_benign_malignant(v if isinstance(v, str) else None)[0]
              for v in table["benign_malignant"]]
    table["group"] = [label if label in GROUPS else None for label in labels]
    if image_metadata is not None and len(image_metadata):
        table = _join_metadata(table, image_metadata)
    return table.reset_index(drop=True)


def _join_metadata(table: pd.DataFrame, metadata: pd.DataFrame) -> pd.DataFrame:
    id_column = next((c for c in ("isic_id", "image_id", "img_id") if c in metadata), None)
    if id_column is None:
        return table
    meta = metadata.copy()
    keys = meta[id_column].astype(str)
    numbers = {}
    for name in ("pixels_x", "pixels_y", "age_approx"):
        if name in meta:
            numbers[name] = pd.to_numeric(meta[name], errors="coerce").to_numpy(dtype=np.float64)
    frame = pd.DataFrame(numbers)
    if "pixels_x" in frame and "pixels_y" in frame:
        frame["image_megapixels"] = frame["pixels_x"] * frame["pixels_y"] / 1e6
    by_name = frame.set_axis(keys.to_numpy()).groupby(level=0).first()
    by_stem = frame.set_axis([os.path.splitext(k)[0] for k in keys]).groupby(level=0).first()
    rows = [by_name.loc[i] if i in by_name.index else by_stem.loc[s] if s in by_stem.index else None
            for i, s in zip(table["img_id"], table["image_id"], strict=True)]
    joined = pd.DataFrame([r.to_dict() if r is not None else {} for r in rows], columns=frame.columns)
    return pd.concat([table, joined.set_axis(table.index)], axis=1)


def numeric_columns(images: pd.DataFrame) -> list[str]:
    """The numeric columns of an image table the scatter can plot IAA against (not IAA itself)."""
    return [c for c in images.columns
            if c != "iaa" and pd.api.types.is_numeric_dtype(images[c]) and images[c].notna().any()]


def column_label(column: str) -> str:
    """Axis label with unit of a numeric column (the column name when unknown)."""
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    if column.startswith("mr_") and column.endswith("_mean") and is_known_metric(column):
        return f"Mean {metric_info(column).label}"
    if column in LESION_METRICS:
        return metric_info(column).label
    return column


@dataclass(frozen=True, eq=False)
class HistogramView:
    """IAA histogram per malignancy group: shared bin ``edges``, counts and image ids per bar."""

    edges: np.ndarray
    counts: dict[str, np.ndarray]
    image_ids: dict[str, tuple[tuple[str, ...], ...]]

    def bar_ids(self, group: str, bin_index: int) -> list[str]:
        """Image ids of the bar of ``group`` in bin ``bin_index``."""
        return list(self.image_ids[group][bin_index])


def histogram_edges(values: np.ndarray, bounded: bool, bin_width: float = 0.025) -> np.ndarray:
    """Bin edges: for a score at most 1 (``bounded``: Dice, NSD, kappa), bars of ``bin_width``
    from a round lower limit up to 1; for a distance, 30 bars from 0 to a round maximum."""
    finite = values[np.isfinite(values)]
    if bounded:
        low = np.floor(min(finite.min(), 0.95) / 0.05) * 0.05 if finite.size else 0.0
        n_bins = max(1, int(round((1.0 - low) / bin_width)))
        return np.linspace(low, 1.0, n_bins + 1)
    top = float(finite.max()) if finite.size else 1.0
    top = top if top > 0 else 1.0
    step = 10.0 ** np.floor(np.log10(top / 30.0))
    top = np.ceil(top / step / 30.0) * 30.0 * step  # 30 bars of a round width
    return np.linspace(0.0, top, 31)


def histogram_view(images: pd.DataFrame, bin_width: float = 0.025, *, bounded: bool = True) -> HistogramView:
    """Bars per group of the ``iaa`` column; edges from :func:`histogram_edges`."""
    iaa = images["iaa"].to_numpy(dtype=np.float64)
    edges = histogram_edges(iaa, bounded, bin_width)
    n_bins = len(edges) - 1
    counts, ids = {}, {}
    for group in GROUPS:
        chosen = images.loc[images["group"] == group]
        values = chosen["iaa"].to_numpy(dtype=np.float64)
        ok = np.isfinite(values)
        where = np.clip(np.searchsorted(edges, values[ok], side="right") - 1, 0, n_bins - 1)
        names = chosen["image_id"].to_numpy()[ok]
        ids[group] = tuple(tuple(sorted(names[where == b])) for b in range(n_bins))
        counts[group] = np.bincount(where, minlength=n_bins).astype(np.int64)
    return HistogramView(edges, counts, ids)


@dataclass(frozen=True, eq=False)
class MalignancyView:
    """IAA by malignancy: values and ids per group, the test, its caption, the histogram."""

    values: dict[str, np.ndarray]
    image_ids: dict[str, tuple[str, ...]]
    comparison: TwoGroupComparison | None
    caption: str
    histogram: HistogramView
    excluded: dict[str, int] = field(default_factory=dict)
    metric: str = "dice_score"

    @property
    def label(self) -> str:
        """Axis label of the IAA shown (metric, unit, convention)."""
        return iaa_label(self.metric)


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def malignancy_caption(comparison: TwoGroupComparison | None, n: dict[str, int]) -> str:
    """``Mann-Whitney U p = 0.0012 · Cohen's d = -0.85 · n = 20 malignant, 38 benign``."""
    sizes = f"n = {n.get('malignant', 0):,} malignant, {n.get('benign', 0):,} benign"
    if comparison is None:
        return f"No malignant vs benign test: {sizes}"
    d = comparison.cohens_d
    d_text = f"{d:.2f}".replace("-", "\u2212") if np.isfinite(d) else "n/a"
    return f"Mann-Whitney U p = {_p_text(comparison.p_mannwhitney)} · Cohen's d = {d_text} · {sizes}"


def malignancy_view(images: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0,
                    metric: str = "dice_score") -> MalignancyView:
    """IAA of malignant vs benign images with ``compare_groups`` (``a`` = malignant).

    ``metric`` names what the ``iaa`` column holds (labels and histogram range follow it).
    """
    values, ids = {}, {}
    for group in GROUPS:
        chosen = images.loc[(images["group"] == group) & images["iaa"].notna()]
        values[group] = chosen["iaa"].to_numpy(dtype=np.float64)
        ids[group] = tuple(chosen["image_id"].astype(str))
    comparison = None
    if all(len(values[g]) for g in GROUPS):
        comparison = compare_groups(values["malignant"], values["benign"], labels=("malignant", "benign"),
                                    n_boot=n_boot, seed=seed)
    others = images.loc[images["group"].isna()]
    excluded = others["benign_malignant"].fillna("unknown").astype(str).value_counts().sort_index()
    caption = malignancy_caption(comparison, {g: len(values[g]) for g in GROUPS})
    bounded = metric_info(metric).unit == "unitless" and metric_info(metric).higher_is_better
    return MalignancyView(values, ids, comparison, caption, histogram_view(images, bounded=bounded),
                          {str(k): int(v) for k, v in excluded.items()}, metric)


@dataclass(frozen=True, eq=False)
class ScatterView:
    """IAA (y) against one numeric column (x), an image id per point, Spearman's rho."""

    column: str
    x_label: str
    x: np.ndarray
    y: np.ndarray
    image_ids: tuple[str, ...]
    groups: tuple[str | None, ...]
    correlation: SpearmanResult
    caption: str
    metric: str = "dice_score"

    @property
    def y_label(self) -> str:
        return iaa_label(self.metric)


def scatter_view(images: pd.DataFrame, column: str, metric: str = "dice_score") -> ScatterView:
    """Points with both values finite; the caption gives Spearman's rho, p and n."""
    if column not in images:
        raise ValueError(f"no column {column!r} in the image table")
    x = pd.to_numeric(images[column], errors="coerce").to_numpy(dtype=np.float64)
    y = images["iaa"].to_numpy(dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    result = spearman(x[ok], y[ok])
    rho = f"{result.rho:.2f}".replace("-", "\u2212") if np.isfinite(result.rho) else "n/a"
    caption = f"Spearman \u03c1 = {rho}, p = {_p_text(result.p)}, n = {result.n:,}"
    return ScatterView(column, column_label(column), x[ok], y[ok], tuple(images["image_id"].astype(str)[ok]),
                       tuple(g if g in GROUPS else None for g in images["group"].to_numpy(dtype=object)[ok]),
                       result, caption, metric)


@dataclass(frozen=True, eq=False)
class DatasetViews:
    """Every dataset-level plot's data (see :func:`dataset_views`)."""

    images: pd.DataFrame
    malignancy: MalignancyView
    factors: dict[tuple[str, str], FactorView]
    scatters: dict[str, ScatterView]
    #: Per IAA metric other than Dice: its malignancy view and scatters (``iaa`` replaced).
    by_iaa_metric: dict[str, tuple[MalignancyView, dict[str, ScatterView]]] = field(default_factory=dict)

    @property
    def numeric_columns(self) -> list[str]:
        return list(self.scatters)

    @property
    def iaa_metrics(self) -> tuple[str, ...]:
        """The metrics the plots can show as IAA: Dice first."""
        return ("dice_score", *self.by_iaa_metric)

    def malignancy_for(self, metric: str) -> MalignancyView:
        return self.malignancy if metric == "dice_score" else self.by_iaa_metric[metric][0]

    def scatters_for(self, metric: str) -> dict[str, ScatterView]:
        return self.scatters if metric == "dice_score" else self.by_iaa_metric[metric][1]


def dataset_views(agreement, lesion_table: pd.DataFrame, image_metadata: pd.DataFrame | None = None,
                  *, n_boot: int = 1000, seed: int = 0) -> DatasetViews:
    """All plots' data: the image table, malignancy, each factor x metric, a scatter per column."""
    images = image_table(agreement, lesion_table, image_metadata)
    known = set(lesion_table["image_id"].astype(str)) if "image_id" in lesion_table else set()
    factors = {(factor, metric): view for factor in FACTORS
               for metric, view in factor_views(agreement, factor, known_ids=known).items()}
    columns = numeric_columns(images)
    scatters = {column: scatter_view(images, column) for column in columns}
    others = {}
    pairwise, chance = _pairwise(agreement), getattr(agreement, "chance", None)
    for metric in iaa_choices(agreement)[1:]:
        values = image_metric(pairwise, metric, chance)
        swapped = images.assign(iaa=values.reindex(images["img_id"].astype(str)).to_numpy(dtype=np.float64))
        others[metric] = (malignancy_view(swapped, n_boot=n_boot, seed=seed, metric=metric),
                          {column: scatter_view(swapped, column, metric) for column in columns})
    return DatasetViews(images, malignancy_view(images, n_boot=n_boot, seed=seed), factors, scatters,
                        others)
