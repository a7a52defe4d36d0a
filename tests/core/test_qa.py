"""Mask QA: the IMA++ categories on hand-made masks, decoding problems, the table."""

import numpy as np
import pandas as pd

from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.dataset.qa import QA_COLUMNS, iter_qa, mask_findings, qa_exit_code, qa_summary
from iaa_desktop.core.progress import run_to_end
from tests.builders import disk, make_folder, make_imapp, tree_digest, write_mask

SHAPE = (40, 50)


def _kinds(mask):
    return [kind for kind, _ in mask_findings(mask)]


def test_imapp_categories_on_hand_made_masks():
    assert _kinds(np.zeros(SHAPE, bool)) == ["empty_mask"]
    assert _kinds(np.ones(SHAPE, bool)) == ["full_image_mask"]
    assert _kinds(disk(SHAPE, (20, 25), 10)) == []
    two = disk(SHAPE, (20, 10), 5) | disk(SHAPE, (20, 40), 5)
    assert _kinds(two) == ["disconnected_regions"]
    assert "2 separate regions" in mask_findings(two)[0][1]
    assert _kinds(disk(SHAPE, (0, 25), 6)) == ["touches_border"]
    # Diagonal neighbours are one region (8-connectivity), as annotators draw them.
    diagonal = np.zeros(SHAPE, bool)
    diagonal[10, 10] = diagonal[11, 11] = True
    assert _kinds(diagonal) == []


def test_qa_over_a_dataset_with_bad_masks(tmp_path):
    root = make_folder(tmp_path / "f")
    write_mask(root / "masks" / "R1" / "a.png", np.zeros(SHAPE, bool))  # empty
    write_mask(root / "masks" / "R2" / "b.png", disk((41, 50), (20, 25), 9))  # wrong size
    (root / "masks" / "R1" / "c.png").write_bytes(b"")  # zero bytes
    before = tree_digest(root)
    dataset = load_dataset(root)
    table = run_to_end(iter_qa(dataset))
    assert list(table.columns) == list(QA_COLUMNS)
    found = set(zip(table["image_id"], table["annotator"], table["kind"], strict=True))
    assert ("a", "R1", "empty_mask") in found
    assert ("b", "R2", "size_mismatch") in found
    assert ("c", "R1", "empty_file") in found
    # The remaining masks are fine and produce no finding.
    assert not ((table["image_id"] == "a") & (table["annotator"] == "R2")).any()
    assert list(table["severity"])[: 3] == ["high"] * 3  # high first
    assert qa_exit_code(table) == 1
    assert qa_summary(table)["high"]["empty_mask"] == 1
    assert tree_digest(root) == before


def test_qa_includes_loader_problems_and_parallel_matches_serial(tmp_path):
    root = make_imapp(tmp_path / "r")
    next((root / "segs").glob("ISIC_0000003_*")).unlink()
    dataset = load_dataset(root)
    serial = run_to_end(iter_qa(dataset, workers=1))
    parallel = run_to_end(iter_qa(dataset, workers=2))
    pd.testing.assert_frame_equal(serial, parallel)
    assert "missing_mask" in set(serial["kind"])


def test_clean_dataset_exit_code_zero_with_low_findings(tmp_path):
    root = make_folder(tmp_path / "f")
    write_mask(root / "masks" / "R1" / "a.png", disk(SHAPE, (0, 25), 8))  # touches border
    table = run_to_end(iter_qa(load_dataset(root)))
    assert set(table["kind"]) == {"touches_border"}
    assert qa_exit_code(table) == 0


def test_progress_is_reported_per_lesion(tmp_path):
    dataset = load_dataset(make_folder(tmp_path / "f"))
    steps = []
    run_to_end(iter_qa(dataset), steps.append)
    assert [s.done for s in steps] == [1, 2, 3] and steps[-1].total == 3
