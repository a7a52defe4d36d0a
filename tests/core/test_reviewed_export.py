"""``export-reviewed``: reviews in, a clean folder-layout dataset out, reloaded with the expected
counts; never in place; unreadable lesions left out and listed; an interrupted export leaves nothing."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.agreement.consensus import majority_vote
from iaa_desktop.core.agreement.engine import iter_dataset_agreement
from iaa_desktop.core.agreement.staple import staple
from iaa_desktop.core.agreement.tables import image_level_table
from iaa_desktop.core.curation.reviewed_export import (
    MANIFEST_FORMAT,
    ReviewedExportError,
    iter_export_reviewed,
)
from iaa_desktop.core.dataset.demo import demo_dataset_dir
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.progress import run_to_end
from iaa_desktop.core.review.reviews import Review, save_review
from iaa_desktop.core.review.workspace import Workspace
from iaa_desktop.core.workspace_paths import WORKSPACES_ENV, workspace_dir_for
from tests.builders import make_imapp, tree_digest

WHEN = "2026-12-04T10:00:00+00:00"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(WORKSPACES_ENV, str(tmp_path / "workspaces"))


def _review(root, *reviews: Review) -> None:
    with Workspace.open(workspace_dir_for(root), dataset_root=root) as workspace:
        for review in reviews:
            save_review(workspace, review, now=WHEN)


def _read(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0


def _masks(dataset, image_id):
    """The first mask of each human annotator of a lesion, as the export picks them."""
    found = {}
    for seg in dataset.lesion(image_id).human_segmentations:
        found.setdefault(seg.annotator, _read(seg.mask_path))
    return found


def test_cli_round_trip_on_a_reviewed_dataset(tmp_path, capsys):
    root = make_imapp(tmp_path / "data")
    _review(root,
            Review("ISIC_0000001", "consensus_acceptable", "A01 is right", "A01", "dr x"),
            Review("ISIC_0000003", "exclude", "out of focus", "", "dr y"))
    before = tree_digest(root)
    out = tmp_path / "reviewed"
    assert main(["export-reviewed", str(root), "--out", str(out), "--with-annotators"]) == 0
    printed = capsys.readouterr().out
    assert "1 lesion(s) had no chosen reference: STAPLE was used" in printed
    assert tree_digest(root) == before

    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "folder" and info["images"] == info["images_with_file"] == 2
    # References (2) + annotators' masks: ISIC_0000001 A00, A01; ISIC_0000002 A00 (first of two), A01, A02.
    assert info["masks"] == 2 + 5 and info["problems"] == {}
    assert info["annotator_ids"] == ["A00", "A01", "A02"]  # the reference is not an annotator

    # Loaded back, the reference is not an annotator: the IAA is the humans' (the source's).
    reviewed = load_dataset(out)
    for image_id in ("ISIC_0000001", "ISIC_0000002"):
        lesion = reviewed.lesion(image_id)
        assert [s.annotator for s in lesion.consensus_segmentations] == ["reference"]
        assert "reference" not in [s.annotator for s in lesion.human_segmentations]
    source = load_dataset(root)
    mean_dice = {}
    for name, dataset in (("source", source), ("reviewed", reviewed)):
        table = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=None))
        levels = image_level_table(table.pairwise)
        mean_dice[name] = dict(zip(levels["img_id"].str.replace(r"\.\w+$", "", regex=True),
                                   levels["dice_score_mean"], strict=True))
    # ISIC_0000001's two annotators went over unchanged (its reference is A01's own mask,
    # which would have added a Dice of 1 had it counted as an annotator).
    assert mean_dice["reviewed"]["ISIC_0000001"] == mean_dice["source"]["ISIC_0000001"] < 0.9
    first, second = _masks(source, "ISIC_0000001"), _masks(source, "ISIC_0000002")
    np.testing.assert_array_equal(_read(out / "masks" / "reference" / "ISIC_0000001.png"), first["A01"])
    np.testing.assert_array_equal(_read(out / "masks" / "reference" / "ISIC_0000002.png"),
                                  staple(list(second.values())).mask)
    np.testing.assert_array_equal(_read(out / "masks" / "A00" / "ISIC_0000002.png"), second["A00"])
    assert (out / "images" / "ISIC_0000001.JPG").read_bytes() == (root / "ISIC_images" /
                                                                  "ISIC_0000001.JPG").read_bytes()
    assert not (out / "images" / "ISIC_0000003.JPG").exists()

    metadata = pd.read_csv(out / "metadata.csv", dtype=str, keep_default_na=False).set_index("image_id")
    assert metadata.loc["ISIC_0000001", ["review_status", "review_note", "reviewer", "reviewed_at",
                                         "reference", "reference_source"]].tolist() == \
        ["consensus_acceptable", "A01 is right", "dr x", WHEN, "A01", "chosen"]
    assert metadata.loc["ISIC_0000002", ["review_status", "reference", "reference_source"]].tolist() == \
        ["unreviewed", "STAPLE", "default"]
    assert metadata.loc["ISIC_0000002", "benign_malignant"] == "malignant"
    reloaded = load_dataset(out)
    assert reloaded.lesion("ISIC_0000002").benign_malignant == "malignant"

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == MANIFEST_FORMAT
    assert manifest["source"]["dataset_fingerprint"].startswith("masks:")
    assert manifest["counts"] == {"lesions_exported": 2, "excluded_by_review": 1, "skipped": 0,
                                  "references": {"STAPLE": 1, "annotator": 1},
                                  "default_reference_used": 1, "reference_masks": 2, "annotator_masks": 5}


def test_mv_reference_a_lone_annotator_and_the_mv_default(tmp_path):
    root = make_imapp(tmp_path / "data")
    dataset = load_dataset(root)
    reviews = {"ISIC_0000002": Review("ISIC_0000002", "consensus_acceptable", reference="MV")}
    summary = run_to_end(iter_export_reviewed(dataset, reviews, tmp_path / "out", default_reference="MV"))
    assert (summary.n_exported, summary.n_default_reference, summary.n_annotator_masks) == (3, 1, 0)
    second = _masks(dataset, "ISIC_0000002")
    np.testing.assert_array_equal(_read(tmp_path / "out" / "masks" / "reference" / "ISIC_0000002.png"),
                                  majority_vote(list(second.values())))
    metadata = pd.read_csv(tmp_path / "out" / "metadata.csv", dtype=str).set_index("image_id")
    assert metadata.loc["ISIC_0000003", ["reference", "reference_source"]].tolist() == \
        ["A02", "only annotator"]
    assert metadata.loc["ISIC_0000001", ["reference", "reference_source"]].tolist() == ["MV", "default"]
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["reference"]


def test_never_in_place_nor_over_a_full_folder(tmp_path, capsys):
    root = make_imapp(tmp_path / "data")
    dataset = load_dataset(root)
    before = tree_digest(root)
    for bad in (root, root / "export", tmp_path):
        with pytest.raises(ReviewedExportError, match="dataset"):
            run_to_end(iter_export_reviewed(dataset, {}, bad))
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["export-reviewed", str(root), "--out", str(full)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (full / "keep.txt").read_text() == "mine" and tree_digest(root) == before


def test_unreadable_lesions_are_left_out_and_listed(tmp_path):
    root = make_imapp(tmp_path / "data")
    (root / "ISIC_images" / "ISIC_0000002.JPG").write_bytes(b"\xff\xd8" + b"\x13" * 100)
    for mask in (root / "segs").glob("ISIC_0000003_*"):
        mask.write_bytes(b"")
    summary = run_to_end(iter_export_reviewed(load_dataset(root), {}, tmp_path / "out"))
    assert summary.n_exported == 1
    assert "ISIC_0000002.JPG" in summary.skipped["ISIC_0000002"]
    assert "file is empty" in summary.skipped["ISIC_0000003"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["skipped"] == summary.skipped
    assert len(load_dataset(tmp_path / "out")) == 1


def test_a_chosen_annotator_without_a_readable_mask_is_left_out_with_the_reason(tmp_path):
    root = make_imapp(tmp_path / "data")
    next((root / "segs").glob("ISIC_0000001_A01_*")).write_bytes(b"")
    reviews = {"ISIC_0000001": Review("ISIC_0000001", "consensus_acceptable", reference="A01")}
    summary = run_to_end(iter_export_reviewed(load_dataset(root), reviews, tmp_path / "out"))
    assert "the chosen reference A01 has no readable mask" in summary.skipped["ISIC_0000001"]
    assert "file is empty" in summary.skipped["ISIC_0000001"]


def test_an_interrupted_export_leaves_no_folder(tmp_path):
    root = make_imapp(tmp_path / "data")
    job = iter_export_reviewed(load_dataset(root), {}, tmp_path / "out")
    next(job), next(job)
    job.close()  # what a worker's Cancel does
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_the_reviewed_demo_exports_and_reloads_with_the_expected_counts(tmp_path):
    demo = load_dataset(demo_dataset_dir())
    lesions = demo.lesions
    reviews = {lesions[0].image_id: Review(lesions[0].image_id, "exclude"),
               lesions[1].image_id: Review(lesions[1].image_id, "exclude"),
               lesions[2].image_id: Review(lesions[2].image_id, "consensus_acceptable", reference="MV")}
    summary = run_to_end(iter_export_reviewed(demo, reviews, tmp_path / "out", include_annotators=True))
    expected_masks = sum(len({s.annotator for s in lesion.human_segmentations}) for lesion in lesions[2:])
    assert (summary.n_exported, summary.n_excluded_by_review, summary.skipped) == (len(demo) - 2, 2, {})
    assert summary.references == {"MV": 1, "STAPLE": len(demo) - 3}
    assert summary.n_annotator_masks == expected_masks
    reloaded = load_dataset(tmp_path / "out")
    assert len(reloaded) == len(demo) - 2 and reloaded.problems == ()
    assert sum(len(lesion.segmentations) for lesion in reloaded) == expected_masks + len(demo) - 2
    assert {lesion.benign_malignant for lesion in reloaded} <= {"benign", "malignant"}
