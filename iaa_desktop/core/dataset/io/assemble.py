"""Turning metadata rows, an image index and segmentations into ``Lesion`` objects.

Shared by both loaders so that labels, sizes and problems mean the same thing
whatever the layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from iaa_desktop.core.dataset.io.tables import clean, first_present, to_int
from iaa_desktop.core.dataset.labels import normalise_benign_malignant
from iaa_desktop.core.dataset.model import Lesion, Problem, Segmentation, make_problem

ID_COLUMNS = ("image_id", "isic_id", "img_id", "ISIC_id", "id")
#: Most specific first: ISIC's diagnosis_1 is only Benign/Malignant/Indeterminate.
DIAGNOSIS_COLUMNS = ("diagnosis", "diagnosis_5", "diagnosis_4", "diagnosis_3", "diagnosis_2", "diagnosis_1")
WIDTH_COLUMNS = ("pixels_x", "width")
HEIGHT_COLUMNS = ("pixels_y", "height")


class MetadataIndex:
    """Rows of an image-metadata table looked up by image id, cleaned on access."""

    def __init__(self, frame: pd.DataFrame | None, source: Path | None) -> None:
        self.source = source
        self._rows: dict[str, dict[str, object]] = {}
        self._lower: dict[str, str] = {}
        self.duplicates: list[str] = []
        if frame is None:
            return
        id_column = first_present(frame, ID_COLUMNS)
        if id_column is None:
            return
        columns = [str(c) for c in frame.columns]
        # A plain object array iterates far faster than pandas' string arrays.
        for values in frame.to_numpy(dtype=object):
            row = {c: v for c, v in zip(columns, values, strict=True) if clean(v) is not None}
            image_id = clean(row.pop(id_column, None))
            if image_id is None:
                continue
            image_id = image_id.rsplit(".", 1)[0] if image_id.lower().endswith((".jpg", ".png")) else image_id
            if image_id in self._rows:
                self.duplicates.append(image_id)
                continue
            self._rows[image_id] = row
            self._lower.setdefault(image_id.lower(), image_id)

    def ids(self) -> list[str]:
        return list(self._rows)

    def get(self, image_id: str) -> dict[str, object] | None:
        return self._rows.get(image_id)

    def get_any_case(self, image_id: str) -> dict[str, object] | None:
        """The row of ``image_id``, else of an id that differs from it only in case."""
        row = self._rows.get(image_id)
        if row is None:
            original = self._lower.get(image_id.lower())
            row = self._rows.get(original) if original else None
        return row

    def __contains__(self, image_id: str) -> bool:
        return image_id in self._rows


def build_lesion(
    image_id: str,
    row: Mapping[str, object] | None,
    image_path: Path | None,
    segmentations: Sequence[Segmentation],
    problems: list[Problem],
    metadata_source: Path | None,
) -> Lesion:
    """One ``Lesion``; unrecognised labels are appended to ``problems``."""
    row = dict(row or {})
    label, recognised = normalise_benign_malignant(clean(row.pop("benign_malignant", None)))
    if not recognised:
        problems.append(
            make_problem(
                "unknown_label",
                f"{metadata_source}: image {image_id} has an unknown benign/malignant label "
                "(taken as unknown)",
                metadata_source or "",
                image_id,
            )
        )
    # Rows hold non-empty values only, so the first present column has a value.
    diagnosis = clean(next((row[c] for c in DIAGNOSIS_COLUMNS if c in row), None))
    split = clean(row.pop("split", None))
    width = to_int(next((row[c] for c in WIDTH_COLUMNS if c in row), None))
    height = to_int(next((row[c] for c in HEIGHT_COLUMNS if c in row), None))
    return Lesion(
        image_id=image_id,
        image_path=image_path,
        segmentations=tuple(segmentations),
        diagnosis=diagnosis,
        benign_malignant=label,
        split=split.lower() if split else None,
        width=width,
        height=height,
        metadata=row,
    )
