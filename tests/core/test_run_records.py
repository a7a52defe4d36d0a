"""Run records read back from run directories: status, best metrics, duration, comparison, figure."""

import dataclasses
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iaa_desktop.core.figures.export import export_figure
from iaa_desktop.core.training.run_comparison import comparison_figure, comparison_table, write_comparison_csv
from iaa_desktop.core.training.run_records import (
    PID_FILE,
    RunRecordError,
    curves_from_events,
    derive_status,
    eta_seconds,
    mark_cancelled,
    read_run_record,
    records_frame,
    run_fraction,
    scan_runs,
)
from iaa_desktop.core.training.runs import RunSpec, append_event, save_spec
from iaa_desktop.core.workspace_paths import runs_dir


def make_run(workspace, name, *, mode="multitask", backbone="resnet18", seed=0, epochs=2, vals=(),
             end=None, test=None, alpha=0.5):
    """A run directory as the trainer leaves it: spec, run_started, epoch_end per val dict, then ``end``."""
    run_dir = runs_dir(workspace) / name
    spec = RunSpec(data="/x/set.h5", mode=mode, backbone=backbone, seed=seed, epochs=epochs, alpha=alpha)
    save_spec(spec, run_dir / "run.json")
    append_event(run_dir, "run_started", spec=spec.to_dict(), device="cpu", n_images={"train": 8})
    for epoch, val in enumerate(vals, start=1):
        append_event(run_dir, "epoch_progress", epoch=epoch, epochs=epochs, batch=1, batches=1)
        append_event(run_dir, "epoch_end", epoch=epoch, epochs=epochs, lr=0.01, train_loss=1.0 / epoch,
                     val=val)
    if end == "finished":
        best = max(vals, key=lambda v: v.get("balanced_accuracy", -1)) if vals else {}
        append_event(run_dir, "run_finished", best_epoch=1 + vals.index(best) if vals else None,
                     best_metric="balanced_accuracy", best=best, test=test or {}, seconds=1.5)
    elif end is not None:
        append_event(run_dir, "error", message=end)
    return run_dir


def test_statuses_follow_the_events(tmp_path):
    ws = tmp_path / "ws"
    finished = make_run(ws, "a", vals=[{"balanced_accuracy": 0.6}], end="finished")
    failed = make_run(ws, "b", vals=[], end="out of GPU memory with batch size 32")
    interrupted = make_run(ws, "c", vals=[{"balanced_accuracy": 0.5}],
                           end="training interrupted; --resume continues from the last epoch saved")
    killed = make_run(ws, "d", vals=[{"balanced_accuracy": 0.5}])
    cancelled = make_run(ws, "e", vals=[], end="training interrupted; --resume continues")
    mark_cancelled(cancelled)

    by_id = {r.run_id: r for r in scan_runs(ws)}
    assert {k: v.status for k, v in by_id.items()} == {
        "a": "finished", "b": "failed", "c": "interrupted", "d": "interrupted", "e": "cancelled"}
    assert by_id["b"].message == "out of GPU memory with batch size 32"
    assert "killed" in by_id["d"].message
    assert read_run_record(killed, running=True).status == "running"
    assert scan_runs(ws, running=[failed])[1].status == "running"
    mark_cancelled(cancelled, False)
    assert read_run_record(cancelled).status == "interrupted"
    assert read_run_record(finished).device == "cpu"
    assert read_run_record(interrupted).epochs_done == 1
    assert read_run_record(interrupted).epochs_saved == 0  # no checkpoint_saved event


def test_derive_status_without_events():
    assert derive_status([], alive=False) == ("pending", "")
    assert derive_status([], alive=False, cancelled=True)[0] == "cancelled"
    assert derive_status([{"event": "run_finished"}], alive=True)[0] == "running"


def test_a_live_trainer_pid_means_running(tmp_path):
    run_dir = make_run(tmp_path / "ws", "live", vals=[])
    # A process whose command line names the trainer, as the real one does.
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "trainer"])
    try:
        (run_dir / PID_FILE).write_text(f"{process.pid}\n")
        deadline = time.monotonic() + 20  # on a loaded machine the new process may not have exec'd yet
        while read_run_record(run_dir).status != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert read_run_record(run_dir).status == "running"
    finally:
        process.kill()
        process.wait()
    assert read_run_record(run_dir).status == "interrupted"
    (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")  # alive, but not a trainer
    assert read_run_record(run_dir).status == "interrupted"


def test_best_metrics_come_from_the_final_event_or_the_epochs(tmp_path):
    ws = tmp_path / "ws"
    vals = [{"balanced_accuracy": 0.55, "mae": 0.2}, {"balanced_accuracy": 0.75, "mae": 0.3},
            {"balanced_accuracy": 0.65, "mae": 0.1}]
    done = read_run_record(make_run(ws, "done", epochs=3, vals=vals, end="finished",
                                    test={"balanced_accuracy": 0.7}))
    assert done.best_epoch == 2 and done.best_metrics == vals[1]
    assert done.test_metrics == {"balanced_accuracy": 0.7}
    assert done.metric("balanced_accuracy") == 0.7 and done.metric("balanced_accuracy", "val") == 0.75
    partial = read_run_record(make_run(ws, "partial", epochs=3, vals=vals))
    assert partial.best_epoch == 2 and partial.best_metrics == vals[1]
    regression = read_run_record(make_run(ws, "reg", mode="regression", epochs=3, vals=vals))
    assert regression.best_epoch == 3  # lowest MAE
    assert math.isnan(regression.metric("auroc"))


def test_duration_sums_the_segments_of_a_resumed_run():
    events = [{"event": "run_started", "time": "2026-01-01T10:00:00+00:00"},
              {"event": "epoch_end", "time": "2026-01-01T10:00:30+00:00"},
              {"event": "run_started", "time": "2026-01-01T11:00:00+00:00"},
              {"event": "run_finished", "time": "2026-01-01T11:00:10+00:00"}]
    from iaa_desktop.core.training.run_records import run_seconds

    assert run_seconds(events) == 40.0
    assert math.isnan(run_seconds([]))


def _compare_workspace(tmp_path):
    ws = tmp_path / "ws"
    values = {("classification", "resnet18"): [0.6, 0.7, 0.8], ("multitask", "resnet18"): [0.7, 0.8, 0.9],
              ("multitask", "efficientnet_b1"): [0.65]}
    for (mode, backbone), accs in values.items():
        for seed, acc in enumerate(accs):
            make_run(ws, f"{mode}-{backbone}-{seed}", mode=mode, backbone=backbone, seed=seed, epochs=1,
                     vals=[{"balanced_accuracy": acc - 0.05}], end="finished",
                     test={"balanced_accuracy": acc})
    return ws, values


def test_comparison_table_gives_mean_and_sd_per_task_and_backbone(tmp_path):
    ws, values = _compare_workspace(tmp_path)
    table = comparison_table(scan_runs(ws), "balanced_accuracy")
    rows = {(r.task, r.backbone): r for r in table.itertuples()}
    assert set(rows) == {("Diagnosis only", "resnet18"), ("Multi-task", "resnet18"),
                         ("Multi-task", "efficientnet_b1")}
    diag = rows[("Diagnosis only", "resnet18")]
    assert diag.n == 3 and diag.mean == pytest.approx(np.mean(values[("classification", "resnet18")]))
    assert diag.sd == pytest.approx(np.std(values[("classification", "resnet18")], ddof=1))
    assert diag.seeds == "0;1;2"
    assert math.isnan(rows[("Multi-task", "efficientnet_b1")].sd)
    val = comparison_table(scan_runs(ws), "balanced_accuracy", source="val")
    assert val["mean"].iloc[0] == pytest.approx(table["mean"].iloc[0] - 0.05)
    assert comparison_table(scan_runs(ws), "mae").empty  # no run has an MAE
    with pytest.raises(RunRecordError, match="unknown metric"):
        comparison_table([], "loss")


def test_an_alpha_grid_gets_one_comparison_row_per_alpha(tmp_path):
    # A Slurm grid over alpha: its multi-task runs are compared per alpha, not averaged together.
    ws = tmp_path / "ws"
    values = {0.25: [0.60, 0.64], 0.75: [0.70, 0.72]}
    for alpha, accs in values.items():
        for seed, acc in enumerate(accs):
            make_run(ws, f"mt-a{alpha}-s{seed}", seed=seed, alpha=alpha, vals=[{"balanced_accuracy": acc}],
                     end="finished", test={"balanced_accuracy": acc})
    make_run(ws, "diag", mode="classification", vals=[{"balanced_accuracy": 0.5}], end="finished",
             test={"balanced_accuracy": 0.5})
    table = comparison_table(scan_runs(ws), "balanced_accuracy")
    rows = {r.task: r for r in table.itertuples()}
    assert set(rows) == {"Diagnosis only", "Multi-task (α 0.25)", "Multi-task (α 0.75)"}
    for alpha, accs in values.items():
        row = rows[f"Multi-task (α {alpha:g})"]
        assert row.n == 2 and row.mean == pytest.approx(np.mean(accs))
    # One alpha only: the plain label, as before.
    single = comparison_table([r for r in scan_runs(ws) if "a0.75" not in r.run_id], "balanced_accuracy")
    assert set(single["task"]) == {"Diagnosis only", "Multi-task"}


def test_comparison_exports_csv_and_a_figure(tmp_path):
    ws, _ = _compare_workspace(tmp_path)
    table = comparison_table(scan_runs(ws))
    path = write_comparison_csv(table, tmp_path / "out" / "comparison.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == list(table.columns)
    assert back["mean"].to_numpy() == pytest.approx(table["mean"].to_numpy(), rel=1e-5)
    written = export_figure(comparison_figure(table), tmp_path / "out" / "comparison")
    assert [p.suffix for p in written] == [".png", ".svg", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in written)
    with pytest.raises(RunRecordError, match="nothing to compare"):
        comparison_figure(table.iloc[0:0])


def test_records_frame_has_one_row_per_run(tmp_path):
    ws, _ = _compare_workspace(tmp_path)
    frame = records_frame(scan_runs(ws))
    assert len(frame) == 7
    assert set(frame["status"]) == {"finished"}
    assert frame["duration"].iloc[0] != ""


def test_curves_keep_the_last_value_of_a_repeated_epoch():
    events = [{"event": "epoch_end", "epoch": 1, "train_loss": 2.0, "val": {"loss": 1.5, "mae": None}},
              {"event": "epoch_end", "epoch": 2, "train_loss": 1.0, "val": {"loss": 1.2}},
              {"event": "epoch_end", "epoch": 2, "train_loss": 0.9, "val": {"loss": 1.1}}]
    curves = curves_from_events(events)
    assert curves["train_loss"] == ([1, 2], [2.0, 0.9])
    assert curves["val_loss"] == ([1, 2], [1.5, 1.1])
    assert "val_mae" not in curves


def test_eta_from_the_fraction_done():
    assert run_fraction(1, 4, 1, 2) == 0.125
    assert run_fraction(3, 4) == 0.5
    assert eta_seconds(10.0, 0.5) == pytest.approx(10.0)
    assert eta_seconds(10.0, 0.75, 0.5) == pytest.approx(10.0)
    assert math.isnan(eta_seconds(10.0, 0.5, 0.5))


def test_runs_on_several_training_sets_compare_per_set(tmp_path):
    """The study's cross-dataset view: fine-tuned runs on two sets give one row per set, task and backbone."""
    ws, _ = _compare_workspace(tmp_path)
    records = scan_runs(ws)
    moved = [dataclasses.replace(r, spec=r.spec.replace(data=str(tmp_path / "ph2-224px-metadata.h5")))
             for r in records if r.spec is not None and r.spec.mode == "classification"]
    table = comparison_table([*records, *moved])
    assert set(table["dataset"]) == {Path(records[0].spec.data).stem, "ph2-224px-metadata"}
    ph2 = table[table["dataset"] == "ph2-224px-metadata"]
    assert list(ph2["task"]) == ["Diagnosis only"] and ph2["n"].iloc[0] == 3
    written = export_figure(comparison_figure(table), tmp_path / "out" / "cross")
    assert all(p.stat().st_size > 1000 for p in written)


def _regression_runs(workspace):
    """Three regression seeds with test MAE and the training-median constant's MAE, as the trainer writes."""
    maes, constants = [0.10, 0.11, 0.12], [0.13, 0.13, 0.14]
    for seed, (mae, constant) in enumerate(zip(maes, constants, strict=True)):
        val = {"mae": mae + 0.01, "baseline_mae": constant, "mae_ratio": (mae + 0.01) / constant}
        make_run(workspace, f"reg-{seed}", mode="regression", seed=seed, vals=[val], end="finished",
                 test={"mae": mae, "baseline_mae": constant, "mae_ratio": mae / constant})
    return maes, constants


def test_the_regression_comparison_sets_the_constant_beside_the_model(tmp_path):
    ws = tmp_path / "ws"
    maes, constants = _regression_runs(ws)
    records = scan_runs(ws)
    table = comparison_table(records, "mae")
    assert list(table.columns[4:8]) == ["mean", "sd", "baseline_mae", "mae_ratio"]
    row = table.iloc[0]
    assert row["mean"] == pytest.approx(np.mean(maes))
    assert row["baseline_mae"] == pytest.approx(np.mean(constants))
    assert row["mae_ratio"] == pytest.approx(np.mean(maes) / np.mean(constants))
    per_run = [m / c for m, c in zip(maes, constants, strict=True)]
    assert comparison_table(records, "mae_ratio")["mean"].iloc[0] == pytest.approx(np.mean(per_run))
    frame = records_frame(records)
    assert frame["test_baseline_mae"].tolist() == pytest.approx(constants)
    assert frame["mae_ratio"].tolist() == pytest.approx(per_run)
    assert frame["val_baseline_mae"].tolist() == pytest.approx(constants)
    written = export_figure(comparison_figure(table, "mae"), tmp_path / "out" / "mae")
    assert all(p.stat().st_size > 1000 for p in written)


def test_runs_without_the_constant_leave_the_ratio_empty(tmp_path):
    ws = tmp_path / "ws"
    make_run(ws, "old", mode="regression", vals=[{"mae": 0.2}], end="finished", test={"mae": 0.2})
    table = comparison_table(scan_runs(ws), "mae")
    assert table["mean"].iloc[0] == pytest.approx(0.2)
    assert math.isnan(table["baseline_mae"].iloc[0]) and math.isnan(table["mae_ratio"].iloc[0])
