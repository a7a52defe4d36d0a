"""pyqtgraph items the lesion view is made of: outlines with a halo, mask fills, heat maps, legend samples.

Everything here draws arrays it is given (from ``core.lesion_display``); nothing is computed
but colour look-up tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.LegendItem import invisibleEye
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtGui import QPaintEngine, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem

from iaa_desktop.core.display.overlay import join_contours

#: Contour line width and the width of the dark halo under it, in screen pixels.
LINE_WIDTH = 2.0
HALO_WIDTH = 4.5
#: Opaque: Qt strokes a translucent wide pen through a slower path (5 ms for 5 outlines, not 2).
HALO_COLOUR = (0, 0, 0, 255)
#: Line width of the legend's samples: wider than the outlines, so the colour reads at a glance.
SWATCH_WIDTH = 4.0
#: Opacity of a mask fill at full overlay opacity: overlapping fills stay readable.
FILL_ALPHA = 70
#: Consensus outlines: white, dashed (MV) or dotted (STAPLE), on the same dark halo.
CONSENSUS_STYLES: dict[str, tuple[str, Qt.PenStyle]] = {
    "MV": ("#FFFFFF", Qt.PenStyle.DashLine),
    "STAPLE": ("#FFFFFF", Qt.PenStyle.DotLine),
}
#: Colour map of heat overlays (perceptually uniform, colour-blind safe).
HEAT_COLORMAP = "viridis"


class Swatch(pg.ItemSample):
    """A legend sample drawn like the item: a thick line on a dark halo, or a filled square.

    Clicking it calls the item's ``legend_toggle`` (set by the view) so that the view's
    own state, checkboxes included, stays the one truth about what is shown.
    """

    def paint(self, p, *args) -> None:
        fill = getattr(self.item, "legend_fill", None)
        if not self.item.isVisible():
            # pyqtgraph's crossed-out eye, as for any hidden legend item.
            p.drawPixmap(QPoint(1, 1), invisibleEye.qicon.pixmap(18, 18))
            return
        p.setRenderHint(p.RenderHint.Antialiasing)
        if fill is not None:
            p.setPen(pg.mkPen(HALO_COLOUR, width=1))
            p.setBrush(pg.mkBrush(fill))
            p.drawRect(QRectF(3, 4, 14, 14))
            return
        pen = self.item.opts["pen"]
        p.setPen(pg.mkPen(HALO_COLOUR, width=SWATCH_WIDTH + 2))
        p.drawLine(2, 11, 18, 11)
        p.setPen(pg.mkPen(pen.color(), width=SWATCH_WIDTH, style=pen.style()))
        p.drawLine(2, 11, 18, 11)

    def mouseClickEvent(self, event) -> None:  # noqa: N802 (Qt override)
        toggle: Callable[[], None] | None = getattr(self.item, "legend_toggle", None)
        if toggle is None or event.button() != Qt.MouseButton.LeftButton:
            super().mouseClickEvent(event)
            return
        event.accept()
        toggle()
        self.update()


class OutlineCurve(pg.PlotCurveItem):
    """A curve whose antialiased solid pen of 1-2 pixels is drawn on screen as four 1-pixel strokes.

    Qt's raster engine strokes wider pens through its general stroker and an antialiased
    polygon fill: the five 2-pixel outlines of a 1022 x 767 lesion took ~6 ms a repaint.
    Pens of at most one pixel take its cosmetic stroker, ~0.35 ms for the same outlines.
    Four 1-pixel strokes shifted half a pixel left, right, up and down cover the same
    2-pixel band with antialiased edges (side by side at 4x zoom they look alike) in a
    quarter of the time. Vector exports (SVG, PDF), an item opacity below 1 (the four
    strokes would blend over each other) and patterned pens get the real stroke.
    """

    def paint(self, p, opt, widget) -> None:
        pen = self.opts["pen"]
        width = pen.widthF()
        if (self.xData is None or len(self.xData) == 0 or not self.opts["antialias"]
                or self._exportOpts is not False or pen.style() != Qt.PenStyle.SolidLine
                or not pen.isCosmetic() or not 1.0 < width <= 2.0 or p.opacity() < 1.0
                or p.paintEngine().type() != QPaintEngine.Type.Raster):
            super().paint(p, opt, widget)
            return
        thin = QPen(pen)
        thin.setWidthF(1.0)
        p.setRenderHint(p.RenderHint.Antialiasing, True)
        p.setPen(thin)
        path = self.getPath()
        shift = (width - 1.0) / 2
        base = p.transform()
        for dx, dy in ((shift, 0.0), (-shift, 0.0), (0.0, shift), (0.0, -shift)):
            p.setTransform(base * QTransform.fromTranslate(dx, dy))  # in device pixels
            p.drawPath(path)
        p.setTransform(base)


def contour_item(contours: Sequence[np.ndarray], colour: str, label: str,
                 style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> pg.PlotCurveItem:
    """Outlines in one colour, with a dark halo behind them for contrast on any background."""
    item = OutlineCurve(antialias=True)
    # The halo is drawn without antialiasing: stroking wide antialiased paths is what made
    # switching lesions slow (20 -> 12 ms a repaint for 5 outlines), and its edge is soft anyway.
    # One path, not pyqtgraph's per-segment lines for opaque wide pens (2 ms a repaint, not 5.5).
    item.halo = pg.PlotCurveItem(antialias=False, pen=pg.mkPen(HALO_COLOUR, width=HALO_WIDTH, cosmetic=True))
    item.halo.setSegmentedLineMode("off")
    item.halo.setParentItem(item)
    item.halo.setFlag(QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
    # Hiding the outline hides its halo with it, as a child.
    set_contours(item, contours, colour, label, style)
    return item


def set_contours(item: pg.PlotCurveItem, contours: Sequence[np.ndarray], colour: str, label: str,
                 style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> None:
    """Give an item of ``contour_item`` new outlines (reusing items is cheaper than making new ones)."""
    points, connect = join_contours(contours)
    x, y = points[:, 0], points[:, 1]
    item.setData(x, y, connect=connect, pen=pg.mkPen(colour, width=LINE_WIDTH, cosmetic=True, style=style))
    item.halo.setData(x, y, connect=connect)
    item.setToolTip(label)


def fill_item(mask: np.ndarray, colour: str, rect: QRectF, alpha: int = FILL_ALPHA) -> pg.ImageItem:
    """A bool mask drawn in ``colour`` (transparent outside), stretched over ``rect``."""
    item = pg.ImageItem(axisOrder="row-major")
    set_fill(item, mask, colour, rect, alpha)
    return item


def set_fill(item: pg.ImageItem, mask: np.ndarray, colour: str, rect: QRectF,
             alpha: int = FILL_ALPHA) -> None:
    """Give an item of ``fill_item`` a new mask and colour."""
    rgba = pg.mkColor(colour)
    lut = np.array([[0, 0, 0, 0], [rgba.red(), rgba.green(), rgba.blue(), alpha]], np.uint8)
    item.setLookupTable(lut, update=False)
    item.setImage(mask.view(np.uint8), autoLevels=False, levels=(0, 1))
    item.setRect(rect)
    item.legend_fill = (rgba.red(), rgba.green(), rgba.blue(), 200)


def heat_lut() -> np.ndarray:
    """RGBA look-up table of heat overlays; the lowest entry is transparent, so the skin shows."""
    lut = pg.colormap.get(HEAT_COLORMAP).getLookupTable(0.0, 1.0, 256, alpha=True)
    lut[0, 3] = 0
    return lut


def heat_colour_bar(name: str, levels: tuple[float, float]) -> pg.ColorBarItem:
    """A read-only colour bar of the heat colour map from ``levels[0]`` to ``levels[1]``."""
    bar = pg.ColorBarItem(values=levels, colorMap=pg.colormap.get(HEAT_COLORMAP), label=name,
                          interactive=False, width=14, colorMapMenu=False)
    # Room above and below, so that the end labels (0 and 1) are not cut off.
    bar.layout.setContentsMargins(2, 12, 6, 12)
    for axis_name in ("right", "left"):
        axis = bar.getAxis(axis_name) if hasattr(bar, "getAxis") else None
        if axis is not None:
            axis.setTextPen("#F0F0F0")
            axis.setPen("#F0F0F0")
    return bar
