"""Small fixtures of the diagnosis datasets in their exact release layouts, with malformed rows.

Each writer returns the dataset root and documents what it holds, so tests can
count. File and column names are those of the real releases (see the loaders'
docstrings for the sources).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pandas as pd

from tests.builders import disk, write_image, write_mask

ISIC2018_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
ISIC2019_CLASSES = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
DERM7PT_COLUMNS = ("case_num", "diagnosis", "seven_point_score", "pigment_network", "streaks", "pigmentation",
                   "regression_structures", "dots_and_globules", "blue_whitish_veil", "vascular_structures",
                   "level_of_diagnostic_difficulty", "elevation", "location", "sex", "clinic", "derm",
                   "management")


def _one_hot_csv(path: Path, classes: tuple[str, ...], rows: list[tuple[str, tuple[str, ...]]]) -> None:
    """ISIC ground truth: ``image`` then one column per class, 1.0 / 0.0 as the challenge writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [{"image": image, **{c: "1.0" if c in labels else "0.0" for c in classes}}
               for image, labels in rows]
    pd.DataFrame(records, columns=["image", *classes]).to_csv(path, index=False)


def make_isic2018(root: Path, shape=(45, 60)) -> Path:
    """ISIC 2018 Task 3, three parts.

    Training (10 rows): 3 MEL, 5 single other classes, ISIC_0000108 with MEL and NV
    (ambiguous), ISIC_0000109 with none; ISIC_0000107 (NV) has no image file.
    Validation (2): 1 MEL, 1 NV. Test (4): 2 MEL, 1 BKL, 1 NV. 15 image files.
    """
    train = [("ISIC_0000100", ("MEL",)), ("ISIC_0000101", ("MEL",)), ("ISIC_0000102", ("MEL",)),
             ("ISIC_0000103", ("NV",)), ("ISIC_0000104", ("BCC",)), ("ISIC_0000105", ("BKL",)),
             ("ISIC_0000106", ("DF",)), ("ISIC_0000107", ("NV",)), ("ISIC_0000108", ("MEL", "NV")),
             ("ISIC_0000109", ())]
    parts = {"Training": train,
             "Validation": [("ISIC_0000200", ("MEL",)), ("ISIC_0000201", ("NV",))],
             "Test": [("ISIC_0000300", ("MEL",)), ("ISIC_0000301", ("MEL",)), ("ISIC_0000302", ("BKL",)),
                      ("ISIC_0000303", ("NV",))]}
    seed = 0
    for part, rows in parts.items():
        _one_hot_csv(root / f"ISIC2018_Task3_{part}_GroundTruth" / f"ISIC2018_Task3_{part}_GroundTruth.csv",
                     ISIC2018_CLASSES, rows)
        for image, _ in rows:
            seed += 1
            if image != "ISIC_0000107":
                write_image(root / f"ISIC2018_Task3_{part}_Input" / f"{image}.jpg", shape, seed)
    (root / "ISIC2018_Task3_Training_Input" / "LICENSE.txt").write_text("CC-BY-NC\n")
    pd.DataFrame({"image": [r[0] for r in train], "lesion_id": [f"HAM_{i:07d}" for i in range(len(train))],
                  "diagnosis_confirm_type": ["histo"] * len(train)}).to_csv(
        root / "ISIC2018_Task3_Training_LesionGroupings.csv", index=False)
    return root


def make_isic2019(root: Path, shape=(45, 60)) -> Path:
    """ISIC 2019 training part: 12 rows, 4 MEL, 6 others (one ``_downsampled`` id), SCC+BCC (ambiguous),
    one with no class; metadata for every image (one with empty cells; ISIC_0000001 and
    ISIC_0000002 are images of one lesion, BCN_0000001). 12 image files, no official split."""
    rows = [("ISIC_0000000", ("NV",)), ("ISIC_0000001", ("MEL",)), ("ISIC_0000002", ("MEL",)),
            ("ISIC_0000003", ("BCC",)), ("ISIC_0000004", ("AK",)), ("ISIC_0000005", ("MEL",)),
            ("ISIC_0000006_downsampled", ("BKL",)), ("ISIC_0000007", ("MEL",)), ("ISIC_0000008", ("SCC",)),
            ("ISIC_0000009", ("VASC",)), ("ISIC_0000010", ("SCC", "BCC")), ("ISIC_0000011", ())]
    _one_hot_csv(root / "ISIC_2019_Training_GroundTruth.csv", ISIC2019_CLASSES, rows)
    for k, (image, _) in enumerate(rows):
        write_image(root / "ISIC_2019_Training_Input" / f"{image}.jpg", shape, 100 + k)
    pd.DataFrame({
        "image": [r[0] for r in rows],
        "age_approx": [str(30 + 5 * k) if k != 3 else "" for k in range(len(rows))],
        "anatom_site_general": ["anterior torso" if k != 3 else "" for k in range(len(rows))],
        "lesion_id": [f"BCN_{k if k != 2 else 1:07d}" for k in range(len(rows))],  # 1 and 2: one lesion
        "sex": ["female" if k % 2 else "male" for k in range(len(rows))],
    }).to_csv(root / "ISIC_2019_Training_Metadata.csv", index=False)
    return root


def make_derm7pt(root: Path, shape=(45, 60)) -> Path:
    """derm7pt ``release_v0`` with 11 cases (rows 0-10).

    Melanomas: rows 0, 3, 8 (three spellings) and 9; row 10 has no diagnosis; row 5's
    dermoscopic image is missing on disk. Index files: train 0-5 (+ the bad index 99),
    valid 6-7, test 8-10. Every case has a clinical image too.
    """
    release = root / "release_v0"
    diagnoses = ["melanoma", "clark nevus", "seborrheic keratosis", "melanoma (in situ)",
                 "basal cell carcinoma", "blue nevus", "dermal nevus", "melanosis",
                 "melanoma (less than 0.76 mm)", "melanoma", ""]
    records = []
    for k, diagnosis in enumerate(diagnoses):
        folder = ["Aal", "Fcl", "NEL"][k % 3]
        clinic, derm = f"{folder}/{folder}{k:03d}.jpg", f"{folder}/{folder.lower()}{k:03d}.jpg"
        write_image(release / "images" / clinic, shape, 200 + k)
        if k != 5:
            write_image(release / "images" / derm, shape, 300 + k)
        records.append({"case_num": k + 1, "diagnosis": diagnosis, "seven_point_score": k % 5,
                        "pigment_network": "typical", "streaks": "absent", "pigmentation": "absent",
                        "regression_structures": "absent", "dots_and_globules": "irregular",
                        "blue_whitish_veil": "absent", "vascular_structures": "absent",
                        "level_of_diagnostic_difficulty": "low", "elevation": "flat", "location": "back",
                        "sex": "female", "clinic": clinic, "derm": derm, "management": "excision"})
    meta = release / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records, columns=list(DERM7PT_COLUMNS)).to_csv(meta / "meta.csv", index=False)
    for name, rows in (("train_indexes.csv", [0, 1, 2, 3, 4, 5, 99]), ("valid_indexes.csv", [6, 7]),
                       ("test_indexes.csv", [8, 9, 10])):
        pd.DataFrame({"indexes": rows}).to_csv(meta / name, index=False)
    return root


PH2_CASES = (("IMD002", "0"), ("IMD003", "0"), ("IMD004", "1"), ("IMD006", "2"), ("IMD008", "0"),
             ("IMD009", "1"), ("IMD010", "2"), ("IMD013", "2"), ("IMD014", "0"), ("IMD015", ""))


def _ph2_case(images: Path, case: str, shape, seed: int, mask: bool = True) -> None:
    folder = images / case
    write_image(folder / f"{case}_Dermoscopic_Image" / f"{case}.bmp", shape, seed)
    if mask:
        write_mask(folder / f"{case}_lesion" / f"{case}_lesion.bmp",
                   disk(shape, (shape[0] // 2, shape[1] // 2), min(shape) // 3))


def make_ph2(root: Path, shape=(45, 60), spreadsheet: bool = False) -> Path:
    """PH2 with 10 cases in ``PH2Dataset/`` (3 melanomas: IMD006, IMD010, IMD013).

    Text table (default): IMD015 has no clinical diagnosis; IMD014's lesion mask is
    missing. With ``spreadsheet``: ``PH2_dataset.xlsx`` only, where IMD015 has two X
    marks (common and atypical nevus) instead.
    """
    base = root / "PH2Dataset"
    images = base / "PH2 Dataset images"
    for k, (case, _) in enumerate(PH2_CASES):
        _ph2_case(images, case, shape, 400 + k, mask=case != "IMD014")
    (base / "Readme.txt").write_text("PH2 database\n")
    if spreadsheet:
        write_ph2_xlsx(base / "PH2_dataset.xlsx")
        return root
    header = ("|| Name || Histological Diagnosis || Clinical Diagnosis || Asymmetry || Pigment Network || "
              "Dots/Globules || Streaks || Regression Areas || Blue-Whitish Veil || Colors ||")
    lines = [header]
    for case, code in PH2_CASES:
        histology = "Melanoma" if code == "2" else ""
        lines.append(f"||  {case}  ||   {histology:<20} ||          {code:<2}        ||     0     ||"
                     "        T        ||       A       ||    A    ||        A         ||         A"
                     "         ||   4       ||")
    lines += ["", "Legends:", "Clinical Diagnosis:", " 0 - Common Nevus;", " 1 - Atypical Nevus;",
              " 2 - Melanoma."]
    (base / "PH2_dataset.txt").write_text("\n".join(lines) + "\n")
    return root


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def write_ph2_xlsx(path: Path) -> Path:
    """A minimal but valid .xlsx (inline strings) laid out as PH2_dataset.xlsx: header on row 13."""
    header = ["Image Name", "Histological Diagnosis", "Common Nevus", "Atypical Nevus", "Melanoma",
              "Asymmetry"]
    rows: list[list[str]] = [["PH2 database"]] + [[] for _ in range(11)] + [header]
    for case, code in PH2_CASES:
        marks = ["X" if code == "0" else "", "X" if code == "1" else "", "X" if code == "2" else ""]
        if case == "IMD015":
            marks = ["X", "X", ""]
        rows.append([case, "Melanoma" if code == "2" else "", *marks, "0"])
    xml_rows = []
    for r, cells in enumerate(rows, start=1):
        xml_cells = "".join(f'<c r="{_column(c)}{r}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
                            for c, v in enumerate(cells) if v)
        xml_rows.append(f'<row r="{r}">{xml_cells}</row>')
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    office = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
            f'"/xl/workbook.xml" ContentType="{office}.sheet.main+xml"/><Override PartName='
            f'"/xl/worksheets/sheet1.xml" ContentType="{office}.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>'
            + "".join(xml_rows) + "</sheetData></worksheet>"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        for name, text in files.items():
            book.writestr(name, text)
    return path


MAKERS = {"isic2018": make_isic2018, "isic2019": make_isic2019, "derm7pt": make_derm7pt, "ph2": make_ph2}
