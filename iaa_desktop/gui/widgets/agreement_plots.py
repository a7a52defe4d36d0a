"""Dataset-level agreement plots whose bars, cells and points select lesions.

Three tabs, drawn from a ``core.agreement_views.DatasetViews``:

- **By malignancy**: a histogram of IAA per group (benign, malignant) with
  the Mann-Whitney / Cohen's d result as a caption;
- **By factor**: the mean agreement between annotators, tools or skill levels;
- **Scatter**: IAA against any numeric column of the image table.

Clicking a bar, a cell or a point outlines it and emits ``lesions_selected``
with the image ids it stands for, the way FiftyOne's histograms filter its
grid; "Clear selection" emits an empty list.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from iaa_desktop.core.figures.style import BENIGN, MALIGNANT
from iaa_desktop.core.statistics.factor_views import FACTOR_METRICS, FACTOR_NAMES, FactorView
from iaa_desktop.core.statistics.views import (
    GROUPS,
    DatasetViews,
    MalignancyView,
    ScatterView,
    column_label,
    iaa_menu_name,
)
from iaa_desktop.gui.plot_export import make_export_button
from iaa_desktop.gui.widgets.pair_heatmap import BACKGROUND, FOREGROUND, HeatmapPlot, style_plot

GROUP_COLOURS = {"benign": BENIGN, "malignant": MALIGNANT, None: "#999999"}
GROUP_SYMBOLS = {"benign": "o", "malignant": "s", None: "t"}
GROUP_NAMES = {"benign": "Benign", "malignant": "Malignant", None: "Other / unknown"}
SELECTION_PEN = pg.mkPen(FOREGROUND, width=2.5)


def _new_plot(widget: pg.GraphicsLayoutWidget) -> tuple[pg.PlotItem, pg.LegendItem, pg.LabelItem]:
    """A plot, a one-row legend under it (never over the data), and a caption line."""
    widget.setBackground(BACKGROUND)
    plot = widget.addPlot(row=0, col=0)
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    style_plot(plot)
    # One entry per line and the caption's parts on lines of their own: the plots live in a
    # narrow dock, and pyqtgraph never wraps text (a wide legend would push the plot out of view).
    legend = pg.LegendItem(labelTextColor=FOREGROUND, labelTextSize="10pt", colCount=1)
    widget.addItem(legend, row=1, col=0)
    caption = pg.LabelItem("", color=FOREGROUND, size="10pt", justify="left")
    widget.addItem(caption, row=2, col=0)
    return plot, legend, caption


def _caption_html(text: str) -> str:
    """A caption's " · "-separated parts, one per line."""
    return "<br>".join(html.escape(part) for part in text.split(" · "))


def _lower_first(text: str) -> str:
    """``"Mean HD95"`` -> ``"mean HD95"``, but ``"HD95 SD"`` stays."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


class HistogramPlot(pg.GraphicsLayoutWidget):
    """IAA histogram, benign and malignant bars side by side in each bin."""

    #: Group and bin index of a clicked bar.
    bar_clicked = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot, self.legend, self.caption = _new_plot(self)
        self.view: MalignancyView | None = None
        self.bars: dict[str, pg.BarGraphItem] = {}
        self.highlight = pg.BarGraphItem(x0=[], height=[], width=0, brush=None, pen=SELECTION_PEN)
        self.highlight.setZValue(10)
        self.plot.addItem(self.highlight)
        self.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)

    def _bar_geometry(self, group: str) -> tuple[np.ndarray, float]:
        edges = self.view.histogram.edges
        step = float(edges[1] - edges[0])
        offset = 0.05 if group == GROUPS[0] else 0.5
        return edges[:-1] + offset * step, 0.45 * step

    def set_view(self, view: MalignancyView) -> None:
        self.view = view
        for item in self.bars.values():
            self.plot.removeItem(item)
        self.legend.clear()
        self.bars = {}
        for group in GROUPS:
            x0, width = self._bar_geometry(group)
            counts = view.histogram.counts[group]
            shown = counts > 0  # an empty bin gets no bar, not a flat line on the axis
            bars = pg.BarGraphItem(x0=x0[shown], height=counts[shown], width=width,
                                   brush=pg.mkBrush(GROUP_COLOURS[group]),
                                   pen=pg.mkPen(FOREGROUND, width=0.5))
            self.plot.addItem(bars)
            self.bars[group] = bars
            values = view.values[group]
            mean = f", mean {np.mean(values):.3f}" if len(values) else ""
            self.legend.addItem(bars, f"{GROUP_NAMES[group]} (n = {len(values):,}{mean})")
        self.plot.setLabel("bottom", view.label)
        self.plot.setLabel("left", "Images (count)")
        self.plot.setTitle("IAA by malignancy", color=FOREGROUND, size="11pt")
        top = max((int(c.max()) for c in view.histogram.counts.values() if len(c)), default=1)
        edges = view.histogram.edges
        self.plot.setXRange(edges[0], edges[-1], padding=0.02)
        self.plot.setYRange(0, max(top, 1) * 1.15, padding=0)  # bars stand on the axis
        excluded = sum(view.excluded.values())
        note = f" · {excluded:,} other/unknown excluded" if excluded else ""
        self.caption.setText(_caption_html(view.caption + note))
        self.clear_selection()

    def clear_view(self, message: str) -> None:
        self.view = None
        for item in self.bars.values():
            self.plot.removeItem(item)
        self.bars = {}
        self.legend.clear()
        self.clear_selection()
        self.caption.setText(html.escape(message))

    def select_bar(self, group: str, bin_index: int) -> None:
        x0, width = self._bar_geometry(group)
        height = self.view.histogram.counts[group][bin_index]
        self.highlight.setOpts(x0=[x0[bin_index]], height=[height], width=width)
        self.highlight.setVisible(True)

    def clear_selection(self) -> None:
        self.highlight.setVisible(False)

    def bar_scene_pos(self, group: str, bin_index: int):
        """Scene position of the middle of a bar (what a click there reports)."""
        x0, width = self._bar_geometry(group)
        height = self.view.histogram.counts[group][bin_index]
        return self.plot.getViewBox().mapViewToScene(pg.Point(x0[bin_index] + width / 2, height / 2))

    def bar_at(self, x: float, y: float) -> tuple[str, int] | None:
        """The non-empty bar under plot coordinates (x, y), or None."""
        if self.view is None:
            return None
        for group in GROUPS:
            x0, width = self._bar_geometry(group)
            hits = np.flatnonzero((x >= x0) & (x < x0 + width))
            if len(hits) and 0 <= y <= self.view.histogram.counts[group][hits[0]] > 0:
                return group, int(hits[0])
        return None

    def _on_scene_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.plot.getViewBox().mapSceneToView(event.scenePos())
        bar = self.bar_at(point.x(), point.y())
        if bar is not None:
            self.bar_clicked.emit(*bar)


class ScatterPlot(pg.GraphicsLayoutWidget):
    """IAA against a numeric column, a point per image, coloured and shaped by malignancy."""

    #: Index of a clicked point in the view's arrays.
    point_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot, self.legend, self.caption = _new_plot(self)
        self.view: ScatterView | None = None
        self.points = pg.ScatterPlotItem(hoverable=True, tip=self._tip)
        self.points.sigClicked.connect(self._on_points_clicked)
        self.plot.addItem(self.points)
        self.highlight = pg.ScatterPlotItem(symbol="o", size=17, brush=None, pen=SELECTION_PEN)
        self.highlight.setZValue(10)
        self.plot.addItem(self.highlight)

    def _tip(self, x: float, y: float, data: object) -> str:
        if self.view is None or not isinstance(data, int | np.integer):
            return ""
        return f"{self.view.image_ids[int(data)]}\n{self.view.x_label}: {x:.4g}\nIAA: {y:.4g}"

    def set_view(self, view: ScatterView) -> None:
        self.view = view
        self.legend.clear()
        # Many points: smaller and translucent, so that dense regions read as dense.
        size, alpha = (9, 255) if len(view.x) <= 300 else (7, 170)
        brushes = {g: pg.mkBrush(QColor(GROUP_COLOURS[g]).red(), QColor(GROUP_COLOURS[g]).green(),
                                 QColor(GROUP_COLOURS[g]).blue(), alpha) for g in GROUP_COLOURS}
        edge = pg.mkPen(255, 255, 255, alpha, width=0.8)
        spots = [{"pos": (x, y), "data": i, "symbol": GROUP_SYMBOLS[g], "size": size, "brush": brushes[g],
                  "pen": edge} for i, (x, y, g) in enumerate(zip(view.x, view.y, view.groups, strict=True))]
        self.points.setData(spots)
        for group in (*GROUPS, None):
            if group in view.groups:
                sample = pg.ScatterPlotItem(symbol=GROUP_SYMBOLS[group], size=9,
                                            brush=pg.mkBrush(GROUP_COLOURS[group]), pen=pg.mkPen("#FFFFFF"))
                self.legend.addItem(sample, GROUP_NAMES[group])
        self.plot.setLabel("bottom", view.x_label)
        self.plot.setLabel("left", view.y_label)
        self.plot.setTitle(f"IAA against {_lower_first(column_label(view.column).split(' (')[0])}",
                           color=FOREGROUND, size="11pt")
        self.plot.autoRange()
        self.caption.setText(_caption_html(view.caption))
        self.clear_selection()

    def clear_view(self, message: str) -> None:
        self.view = None
        self.points.clear()
        self.legend.clear()
        self.clear_selection()
        self.caption.setText(html.escape(message))

    def select_point(self, index: int) -> None:
        self.highlight.setData([self.view.x[index]], [self.view.y[index]])

    def clear_selection(self) -> None:
        self.highlight.setData([], [])

    def point_scene_pos(self, index: int):
        return self.plot.getViewBox().mapViewToScene(pg.Point(self.view.x[index], self.view.y[index]))

    def _on_points_clicked(self, _item, points, _event) -> None:
        if len(points):
            self.point_clicked.emit(int(points[0].data()))


class AgreementPlots(QWidget):
    """The dataset's agreement plots in tabs; a click selects the lesions behind a mark.

    Feed it ``set_views(core.agreement_views.dataset_views(agreement, lesion_table))``
    (``analysis_workers.dataset_views_worker`` computes it off the GUI thread).
    """

    #: Image ids of the clicked bar, cell or point ([] when the selection is cleared).
    lesions_selected = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views: DatasetViews | None = None
        self.selection: list[str] = []
        self.tabs = QTabWidget(self)
        self.histogram = HistogramPlot(self)
        self.iaa_combo = QComboBox(self)  # which metric is the image's IAA (filled by set_views)
        self.iaa_combo.setToolTip("Metric used as each image's IAA in the malignancy and scatter plots")
        self.iaa_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.factor_combo = QComboBox(self)
        for factor, name in FACTOR_NAMES.items():
            self.factor_combo.addItem(name, factor)
        self.factor_metric_combo = QComboBox(self)
        for metric, (name, label, _) in FACTOR_METRICS.items():
            self.factor_metric_combo.addItem(name, metric)
            self.factor_metric_combo.setItemData(self.factor_metric_combo.count() - 1, label,
                                                 Qt.ItemDataRole.ToolTipRole)
        self.factor_plot = HeatmapPlot(self)
        self.column_combo = QComboBox(self)
        self.column_combo.setMinimumContentsLength(24)
        self.scatter = ScatterPlot(self)
        self.tabs.addTab(self._with_bar(self.histogram, ("IAA:", self.iaa_combo)), "By malignancy")
        self.tabs.addTab(self._with_bar(self.factor_plot, ("Factor:", self.factor_combo),
                                        ("Metric:", self.factor_metric_combo)), "By factor")
        self.tabs.addTab(self._with_bar(self.scatter, ("x:", self.column_combo)), "Scatter")

        self.selection_label = QLabel("", self)
        self.selection_label.setWordWrap(True)  # never wider than the dock
        self.clear_button = QPushButton("Clear selection", self)
        self.clear_button.setEnabled(False)
        self.export_button = make_export_button(self, self.current_plot, self._export_name, self.table)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(4, 2, 4, 2)
        bottom.addWidget(self.selection_label, 1)
        bottom.addWidget(self.clear_button)
        bottom.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(bottom)

        self.histogram.bar_clicked.connect(self._on_histogram_bar_clicked)
        self.factor_plot.cell_clicked.connect(self._on_factor_plot_cell_clicked)
        self.scatter.point_clicked.connect(self._on_scatter_point_clicked)
        self.factor_combo.currentIndexChanged.connect(self._on_factor_combo_changed)
        self.factor_metric_combo.currentIndexChanged.connect(self._on_factor_combo_changed)
        self.column_combo.currentIndexChanged.connect(self._on_column_combo_changed)
        self.iaa_combo.currentIndexChanged.connect(self._on_iaa_combo_changed)
        self.clear_button.clicked.connect(self._on_clear_button_clicked)
        self.clear()

    def _with_bar(self, plot: QWidget, *controls: tuple[str, QComboBox]) -> QWidget:
        page = QWidget(self)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        for text, combo in controls:
            bar.addWidget(QLabel(text, page))
            bar.addWidget(combo)
        bar.addStretch(1)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(plot, 1)
        return page

    # -- public API ---------------------------------------------------------

    def set_views(self, views: DatasetViews) -> None:
        """Draw a dataset's plots; the factor, metric and column choices are kept when possible."""
        self.views = views
        wanted_iaa = self.iaa_combo.currentData() or "dice_score"
        self.iaa_combo.blockSignals(True)
        self.iaa_combo.clear()
        for metric in views.iaa_metrics:
            self.iaa_combo.addItem(iaa_menu_name(metric), metric)
            self.iaa_combo.setItemData(self.iaa_combo.count() - 1, views.malignancy_for(metric).label,
                                       Qt.ItemDataRole.ToolTipRole)
        self.iaa_combo.setCurrentIndex(max(self.iaa_combo.findData(wanted_iaa), 0))
        self.iaa_combo.blockSignals(False)
        self.histogram.set_view(views.malignancy_for(self.iaa_metric))
        wanted = self.column_combo.currentData() or "annotators"
        self.column_combo.blockSignals(True)
        self.column_combo.clear()
        for column in views.numeric_columns:
            self.column_combo.addItem(column_label(column), column)
        index = self.column_combo.findData(wanted)
        self.column_combo.setCurrentIndex(max(index, 0))
        self.column_combo.blockSignals(False)
        self._draw_factor()
        self._draw_scatter()
        self._set_selection([], emit=False)

    def clear(self, message: str = "No agreement computed yet") -> None:
        self.views = None
        self.iaa_combo.clear()
        self.histogram.clear_view(message)
        self.factor_plot.clear_matrix(message)
        self.column_combo.clear()
        self.scatter.clear_view(message)
        self._set_selection([], emit=False)
        self.selection_label.setText(message)

    @property
    def iaa_metric(self) -> str:
        """The metric shown as IAA (``dice_score`` until another is chosen)."""
        return self.iaa_combo.currentData() or "dice_score"

    def set_iaa_metric(self, metric: str) -> None:
        """Show ``metric`` as the images' IAA (one of ``views.iaa_metrics``)."""
        index = self.iaa_combo.findData(metric)
        if index < 0:
            raise ValueError(f"no IAA metric {metric!r} in these views")
        self.iaa_combo.setCurrentIndex(index)

    def current_plot(self) -> QWidget:
        """The plot of the current tab (what Export writes)."""
        return (self.histogram, self.factor_plot, self.scatter)[self.tabs.currentIndex()]

    def current_factor_view(self) -> FactorView | None:
        if self.views is None:
            return None
        key = (self.factor_combo.currentData(), self.factor_metric_combo.currentData())
        return self.views.factors.get(key)

    def current_scatter_view(self) -> ScatterView | None:
        if self.views is None:
            return None
        return self.views.scatters_for(self.iaa_metric).get(self.column_combo.currentData())

    def set_factor(self, factor: str, metric: str = "dice_score_mean") -> None:
        self.factor_combo.setCurrentIndex(self.factor_combo.findData(factor))
        self.factor_metric_combo.setCurrentIndex(self.factor_metric_combo.findData(metric))

    def set_scatter_column(self, column: str) -> None:
        index = self.column_combo.findData(column)
        if index < 0:
            raise ValueError(f"no numeric column {column!r}")
        self.column_combo.setCurrentIndex(index)

    def click_bar(self, group: str, bin_index: int) -> None:
        """What a click on a histogram bar does: outline it, select its lesions."""
        if self.views is None:
            return
        self.histogram.select_bar(group, bin_index)
        self._set_selection(self.views.malignancy_for(self.iaa_metric).histogram.bar_ids(group, bin_index))

    def click_cell(self, row: int, column: int) -> None:
        """What a click on a factor-matrix cell does: outline it, select the lesions of its pairs."""
        view = self.current_factor_view()
        if view is None or not np.isfinite(view.values[row, column]):
            return
        self.factor_plot.select_cell(row, column)
        self._set_selection(view.cell_ids(row, column))

    def click_point(self, index: int) -> None:
        """What a click on a scatter point does: outline it, select its lesion."""
        view = self.current_scatter_view()
        if view is None:
            return
        self.scatter.select_point(index)
        self._set_selection([view.image_ids[index]])

    def clear_selection(self) -> None:
        """Remove the outlines and emit an empty selection."""
        for plot in (self.histogram, self.factor_plot, self.scatter):
            plot.clear_selection()
        self._set_selection([])

    def table(self) -> pd.DataFrame | None:
        """The current tab's data as a table (for CSV export)."""
        if self.views is None:
            return None
        tab = self.tabs.currentIndex()
        if tab == 0:
            if self.iaa_metric == "dice_score":
                return self.views.images[["image_id", "benign_malignant", "group", "iaa"]]
            view = self.views.malignancy_for(self.iaa_metric)
            return pd.DataFrame([(i, g, v) for g in GROUPS
                                 for i, v in zip(view.image_ids[g], view.values[g], strict=True)],
                                columns=["image_id", "group", self.iaa_metric])
        if tab == 1:
            view = self.current_factor_view()
            return None if view is None else view.to_frame()
        view = self.current_scatter_view()
        if view is None:
            return None
        y_name = "iaa" if view.metric == "dice_score" else view.metric
        return pd.DataFrame({"image_id": list(view.image_ids), view.column: view.x, y_name: view.y})

    # -- drawing ------------------------------------------------------------

    def _set_selection(self, image_ids: list[str], emit: bool = True) -> None:
        self.selection = list(image_ids)
        n = len(self.selection)
        self.selection_label.setText(f"{n:,} lesion{'s' if n != 1 else ''} selected" if n else
                                     "Click a bar, cell or point to select its lesions")
        self.clear_button.setEnabled(bool(n))
        if emit:
            self.lesions_selected.emit(list(self.selection))

    def _draw_factor(self) -> None:
        view = self.current_factor_view()
        if view is None or not view.levels:
            self.factor_plot.clear_matrix("No pairs of masks to compare")
            return
        texts = []
        for r in range(len(view.levels)):
            row = []
            for c in range(len(view.levels)):
                value = view.values[r, c]
                row.append(f"{value:.2f}\nn={view.n_pairs[r, c]}" if np.isfinite(value) else "")
            texts.append(row)
        name = FACTOR_NAMES.get(view.factor, view.factor)
        self.factor_plot.set_matrix(texts, view.colours, list(view.levels), list(view.levels),
                                    value_label=view.value_label, title=view.title,
                                    x_label=name, y_label=name,
                                    caption="Pairs of masks, consensus (ST, MV) included · click a cell to "
                                            "select the lesions of its pairs")

    def _draw_scatter(self) -> None:
        view = self.current_scatter_view()
        if view is not None:
            self.scatter.set_view(view)
        else:
            self.scatter.clear_view("No image has an IAA yet")

    def _export_name(self) -> str:
        tab = self.tabs.currentIndex()
        if tab == 1:
            return f"factor_{self.factor_combo.currentData()}_{self.factor_metric_combo.currentData()}"
        if tab == 2:
            return f"iaa_vs_{self.column_combo.currentData()}"
        return "iaa_by_malignancy"

    # -- slots --------------------------------------------------------------

    def _on_histogram_bar_clicked(self, group: str, bin_index: int) -> None:
        self.click_bar(group, bin_index)

    def _on_factor_plot_cell_clicked(self, row: int, column: int) -> None:
        self.click_cell(row, column)

    def _on_scatter_point_clicked(self, index: int) -> None:
        self.click_point(index)

    def _on_factor_combo_changed(self, _index: int) -> None:
        self._draw_factor()

    def _on_column_combo_changed(self, _index: int) -> None:
        self._draw_scatter()

    def _on_iaa_combo_changed(self, _index: int) -> None:
        if self.views is None or self.iaa_combo.currentData() is None:
            return
        self.histogram.set_view(self.views.malignancy_for(self.iaa_metric))
        self._draw_scatter()
        self._set_selection([], emit=False)

    def _on_clear_button_clicked(self) -> None:
        self.clear_selection()
