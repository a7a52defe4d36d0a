"""Regression and classification metrics with numpy/scipy (no scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

NAN = float("nan")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return NAN
    return float(np.corrcoef(a, b)[0, 1])


def regression_metrics(pred: np.ndarray, target: np.ndarray, malignant: np.ndarray | None = None,
                       baseline: float | None = None) -> dict[str, float]:
    """MAE, MSE, Pearson and Spearman over known targets (NaN skipped).

    With ``baseline`` (the training split's median IAA), also ``baseline_mae``, the MAE of
    predicting that constant for every image, and ``mae_ratio`` = ``mae / baseline_mae``:
    below 1 the model beats the constant (the study: 0.108 / 0.131 = 0.82).

    With labels (1 malignant, 0 benign), also KS and Mann-Whitney U of the
    predicted IAA of malignant vs benign images (``ks_stat``, ``ks_p``, ``mwu_p``):
    the paper's test that predicted agreement separates the two.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    known = ~np.isnan(target)
    p, t = pred[known], target[known]
    out = {"mae": NAN, "mse": NAN, "pearson": NAN, "spearman": NAN}
    if p.size:
        out.update(mae=float(np.mean(np.abs(p - t))), mse=float(np.mean((p - t) ** 2)),
                   pearson=_pearson(p, t),
                   spearman=_pearson(stats.rankdata(p), stats.rankdata(t)) if p.size > 1 else NAN)
    if baseline is not None:
        out["baseline_mae"], out["mae_ratio"] = baseline_comparison(out["mae"], t, baseline)
    out.update(ks_stat=NAN, ks_p=NAN, mwu_p=NAN)
    if malignant is not None:
        malignant = np.asarray(malignant)
        mal, ben = pred[malignant == 1], pred[malignant == 0]
        if mal.size and ben.size:
            ks = stats.ks_2samp(mal, ben)
            out.update(ks_stat=float(ks.statistic), ks_p=float(ks.pvalue))
            if np.ptp(np.concatenate([mal, ben])) > 0:
                out["mwu_p"] = float(stats.mannwhitneyu(mal, ben, alternative="two-sided").pvalue)
    return out


def baseline_comparison(mae: float, target: np.ndarray, baseline: float) -> tuple[float, float]:
    """(MAE of the constant ``baseline`` over the known ``target`` values, ``mae`` / that MAE)."""
    target = np.asarray(target, dtype=np.float64)
    target = target[~np.isnan(target)]
    if not target.size or not math.isfinite(baseline):
        return NAN, NAN
    constant = float(np.mean(np.abs(target - baseline)))
    return constant, (mae / constant if constant > 0 and math.isfinite(mae) else NAN)


def training_median(iaa: np.ndarray) -> float:
    """The median of the known IAA values (the constant baseline); NaN when none is known."""
    iaa = np.asarray(iaa, dtype=np.float64)
    iaa = iaa[~np.isnan(iaa)]
    return float(np.median(iaa)) if iaa.size else NAN


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = Mann-Whitney U / (n1 n0), ties counted half; NaN with one class."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    n1, n0 = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    if n1 == 0 or n0 == 0:
        return NAN
    ranks = stats.rankdata(scores)
    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def classification_metrics(prob_malignant: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1 and AUROC over known labels (-1 skipped), threshold 0.5.

    Balanced accuracy averages the recall of the classes present in the labels;
    macro F1 averages over the classes present in labels or predictions (as scikit-learn).
    """
    prob = np.asarray(prob_malignant, dtype=np.float64)
    labels = np.asarray(labels)
    known = labels >= 0
    prob, labels = prob[known], labels[known]
    if not labels.size:
        return {"accuracy": NAN, "balanced_accuracy": NAN, "f1_macro": NAN, "auroc": NAN}
    pred = (prob >= 0.5).astype(int)
    recalls, f1s = [], []
    for c in (0, 1):
        tp = np.sum((pred == c) & (labels == c))
        n_true, n_pred = np.sum(labels == c), np.sum(pred == c)
        if n_true:
            recalls.append(tp / n_true)
        if n_true or n_pred:
            f1s.append(2 * tp / (n_true + n_pred))
    return {"accuracy": float(np.mean(pred == labels)), "balanced_accuracy": float(np.mean(recalls)),
            "f1_macro": float(np.mean(f1s)), "auroc": auroc(prob, labels)}


def mode_metrics(mode: str, *, iaa_pred=None, iaa_true=None, prob=None, labels=None,
                 iaa_baseline: float | None = None) -> dict[str, float]:
    """The metrics of a mode: regression, classification, or both (multitask).

    ``iaa_baseline``: the training median IAA, compared with (see ``regression_metrics``).
    """
    out: dict[str, float] = {}
    if mode in ("regression", "multitask"):
        out.update(regression_metrics(iaa_pred, iaa_true, labels, baseline=iaa_baseline))
    if mode in ("classification", "multitask"):
        out.update(classification_metrics(prob, labels))
    return out


def selection_metric(mode: str) -> tuple[str, bool]:
    """(metric, higher_is_better) choosing the best checkpoint: MAE for regression, else balanced accuracy."""
    return ("mae", False) if mode == "regression" else ("balanced_accuracy", True)


def is_better(value: float, best: float | None, higher: bool) -> bool:
    """Whether ``value`` beats ``best`` (``None``: nothing yet); NaN never beats a number."""
    if best is None or (isinstance(best, float) and math.isnan(best)):
        return best is None or not math.isnan(value)
    if math.isnan(value):
        return False
    return value > best if higher else value < best
