"""ISIC 2018 Task 3, ISIC 2019, derm7pt and PH2: detection, labels, splits, problems, export."""

import json
import shutil

import h5py
import numpy as np
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.dataset.io import detect_layout, load_dataset
from iaa_desktop.core.dataset.labels import decode_one_hot, melanoma_label
from iaa_desktop.core.dataset.splits import (
    carve_validation,
    grouped_stratified_split,
    seeded_stratified_split,
)
from iaa_desktop.core.errors import DatasetFormatError, DatasetReadError
from iaa_desktop.core.progress import run_to_end
from iaa_desktop.core.training.training_set import iter_export_training_set
from tests.builders import tree_digest
from tests.builders_diagnosis import MAKERS, make_derm7pt, make_isic2018, make_isic2019, make_ph2

# layout -> (images, with a file, malignant, benign, unknown label, splits, problems by kind)
EXPECTED = {
    "isic2018": (16, 15, 6, 8, 2, {"train": 10, "val": 2, "test": 4},
                 {"ambiguous_label": 1, "missing_image": 1, "missing_label": 1}),
    "isic2019": (12, 12, 4, 6, 2, None, {"ambiguous_label": 1, "missing_label": 1}),  # seeded, by lesion
    "derm7pt": (11, 10, 4, 6, 1, {"train": 6, "val": 2, "test": 3},
                {"bad_metadata": 1, "missing_image": 1, "missing_label": 1}),
    "ph2": (10, 10, 3, 6, 1, {"none": 10}, {"missing_label": 1, "missing_mask": 1}),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_info_recognises_each_format_and_export_stores_unknown_iaa(tmp_path, capsys, name):
    root = MAKERS[name](tmp_path / name)
    before = tree_digest(root)
    assert detect_layout(root) == name
    assert main(["info", str(root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    images, with_file, malignant, benign, unknown, splits, problems = EXPECTED[name]
    assert summary["layout"] == name
    assert (summary["images"], summary["images_with_file"]) == (images, with_file)
    assert summary["benign_malignant"] == {"benign": benign, "malignant": malignant, "unknown": unknown}
    if splits is not None:
        assert summary["splits"] == splits
    assert summary["problems"] == problems
    assert summary["images_with_2plus_human_masks"] == 0  # single-annotator data: no IAA
    assert main(["info", str(root)]) == 0
    assert f"({name} layout)" in capsys.readouterr().out

    out = tmp_path / "set.h5"
    run_to_end(iter_export_training_set(load_dataset(root), out, size=16, cache=None, workers=1))
    with h5py.File(out) as h5:
        assert np.isnan(h5["iaa"][()]).all()
        malignant_codes = h5["malignant"][()].tolist()
        assert malignant_codes.count(1) == malignant and len(malignant_codes) == with_file
        assert h5.attrs["layout"] == name
        assert h5.attrs["split_rule"] == ("seeded_stratified" if name == "ph2" else "metadata")
    assert tree_digest(root) == before  # the dataset directory is never written to


def test_isic2018_labels_parts_and_problems(tmp_path):
    dataset = load_dataset(make_isic2018(tmp_path / "d"))
    assert [lesion.image_id for lesion in dataset][:3] == ["ISIC_0000100", "ISIC_0000101", "ISIC_0000102"]
    first = dataset.lesion("ISIC_0000100")
    assert (first.diagnosis, first.benign_malignant, first.split) == ("MEL", "malignant", "train")
    assert first.metadata["lesion_id"] == "HAM_0000000" and first.metadata["part"] == "train"
    assert first.image_path.parent.name == "ISIC2018_Task3_Training_Input"
    assert dataset.lesion("ISIC_0000104").benign_malignant == "benign"  # BCC: not melanoma
    assert dataset.lesion("ISIC_0000201").split == "val" and dataset.lesion("ISIC_0000303").split == "test"
    ambiguous = dataset.lesion("ISIC_0000108")
    assert ambiguous.diagnosis is None and ambiguous.benign_malignant is None
    by_kind = {p.kind: p for p in dataset.problems}
    message = by_kind["ambiguous_label"].message
    assert "ISIC_0000108" in message and "MEL,NV" in message
    assert by_kind["missing_label"].image_id == "ISIC_0000109"
    assert by_kind["missing_image"].image_id == "ISIC_0000107"
    assert by_kind["ambiguous_label"].path.endswith("ISIC2018_Task3_Training_GroundTruth.csv")


def test_isic2018_without_validation_part_carves_val_and_training_only_is_split_by_lesion(tmp_path):
    root = make_isic2018(tmp_path / "d")
    shutil.rmtree(root / "ISIC2018_Task3_Validation_GroundTruth")
    dataset = load_dataset(root)
    splits = [lesion.split for lesion in dataset]
    assert splits.count("test") == 4 and splits.count("val") >= 1 and splits.count("train") >= 6
    assert load_dataset(root).lesions == dataset.lesions  # seeded: the same every time
    shutil.rmtree(root / "ISIC2018_Task3_Test_GroundTruth")
    training_only = [lesion.split for lesion in load_dataset(root)]  # seeded, by lesion_id
    assert len(training_only) == 10 and set(training_only) <= {"train", "val", "test"}
    (root / "ISIC2018_Task3_Training_LesionGroupings.csv").unlink()
    assert {lesion.split for lesion in load_dataset(root)} == {None}  # the export's seeded split


def test_isic2018_missing_column_is_a_clear_error(tmp_path):
    root = make_isic2018(tmp_path / "d")
    csv = root / "ISIC2018_Task3_Test_GroundTruth" / "ISIC2018_Task3_Test_GroundTruth.csv"
    csv.write_text("image,MEL,NV\nISIC_0000300,1.0,0.0\n")
    with pytest.raises(DatasetReadError, match="lacks column.*AKIEC"):
        load_dataset(root)


def test_isic2019_metadata_and_bad_values(tmp_path):
    root = make_isic2019(tmp_path / "d")
    dataset = load_dataset(root)
    lesion = dataset.lesion("ISIC_0000006_downsampled")
    assert lesion.image_path is not None and lesion.diagnosis == "BKL"
    assert dataset.lesion("ISIC_0000001").metadata["lesion_id"] == "BCN_0000001"
    assert "age_approx" not in dataset.lesion("ISIC_0000003").metadata  # empty cells left out
    assert dataset.lesion("ISIC_0000008").benign_malignant == "benign"  # SCC: not melanoma
    splits = {lesion.image_id: lesion.split for lesion in dataset}
    assert set(splits.values()) == {"train", "val", "test"}
    assert splits["ISIC_0000001"] == splits["ISIC_0000002"]  # one lesion, one split
    assert load_dataset(root, split_seed=0).lesions == dataset.lesions
    csv = root / "ISIC_2019_Training_GroundTruth.csv"
    csv.write_text(csv.read_text().replace("ISIC_0000009,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
                                           "ISIC_0000009,0.0,0.0,0.0,0.0,0.0,0.0,maybe"))
    problems = [p for p in load_dataset(root).problems if p.image_id == "ISIC_0000009"]
    assert [p.kind for p in problems] == ["bad_metadata"] and "VASC=maybe" in problems[0].message


def test_derm7pt_official_split_labels_and_clinical_images(tmp_path):
    root = make_derm7pt(tmp_path / "d")
    dataset = load_dataset(root)
    assert [lesion.split for lesion in dataset][:8] == ["train"] * 6 + ["val"] * 2
    in_situ = dataset.lesion("aal003")
    assert (in_situ.diagnosis, in_situ.benign_malignant) == ("melanoma (in situ)", "malignant")
    assert dataset.lesion("fcl007").benign_malignant == "benign"  # melanosis is not melanoma
    assert in_situ.metadata["seven_point_score"] == "3" and in_situ.metadata["modality"] == "derm"
    clinical = load_dataset(root / "release_v0", modality="clinic")
    assert clinical.lesions[0].image_id == "Aal000"
    assert all(lesion.image_path is not None for lesion in clinical)  # every clinical image exists
    with pytest.raises(ValueError, match="modality"):
        load_dataset(root, modality="xray")


def test_ph2_text_table_one_annotator_masks(tmp_path):
    dataset = load_dataset(make_ph2(tmp_path / "d"))
    melanoma = dataset.lesion("IMD006")
    assert (melanoma.diagnosis, melanoma.benign_malignant) == ("melanoma", "malignant")
    assert melanoma.metadata["histological_diagnosis"] == "Melanoma"
    assert melanoma.metadata["pigment_network"] == "T"
    assert dataset.lesion("IMD004").diagnosis == "atypical nevus"
    assert [s.annotator for s in melanoma.segmentations] == ["PH2"]
    assert melanoma.segmentations[0].mask_path.name == "IMD006_lesion.bmp"
    assert dataset.lesion("IMD014").segmentations == ()


def test_ph2_row_laid_out_otherwise_than_the_header_keeps_its_label(tmp_path):
    root = make_ph2(tmp_path / "d")
    table = root / "PH2Dataset" / "PH2_dataset.txt"
    lines = table.read_text().splitlines()
    lines.insert(2, "|| IMD017 ||  || 2 || 1 | AT | P ||")
    table.write_text("\n".join(lines) + "\n")
    dataset = load_dataset(root)
    lesion = dataset.lesion("IMD017")
    assert (lesion.diagnosis, lesion.benign_malignant) == ("melanoma", "malignant")
    assert lesion.metadata["criteria"] == "1 | AT | P" and lesion.image_path is None
    assert any(p.kind == "missing_image" and p.image_id == "IMD017" for p in dataset.problems)


def test_ph2_spreadsheet_with_two_marks_in_a_row(tmp_path):
    root = make_ph2(tmp_path / "d", spreadsheet=True)
    assert detect_layout(root) == "ph2"
    dataset = load_dataset(root)
    assert dataset.lesion("IMD010").benign_malignant == "malignant"
    assert dataset.lesion("IMD015").diagnosis is None
    kinds = {p.kind: p.message for p in dataset.problems}
    assert "Common Nevus,Atypical Nevus" in kinds["ambiguous_label"]


def test_unknown_directory_message_names_the_diagnosis_formats(tmp_path):
    with pytest.raises(DatasetFormatError, match="derm7pt") as error:
        detect_layout(tmp_path)
    assert "IMA++ release layout" in str(error.value) and "PH2_dataset.txt" in str(error.value)


def test_decode_one_hot_and_melanoma_label():
    classes = ("MEL", "NV")
    assert decode_one_hot({"MEL": "1.0", "NV": "0.0"}, classes) == ("MEL", "")
    assert decode_one_hot({"MEL": 0.0, "NV": 1.0}, classes) == ("NV", "")
    assert decode_one_hot({"MEL": "X", "NV": float("nan")}, classes) == ("MEL", "")
    assert decode_one_hot({"MEL": "1", "NV": "1"}, classes) == (None, "several:MEL,NV")
    assert decode_one_hot({"MEL": "0", "NV": ""}, classes) == (None, "none")
    assert decode_one_hot({"MEL": "0.5", "NV": "0"}, classes) == (None, "bad:MEL=0.5")
    labels = (melanoma_label(True), melanoma_label(False), melanoma_label(None))
    assert labels == ("malignant", "benign", None)


def test_carve_validation_is_seeded_stratified_and_keeps_test():
    ids = [f"i{k:02d}" for k in range(20)]
    splits = ["train"] * 16 + ["test"] * 4
    strata = [1] * 8 + [0] * 8 + [1, 0, 1, 0]
    carved = carve_validation(ids, splits, strata, seed=3)
    assert carved[16:] == ["test"] * 4
    assert carved[:8].count("val") == 1 and carved[8:16].count("val") == 1
    assert carve_validation(ids, splits, strata, seed=3) == carved
    assert carve_validation(ids, carved, strata, seed=5) == carved  # a val split is kept as it is


def test_grouped_split_keeps_lesions_together_and_matches_the_plain_split_without_groups():
    ids = [f"i{k:02d}" for k in range(30)]
    strata = [1 if k % 3 == 0 else 0 for k in range(30)]
    plain = seeded_stratified_split(ids, strata, 4)
    assert grouped_stratified_split(ids, strata, [None] * 30, seed=4) == plain
    groups = [f"L{k // 3}" for k in range(30)]  # ten lesions of three images each
    split = grouped_stratified_split(ids, strata, groups, seed=4)
    for lesion in set(groups):
        assert len({s for s, g in zip(split, groups, strict=True) if g == lesion}) == 1
    assert set(split) == {"train", "val", "test"} and split.count("train") >= split.count("test")


def test_cli_derm7pt_images_option_loads_the_clinical_images(tmp_path, capsys):
    import json

    from iaa_desktop.cli import build_parser
    from iaa_desktop.cli.common import load_or_explain

    root = make_derm7pt(tmp_path / "d")
    parser, _ = build_parser()
    dataset, code = load_or_explain(parser.parse_args(["info", str(root), "--derm7pt-images", "clinic"]))
    assert code is None
    assert {lesion.metadata["modality"] for lesion in dataset} == {"clinic"}
    derm = load_dataset(root)
    # derm7pt names a lesion's clinical image with a capital (Aal000.jpg), its dermoscopic one without.
    pairs = [(a.image_path, b.image_path) for a, b in zip(dataset, derm, strict=True)]
    assert pairs and all(clinic != dermoscopic for clinic, dermoscopic in pairs)
    assert dataset.lesions[0].image_path.name == "Aal000.jpg"
    assert main(["info", str(root), "--json", "--derm7pt-images", "clinic"]) == 0
    assert json.loads(capsys.readouterr().out)["layout"] == "derm7pt"
