"""Screenshots of the lesion view on a demo lesion, one per mode, for looking at them.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot_lesion_view.py [OUT_DIR]

Writes contours.png, filled.png, consensus.png, heat.png, entropy.png and pair.png
(default OUT_DIR: /tmp/lesion_view_shots).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QPointF  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from iaa_desktop.core.dataset.demo import demo_dataset_dir  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.display.lesion import iter_lesion_display, with_staple  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.gui.widgets.lesion_view import LesionView  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/lesion_view_shots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(imageAxisOrder="row-major")
    dataset = load_dataset(demo_dataset_dir())
    lesion = max(dataset.lesions, key=lambda item: len(item.human_segmentations))
    display = with_staple(run_to_end(iter_lesion_display(lesion)))
    view = LesionView()
    view.resize(1100, 760)
    view.show()
    view.show_overlay(display, lesion)

    def shot(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        centre = view.view_box.mapViewToScene(QPointF(display.shape[1] / 2, display.shape[0] / 2))
        view._on_scene_mouse_moved(centre)
        app.processEvents()
        view.grab().save(str(out / f"{name}.png"))
        print(out / f"{name}.png")

    shot("contours")
    view.set_mode("filled")
    view.set_opacity(0.8)
    shot("filled")
    view.set_mode("contours")
    view.set_opacity(1.0)
    view.set_majority_visible(True)
    view.set_staple_visible(True)
    shot("consensus")
    view.set_majority_visible(False)
    view.set_staple_visible(False)
    view.set_disagreement("vote fraction")
    shot("heat")
    view.set_disagreement("entropy")
    shot("entropy")
    view.set_disagreement("off")
    view.show_pair(0, 1)
    shot("pair")
    view.show_pair(2, "STAPLE")
    shot("pair_staple")
    view.show_all()
    view.set_annotator_visible(1, False)
    shot("one_hidden")
    for suffix in (".png", ".svg", ".pdf"):
        print(view.export(out / f"export{suffix}"))


if __name__ == "__main__":
    main()
