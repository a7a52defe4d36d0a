"""The main window at a screen size, on lesions with 2, 5 and 8 annotators, for looking at the
heatmap's cell values and labels, the pixel read-out and the right dock's tab titles.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_window_sizes.py [OUT_DIR]
    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot_window_sizes.py [OUT_DIR]

Builds an IMA++-layout dataset (tests.builders.make_many_annotators) with one lesion per annotator count (in
``ISIC_n5`` and ``ISIC_n8`` annotator A03 drew twice, so labels read "A03 #2"), opens it in a
window filling the screen with a fresh layout, and saves ``window_<W>x<H>_n<N>.png`` per
lesion, ``..._n<N>_consensus.png`` with the STAPLE and MV rows, and ``..._readout.png`` after
moving to another lesion under a still cursor. Default OUT_DIR: /tmp/window_shots.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.builders import make_many_annotators  # noqa: E402

SHAPE = (300, 400)
COUNTS = (2, 5, 8)


def fit_report(window) -> str:
    """Cell size, font and decimals the heatmap chose, and whether every value is inside its cell."""
    plot = window.panels.heatmap.plot
    view_box = plot.plot.getViewBox()
    rows, columns = plot.shape
    cell_w, cell_h = view_box.width() / columns, view_box.height() / rows
    widest = max(item.boundingRect().width() for item in plot.text_items)
    return (f"{columns} columns, cells {cell_w:.0f} x {cell_h:.0f} px, font {plot.cell_font_pt} pt, "
            f"{plot.decimals_dropped} decimal(s) dropped, widest value {widest:.0f} px, "
            f"labels {'upright' if plot.column_axis.vertical else 'side by side'}")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/window_shots")
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="iaa-window-shots-"))
    for name, sub in (("IAA_DESKTOP_CACHE_DIR", "cache"), ("IAA_DESKTOP_WORKSPACES_DIR", "ws")):
        os.environ[name] = str(scratch / sub)
    root = make_many_annotators(scratch / "dataset", COUNTS, SHAPE)

    from iaa_desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    screen = app.primaryScreen().availableGeometry()
    size = f"{screen.width()}x{screen.height()}"
    window = MainWindow(settings=QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat),
                        analysis_workers=1)
    window.setGeometry(screen)  # no window manager under Xvfb: maximise by hand
    window.show()

    def wait(condition, limit_ms=60_000) -> None:
        waited = 0
        while not condition() and waited < limit_ms:
            app.processEvents()
            QApplication.instance().thread().msleep(20)
            waited += 20
        for _ in range(10):
            app.processEvents()

    view = window.lesion_view
    window.open_dataset(root)
    wait(lambda: window.analysis is not None and not window.is_busy())
    for n in COUNTS:
        shown = window.table.shown_image_ids()
        window.table.select_row(shown.index(f"ISIC_n{n}"))
        wait(lambda n=n: window.lesion_view.image_id == f"ISIC_n{n}" and not window.is_busy()
             and window.panels.heatmap.current_matrix() is not None
             and window.panels.heatmap.current_matrix().image_id == f"ISIC_n{n}")
        if n == COUNTS[-1]:
            # A still cursor over the lesion: its read-out, then the next lesion's.
            view._on_scene_mouse_moved(view.view_box.mapViewToScene(view.view_box.viewRect().center()))
            before = view.readout.text()
            window.table.select_row(shown.index("ISIC_n2"))
            wait(lambda: view.image_id == "ISIC_n2" and not window.is_busy())
            print(f"read-out on n{n}: {before!r}; after moving to n2 under the same cursor: "
                  f"{view.readout.text()!r}")
            window.grab().save(str(out / f"window_{size}_readout.png"))
            window.table.select_row(shown.index(f"ISIC_n{n}"))
            wait(lambda n=n: view.image_id == f"ISIC_n{n}" and not window.is_busy())
        path = out / f"window_{size}_n{n}.png"
        window.grab().save(str(path))
        print(path, fit_report(window))
        window.panels.heatmap.consensus_check.setChecked(True)
        wait(lambda: True)
        window.grab().save(str(out / f"window_{size}_n{n}_consensus.png"))
        print(out / f"window_{size}_n{n}_consensus.png", fit_report(window))
        window.panels.heatmap.consensus_check.setChecked(False)
    window.close()


if __name__ == "__main__":
    main()
