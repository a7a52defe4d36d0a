"""The study's statistics and report on known inputs: baseline, bootstrap CIs, Wilcoxon, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import cv_report
from experiments.cv_study import COLUMNS, Recorder


def _recorder(tmp_path, iaa, malignant):
    ids = [f"img{i}" for i in range(len(iaa))]
    return Recorder(tmp_path, ids, np.asarray(iaa, dtype=np.float32), np.asarray(malignant))


def _add(rec, **kwargs):
    common = {"stage": "s", "config": "c", "backbone": "b", "pretrained": "none", "tta": "none",
              "fold": 0, "seed": 0, "seconds": 1.0}
    return rec.add(**(common | kwargs))


def test_baseline_is_the_training_fold_median_ignoring_unknown_iaa(tmp_path):
    #         train rows: 0..3 (IAA 0.2, 0.5, 0.9, unknown) -> median 0.5
    #         test rows: 4..6 (IAA 0.4, 1.0, unknown)
    iaa = [0.2, 0.5, 0.9, np.nan, 0.4, 1.0, np.nan]
    rec = _recorder(tmp_path, iaa, [0, 1, 0, 1, 0, 1, 0])
    row = _add(rec, mode="regression", train_rows=np.arange(4), test_rows=np.array([4, 5, 6]),
               iaa_pred=np.array([0.45, 0.8, 0.3]), prob=np.full(3, np.nan))
    assert row["baseline_mae"] == pytest.approx((0.1 + 0.5) / 2)  # |0.4-0.5|, |1.0-0.5|
    assert row["mae"] == pytest.approx((0.05 + 0.2) / 2, abs=1e-6)  # the unknown image is skipped
    assert row["n_train"] == 4 and row["n_test"] == 3
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert predictions.train_median.tolist() == pytest.approx([0.5] * 3)
    assert predictions.image_id.tolist() == ["img4", "img5", "img6"]
    results = pd.read_csv(tmp_path / "results.csv")
    assert list(results.columns) == COLUMNS and len(results) == 1


def test_a_diagnosis_row_has_no_regression_figures(tmp_path):
    rec = _recorder(tmp_path, [0.5] * 6, [0, 1, 0, 1, 0, 1])
    row = _add(rec, mode="classification", train_rows=np.arange(2), test_rows=np.arange(2, 6),
               iaa_pred=np.full(4, np.nan), prob=np.array([0.2, 0.9, 0.6, 0.4]))
    # test labels 0, 1, 0, 1: one of each class right at 0.5 (0.2 and 0.9; not 0.6 nor 0.4)
    assert row["balanced_accuracy"] == pytest.approx(0.5)
    assert row["auroc"] == pytest.approx(0.75)  # malignant above benign in 3 of 4 pairs (0.4 < 0.6)
    assert "mae" not in row and "baseline_mae" not in row


def test_bootstrap_ci_on_known_inputs():
    rng = np.random.default_rng(0)
    assert cv_report._ci(np.full(20, -0.03), rng) == pytest.approx((-0.03, -0.03))
    values = np.arange(100, dtype=float)
    low, high = cv_report._ci(values, np.random.default_rng(0))
    # the mean of 100 draws from 0..99 has SD 28.9 / 10: a 95 % interval about 49.5 -+ 5.7
    assert 43.0 < low < 45.5 and 53.5 < high < 56.0
    assert (low, high) == cv_report._ci(values, np.random.default_rng(0))  # seeded


def test_paired_mae_ci_is_model_error_minus_baseline_error():
    pred = pd.DataFrame({
        "iaa_true": [0.9, 0.5, 0.7, np.nan],
        "iaa_pred": [0.8, 0.6, 0.7, 0.5],  # errors 0.1, 0.1, 0.0
        "train_median": [0.7, 0.7, 0.8, 0.7],  # baseline errors 0.2, 0.2, 0.1
    })
    low, high = cv_report._paired_mae_ci(pred, np.random.default_rng(0))
    assert low == pytest.approx(-0.1) and high == pytest.approx(-0.1)  # every pair differs by -0.1
    empty = pred.assign(iaa_true=np.nan)
    assert all(np.isnan(cv_report._paired_mae_ci(empty, np.random.default_rng(0))))


def _diagnosis_results(cls: list[float], multi: list[float], seeds=(0,)) -> pd.DataFrame:
    rows = []
    pairs = [(fold, seed) for seed in seeds for fold in range(len(cls) // len(seeds))]
    for (fold, seed), a, b in zip(pairs, cls, multi, strict=True):
        for mode, value in (("classification", a), ("multitask", b)):
            rows.append({"stage": "diagnosis", "config": "c", "tta": "none", "mode": mode, "fold": fold,
                         "seed": seed, "balanced_accuracy": value, "auroc": value})
    return pd.DataFrame(rows)


def _table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("| diagnosis")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_wilcoxon_exact_p_when_every_pair_improves():
    # 6 pairs, all differences positive and distinct: exact two-sided p = 2 / 2**6
    cls = [0.60, 0.62, 0.64, 0.66, 0.68, 0.70]
    multi = [c + d for c, d in zip(cls, (0.01, 0.02, 0.03, 0.04, 0.05, 0.06), strict=True)]
    rows = _table_rows(cv_report.diagnosis_comparison(_diagnosis_results(cls, multi, seeds=(0, 1))))
    assert [r[4] for r in rows] == ["balanced_accuracy", "auroc"]
    pairs, difference, p = rows[0][3], rows[0][7], rows[0][9]
    assert pairs == "6" and difference == "+0.035" and float(p) == pytest.approx(2 / 64, abs=5e-4)
    low, high = (float(v) for v in rows[0][8].strip("[]").split(","))
    assert 0.01 <= low < 0.035 < high <= 0.06


def test_no_difference_gives_p_one_and_a_zero_interval():
    cls = [0.6, 0.7, 0.8]
    rows = _table_rows(cv_report.diagnosis_comparison(_diagnosis_results(cls, cls)))
    assert rows[0][7] == "+0.000" and rows[0][8] == "[+0.000, +0.000]" and rows[0][9] == "1.000"


def test_alpha_is_stated_and_unpaired_groups_are_left_out():
    text = cv_report.diagnosis_comparison(_diagnosis_results([0.6], [0.7]))  # one pair: no test
    assert f"α = {cv_report.ALPHA}" in text
    assert _table_rows(text) == []


def _write_study(out, *, folds=3, seeds=(0, 1)):
    """results.csv + predictions.csv as cv_study writes them: a regressor and a diagnosis pair."""
    rng = np.random.default_rng(0)
    results, predictions = [], []
    for seed in seeds:
        for fold in range(folds):
            true = rng.uniform(0.5, 1.0, 10)
            for mode in ("regression", "classification", "multitask"):
                row = {c: np.nan for c in COLUMNS} | {
                    "stage": "diagnosis" if mode != "regression" else "recipe", "config": "cfg",
                    "backbone": "b", "pretrained": "imagenet", "mode": mode, "tta": "none", "fold": fold,
                    "seed": seed, "n_train": 20, "n_test": 10, "seconds": 2.0}
                if mode == "regression":
                    row |= {"mae": 0.08, "baseline_mae": 0.10, "pearson": 0.5, "spearman": 0.4}
                    for t in true:
                        predictions.append({"stage": "recipe", "config": "cfg", "mode": mode, "tta": "none",
                                            "fold": fold, "seed": seed, "image_id": f"i{len(predictions)}",
                                            "iaa_true": t, "iaa_pred": t, "train_median": 0.75,
                                            "malignant": 0, "prob": np.nan})
                else:
                    row |= {"balanced_accuracy": 0.70 + (0.02 if mode == "multitask" else 0) + fold / 100,
                            "auroc": 0.80}
                results.append(row)
    pd.DataFrame(results, columns=COLUMNS).to_csv(out / "results.csv", index=False)
    pd.DataFrame(predictions).to_csv(out / "predictions.csv", index=False)


def test_report_tables_and_figures_from_a_tiny_results_table(tmp_path):
    _write_study(tmp_path)
    cv_report.write_report(tmp_path)
    summary = pd.read_csv(tmp_path / "summary.csv")
    reg = summary[summary["mode"] == "regression"].iloc[0]
    assert (reg.runs, reg.folds, reg.seeds) == (6, 3, 2)
    assert reg.mae_mean == pytest.approx(0.08) and reg.baseline_mae_mean == pytest.approx(0.10)
    assert reg.ratio_mean == pytest.approx(0.8)
    assert reg.diff_ci_high < 0  # perfect predictions always beat the constant
    multi = summary[summary["mode"] == "multitask"].iloc[0]
    assert multi.balanced_accuracy_mean == pytest.approx(0.73)
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[0].startswith("| stage | config |") and len(table) == 2 + len(summary)
    expected = ["recipe", "cfg", "imagenet", "regression", "none", "6", "0.080 ± 0.000", "0.100 ± 0.000",
                "0.80 ± 0.00"]
    assert [cell.strip() for cell in table[2].strip("|").split("|")][:9] == expected
    rows = _table_rows((tmp_path / "diagnosis.md").read_text())
    assert rows[0][3] == "6" and rows[0][7] == "+0.020"
    for name in ("iaa_pred_vs_true.png", "bacc_per_fold.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
