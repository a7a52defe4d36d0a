"""The pairwise heatmap at the dock's default width: every value inside its cell, column labels
that do not overlap, at 2 to 8 annotators (with and without the consensus rows)."""

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

from PySide6.QtGui import QFont, QFontMetrics  # noqa: E402

from iaa_desktop.core.agreement.lesion import lesion_agreement  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.display.cell_text import with_fewer_decimals  # noqa: E402
from iaa_desktop.core.display.pair_matrix import format_value  # noqa: E402
from iaa_desktop.gui.widgets.pair_heatmap import MIN_CELL_FONT_PT, PairHeatmap  # noqa: E402
from tests.builders import make_many_annotators  # noqa: E402

COUNTS = (2, 3, 5, 8)
#: The right dock's default width (main_window.restore_layout) and a short window's height.
DOCK_SIZE = (430, 560)


@pytest.fixture(scope="module")
def lesions(tmp_path_factory):
    dataset = load_dataset(make_many_annotators(tmp_path_factory.mktemp("many") / "ds", COUNTS, (120, 160)))
    return {n: dataset.lesion(f"ISIC_n{n}") for n in COUNTS}


def _fitted(qtbot, widget):
    qtbot.waitUntil(lambda: widget.plot.plot.getViewBox().width() > 0)
    qtbot.wait(50)  # the layout settles, and the plot fits itself to the new size
    plot = widget.plot
    view_box = plot.plot.getViewBox()
    rows, columns = plot.shape
    return plot, view_box.width() / columns, view_box.height() / rows


@pytest.mark.parametrize("consensus", [False, True])
@pytest.mark.parametrize("n", COUNTS)
def test_every_value_fits_its_cell_and_labels_do_not_overlap(qtbot, lesions, n, consensus):
    widget = PairHeatmap()
    qtbot.addWidget(widget)
    widget.resize(*DOCK_SIZE)
    widget.show()
    qtbot.waitExposed(widget)
    widget.consensus_check.setChecked(consensus)
    widget.set_agreement(lesion_agreement(lesions[n]), lesions[n])
    plot, cell_width, cell_height = _fitted(qtbot, widget)
    masks = widget.current_matrix().masks
    assert plot.shape == (len(masks), len(masks))
    for item in plot.text_items:
        bounds = item.boundingRect()  # in pixels: the texts ignore the view's scaling
        assert bounds.width() < cell_width and bounds.height() < cell_height, (item.text(), cell_width)
        value = widget.current_matrix().values[item.row, item.column]
        assert item.text() == with_fewer_decimals(format_value(value, "dice_score"), plot.decimals_dropped)
    assert plot.cell_font_pt >= MIN_CELL_FONT_PT
    assert plot.decimals_dropped <= 2  # a Dice keeps at least one decimal at 8 annotators
    labels = [m.short_label for m in masks]
    metrics = QFontMetrics(plot.column_axis.style["tickFont"] or QFont())
    if plot.column_axis.vertical:
        assert plot.column_axis.labels == labels and metrics.height() < cell_width
        assert plot.column_axis.height() >= metrics.horizontalAdvance(max(labels, key=len))
    else:
        assert max(metrics.horizontalAdvance(label) for label in labels) < cell_width


def test_a_wide_panel_keeps_three_decimals_and_labels_side_by_side(qtbot, lesions):
    widget = PairHeatmap()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_agreement(lesion_agreement(lesions[3]), lesions[3])
    plot, _w, _h = _fitted(qtbot, widget)
    assert plot.decimals_dropped == 0 and not plot.column_axis.vertical
    assert sorted(item.text() for item in plot.text_items) == sorted(
        format_value(v, "dice_score") for v in widget.current_matrix().values.ravel())
    # Narrowed to a dock, the same matrix fits itself again.
    widget.resize(*DOCK_SIZE)
    plot, cell_width, _h = _fitted(qtbot, widget)
    assert all(item.boundingRect().width() < cell_width for item in plot.text_items)
