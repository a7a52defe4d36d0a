"""Loader for the Seven-Point Checklist Dermatology Dataset (derm7pt).

Format, as its authors document it (https://github.com/jeremykawahara/derm7pt, README and
``derm7pt/dataset.py``; data from http://derm.cs.sfu.ca; J. Kawahara et al., "Seven-Point
Checklist and Skin Lesion Classification using Multi-Task Multi-Modal Neural Nets", IEEE
JBHI 2018)::

    release_v0/
      meta/meta.csv            case_num, diagnosis, seven_point_score, pigment_network, streaks,
                               pigmentation, regression_structures, dots_and_globules,
                               blue_whitish_veil, vascular_structures,
                               level_of_diagnostic_difficulty, elevation, location, sex,
                               clinic, derm, management
      meta/train_indexes.csv   one column ``indexes``: 0-based rows of meta.csv
      meta/valid_indexes.csv
      meta/test_indexes.csv
      images/<clinic or derm path, e.g. NEL/Nel026.jpg>

Each case has a clinical and a dermoscopic image: the dermoscopic one is used
(``modality="derm"``, default) unless ``modality="clinic"`` is asked for. The
image id is the file name's stem. The index files give the official
train/val/test split. ``diagnosis`` keeps the dataset's label ("clark nevus",
"melanoma (in situ)", ...); ``benign_malignant`` is the study's binary task,
melanoma (every "melanoma ..." label, as the reference groups them) vs not. The
seven-point criteria and the other columns are kept in ``Lesion.metadata``.
"""

from __future__ import annotations

from pathlib import Path

from iaa_desktop.core.dataset.io.discover import walk_dirs
from iaa_desktop.core.dataset.io.tables import clean, read_table, to_int
from iaa_desktop.core.dataset.labels import BINARY_TASK, melanoma_label
from iaa_desktop.core.dataset.model import Dataset, Lesion, Problem, make_problem
from iaa_desktop.core.errors import DatasetFormatError

MODALITIES = ("derm", "clinic")
INDEX_FILES = {"train": "train_indexes.csv", "val": "valid_indexes.csv", "test": "test_indexes.csv"}


def find_meta_csv(root: Path) -> Path | None:
    """``meta/meta.csv`` under ``root`` (``root`` itself, ``release_v0/`` or one more level)."""
    for folder, files in sorted(walk_dirs(Path(root), 2), key=lambda entry: len(entry[0].parts)):
        if folder.name == "meta" and "meta.csv" in files:
            return folder / "meta.csv"
    return None


def looks_like_derm7pt(root: Path) -> bool:
    return find_meta_csv(root) is not None


def is_melanoma(diagnosis: str) -> bool:
    return diagnosis.strip().lower().startswith("melanoma")


def _official_splits(meta_dir: Path, n_rows: int, problems: list[Problem]) -> list[str | None] | None:
    """Split per meta.csv row from the index files; ``None`` when there are none."""
    present = {split: meta_dir / name for split, name in INDEX_FILES.items() if (meta_dir / name).is_file()}
    if not present:
        return None
    splits: list[str | None] = [None] * n_rows
    for split, path in present.items():
        frame = read_table(path, ("indexes",), "derm7pt index file")
        for value in frame["indexes"].tolist():
            row = to_int(value)
            if row is None or not 0 <= row < n_rows:
                problems.append(make_problem("bad_metadata", f"{path}: index {value!r} is not a row of "
                                             f"meta.csv (0 to {n_rows - 1}); ignored", path))
                continue
            if splits[row] is not None:
                problems.append(make_problem("bad_metadata", f"{path}: row {row} is already in the "
                                             f"{splits[row]} split; kept there", path))
                continue
            splits[row] = split
    return splits


def load_derm7pt(root: Path, *, modality: str = "derm") -> Dataset:
    """Index a derm7pt release (see the module docstring).

    Parameters
    ----------
    root
        The release folder (``release_v0``) or a folder above it.
    modality
        ``"derm"`` for the dermoscopic images (default), ``"clinic"`` for the clinical ones.
    """
    root = Path(root)
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, not {modality!r}")
    meta_csv = find_meta_csv(root)
    if meta_csv is None:
        raise DatasetFormatError(f"{root}: no derm7pt metadata (meta/meta.csv) found")
    images_dir = meta_csv.parent.parent / "images"
    frame = read_table(meta_csv, ("diagnosis", "clinic", "derm"), "derm7pt metadata")
    problems: list[Problem] = []
    splits = _official_splits(meta_csv.parent, len(frame), problems)
    columns = [str(c) for c in frame.columns]
    lesions = []
    seen: set[str] = set()
    for position, values in enumerate(frame.to_numpy(dtype=object)):
        row = {c: clean(v) for c, v in zip(columns, values, strict=True) if clean(v) is not None}
        case = row.get("case_num", str(position))
        relative = row.get(modality)
        image_id = Path(relative).stem if relative else f"case{case}"
        if image_id in seen:
            image_id = f"{image_id}_case{case}"
        seen.add(image_id)
        image_path = images_dir / relative if relative else None
        if image_path is None or not image_path.is_file():
            problems.append(make_problem(
                "missing_image", f"{meta_csv}: case {case} has no {modality} image "
                f"({image_path if image_path else 'empty ' + modality + ' column'})",
                image_path or meta_csv, image_id))
            image_path = None
        diagnosis = row.pop("diagnosis", None)
        if diagnosis is None:
            problems.append(make_problem("missing_label", f"{meta_csv}: case {case} has no diagnosis "
                                         "(label taken as unknown)", meta_csv, image_id))
        split = splits[position] if splits is not None else None
        if splits is not None and split is None:
            problems.append(make_problem("bad_metadata", f"{meta_csv.parent}: case {case} (row {position}) "
                                         "is in no index file (no split)", meta_csv, image_id))
        row.update({"modality": modality, "binary_task": BINARY_TASK})
        lesions.append(Lesion(image_id=image_id, image_path=image_path, diagnosis=diagnosis,
                              benign_malignant=melanoma_label(is_melanoma(diagnosis) if diagnosis else None),
                              split=split, metadata=row))
    return Dataset(root=root, layout="derm7pt", lesions=tuple(lesions), problems=tuple(problems),
                   name=root.name)
