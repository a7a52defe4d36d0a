"""The fine-tune protocol (iaa-train --finetune-from) on each diagnosis fixture, and iaa-predict on them."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from iaa_desktop.core.dataset import demo
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.progress import run_to_end
from iaa_desktop.core.training.runs import RunSpec, load_spec, read_events
from iaa_desktop.core.training.training_set import iter_export_training_set, read_training_set_info
from tests.builders_diagnosis import MAKERS
from trainer import finetune
from trainer import predict as predict_cli
from trainer.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread

BACKBONE = "resnet10t"
COMMON = ["--batch-size", "4", "--max-steps", "2", "--device", "cpu", "--epochs", "1"]


def export(root, out, size=32):
    run_to_end(iter_export_training_set(load_dataset(root), out, size=size, cache=None, workers=1))
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Demo-trained (12 demo lesions at 32 px) multitask and classification source runs."""
    root = tmp_path_factory.mktemp("sources")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IAA_DESKTOP_CACHE_DIR", str(root / "cache"))
        demo_set = export(demo.write_demo(root / "demo", n_lesions=12), root / "demo.h5")
    runs = {}
    for mode in ("multitask", "classification"):
        runs[mode] = root / mode
        assert main(["--data", str(demo_set), "--out", str(runs[mode]), "--mode", mode,
                     "--backbone", BACKBONE, *COMMON]) == 0
    return runs


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    """Each diagnosis fixture exported at 32 px (IAA unknown)."""
    root = tmp_path_factory.mktemp("targets")
    return {name: export(make(root / name), root / f"{name}.h5") for name, make in MAKERS.items()}


def _finished(run_dir):
    events, _ = read_events(run_dir)
    assert events[-1]["event"] == "run_finished", events[-1]
    return events


@pytest.mark.parametrize("name", list(MAKERS))
def test_finetune_from_multitask_on_each_fixture_keeps_the_iaa_head(sources, targets, tmp_path, name):
    assert read_training_set_info(targets[name]).n_with_iaa == 0
    run_dir = tmp_path / "ft"
    assert main(["--finetune-from", str(sources["multitask"]), "--data", str(targets[name]),
                 "--out", str(run_dir), *COMMON]) == 0
    events = _finished(run_dir)
    test = events[-1]["test"]
    assert {"balanced_accuracy", "auroc", "f1_macro"} <= set(test)
    assert test["balanced_accuracy"] is None or 0.0 <= test["balanced_accuracy"] <= 1.0
    spec = load_spec(run_dir / "run.json")
    assert (spec.backbone, spec.mode) == (BACKBONE, "multitask")
    assert spec.finetune_from == str(sources["multitask"].resolve())

    source = load_file(sources["multitask"] / "checkpoints" / "best.safetensors")
    iaa_keys = [k for k in source if k.startswith("reg_head.")]
    assert any(k.endswith("running_mean") for k in iaa_keys) and len(iaa_keys) >= 8
    for which in ("best", "last"):
        tuned = load_file(run_dir / "checkpoints" / f"{which}.safetensors")
        assert set(tuned) == set(source)
        for key in iaa_keys:
            assert torch.equal(tuned[key], source[key]), key  # the IAA head, BatchNorm stats included
        changed = [k for k in source if k.startswith(("cls_head.", "backbone."))
                   and source[k].is_floating_point() and not torch.equal(tuned[k], source[k])]
        assert changed, "the classifier and backbone must have trained"


def test_finetune_from_a_diagnosis_only_checkpoint(sources, targets, tmp_path):
    run_dir = tmp_path / "ft"
    assert main(["--finetune-from", str(sources["classification"]), "--data", str(targets["isic2018"]),
                 "--out", str(run_dir), *COMMON]) == 0
    events = _finished(run_dir)
    assert events[0]["n_images"] == {"train": 7, "val": 2, "test": 4}  # labelled, with an image file
    assert load_spec(run_dir / "run.json").mode == "classification"


def test_another_backbone_or_a_missing_source_is_refused(sources, targets, tmp_path):
    run_dir = tmp_path / "ft"
    assert main(["--finetune-from", str(sources["multitask"]), "--data", str(targets["ph2"]),
                 "--out", str(run_dir), "--backbone", "resnet18", *COMMON]) == 2
    message = read_events(run_dir)[0][-1]["message"]
    assert "trained with backbone resnet10t, not resnet18" in message
    assert not (run_dir / "checkpoints").exists()
    assert main(["--finetune-from", str(tmp_path / "nowhere"), "--data", str(targets["ph2"]),
                 "--out", str(tmp_path / "b"), *COMMON]) == 2
    assert "no best.safetensors checkpoint" in read_events(tmp_path / "b")[0][-1]["message"]
    regression = tmp_path / "regression" / "checkpoints"
    regression.mkdir(parents=True)
    (regression / "best.safetensors").write_bytes(b"")
    (regression / "best.json").write_text(json.dumps({"backbone": BACKBONE, "mode": "regression"}))
    assert main(["--finetune-from", str(regression.parent), "--data", str(targets["ph2"]),
                 "--out", str(tmp_path / "c"), *COMMON]) == 2
    assert "is a regression checkpoint" in read_events(tmp_path / "c")[0][-1]["message"]


def test_finetune_resumes_with_the_iaa_head_still_frozen(sources, targets, tmp_path):
    run_dir = tmp_path / "ft"
    args = ["--finetune-from", str(sources["multitask"]), "--data", str(targets["derm7pt"]),
            "--out", str(run_dir), "--batch-size", "4", "--max-steps", "1", "--device", "cpu"]
    assert main([*args, "--epochs", "1"]) == 0
    assert main(["--out", str(run_dir), "--resume", "--epochs", "2"]) == 0
    assert [e["epoch"] for e in read_events(run_dir)[0] if e["event"] == "epoch_end"] == [1, 2]
    source = load_file(sources["multitask"] / "checkpoints" / "best.safetensors")
    tuned = load_file(run_dir / "checkpoints" / "last.safetensors")
    assert all(torch.equal(tuned[k], source[k]) for k in source if k.startswith("reg_head."))


def test_head_replaced_when_the_classes_differ_and_iaa_head_frozen(sources):
    spec = RunSpec(mode="multitask", backbone=BACKBONE, finetune_from=str(sources["multitask"]))
    model = finetune.build_finetune_model(spec, n_classes=3)
    assert model.cls_head[-1].out_features == 3
    assert all(not p.requires_grad for p in model.reg_head.parameters())
    assert all(p.requires_grad for p in model.cls_head.parameters())
    model.train()
    assert model.training and not model.reg_head.training and model.cls_head.training
    with pytest.raises(finetune.ckpt.CheckpointError, match="this run is backbone=resnet18"):
        finetune.build_finetune_model(spec.replace(backbone="resnet18"))


def test_iaa_predict_adds_predicted_iaa_on_single_annotator_data(sources, targets, tmp_path):
    out = tmp_path / "ph2_predictions.csv"
    assert predict_cli.main(["--checkpoint", str(sources["multitask"]), "--data", str(targets["ph2"]),
                             "--out", str(out), "--device", "cpu"]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 10 and frame["iaa_true"].isna().all()
    assert np.isfinite(frame["iaa_pred"]).all() and frame["malignant_prob"].between(0, 1).all()
    meta = json.loads((sources["multitask"] / "checkpoints" / "best.json").read_text())
    assert meta["mode"] == "multitask"


def test_finetune_compare_command_on_two_fixture_datasets(sources, tmp_path, capsys):
    from iaa_desktop.cli import main as desktop

    data = [MAKERS["isic2018"](tmp_path / "isic2018"), MAKERS["ph2"](tmp_path / "ph2")]
    out = tmp_path / "compare"
    code = desktop(["finetune-compare", *map(str, data), "--diagnosis-only", str(sources["classification"]),
                    "--multitask", str(sources["multitask"]), "--out", str(out), "--size", "32",
                    "--epochs", "1", "--max-steps", "2", "--batch-size", "4", "--device", "cpu",
                    "--threads", "1"])
    assert code == 0, capsys.readouterr()
    runs = pd.read_csv(out / "finetune_runs.csv")
    assert len(runs) == 4 and set(runs["status"]) == {"finished"}  # 2 datasets x 1 backbone x 2 kinds
    for run_dir in runs["run_dir"]:
        assert load_spec(f"{run_dir}/run.json").finetune_from  # real iaa-train runs, in subprocesses
    table = pd.read_csv(out / "finetune_comparison.csv")
    assert list(table["dataset"]) == ["isic2018", "ph2", "mean"]
    assert set(table["backbone"][:2]) == {BACKBONE}
    rows = table.iloc[:2]
    expected = rows["balanced_accuracy_multitask"] - rows["balanced_accuracy_diagnosis_only"]
    assert np.allclose(rows["difference"], expected, equal_nan=True)
    assert np.isclose(table.iloc[-1]["difference"], rows["difference"].mean(), equal_nan=True)
    assert "Mean difference (multi-task - diagnosis-only)" in capsys.readouterr().out
