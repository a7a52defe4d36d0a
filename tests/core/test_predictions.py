"""Reading iaa-predict's CSV and Grad-CAM maps; predicted vs true IAA."""

import math

import cv2
import numpy as np
import pandas as pd
import pytest

from iaa_desktop.core.training.predictions import (
    PredictionsError,
    available_cam_heads,
    browser_columns,
    cam_path,
    checkpoint_input_size,
    default_cam_head,
    iaa_scatter,
    prediction_paths,
    read_cam,
    read_predictions,
)


def write_csv(path, **columns):
    frame = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "split": ["train", "val", "test", ""],
                          "iaa_true": [0.9, 0.8, np.nan, 0.6], "malignant_true": [0, 1, -1, 0], **columns})
    frame.to_csv(path, index=False)
    return path


def test_predictions_become_browser_columns(tmp_path):
    path = write_csv(tmp_path / "p.csv", iaa_pred=[0.85, 0.7, 0.75, 0.65],
                     malignant_prob=[0.1, 0.9, 0.4, 0.2])
    frame = read_predictions(path)
    assert list(frame.index) == ["a", "b", "c", "d"]
    columns = browser_columns(frame)
    assert list(columns.columns) == ["predicted_iaa", "p_malignant"]
    assert columns.loc["b", "p_malignant"] == 0.9
    regressor = read_predictions(write_csv(tmp_path / "r.csv", iaa_pred=[0.1, 0.2, 0.3, 0.4]))
    assert list(browser_columns(regressor).columns) == ["predicted_iaa"]


def test_bad_prediction_files_are_named(tmp_path):
    with pytest.raises(PredictionsError, match="not found"):
        read_predictions(tmp_path / "missing.csv")
    (tmp_path / "x.csv").write_text("image_id,other\na,1\n")
    with pytest.raises(PredictionsError, match="not an iaa-predict CSV"):
        read_predictions(tmp_path / "x.csv")


def test_scatter_uses_the_images_with_both_values(tmp_path):
    pred = [0.85, 0.7, 0.75, 0.65]
    frame = read_predictions(write_csv(tmp_path / "p.csv", iaa_pred=pred))
    scatter = iaa_scatter(frame)
    assert scatter.image_ids == ("a", "b", "d")  # c has no true IAA
    assert scatter.mae == pytest.approx(np.mean([0.05, 0.1, 0.05]))
    assert scatter.pearson == pytest.approx(np.corrcoef([0.85, 0.7, 0.65], [0.9, 0.8, 0.6])[0, 1])
    truth = pd.Series({"a": 0.5, "c": 0.7, "z": 0.1})
    other = iaa_scatter(frame, truth)
    assert other.image_ids == ("a", "c") and math.isnan(other.pearson)  # 2 points: no Pearson
    diagnosis = read_predictions(write_csv(tmp_path / "d.csv", malignant_prob=[0.1, 0.2, 0.3, 0.4]))
    with pytest.raises(PredictionsError, match="no predicted IAA"):
        iaa_scatter(diagnosis)


def test_grad_cam_maps_are_read_and_resized(tmp_path):
    heat = np.zeros((8, 8), np.uint8)
    heat[2:4, 2:4] = 255
    assert cv2.imwrite(str(cam_path(tmp_path, "ISIC 1/x", "regression")), heat)
    assert cam_path(tmp_path, "ISIC 1/x", "regression").name == "ISIC_1_x_regression_cam.png"
    assert available_cam_heads(tmp_path) == ["regression"]
    cam = read_cam(tmp_path, "ISIC 1/x")
    assert cam.dtype == np.float32 and cam.max() == 1.0 and cam[0, 0] == 0.0
    big = read_cam(tmp_path, "ISIC 1/x", "regression", shape=(40, 60))
    assert big.shape == (40, 60) and big.min() >= 0.0 and big.max() <= 1.0
    assert read_cam(tmp_path, "ISIC 1/x", "classification") is None
    assert read_cam(tmp_path, "other") is None


def test_paths_sizes_and_heads(tmp_path):
    paths = prediction_paths(tmp_path / "run", tmp_path / "sets" / "demo-32px-metadata.h5")
    assert paths.csv == tmp_path / "run" / "predictions" / "demo-32px-metadata.csv"
    assert paths.cam_dir == tmp_path / "run" / "predictions" / "demo-32px-metadata-cams"
    assert checkpoint_input_size(tmp_path / "run") == 224
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "best.json").write_text('{"input_size": 64}')
    assert checkpoint_input_size(tmp_path / "run") == 64
    assert (default_cam_head("multitask"), default_cam_head("classification")) == ("regression",
                                                                                   "classification")


def test_the_scatter_sets_the_training_median_constant_beside_the_model(tmp_path):
    path = write_csv(tmp_path / "p.csv", iaa_pred=[0.85, 0.7, 0.75, 0.65], iaa_baseline=[0.86] * 4)
    scatter = iaa_scatter(read_predictions(path))
    true = np.array([0.9, 0.8, 0.6])
    assert scatter.baseline == pytest.approx(0.86)
    assert scatter.baseline_mae == pytest.approx(np.mean(np.abs(true - 0.86)))
    assert scatter.mae_ratio == pytest.approx(scatter.mae / scatter.baseline_mae)
    old = iaa_scatter(read_predictions(write_csv(tmp_path / "old.csv", iaa_pred=[0.85, 0.7, 0.75, 0.65])))
    assert math.isnan(old.baseline_mae) and math.isnan(old.mae_ratio)


def test_the_scatter_leaves_out_the_images_the_run_saw_unless_asked(tmp_path):
    path = write_csv(tmp_path / "p.csv", iaa_pred=[0.85, 0.7, 0.75, 0.65], iaa_baseline=[0.86] * 4)
    frame = read_predictions(path)
    seen = frozenset({"a", "b"})  # trained on a, chose its epoch by b; c has no IAA; d unseen
    unseen = iaa_scatter(frame, seen=seen)
    assert (unseen.subset, unseen.image_ids, unseen.n_left_out) == ("unseen", ("d",), 2)
    assert unseen.mae == pytest.approx(0.05) and unseen.baseline_mae == pytest.approx(0.26)
    only_seen = iaa_scatter(frame, seen=seen, subset="seen")
    assert only_seen.image_ids == ("a", "b") and only_seen.n_left_out == 1
    assert only_seen.mae == pytest.approx(np.mean([0.05, 0.1]))
    everything = iaa_scatter(frame, seen=seen, subset="all")
    assert everything.n == 3 and everything.n_left_out == 0
    unknown = iaa_scatter(frame)  # which images the run saw is not known: all, and said so
    assert unknown.subset == "all" and unknown.n == 3
    with pytest.raises(ValueError, match="subset"):
        iaa_scatter(frame, seen=seen, subset="test")


def test_the_images_a_run_saw_are_its_train_and_val_splits(tmp_path):
    import h5py

    from iaa_desktop.core.training.predictions import seen_in_training
    from iaa_desktop.core.training.training_set import TrainingSetError

    with pytest.raises(TrainingSetError, match="missing.h5"):
        seen_in_training(tmp_path / "missing.h5")
    fake = tmp_path / "fake.h5"
    with h5py.File(fake, "w") as h5:  # a file that is HDF5 but not a training set
        h5["image_id"] = np.array([b"a"])
    with pytest.raises(TrainingSetError, match="fake.h5"):
        seen_in_training(fake)
