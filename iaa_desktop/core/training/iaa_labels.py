"""IAA labels for a training set: from an IMA++ table on disk, or computed from the dataset's masks."""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from iaa_desktop.core.dataset.model import Dataset, Lesion
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


class TrainingSetError(IAAError):
    """A training set cannot be written, or a file is not a training set we can read."""


def _strip_suffix(name: str) -> str:
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in _IMAGE_SUFFIXES else name


def iaa_series_from_image_level(image_level: pd.DataFrame) -> pd.Series:
    """``img_id`` ("ISIC_x.JPG") -> ``dice_score_mean`` as a Series indexed by image id ("ISIC_x")."""
    ids = image_level["img_id"].astype(str).str.strip().map(_strip_suffix)
    values = pd.to_numeric(image_level["dice_score_mean"], errors="coerce").to_numpy(dtype=float)
    return pd.Series(values, index=pd.Index(ids, name="image_id"), name="iaa")


def read_iaa_table(path: str | Path) -> pd.Series:
    """IAA per image id from a published table: IMA++ pairwise CSV or image-level CSV.

    Which one it is is told by the columns: an image-level table has ``img_id``
    and ``dice_score_mean``; a pairwise table has ``mask1``/``mask2`` and is
    summarised with :func:`~iaa_desktop.core.agreement.tables.image_level_table`.
    """
    from iaa_desktop.core.agreement.table_io import read_pairwise_csv
    from iaa_desktop.core.agreement.tables import image_level_table

    path = Path(path)
    if not path.is_file():
        raise TrainingSetError(f"{path}: IAA table does not exist")
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns.str.strip()
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TrainingSetError(f"{path}: cannot read the IAA table ({exc})") from None
    if {"img_id", "dice_score_mean"} <= set(header):
        table = pd.read_csv(path, encoding="utf-8-sig", dtype={"img_id": str})
        table.columns = table.columns.str.strip()
        return iaa_series_from_image_level(table)
    if {"img_id", "mask1", "mask2", "dice_score"} <= set(header):
        return iaa_series_from_image_level(image_level_table(read_pairwise_csv(path)))
    raise TrainingSetError(
        f"{path}: not an IMA++ pairwise table (img_id, mask1, mask2, dice_score, ...) nor an image-level "
        "table (img_id, dice_score_mean)")


def _lookup_iaa(iaa: pd.Series, lesions: Sequence[Lesion]) -> np.ndarray:
    table = iaa.copy()
    table.index = [_strip_suffix(str(i).strip()) for i in table.index]
    table = table[~table.index.duplicated()]
    values = table.reindex([lesion.image_id for lesion in lesions]).to_numpy(dtype=float)
    return values.astype(np.float32)


def _iter_dataset_iaa(dataset: Dataset, lesions: Sequence[Lesion], workers: int | None,
                      cache) -> Generator[Progress, None, np.ndarray]:
    from iaa_desktop.core.agreement.engine import iter_dataset_agreement
    from iaa_desktop.core.agreement.tables import image_level_table

    measurable = tuple(lesion for lesion in lesions if len(lesion.human_segmentations) >= 2)
    if not measurable:
        return np.full(len(lesions), np.nan, dtype=np.float32)
    options = {} if cache == "default" else {"cache": cache}
    job = iter_dataset_agreement(replace(dataset, lesions=measurable), workers=workers, **options)
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            result = stop.value
            break
        yield Progress(step.done, step.total, f"agreement {step.message}")
    if result.pairwise.empty:
        return np.full(len(lesions), np.nan, dtype=np.float32)
    return _lookup_iaa(iaa_series_from_image_level(image_level_table(result.pairwise)), lesions)
