"""The agreement analysis of a dataset: malignant vs benign IAA, factors, annotators, correlates.

:func:`run_analysis` takes a pairwise table (IMA++ schema, see
:mod:`iaa_desktop.core.agreement.tables`) and an image-metadata table (the
IMA++ ``IMAplusplus_img_metadata.csv`` with ``isic_id``, ``benign_malignant``,
``pixels_x``, ``pixels_y``, ``age_approx``; or the table
:func:`image_metadata_from_dataset` builds from loaded lesions) and returns an
:class:`AnalysisResult`. The IAA of an image is ``dice_score_mean`` of
:func:`~iaa_desktop.core.agreement.tables.image_level_table` (mean Dice over
its human-human pairs). Pairwise ``img_id`` (``ISIC_x.JPG``) is joined to the
metadata id (``ISIC_x``) exactly or without its extension.

Malignant vs benign: labels other than ``benign`` and ``malignant`` are
excluded and counted (``indeterminate``, ``indeterminate/benign``, ...,
unknown). With ``include_indeterminate=True`` the ``indeterminate/benign`` and
``indeterminate/malignant`` lesions join the benign and malignant groups; plain
``indeterminate`` and unknown labels are still excluded.

:func:`~iaa_desktop.core.statistics.analysis_output.stats_json` and
:func:`~iaa_desktop.core.statistics.analysis_output.write_analysis_tables` turn the result
into ``stats.json`` and CSV tables.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.tables import (
    FACTORS,
    PairwiseTableError,
    factor_table,
    human_pairs,
    image_level_table,
    intra_inter_table,
)
from iaa_desktop.core.dataset.images import read_header_size
from iaa_desktop.core.dataset.labels import normalise_benign_malignant
from iaa_desktop.core.dataset.model import CONSENSUS_ANNOTATORS, Dataset
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.statistics.factors import (
    factor_matrices,
    per_annotator_table,
)
from iaa_desktop.core.statistics.stats import (
    SpearmanResult,
    TwoGroupComparison,
    compare_groups,
    spearman,
)

#: Columns of :attr:`AnalysisResult.images`.
IMAGE_COLUMNS = ("img_id", "image_id", "iaa", "hd95_normalized_mean", "benign_malignant", "group",
                 "n_human_masks", "n_annotators", "image_pixels", "age_approx")

#: Numeric image variables correlated with the IAA (Spearman).
CORRELATES = ("image_pixels", "n_human_masks", "n_annotators", "age_approx")

_ID_COLUMNS = ("isic_id", "image_id", "img_id", "ISIC_id", "id")
_INDETERMINATE_GROUPS = {"indeterminate/benign": "benign", "indeterminate/malignant": "malignant"}


class AnalysisError(IAAError):
    """The inputs of the analysis cannot be used (no pairs, no id column, ...)."""


@dataclass(frozen=True)
class AnalysisResult:
    """Everything :func:`run_analysis` computes; tables are pandas DataFrames.

    Attributes
    ----------
    pairwise
        The input pairwise table (human and consensus pairs).
    image_level
        The IMA++ image-level table of ``pairwise``.
    images
        One row per image with an IAA, columns :data:`IMAGE_COLUMNS`: ``group``
        is ``"malignant"``, ``"benign"`` or missing (excluded).
    malignancy
        IAA of malignant (``a``) vs benign (``b``) images.
    excluded
        Label -> number of images with an IAA left out of ``malignancy``.
    intra_inter
        Factor -> Dice of same-level (``a``) vs different-level (``b``) human pairs.
    intra_inter_tables
        Factor -> :func:`~iaa_desktop.core.agreement.tables.intra_inter_table`.
    per_annotator
        Columns :data:`PER_ANNOTATOR_COLUMNS`, one row per human annotator.
    correlations
        Variable of :data:`CORRELATES` -> Spearman correlation with the IAA.
    factor_tables
        Factor -> :func:`~iaa_desktop.core.agreement.tables.factor_table` with consensus pairs.
    matrices
        Factor -> name of :data:`MATRIX_METRICS` -> square DataFrame (index and
        columns the levels, humans sorted then ``ST``, ``MV``), lower triangle
        filled, NaN (``<NA>`` for counts) above the diagonal.
    parameters
        ``include_indeterminate``, ``seed``, ``n_boot``.

    The properties ``iaa_malignant``, ``iaa_benign``, ``malignancy_annotation``
    and ``factor_matrices`` are what
    :func:`iaa_desktop.core.figures.write_report_figures` draws.
    """

    pairwise: pd.DataFrame
    image_level: pd.DataFrame
    images: pd.DataFrame
    malignancy: TwoGroupComparison
    excluded: dict[str, int]
    intra_inter: dict[str, TwoGroupComparison]
    intra_inter_tables: dict[str, pd.DataFrame]
    per_annotator: pd.DataFrame
    correlations: dict[str, SpearmanResult]
    factor_tables: dict[str, pd.DataFrame]
    matrices: dict[str, dict[str, pd.DataFrame]]
    parameters: dict[str, object] = field(default_factory=dict)
    #: Image ids left out because a reviewer marked them ``exclude`` (see ``run_analysis``).
    review_excluded: tuple[str, ...] = ()

    @property
    def iaa_malignant(self) -> np.ndarray:
        """IAA of the images in the malignant group."""
        return self.images.loc[self.images["group"] == "malignant", "iaa"].to_numpy(dtype=np.float64)

    @property
    def iaa_benign(self) -> np.ndarray:
        """IAA of the images in the benign group."""
        return self.images.loc[self.images["group"] == "benign", "iaa"].to_numpy(dtype=np.float64)

    @property
    def malignancy_annotation(self) -> str:
        """The malignant vs benign test in one line, for figures."""
        c = self.malignancy
        return (f"Mann-Whitney U p = {c.p_mannwhitney:.2g}, Cohen's d = {c.cohens_d:.2f}, "
                f"AUC = {c.auc:.2f}")

    @property
    def factor_matrices(self) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, str]]:
        """Figure name -> (lower-triangular matrix, pair counts, colour-bar label).

        ``<factor>`` holds the mean Dice and ``<factor>_hd95`` the mean
        normalized HD95; counts are missing where a cell has no pair.
        """
        entries = {}
        for factor, by_name in self.matrices.items():
            counts = by_name["n_pairs"].mask(by_name["n_pairs"] == 0)
            entries[factor] = (by_name["dice_score_mean"], counts, "Mean Dice (unitless)")
            entries[f"{factor}_hd95"] = (by_name["hd95_score_normalized_mean"], counts,
                                         "Mean HD95 / image diagonal (unitless)")
        return entries

    @property
    def n_human_pairs(self) -> int:
        return int((~self.pairwise["annotator1"].isin(CONSENSUS_ANNOTATORS)
                    & ~self.pairwise["annotator2"].isin(CONSENSUS_ANNOTATORS)).sum())


def _strings(column: pd.Series) -> np.ndarray:
    return column.astype("string").to_numpy(dtype=object, na_value=None)


def _numbers(column: pd.Series | None, n: int) -> np.ndarray:
    if column is None:
        return np.full(n, np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def image_metadata_from_dataset(dataset: Dataset) -> pd.DataFrame:
    """The image-metadata table of loaded lesions: what :func:`run_analysis` needs.

    Columns ``isic_id`` (the pairwise ``img_id`` of the lesion: its image file
    name), ``benign_malignant``, ``pixels_x``, ``pixels_y`` (from metadata, else
    read from the image header, else NaN) and ``age_approx`` (from the lesion's metadata, else NaN).
    """
    rows = []
    for lesion in dataset:
        name = lesion.image_path.name if lesion.image_path else f"{lesion.image_id}.JPG"
        width, height = lesion.width, lesion.height
        if (width is None or height is None) and lesion.image_path is not None:
            # An unreadable image: size unknown, the image-size correlation skips it.
            with contextlib.suppress(IAAError):
                height, width = read_header_size(lesion.image_path)
        rows.append({
            "isic_id": name,
            "benign_malignant": lesion.benign_malignant,
            "pixels_x": width,
            "pixels_y": height,
            "age_approx": lesion.metadata.get("age_approx", lesion.metadata.get("age")),
        })
    frame = pd.DataFrame(rows, columns=["isic_id", "benign_malignant", "pixels_x", "pixels_y", "age_approx"])
    for name in ("pixels_x", "pixels_y", "age_approx"):
        frame[name] = _numbers(frame[name], len(frame))
    frame["isic_id"] = frame["isic_id"].astype("str")
    return frame


def _metadata_rows(image_ids: Iterable[str], metadata: pd.DataFrame) -> np.ndarray:
    """Row position in ``metadata`` of each pairwise image id (-1 when absent)."""
    id_column = next((c for c in _ID_COLUMNS if c in metadata.columns), None)
    if id_column is None:
        raise AnalysisError(f"image metadata has no id column (one of {', '.join(_ID_COLUMNS)})")
    position: dict[str, int] = {}
    for i, key in enumerate(_strings(metadata[id_column])):
        if key is not None:
            position.setdefault(key.strip(), i)
    rows = []
    for image_id in image_ids:
        hit = position.get(image_id)
        if hit is None:
            hit = position.get(os.path.splitext(image_id)[0], -1)
        rows.append(hit)
    return np.asarray(rows, dtype=np.int64)


def _take(metadata: pd.DataFrame, name: str, rows: np.ndarray) -> pd.Series | None:
    if name not in metadata.columns:
        return None
    values = metadata[name].reset_index(drop=True).reindex(np.where(rows >= 0, rows, -1))
    return values.reset_index(drop=True)


def _images_table(
    image_level: pd.DataFrame, humans: pd.DataFrame, metadata: pd.DataFrame, include_indeterminate: bool
) -> tuple[pd.DataFrame, dict[str, int]]:
    img_ids = _strings(image_level["img_id"])
    rows = _metadata_rows(img_ids, metadata)
    n = len(img_ids)
    labels = []
    raw = _take(metadata, "benign_malignant", rows)
    raw_values = _strings(raw) if raw is not None else [None] * n
    for row, value in zip(rows, raw_values, strict=True):
        label, recognised = normalise_benign_malignant(value)
        labels.append("not in metadata" if row < 0 else (label if recognised and label else "unknown"))
    groups = []
    for label in labels:
        group = label if label in ("benign", "malignant") else None
        if include_indeterminate and group is None:
            group = _INDETERMINATE_GROUPS.get(label)
        groups.append(group)
    excluded: dict[str, int] = {}
    for label, group in zip(labels, groups, strict=True):
        if group is None:
            excluded[label] = excluded.get(label, 0) + 1
    masks = pd.concat([
        humans[["img_id", "mask1", "annotator1"]].set_axis(["img_id", "mask", "annotator"], axis=1),
        humans[["img_id", "mask2", "annotator2"]].set_axis(["img_id", "mask", "annotator"], axis=1),
    ])
    n_masks = masks.drop_duplicates(["img_id", "mask"]).groupby("img_id").size()
    n_annotators = masks.drop_duplicates(["img_id", "annotator"]).groupby("img_id").size()
    # The image-level table leaves out the normalized HD95; mean over the human pairs here.
    hd95 = humans.groupby("img_id")["hd95_score_normalized"].mean()
    pixels = _numbers(_take(metadata, "pixels_x", rows), n) * _numbers(_take(metadata, "pixels_y", rows), n)
    age = _take(metadata, "age_approx", rows)
    if age is None:
        age = _take(metadata, "age", rows)
    table = pd.DataFrame({
        "img_id": pd.Series(img_ids, dtype="str"),
        "image_id": pd.Series([os.path.splitext(i)[0] for i in img_ids], dtype="str"),
        "iaa": image_level["dice_score_mean"].to_numpy(dtype=np.float64),
        "hd95_normalized_mean": hd95.reindex(img_ids).to_numpy(dtype=np.float64),
        "benign_malignant": pd.Series(labels, dtype="str"),
        "group": pd.Series(groups, dtype="str"),
        "n_human_masks": n_masks.reindex(img_ids).to_numpy(dtype=np.int64),
        "n_annotators": n_annotators.reindex(img_ids).to_numpy(dtype=np.int64),
        "image_pixels": pixels,
        "age_approx": _numbers(age, n),
    }, columns=list(IMAGE_COLUMNS))
    return table, dict(sorted(excluded.items()))


def _level_pairs_dice(humans: pd.DataFrame, factor: str) -> tuple[np.ndarray, np.ndarray]:
    """Dice of human pairs with the same level of ``factor`` and with different levels."""
    a = _strings(humans[f"{factor}1"])
    b = _strings(humans[f"{factor}2"])
    known = np.array([x is not None and y is not None for x, y in zip(a, b, strict=True)], dtype=bool)
    same = np.array([x == y for x, y in zip(a, b, strict=True)], dtype=bool)
    dice = humans["dice_score"].to_numpy(dtype=np.float64, na_value=np.nan)
    return dice[known & same], dice[known & ~same]


def run_analysis(
    pairwise: pd.DataFrame,
    image_metadata: pd.DataFrame,
    *,
    include_indeterminate: bool = False,
    seed: int = 0,
    n_boot: int = 10_000,
    excluded_ids: Iterable[str] = (),
) -> AnalysisResult:
    """The full agreement analysis of a pairwise table (see the module docstring).

    Parameters
    ----------
    pairwise
        Pairwise metrics in the IMA++ schema (human and consensus pairs).
    image_metadata
        One row per image: an id column (``isic_id``, or ``image_id``/``img_id``),
        ``benign_malignant`` and optionally ``pixels_x``, ``pixels_y``, ``age_approx``.
    include_indeterminate
        Count ``indeterminate/benign`` as benign and ``indeterminate/malignant``
        as malignant (default: exclude them, as every non-benign/malignant label).
    seed, n_boot
        Seed and resamples of the bootstrap CIs.
    excluded_ids
        Image ids (with or without the file extension) to leave out entirely,
        e.g. the lesions reviewers marked ``exclude``; the ones found are listed
        in ``review_excluded`` (and ``excluded_by_review`` of :func:`stats_json`).

    Raises
    ------
    AnalysisError
        When there is no human-human pair or the metadata has no id column.
    PairwiseTableError
        When the pairwise table lacks columns.
    """
    pairwise, review_excluded = _drop_excluded(pairwise, excluded_ids)
    image_level = image_level_table(pairwise)
    if image_level.empty:
        raise AnalysisError("pairwise table has no human-human pair: no image has an IAA")
    humans = human_pairs(pairwise)
    images, excluded = _images_table(image_level, humans, image_metadata, include_indeterminate)
    malignancy = compare_groups(
        images.loc[images["group"] == "malignant", "iaa"], images.loc[images["group"] == "benign", "iaa"],
        labels=("malignant", "benign"), n_boot=n_boot, seed=seed)
    intra_inter = {}
    for factor in FACTORS:
        intra, inter = _level_pairs_dice(humans, factor)
        intra_inter[factor] = compare_groups(intra, inter, labels=("intra", "inter"),
                                             n_boot=n_boot, seed=seed)
    tables = {factor: factor_table(pairwise, factor, include_consensus=True) for factor in FACTORS}
    return AnalysisResult(
        pairwise=pairwise,
        image_level=image_level,
        images=images,
        malignancy=malignancy,
        excluded=excluded,
        intra_inter=intra_inter,
        intra_inter_tables={factor: intra_inter_table(pairwise, factor) for factor in FACTORS},
        per_annotator=per_annotator_table(pairwise),
        correlations={name: spearman(images["iaa"], images[name].to_numpy(dtype=np.float64))
                      for name in CORRELATES},
        factor_tables=tables,
        matrices={factor: factor_matrices(table) for factor, table in tables.items()},
        parameters={"include_indeterminate": bool(include_indeterminate), "seed": int(seed),
                    "n_boot": int(n_boot)},
        review_excluded=review_excluded,
    )


def _drop_excluded(pairwise: pd.DataFrame,
                   excluded_ids: Iterable[str]) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``pairwise`` without the rows of excluded images, and the excluded ids that had rows."""
    excluded = {str(i) for i in excluded_ids}
    if not excluded or pairwise.empty:
        return pairwise, ()
    img_ids = pairwise["img_id"].astype(str)
    stems = img_ids.map(lambda name: os.path.splitext(name)[0])
    drop = img_ids.isin(excluded) | stems.isin(excluded)
    found = tuple(sorted(set(stems[drop])))
    return pairwise.loc[~drop].reset_index(drop=True), found


__all__ = [
    "AnalysisError",
    "AnalysisResult",
    "PairwiseTableError",
    "image_metadata_from_dataset",
    "run_analysis",
]
