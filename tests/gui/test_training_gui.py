"""Training from the GUI, offscreen, on the CPU: dialog, export, trainer process, curves, runs, predictions.

Real tiny runs (resnet10t, 32 px, a couple of batches) on a 12-lesion demo dataset;
a stand-in trainer for the failure paths.
"""

import math
import os
import signal
import sys

import pandas as pd
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from iaa_desktop.core.dataset import demo  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.training.plan import RunRequest, new_run_dir  # noqa: E402
from iaa_desktop.core.training.predictions import seen_in_training  # noqa: E402
from iaa_desktop.core.training.run_records import read_run_record  # noqa: E402
from iaa_desktop.core.training.runs import RunSpec, append_event, read_events, save_spec  # noqa: E402
from iaa_desktop.core.workspace_paths import runs_dir  # noqa: E402
from iaa_desktop.gui.trainer_process import TrainerProcess  # noqa: E402
from iaa_desktop.gui.training_controller import TrainingController  # noqa: E402
from iaa_desktop.gui.widgets.predictions_panel import PredictionsPanel  # noqa: E402
from iaa_desktop.gui.widgets.run_dialog import RunDialog  # noqa: E402
from iaa_desktop.gui.widgets.runs_panel import RunsPanel  # noqa: E402
from iaa_desktop.gui.widgets.training_monitor import TrainingMonitor  # noqa: E402

TRAIN_MS = 180_000
TINY = RunRequest(mode="multitask", backbone="resnet10t", epochs=1, batch_size=4, input_size=32, seeds="0",
                  device="cpu", max_steps_per_epoch=2)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-gui")
    return demo.write_demo(root / "demo", n_lesions=12)


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    return tmp_path_factory.mktemp("workspaces")


@pytest.fixture
def env(monkeypatch, workspaces, tmp_path):
    monkeypatch.setenv("IAA_DESKTOP_WORKSPACES_DIR", str(workspaces))
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    shown = []
    for kind in ("critical", "warning", "information"):
        monkeypatch.setattr(QMessageBox, kind, lambda *a, k=kind, **kw: shown.append((k, a[1:3])))
    return shown


def build(qtbot, dataset=None, trainer=None, remote_trainer=None):
    monitor, runs, predictions = TrainingMonitor(), RunsPanel(), PredictionsPanel()
    for widget in (monitor, runs, predictions):
        qtbot.addWidget(widget)
    controller = TrainingController(monitor, runs, predictions, trainer=trainer,
                                    remote_trainer=remote_trainer,
                                    export_options={"workers": 1, "cache": None}, devices=[])
    ended, errors = [], []
    controller.run_ended.connect(lambda *args: ended.append(args))
    controller.error.connect(errors.append)
    if dataset is not None:
        with qtbot.waitSignal(runs.runs_loaded, timeout=10_000):
            controller.set_dataset(dataset)
    return controller, ended, errors


def wait_idle(qtbot, controller, ended, n, timeout=TRAIN_MS):
    qtbot.waitUntil(lambda: len(ended) >= n and not controller.is_busy(), timeout=timeout)


def test_tiny_training_from_the_dialog_then_predictions_and_the_runs_after_a_restart(qtbot, env, demo_root):
    dataset = load_dataset(demo_root)
    controller, ended, errors = build(qtbot, dataset)
    dialog = controller.open_run_dialog()
    qtbot.addWidget(dialog)
    dialog.task_combo.setCurrentIndex(dialog.task_combo.findData("multitask"))
    dialog.set_backbone("resnet10t")
    dialog.epochs_spin.setValue(1)
    dialog.batch_spin.setValue(4)
    dialog.size_spin.setValue(32)
    dialog.steps_spin.setValue(2)
    dialog.seeds_edit.setText("0")
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.pretrained_combo.setCurrentIndex(dialog.pretrained_combo.findData("none"))
    assert dialog.request() == TINY
    dialog.accept()
    wait_idle(qtbot, controller, ended, 1)
    run_dir, status, message = ended[0]
    assert (status, message, errors) == ("finished", "", [])

    monitor = controller.monitor
    assert monitor.curve_data("train_loss")[0] == [1]
    assert math.isfinite(monitor.curve_data("train_loss")[1][0])
    assert monitor.curve_data("val_loss")[0] == [1] and monitor.curve_data("val_balanced_accuracy")[0] == [1]
    assert monitor.progress_bar.value() == monitor.progress_bar.maximum() == 1
    assert "finished" in monitor.status_label.text()
    assert any("epoch 1/1" in line for line in monitor.log_view.toPlainText().splitlines())

    columns = []
    controller.predictions_ready.connect(columns.append)
    assert controller.predict(run_dir)
    qtbot.waitUntil(lambda: bool(columns) or bool(errors), timeout=TRAIN_MS)
    assert errors == []
    frame = columns[0]
    assert set(frame.index) == {lesion.image_id for lesion in dataset}
    assert list(frame.columns) == ["predicted_iaa", "p_malignant"]
    assert frame.notna().all().all() and frame["p_malignant"].between(0, 1).all()
    panel = controller.predictions_panel
    with_iaa = panel.predictions["iaa_true"].notna()
    seen = seen_in_training(read_run_record(run_dir, running=False).spec.data)
    unseen = int((with_iaa & ~panel.predictions.index.isin(list(seen))).sum())
    assert panel.scatter is not None and panel.scatter.subset == "unseen"
    assert panel.scatter.n == unseen and panel.scatter.n_left_out == int(with_iaa.sum()) - unseen > 2
    assert "MAE" in panel.stats_label.text() and "never saw" in panel.stats_label.text()
    panel.subset_combo.setCurrentIndex(panel.subset_combo.findData("all"))
    assert panel.scatter.n == int(with_iaa.sum()) and "flattering" in panel.stats_label.text()
    cam = panel.cam_for(next(iter(dataset)).image_id, (60, 80))
    assert cam is not None and cam.shape == (60, 80) and cam.min() >= 0 and cam.max() <= 1
    true_iaa = pd.Series(0.5, index=frame.index)
    panel.set_true_iaa(true_iaa)
    assert panel.scatter.n == len(frame)

    # A restart: a new panel over the same workspace shows the run, finished, with its metrics.
    reopened = RunsPanel()
    qtbot.addWidget(reopened)
    with qtbot.waitSignal(reopened.runs_loaded, timeout=10_000):
        reopened.set_workspace(controller.workspace)
    record = next(r for r in reopened.records if str(r.run_dir) == run_dir)
    assert record.status == "finished" and record.device == "cpu"
    assert "balanced_accuracy" in record.best_metrics and record.test_metrics
    row = reopened.records.index(record)
    assert reopened.runs_model.frame.loc[row, "status"] == "finished"
    reopened.select_runs([record.run_id])
    assert reopened.predict_button.isEnabled()
    assert list(reopened.comparison["task"]) == ["Multi-task"]


def test_cancel_mid_epoch_keeps_the_gui_usable(qtbot, env, demo_root):
    controller, ended, errors = build(qtbot, load_dataset(demo_root))
    request = RunRequest(mode="classification", backbone="resnet10t", epochs=200, batch_size=2, input_size=32,
                         device="cpu")
    assert controller.start(request)
    trainer = controller.trainer
    qtbot.waitUntil(lambda: bool(ended) or any(e["event"] == "epoch_progress" for e in trainer.events),
                    timeout=TRAIN_MS)
    assert ended == []
    assert controller.monitor.cancel_button.isEnabled()
    controller.monitor.cancel_button.click()
    wait_idle(qtbot, controller, ended, 1, timeout=60_000)
    run_dir, status, _ = ended[0]
    assert status == "cancelled" and errors == []
    assert read_run_record(run_dir).status == "cancelled"
    events = read_events(run_dir)[0]
    assert events[-1]["event"] == "error" and "interrupted" in events[-1]["message"]  # stopped gracefully
    assert not controller.monitor.cancel_button.isEnabled()
    # Still usable: a bad request is refused with a message, the dialog opens again.
    assert not controller.start(RunRequest(epochs=0))
    assert "Epochs must be at least 1." in errors[-1]
    dialog = controller.open_run_dialog()
    qtbot.addWidget(dialog)
    assert dialog.request().mode == "classification"  # the last request is remembered


def test_cancel_during_the_export_step_writes_no_training_set(qtbot, env, demo_root, tmp_path):
    controller, ended, errors = build(qtbot)
    dataset = load_dataset(demo_root)
    with qtbot.waitSignal(controller.runs_panel.runs_loaded, timeout=10_000):
        controller.set_dataset(dataset, tmp_path / "ws")
    with qtbot.waitSignal(controller.queue_finished, timeout=60_000):
        assert controller.start(RunRequest(input_size=40, device="cpu"))
        qtbot.waitUntil(lambda: controller.monitor.status_label.text() == "preparing", timeout=30_000)
        controller.monitor.cancel_button.click()
    assert "Cancelled" in controller.monitor.status_label.text() and errors == []
    assert not controller.is_busy()
    assert list((tmp_path / "ws" / "training-sets").glob("*")) == []
    assert not runs_dir(tmp_path / "ws").exists()


FAIL_CODE = (
    "import sys, time\n"
    "from iaa_desktop.core.training.runs import append_event\n"
    "run = sys.argv[1]\n"
    "append_event(run, 'run_started', device='cpu')\n"
    "append_event(run, 'epoch_progress', epoch=1, epochs=3, batch=1, batches=4)\n"
    "print('loading batch 2', flush=True)\n"
    "time.sleep(0.5)\n"
    "append_event(run, 'error', message='training failed: RuntimeError: boom in batch 2')\n"
    "sys.exit(3)\n")


def fake_trainer(code):
    return TrainerProcess(command=lambda run_dir, resume, extra: (sys.executable, ["-c", code, str(run_dir)]),
                          poll_ms=50)


def test_a_trainer_that_exits_non_zero_is_reported_with_its_last_error(qtbot, env, tmp_path):
    trainer = fake_trainer(FAIL_CODE)
    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    trainer.event.connect(monitor.add_event)
    trainer.log_line.connect(monitor.append_log)
    run_dir = new_run_dir(tmp_path / "ws", RunSpec(data="/x.h5"))
    progress = []
    trainer.progress.connect(lambda *args: progress.append(args))
    with qtbot.waitSignal(trainer.finished, timeout=30_000) as finished:
        trainer.start(run_dir)
    status, message = finished.args
    monitor.set_finished(status, message, read_run_record(run_dir).resumable)
    assert status == "failed" and message == "training failed: RuntimeError: boom in batch 2"
    assert progress and progress[0][:2] == (1, 3)
    assert "loading batch 2" in monitor.log_view.toPlainText()
    assert "boom in batch 2" in monitor.status_label.text()
    assert not monitor.resume_button.isEnabled()
    assert read_run_record(run_dir).status == "failed"
    assert not (run_dir / "trainer.pid").exists()

    crash = fake_trainer("import os\nprint('Segmentation fault in the loader', flush=True)\nos._exit(139)\n")
    with qtbot.waitSignal(crash.finished, timeout=30_000) as finished:
        crash.start(new_run_dir(tmp_path / "ws", RunSpec(data="/x.h5")))
    assert finished.args[0] == "failed"
    assert "exit" in finished.args[1] and "Segmentation fault in the loader" in finished.args[1]

    missing = TrainerProcess(command=lambda run_dir, resume, extra: (str(tmp_path / "no-such-python"), []))
    with qtbot.waitSignal(missing.finished, timeout=30_000) as finished:
        missing.start(new_run_dir(tmp_path / "ws", RunSpec(data="/x.h5")))
    assert finished.args[0] == "failed" and "could not start" in finished.args[1]


def test_resume_after_kill_continues_the_epochs(qtbot, env, demo_root):
    controller, ended, errors = build(qtbot, load_dataset(demo_root))
    request = RunRequest(mode="regression", backbone="resnet10t", epochs=500, batch_size=2, input_size=32,
                         device="cpu")
    assert controller.start(request)

    def saved_last():
        return [e for e in controller.trainer.events
                if e["event"] == "checkpoint_saved" and e["which"] == "last"]

    qtbot.waitUntil(lambda: bool(ended or saved_last()), timeout=TRAIN_MS)
    assert ended == []
    os.kill(controller.trainer.pid(), signal.SIGKILL)
    wait_idle(qtbot, controller, ended, 1, timeout=60_000)
    run_dir, status, message = ended[0]
    assert status == "interrupted" and "killed" in message
    record = read_run_record(run_dir)
    assert record.status == "interrupted" and record.resumable
    assert controller.monitor.resume_button.isEnabled()
    done = record.epochs_saved  # the kill may fall between an epoch's end and its checkpoint
    assert done >= 1 and record.epochs_done in (done, done + 1)

    assert controller.resume(run_dir, extra_args=("--epochs", str(done + 1)))
    wait_idle(qtbot, controller, ended, 2)
    assert ended[1][1:] == ("finished", "") and errors == []
    events = read_events(run_dir)[0]
    starts = [e for e in events if e["event"] == "run_started"]
    assert starts[-1]["resumed_from_epoch"] == done
    assert [e["epoch"] for e in events if e["event"] == "epoch_end"][-1] == done + 1
    assert read_run_record(run_dir).status == "finished"
    assert controller.monitor.curve_data("train_loss")[0][-1] == done + 1


def _fake_run(workspace, name, mode, backbone, seed, acc):
    run_dir = runs_dir(workspace) / name
    spec = RunSpec(data="/x/set.h5", mode=mode, backbone=backbone, seed=seed, epochs=1)
    save_spec(spec, run_dir / "run.json")
    append_event(run_dir, "run_started", spec=spec.to_dict(), device="cuda:0")
    append_event(run_dir, "epoch_end", epoch=1, epochs=1, lr=0.01, train_loss=0.7,
                 val={"loss": 0.6, "balanced_accuracy": acc - 0.02, "auroc": acc})
    append_event(run_dir, "run_finished", best_epoch=1, best={"balanced_accuracy": acc - 0.02},
                 test={"balanced_accuracy": acc, "auroc": acc}, seconds=3.0)


def test_runs_panel_compares_the_selected_runs_and_exports(qtbot, env, tmp_path):
    ws = tmp_path / "ws"
    accs = {("classification", "resnet18"): [0.70, 0.72, 0.74], ("multitask", "resnet18"): [0.75, 0.77, 0.79],
            ("classification", "efficientnet_b1"): [0.71, 0.73, 0.75],
            ("multitask", "efficientnet_b1"): [0.76, 0.78, 0.80]}
    for (mode, backbone), values in accs.items():
        for seed, acc in enumerate(values):
            _fake_run(ws, f"{mode}-{backbone}-{seed}", mode, backbone, seed, acc)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.runs_loaded, timeout=10_000):
        panel.set_workspace(ws)
    assert len(panel.records) == 12 and panel.summary_label.text() == "12 run(s): 12 finished"
    with qtbot.waitSignal(panel.comparison_changed):
        panel.select_runs([r.run_id for r in panel.records])
    table = panel.comparison
    assert len(table) == 4 and set(table["n"]) == {3}
    mt = table[(table["task"] == "Multi-task") & (table["backbone"] == "resnet18")].iloc[0]
    assert mt["mean"] == pytest.approx(0.77) and mt["sd"] == pytest.approx(0.02)
    assert panel.export_csv_button.isEnabled() and panel.compare_model.rowCount() == 4
    path = panel.export_comparison_csv(tmp_path / "out" / "comparison.csv")
    assert pd.read_csv(path)["mean"].round(4).tolist() == table["mean"].round(4).tolist()
    written = panel.export_comparison_figure(tmp_path / "out" / "comparison")
    assert all(p.stat().st_size > 1000 for p in written)
    panel.set_metric("auroc")
    assert panel.comparison["mean"].max() == pytest.approx(0.78)
    panel.set_metric("mae")
    assert panel.comparison.empty and not panel.export_figure_button.isEnabled()


def test_run_dialog_validates_with_clear_messages(qtbot, tmp_path):
    dialog = RunDialog(devices=[("cuda:0", "cuda:0 - NVIDIA H100")])
    qtbot.addWidget(dialog)
    assert [dialog.device_combo.itemData(i) for i in range(dialog.device_combo.count())] == \
        ["auto", "cpu", "cuda:0"]
    assert "1 CUDA GPU(s) found" in dialog.device_note.text()
    assert [dialog.backbone_combo.itemData(i) for i in range(3)] == \
        ["efficientnet_b1", "mobilenetv2_100", "resnet18"]
    dialog.backbone_combo.setEditText("convnext_nano")
    assert dialog.request().backbone == "convnext_nano"  # any timm name may be typed
    accepted = []
    dialog.request_accepted.connect(accepted.append)
    dialog.seeds_edit.setText("2-1")
    dialog.pretrained_combo.setCurrentIndex(dialog.pretrained_combo.findData("file"))
    dialog.weights_edit.setText(str(tmp_path / "none.pt"))
    dialog.accept()
    assert accepted == [] and "backwards" in dialog.problems_label.text()
    assert "none.pt is not a file" in dialog.problems_label.text()
    dialog.seeds_edit.setText("0,1,2")
    dialog.pretrained_combo.setCurrentIndex(dialog.pretrained_combo.findData("imagenet"))
    dialog.backbone_combo.setCurrentIndex(1)
    dialog.accept()
    assert len(accepted) == 1 and accepted[0].seeds == "0,1,2" and accepted[0].backbone == "mobilenetv2_100"
    assert accepted[0].pretrained == "imagenet" and dialog.problems_label.text() == ""
    assert not accepted[0].fast
    dialog.fast_check.setChecked(True)
    assert dialog.request().fast


def test_run_dialog_detects_devices_in_the_background(qtbot):
    dialog = RunDialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: not dialog.device_note.text().startswith("Looking"), timeout=10_000)
    values = [dialog.device_combo.itemData(i) for i in range(dialog.device_combo.count())]
    assert values[:2] == ["auto", "cpu"] and all(v.startswith("cuda:") for v in values[2:])
    assert ("found" in dialog.device_note.text()) and dialog.device_combo.currentData() == "auto"


FAKE_RSYNC = """#!{python}
import os, shutil, sys
home = {home!r}
def local(path):
    if ":" in path and not path.startswith("/"):
        path = path.split(":", 1)[1]
        path = path if path.startswith("/") else os.path.join(home, path)
    return path
src, dst = local(sys.argv[-2]), local(sys.argv[-1])
if "--exclude" in sys.argv:
    ignore = shutil.ignore_patterns(sys.argv[sys.argv.index("--exclude") + 1])
else:
    ignore = None
if os.path.isdir(src):
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=ignore)
else:
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    shutil.copy2(src, dst)
"""


def test_training_on_a_remote_machine_over_ssh(qtbot, env, demo_root, tmp_path, monkeypatch):
    """A stand-in ssh and rsync run the remote side locally, in a fake home folder, with the real trainer."""
    from iaa_desktop.gui.remote_trainer import RemoteTrainerProcess

    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text("#!/bin/sh\nwhile [ \"$1\" != \"--\" ]; do shift; done\nshift\n"
                                 f"cd '{home}'\nexec sh -c \"$1\"\n")
    (bin_dir / "rsync").write_text(FAKE_RSYNC.format(python=sys.executable, home=str(home)))
    for name in ("ssh", "rsync"):
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    controller, ended, errors = build(qtbot, load_dataset(demo_root),
                                      remote_trainer=RemoteTrainerProcess(poll_ms=200))
    request = RunRequest(mode="classification", backbone="resnet10t", epochs=1, batch_size=4, input_size=32,
                         device="cpu", max_steps_per_epoch=2, remote_host="gpu-box",
                         remote_python=sys.executable, remote_workdir="work")
    assert controller.start(request)
    wait_idle(qtbot, controller, ended, 1)
    run_dir, status, message = ended[0]
    assert (status, message, errors) == ("finished", "", [])
    remote_dir = home / "work" / "runs" / os.path.basename(run_dir)
    assert (remote_dir / "checkpoints" / "best.safetensors").is_file()
    assert (home / "work" / "training-sets" / controller.training_set.name).is_file()
    local = read_run_record(run_dir)
    assert local.status == "finished" and "balanced_accuracy" in local.best_metrics
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", "best.safetensors"))  # copied back
    assert os.path.isfile(os.path.join(run_dir, "remote.json"))  # Resume goes back to that machine
    assert controller.monitor.curve_data("train_loss")[0] == [1]
    assert controller.trainer is controller.remote_trainer


SLOW_CODE = (
    "import signal, sys, time\n"
    "from iaa_desktop.core.training.runs import append_event\n"
    "run = sys.argv[1]\n"
    "def stop(*_):\n"
    "    append_event(run, 'error', message='training interrupted; --resume continues')\n"
    "    sys.exit(130)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "append_event(run, 'run_started', device='cpu')\n"
    "time.sleep(60)\n")


def test_shutdown_stops_a_local_run_gracefully(qtbot, env, tmp_path):
    trainer = fake_trainer(SLOW_CODE)
    controller, ended, errors = build(qtbot, trainer=trainer)
    run_dir = new_run_dir(tmp_path / "ws", RunSpec(data="/x.h5"))
    trainer.start(run_dir)
    qtbot.waitUntil(lambda: bool(read_events(run_dir)[0]), timeout=30_000)
    with qtbot.waitSignal(trainer.finished, timeout=30_000) as finished:
        controller.shutdown(timeout_ms=20_000)
    assert finished.args[0] == "cancelled" and not controller.is_busy()
    assert read_events(run_dir)[0][-1]["event"] == "error"  # its SIGTERM handler ran
