"""Which layout a directory holds, and loading it."""

from __future__ import annotations

from pathlib import Path

from iaa_desktop.core.dataset.io.derm7pt import load_derm7pt, looks_like_derm7pt
from iaa_desktop.core.dataset.io.folder import load_folder, looks_like_folder_layout
from iaa_desktop.core.dataset.io.imapp import load_imapp, looks_like_imapp
from iaa_desktop.core.dataset.io.isic2018 import load_isic2018, looks_like_isic2018
from iaa_desktop.core.dataset.io.isic2019 import load_isic2019, looks_like_isic2019
from iaa_desktop.core.dataset.io.ph2 import load_ph2, looks_like_ph2
from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.errors import DatasetFormatError, DatasetReadError

LAYOUTS = ("imapp", "folder", "isic2018", "isic2019", "derm7pt", "ph2")
#: The single-annotator diagnosis datasets (no IAA: at most one mask per image).
DIAGNOSIS_LAYOUTS = ("isic2018", "isic2019", "derm7pt", "ph2")

_NEITHER = (
    "{root}: not a dataset IAA Desktop can read. Expected either\n"
    "  - the IMA++ release layout: IMAplusplus_seg_metadata.csv (and\n"
    "    IMAplusplus_img_metadata.csv) with the masks and images in folders below, or\n"
    "  - the folder layout: images/<id>.<ext> and masks/<annotator>/<id>.png,\n"
    "    with an optional metadata.csv.\n"
    "  Diagnosis datasets as downloaded are read too: ISIC 2018 Task 3\n"
    "  (ISIC2018_Task3_*_GroundTruth.csv), ISIC 2019 (ISIC_2019_Training_GroundTruth.csv),\n"
    "  derm7pt (meta/meta.csv) and PH2 (PH2_dataset.txt, 'PH2 Dataset images/')."
)

_DETECTORS = (("isic2018", looks_like_isic2018), ("isic2019", looks_like_isic2019),
              ("derm7pt", looks_like_derm7pt), ("ph2", looks_like_ph2))


def detect_layout(root: Path) -> str:
    """One of ``LAYOUTS``; raises ``DatasetFormatError`` when none fits."""
    root = Path(root)
    if not root.exists():
        raise DatasetReadError(f"{root}: no such directory")
    if not root.is_dir():
        raise DatasetReadError(f"{root}: not a directory")
    if looks_like_folder_layout(root):
        return "folder"
    if looks_like_imapp(root):
        return "imapp"
    for layout, looks_like in _DETECTORS:
        if looks_like(root):
            return layout
    raise DatasetFormatError(_NEITHER.format(root=root))


def load_dataset(root: Path, layout: str | None = None, **options) -> Dataset:
    """Index the dataset at ``root`` (layout detected unless given).

    ``options`` go to the layout's loader (``masks_dir``/``images_dir`` for IMA++,
    ``modality="clinic"`` for derm7pt's clinical images, ``split_seed`` for ISIC).
    """
    layout = layout or detect_layout(root)
    if layout == "imapp":
        return load_imapp(Path(root), **options)
    if layout == "folder":
        return load_folder(Path(root))
    loaders = {"isic2018": load_isic2018, "isic2019": load_isic2019, "derm7pt": load_derm7pt, "ph2": load_ph2}
    if layout in loaders:
        return loaders[layout](Path(root), **options)
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
