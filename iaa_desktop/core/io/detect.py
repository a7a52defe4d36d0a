"""Which layout a directory holds, and loading it."""

from __future__ import annotations

from pathlib import Path

from iaa_desktop.core.errors import DatasetFormatError, DatasetReadError
from iaa_desktop.core.io.folder import load_folder, looks_like_folder_layout
from iaa_desktop.core.io.imapp import load_imapp, looks_like_imapp
from iaa_desktop.core.model import Dataset

LAYOUTS = ("imapp", "folder")

_NEITHER = (
    "{root}: not a dataset IAA Desktop can read. Expected either\n"
    "  - the IMA++ release layout: IMAplusplus_seg_metadata.csv (and\n"
    "    IMAplusplus_img_metadata.csv) with the masks and images in folders below, or\n"
    "  - the folder layout: images/<id>.<ext> and masks/<annotator>/<id>.png,\n"
    "    with an optional metadata.csv."
)


def detect_layout(root: Path) -> str:
    """``"imapp"`` or ``"folder"``; raises ``DatasetFormatError`` when neither fits."""
    root = Path(root)
    if not root.exists():
        raise DatasetReadError(f"{root}: no such directory")
    if not root.is_dir():
        raise DatasetReadError(f"{root}: not a directory")
    if looks_like_folder_layout(root):
        return "folder"
    if looks_like_imapp(root):
        return "imapp"
    raise DatasetFormatError(_NEITHER.format(root=root))


def load_dataset(root: Path, layout: str | None = None, **options) -> Dataset:
    """Index the dataset at ``root`` (layout detected unless given).

    ``options`` go to the layout's loader (``masks_dir``/``images_dir`` for IMA++).
    """
    layout = layout or detect_layout(root)
    if layout == "imapp":
        return load_imapp(Path(root), **options)
    if layout == "folder":
        return load_folder(Path(root))
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
