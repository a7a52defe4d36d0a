"""The lesion view offscreen: annotators, modes, consensus, disagreement, read-out, pair mode, export."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from iaa_desktop.core.dataset.demo import demo_dataset_dir  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.display.cache import DisplayCache  # noqa: E402
from iaa_desktop.core.display.lesion import iter_lesion_display, with_staple  # noqa: E402
from iaa_desktop.core.display.overlay import iter_lesion_overlay  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.gui.lesion_workers import LesionLoader, lesion_batch_worker  # noqa: E402
from iaa_desktop.gui.widgets.lesion_scene import NO_IMAGE_GRAY  # noqa: E402
from tests.core.test_lesion_display import KNOWN, make_known  # noqa: E402

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def demo():
    dataset = load_dataset(demo_dataset_dir())
    lesion = max(dataset.lesions, key=lambda item: len(item.human_segmentations))
    return dataset, lesion, run_to_end(iter_lesion_display(lesion))


@pytest.fixture
def known_dataset(tmp_path):
    return load_dataset(make_known(tmp_path / "ds"))


def visible_annotators(view):
    return [item.isVisible() for item in view.contour_items]


def test_shows_a_demo_lesion_with_a_legend_per_annotator(view, demo):
    _dataset, lesion, display = demo
    view.show_overlay(display, lesion)
    n = len(display.layers)
    assert view.image_id == lesion.image_id and len(view.contour_items) == n >= 3
    assert view.legend_labels() == [layer.label for layer in display.layers]
    assert view.checklist.labels() == view.legend_labels()
    assert [item.opts["pen"].color().name().upper() for item in view.contour_items] == \
        [layer.colour for layer in display.layers]
    assert view.image_item.image.shape == (*display.display_shape, 3)
    assert view.image_item.mapRectToParent(view.image_item.boundingRect()).width() == display.shape[1]
    assert "human masks" in view.caption.text()


def test_old_overlays_still_draw(view, known_dataset):
    overlay = run_to_end(iter_lesion_overlay(known_dataset.lesion("x")))
    view.show_overlay(overlay)
    assert view.legend_labels() == ["R1", "R2", "R3"] and view.display is None
    assert not view.controls.majority_box.isEnabled()


def test_annotators_toggle_by_key_and_checkbox(view, qtbot, demo):
    view.show_overlay(demo[2], demo[1])
    n = len(view.contour_items)
    qtbot.keyClick(view.graphics, Qt.Key.Key_1)
    assert visible_annotators(view) == [False] + [True] * (n - 1)
    assert not view.checklist.boxes[0].isChecked()
    view.checklist.boxes[2].click()
    assert visible_annotators(view)[2] is False and view.visible[2] is False
    qtbot.keyClick(view, Qt.Key.Key_2)  # on the view itself too
    assert visible_annotators(view)[:3] == [False, False, False]
    qtbot.keyClick(view.graphics, Qt.Key.Key_0)
    assert visible_annotators(view) == [True] * n
    assert all(box.isChecked() for box in view.checklist.boxes)
    assert "key 1" in view.checklist.boxes[0].toolTip()


def test_filled_mode_and_opacity(view, qtbot, demo):
    display = demo[2]
    view.show_overlay(display, demo[1])
    view.controls.mode_box.setCurrentIndex(1)
    assert view.mode == "filled"
    fills = view.fill_items
    assert all(item is not None and item.isVisible() for item in fills)
    assert np.array_equal(fills[0].image.astype(bool), display.masks[0])
    qtbot.keyClick(view.graphics, Qt.Key.Key_1)
    assert not fills[0].isVisible() and not view.contour_items[0].isVisible()
    view.controls.opacity_slider.setValue(40)
    assert view.opacity == pytest.approx(0.4) and fills[1].opacity() == pytest.approx(0.4)
    qtbot.keyClick(view.graphics, Qt.Key.Key_F)
    assert view.mode == "contours" and view.controls.mode_box.currentText() == "Contours"
    assert not any(item.isVisible() for item in fills)


def test_consensus_overlays_and_staple_rates_in_the_legend(view, qtbot, demo):
    _dataset, lesion, display = demo
    view.show_overlay(display, lesion)
    view.controls.majority_box.setChecked(True)
    assert view.legend_labels()[-1] == "MV (majority vote)"
    assert view.consensus_items["MV"].isVisible()
    with qtbot.waitSignal(view.staple_requested) as asked:
        view.controls.staple_box.setChecked(True)
    assert asked.args == [lesion.image_id]
    stapled = with_staple(display)
    view.show_overlay(stapled)
    labels = view.legend_labels()
    assert labels[-2:] == ["MV (majority vote)", "STAPLE (p > 0.5)"]
    sens, spec = stapled.staple.sensitivity[0], stapled.staple.specificity[0]
    assert labels[0] == f"{display.layers[0].label}  sens {sens:.2f} spec {spec:.2f}"
    assert view.checklist.labels()[0] == labels[0]
    qtbot.keyClick(view.graphics, Qt.Key.Key_S)
    assert not view.show_staple and "sens" not in view.legend_labels()[0]


def test_disagreement_heat_overlay_with_colour_bar(view, qtbot, demo):
    display = demo[2]
    view.show_overlay(display, demo[1])
    view.controls.disagreement_box.setCurrentIndex(1)
    assert view.heat_item.isVisible() and np.array_equal(view.heat_item.image, display.vote_fraction)
    assert view.colour_bar is not None and view.heat_name == "Vote fraction"
    # Who drew where stays readable: every outline above the heat map, fills under it.
    assert min(item.zValue() for item in view.contour_items) > view.heat_item.zValue()
    view.set_mode("filled")
    assert max(item.zValue() for item in view.fill_items if item is not None) < view.heat_item.zValue()
    view.set_mode("contours")
    assert view.colour_bar.values == (0.0, 1.0)
    qtbot.keyClick(view.graphics, Qt.Key.Key_D)
    assert view.disagreement == "entropy" and np.array_equal(view.heat_item.image, display.entropy)
    qtbot.keyClick(view.graphics, Qt.Key.Key_D)
    assert view.disagreement == "off" and not view.heat_item.isVisible() and view.colour_bar is None
    # The generic API (Grad-CAM): any size, stretched over the image.
    cam = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    view.set_heat_overlay(cam, "Grad-CAM", (0.0, 1.0))
    rect = view.heat_item.mapRectToParent(view.heat_item.boundingRect())
    assert (rect.width(), rect.height()) == (display.shape[1], display.shape[0])
    assert view.colour_bar is not None and view.heat_name == "Grad-CAM"
    view.set_heat_overlay(None, "")
    assert not view.heat_item.isVisible()


def test_pixel_readout_under_the_cursor(view, known_dataset):
    lesion = known_dataset.lesion("x")
    view.show_overlay(run_to_end(iter_lesion_display(lesion)), lesion)
    scene_pos = view.view_box.mapViewToScene(QPointF(3.5, 3.5))  # (x 3, y 3): R1 only
    view._on_scene_mouse_moved(scene_pos)
    assert view.readout.text().startswith("x 3, y 3 · 1/3 masks: R1 · MV no · vote 0.33")
    view._on_scene_mouse_moved(view.view_box.mapViewToScene(QPointF(9.5, 6.5)))
    assert "3/3 masks: R1, R2, R3 · MV yes · vote 1.00" in view.readout.text()


def test_readout_follows_a_lesion_change_under_a_still_cursor(view, known_dataset, tmp_path):
    lesion = known_dataset.lesion("x")
    view.show_overlay(run_to_end(iter_lesion_display(lesion)), lesion)
    view._on_scene_mouse_moved(view.view_box.mapViewToScene(QPointF(9.5, 6.5)))
    assert "3/3 masks" in view.readout.text()
    # Another lesion, R1 alone around (9, 6): the read-out describes it without a mouse move.
    other = load_dataset(make_known(tmp_path / "other", masks={"R1": KNOWN["R1"], "R2": ~KNOWN["R1"]}))
    view.show_overlay(run_to_end(iter_lesion_display(other.lesion("x"))), other.lesion("x"))
    assert "1/2 masks: R1" in view.readout.text()
    view.clear()
    assert view.readout.text().strip() == ""
    view.show_overlay(run_to_end(iter_lesion_display(lesion)), lesion)
    assert "3/3 masks" in view.readout.text()
    QApplication.sendEvent(view.graphics, QEvent(QEvent.Type.Leave))  # the cursor left the image
    assert view.readout.text().strip() == ""
    view.show_overlay(run_to_end(iter_lesion_display(other.lesion("x"))), other.lesion("x"))
    assert view.readout.text().strip() == ""


def test_a_lesion_with_an_unreadable_image_shows_its_masks_on_neutral_gray(view, tmp_path):
    root = make_known(tmp_path / "ds")
    (root / "images" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    lesion = load_dataset(root).lesion("x")
    display = run_to_end(iter_lesion_display(lesion))
    assert display.image is None and display.problems[0].kind == "unreadable_image"
    view.show_overlay(display, lesion)
    assert view.image_item.image is not None
    assert np.all(view.image_item.image == NO_IMAGE_GRAY)
    frame = view.image_item.mapRectToParent(view.image_item.boundingRect())
    assert (frame.width(), frame.height()) == (display.shape[1], display.shape[0])
    assert [bool(layer.contours) for layer in display.layers] == [True, True, True]
    assert all(item.isVisible() for item in view.contour_items)
    assert "1 problem" in view.caption.text()


def test_pair_mode_shows_two_masks_and_where_they_differ(view, qtbot, known_dataset):
    lesion = known_dataset.lesion("x")
    display = run_to_end(iter_lesion_display(lesion))
    view.show_overlay(display, lesion)
    view.show_pair(0, 1)
    assert visible_annotators(view) == [True, True, False]
    assert view.legend_labels() == ["R1", "only R1", "R2", "only R2"]
    only_a, only_b = (item.image.astype(bool) for item in view.pair_items)
    assert np.array_equal(only_a, KNOWN["R1"] & ~KNOWN["R2"])
    assert np.array_equal(only_b, KNOWN["R2"] & ~KNOWN["R1"])
    assert view.controls.show_all_button.isEnabled()
    with qtbot.waitSignal(view.pair_closed):
        qtbot.keyClick(view.graphics, Qt.Key.Key_Escape)
    assert view.pair is None and view.pair_items == [] and visible_annotators(view) == [True] * 3
    assert not view.controls.show_all_button.isEnabled()
    # A consensus in the pair; STAPLE is asked for, then drawn.
    with qtbot.waitSignal(view.staple_requested):
        view.show_pair("MV", "STAPLE")
    view.show_overlay(with_staple(display))
    assert view.legend_labels() == ["MV", "only MV", "STAPLE", "only STAPLE"]
    view.controls.show_all_button.click()
    assert view.pair is None and view.legend_labels() == ["R1", "R2", "R3"]


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_export_the_view(view, demo, tmp_path, suffix, magic):
    view.show_overlay(demo[2], demo[1])
    view.set_disagreement("vote fraction")
    path = view.export(tmp_path / f"view{suffix}")
    data = path.read_bytes()
    assert data.startswith(magic) and len(data) > 2000
    if suffix == ".svg":
        assert b"Vote fraction" in data  # the colour bar's label, as text


def test_loader_decodes_caches_and_adds_staple(qtbot, known_dataset):
    cache = DisplayCache()
    loader = LesionLoader(cache)
    loader.set_dataset(known_dataset)
    loaded, failed = [], []
    loader.loaded.connect(loaded.append)
    loader.failed.connect(lambda *args: failed.append(args))
    with qtbot.waitSignal(loader.loaded, timeout=TIMEOUT_MS):
        loader.request("x")
    qtbot.waitUntil(lambda: not loader.is_busy(), timeout=TIMEOUT_MS)
    assert failed == [] and loaded[0].image_id == "x" and len(cache) == 1
    with qtbot.waitSignal(loader.loaded, timeout=1000):
        loader.request("x")  # from the cache, no thread
    assert loaded[1] is loaded[0] and cache.hits == 1
    with qtbot.waitSignal(loader.loaded, timeout=TIMEOUT_MS):
        loader.request_staple("x")
    assert loaded[2].staple is not None
    qtbot.waitUntil(lambda: not loader.is_busy(), timeout=TIMEOUT_MS)
    assert cache.get(next(iter(cache._items))).staple is not None


def test_loader_feeds_the_view_end_to_end(qtbot, view, known_dataset):
    loader = LesionLoader()
    loader.set_dataset(known_dataset)
    loader.loaded.connect(view.show_overlay)
    view.staple_requested.connect(loader.request_staple)
    with qtbot.waitSignal(loader.loaded, timeout=TIMEOUT_MS):
        loader.request("x")
    with qtbot.waitSignal(loader.loaded, timeout=TIMEOUT_MS):
        view.set_staple_visible(True)
    qtbot.waitUntil(lambda: not loader.is_busy(), timeout=TIMEOUT_MS)
    assert view.display.staple is not None and "sens" in view.legend_labels()[0]


def test_batch_worker_writes_figures(qtbot, known_dataset, tmp_path):
    errors, results = [], []
    worker = lesion_batch_worker(known_dataset, ["x"], tmp_path / "figs", "svg", errors.append)
    worker.returned.connect(results.append)
    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS):
        worker.start()
    assert errors == [] and [p.name for p in results[0].written] == ["x_overlay.svg"]
    worker = lesion_batch_worker(known_dataset, ["x"], known_dataset.root / "figs", "png", errors.append)
    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS):
        worker.start()
    assert len(errors) == 1 and "inside the dataset" in str(errors[0])


def test_loader_prefetches_and_the_newest_request_wins(qtbot, tmp_path):
    from tests.builders import make_folder

    dataset = load_dataset(make_folder(tmp_path / "abc", shape=(60, 80)))
    cache = DisplayCache()
    loader = LesionLoader(cache)
    loader.set_dataset(dataset)
    loaded = []
    loader.loaded.connect(loaded.append)
    loader.prefetch(["b", "c", "unknown"])
    qtbot.waitUntil(lambda: not loader.is_busy() and len(cache) == 2, timeout=TIMEOUT_MS)
    assert loaded == []  # prefetching delivers nothing
    loader.request("c")
    assert [d.image_id for d in loaded] == ["c"] and cache.hits == 1  # at once, from the cache
    for image_id in ("a", "b", "a"):
        loader.request(image_id)
    qtbot.waitUntil(lambda: not loader.is_busy(), timeout=TIMEOUT_MS)
    assert loaded[-1].image_id == "a"
    assert "a" in {d.image_id for d in loaded[1:]} and len(cache) == 3


def test_large_images_are_shown_before_their_masks(qtbot, view, known_dataset, monkeypatch):
    from iaa_desktop.gui import lesion_workers

    monkeypatch.setattr(lesion_workers, "PREVIEW_MIN_PIXELS", 1)  # the known lesion counts as large
    loader = LesionLoader()
    loader.set_dataset(known_dataset)
    previews = []
    loader.preview.connect(previews.append)
    loader.preview.connect(view.show_preview)
    loader.loaded.connect(view.show_overlay)
    with qtbot.waitSignal(loader.loaded, timeout=TIMEOUT_MS):
        loader.request("x")
    assert [p.image_id for p in previews] == ["x"] and previews[0].shape == (20, 30)
    assert view.display is not None and view.legend_labels() == ["R1", "R2", "R3"]
    view.show_preview(previews[0])  # while masks decode: the image alone, no overlays
    assert view.display is None and view.legend_labels() == []
    assert not any(item.isVisible() for item in view.contour_items)
    assert "decoding the masks" in view.caption.text()


def test_a_pair_heatmap_click_opens_pair_mode(view, known_dataset):
    from iaa_desktop.core.display.pair_matrix import MaskPair, MaskRef

    lesion = known_dataset.lesion("x")
    view.show_overlay(run_to_end(iter_lesion_display(lesion)), lesion)
    refs = [MaskRef(i, f"{a}.png", a, "", "", a) for i, a in enumerate(["R1", "R2", "R3"])]
    view.show_mask_pair(MaskPair("other", refs[0], refs[2], "dice", 0.5))  # another lesion: ignored
    assert view.pair is None
    view.show_mask_pair(MaskPair("x", refs[0], refs[2], "dice", 0.5))
    assert view.pair == (0, 2) and view.legend_labels() == ["R1", "only R1", "R3", "only R3"]


def test_batch_export_from_the_gui_with_cancel_and_refusal(qtbot, tmp_path):
    from PySide6.QtWidgets import QWidget

    from iaa_desktop.gui.widgets.lesion_batch_export import LesionBatchExport
    from tests.builders import make_folder

    dataset = load_dataset(make_folder(tmp_path / "abc", shape=(60, 80)))
    parent = QWidget()
    qtbot.addWidget(parent)
    export = LesionBatchExport(parent, quiet=True)
    with qtbot.waitSignal(export.done, timeout=TIMEOUT_MS) as done:
        assert export.start(dataset, ["a", "b", "c"], tmp_path / "figs", "pdf")
        assert not export.start(dataset, ["a"], tmp_path / "other", "png")  # one at a time
    assert [p.name for p in done.args[0].written] == ["a_overlay.pdf", "b_overlay.pdf", "c_overlay.pdf"]
    with qtbot.waitSignal(export.done, timeout=TIMEOUT_MS) as done:
        export.start(dataset, ["a", "b", "c"], tmp_path / "cancelled", "png")
        export.cancel()
    assert done.args == [None] and len(list((tmp_path / "cancelled").glob("*.png"))) < 3
    with qtbot.waitSignal(export.done, timeout=TIMEOUT_MS) as done:
        export.start(dataset, ["a"], dataset.root / "figs", "png")
    assert done.args == [None] and "inside the dataset" in export.error


def _render_outline(item_class, opacity=1.0, svg_path=None):
    """A closed square outline of ``item_class`` drawn by a QGraphicsScene into a QImage (or an SVG)."""
    import pyqtgraph as pg
    from PySide6.QtCore import QRectF, QSize
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgGenerator
    from PySide6.QtWidgets import QGraphicsScene

    scene = QGraphicsScene(QRectF(0, 0, 100, 100))
    square = np.array([[20.5, 20.5], [80.5, 20.5], [80.5, 80.5], [20.5, 80.5], [20.5, 20.5]])
    item = item_class(square[:, 0], square[:, 1], antialias=True,
                      pen=pg.mkPen("#0072B2", width=2.0, cosmetic=True))
    item.setOpacity(opacity)
    scene.addItem(item)
    if svg_path is not None:
        generator = QSvgGenerator()
        generator.setFileName(str(svg_path))
        generator.setSize(QSize(100, 100))
        painter = QPainter(generator)
        scene.render(painter, QRectF(0, 0, 100, 100), QRectF(0, 0, 100, 100))
        painter.end()
        return None
    image = QImage(100, 100, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    scene.render(painter, QRectF(0, 0, 100, 100), QRectF(0, 0, 100, 100))
    painter.end()
    return np.array(image.constBits()).reshape(100, 100, 4)[..., 3].astype(float) / 255


def test_fast_outline_covers_the_band_of_the_real_stroke(qtbot, tmp_path):
    import pyqtgraph as pg

    from iaa_desktop.gui.widgets.lesion_layers import OutlineCurve

    real = _render_outline(pg.PlotCurveItem)
    fast = _render_outline(OutlineCurve)
    # The same 2-pixel band: pixel coverage differs by a few percent of the ink, at the corners.
    assert real.sum() > 400
    assert np.abs(fast - real).sum() < 0.05 * real.sum()
    assert fast.sum() == pytest.approx(real.sum(), rel=0.02)
    assert fast[20, 40:60].min() > 0.9 and fast[50, 40:60].max() == 0  # on the edge, not inside
    # Below full opacity the four strokes would blend over each other: the real stroke is drawn.
    np.testing.assert_array_equal(_render_outline(OutlineCurve, opacity=0.5),
                                  _render_outline(pg.PlotCurveItem, opacity=0.5))
    # Vector exports get one real 2-pixel stroke, not four thin ones.
    svg = tmp_path / "outline.svg"
    _render_outline(OutlineCurve, svg_path=svg)
    text = svg.read_text()
    assert text.count("<path") == 1 and 'stroke-width="2"' in text


def test_checklist_drops_the_previous_lesions_extra_annotators_at_once(qtbot):
    # Seen in the workflow screenshots: a lesion with 2 annotators shown after one with 4 kept
    # the 3rd and 4th boxes on screen while their deletion waited for an outer event loop.
    from iaa_desktop.gui.widgets.lesion_controls import AnnotatorChecklist

    checklist = AnnotatorChecklist()
    qtbot.addWidget(checklist)
    checklist.show()
    checklist.set_entries([(f"A0{i}", "#56B4E9", True) for i in range(4)])
    checklist.set_entries([("A07", "#F0E442", True), ("A08", "#009E73", True)])
    QApplication.processEvents()  # shows the new boxes; never runs deferred deletions (no loop)
    visible = [box.text() for box in checklist.findChildren(type(checklist.boxes[0])) if box.isVisible()]
    assert visible == ["A07", "A08"] and checklist.labels() == ["A07", "A08"]
