"""Comparing runs: the table of a metric per training set, task and backbone (mean ± SD over
seeds, the constant baseline beside IAA figures), its CSV, and its publication figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from iaa_desktop.core.training.run_records import (
    BASELINE_LABEL,
    METRICS,
    MODE_LABELS,
    RunRecord,
    RunRecordError,
)


def comparison_table(records: Sequence[RunRecord], metric: str = "balanced_accuracy",
                     source: str = "auto") -> pd.DataFrame:
    """Mean ± SD of ``metric`` per training set × task × backbone over the runs' seeds.

    Runs on several training sets (e.g. fine-tuned on ISIC 2018, PH2, ...) are compared
    per set, the study's cross-dataset table. Columns: ``dataset`` (the training set's
    file stem), ``task``, ``backbone``, ``n`` (runs with a value), ``mean``, ``sd``
    (sample SD, NaN for one run), ``seeds`` and ``values`` (per run, ";"-joined),
    ``runs``. Runs without the metric (e.g. MAE of a diagnosis-only run) are left out.
    For ``mae`` two more columns set the constant beside the model: ``baseline_mae`` (mean
    over the runs of the training-median constant's MAE on the same images) and
    ``mae_ratio`` (``mean / baseline_mae``; below 1 the model beats the constant).
    """
    if metric not in METRICS:
        raise RunRecordError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    rows: dict[tuple[str, str, str], list[tuple[int, float, str]]] = {}
    baselines: dict[tuple[str, str, str], list[float]] = {}
    split_alpha = _multitask_alpha_grids(records)
    for r in records:
        if r.spec is None:
            continue
        value = r.metric(metric, source)
        if math.isfinite(value):
            dataset = Path(r.spec.data).stem if r.spec.data else ""
            mode = r.spec.mode
            if mode == "multitask" and (dataset, r.spec.backbone) in split_alpha:
                mode = f"multitask@{r.spec.alpha:g}"  # an α grid: one row per α, not their average
            key = (dataset, mode, r.spec.backbone)
            rows.setdefault(key, []).append((r.spec.seed, value, r.run_id))
            baselines.setdefault(key, []).append(r.metric("baseline_mae", source))
    out = []
    order = {mode: i for i, mode in enumerate(MODE_LABELS)}
    for (dataset, mode, backbone), items in sorted(
            rows.items(),
            key=lambda kv: (kv[0][0], kv[0][2], order.get(kv[0][1].split("@")[0], 9), kv[0][1])):
        values = np.array([v for _, v, _ in items])
        out.append({"dataset": dataset, "task": _task_label(mode), "backbone": backbone,
                    "n": len(values),
                    "mean": float(values.mean()),
                    "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                    "seeds": ";".join(str(s) for s, _, _ in items),
                    "values": ";".join(f"{v:.4f}" for _, v, _ in items),
                    "runs": ";".join(run for _, _, run in items)})
        if metric == "mae":
            known = [b for b in baselines[(dataset, mode, backbone)] if math.isfinite(b)]
            constant = float(np.mean(known)) if len(known) == len(items) else math.nan
            out[-1]["baseline_mae"] = constant
            out[-1]["mae_ratio"] = out[-1]["mean"] / constant if constant > 0 else math.nan
    columns = ["dataset", "task", "backbone", "n", "mean", "sd", "seeds", "values", "runs"]
    if metric == "mae":  # beside the model's mean, where the eye looks for it
        columns[6:6] = ["baseline_mae", "mae_ratio"]
    return pd.DataFrame(out, columns=columns)


def _multitask_alpha_grids(records: Sequence[RunRecord]) -> set[tuple[str, str]]:
    """(training set, backbone) pairs whose multi-task runs used more than one α."""
    alphas: dict[tuple[str, str], set[float]] = {}
    for r in records:
        if r.spec is not None and r.spec.mode == "multitask":
            key = (Path(r.spec.data).stem if r.spec.data else "", r.spec.backbone)
            alphas.setdefault(key, set()).add(float(r.spec.alpha))
    return {key for key, values in alphas.items() if len(values) > 1}


def _task_label(mode: str) -> str:
    """``multitask@0.25`` -> ``Multi-task (α 0.25)``; other modes by :data:`MODE_LABELS`."""
    base, _, alpha = mode.partition("@")
    label = MODE_LABELS.get(base, base)
    return f"{label} (α {alpha})" if alpha else label


def write_comparison_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a comparison table as CSV (UTF-8, no index)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.6g")
    return path


def comparison_groups(table: pd.DataFrame) -> pd.Series:
    """The x-axis group of each comparison row: the backbone, or "set / backbone" across training sets."""
    if "dataset" in table and table["dataset"].nunique() > 1:
        return table["dataset"].astype(str) + "\n" + table["backbone"].astype(str)
    return table["backbone"].astype(str)


def comparison_figure(table: pd.DataFrame, metric: str = "balanced_accuracy"):
    """Grouped bars (mean ± SD) per backbone, one colour per task, seeds as points (journal style).

    Build inside nothing: the house style is applied here; save with
    ``core.figures.export.export_figure``.
    """
    from iaa_desktop.core.figures.style import SINGLE_COLUMN_IN, house_style, new_figure
    from iaa_desktop.core.palette import OKABE_ITO

    if table.empty:
        raise RunRecordError("nothing to compare: no selected run has this metric")
    label = METRICS.get(metric, (metric, True))[0]
    colours = {"IAA regressor": OKABE_ITO["bluish_green"],
               "Diagnosis only": OKABE_ITO["blue"], "Multi-task": OKABE_ITO["vermillion"]}
    hatches = {"Diagnosis only": "", "Multi-task": "////", "IAA regressor": ".."}
    # One group of bars per backbone, or per training set and backbone when there are several sets.
    several = comparison_groups(table)
    table = table.assign(group=several)
    several = table["dataset"].nunique() > 1
    backbones = list(dict.fromkeys(table["group"]))
    tasks = [t for t in MODE_LABELS.values() if t in set(table["task"])]
    width = 0.8 / max(1, len(tasks))
    with house_style():
        fig = new_figure(max(SINGLE_COLUMN_IN, 1.2 + 0.9 * len(backbones)), 2.6)
        ax = fig.add_subplot()
        drawn_baseline = False
        for i, task in enumerate(tasks):
            part = table[table["task"] == task].set_index("group")
            xs, means, sds = [], [], []
            for j, backbone in enumerate(backbones):
                if backbone in part.index:
                    xs.append(j - 0.4 + width * (i + 0.5))
                    means.append(part.loc[backbone, "mean"])
                    sds.append(part.loc[backbone, "sd"])
            sds_plot = [0.0 if not math.isfinite(s) else s for s in sds]
            ax.bar(xs, means, width * 0.9, yerr=sds_plot, capsize=2, label=task,
                   color=colours.get(task, "#999999"), hatch=hatches.get(task, ""), edgecolor="black",
                   linewidth=0.6, error_kw={"elinewidth": 0.8})
            for x, backbone in zip(xs, [b for b in backbones if b in part.index], strict=True):
                values = [float(v) for v in str(part.loc[backbone, "values"]).split(";") if v]
                ax.plot([x] * len(values), values, "o", color="black", markersize=2.5, zorder=3)
            if "baseline_mae" in part.columns:  # the constant to beat, dashed over each bar
                for x, backbone in zip(xs, [b for b in backbones if b in part.index], strict=True):
                    constant = float(part.loc[backbone, "baseline_mae"])
                    if math.isfinite(constant):
                        ax.hlines(constant, x - width * 0.45, x + width * 0.45, colors="black",
                                  linestyles="--", linewidth=1.0, zorder=4,
                                  label=None if drawn_baseline else BASELINE_LABEL)
                        drawn_baseline = True
        ax.set_xticks(range(len(backbones)), backbones)
        ax.set_ylabel(label)
        ax.set_xlabel("Training set and backbone" if several else "Backbone")
        if METRICS.get(metric, ("", True))[1] and metric != "pearson":
            ax.set_ylim(0, 1.05)
        ax.legend(loc="upper left", bbox_to_anchor=(0, 1.18), ncols=len(tasks) + int(drawn_baseline))
    return fig
