"""The browser table: columns merged in stages, numpy sorting and filtering."""

import numpy as np
import pandas as pd

from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.display.browser_table import (
    BrowserData,
    BrowserFilter,
    agreement_columns,
    base_frame,
    filter_choices,
    filter_mask,
    lowest_iaa_image,
    qa_flag_column,
    sort_order,
)
from iaa_desktop.core.display.dataset_analysis import iter_dataset_analysis
from iaa_desktop.core.progress import run_to_end
from tests.builders import make_folder, tree_digest


def _pairs(rows):
    return pd.DataFrame(rows, columns=["img_id", "annotator1", "annotator2", "dice_score"])


def test_agreement_columns_use_human_pairs_only():
    pairwise = _pairs([("x.JPG", "A1", "A2", 0.8), ("x.JPG", "A1", "A3", 0.6), ("x.JPG", "A1", "ST", 0.1),
                       ("y.JPG", "A1", "A2", 0.9)])
    columns = agreement_columns(pairwise)
    assert columns.loc["x", "iaa"] == np.float64(0.7)
    assert columns.loc["x", "min_pair_dice"] == 0.6  # the ST pair is not a human pair
    assert columns.loc["y", "iaa"] == 0.9


def test_qa_flags_list_kinds_most_severe_first_once_each():
    qa = pd.DataFrame({"image_id": ["x", "x", "x", "y", ""],
                       "kind": ["touches_border", "empty_mask", "empty_mask", "disconnected_regions",
                                "bad_csv"],
                       "severity": ["low", "high", "high", "medium", "high"]})
    flags = qa_flag_column(qa)
    assert flags["x"] == "empty_mask, touches_border"
    assert flags["y"] == "disconnected_regions"
    assert "" not in flags.index  # dataset-wide problems belong to no lesion


def test_sort_order_puts_missing_last_both_ways():
    frame = pd.DataFrame({"v": [0.5, np.nan, 0.1, 0.9], "t": ["b", None, "A", "c"]})
    assert list(sort_order(frame, "v")) == [2, 0, 3, 1]
    assert list(sort_order(frame, "v", descending=True)) == [3, 0, 2, 1]
    assert list(sort_order(frame, "t")) == [2, 0, 3, 1]  # case-insensitive
    assert list(sort_order(frame, "t", descending=True)) == [3, 0, 2, 1]


def test_a_folder_dataset_through_analysis_filters_and_sorting(tmp_path):
    root = make_folder(tmp_path / "ds", shape=(60, 80))
    before = tree_digest(root)
    dataset = load_dataset(root)
    analysis = run_to_end(iter_dataset_analysis(dataset, workers=1, cache=None, use_default_cache=False))
    frame = BrowserData(base_frame(dataset), analysis.browser_agreement, analysis.qa_flags).frame()
    assert list(frame["image_id"]) == ["a", "b", "c"]
    assert frame["annotator_ids"].tolist() == ["R1, R2", "R1, R2", "R1"]
    # a and b have two human masks: an IAA; c has one: none.
    assert frame["iaa"].notna().tolist() == [True, True, False]
    assert 0.5 < frame.loc[0, "iaa"] < 1.0
    assert frame.loc[0, "min_pair_dice"] == frame.loc[0, "iaa"]  # one pair
    assert lowest_iaa_image(frame) in {"a", "b"}
    assert filter_choices(frame) == {"annotator": ["R1", "R2"], "tool": ["T1", "T3"], "skill": ["S1", "S2"]}

    def shown(**kwargs):
        return frame["image_id"][filter_mask(frame, BrowserFilter(**kwargs))].tolist()

    assert shown() == ["a", "b", "c"]
    assert shown(malignancy="malignant") == ["b"]
    assert shown(text="NEVUS") == ["a", "c"]
    assert shown(annotator="R2") == ["a", "b"]
    assert shown(tool="T1", malignancy="benign") == ["a", "c"]
    assert shown(iaa_min=0.0, iaa_max=0.99) == ["a", "b"]  # no IAA: left out of a range
    assert shown(image_ids=frozenset({"c"})) == ["c"]
    assert tree_digest(root) == before


def test_reviews_and_predictions_become_columns():
    base = pd.DataFrame({"image_id": ["a", "b"], "diagnosis": ["n", "m"], "benign_malignant": ["benign", ""],
                         "split": ["", ""], "annotators": [1, 2], "masks": [1, 2],
                         "annotator_ids": ["R1", "R1, R2"], "tools": ["", ""], "skills": ["", ""]})
    predictions = pd.DataFrame({"predicted_iaa": [0.7], "p_malignant": [0.2]}, index=["b"])
    frame = BrowserData(base, predictions=predictions, reviews={"a": "exclude"}).frame()
    assert frame["review"].tolist() == ["exclude", "unreviewed"]
    assert np.isnan(frame.loc[0, "predicted_iaa"]) and frame.loc[1, "predicted_iaa"] == 0.7
    assert frame["image_id"][filter_mask(frame, BrowserFilter(review="exclude"))].tolist() == ["a"]
    assert frame["image_id"][filter_mask(frame, BrowserFilter(malignancy="unknown"))].tolist() == ["b"]
