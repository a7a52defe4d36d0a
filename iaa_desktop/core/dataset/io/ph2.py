"""Loader for the PH2 dermoscopic image database.

Format, as its authors distribute it (https://www.fc.up.pt/addi/ph2%20database.html; T. Mendonça
et al., "PH2 - A dermoscopic image database for research and benchmarking", IEEE EMBC 2013,
pp. 5437-5440)::

    PH2Dataset/
      PH2 Dataset images/IMD003/IMD003_Dermoscopic_Image/IMD003.bmp
                               /IMD003_lesion/IMD003_lesion.bmp        the lesion's mask
                               /IMD003_roi/...                         colour regions (not used)
      PH2_dataset.txt     '||'-separated table: Name || Histological Diagnosis || Clinical Diagnosis ||
                          Asymmetry || Pigment Network || ... || Colors ||; the clinical diagnosis
                          is a code: 0 common nevus, 1 atypical nevus, 2 melanoma
      PH2_dataset.xlsx    the same as a spreadsheet: a header row (row 13) with "Image Name",
                          "Histological Diagnosis", and one column per clinical diagnosis
                          ("Common Nevus", "Atypical Nevus", "Melanoma") marked with an X

The text file is read when present, else the spreadsheet (with a small reader of
the xlsx XML: no spreadsheet package is needed). ``diagnosis`` is the clinical
diagnosis in words; ``benign_malignant`` is the study's binary task, melanoma vs
not. The histological diagnosis and the dermoscopic criteria are kept in
``Lesion.metadata``. The lesion mask is one segmentation by the annotator
``PH2``, so the dataset reads as a one-annotator dataset (no IAA). PH2 has no
official split: the export makes its seeded, stratified 70/10/20 split.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from iaa_desktop.core.dataset.io.discover import walk_dirs
from iaa_desktop.core.dataset.io.isic2018 import label_problem
from iaa_desktop.core.dataset.labels import BINARY_TASK, decode_one_hot, melanoma_label
from iaa_desktop.core.dataset.model import Dataset, Lesion, Problem, Segmentation, make_problem
from iaa_desktop.core.errors import DatasetFormatError, DatasetReadError

ANNOTATOR = "PH2"
TEXT_FILE = "PH2_dataset.txt"
SPREADSHEET = "PH2_dataset.xlsx"
IMAGES_FOLDER = "PH2 Dataset images"
CLINICAL = {"0": "common nevus", "1": "atypical nevus", "2": "melanoma"}
SPREADSHEET_CLASSES = ("Common Nevus", "Atypical Nevus", "Melanoma")
_CASE = re.compile(r"^IMD\d+$", re.IGNORECASE)
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _find(root: Path) -> tuple[Path | None, Path | None, Path | None]:
    """(text file, spreadsheet, images folder) under ``root``, two levels deep."""
    text = sheet = images = None
    for folder, files in sorted(walk_dirs(root, 2), key=lambda entry: len(entry[0].parts)):
        if text is None and TEXT_FILE in files:
            text = folder / TEXT_FILE
        if sheet is None and SPREADSHEET in files:
            sheet = folder / SPREADSHEET
        if images is None and (folder / IMAGES_FOLDER).is_dir():
            images = folder / IMAGES_FOLDER
    return text, sheet, images


def looks_like_ph2(root: Path) -> bool:
    text, sheet, images = _find(Path(root))
    return text is not None or sheet is not None or images is not None


def _read_text(path: Path, problems: list[Problem]) -> dict[str, dict[str, str]]:
    """Case -> {"diagnosis", "histological_diagnosis", criteria...} from PH2_dataset.txt."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DatasetReadError(f"{path}: cannot read the PH2 table ({exc.strerror})") from None
    header: list[str] = []
    cases: dict[str, dict[str, str]] = {}
    for line in lines:
        if "||" not in line:
            continue
        fields = [f.strip() for f in line.split("||")]
        if not header and any("clinical diagnosis" in f.lower() for f in fields):
            header = [re.sub(r"[^a-z]+", "_", f.lower()).strip("_") for f in fields]
            continue
        name_at = next((i for i, f in enumerate(fields) if _CASE.match(f)), None)
        if name_at is None:
            continue  # the legend below the table
        clinical_at = next((i for i, f in enumerate(header) if "clinical" in f), name_at + 2)
        histological_at = next((i for i, f in enumerate(header) if "histolog" in f), name_at + 1)
        case = fields[name_at]
        code = fields[clinical_at] if clinical_at < len(fields) else ""
        row = {"histological_diagnosis": fields[histological_at] if histological_at < len(fields) else ""}
        if len(fields) == len(header):
            row.update({name: fields[i] for i, name in enumerate(header) if i > clinical_at and name})
        else:  # criteria laid out otherwise than the header: kept as they are
            row["criteria"] = " | ".join(f for f in fields[clinical_at + 1:] if f)
        if code in CLINICAL:
            row["diagnosis"] = CLINICAL[code]
        elif not code:
            problems.append(make_problem("missing_label", f"{path}: case {case} has no clinical diagnosis "
                                         "(label taken as unknown)", path, case))
        else:
            problems.append(make_problem(
                "bad_metadata", f"{path}: case {case} has the clinical diagnosis {code!r} "
                "(expected 0, 1 or 2); label taken as unknown", path, case))
        if case in cases:
            problems.append(make_problem("bad_metadata", f"{path}: case {case} is listed more than once; "
                                         "the first row is used", path, case))
            continue
        cases[case] = {k: v for k, v in row.items() if v}
    return cases


def _column_index(reference: str) -> int:
    letters = re.match(r"[A-Z]+", reference or "A").group(0)
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def read_xlsx_rows(path: Path) -> list[list[str]]:
    """The first worksheet of an .xlsx as rows of strings (shared and inline strings, numbers)."""
    try:
        with zipfile.ZipFile(path) as book:
            names = set(book.namelist())
            shared = []
            if "xl/sharedStrings.xml" in names:
                for item in ElementTree.fromstring(book.read("xl/sharedStrings.xml")).findall("m:si", _NS):
                    shared.append("".join(t.text or "" for t in item.iter(f"{{{_NS['m']}}}t")))
            sheet = sorted(n for n in names if re.match(r"xl/worksheets/sheet\d+\.xml$", n))[0]
            root = ElementTree.fromstring(book.read(sheet))
    except (OSError, zipfile.BadZipFile, KeyError, IndexError, ElementTree.ParseError) as exc:
        raise DatasetReadError(f"{path}: not a readable xlsx spreadsheet ({exc})") from None
    rows = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        cells: dict[int, str] = {}
        for cell in row.findall("m:c", _NS):
            kind, value = cell.get("t"), cell.find("m:v", _NS)
            if kind == "s" and value is not None:
                text = shared[int(value.text)]
            elif kind == "inlineStr":
                text = "".join(t.text or "" for t in cell.iter(f"{{{_NS['m']}}}t"))
            else:
                text = value.text if value is not None and value.text else ""
            cells[_column_index(cell.get("r", ""))] = text.strip()
        rows.append([cells.get(i, "") for i in range(max(cells, default=-1) + 1)])
    return rows


def _read_spreadsheet(path: Path, problems: list[Problem]) -> dict[str, dict[str, str]]:
    """Case -> labels from PH2_dataset.xlsx (one X per row among the clinical diagnoses)."""
    rows = read_xlsx_rows(path)
    at = next((i for i, r in enumerate(rows) if "Image Name" in r), None)
    if at is None or not all(c in rows[at] for c in SPREADSHEET_CLASSES):
        raise DatasetReadError(f"{path}: no header row with 'Image Name' and "
                               f"{', '.join(SPREADSHEET_CLASSES)} found")
    header = rows[at]
    cases: dict[str, dict[str, str]] = {}
    for cells in rows[at + 1:]:
        row = {name: cells[i] if i < len(cells) else "" for i, name in enumerate(header) if name}
        case = row.get("Image Name", "")
        if not _CASE.match(case):
            continue
        label, reason = decode_one_hot(row, SPREADSHEET_CLASSES)
        if label is None:
            problems.append(label_problem(reason, path, case))
        values = {"histological_diagnosis": row.get("Histological Diagnosis", "")}
        if label:
            values["diagnosis"] = label.lower()
        if case in cases:
            problems.append(make_problem("bad_metadata", f"{path}: case {case} is listed more than once; "
                                         "the first row is used", path, case))
            continue
        cases[case] = {k: v for k, v in values.items() if v}
    return cases


def load_ph2(root: Path) -> Dataset:
    """Index a PH2 release (see the module docstring)."""
    root = Path(root)
    text, sheet, images = _find(root)
    if text is None and sheet is None and images is None:
        raise DatasetFormatError(f"{root}: no PH2 table ({TEXT_FILE} or {SPREADSHEET}) nor '{IMAGES_FOLDER}'")
    problems: list[Problem] = []
    table = text or sheet
    if text is not None:
        cases = _read_text(text, problems)
    elif sheet is not None:
        cases = _read_spreadsheet(sheet, problems)
    else:
        cases = {}
        problems.append(make_problem("bad_metadata", f"{root}: no {TEXT_FILE} or {SPREADSHEET}; "
                                     "every label is unknown", root))
    on_disk = sorted(p.name for p in images.iterdir() if p.is_dir() and _CASE.match(p.name)) if images else []
    for case in on_disk:
        if case not in cases and table is not None:
            problems.append(make_problem("unknown_image", f"{table}: no row for case {case}, which has "
                                         "images (label taken as unknown)", images / case, case))
    lesions = []
    for case in list(cases) + [c for c in on_disk if c not in cases]:
        folder = (images or root / IMAGES_FOLDER) / case
        image = folder / f"{case}_Dermoscopic_Image" / f"{case}.bmp"
        mask = folder / f"{case}_lesion" / f"{case}_lesion.bmp"
        if not image.is_file():
            problems.append(make_problem("missing_image", f"{folder}: no dermoscopic image {image.name}",
                                         image, case))
        segmentations = ()
        if mask.is_file():
            segmentations = (Segmentation(case, ANNOTATOR, "", "", mask),)
        else:
            problems.append(make_problem("missing_mask", f"{folder}: no lesion mask {mask.name}", mask, case))
        row = dict(cases.get(case, {}))
        diagnosis = row.pop("diagnosis", None)
        row["binary_task"] = BINARY_TASK
        lesions.append(Lesion(image_id=case, image_path=image if image.is_file() else None,
                              segmentations=segmentations, diagnosis=diagnosis,
                              benign_malignant=melanoma_label(diagnosis == "melanoma" if diagnosis else None),
                              metadata=row))
    return Dataset(root=root, layout="ph2", lesions=tuple(lesions), problems=tuple(problems), name=root.name)
