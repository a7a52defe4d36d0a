"""Loader for the ISIC 2019 Challenge (Task 1, lesion diagnosis) release.

Format, as the challenge documents it (https://challenge.isic-archive.com/data/#2019,
"ISIC 2019: Training"; data from BCN_20000, HAM10000 and MSK): images
``ISIC_<id>.jpg`` (some ``ISIC_<id>_downsampled.jpg``), the ground truth
``ISIC_2019_Training_GroundTruth.csv`` with the columns
``image, MEL, NV, BCC, AK, BKL, DF, VASC, SCC, UNK`` (1.0 in the column of the
diagnosis, 0.0 elsewhere) and the metadata ``ISIC_2019_Training_Metadata.csv``
with ``image, age_approx, anatom_site_general, lesion_id, sex``::

    ISIC_2019_Training_Input/ISIC_0000000.jpg ...
    ISIC_2019_Training_GroundTruth.csv
    ISIC_2019_Training_Metadata.csv
    ISIC_2019_Test_Input/ ...  ISIC_2019_Test_GroundTruth.csv  ISIC_2019_Test_Metadata.csv   (optional)

The training part has no official split: unless the test part's ground truth is
there too (then ``train``/``test``, with a seeded stratified eighth of training as
``val``), the images get a seeded 70/10/20 split (``split_seed``) stratified by
the label that keeps the images of one lesion (``lesion_id``: ISIC 2019 holds
several images of many lesions) in the same split, so no lesion is both trained
and tested on. Labels as for ISIC 2018: ``diagnosis`` is the class code,
``benign_malignant`` is melanoma (``MEL``) vs not; rows with several classes or
none are problems. The metadata's columns are kept in ``Lesion.metadata``.
"""

from __future__ import annotations

import re
from pathlib import Path

from iaa_desktop.core.dataset.io.isic2018 import find_named, load_one_hot_parts, read_keyed_csv
from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.errors import DatasetFormatError

CLASSES = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
_GROUND_TRUTH = re.compile(r"^ISIC_2019_(Training|Test)_GroundTruth\.csv$", re.IGNORECASE)
_METADATA = re.compile(r"^ISIC_2019_(Training|Test)_Metadata\.csv$", re.IGNORECASE)
PARTS = {"training": "train", "test": "test"}


def looks_like_isic2019(root: Path) -> bool:
    return "training" in find_named(Path(root), _GROUND_TRUTH)


def load_isic2019(root: Path, *, split_seed: int = 0) -> Dataset:
    """Index an ISIC 2019 release (see the module docstring)."""
    root = Path(root)
    found = find_named(root, _GROUND_TRUTH)
    if "training" not in found:
        raise DatasetFormatError(
            f"{root}: no ISIC 2019 ground truth (ISIC_2019_Training_GroundTruth.csv) found")
    metadata: dict[str, dict[str, object]] = {}
    for path in find_named(root, _METADATA).values():
        for image_id, row in read_keyed_csv(path, "ISIC 2019 metadata").items():
            metadata.setdefault(image_id, row)
    ground_truth = {PARTS[name]: path for name, path in found.items()}
    return load_one_hot_parts(root, "isic2019", ground_truth, CLASSES, metadata, split_seed)
