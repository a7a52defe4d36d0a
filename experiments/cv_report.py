"""Tables and figures of ``cv_study.py`` from its ``results.csv`` and ``predictions.csv``.

- ``summary.csv`` / ``summary.md``: per (stage, config, mode, TTA) the mean ± SD over folds (and
  seeds) of MAE, the training-median baseline's MAE, their ratio, Pearson, Spearman, balanced
  accuracy and AUROC; for regression a paired bootstrap 95 % CI of MAE(model) - MAE(baseline)
  over the pooled out-of-fold images;
- ``diagnosis.md``: multi-task minus diagnosis-only, paired by (fold, seed), mean with a
  bootstrap 95 % CI over the pairs and a two-sided Wilcoxon signed-rank test at alpha = 0.05;
- ``iaa_pred_vs_true.png`` and ``bacc_per_fold.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ALPHA = 0.05
N_BOOT = 2000


def _ci(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    means = rng.choice(values, size=(N_BOOT, len(values)), replace=True).mean(1)
    return float(np.quantile(means, ALPHA / 2)), float(np.quantile(means, 1 - ALPHA / 2))


def _paired_mae_ci(pred: pd.DataFrame, rng: np.random.Generator) -> tuple[float, float]:
    """Bootstrap CI of mean |model error| - |baseline error| over pooled out-of-fold images."""
    known = pred.dropna(subset=["iaa_true"])
    if known.empty:
        return (np.nan, np.nan)
    diff = np.abs(known.iaa_pred - known.iaa_true) - np.abs(known.iaa_true - known.train_median)
    return _ci(diff.to_numpy(), rng)


def summarise(results: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    keys = ["stage", "config", "pretrained", "mode", "tta"]
    for key, group in results.groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True)) | {
            "runs": len(group),
            "folds": group.fold.nunique(),
            "seeds": group.seed.nunique(),
            "n_train": group.n_train.mean(),
        }
        for metric in ("mae", "baseline_mae", "pearson", "spearman", "balanced_accuracy", "auroc"):
            values = group[metric].dropna()
            row[f"{metric}_mean"] = values.mean() if len(values) else np.nan
            row[f"{metric}_sd"] = values.std(ddof=1) if len(values) > 1 else np.nan
        if group.mae.notna().any():
            ratio = group.mae / group.baseline_mae
            row["ratio_mean"], row["ratio_sd"] = ratio.mean(), ratio.std(ddof=1) if len(ratio) > 1 else np.nan
            pred = predictions.merge(group[["fold", "seed"]], on=["fold", "seed"])
            pred = pred[
                (pred.stage == key[0])
                & (pred.config == key[1])
                & (pred["mode"] == key[3])
                & (pred.tta == key[4])
            ]
            row["diff_ci_low"], row["diff_ci_high"] = _paired_mae_ci(pred, rng)
        row["seconds_mean"] = group.seconds.mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(mean: float, sd: float, digits: int = 3) -> str:
    if pd.isna(mean):
        return ""
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if not pd.isna(sd) else f"{mean:.{digits}f}"


def markdown(summary: pd.DataFrame) -> str:
    lines = [
        "| stage | config | init | mode | TTA | runs | MAE | baseline MAE | ratio | Δ MAE 95 % CI | "
        "Pearson | Spearman | bal. acc. | AUROC | s/run |",
        "|" + "---|" * 15,
    ]
    for _, r in summary.iterrows():
        ci = "" if pd.isna(r.get("diff_ci_low", np.nan)) else f"[{r.diff_ci_low:+.3f}, {r.diff_ci_high:+.3f}]"
        lines.append(
            f"| {r.stage} | {r.config} | {r.pretrained} | {r['mode']} | {r.tta} | {r.runs} | "
            f"{_fmt(r.mae_mean, r.mae_sd)} | {_fmt(r.baseline_mae_mean, r.baseline_mae_sd)} | "
            f"{_fmt(r.get('ratio_mean', np.nan), r.get('ratio_sd', np.nan), 2)} | {ci} | "
            f"{_fmt(r.pearson_mean, r.pearson_sd, 2)} | {_fmt(r.spearman_mean, r.spearman_sd, 2)} | "
            f"{_fmt(r.balanced_accuracy_mean, r.balanced_accuracy_sd)} | {_fmt(r.auroc_mean, r.auroc_sd)} | "
            f"{r.seconds_mean:.1f} |"
        )
    return "\n".join(lines) + "\n"


def diagnosis_comparison(results: pd.DataFrame) -> str:
    """Multi-task minus diagnosis-only, paired by (stage, fold, seed, TTA)."""
    from scipy import stats

    rng = np.random.default_rng(1)
    out = [
        f"Paired differences multi-task − diagnosis-only (same folds and seeds); 95 % bootstrap CI "
        f"over the pairs; Wilcoxon signed-rank, two-sided, α = {ALPHA}.",
        "",
        "| stage | config | TTA | pairs | metric | diagnosis only | multi-task | difference | 95 % CI | p |",
        "|" + "---|" * 10,
    ]
    for (stage, config, tta), group in results.groupby(["stage", "config", "tta"], sort=False):
        cls = group[group["mode"] == "classification"].set_index(["fold", "seed"])
        multi = group[group["mode"] == "multitask"].set_index(["fold", "seed"])
        pairs = cls.index.intersection(multi.index)
        if len(pairs) < 2:
            continue
        for metric in ("balanced_accuracy", "auroc"):
            a, b = cls.loc[pairs, metric].to_numpy(), multi.loc[pairs, metric].to_numpy()
            diff = b - a
            low, high = _ci(diff, rng)
            p = stats.wilcoxon(b, a).pvalue if np.any(diff != 0) else 1.0
            out.append(
                f"| {stage} | {config} | {tta} | {len(pairs)} | {metric} | "
                f"{_fmt(a.mean(), a.std(ddof=1))} | "
                f"{_fmt(b.mean(), b.std(ddof=1))} | {diff.mean():+.3f} | "
                f"[{low:+.3f}, {high:+.3f}] | {p:.3f} |"
            )
    return "\n".join(out) + "\n"


def figures(results: pd.DataFrame, predictions: pd.DataFrame, summary: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reg = summary[
        (summary["mode"] == "regression") & summary.mae_mean.notna() & ~summary.stage.str.startswith("curve")
    ]
    if not reg.empty:
        best = reg.sort_values("mae_mean").iloc[0]
        probe = reg[reg.config.str.startswith("ridge")].sort_values("mae_mean")
        panels = [best] + ([probe.iloc[0]] if len(probe) and probe.iloc[0].config != best.config else [])
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
        for ax, r in zip(axes[0], panels, strict=True):
            p = predictions[
                (predictions.stage == r.stage)
                & (predictions.config == r.config)
                & (predictions["mode"] == "regression")
                & (predictions.tta == r.tta)
                & predictions.iaa_true.notna()
            ]
            colours = np.where(p.malignant == 1, "tab:red", "tab:blue")
            ax.scatter(p.iaa_true, p.iaa_pred, s=6, c=colours, alpha=0.6)
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            ax.set(
                xlim=(0, 1),
                ylim=(0, 1),
                xlabel="true IAA (mean pairwise Dice)",
                ylabel="predicted IAA",
                title=f"{r.config} ({r.tta})\nMAE {r.mae_mean:.3f} vs median {r.baseline_mae_mean:.3f}",
            )
        fig.tight_layout()
        fig.savefig(out / "iaa_pred_vs_true.png", dpi=90)
        plt.close(fig)
    diag = results[(results.stage == "diagnosis") & (results.tta == "none")]
    if not diag.empty:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for mode, marker, shift in (("classification", "o", -0.1), ("multitask", "s", 0.1)):
            d = diag[diag["mode"] == mode]
            ax.scatter(
                d.fold + shift,
                d.balanced_accuracy,
                marker=marker,
                alpha=0.7,
                label="diagnosis only" if mode == "classification" else "multi-task",
            )
            means = d.groupby("fold").balanced_accuracy.mean()
            ax.plot(means.index + shift, means.values, "_", ms=18, mew=2, color="k")
        ax.set(
            xlabel="fold",
            ylabel="balanced accuracy",
            xticks=sorted(diag.fold.unique()),
            title=f"Held-out balanced accuracy per fold ({diag.seed.nunique()} seed(s); bars: mean)",
        )
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "bacc_per_fold.png", dpi=90)
        plt.close(fig)


def write_report(out: Path) -> None:
    """Build summary.csv, summary.md, diagnosis.md and the figures in ``out``."""
    results = pd.read_csv(out / "results.csv")
    path = out / "predictions.csv"
    predictions = pd.read_csv(path if path.exists() else out / "predictions.csv.gz")
    summary = summarise(results, predictions)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(markdown(summary))
    (out / "diagnosis.md").write_text(diagnosis_comparison(results))
    figures(results, predictions, summary, out)
