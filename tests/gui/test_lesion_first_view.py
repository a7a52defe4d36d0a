"""A large lesion in the view: first at display resolution, then exact; quick switches show the last one.

The images are 2400 pixels wide, so the view shows them reduced (as 6000 x 4000 ones) and
the loader delivers a first view before the exact display.
"""

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

import cv2  # noqa: E402
from PySide6.QtCore import QRectF  # noqa: E402

from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.display.cache import DisplayCache, lesion_cache_key  # noqa: E402
from iaa_desktop.core.display.lesion import iter_lesion_display  # noqa: E402
from iaa_desktop.core.display.overlay import join_contours  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.gui.lesion_workers import LesionLoader  # noqa: E402
from tests.builders import disk, write_mask  # noqa: E402

TIMEOUT_MS = 20_000
SHAPE = (160, 2400)
#: Lesions with different outlines and annotator counts: what lingers from one shows in the next.
LESIONS = {"a": ((80, 600, 50), ("A0", "A1", "A2")), "b": ((70, 1200, 60), ("A0", "A1")),
           "c": ((90, 1800, 40), ("A1", "A2"))}


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    for image_id, ((row, col, radius), annotators) in LESIONS.items():
        cv2.imwrite(str(root / "images" / f"{image_id}.jpg"), np.full((*SHAPE, 3), 150, np.uint8))
        for k, annotator in enumerate(annotators):
            mask = disk(SHAPE, (row, col + 7 * k), radius + 3 * k)
            write_mask(root / "masks" / annotator / f"{image_id}.png", mask)
    return load_dataset(root)


def connected(view, dataset, **kwargs):
    loader = LesionLoader(DisplayCache(), **kwargs)
    loader.set_dataset(dataset)
    loader.loaded.connect(view.show_overlay)
    loader.preview.connect(view.show_preview)
    view.staple_requested.connect(loader.request_staple)
    delivered = []
    loader.loaded.connect(delivered.append)
    return loader, delivered


def settled(qtbot, loader, delivered) -> None:
    """Wait until the loader is idle with an exact display delivered last."""
    qtbot.waitUntil(lambda: not loader.is_busy() and bool(delivered) and delivered[-1].exact,
                    timeout=TIMEOUT_MS)


def assert_shows_exactly(view, dataset, image_id):
    """The view draws ``image_id``'s exact outlines, one item per annotator, and nothing else."""
    exact = run_to_end(iter_lesion_display(dataset.lesion(image_id)))
    assert view.image_id == image_id and view.display.exact
    assert len(view.contour_items) == len(exact.layers)
    labels = view.legend_labels()
    names = [label.split("  sens")[0] for label in labels[:len(exact.layers)]]  # without STAPLE's rates
    assert names == [layer.label for layer in exact.layers]
    assert labels[len(exact.layers):] == (["STAPLE (p > 0.5)"] if view.show_staple else [])
    for item, layer in zip(view.contour_items, exact.layers, strict=True):
        points, _connect = join_contours(layer.contours)
        np.testing.assert_array_equal(item.xData, points[:, 0])
        np.testing.assert_array_equal(item.yData, points[:, 1])


def test_first_view_then_the_exact_outlines_keeping_the_zoom(qtbot, view, dataset):
    loader, delivered = connected(view, dataset)
    zoomed = []

    def zoom_in_on_the_first_view(display):
        if not display.exact:
            view.view_box.setRange(QRectF(500, 20, 300, 100), padding=0)
            zoomed.append(view.view_box.viewRange())

    loader.loaded.connect(zoom_in_on_the_first_view)
    loader.request("a")
    settled(qtbot, loader, delivered)
    assert [(d.image_id, d.exact) for d in delivered] == [("a", False), ("a", True)]
    assert delivered[0].display_shape == (80, 1200)  # drawn reduced at first
    assert_shows_exactly(view, dataset, "a")
    assert len(zoomed) == 1 and view.view_box.viewRange() == zoomed[0]
    key = lesion_cache_key(dataset.lesion("a"))
    assert loader.cache.get(key) is delivered[1]  # only the exact display is kept


def test_quick_switches_show_the_last_lesion_asked_for(qtbot, view, dataset):
    loader, delivered = connected(view, dataset)
    for image_id in ("a", "b", "c"):
        loader.request(image_id)
    settled(qtbot, loader, delivered)
    first_c = [d.image_id for d in delivered].index("c")
    assert {d.image_id for d in delivered[first_c:]} == {"c"}
    assert_shows_exactly(view, dataset, "c")
    # Switching on as soon as the first view is drawn, while it is refined: its exact display never comes.
    delivered.clear()
    loader.loaded.connect(lambda display: display.exact or display.image_id != "a" or loader.request("b"))
    loader.request("a")
    settled(qtbot, loader, delivered)
    assert ("a", True) not in [(d.image_id, d.exact) for d in delivered]
    assert [(d.image_id, d.exact) for d in delivered][-2:] == [("b", False), ("b", True)]
    assert_shows_exactly(view, dataset, "b")


def test_staple_is_computed_on_the_exact_display(qtbot, view, dataset):
    loader, delivered = connected(view, dataset)
    view.set_staple_visible(True)
    loader.request("b")
    qtbot.waitUntil(lambda: not loader.is_busy() and bool(delivered) and delivered[-1].staple is not None,
                    timeout=TIMEOUT_MS)
    assert all(d.exact for d in delivered if d.staple is not None)
    assert not delivered[0].exact and view.display.exact and view.display.staple is not None
    assert_shows_exactly(view, dataset, "b")


def test_prefetched_and_full_resolution_loaders_deliver_the_exact_display_once(qtbot, view, dataset):
    loader, delivered = connected(view, dataset)
    loader.prefetch(["c"])
    qtbot.waitUntil(lambda: not loader.is_busy(), timeout=TIMEOUT_MS)
    loader.request("c")  # decoded exactly ahead: from the cache
    assert [(d.image_id, d.exact) for d in delivered] == [("c", True)]
    full_res, delivered = connected(view, dataset, first_view=False)
    full_res.request("a")
    qtbot.waitUntil(lambda: not full_res.is_busy() and bool(delivered), timeout=TIMEOUT_MS)
    assert [(d.image_id, d.exact) for d in delivered] == [("a", True)]
    assert_shows_exactly(view, dataset, "a")
