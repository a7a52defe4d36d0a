"""The researcher's loop in the real main window, one screenshot per step (issues 5 and 7).

    xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python resources/screenshots/make_workflow_screenshots.py [OUT] [--readme]

From a fresh start (throw-away settings, workspace and cache under OUT, default
/tmp/iaa-workflow): open the demo, go to the lowest-IAA lesion, click a heatmap
cell (pair mode), train a multi-task model for one epoch and watch the curves,
train a diagnosis-only one, compare them, run the multi-task model on the
dataset, sort the browser by predicted IAA, show a Grad-CAM, export the
comparison figure. Writes ``NN_step.png`` per step and ``comparison.{png,svg,pdf}``.
``--readme`` copies two of them here for the README (made with ``WORKFLOW_EPOCHS=10``:
``WORKFLOW_EPOCHS`` trains longer, since a one-epoch model's Grad-CAM is often zero).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageColor

from iaa_desktop.core.palette import ANNOTATOR_COLOURS

SIZE = (1600, 1000)
HERE = Path(__file__).resolve().parent
#: Steps copied into this folder for the README (``--readme``), palette-compressed.
README_SHOTS = {"01_lowest_iaa_lesion": "main_window.png", "09_grad_cam": "training_and_grad_cam.png"}
README_MAX_KB = 350


def shrink_png(path: Path, max_kb: int, exact_colours: Sequence[str] = ()) -> None:
    """Re-encode ``path`` with a 256-colour palette when it is above ``max_kb``.

    The palette is median-cut from the image plus ``exact_colours`` (hex), so
    that the annotator colours and greys of the UI come out unchanged.
    """
    if path.stat().st_size <= max_kb * 1024:
        return
    fixed = [ImageColor.getrgb(c) for c in dict.fromkeys(exact_colours)]
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    learned = rgb.quantize(256 - len(fixed), method=Image.Quantize.MEDIANCUT).getpalette()
    colours = [channel for colour in fixed for channel in colour] + learned[: 3 * (256 - len(fixed))]
    palette = Image.new("P", (1, 1))
    palette.putpalette(colours + [0] * (768 - len(colours)))
    rgb.quantize(palette=palette, dither=Image.Dither.NONE).save(path, optimize=True)




def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--readme"]
    out = Path(args[0] if args else "/tmp/iaa-workflow")
    out.mkdir(parents=True, exist_ok=True)
    os.environ["IAA_DESKTOP_WORKSPACES_DIR"] = str(out / "workspaces")
    os.environ["IAA_DESKTOP_CACHE_DIR"] = str(out / "cache")

    from PySide6.QtCore import QSettings, Qt

    from iaa_desktop.core.training.plan import RunRequest
    from iaa_desktop.gui.app import make_application
    from iaa_desktop.gui.main_window import MainWindow

    app = make_application()

    def wait(done, timeout=900):
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

    step = [0]

    def shot(name: str) -> None:
        wait(lambda: True)
        step[0] += 1
        path = out / f"{step[0]:02d}_{name}.png"
        window.grab().save(str(path))
        print("wrote", path, flush=True)

    settings = QSettings(tempfile.mkdtemp(prefix="iaa-settings-") + "/s.ini", QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(*SIZE)
    window.show()
    training = window.training
    ended = []
    training.controller.run_ended.connect(lambda *args: ended.append(args))
    training.controller.error.connect(lambda message: print("error:", message, flush=True))

    window.open_dataset(None)
    wait(lambda: window.analysis is not None and not window.is_busy())
    window.worst_action.trigger()
    wait(lambda: not window.is_busy())
    shot("lowest_iaa_lesion")

    window.panels.heatmap.click_cell(0, 1)
    shot("pair_mode")
    window.lesion_view.show_all()
    window.lesion_view.set_disagreement("vote fraction")
    window.lesion_view.set_staple_visible(True)
    wait(lambda: not window.is_busy())
    shot("disagreement_and_staple")
    window.lesion_view.set_disagreement("off")
    window.lesion_view.set_staple_visible(False)

    window.docks["plots"].raise_()
    shot("agreement_plots")
    window.docks["pairs"].raise_()

    epochs = int(os.environ.get("WORKFLOW_EPOCHS", "1"))  # the loop: one epoch
    for n, mode in enumerate(("multitask", "classification")):
        request = RunRequest(mode=mode, backbone="resnet10t", epochs=epochs, batch_size=8, input_size=64,
                             seeds="0", device="cpu")
        assert training.controller.start(request)
        training._show("training")
        if n == 0:
            wait(lambda: any(e["event"] == "epoch_progress" for e in training.controller.trainer.events))
            shot("training_multitask")
        wait(lambda n=n: len(ended) >= n + 1 and not training.controller.is_busy())
    shot("training_finished")

    runs = training.runs
    training._show("runs")
    runs.refresh()
    wait(lambda: not runs.is_loading())
    runs.select_runs([r.run_id for r in runs.records])
    shot("runs_compared")
    runs.export_comparison_figure(out / "comparison")

    first = next(r for r in runs.records if r.spec and r.spec.mode == "multitask" and r.status == "finished")
    columns = []
    training.controller.predictions_ready.connect(columns.append)
    training.controller.predict(first.run_dir)
    wait(lambda: bool(columns))
    table = window.table
    table.view.sortByColumn(table.model.column_names().index("predicted_iaa"), Qt.SortOrder.AscendingOrder)
    table.select_row(0)
    wait(lambda: not window.is_busy())
    shot("sorted_by_predicted_iaa")

    training.cam_action.setChecked(True)
    shot("grad_cam")
    window.close()
    if "--readme" in sys.argv:
        for step, name in README_SHOTS.items():
            target = HERE / name
            shutil.copyfile(out / f"{step}.png", target)
            shrink_png(target, README_MAX_KB, ANNOTATOR_COLOURS)
            print("wrote", target, f"({target.stat().st_size // 1024} KB)")


if __name__ == "__main__":  # spawned workers (the agreement engine) re-import this file
    main()
