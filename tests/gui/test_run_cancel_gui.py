"""The runs panel's per-run Cancel (asks first, then stops a run whoever started it), and the run
dialog's Slurm section: submitting from a login node over SSH, and a dialog that fits the screen."""

import subprocess
import sys

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("superqt")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from iaa_desktop.core.training.plan import RunRequest, new_run_dir, request_problems  # noqa: E402
from iaa_desktop.core.training.run_records import read_run_record  # noqa: E402
from iaa_desktop.core.training.runs import RunSpec, read_events, save_spec  # noqa: E402
from iaa_desktop.core.training.slurm_plan import SlurmRequest  # noqa: E402
from iaa_desktop.gui.widgets.run_dialog import RunDialog  # noqa: E402
from tests.gui.test_training_gui import build  # noqa: E402

#: A stand-in for a trainer started from the command line: it records its own pid (as
#: ``python -m trainer`` does), has "trainer" on its command line, and stops on SIGTERM with its event.
CLI_TRAINER = (
    "import signal, sys, time\n"
    "from iaa_desktop.core.training.run_records import write_pid_file\n"
    "from iaa_desktop.core.training.runs import append_event\n"
    "run = sys.argv[1]\n"
    "def stop(*_):\n"
    "    append_event(run, 'error', message='training interrupted; --resume continues')\n"
    "    sys.exit(130)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "write_pid_file(run)\n"
    "append_event(run, 'run_started', device='cpu')\n"
    "time.sleep(120)\n")


def test_a_run_started_on_the_command_line_shows_running_and_is_cancelled_from_the_runs_panel(
        qtbot, tmp_path, monkeypatch):
    controller, ended, errors = build(qtbot)
    workspace = tmp_path / "ws"
    run_dir = new_run_dir(workspace, RunSpec(data="/x.h5"))
    save_spec(RunSpec(data="/x.h5"), run_dir / "run.json")
    process = subprocess.Popen([sys.executable, "-c", CLI_TRAINER, str(run_dir), "trainer"])
    try:
        qtbot.waitUntil(lambda: bool(read_events(run_dir)[0]), timeout=30_000)
        panel = controller.runs_panel
        with qtbot.waitSignal(panel.runs_loaded, timeout=10_000):
            panel.set_workspace(workspace)
        assert [r.status for r in panel.records] == ["running"]  # not "interrupted": its own pid file
        panel.select_runs([run_dir.name])
        assert panel.cancel_button.isEnabled()

        answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
        asked = []
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or answers.pop(0))
        panel.cancel_button.click()  # No: nothing happens
        assert process.poll() is None and "Cancel " + run_dir.name in asked[0]
        panel.cancel_button.click()  # Yes
        assert process.wait(timeout=30) == 130
        qtbot.waitUntil(lambda: [r.status for r in panel.records] == ["cancelled"], timeout=10_000)
        assert read_events(run_dir)[0][-1]["event"] == "error" and errors == []
        assert read_run_record(run_dir).status == "cancelled"
        assert not panel.cancel_button.isEnabled()
        assert not controller.cancel_run(run_dir)  # nothing left to cancel: said, not silent
        assert errors == [f"{run_dir.name} is not running here: there is nothing to cancel."]
    finally:
        process.kill()
        process.wait()


def test_slurm_through_a_login_node_in_the_dialog(qtbot):
    dialog = RunDialog(devices=[])
    qtbot.addWidget(dialog)
    dialog.where_combo.setCurrentIndex(dialog.where_combo.findData("slurm"))
    assert not dialog.host_edit.isEnabled()  # sbatch on this machine: no SSH
    fields = dialog.slurm_fields
    fields.submit_combo.setCurrentIndex(fields.submit_combo.findData("ssh"))
    assert dialog.host_edit.isEnabled() and "login" in dialog.host_edit.placeholderText()
    assert "iaa-desktop[cluster]" in dialog.python_edit.toolTip()
    assert request_problems(dialog.request()) == [
        "Remote host '(no host)': give user@host or an ssh config name."]
    assert "Slurm through a login node: give the login node as SSH host." in request_problems(
        RunRequest(slurm=SlurmRequest(submit_from="ssh")))
    dialog.host_edit.setText("me@login.cluster")
    dialog.python_edit.setText("/home/me/env/bin/python")
    request = dialog.request()
    assert request.slurm.submit_from == "ssh" and request.remote_host == "me@login.cluster"
    assert request.remote_python == "/home/me/env/bin/python" and request_problems(request) == []
    again = RunDialog(devices=[], initial=request)  # the last request comes back as it was
    qtbot.addWidget(again)
    assert again.request() == request and again.host_edit.isEnabled()
    # sbatch here with an SSH host given: the host is not used, and not refused either.
    fields.submit_combo.setCurrentIndex(fields.submit_combo.findData("local"))
    assert dialog.request().remote_host == "" and request_problems(dialog.request()) == []


def test_a_login_node_refuses_a_local_weights_file(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    request = RunRequest(pretrained=str(weights), remote_host="login",
                         slurm=SlurmRequest(submit_from="ssh"))
    assert "Pretrained weights from a local file cannot be sent through a login node: choose ImageNet " \
           "or none." in request_problems(request)


def test_the_dialog_with_its_slurm_section_fits_the_screen(qtbot):
    dialog = RunDialog(devices=[])
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    room = dialog.screen().availableGeometry().height()
    dialog.where_combo.setCurrentIndex(dialog.where_combo.findData("slurm"))
    content = dialog.scroll.widget()
    assert content.sizeHint().height() > room - 60  # taller than the screen: it must scroll
    assert dialog.height() <= room - 60
    assert dialog.scroll.verticalScrollBar().maximum() > 0
    assert dialog.buttons.isVisible() and dialog.buttons.geometry().bottom() <= dialog.height()
    dialog.where_combo.setCurrentIndex(dialog.where_combo.findData("local"))
    assert dialog.height() <= room - 60
