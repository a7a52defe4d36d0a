"""The dataset browser's table: one row per lesion, its columns, sorting and filtering.

The GUI shows this frame through a Qt model; everything it needs to decide
(which rows pass the filters, in which order they are listed) is computed here
with numpy, so that sorting or filtering 15,000 rows never calls back into
Python per cell.

Columns come in stages: the index gives the lesion metadata at once
(``lesion_table_frame``); the agreement engine adds ``iaa`` and
``min_pair_dice``; QA adds ``qa_flags``; a model run adds ``predicted_iaa``
and ``p_malignant``; the review workspace adds ``review``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.tables import human_pairs
from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.display.overlay import LESION_TABLE_COLUMNS, lesion_table_frame

#: Header text of every column the browser may show, in display order.
BROWSER_COLUMNS: dict[str, str] = {
    "image_id": LESION_TABLE_COLUMNS["image_id"],
    "benign_malignant": LESION_TABLE_COLUMNS["benign_malignant"],
    "iaa": "IAA",
    "min_pair_dice": "Min pair Dice",
    "predicted_iaa": "Predicted IAA",
    "p_malignant": "P(malignant)",
    "annotators": LESION_TABLE_COLUMNS["annotators"],
    "diagnosis": LESION_TABLE_COLUMNS["diagnosis"],
    "qa_flags": "QA flags",
    "review": "Review",
    "split": LESION_TABLE_COLUMNS["split"],
    "masks": LESION_TABLE_COLUMNS["masks"],
    "annotator_ids": "Annotator ids",
}

BROWSER_TOOLTIPS: dict[str, str] = {
    "benign_malignant": "Benign or malignant, as the dataset's metadata gives it",
    "annotators": "Distinct human annotators (consensus masks not counted)",
    "masks": "Mask files, consensus masks included",
    "iaa": "Mean Dice over the human-human pairs of the lesion (consensus masks excluded)",
    "min_pair_dice": "Dice of the pair of human annotators that agree least",
    "qa_flags": "Mask QA findings of the lesion, most severe first",
    "predicted_iaa": "IAA predicted from the image by the last model run",
    "p_malignant": "Malignancy probability from the last model run",
    "review": "Review status in this workspace",
    "annotator_ids": "Human annotators of the lesion",
}

#: Review statuses in the order a reviewer meets them (``core.review`` stores them).
REVIEW_STATUSES = ("unreviewed", "consensus_acceptable", "needs_reannotation", "exclude")

_SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


def _image_id(name: str) -> str:
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in _IMAGE_SUFFIXES else name


def base_frame(dataset: Dataset) -> pd.DataFrame:
    """The columns known from the index alone, plus the lesion's annotator ids, tools and skills.

    ``tools`` and ``skills`` are kept for filtering; the browser does not show them.
    """
    frame = lesion_table_frame(dataset)
    humans = [lesion.human_segmentations for lesion in dataset]
    frame["annotator_ids"] = [", ".join(sorted({s.annotator for s in segs})) for segs in humans]
    frame["tools"] = [", ".join(sorted({s.tool for s in segs if s.tool})) for segs in humans]
    frame["skills"] = [", ".join(sorted({s.skill for s in segs if s.skill})) for segs in humans]
    return frame


def agreement_columns(pairwise: pd.DataFrame) -> pd.DataFrame:
    """``iaa`` (mean human-human Dice) and ``min_pair_dice`` per image id from a pairwise table."""
    if pairwise is None or len(pairwise) == 0:
        return pd.DataFrame({"iaa": [], "min_pair_dice": []}, index=pd.Index([], name="image_id"))
    humans = human_pairs(pairwise)
    ids = humans["img_id"].astype(str).map(_image_id)
    dice = pd.to_numeric(humans["dice_score"], errors="coerce")
    grouped = dice.groupby(ids.to_numpy(), sort=False)
    out = pd.DataFrame({"iaa": grouped.mean(), "min_pair_dice": grouped.min()})
    out.index.name = "image_id"
    return out


def qa_flag_column(qa_table: pd.DataFrame | None) -> pd.Series:
    """Per image id, its QA finding kinds (most severe first, each once), e.g. ``"empty_mask, border"``."""
    if qa_table is None or len(qa_table) == 0:
        return pd.Series([], dtype=object, name="qa_flags")
    table = qa_table[qa_table["image_id"].astype(str) != ""]
    rank = table["severity"].map(_SEVERITY_RANK).fillna(3)
    ordered = table.assign(_rank=rank).sort_values(["image_id", "_rank", "kind"], kind="stable")
    flags = ordered.groupby("image_id", sort=False)["kind"].agg(lambda kinds: ", ".join(dict.fromkeys(kinds)))
    flags.name = "qa_flags"
    return flags


def _text(values: pd.Series, missing: str) -> pd.Series:
    """``values`` as strings, ``missing`` where there is none (whatever dtype ``map`` gave)."""
    values = values.astype(object)
    return values.where(values.notna(), missing).astype(str)


@dataclass(frozen=True)
class BrowserData:
    """What is known about the lesions so far; ``frame()`` merges it into one table."""

    base: pd.DataFrame
    agreement: pd.DataFrame | None = None
    qa_flags: pd.Series | None = None
    predictions: pd.DataFrame | None = None
    reviews: Mapping[str, str] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """The browser table: the base columns, then every column known so far (NaN/"" where unknown)."""
        frame = self.base.copy()
        ids = frame["image_id"].astype(str)
        if self.agreement is not None:
            for column in ("iaa", "min_pair_dice"):
                frame[column] = ids.map(self.agreement[column]).astype(float)
        if self.qa_flags is not None:
            frame["qa_flags"] = _text(ids.map(self.qa_flags), "")
        if self.predictions is not None:
            for column in ("predicted_iaa", "p_malignant"):
                if column in self.predictions:
                    frame[column] = ids.map(self.predictions[column]).astype(float)
        if self.reviews:
            frame["review"] = _text(ids.map(dict(self.reviews)), "unreviewed")
        visible = [c for c in BROWSER_COLUMNS if c in frame and c != "annotator_ids"]
        return frame[visible + ["annotator_ids", "tools", "skills"]]


def sort_order(frame: pd.DataFrame, column: str, descending: bool = False) -> np.ndarray:
    """Row positions of ``frame`` sorted by ``column``; stable, missing values always last."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(numbers)
        key = np.where(missing, 0.0, -numbers if descending else numbers)
        return np.lexsort((key, missing))  # last key is primary: present first
    text = values.astype(object).where(values.notna(), "").astype(str)
    missing = (text == "").to_numpy()
    codes, uniques = pd.factorize(text.str.lower(), sort=True)
    key = (len(uniques) - 1 - codes) if descending else codes
    return np.lexsort((key, missing))


@dataclass(frozen=True)
class BrowserFilter:
    """The browser's filters; empty fields filter nothing.

    ``malignancy``: "benign", "malignant" or "unknown". ``annotator``, ``tool``,
    ``skill``: the lesion has a human mask with it. ``iaa_min``/``iaa_max``:
    lesions without an IAA are left out once a range narrower than [0, 1] is set.
    ``image_ids``: a selection made elsewhere (an agreement plot).
    """

    text: str = ""
    malignancy: str = ""
    annotator: str = ""
    tool: str = ""
    skill: str = ""
    iaa_min: float = 0.0
    iaa_max: float = 1.0
    review: str = ""
    image_ids: frozenset[str] | None = None

    def is_empty(self) -> bool:
        return self == BrowserFilter()


def _has_item(column: pd.Series, item: str) -> np.ndarray:
    items = column.astype(str).str.split(", ")
    return items.map(lambda values: item in values).to_numpy(dtype=bool)


def filter_mask(frame: pd.DataFrame, spec: BrowserFilter) -> np.ndarray:
    """Which rows of ``frame`` pass ``spec`` (a boolean array)."""
    keep = np.ones(len(frame), dtype=bool)
    if spec.text.strip():
        needle = spec.text.strip().lower()
        text = frame.astype(str).apply(lambda col: col.str.lower().str.contains(needle, regex=False))
        keep &= text.any(axis=1).to_numpy()
    if spec.malignancy:
        bm = frame["benign_malignant"].fillna("").astype(str).str.lower()
        if spec.malignancy == "unknown":
            keep &= ~bm.isin(["benign", "malignant"]).to_numpy()
        else:
            keep &= bm.str.startswith(spec.malignancy).to_numpy() | (bm == f"indeterminate/{spec.malignancy}")
    for column, value in (("annotator_ids", spec.annotator), ("tools", spec.tool), ("skills", spec.skill)):
        if value:
            keep &= _has_item(frame[column], value)
    if (spec.iaa_min > 0.0 or spec.iaa_max < 1.0) and "iaa" in frame:
        iaa = frame["iaa"].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            keep &= (iaa >= spec.iaa_min) & (iaa <= spec.iaa_max)
    if spec.review and "review" in frame:
        keep &= (frame["review"].astype(str) == spec.review).to_numpy()
    if spec.image_ids is not None:
        keep &= frame["image_id"].astype(str).isin(spec.image_ids).to_numpy()
    return keep


def filter_choices(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The values each filter combo offers: annotators, tools, skills present in ``frame``."""
    def items(column: str) -> list[str]:
        values = {v for cell in frame[column].astype(str) for v in cell.split(", ") if v}
        return sorted(values)

    return {"annotator": items("annotator_ids"), "tool": items("tools"), "skill": items("skills")}


def lowest_iaa_image(frame: pd.DataFrame) -> str | None:
    """The image id with the lowest IAA (``None`` when no lesion has one)."""
    if "iaa" not in frame or frame["iaa"].isna().all():
        return None
    return str(frame.loc[frame["iaa"].idxmin(), "image_id"])
