"""Both loaders and layout detection on small hand-made datasets."""

from pathlib import Path

import pandas as pd
import pytest

from iaa_desktop.core.dataset.io import detect_layout, load_dataset
from iaa_desktop.core.errors import DatasetFormatError, DatasetReadError
from tests.builders import disk, make_folder, make_imapp, tree_digest, write_image, write_mask


def test_imapp_layout_finds_folders_and_metadata(tmp_path):
    root = make_imapp(tmp_path / "release")
    before = tree_digest(root)
    dataset = load_dataset(root)
    assert dataset.layout == "imapp"
    assert [lesion.image_id for lesion in dataset] == ["ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]
    assert dataset.problems == ()
    first = dataset.lesion("ISIC_0000001")
    assert first.image_path == root / "ISIC_images" / "ISIC_0000001.JPG"
    assert first.benign_malignant == "benign"
    assert first.diagnosis == "Nevus"  # the most specific diagnosis column
    assert (first.height, first.width) == (48, 64)
    assert [s.annotator for s in first.human_segmentations] == ["A00", "A01"]
    assert [s.annotator for s in first.consensus_segmentations] == ["ST", "MV"]
    assert first.segmentations[0].tool == "T1" and first.segmentations[0].skill == "S1"
    assert first.metadata["age_approx"] == "40.0"
    assert tree_digest(root) == before  # the loader wrote nothing


def test_imapp_repeat_by_same_annotator_is_kept_as_two_segmentations(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    second = dataset.lesion("ISIC_0000002")
    annotators = [s.annotator for s in second.segmentations]
    assert annotators.count("A00") == 2
    assert len({s.mask_path for s in second.segmentations}) == 4


def test_imapp_lowercase_jpg_and_explicit_folders(tmp_path):
    root = make_imapp(tmp_path / "r", images_dir="imgs")
    for path in (root / "imgs").iterdir():
        path.rename(path.with_suffix(".jpg"))
    dataset = load_dataset(root, "imapp", images_dir=root / "imgs", masks_dir=root / "segs")
    assert all(lesion.image_path is not None for lesion in dataset)
    assert dataset.lesion("ISIC_0000003").image_path.suffix == ".jpg"


def test_imapp_missing_files_are_problems_not_errors(tmp_path):
    root = make_imapp(tmp_path / "r")
    (root / "ISIC_images" / "ISIC_0000002.JPG").unlink()
    missing_mask = next((root / "segs").glob("ISIC_0000003_*"))
    missing_mask.unlink()
    dataset = load_dataset(root)
    kinds = dataset.problems_by_kind()
    assert kinds == {"missing_image": 1, "missing_mask": 1}
    assert len(dataset) == 3
    message = next(p.message for p in dataset.problems if p.kind == "missing_mask")
    assert missing_mask.name in message


def test_imapp_duplicate_listing_and_unknown_image(tmp_path):
    root = make_imapp(tmp_path / "r")
    seg_csv = root / "IMAplusplus_seg_metadata.csv"
    segs = pd.read_csv(seg_csv, dtype=str)
    extra = segs.iloc[[0]].assign(ISIC_id="ISIC_9999999")
    pd.concat([segs, segs.iloc[[0]], extra]).to_csv(seg_csv, index=False)
    dataset = load_dataset(root)
    kinds = dataset.problems_by_kind()
    assert kinds["duplicate_mask"] == 2  # the same file listed again (twice)
    assert kinds["unknown_image"] == 1
    assert dataset.lesion("ISIC_0000001").segmentations[0].annotator == "A00"
    assert len(dataset.lesion("ISIC_0000001").segmentations) == 4


def test_imapp_missing_required_column_names_file_and_column(tmp_path):
    root = make_imapp(tmp_path / "r")
    seg_csv = root / "IMAplusplus_seg_metadata.csv"
    pd.read_csv(seg_csv).drop(columns="seg_filename").to_csv(seg_csv, index=False)
    with pytest.raises(DatasetReadError, match=r"IMAplusplus_seg_metadata\.csv.*seg_filename"):
        load_dataset(root)


def test_imapp_semicolon_delimited_and_bom_csvs_are_read(tmp_path):
    root = make_imapp(tmp_path / "r")
    seg_csv = root / "IMAplusplus_seg_metadata.csv"
    text = pd.read_csv(seg_csv, dtype=str).to_csv(index=False, sep=";")
    seg_csv.write_text("\ufeff" + text, encoding="utf-8")
    dataset = load_dataset(root)
    assert sum(len(lesion.segmentations) for lesion in dataset) == 9


def test_unknown_labels_are_reported_and_left_unknown(tmp_path):
    root = make_imapp(tmp_path / "r")
    img_csv = root / "IMAplusplus_img_metadata.csv"
    frame = pd.read_csv(img_csv, dtype=str)
    frame.loc[0, "benign_malignant"] = "probably fine"
    frame.to_csv(img_csv, index=False)
    dataset = load_dataset(root)
    assert dataset.lesion("ISIC_0000001").benign_malignant is None
    assert dataset.problems_by_kind() == {"unknown_label": 1}


def test_folder_layout(tmp_path):
    root = make_folder(tmp_path / "f")
    before = tree_digest(root)
    dataset = load_dataset(root)
    assert dataset.layout == "folder"
    assert [lesion.image_id for lesion in dataset] == ["a", "b", "c"]
    a = dataset.lesion("a")
    assert [s.annotator for s in a.human_segmentations] == ["R1", "R2"]
    assert [s.annotator for s in a.consensus_segmentations] == ["MV"]
    assert a.segmentations[0].tool == "T1" and a.segmentations[1].skill == "S2"
    assert a.benign_malignant == "benign" and a.split == "train" and a.diagnosis == "nevus"
    assert len(dataset.lesion("c").segmentations) == 1
    assert dataset.problems == ()
    assert tree_digest(root) == before


def test_folder_layout_without_metadata_and_with_orphan_mask(tmp_path):
    root = make_folder(tmp_path / "f")
    (root / "metadata.csv").unlink()
    write_mask(root / "masks" / "R1" / "zzz.png", disk((40, 50), (20, 20), 5))
    dataset = load_dataset(root)
    assert dataset.lesion("a").benign_malignant is None
    assert dataset.problems_by_kind() == {"missing_image": 1, "unknown_image": 1}


def test_ids_differing_only_in_case_or_extension(tmp_path):
    root = make_folder(tmp_path / "f")
    write_image(root / "images" / "a.jpg")
    write_image(root / "images" / "A.png")
    dataset = load_dataset(root)
    assert dataset.problems_by_kind() == {"duplicate_image": 1}
    assert "A.png" in dataset.problems[0].message and "a.jpg" in dataset.problems[0].message


def test_detection_messages(tmp_path):
    with pytest.raises(DatasetReadError, match="no such directory"):
        detect_layout(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetReadError, match="not a directory"):
        detect_layout(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetFormatError, match="(?s)IMA\\+\\+ release layout.*folder layout"):
        detect_layout(empty)


def test_symlink_loop_does_not_hang(tmp_path):
    root = make_imapp(tmp_path / "r")
    (root / "segs" / "loop").symlink_to(root, target_is_directory=True)
    dataset = load_dataset(root)
    assert len(dataset) == 3 and dataset.problems == ()


def test_unicode_and_spaces_in_paths(tmp_path):
    root = make_folder(tmp_path / "données de test ü")
    assert len(load_dataset(Path(root))) == 3
