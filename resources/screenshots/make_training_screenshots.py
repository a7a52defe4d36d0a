"""Screenshots of the training pieces on the demo dataset: run dialog, monitor, runs panel, predictions.

    xvfb-run -a -s "-screen 0 1280x800x24" \
        .venv/bin/python resources/screenshots/make_training_screenshots.py [OUT]

Trains 2 x 2 small runs (multi-task and diagnosis only, seeds 0 and 1; resnet10t at
64 px on the CPU, SHOT_EPOCHS epochs, default 12) in a workspace under OUT (default
/tmp/iaa-training-shots), runs the first multi-task model on the dataset, and writes
the PNGs and the comparison figure there.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/iaa-training-shots")
    out.mkdir(parents=True, exist_ok=True)
    os.environ["IAA_DESKTOP_WORKSPACES_DIR"] = str(out / "ws")

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication, QMainWindow, QTabWidget

    from iaa_desktop.core.dataset.demo import demo_dataset_dir
    from iaa_desktop.core.dataset.io import load_dataset
    from iaa_desktop.core.training.plan import RunRequest
    from iaa_desktop.gui.training_controller import TrainingController
    from iaa_desktop.gui.widgets.predictions_panel import PredictionsPanel
    from iaa_desktop.gui.widgets.run_dialog import RunDialog
    from iaa_desktop.gui.widgets.runs_panel import RunsPanel
    from iaa_desktop.gui.widgets.training_monitor import TrainingMonitor

    app = QApplication(sys.argv[:1])
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

    def wait(done, timeout=900):
        # A script, not the app: polling the event loop here is fine.
        end = time.monotonic() + timeout
        while not done():
            app.processEvents()
            time.sleep(0.02)
            if time.monotonic() > end:
                raise TimeoutError
        for _ in range(20):
            app.processEvents()

    def shot(widget, name):
        for _ in range(10):
            app.processEvents()
        widget.grab().save(str(out / name))
        print("wrote", out / name)

    dataset = load_dataset(demo_dataset_dir())
    monitor, runs, predictions = TrainingMonitor(), RunsPanel(), PredictionsPanel()
    window = QMainWindow()
    tabs = QTabWidget()
    for widget, title in ((monitor, "Training"), (runs, "Runs"), (predictions, "Predictions")):
        tabs.addTab(widget, title)
    window.setCentralWidget(tabs)
    window.resize(1100, 700)
    window.show()
    controller = TrainingController(monitor, runs, predictions, export_options={"workers": 2})
    ended = []
    controller.run_ended.connect(lambda *args: ended.append(args))
    controller.error.connect(lambda message: print("error:", message))
    controller.set_dataset(dataset)

    dialog = RunDialog(window, devices=[("cuda:0", "cuda:0 - NVIDIA H100 80GB HBM3")])
    dialog.show()
    shot(dialog, "run_dialog.png")
    dialog.seeds_edit.setText("0-")
    dialog.accept()
    shot(dialog, "run_dialog_invalid.png")
    dialog.close()

    epochs = int(os.environ.get("SHOT_EPOCHS", "12"))
    for n, mode in enumerate(("multitask", "classification")):
        request = RunRequest(mode=mode, backbone="resnet10t", epochs=epochs, batch_size=8, input_size=64,
                             seeds="0,1", device="cpu")
        assert controller.start(request)
        if n == 0:
            wait(lambda: sum(e["event"] == "epoch_end" for e in controller.trainer.events) >= 2)
            shot(window, "monitor_running.png")
        wait(lambda n=n: len(ended) >= 2 * (n + 1) and not controller.is_busy())
    shot(window, "monitor_finished.png")
    tabs.setCurrentIndex(1)
    runs.refresh()
    wait(lambda: not runs.is_loading())
    runs.select_runs([r.run_id for r in runs.records])
    shot(window, "runs_panel.png")
    runs.export_comparison_figure(out / "comparison", ("png",))

    first = next(r for r in runs.records if r.spec and r.spec.mode == "multitask" and r.status == "finished")
    columns = []
    controller.predictions_ready.connect(columns.append)
    controller.predict(first.run_dir)
    wait(lambda: bool(columns))
    tabs.setCurrentIndex(2)
    shot(window, "predictions.png")
    print(columns[0].sort_values("predicted_iaa").head())


if __name__ == "__main__":  # spawned workers (the agreement engine) re-import this file
    main()
