"""Training on Slurm in the real main window (issue 17): the run dialog, the queue, the finished runs.

    xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python resources/screenshots/make_slurm_screenshots.py [OUT] [--test-cluster]
    xvfb-run -a -s "-screen 0 1280x800x24" \\
        .venv/bin/python resources/screenshots/make_slurm_screenshots.py [OUT] --dialog-only [--login HOST]

Needs a Slurm the machine can submit to (``SLURM_CONF`` set, partition ``debug``
unless ``SLURM_PARTITION`` says otherwise); ``--test-cluster`` starts the tests'
throwaway single-node Slurm (as root; tests/slurm_cluster.py) and stops it at the
end. Opens the demo, fills the run dialog's Slurm section (2 seeds x 2 α, tiny
runs on the CPU), submits, and writes ``01_run_dialog_slurm.png``,
``02_training_dock_slurm.png`` (jobs queued/running) and ``03_runs_finished.png`` in OUT
(default /tmp/iaa-slurm-shots). ``--dialog-only`` stops after the dialog (no Slurm
needed) and also saves the whole screen (``00_screen.png``: does the dialog fit?);
``--login HOST`` fills the dialog for submitting through a login node over SSH.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

SIZE = (1600, 1000)


def main() -> None:
    login = sys.argv[sys.argv.index("--login") + 1] if "--login" in sys.argv else ""
    args = [a for a in sys.argv[1:] if not a.startswith("--") and a != login]
    out = Path(args[0] if args else "/tmp/iaa-slurm-shots")
    out.mkdir(parents=True, exist_ok=True)
    os.environ["IAA_DESKTOP_WORKSPACES_DIR"] = str(out / "workspaces")
    os.environ["IAA_DESKTOP_CACHE_DIR"] = str(out / "cache")
    cluster = None
    if "--test-cluster" in sys.argv and "--dialog-only" not in sys.argv:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tests.slurm_cluster import start_cluster

        cluster = start_cluster(out / "slurm")
        os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        run(out)
    finally:
        if cluster is not None:
            from tests.slurm_cluster import stop_cluster

            stop_cluster(cluster)


def run(out: Path) -> None:
    from PySide6.QtCore import QSettings

    from iaa_desktop.gui.app import make_application
    from iaa_desktop.gui.main_window import MainWindow

    app = make_application()

    def wait(done, timeout=600):
        # A script driving the app from outside: polling the event loop here is fine.
        end = time.monotonic() + timeout
        while not done():
            app.processEvents()
            time.sleep(0.02)
            if time.monotonic() > end:
                raise TimeoutError(str(done))
        for _ in range(30):
            app.processEvents()
            time.sleep(0.01)

    def shot(widget, name: str) -> None:
        wait(lambda: True)
        path = out / f"{name}.png"
        widget.grab().save(str(path))
        print("wrote", path, flush=True)

    settings = QSettings(tempfile.mkdtemp(prefix="iaa-settings-") + "/s.ini", QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    dialog_only = "--dialog-only" in sys.argv
    room = app.primaryScreen().availableGeometry()
    window.resize(min(SIZE[0], room.width()), min(SIZE[1], room.height()))
    window.show()
    training = window.training
    controller = training.controller
    ended = []
    controller.run_ended.connect(lambda *a: ended.append(a))
    controller.error.connect(lambda message: print("error:", message, flush=True))
    if not dialog_only:
        window.open_dataset(None)
        wait(lambda: window.analysis is not None and not window.is_busy())

    dialog = controller.open_run_dialog(window)
    dialog.task_combo.setCurrentIndex(dialog.task_combo.findData("multitask"))
    dialog.set_backbone("resnet10t")
    dialog.epochs_spin.setValue(3)
    dialog.batch_spin.setValue(8)
    dialog.size_spin.setValue(64)
    dialog.steps_spin.setValue(2)
    dialog.seeds_edit.setText("0,1")
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.where_combo.setCurrentIndex(dialog.where_combo.findData("slurm"))
    fields = dialog.slurm_fields
    fields.partition_edit.setText(os.environ.get("SLURM_PARTITION", "debug"))
    fields.cpus_spin.setValue(1)
    fields.time_spin.setValue(30)
    fields.alphas_edit.setText("0.25")
    login = sys.argv[sys.argv.index("--login") + 1] if "--login" in sys.argv else ""
    if login:
        fields.submit_combo.setCurrentIndex(fields.submit_combo.findData("ssh"))
        dialog.host_edit.setText(login)
        dialog.python_edit.setText("~/envs/iaa/bin/python")
        dialog.workdir_edit.setText("/shared/me/iaa-desktop")
    wait(lambda: True)
    dialog.scroll.ensureWidgetVisible(dialog.slurm_fields.alphas_edit)  # the Slurm section, at the end
    shot(dialog, "01_run_dialog_slurm")
    if dialog_only:
        wait(lambda: True)
        app.primaryScreen().grabWindow(0).save(str(out / "00_screen.png"))
        print("wrote", out / "00_screen.png", flush=True)
        window.close()
        return
    dialog.accept()

    training._show("training")
    wait(lambda: any(": running" in line for line in
                     training.controller.monitor.log_view.toPlainText().splitlines()))
    shot(window, "02_training_dock_slurm")
    wait(lambda: len(ended) >= 4 and not controller.is_busy())
    training._show("runs")
    window.training.runs.refresh()
    wait(lambda: not window.training.runs.is_loading())
    shot(window, "03_runs_finished")
    window.close()


if __name__ == "__main__":  # spawned workers (the agreement engine) re-import this file
    main()
