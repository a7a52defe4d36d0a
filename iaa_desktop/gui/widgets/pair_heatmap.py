"""Heatmaps with values printed in the cells: one lesion's mask pairs, and a reusable plot.

``HeatmapPlot`` paints what ``core.pair_matrix.heatmap_colours`` computed
(cividis, reversed for distances so that good agreement always looks the
same, and a black or white text colour per cell); clicking a cell emits its
row and column. ``PairHeatmap`` adds a metric combo box, a "Consensus rows"
check box and an Export button, and emits the two masks of a clicked cell.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QTransform
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from iaa_desktop.core.agreement.lesion import LesionAgreement
from iaa_desktop.core.dataset.model import Lesion
from iaa_desktop.core.display.cell_text import decimals_of, with_fewer_decimals
from iaa_desktop.core.display.pair_matrix import (
    PAIR_METRICS,
    HeatmapColours,
    PairMatrix,
    format_value,
    heatmap_colours,
    pair_matrices,
)
from iaa_desktop.gui.plot_export import make_export_button

#: Plot text and lines: black on white, as a journal figure.
FOREGROUND = "#000000"
BACKGROUND = "#FFFFFF"
#: The selected cell's outline: white on a black halo, visible on every cividis colour.
HIGHLIGHT_PEN = pg.mkPen("#FFFFFF", width=2.5, cosmetic=True)
HIGHLIGHT_HALO = pg.mkPen("#000000", width=5.5, cosmetic=True)
AXIS_FONT_PT = 10
#: Thin white lines between cells.
GRID_PEN = pg.mkPen("#FFFFFF", width=1, cosmetic=True)
#: Cell-value font sizes tried at full precision, largest first; with a decimal (or more)
#: dropped, ``DROPPED_FONT_PT``; ``MIN_CELL_FONT_PT`` is the smallest ever used. Two decimals
#: at 7 pt beat one at 9 pt: a Dice of "0.8" says too little.
CELL_FONT_PT = (11.0, 10.0, 9.0, 8.0)
DROPPED_FONT_PT = (9.0, 8.0, 7.0)
MIN_CELL_FONT_PT = 7.0
#: Pixels kept free around a cell's text, horizontally and vertically.
CELL_TEXT_MARGIN = (6, 2)
#: Row labels take at most this share of the plot's width before the short labels are used.
ROW_LABEL_SHARE = 0.28


def _font(points: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


def style_plot(plot: pg.PlotItem) -> None:
    """Black axes and readable tick labels on a white background."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(FOREGROUND, width=1))
        axis.setTextPen(pg.mkPen(FOREGROUND))
        axis.setStyle(tickFont=_font(AXIS_FONT_PT))
        axis.label.setFont(_font(AXIS_FONT_PT + 0.5))
        axis.enableAutoSIPrefix(False)  # "IAA (x0.001)" with ticks 950... is no way to label a Dice


class _CellText(QGraphicsSimpleTextItem):
    """A cell's value, centred in the cell at a fixed screen size whatever the zoom."""

    def __init__(self, text: str, colour: str, font: QFont, row: int, column: int,
                 parent: QGraphicsRectItem) -> None:
        super().__init__(text, parent)
        self.row, self.column = row, column
        self.setBrush(pg.mkBrush(colour))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPos(column + 0.5, row + 0.5)
        self.set_text(text, font)

    def set_text(self, text: str, font: QFont) -> None:
        """Show ``text`` in ``font``, centred on the cell."""
        self.setText(text)
        self.setFont(font)
        bounds = self.boundingRect()
        self.setTransform(QTransform.fromTranslate(-bounds.width() / 2, -bounds.height() / 2))

    def toPlainText(self) -> str:  # noqa: N802 (the name pyqtgraph's TextItem uses)
        return self.text()


class _ColumnAxis(pg.AxisItem):
    """The bottom axis of a heatmap: column labels side by side, or turned upright (reading
    upwards) when they would overlap (``vertical``)."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.vertical = False
        self.labels: list[str] = []

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs) -> None:  # noqa: N802 (pyqtgraph override)
        if not self.vertical:
            super().drawPicture(p, axisSpec, tickSpecs, textSpecs)
            return
        super().drawPicture(p, axisSpec, tickSpecs, [])
        if self.style["tickFont"] is not None:
            p.setFont(self.style["tickFont"])
        p.setPen(self.textPen())
        metrics = p.fontMetrics()
        # Vertical mode gives pyqtgraph one-space labels (never dropped as out of bounds);
        # their boxes sit under each column centre, in column order.
        for (rect, _flags, _text), label in zip(textSpecs, self.labels, strict=False):
            width = metrics.horizontalAdvance(label) + 2
            p.save()
            p.translate(rect.center().x(), rect.top())
            p.rotate(-90)
            p.drawText(QRectF(-width, -metrics.height() / 2, width, metrics.height()),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), label)
            p.restore()


class HeatmapPlot(pg.GraphicsLayoutWidget):
    """A matrix of coloured cells with their values printed, a colour bar and a caption.

    Cell (row, column) spans [column, column + 1) x [row, row + 1) in plot
    coordinates, row 0 at the top.
    """

    #: Row and column of a clicked cell.
    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        self.column_axis = _ColumnAxis()
        self.plot: pg.PlotItem = self.addPlot(row=0, col=0, axisItems={"bottom": self.column_axis})
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.getViewBox().setDefaultPadding(0.0)
        # The range is set per matrix; auto-range would re-measure every item on each addItem.
        self.plot.disableAutoRange()
        style_plot(self.plot)
        # Cells are vector rectangles, not an image: exact in SVG/PDF (a PDF writer would
        # JPEG-compress a tiny bitmap and smear its colours).
        self.cell_items: list[QGraphicsRectItem] = []
        self._cells = QGraphicsRectItem()
        self._cells.setPen(pg.mkPen(None))
        self.plot.addItem(self._cells)
        self.colour_bar: pg.ColorBarItem | None = None
        self.caption = pg.LabelItem("", color=FOREGROUND, size="10pt", justify="left")
        self.addItem(self.caption, row=1, col=0, colspan=2)
        self.text_items: list[_CellText] = []
        self.highlight = [QGraphicsRectItem(), QGraphicsRectItem()]
        for item, pen, z in zip(self.highlight, (HIGHLIGHT_HALO, HIGHLIGHT_PEN), (10, 11), strict=True):
            item.setPen(pen)
            item.setZValue(z)
            item.setVisible(False)
            self.plot.addItem(item)
        self.shape = (0, 0)
        self.selected: tuple[int, int] | None = None
        # What set_matrix was given, kept to fit the texts and labels again on every resize.
        self._texts: list[list[str]] = []
        self._row_labels: tuple[list[str], list[str]] = ([], [])
        self._column_labels: list[str] = []
        self._y_label = ""
        self._fitted: tuple = ()
        #: The cell font size and decimals dropped in use (``fit_to_size`` chooses them).
        self.cell_font_pt = CELL_FONT_PT[0]
        self.decimals_dropped = 0
        self.plot.getViewBox().sigResized.connect(self._on_view_box_resized)
        self.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)
        # Built now (a ColorBarItem is a whole PlotItem, ~0.1 s), so drawing a lesion never waits for it.
        self._make_colour_bar(pg.ColorMap([0.0, 1.0], [(0, 0, 0, 255), (255, 255, 255, 255)]), (0.0, 1.0))
        self.colour_bar.setVisible(False)

    def set_matrix(self, texts: list[list[str]], colours: HeatmapColours, row_labels: list[str],
                   column_labels: list[str], *, value_label: str, title: str = "", caption: str = "",
                   x_label: str = "", y_label: str = "", short_row_labels: list[str] | None = None) -> None:
        """Draw a matrix: ``colours.rgba`` per cell, ``texts`` in them, labelled axes and a colour bar.

        Texts and labels are fitted to the cells' size now and on every resize (see
        ``fit_to_size``); ``short_row_labels`` replace ``row_labels`` when those would take
        more than ``ROW_LABEL_SHARE`` of the width.
        """
        self.clear_selection()
        rows, columns = colours.rgba.shape[:2]
        self.shape = (rows, columns)
        self._remove_cells()
        # Cells and texts are plain Qt items under one group added to the plot once: pyqtgraph's
        # addItem/TextItem cost milliseconds each, and a lesion with 5 masks has 50 of them.
        for r in range(rows):
            for c in range(columns):
                if colours.rgba[r, c, 3] == 0:
                    continue
                cell = QGraphicsRectItem(QRectF(c, r, 1, 1), self._cells)
                cell.setBrush(pg.mkBrush(*(int(v) for v in colours.rgba[r, c])))
                cell.setPen(GRID_PEN)
                self.cell_items.append(cell)
        font = _font(CELL_FONT_PT[0])
        for r in range(rows):
            for c in range(columns):
                if texts[r][c]:
                    text = _CellText(texts[r][c], colours.text[r][c], font, r, c, self._cells)
                    self.text_items.append(text)
        self._texts = [list(row) for row in texts]
        self._row_labels = (list(row_labels), list(short_row_labels or row_labels))
        self._column_labels = list(column_labels)
        self._y_label = y_label
        self._fitted = ()
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setStyle(tickLength=0)  # a tick mark would cut into the first cell
        self.plot.setLabel("left", y_label)
        self.plot.setLabel("bottom", x_label)
        self.plot.setTitle(html.escape(title), color=FOREGROUND, size="11pt")
        self.plot.setRange(xRange=(0, columns), yRange=(0, rows), padding=0)
        self._set_colour_bar(colours, value_label)
        self.caption.setText(html.escape(caption))
        self.fit_to_size()

    def fit_to_size(self) -> None:
        """Choose labels, cell font and decimals for the plot's current size.

        Row labels: the full ones unless they would take more than ``ROW_LABEL_SHARE`` of
        the width. Column labels: upright when side by side they would not fit their columns.
        Cell values: the largest of ``CELL_FONT_PT`` at which every value fits its cell, else
        one decimal fewer and again, down to ``MIN_CELL_FONT_PT`` and no decimals. Decided
        from the plot item's size, which these choices do not change (no feedback loop).
        """
        rows, columns = self.shape
        if not rows or not columns:
            return
        width, height = self.plot.width(), self.plot.height()
        if width <= 0 or height <= 0:
            return
        metrics = QFontMetrics(_font(AXIS_FONT_PT))
        full, short = self._row_labels
        widest_full = max((metrics.horizontalAdvance(label) for label in full), default=0)
        row_labels = full if widest_full <= ROW_LABEL_SHARE * width else short
        left_width = max((metrics.horizontalAdvance(label) for label in row_labels), default=0) + 14 + (
            metrics.height() + 6 if self._y_label else 0)
        title_height = 30 if self.plot.titleLabel.text else 8
        cell_width = max(width - left_width - 4, 1) / columns
        widest_column = max((metrics.horizontalAdvance(label) for label in self._column_labels), default=0)
        vertical = widest_column > cell_width - 6
        axis_height = (widest_column + 12) if vertical else metrics.height() + 10
        cell_height = max(height - title_height - axis_height, 1) / rows
        font_pt, drop = self._cell_font(cell_width, cell_height)
        decision = (tuple(row_labels), vertical, axis_height, left_width, font_pt, drop)
        if decision == self._fitted:
            return
        self._fitted = decision
        left = self.plot.getAxis("left")
        left.setTicks([[(r + 0.5, label) for r, label in enumerate(row_labels)]])
        # pyqtgraph widens an axis only after a first paint: size it for the longest label now.
        left.setWidth(left_width)
        self.column_axis.vertical = vertical
        self.column_axis.labels = list(self._column_labels)
        shown = [" "] * columns if vertical else self._column_labels
        self.column_axis.setTicks([[(c + 0.5, label) for c, label in enumerate(shown)]])
        self.column_axis.setHeight(axis_height)
        self.cell_font_pt, self.decimals_dropped = font_pt, drop
        font = _font(font_pt)
        for item in self.text_items:
            item.set_text(with_fewer_decimals(self._texts[item.row][item.column], drop), font)

    def _cell_font(self, cell_width: float, cell_height: float) -> tuple[float, int]:
        """(font size, decimals to drop) that make every cell text fit a cell of that size."""
        room_w, room_h = cell_width - CELL_TEXT_MARGIN[0], cell_height - CELL_TEXT_MARGIN[1]
        texts = [t for row in self._texts for t in row if t]
        most = max((decimals_of(t) for t in texts), default=0)
        for drop in range(most + 1):
            shortened = [with_fewer_decimals(t, drop) for t in texts]
            for points in CELL_FONT_PT if drop == 0 else DROPPED_FONT_PT:
                metrics = QFontMetrics(_font(points))
                widest = max((metrics.horizontalAdvance(t) for t in shortened), default=0)
                if widest <= room_w and metrics.height() <= room_h:
                    return points, drop
        return MIN_CELL_FONT_PT, most  # the best there is for very small cells

    def _on_view_box_resized(self) -> None:
        self.fit_to_size()

    def _set_colour_bar(self, colours: HeatmapColours, label: str) -> None:
        cmap = pg.ColorMap(np.linspace(0.0, 1.0, len(colours.bar_rgba)), colours.bar_rgba)
        if self.colour_bar is None:
            self._make_colour_bar(cmap, colours.limits)
        else:
            self.colour_bar.setColorMap(cmap)
            self.colour_bar.setLevels(colours.limits)
        self.colour_bar.axis.setLabel(label, color=FOREGROUND)
        self.colour_bar.setVisible(True)

    def _make_colour_bar(self, cmap: pg.ColorMap, limits: tuple[float, float]) -> None:
        self.colour_bar = pg.ColorBarItem(values=limits, colorMap=cmap, interactive=False,
                                          width=18, rounding=1e-6)
        self.colour_bar.axis.setWidth(68)
        self.colour_bar.axis.setPen(pg.mkPen(FOREGROUND))
        self.colour_bar.axis.setTextPen(pg.mkPen(FOREGROUND))
        self.colour_bar.axis.setStyle(tickFont=_font(AXIS_FONT_PT - 1))
        self.colour_bar.axis.label.setFont(_font(AXIS_FONT_PT))
        self.addItem(self.colour_bar, row=0, col=1)

    def clear_matrix(self, message: str = "") -> None:
        """Draw nothing but ``message`` as the caption."""
        self.clear_selection()
        self.shape = (0, 0)
        self._remove_cells()
        self._texts, self._row_labels, self._column_labels, self._fitted = [], ([], []), [], ()
        self.column_axis.vertical = False
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setTicks([[]])
            self.plot.setLabel(name, "")
        self.plot.setTitle("")
        if self.colour_bar is not None:
            self.colour_bar.setVisible(False)
        self.caption.setText(html.escape(message))

    def _remove_cells(self) -> None:
        scene = self._cells.scene()
        for item in [*self.text_items, *self.cell_items]:
            item.setParentItem(None)
            if scene is not None:
                scene.removeItem(item)
        self.cell_items, self.text_items = [], []

    def select_cell(self, row: int, column: int) -> None:
        """Outline cell (row, column)."""
        self.selected = (row, column)
        for item in self.highlight:
            item.setRect(QRectF(column, row, 1, 1))
            item.setVisible(True)

    def clear_selection(self) -> None:
        self.selected = None
        for item in self.highlight:
            item.setVisible(False)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The cell under plot coordinates (x, y), or None outside the matrix."""
        row, column = int(np.floor(y)), int(np.floor(x))
        if 0 <= row < self.shape[0] and 0 <= column < self.shape[1]:
            return row, column
        return None

    def cell_scene_pos(self, row: int, column: int):
        """The scene position of a cell's centre (what a mouse click there reports)."""
        return self.plot.getViewBox().mapViewToScene(pg.Point(column + 0.5, row + 0.5))

    def _on_scene_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        view_box = self.plot.getViewBox()
        if not view_box.sceneBoundingRect().contains(event.scenePos()):
            return
        point = view_box.mapSceneToView(event.scenePos())
        cell = self.cell_at(point.x(), point.y())
        if cell is not None:
            self.cell_clicked.emit(*cell)


class PairHeatmap(QWidget):
    """One lesion's N x N heatmap of a pairwise metric; a click emits the cell's two masks.

    Feed it ``set_matrices(core.pair_matrix.pair_matrices(agreement, lesion))``
    (``analysis_workers.pair_matrices_worker`` computes that off the GUI
    thread) or ``set_agreement(agreement, lesion)``.
    """

    #: A ``core.pair_matrix.MaskPair``: the two masks (``first.key`` / ``second.key``: index in
    #: ``lesion.human_segmentations`` or ``"STAPLE"`` / ``"MV"``), the metric and the value.
    pair_clicked = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metric_combo = QComboBox(self)
        for column, (name, label) in PAIR_METRICS.items():
            self.metric_combo.addItem(name, column)
            self.metric_combo.setItemData(self.metric_combo.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        self.metric_combo.setToolTip("Metric shown in the cells")
        self.consensus_check = QCheckBox("Consensus rows", self)
        self.consensus_check.setToolTip("Add STAPLE and majority-vote rows and columns")
        self.plot = HeatmapPlot(self)
        self.export_button = make_export_button(self, lambda: self.plot, self._export_name, self.table)
        self.metric_combo.currentIndexChanged.connect(self._on_metric_combo_changed)
        self.consensus_check.toggled.connect(self._on_consensus_check_toggled)
        self.plot.cell_clicked.connect(self._on_plot_cell_clicked)

        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 2)
        top.addWidget(QLabel("Metric:", self))
        top.addWidget(self.metric_combo)
        top.addWidget(self.consensus_check)
        top.addStretch(1)
        top.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        self._matrices: dict[tuple[str, bool], PairMatrix] = {}
        self.clear()

    # -- public API ---------------------------------------------------------

    @property
    def metric(self) -> str:
        return str(self.metric_combo.currentData())

    def set_metric(self, metric: str) -> None:
        """Show ``metric`` (a key of ``PAIR_METRICS``)."""
        index = self.metric_combo.findData(metric)
        if index < 0:
            raise ValueError(f"unknown metric {metric!r}; one of {', '.join(PAIR_METRICS)}")
        self.metric_combo.setCurrentIndex(index)

    def set_matrices(self, matrices: dict[tuple[str, bool], PairMatrix]) -> None:
        """Show a lesion's ``pair_matrices``; the metric and consensus choice stay as they are."""
        self._matrices = dict(matrices)
        self._redraw()

    def set_agreement(self, agreement: LesionAgreement, lesion: Lesion) -> None:
        """Show a lesion's agreement (its pair matrices are built here: a few dozen pairs)."""
        self.set_matrices(pair_matrices(agreement, lesion))

    def current_matrix(self) -> PairMatrix | None:
        return self._matrices.get((self.metric, self.consensus_check.isChecked()))

    def table(self) -> pd.DataFrame | None:
        """The shown matrix as a table (for CSV export), or None."""
        matrix = self.current_matrix()
        return None if matrix is None else matrix.to_frame()

    def click_cell(self, row: int, column: int) -> None:
        """What a click on cell (row, column) does: outline it and emit ``pair_clicked``."""
        matrix = self.current_matrix()
        if matrix is None or not (0 <= row < len(matrix.masks) and 0 <= column < len(matrix.masks)):
            return
        self.plot.select_cell(row, column)
        self.pair_clicked.emit(matrix.cell_masks(row, column))

    def clear(self, message: str = "No lesion selected") -> None:
        self._matrices = {}
        self.plot.clear_matrix(message)

    def show_loading(self, image_id: str) -> None:
        self.plot.clear_matrix(f"{image_id}: measuring every pair of masks…")

    # -- drawing ------------------------------------------------------------

    def _redraw(self) -> None:
        matrix = self.current_matrix()
        if matrix is None:
            self.plot.clear_matrix("No lesion selected" if not self._matrices else
                                   f"{self.metric_combo.currentText()}: not in this lesion's agreement "
                                   "table (computed from the masks only)")
            return
        if len(matrix.masks) < 2:
            self.plot.clear_matrix(f"{matrix.image_id}: fewer than two readable human masks, no pairs")
            return
        colours = heatmap_colours(matrix.values, matrix.higher_is_better, neutral_diagonal=True)
        texts = [[format_value(v, matrix.metric) for v in row] for row in matrix.values]
        better = "higher" if matrix.higher_is_better else "lower"
        self.plot.set_matrix(
            texts, colours, matrix.labels, [m.short_label for m in matrix.masks],
            short_row_labels=[m.short_label for m in matrix.masks], value_label=matrix.value_label,
            title=f"{matrix.image_id}: {matrix.metric_name}",
            caption=f"{len(matrix.masks)} masks · {better} is better · click a cell to compare two masks")

    def _export_name(self) -> str:
        matrix = self.current_matrix()
        return f"{matrix.image_id}_{matrix.metric}" if matrix is not None else "pair_heatmap"

    # -- slots --------------------------------------------------------------

    def _on_metric_combo_changed(self, _index: int) -> None:
        self._redraw()

    def _on_consensus_check_toggled(self, _checked: bool) -> None:
        self._redraw()

    def _on_plot_cell_clicked(self, row: int, column: int) -> None:
        self.click_cell(row, column)
