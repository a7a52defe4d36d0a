"""Screenshot of the main window showing one lesion, for the README.

Run under a display (a real one or Xvfb)::

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python resources/screenshots/make_screenshot.py

With no ``--dataset`` it uses the demo dataset and picks a malignant lesion
with the most annotators. The window's settings go to a temporary file, so
the user's saved geometry is neither used nor changed. A PNG larger than
``--max-kb`` is re-encoded with a 256-colour palette.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from PIL import Image, ImageColor
from PySide6.QtCore import QSettings, QTimer

from iaa_desktop.core.overlay import OKABE_ITO
from iaa_desktop.gui.app import make_application
from iaa_desktop.gui.main_window import MainWindow
from iaa_desktop.gui.widgets.lesion_view import BACKGROUND, LEGEND_TEXT
from iaa_desktop.gui.workers import IndexedDataset

HERE = Path(__file__).resolve().parent


def pick_lesion(table: pd.DataFrame) -> str:
    """A malignant lesion with the most annotators (the first such row), else the first row."""
    malignant = table[table["benign_malignant"] == "malignant"]
    pool = malignant if len(malignant) else table
    return str(pool.sort_values("annotators", ascending=False, kind="stable").iloc[0]["image_id"])


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="dataset folder (default: the demo dataset)")
    parser.add_argument("--lesion", help="image id to show (default: a malignant one with many masks)")
    parser.add_argument("--out", type=Path, default=HERE / "main_window.png")
    parser.add_argument("--size", default="1280x800", help="window size, WxH")
    parser.add_argument("--max-kb", type=int, default=300)
    args = parser.parse_args(argv)

    app = make_application([sys.argv[0]])
    settings_file = Path(tempfile.mkdtemp(prefix="iaa-screenshot-")) / "settings.ini"
    window = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    result = {"code": 1}
    wanted: dict[str, str] = {}

    def on_loaded(indexed: IndexedDataset) -> None:
        wanted["id"] = args.lesion or pick_lesion(indexed.table)
        for row in range(window.table.row_count()):
            if window.table.image_id_at(row) == wanted["id"]:
                window.table.select_row(row)
                return
        print(f"no lesion {wanted['id']} in the dataset", file=sys.stderr)
        app.quit()

    def on_shown(image_id: str) -> None:
        if image_id == wanted.get("id"):
            # Let the status bar and the scene settle before grabbing.
            QTimer.singleShot(500, grab)

    def grab() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if window.grab().save(str(args.out)):
            shrink_png(args.out, args.max_kb,
                       [*OKABE_ITO.values(), BACKGROUND, LEGEND_TEXT, "#FFFFFF", "#000000"])
            print(f"{args.out} ({args.out.stat().st_size / 1024:.0f} KB)")
            result["code"] = 0
        app.quit()

    def on_failed(message: str) -> None:
        print(message, file=sys.stderr)
        app.quit()

    window.dataset_loaded.connect(on_loaded)
    window.lesion_shown.connect(on_shown)
    window.dataset_failed.connect(on_failed)
    window.open_dataset(args.dataset)
    QTimer.singleShot(120_000, app.quit)  # never hang a build
    app.exec()
    window.close()
    return result["code"]


if __name__ == "__main__":
    raise SystemExit(main())
