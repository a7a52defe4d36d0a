"""Switching lesions in the lesion view: decode + draw, ours against the code it replaced.

Issue 5, item 9, and issue 19, item 3 (the first view). Synthetic lesions (a smooth
skin-like JPEG and 5 annotators' PNG masks, ``_masks.lesion_pair`` blobs) in the folder
layout under a temporary folder, at 1022 x 767 and 6000 x 4000. Every file is read once
first, so the OS file cache is warm.

- **issue 5**: the viewer before issue 5: ``core.overlay.iter_lesion_overlay``
  (image and masks decoded one after the other, masks by OpenCV's libpng, outlines
  traced) and the old ``LesionView.show_overlay`` (outlines as 2-pixel antialiased
  strokes on translucent halos), copied below as ``BaselineView``.
- **full-res (bb2c6df)**: the first view before issue 19's item 3, the baseline of the
  ratio: ``LesionLoader(first_view=False)``, an empty cache, every mask decoded in full
  (masks in parallel, pixel checks, outlines traced at full resolution, display-size
  masks, majority vote, vote fraction, entropy) before the real ``LesionView`` draws.
- **first view**: ``LesionLoader()`` as the application runs it, an empty cache: for a
  lesion shown reduced, masks sampled at display resolution
  (``core.display.first_view``), the real ``LesionView`` drawing the image with all five
  annotators' outlines: what the user sees first. "ratio" is full-res / first view.
  "(image shown)": for images of 8 MP and more the image is drawn as soon as it is
  decoded (``LesionLoader.preview``), before the masks. **exact outlines**: from the
  same request until the exact display (outlines traced at full resolution) replaced the
  first view on screen; each switch waits for it, so that every switch starts idle.
  STAPLE is not waited for (timed on its own).
- **revisit**: the same, with the lesion in the display cache.
- **prefetched**: switching to the next lesion after ``LesionLoader.prefetch`` decoded it
  in the background while the previous one was on screen (what browsing a table gives).

Each switch is timed from the request to the end of a synchronous repaint of the view,
offscreen; medians over all switches are printed.

    python benchmarks/bench_lesion_switch.py [--small 16] [--large 4] [--rounds 3]

PySide6 6.12.0 loses a reference to ``True`` (and ``None``) on some signal emissions and
aborts the process ("Fatal Python error: bool_dealloc") after a few thousand repaints:
run this with PySide6 < 6.12 (6.11.3 runs it to the end).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import pyqtgraph as pg  # noqa: E402
from _masks import lesion_pair  # noqa: E402
from PySide6.QtCore import QEventLoop, QRectF, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QGraphicsItem, QWidget  # noqa: E402

from iaa_desktop.core.dataset import masks as masks_module  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.display.cache import DisplayCache  # noqa: E402
from iaa_desktop.core.display.lesion import with_staple  # noqa: E402
from iaa_desktop.core.display.overlay import iter_lesion_overlay, join_contours  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.gui.lesion_workers import LesionLoader, cached_lesion_display  # noqa: E402
from iaa_desktop.gui.widgets.lesion_view import LesionView  # noqa: E402

SIZES = {"small": (767, 1022), "large": (4000, 6000)}


class BaselineView(QWidget):
    """The old ``LesionView.show_overlay``: image plus one outline (with a halo) per annotator."""

    def __init__(self) -> None:
        super().__init__()
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.resize(1000, 700)
        self.view_box = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self.legend = pg.LegendItem(offset=(8, 8))
        self.legend.setParentItem(self.view_box)
        self.items: list[pg.PlotCurveItem] = []

    def show_overlay(self, overlay) -> None:
        self.legend.clear()
        for item in self.items:
            self.view_box.removeItem(item)
        self.items = []
        height, width = overlay.shape
        self.image_item.setImage(overlay.image, autoLevels=False, levels=(0, 255))
        self.image_item.setRect(QRectF(0, 0, width, height))
        for layer in overlay.layers:
            points, connect = join_contours(layer.contours)
            item = pg.PlotCurveItem(points[:, 0], points[:, 1], connect=connect, antialias=True,
                                    pen=pg.mkPen(layer.colour, width=2.0, cosmetic=True))
            halo = pg.PlotCurveItem(points[:, 0], points[:, 1], connect=connect, antialias=True,
                                    pen=pg.mkPen((0, 0, 0, 190), width=4.5, cosmetic=True))
            halo.setParentItem(item)
            halo.setFlag(QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
            self.view_box.addItem(item)
            self.items.append(item)
            self.legend.addItem(item, layer.label)
        self.view_box.setRange(QRectF(0, 0, width, height))


def skin_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.normal(0, 12, (shape[0] // 16 + 1, shape[1] // 16 + 1, 3))
    noise = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    base = np.array([120, 150, 205], np.float64)  # BGR skin tone
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_dataset(root: Path, n_small: int, n_large: int) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {"small": [], "large": []}
    for kind, count in (("small", n_small), ("large", n_large)):
        shape = SIZES[kind]
        for k in range(count):
            image_id = f"{kind}_{k:03d}"
            (root / "images").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "images" / f"{image_id}.jpg"), skin_image(shape, k),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            masks = [*lesion_pair(*shape, seed=3 * k), *lesion_pair(*shape, seed=3 * k + 1),
                     lesion_pair(*shape, seed=3 * k + 2)[1]]
            for a, mask in enumerate(masks):
                folder = root / "masks" / f"A{a:02d}"
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f"{image_id}.png"), mask)
            ids[kind].append(image_id)
    return ids


def warm_file_cache(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            path.read_bytes()


def repaint(app: QApplication, widget: QWidget) -> None:
    app.processEvents()
    widget.repaint()


@contextlib.contextmanager
def opencv_mask_decoding():
    """Masks decoded by OpenCV/Pillow alone, as before ``core.png_fast``."""
    fast = masks_module.decode_png
    masks_module.decode_png = lambda data: None
    try:
        yield
    finally:
        masks_module.decode_png = fast


def time_baseline(app, view, dataset, ids) -> list[tuple[float, float]]:
    with opencv_mask_decoding():
        return _time_baseline(app, view, dataset, ids)


def _time_baseline(app, view, dataset, ids) -> list[tuple[float, float]]:
    times = []
    for image_id in ids:
        start, cpu = time.perf_counter(), time.process_time()
        overlay = run_to_end(iter_lesion_overlay(dataset.lesion(image_id)))
        view.show_overlay(overlay)
        repaint(app, view)
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    return times


def time_loader(app, view, loader, ids, previews: list | None = None,
                exact: list | None = None) -> list[tuple[float, float]]:
    """Request each lesion and time it until first drawn; ``previews`` gets the time until its
    image showed, ``exact`` the time until its exact display was drawn (the same for one drawn
    exactly at once). Each switch waits for the exact display and an idle loader."""
    times = []
    loop = QEventLoop()
    loader.loaded.connect(loop.quit)
    shown: list[float] = []

    def on_preview(_preview) -> None:  # connected after LesionView.show_preview: the image is set
        view.repaint()
        shown.append(time.perf_counter())

    loader.preview.connect(on_preview)
    for image_id in ids:
        shown.clear()
        start, cpu = time.perf_counter(), time.process_time()
        QTimer.singleShot(0, lambda image_id=image_id: loader.request(image_id))
        loop.exec()
        repaint(app, view)
        times.append((time.perf_counter() - start, time.process_time() - cpu))
        if previews is not None and shown:
            previews.append((shown[0] - start, float("nan")))
        while view.display is None or not view.display.exact:
            loop.exec()
        repaint(app, view)
        if exact is not None:
            exact.append((time.perf_counter() - start, time.process_time() - cpu))
        while loader.is_busy():
            app.processEvents()
            time.sleep(0.001)
    loader.loaded.disconnect(loop.quit)
    loader.preview.disconnect(on_preview)
    return times


def time_prefetched(app, view, loader, ids) -> list[tuple[float, float]]:
    """Switches to the next lesion after the loader prefetched it while the user looked at this one."""
    times = []
    for current, following in zip(ids, ids[1:], strict=False):
        time_loader(app, view, loader, [current])
        loader.prefetch([following])
        while loader.is_busy():  # the user looks at ``current`` meanwhile
            app.processEvents()
            time.sleep(0.002)
        times += time_loader(app, view, loader, [following])
    return times


def ms(values: list[tuple[float, float]]) -> str:
    """Median wall time, and in brackets the median CPU time of the process (all threads)."""
    if not values:
        return "-"
    wall = statistics.median(v[0] for v in values)
    cpu = statistics.median(v[1] for v in values)
    return f"{1000 * wall:6.1f} ({1000 * cpu:5.0f}) ms" if cpu == cpu else f"{1000 * wall:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=16, help="lesions at 1022 x 767")
    parser.add_argument("--large", type=int, default=4, help="lesions at 6000 x 4000")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the lesions")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(imageAxisOrder="row-major")
    with tempfile.TemporaryDirectory(prefix="bench-lesion-switch-") as tmp:
        root = Path(tmp)
        print(f"writing {args.small} lesions at 1022 x 767 and {args.large} at 6000 x 4000 under {root} ...")
        ids = write_dataset(root, args.small, args.large)
        dataset = load_dataset(root)
        warm_file_cache(root)
        baseline = BaselineView()
        baseline.resize(1000, 700)
        baseline.show()
        view = LesionView()
        view.resize(1000, 700)
        view.show()
        cache = DisplayCache()
        loader = LesionLoader(cache)
        full_res = LesionLoader(cache, first_view=False)  # the bb2c6df path
        for each in (loader, full_res):
            each.set_dataset(dataset)
            each.loaded.connect(view.show_overlay)
            each.preview.connect(view.show_preview)
        # One untimed pass each: imports, numba/pyqtgraph first-use costs, thread pools' start.
        warm = [ids["small"][0], *ids["large"][:1]]
        time_baseline(app, baseline, dataset, warm)
        for each in (full_res, loader):
            time_loader(app, view, each, warm)
            cache.clear()
        print("median wall time per switch (CPU time of the process, all threads, in brackets); load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        header = ["size", "issue 5", "full-res (bb2c6df)", "first view", "ratio", "(image shown)",
                  "exact outlines", "revisit", "prefetched", "STAPLE stage"]
        print(" ".join(f"{h:>18}" for h in header) + "  switches")
        for kind, label in (("small", "1022x767"), ("large", "6000x4000")):
            lesions = ids[kind]
            if not lesions:
                continue
            base, full, first, exact, again, ahead, stapled, previews = [], [], [], [], [], [], [], []
            for _ in range(args.rounds):
                base += time_baseline(app, baseline, dataset, lesions)
                cache.clear()
                full += time_loader(app, view, full_res, lesions)
                cache.clear()
                first += time_loader(app, view, loader, lesions, previews, exact)
                again += time_loader(app, view, loader, lesions)
                cache.clear()
                ahead += time_prefetched(app, view, loader, lesions)
            for image_id in lesions:
                display = run_to_end(cached_lesion_display(dataset.lesion(image_id), cache))
                start = time.perf_counter()
                cpu = time.process_time()
                with_staple(display)
                stapled.append((time.perf_counter() - start, time.process_time() - cpu))
            ratio = statistics.median(t[0] for t in full) / statistics.median(t[0] for t in first)
            row = [label, ms(base), ms(full), ms(first), f"{ratio:.1f}x", ms(previews), ms(exact), ms(again),
                   ms(ahead), ms(stapled)]
            print(" ".join(f"{cell:>18}" for cell in row) + f"  {len(first)}")
        load = os.getloadavg()[0]
        print(f"cache: {len(cache)} lesions, {cache.nbytes / 1e6:.0f} MB; load average now {load:.1f}")


if __name__ == "__main__":
    main()
