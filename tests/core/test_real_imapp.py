"""The loader on the real IMA++ metadata in ../shared/data/imapp (masks absent there)."""

import json

import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.dataset.summary import dataset_summary
from tests.shared_data import IMAPP_DIR, ISIC256_DIR, require_shared


@pytest.fixture(scope="module")
def imapp():
    return load_dataset(require_shared(IMAPP_DIR))


def test_counts_from_the_real_metadata(imapp):
    summary = dataset_summary(imapp)
    assert summary["images"] == 14_967
    assert summary["masks"] == 22_472
    assert summary["consensus_masks"] == 2 * 2_394
    assert summary["human_masks"] == 22_472 - 2 * 2_394
    assert summary["images_with_2plus_human_masks"] == 2_394
    assert summary["human_masks_in_multi_annotator_images"] == 5_111
    assert summary["annotators_in_multi_annotator_images"] == 15
    assert summary["annotators"] == 16


def test_absent_mask_files_are_problems_not_failures(imapp):
    kinds = imapp.problems_by_kind()
    assert kinds["missing_mask"] == 22_472
    assert kinds["missing_image"] == 14_967
    assert set(kinds) == {"missing_mask", "missing_image"}


def test_labels_and_metadata_join(imapp):
    lesion = imapp.lesion("ISIC_0000004")
    assert lesion.benign_malignant == "malignant"
    assert (lesion.width, lesion.height) == (1022, 767)
    assert sorted(s.annotator for s in lesion.segmentations) == ["A04", "A06", "MV", "ST"]
    labels = dataset_summary(imapp)["benign_malignant"]
    assert labels["benign"] == 13_376 and labels["malignant"] == 1_427


def test_same_annotator_repeats_are_separate_segmentations(imapp):
    repeats = 0
    for lesion in imapp:
        people = [s.annotator for s in lesion.human_segmentations]
        repeats += len(people) - len(set(people))
    assert repeats > 0


def test_info_json_on_the_real_metadata(capsys):
    require_shared(IMAPP_DIR)
    assert main(["info", str(IMAPP_DIR), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 14_967
    assert summary["masks"] == 22_472
    assert summary["images_with_2plus_human_masks"] == 2_394
    assert summary["human_masks_in_multi_annotator_images"] == 5_111
    assert summary["annotators_in_multi_annotator_images"] == 15


def test_real_images_joined_from_another_folder():
    require_shared(IMAPP_DIR)
    train = require_shared(ISIC256_DIR / "train")
    dataset = load_dataset(IMAPP_DIR, "imapp", images_dir=train)
    with_file = [lesion for lesion in dataset if lesion.image_path is not None]
    known = {lesion.image_id for lesion in dataset}
    joinable = [p for p in train.glob("ISIC_*.jpg") if p.stem in known]
    assert len(with_file) == len(joinable) > 1_000
    assert with_file[0].image_path.parent == train
