"""Training on Slurm from the GUI, against the real throwaway Slurm of the ``slurm_cluster`` fixture:
the run dialog's Slurm section, a 2-seed grid followed queued -> running -> finished in the docks,
and after a restart a held job adopted, shown queued and cancelled."""

import dataclasses
import os
import sys

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("superqt")

from iaa_desktop.core.dataset import demo  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.training import slurm, slurm_login  # noqa: E402
from iaa_desktop.core.training.plan import RunRequest  # noqa: E402
from iaa_desktop.core.training.remote import RemoteTarget  # noqa: E402
from iaa_desktop.core.training.slurm_plan import SlurmRequest  # noqa: E402
from iaa_desktop.gui.widgets.run_dialog import RunDialog  # noqa: E402
from tests.fake_remote import install  # noqa: E402
from tests.gui.test_training_gui import build  # noqa: E402
from tests.slurm_cluster import PARTITION  # noqa: E402

pytestmark = pytest.mark.slow
TINY = RunRequest(mode="multitask", backbone="resnet10t", epochs=2, batch_size=4, input_size=32, seeds="0,1",
                  device="cpu", max_steps_per_epoch=2,
                  slurm=SlurmRequest(partition=PARTITION, cpus_per_task=1, time_min=5))


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_WORKSPACES_DIR", str(tmp_path / "workspaces"))
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    return load_dataset(demo.write_demo(tmp_path / "demo", n_lesions=12))


def test_dialog_slurm_section(qtbot):
    dialog = RunDialog(devices=[])
    qtbot.addWidget(dialog)
    assert dialog.request().slurm is None and "one after another" in dialog.note.text()
    dialog.where_combo.setCurrentIndex(dialog.where_combo.findData("slurm"))
    assert not dialog.slurm_fields.isHidden()
    assert "Slurm job" in dialog.note.text() and "one after another" not in dialog.note.text()
    fields = dialog.slurm_fields
    fields.partition_edit.setText("gpu")
    fields.gpus_spin.setValue(2)
    fields.time_spin.setValue(120)
    fields.extra_edit.setText("--qos=high")
    fields.backbones_edit.setText("mobilenetv2_100")
    fields.alphas_edit.setText("0.25, 2")
    request = dialog.request()
    assert request.slurm.partition == "gpu" and request.slurm.gpus_per_node == 2
    assert request.slurm.time_min == 120 and request.slurm.extra_sbatch == "--qos=high"
    dialog.accept()  # α 2 is refused: the dialog stays open and says why
    assert "Grid α values: 2 does not lie strictly between 0 and 1" in dialog.problems_label.text()
    again = RunDialog(devices=[], initial=request)
    qtbot.addWidget(again)
    assert again.where_combo.currentData() == "slurm" and again.request().slurm == request.slurm


def test_grid_is_followed_to_the_end_then_a_restart_adopts_a_queued_job(slurm_cluster, qtbot, dataset):
    controller, ended, errors = build(qtbot, dataset)
    assert controller.start(TINY)
    qtbot.waitUntil(lambda: len(ended) >= 2 and not controller.is_busy(), timeout=180_000)
    assert errors == []
    assert sorted(status for _, status, _ in ended) == ["finished", "finished"]
    log = controller.monitor.log_view.toPlainText()
    assert " queued: " in log and ": running" in log and "Slurm runs ended: 2 finished" in log
    qtbot.waitUntil(lambda: not controller.runs_panel.is_loading(), timeout=10_000)
    records = controller.runs_panel.records
    assert [r.status for r in records] == ["finished", "finished"]
    assert sorted(r.spec.seed for r in records) == [0, 1]
    assert controller.monitor.curve_data("train_loss")[0] == [1, 2]  # the followed run's curves

    # A job submitted (held) outside this window: a new window adopts it as queued; Cancel stops it.
    held = slurm.submit_grid([records[0].spec.replace(seed=5)], controller.workspace,
                             slurm.SlurmOptions(partition=PARTITION, cpus_per_task=1,
                                                extra_sbatch=("--hold",)))
    restarted, ended2, errors2 = build(qtbot, dataset)
    qtbot.waitUntil(lambda: restarted.slurm_runs.is_active(), timeout=10_000)
    qtbot.waitUntil(lambda: any(r.status == "queued" for r in restarted.runs_panel.records), timeout=15_000)
    restarted.cancel()
    qtbot.waitUntil(lambda: not restarted.is_busy(), timeout=60_000)
    assert [status for _, status, _ in ended2] == ["cancelled"] and errors2 == []
    qtbot.waitUntil(lambda: not slurm.squeue_states(held["job_ids"]), timeout=30_000)  # scancel reached Slurm


def test_a_grid_submitted_through_a_login_node_is_followed_and_a_run_cancelled_from_the_runs_panel(
        slurm_cluster, qtbot, dataset, tmp_path, monkeypatch):
    """A stand-in ssh/rsync (tests/fake_remote.py) plays the login node on this machine; its
    iaa-train-grid submits to the real test Slurm; the run folders are copied back as they train."""
    from PySide6.QtWidgets import QMessageBox

    home, bin_dir = install(tmp_path / "login")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    request = dataclasses.replace(TINY, seeds="0", remote_host="login", remote_python=sys.executable,
                                  remote_workdir="cluster-ws",
                                  slurm=dataclasses.replace(TINY.slurm, submit_from="ssh"))
    controller, ended, errors = build(qtbot, dataset)
    assert controller.start(request)
    qtbot.waitUntil(lambda: len(ended) >= 1 and not controller.is_busy(), timeout=180_000)
    assert errors == [] and [status for _, status, _ in ended] == ["finished"]
    log = controller.monitor.log_view.toPlainText()
    assert "Copying the training set to login (cluster-ws)" in log and " queued: " in log, log
    qtbot.waitUntil(lambda: not controller.runs_panel.is_loading(), timeout=10_000)
    [record] = controller.runs_panel.records
    assert record.status == "finished" and record.test_metrics
    assert (record.run_dir / "checkpoints" / "best.safetensors").is_file()  # copied back
    assert (home / "cluster-ws" / "runs" / record.run_id / "events.jsonl").is_file()  # trained there
    assert controller.monitor.curve_data("train_loss")[0] == [1, 2]  # followed live from the copies

    # A held job submitted through the login node earlier: a new window adopts it as queued, and
    # the runs panel's Cancel (after its question) scancels it on the login node.
    target = RemoteTarget(host="login", python=sys.executable, workdir="cluster-ws")
    held = slurm_login.submit_grid_via_login([record.spec.replace(seed=5, data=str(controller.training_set))],
                                             controller.workspace,
                                             slurm.SlurmOptions(partition=PARTITION, cpus_per_task=1,
                                                                extra_sbatch=("--hold",)), target)
    restarted, ended2, errors2 = build(qtbot, dataset)
    qtbot.waitUntil(lambda: restarted.slurm_runs.is_active(), timeout=10_000)
    panel = restarted.runs_panel
    qtbot.waitUntil(lambda: [r.status for r in panel.records if str(r.run_dir) in held["runs"]] == ["queued"],
                    timeout=15_000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert panel.confirm_cancel(next(r for r in panel.records if str(r.run_dir) in held["runs"]))
    qtbot.waitUntil(lambda: not restarted.is_busy(), timeout=60_000)
    assert [status for _, status, _ in ended2] == ["cancelled"] and errors2 == []
    qtbot.waitUntil(lambda: not slurm.squeue_states(held["job_ids"]), timeout=30_000)  # scancel reached Slurm
