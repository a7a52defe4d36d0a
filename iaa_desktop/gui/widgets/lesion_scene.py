"""The pyqtgraph side of the lesion view: the image and every overlay item, made once and reused.

``LesionView`` decides what is shown; ``LesionScene`` owns the items and draws the arrays of
a ``core.lesion_display.LesionDisplay`` (or outlines of an ``overlay.LesionOverlay``) into
them. Items are reused from lesion to lesion: creating pyqtgraph items and rebuilding the
legend cost more than the drawing itself.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from iaa_desktop.core.display.lesion import CONSENSUS_NAMES, LesionDisplay
from iaa_desktop.core.display.overlay import LesionOverlay
from iaa_desktop.gui.widgets.lesion_layers import (
    CONSENSUS_STYLES,
    Swatch,
    contour_item,
    fill_item,
    heat_colour_bar,
    heat_lut,
    set_contours,
    set_fill,
)

#: Scene background around the image: dark, so that no annotator colour is lost on it.
BACKGROUND = "#1e1e1e"
#: Legend text: light on the dark legend box; the swatch carries the colour.
LEGEND_TEXT = "#F0F0F0"
#: Opacity of a heat overlay at full overlay opacity: the skin shows through a little.
HEAT_OPACITY = 0.75
#: Stacking, bottom to top: image, fills (2), pair fills (3), heat map (5), annotators'
#: outlines (6), consensus outlines (10), legend. Outlines stay above a heat map, whose
#: colours would otherwise tint them past recognition.
OUTLINE_Z = 6
#: Drawn over the lesion's frame when its image cannot be read: a neutral mid gray, so that the
#: masks still show where they lie in the image (and every annotator colour stays visible).
NO_IMAGE_GRAY = 140
_NO_IMAGE = np.full((1, 1, 3), NO_IMAGE_GRAY, np.uint8)


class LesionScene:
    """The view box, image, outlines, fills, consensus, pair, heat map, colour bar and legend."""

    def __init__(self, graphics: pg.GraphicsLayoutWidget) -> None:
        self.graphics = graphics
        graphics.setBackground(BACKGROUND)
        graphics.ci.setContentsMargins(0, 0, 0, 0)
        self.view_box: pg.ViewBox = graphics.addViewBox(row=0, col=0, lockAspect=True, invertY=True,
                                                        enableMenu=True)
        self.view_box.setDefaultPadding(0.01)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self.heat_item = pg.ImageItem(axisOrder="row-major", lut=heat_lut())
        self.heat_item.setZValue(5)
        self.heat_item.hide()
        self.view_box.addItem(self.heat_item)
        self.colour_bar: pg.ColorBarItem | None = None
        self.legend = pg.LegendItem(offset=(8, 8), brush=pg.mkBrush(0, 0, 0, 190),
                                    pen=pg.mkPen(255, 255, 255, 60), labelTextColor=LEGEND_TEXT,
                                    labelTextSize="10pt", verSpacing=-4, sampleType=Swatch)
        self.legend.setParentItem(self.view_box)
        self.legend.setZValue(100)
        self.shape = (1, 1)
        self._image: np.ndarray | None = None  # the array the image item shows
        self.contour_items: list[pg.PlotCurveItem] = []
        self.fill_items: list[pg.ImageItem | None] = []
        self.consensus_items: dict[str, pg.PlotCurveItem] = {}
        self.pair_items: list[pg.ImageItem] = []
        self._legend_signature: list[tuple[int, str]] = []

    def frame(self) -> QRectF:
        """The full-resolution image frame every item is stretched over."""
        return QRectF(0, 0, self.shape[1], self.shape[0])

    def set_lesion(self, overlay: LesionOverlay | LesionDisplay) -> None:
        """Draw a lesion's image and outlines; consensus and pair items of the previous one go."""
        self.set_image(overlay.image, overlay.shape)
        self.remove_pair_items()
        for item in self.consensus_items.values():
            self.view_box.removeItem(item)
        self.consensus_items = {}
        n = len(overlay.layers)
        for item in (*self.contour_items[n:], *filter(None, self.fill_items[n:])):
            self.view_box.removeItem(item)
        self.contour_items = self.contour_items[:n]
        fills = self.fill_items[:n]
        self.fill_items = fills + [None] * (n - len(fills))
        masks = overlay.masks if isinstance(overlay, LesionDisplay) else (None,) * n
        for i, layer in enumerate(overlay.layers):
            if i < len(self.contour_items):
                set_contours(self.contour_items[i], layer.contours, layer.colour, layer.label)
            else:
                item = contour_item(layer.contours, layer.colour, layer.label)
                item.setZValue(OUTLINE_Z)
                self.view_box.addItem(item)
                self.contour_items.append(item)
            fill = self.fill_items[i]
            if fill is not None and masks[i] is None:
                self.view_box.removeItem(fill)
                self.fill_items[i] = None
            elif fill is not None:
                set_fill(fill, masks[i], layer.colour, self.frame())

    def set_image(self, image: np.ndarray | None, shape: tuple[int, int]) -> None:
        """The lesion image (any decoded size) over the full-resolution frame ``shape``."""
        if image is not None and image is self._image and tuple(shape) == self.shape:
            return  # drawn already (the preview, or the first view before the exact display)
        self._image = image
        self.shape = tuple(shape)
        if image is None:
            self.image_item.setImage(_NO_IMAGE, autoLevels=False, levels=None)
            self.image_item.setRect(self.frame())
            return
        # uint8 RGB without levels takes pyqtgraph's fast path (no rescaling pass over the pixels).
        self.image_item.setImage(image, autoLevels=False, levels=None)
        # Decoded downscaled or not, the image spans the full-resolution frame.
        self.image_item.setRect(self.frame())

    def fill(self, display: LesionDisplay | None, index: int) -> pg.ImageItem | None:
        """The fill of layer ``index`` (made on first use; ``None`` without a mask)."""
        if display is None or display.masks[index] is None:
            return None
        if self.fill_items[index] is None:
            item = fill_item(display.masks[index], display.layers[index].colour, self.frame())
            item.setZValue(2)
            self.view_box.addItem(item)
            self.fill_items[index] = item
        return self.fill_items[index]

    def consensus(self, display: LesionDisplay | None, name: str) -> pg.PlotCurveItem | None:
        """The ``"MV"`` or ``"STAPLE"`` outline (made on first use; ``None`` when not available)."""
        if display is None:
            return None
        if name not in self.consensus_items:
            contours = display.majority_contours if name == "MV" else (
                display.staple.contours if display.staple is not None else None)
            if contours is None:
                return None
            colour, style = CONSENSUS_STYLES[name]
            item = contour_item(contours, colour, CONSENSUS_NAMES[name], style)
            item.setZValue(10)
            self.view_box.addItem(item)
            self.consensus_items[name] = item
        return self.consensus_items[name]

    def add_pair_fill(self, mask: np.ndarray, colour: str, opacity: float) -> pg.ImageItem:
        """A fill for pair mode ("only A"), removed by ``remove_pair_items``."""
        item = fill_item(mask, colour, self.frame(), alpha=150)
        item.setZValue(3)
        item.setOpacity(opacity)
        self.view_box.addItem(item)
        self.pair_items.append(item)
        return item

    def remove_pair_items(self) -> None:
        for item in self.pair_items:
            self.view_box.removeItem(item)
        self.pair_items = []

    def hide_overlays(self) -> None:
        """Hide every outline and fill (the view then shows what its state asks for)."""
        self.remove_pair_items()
        for item in (*self.contour_items, *filter(None, self.fill_items), *self.consensus_items.values()):
            item.hide()

    def set_legend(self, entries: list[tuple[pg.GraphicsObject, str]]) -> None:
        """Legend entries ``(item, text)``; rebuilt only when they changed (rebuilding costs several ms)."""
        signature = [(id(item), text) for item, text in entries]
        if signature == self._legend_signature:
            for sample, _label in self.legend.items:
                sample.update()  # a hidden entry shows the crossed-out eye
            return
        self.legend.clear()
        for item, text in entries:
            self.legend.addItem(item, text)
        self._legend_signature = signature

    def set_heat(self, array: np.ndarray | None, name: str = "", levels=(0.0, 1.0),
                 opacity: float = 1.0) -> None:
        """A heat map stretched over the image with its colour bar, or none."""
        if self.colour_bar is not None:
            self.graphics.ci.removeItem(self.colour_bar)
            self.colour_bar = None
        if array is None:
            self.heat_item.hide()
            return
        self.heat_item.setImage(np.asarray(array, dtype=np.float32), autoLevels=False, levels=levels)
        self.heat_item.setRect(self.frame())
        self.heat_item.setOpacity(HEAT_OPACITY * opacity)
        self.heat_item.show()
        self.colour_bar = heat_colour_bar(name, tuple(levels))
        self.graphics.addItem(self.colour_bar, row=0, col=1)

    def set_heat_opacity(self, opacity: float) -> None:
        self.heat_item.setOpacity(HEAT_OPACITY * opacity)

    def clear(self) -> None:
        """No image and no overlay."""
        self.legend.clear()
        self._legend_signature = []
        self.remove_pair_items()
        for item in (*self.contour_items, *filter(None, self.fill_items), *self.consensus_items.values()):
            self.view_box.removeItem(item)
        self.contour_items, self.fill_items, self.consensus_items = [], [], {}
        self.set_heat(None)
        self.image_item.clear()
        self._image = None
