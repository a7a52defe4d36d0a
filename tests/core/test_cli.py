"""``iaa-desktop info`` and ``qa``: output, JSON keys, exit codes, never writing the dataset."""

import json

import numpy as np

from iaa_desktop.cli import main
from tests.builders import make_folder, make_imapp, tree_digest, write_mask

INFO_KEYS = {
    "dataset", "layout", "images", "images_with_file", "masks", "human_masks", "consensus_masks",
    "annotators", "annotator_ids", "images_with_2plus_human_masks",
    "human_masks_in_multi_annotator_images", "annotators_in_multi_annotator_images",
    "benign_malignant", "splits", "problems", "problem_count",
}


def test_info_json_keys_and_counts(tmp_path, capsys):
    root = make_imapp(tmp_path / "r")
    assert main(["info", str(root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == INFO_KEYS  # documented in the README; stable
    assert summary["images"] == 3
    assert summary["masks"] == 9
    assert summary["human_masks"] == 7
    assert summary["consensus_masks"] == 2
    assert summary["annotators"] == 3
    assert summary["images_with_2plus_human_masks"] == 2
    assert summary["human_masks_in_multi_annotator_images"] == 6
    assert summary["problems"] == {}


def test_info_text_lists_problems_with_file_names(tmp_path, capsys):
    root = make_imapp(tmp_path / "r")
    gone = next((root / "segs").glob("ISIC_0000002_A02*"))
    gone.unlink()
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "missing_mask" in out and gone.name in out


def test_info_on_a_bad_directory_exits_2_with_message(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nothing-here")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["info", str(tmp_path)]) == 2
    assert "not a dataset IAA Desktop can read" in capsys.readouterr().err


def test_qa_exit_codes_and_csv(tmp_path, capsys):
    root = make_folder(tmp_path / "f")
    before = tree_digest(root)
    out_csv = tmp_path / "out" / "qa.csv"
    assert main(["qa", str(root), "--out", str(out_csv), "--workers", "1"]) == 0
    assert out_csv.read_text().startswith("image_id,mask,annotator,kind,severity,message,path")
    assert tree_digest(root) == before
    write_mask(root / "masks" / "R2" / "a.png", np.zeros((40, 50), bool))
    assert main(["qa", str(root), "--workers", "1"]) == 1  # an empty mask is high severity
    out = capsys.readouterr().out
    assert "empty_mask" in out
    assert main(["qa", str(tmp_path / "missing")]) == 2


def test_qa_refuses_to_write_into_the_dataset(tmp_path, capsys):
    root = make_folder(tmp_path / "f")
    before = tree_digest(root)
    assert main(["qa", str(root), "--out", str(root / "qa.csv")]) == 2
    assert "refusing to write into the dataset" in capsys.readouterr().err
    assert tree_digest(root) == before


def test_demo_command_writes_a_loadable_dataset(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--lesions", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 3 and summary["layout"] == "imapp" and summary["problems"] == {}


def test_demo_command_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("precious")
    assert main(["demo", "--out", str(tmp_path), "--lesions", "2"]) == 2
    assert "iaa-desktop: error:" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "precious"
