"""End-to-end CPU runs of iaa-train (three modes), resume, failures, and iaa-predict on a 32-px demo set."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from iaa_desktop.core.training.runs import EVENTS_FILE, RunSpec, load_spec, read_events
from trainer import losses
from trainer import predict as predict_cli
from trainer.__main__ import main
from trainer.models import build_model
from trainer.train import seed_everything, summary_columns

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread

BACKBONE = "resnet10t"


def _train(training_set, out, *extra):
    return main(["--data", str(training_set), "--out", str(out), "--backbone", BACKBONE, "--batch-size", "4",
                 "--max-steps", "2", "--device", "cpu", *extra])


def _events(run_dir):
    events, _ = read_events(run_dir)
    return events


def _summary(run_dir):
    with open(Path(run_dir) / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _kinds_in_order(events):
    kinds = [e["event"] for e in events if e["event"] != "epoch_progress"]
    collapsed = []
    for kind in kinds:
        if not collapsed or collapsed[-1] != kind or kind != "checkpoint_saved":
            collapsed.append(kind)
    return collapsed


@pytest.mark.parametrize("mode", ["regression", "classification", "multitask"])
def test_each_mode_trains_and_writes_the_run_directory(training_set, tmp_path, mode):
    run_dir = tmp_path / "run"
    assert _train(training_set, run_dir, "--mode", mode, "--epochs", "2") == 0

    events = _events(run_dir)
    assert _kinds_in_order(events) == ["run_started", "epoch_end", "checkpoint_saved", "epoch_end",
                                       "checkpoint_saved", "run_finished"]
    started = events[0]
    assert started["spec"]["mode"] == mode and started["device"] == "cpu"
    assert started["n_images"] == {"train": 8, "val": 1, "test": 3}
    progress = [e for e in events if e["event"] == "epoch_progress"]
    assert [(e["epoch"], e["batch"], e["batches"]) for e in progress] == [(1, 1, 2), (1, 2, 2), (2, 1, 2),
                                                                          (2, 2, 2)]
    saved = [(e["which"], e["epoch"]) for e in events if e["event"] == "checkpoint_saved"]
    assert saved[0] == ("best", 1) and ("last", 1) in saved and ("last", 2) in saved
    finished = events[-1]
    assert finished["best_epoch"] in (1, 2)
    assert finished["best_metric"] == ("mae" if mode == "regression" else "balanced_accuracy")
    assert set(finished["test"]) == {c.removeprefix("val_") for c in summary_columns(mode)[3:]}

    rows = _summary(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == summary_columns(mode)
    assert float(rows[0]["lr"]) == pytest.approx(RunSpec().lr)  # cosine: the full rate in epoch 1
    assert float(rows[1]["lr"]) == pytest.approx(RunSpec().lr * 0.5)  # halfway down after 1 of 2 epochs
    assert np.isfinite(float(rows[1]["train_loss"]))

    spec = load_spec(run_dir / "run.json")
    assert spec.mode == mode and spec.backbone == BACKBONE and spec.max_steps_per_epoch == 2
    assert Path(spec.data).is_absolute()
    assert "epoch 2/2" in (run_dir / "train.log").read_text()

    folder = run_dir / "checkpoints"
    for name in ("best", "last"):
        meta = json.loads((folder / f"{name}.json").read_text())
        assert meta["backbone"] == BACKBONE and meta["mode"] == mode
        assert meta["classes"] == ["benign", "malignant"] and meta["input_size"] == 32
        assert meta["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
        assert meta["spec"]["mode"] == mode and "metrics" in meta
        tensors = load_file(folder / f"{name}.safetensors")
        assert any(k.startswith("backbone.") for k in tensors)
        assert any(k.startswith("reg_head.") for k in tensors) == (mode != "classification")
        assert any(k.startswith("cls_head.") for k in tensors) == (mode != "regression")
    assert json.loads((folder / "last.json").read_text())["epoch"] == 2
    state = torch.load(folder / "last_state.pt", weights_only=True)
    assert state["epoch"] == 2 and state["scheduler"]["last_epoch"] == 2
    assert "exp_avg" in next(iter(state["optimizer"]["state"].values()))  # AdamW, the default


def test_sgd_and_step_schedule_still_available(training_set, tmp_path):
    run_dir = tmp_path / "sgd"
    assert _train(training_set, run_dir, "--mode", "classification", "--epochs", "2", "--optimizer", "sgd",
                  "--schedule", "step", "--lr", "0.01") == 0
    state = torch.load(run_dir / "checkpoints" / "last_state.pt", weights_only=True)
    assert "momentum_buffer" in next(iter(state["optimizer"]["state"].values()))
    assert [float(r["lr"]) for r in _summary(run_dir)] == pytest.approx([0.01, 0.01])  # step of 10 epochs


def test_fast_mode_trains_the_heads_only_and_writes_a_usable_run(training_set, tmp_path, monkeypatch):
    import trainer.fast
    from trainer.recipe import fast_iaa_lr_mult

    calls = []
    real_train_heads = trainer.fast.train_heads
    monkeypatch.setattr(trainer.fast, "train_heads",
                        lambda *a, **kw: calls.append((a, kw)) or real_train_heads(*a, **kw))
    run_dir = tmp_path / "fast"
    assert _train(training_set, run_dir, "--mode", "multitask", "--epochs", "3", "--fast",
                  "--tta", "flip") == 0
    events = _events(run_dir)
    assert [e["event"] for e in events if e["event"] == "epoch_end"] == ["epoch_end"] * 3
    finished = events[-1]
    assert finished["event"] == "run_finished" and {"mae", "balanced_accuracy"} <= set(finished["test"])
    assert [r["epoch"] for r in _summary(run_dir)] == ["1", "2", "3"]
    assert load_spec(run_dir / "run.json").fast
    # The bounded IAA head learns faster by the sigmoid's slope at the training median.
    (args, kwargs), = calls
    iaa = args[2].numpy()
    assert kwargs["reg_lr_mult"] == pytest.approx(fast_iaa_lr_mult(float(np.nanmedian(iaa))))
    assert kwargs["reg_lr_mult"] > 1
    # The backbone is the one the run started from, BatchNorm statistics included; the heads moved.
    seed_everything(0)
    fresh = build_model(BACKBONE, "multitask", "none")
    saved = load_file(run_dir / "checkpoints" / "last.safetensors")
    for key, value in fresh.state_dict().items():
        if key.startswith("backbone.") and value.is_floating_point():
            assert torch.equal(saved[key], value), key
    assert not torch.equal(saved["cls_head.0.weight"], fresh.state_dict()["cls_head.0.weight"])
    assert _train(training_set, run_dir, "--fast", "--resume") == 1  # refused with a message
    assert "start it again" in _events(run_dir)[-1]["message"]


def test_resume_reproduces_the_uninterrupted_run(training_set, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _train(training_set, straight, "--mode", "multitask", "--epochs", "2") == 0
    assert _train(training_set, resumed, "--mode", "multitask", "--epochs", "1") == 0
    assert _train(training_set, resumed, "--resume", "--epochs", "2") == 0

    a, b = _summary(straight), _summary(resumed)
    assert [r["epoch"] for r in b] == ["1", "2"]
    for row_a, row_b in zip(a, b, strict=True):
        for column in row_a:
            expected = pytest.approx(float(row_a[column]), rel=1e-6, abs=1e-9, nan_ok=True)
            assert float(row_b[column]) == expected
    events = _events(resumed)
    assert [e.get("resumed_from_epoch") for e in events if e["event"] == "run_started"] == [None, 1]
    assert load_spec(resumed / "run.json").epochs == 2
    same = load_file(straight / "checkpoints/last.safetensors")
    other = load_file(resumed / "checkpoints/last.safetensors")
    assert all(torch.allclose(same[k].float(), other[k].float(), rtol=1e-5, atol=1e-7) for k in same)


def test_resume_with_another_mode_is_refused_and_leaves_the_run(training_set, tmp_path):
    run_dir = tmp_path / "run"
    assert _train(training_set, run_dir, "--mode", "regression", "--epochs", "1") == 0
    assert _train(training_set, run_dir, "--resume", "--mode", "classification", "--epochs", "2") == 1
    error = _events(run_dir)[-1]
    assert error["event"] == "error"
    assert "trained as backbone=resnet10t, mode=regression" in error["message"]
    assert "mode=classification" in error["message"]
    assert load_spec(run_dir / "run.json").mode == "regression"


def test_resume_without_a_checkpoint_is_an_error(training_set, tmp_path):
    assert _train(training_set, tmp_path / "empty", "--resume", "--epochs", "1") == 1
    assert "no last.safetensors" in _events(tmp_path / "empty")[-1]["message"]


def test_nan_loss_stops_the_run(training_set, tmp_path, monkeypatch):
    def nan_loss(self, outputs, iaa, malignant):
        return outputs["iaa"].sum() * float("nan")

    monkeypatch.setattr(losses.TaskLoss, "forward", nan_loss)
    run_dir = tmp_path / "run"
    assert _train(training_set, run_dir, "--mode", "regression", "--epochs", "2") == 1
    events = _events(run_dir)
    assert events[-1]["event"] == "error"
    assert "became nan at batch 1/2" in events[-1]["message"]
    assert "run_finished" not in {e["event"] for e in events}
    assert not (run_dir / "checkpoints").exists()


def test_bad_arguments_exit_2_with_an_error_event(tmp_path):
    assert main(["--out", str(tmp_path / "run")]) == 2
    assert "no training set" in _events(tmp_path / "run")[-1]["message"]
    assert main(["--data", "x.h5", "--out", str(tmp_path / "run2"), "--alpha", "2"]) == 2
    assert "alpha must lie in [0, 1]" in _events(tmp_path / "run2")[-1]["message"]


def test_missing_training_set_and_unknown_backbone_are_error_events(training_set, tmp_path):
    assert main(["--data", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "a"), "--device", "cpu"]) == 1
    assert "training set file does not exist" in _events(tmp_path / "a")[-1]["message"]
    assert main(["--data", str(training_set), "--out", str(tmp_path / "b"), "--backbone", "no_such_net",
                 "--device", "cpu"]) == 1
    assert "unknown timm backbone 'no_such_net'" in _events(tmp_path / "b")[-1]["message"]


def test_spec_file_with_flag_overrides(training_set, tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"data": str(training_set), "mode": "classification",
                                     "backbone": BACKBONE, "epochs": 5, "batch_size": 4,
                                     "max_steps_per_epoch": 1, "cls_loss": "ce", "augment": False,
                                     "num_workers": 1, "device": "cpu"}))
    run_dir = tmp_path / "run"
    assert main([str(spec_path), "--out", str(run_dir), "--epochs", "1"]) == 0
    spec = load_spec(run_dir / "run.json")
    assert (spec.mode, spec.epochs, spec.cls_loss, spec.augment) == ("classification", 1, "ce", False)
    assert (run_dir / EVENTS_FILE).is_file()


def test_iaa_predict_writes_predictions(training_set, tmp_path):
    run_dir = tmp_path / "run"
    assert _train(training_set, run_dir, "--mode", "multitask", "--epochs", "1") == 0
    out = tmp_path / "predictions.csv"
    assert predict_cli.main(["--checkpoint", str(run_dir), "--data", str(training_set), "--out", str(out),
                             "--device", "cpu"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["image_id", "split", "iaa_true", "malignant_true", "iaa_pred",
                                   "iaa_clipped", "iaa_baseline", "malignant_prob"]
    assert len(frame) == 12 and frame["image_id"].is_unique
    assert frame["iaa_pred"].between(0, 1).all() and not frame["iaa_clipped"].any()
    # The constant to beat is the training split's median IAA, and the summary sets the two side by side.
    train_median = float(frame.loc[frame["split"] == "train", "iaa_true"].median())
    assert frame["iaa_baseline"].unique().tolist() == pytest.approx([train_median])
    summary = json.loads((tmp_path / "predictions.summary.json").read_text())
    test = frame[frame["split"] == "test"]
    assert summary["splits"]["test"]["n"] == len(test)
    test_mae = (test["iaa_pred"] - test["iaa_true"]).abs().mean()
    assert summary["splits"]["test"]["mae"] == pytest.approx(test_mae)
    baseline_mae = (train_median - test["iaa_true"]).abs().mean()
    assert summary["splits"]["test"]["baseline_mae"] == pytest.approx(baseline_mae)
    assert frame["malignant_prob"].between(0, 1).all() and frame["iaa_pred"].notna().all()
    assert sorted(frame["split"].unique()) == ["test", "train", "val"]

    cams = tmp_path / "cams"
    assert predict_cli.main(["--checkpoint", str(run_dir / "checkpoints"), "--data", str(training_set),
                             "--out", str(tmp_path / "p2.csv"), "--device", "cpu", "--cam", "classification",
                             "--cam-dir", str(cams)]) == 0
    assert len(list(cams.glob("*_classification_cam.png"))) == 12
    assert len(list(cams.glob("*_classification_overlay.png"))) == 12

    assert predict_cli.main(["--checkpoint", str(tmp_path / "nowhere"), "--data", str(training_set),
                             "--out", str(tmp_path / "x.csv"), "--device", "cpu"]) == 1


def test_torchrun_two_cpu_processes_agree(training_set, tmp_path):
    run_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "trainer", "--data", str(training_set), "--out", str(run_dir), "--mode", "multitask",
               "--backbone", BACKBONE, "--epochs", "2", "--batch-size", "2", "--max-steps", "2",
               "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
    events = _events(run_dir)
    kinds = [e["event"] for e in events]
    assert kinds.count("run_started") == 1 and kinds.count("epoch_end") == 2  # rank 0 alone writes
    assert events[0]["world_size"] == 2
    finished = events[-1]
    assert finished["event"] == "run_finished" and finished["world_size"] == 2 and finished["ranks_agree"]
    assert [r["epoch"] for r in _summary(run_dir)] == ["1", "2"]
    assert (run_dir / "checkpoints" / "best.safetensors").is_file()


def test_interrupt_ends_with_an_error_event_and_exit_130(training_set, tmp_path, monkeypatch):
    def interrupted(self, outputs, iaa, malignant):
        raise KeyboardInterrupt

    monkeypatch.setattr(losses.TaskLoss, "forward", interrupted)
    run_dir = tmp_path / "run"
    assert _train(training_set, run_dir, "--mode", "regression", "--epochs", "1") == 130
    assert "interrupted" in _events(run_dir)[-1]["message"]


def test_iaa_predict_on_a_folder_of_images(training_set, tmp_path):
    run_dir = tmp_path / "run"
    assert _train(training_set, run_dir, "--mode", "regression", "--epochs", "1") == 0
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("lesion a.jpg", "lesion_b.PNG"):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    before = sorted(p.name for p in folder.iterdir())
    out = tmp_path / "folder.csv"
    assert predict_cli.main(["--checkpoint", str(run_dir), "--data", str(folder), "--out", str(out),
                             "--device", "cpu"]) == 0
    frame = pd.read_csv(out, keep_default_na=False)
    assert sorted(frame["image_id"]) == ["lesion a", "lesion_b"]
    assert (frame["malignant_true"] == -1).all() and (frame["split"] == "").all()
    assert frame["iaa_pred"].astype(float).notna().all()
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written into the folder
    empty = tmp_path / "empty"
    empty.mkdir()
    assert predict_cli.main(["--checkpoint", str(run_dir), "--data", str(empty), "--out",
                             str(tmp_path / "none.csv"), "--device", "cpu"]) == 1
