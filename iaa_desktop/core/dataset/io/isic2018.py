"""Loader for the ISIC 2018 Task 3 (lesion diagnosis) release.

Format, as the challenge page documents it (https://challenge.isic-archive.com/landing/2018/47,
"ISIC 2018 Challenge - Task 3: Lesion Diagnosis"; data from the HAM10000 dataset, Tschandl et al.,
Sci. Data 5, 180161, 2018): images ``ISIC_<7 digits>.jpg`` and one ground-truth CSV per part
with the columns ``image, MEL, NV, BCC, AKIEC, BKL, DF, VASC``, one row per image and a 1.0 in
the column of its diagnosis (0.0 elsewhere). As downloaded and unzipped::

    ISIC2018_Task3_Training_Input/ISIC_0024306.jpg ...
    ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv
    ISIC2018_Task3_Training_LesionGroupings.csv      optional: image, lesion_id, diagnosis_confirm_type
    ISIC2018_Task3_Validation_Input/ ...  ISIC2018_Task3_Validation_GroundTruth/...csv
    ISIC2018_Task3_Test_Input/ ...        ISIC2018_Task3_Test_GroundTruth/...csv

Folder names vary between downloads: the ground-truth CSVs are found by name two
levels deep, and each part's images by their file names. The split of an image is
the part it came from (``train``/``val``/``test``); with a training and a test part
but no validation part a seeded stratified share of training becomes ``val``; with
no test part, a seeded 70/10/20 split stratified by the label that keeps the images
of one lesion (``lesion_id`` of the lesion groupings) in one split, or, without
lesion ids, no split (the export then makes its seeded 70/10/20 split).

Labels: ``diagnosis`` is the class code (``MEL``, ``NV``, ...); ``benign_malignant``
is the study's binary task, melanoma vs not (``malignant`` for ``MEL`` only). A row
with several classes set, none, or a value that is not 0/1 is a problem and keeps
an unknown label. The functions here are shared with the ISIC 2019 loader.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from iaa_desktop.core.dataset.io.discover import best_folder, clash_problems, index_images, walk_dirs
from iaa_desktop.core.dataset.io.tables import clean, read_table
from iaa_desktop.core.dataset.labels import BINARY_TASK, decode_one_hot, melanoma_label
from iaa_desktop.core.dataset.model import Dataset, Lesion, Problem, make_problem
from iaa_desktop.core.dataset.splits import SPLITS, carve_validation, grouped_stratified_split
from iaa_desktop.core.errors import DatasetFormatError

CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
_GROUND_TRUTH = re.compile(r"^ISIC2018_Task3_(Training|Validation|Test)_GroundTruth\.csv$", re.IGNORECASE)
_GROUPINGS = "ISIC2018_Task3_Training_LesionGroupings.csv"
PARTS = {"training": "train", "validation": "val", "test": "test"}


def find_named(root: Path, pattern: re.Pattern, max_depth: int = 2) -> dict[str, Path]:
    """Part name (lower case, the pattern's group 1) -> first file matching ``pattern``."""
    found: dict[str, Path] = {}
    for folder, files in sorted(walk_dirs(root, max_depth), key=lambda entry: str(entry[0])):
        for name in sorted(files):
            match = pattern.match(name)
            if match:
                found.setdefault(match.group(1).lower(), folder / name)
    return found


def looks_like_isic2018(root: Path) -> bool:
    return bool(find_named(Path(root), _GROUND_TRUTH))


def label_problem(reason: str, csv_path: Path, image_id: str) -> Problem:
    """The problem of a one-hot row that gives no single class (see ``decode_one_hot``)."""
    if reason == "none":
        return make_problem("missing_label", f"{csv_path}: image {image_id} has no class set "
                            "(label taken as unknown)", csv_path, image_id)
    if reason.startswith("several:"):
        return make_problem("ambiguous_label", f"{csv_path}: image {image_id} has several classes set "
                            f"({reason.split(':', 1)[1]}); label taken as unknown", csv_path, image_id)
    return make_problem("bad_metadata", f"{csv_path}: image {image_id} has a value that is not 0 or 1 "
                        f"({reason.split(':', 1)[1]}); label taken as unknown", csv_path, image_id)


def official_splits(ids: list[str], parts: list[str], labels: list[str | None], seed: int,
                    lesion_ids: list[str | None] | None = None) -> list:
    """Each image's part as its split, when a training and a test part exist.

    Without a validation part a seeded, stratified eighth of training becomes
    ``val``. Without a test part: with lesion ids (ISIC 2019's metadata, ISIC
    2018's lesion groupings) a seeded 70/10/20 split stratified by the label that
    keeps each lesion's images together; else no split (``None``: the export makes one).
    """
    strata = [1 if label == "malignant" else 0 if label == "benign" else -1 for label in labels]
    if "train" in parts and "test" in parts:
        return carve_validation(ids, parts, strata, seed)
    if lesion_ids is not None and any(lesion_ids):
        return grouped_stratified_split(ids, strata, lesion_ids, seed)
    return [None] * len(ids)


def load_one_hot_parts(
    root: Path,
    layout: str,
    ground_truth: Mapping[str, Path],
    classes: tuple[str, ...],
    metadata: Mapping[str, dict[str, object]] | None = None,
    split_seed: int = 0,
) -> Dataset:
    """Index ISIC-style parts: ``{split: ground-truth CSV}`` with one-hot ``classes`` columns.

    ``metadata`` maps image id to extra columns kept in ``Lesion.metadata``.
    """
    problems: list[Problem] = []
    ground_truth = dict(sorted(ground_truth.items(), key=lambda item: SPLITS.index(item[0])))
    rows: dict[str, tuple[str, str | None, Path]] = {}  # id -> (part, class, csv)
    part_ids: dict[str, set[str]] = {}
    for part, csv_path in ground_truth.items():
        frame = read_table(csv_path, ("image", *classes), f"{layout} ground truth")
        columns = [str(c) for c in frame.columns]
        for values in frame.to_numpy(dtype=object):
            row = dict(zip(columns, values, strict=True))
            image_id = clean(row.get("image"))
            if image_id is None:
                problems.append(make_problem("bad_metadata", f"{csv_path}: a row has no image id; skipped",
                                             csv_path))
                continue
            image_id = os.path.splitext(image_id)[0] if image_id.lower().endswith(".jpg") else image_id
            if image_id in rows:
                problems.append(make_problem(
                    "bad_metadata", f"{csv_path}: image {image_id} is listed again (first in "
                    f"{rows[image_id][2].name}); the first row is used", csv_path, image_id))
                continue
            label, reason = decode_one_hot(row, classes)
            if label is None:
                problems.append(label_problem(reason, csv_path, image_id))
            rows[image_id] = (part, label, csv_path)
            part_ids.setdefault(part, set()).add(image_id.lower())

    image_index: dict[str, Path] = {}
    for wanted in part_ids.values():
        folder, files = best_folder(
            root, lambda names, wanted=wanted: sum(os.path.splitext(n)[0].lower() in wanted for n in names))
        if folder is None:
            continue
        index, clashes = index_images(folder, files)
        problems.extend(clash_problems(clashes))
        for key, path in index.items():
            if key in wanted:
                image_index.setdefault(key, path)

    ids = list(rows)
    labels = [melanoma_label(None if rows[i][1] is None else rows[i][1] == "MEL") for i in ids]
    lesion_ids = [clean((metadata or {}).get(i, {}).get("lesion_id")) for i in ids]
    splits = official_splits(ids, [rows[i][0] for i in ids], labels, split_seed, lesion_ids)
    lesions = []
    for image_id, label, split in zip(ids, labels, splits, strict=True):
        part, diagnosis, csv_path = rows[image_id]
        image_path = image_index.get(image_id.lower())
        if image_path is None:
            problems.append(make_problem("missing_image", f"{csv_path.parent}: no image file for {image_id} "
                                         f"(listed in {csv_path.name})", csv_path.parent / f"{image_id}.jpg",
                                         image_id))
        extra = dict((metadata or {}).get(image_id, {}))
        extra.update({"part": part, "binary_task": BINARY_TASK})
        lesions.append(Lesion(image_id=image_id, image_path=image_path, diagnosis=diagnosis,
                              benign_malignant=label, split=split, metadata=extra))
    return Dataset(root=root, layout=layout, lesions=tuple(lesions), problems=tuple(problems), name=root.name)


def read_keyed_csv(path: Path, what: str) -> dict[str, dict[str, object]]:
    """Rows of a CSV keyed by its ``image`` column, empty cells left out."""
    frame = read_table(path, ("image",), what)
    columns = [str(c) for c in frame.columns]
    out: dict[str, dict[str, object]] = {}
    for values in frame.to_numpy(dtype=object):
        row = {c: clean(v) for c, v in zip(columns, values, strict=True) if clean(v) is not None}
        image_id = row.pop("image", None)
        if image_id is not None:
            out.setdefault(str(image_id), row)
    return out


def load_isic2018(root: Path, *, split_seed: int = 0) -> Dataset:
    """Index an ISIC 2018 Task 3 release (see the module docstring)."""
    root = Path(root)
    found = find_named(root, _GROUND_TRUTH)
    if not found:
        raise DatasetFormatError(f"{root}: no ISIC 2018 Task 3 ground truth "
                                 "(ISIC2018_Task3_Training_GroundTruth.csv) found")
    ground_truth = {PARTS[name]: path for name, path in found.items()}
    groupings = next((folder / _GROUPINGS for folder, files in walk_dirs(root, 2) if _GROUPINGS in files),
                     None)
    metadata = read_keyed_csv(groupings, "ISIC 2018 lesion groupings") if groupings else None
    return load_one_hot_parts(root, "isic2018", ground_truth, CLASSES, metadata, split_seed)
