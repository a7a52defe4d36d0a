"""One lesion: the image with every human annotator's mask outline on top (pyqtgraph).

The scene is in full-resolution image pixels (x right, y down, aspect ratio
locked), whatever size the image was decoded at, so contours from the core
line up with the image. Wheel zooms, dragging pans, "Fit" (or double-click)
shows the whole image again; clicking a legend entry hides or shows that
annotator's outline.
"""

from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from iaa_desktop.core.model import Lesion
from iaa_desktop.core.overlay import LesionOverlay, OverlayLayer, join_contours

#: Scene background around the image: dark, so that no annotator colour is lost on it.
BACKGROUND = "#1e1e1e"
#: Contour line width and the width of the dark halo under it, in screen pixels.
LINE_WIDTH = 2.0
HALO_WIDTH = 4.5
HALO_COLOUR = (0, 0, 0, 190)
#: Line width of the legend's samples: wider than the outlines, so the colour reads at a glance.
SWATCH_WIDTH = 4.0
#: Legend text: light on the dark legend box. Coloured text would be unreadable
#: for the darker palette colours (blue, vermillion); the swatch carries the colour.
LEGEND_TEXT = "#F0F0F0"


class _Swatch(pg.ItemSample):
    """A legend sample drawn like the outline itself: a thick coloured line on a dark halo.

    Clicking it hides or shows the outline (pyqtgraph's ``ItemSample``), and a
    hidden outline shows pyqtgraph's crossed-out eye instead.
    """

    def paint(self, p, *args) -> None:
        if not self.item.isVisible():
            super().paint(p, *args)
            return
        p.setRenderHint(p.RenderHint.Antialiasing)
        p.setPen(pg.mkPen(HALO_COLOUR, width=SWATCH_WIDTH + 2))
        p.drawLine(2, 11, 18, 11)
        p.setPen(pg.mkPen(self.item.opts["pen"].color(), width=SWATCH_WIDTH))
        p.drawLine(2, 11, 18, 11)


def _contour_item(layer: OverlayLayer) -> pg.PlotCurveItem:
    """The outline of one mask, with a dark halo behind it for contrast on any background."""
    points, connect = join_contours(layer.contours)
    x, y = points[:, 0], points[:, 1]
    item = pg.PlotCurveItem(x, y, connect=connect, antialias=True,
                            pen=pg.mkPen(layer.colour, width=LINE_WIDTH, cosmetic=True))
    halo = pg.PlotCurveItem(x, y, connect=connect, antialias=True,
                            pen=pg.mkPen(HALO_COLOUR, width=HALO_WIDTH, cosmetic=True))
    halo.setParentItem(item)
    halo.setFlag(QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
    # Hiding the outline (legend click) hides its halo with it, as a child.
    item.setToolTip(layer.label)
    return item


class LesionView(QWidget):
    """The image and outlines of one lesion, a legend, and a one-line caption."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel("No lesion selected", self)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_button = QPushButton("Fit", self)
        self.fit_button.setToolTip("Show the whole image (or double-click the image)")
        self.fit_button.clicked.connect(self._on_fit_button_clicked)

        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setBackground(BACKGROUND)
        self.graphics.ci.setContentsMargins(0, 0, 0, 0)
        self.view_box: pg.ViewBox = self.graphics.addViewBox(lockAspect=True, invertY=True,
                                                             enableMenu=True)
        self.view_box.setDefaultPadding(0.01)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self.legend = pg.LegendItem(offset=(8, 8), brush=pg.mkBrush(0, 0, 0, 190),
                                    pen=pg.mkPen(255, 255, 255, 60), labelTextColor=LEGEND_TEXT,
                                    labelTextSize="10pt", verSpacing=-4, sampleType=_Swatch)
        self.legend.setParentItem(self.view_box)
        self.legend.setZValue(100)
        self.graphics.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)

        self.contour_items: list[pg.PlotCurveItem] = []
        self.overlay: LesionOverlay | None = None

        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 2)
        top.addWidget(self.caption, 1)
        top.addWidget(self.fit_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addWidget(self.graphics, 1)

    @property
    def image_id(self) -> str | None:
        """The lesion shown, or ``None``."""
        return None if self.overlay is None else self.overlay.image_id

    def legend_labels(self) -> list[str]:
        """The legend's entries as plain text, in order."""
        return [label.text for _sample, label in self.legend.items]

    def clear(self, message: str = "No lesion selected") -> None:
        """Show nothing but ``message`` in the caption."""
        self.overlay = None
        self._clear_layers()
        self.image_item.clear()
        self.caption.setText(html.escape(message))
        self.caption.setToolTip("")

    def show_loading(self, image_id: str) -> None:
        """Say that ``image_id`` is on its way; the previous lesion stays until it comes."""
        self.caption.setText(f"<b>{html.escape(image_id)}</b> &nbsp;loading…")

    def show_overlay(self, overlay: LesionOverlay, lesion: Lesion | None = None) -> None:
        """Draw a lesion's image and outlines, and fit it in view."""
        self.overlay = overlay
        self._clear_layers()
        height, width = overlay.shape
        if overlay.image is not None:
            self.image_item.setImage(overlay.image, autoLevels=False, levels=(0, 255))
            # Decoded downscaled or not, the image spans the full-resolution frame.
            self.image_item.setRect(QRectF(0, 0, width, height))
        else:
            self.image_item.clear()
        for layer in overlay.layers:
            self._add_layer(layer)
        self.caption.setText(self._caption_html(overlay, lesion))
        self.caption.setToolTip("\n".join(p.message for p in overlay.problems))
        self.fit()

    def fit(self) -> None:
        """Show the whole image."""
        if self.overlay is None:
            return
        height, width = self.overlay.shape
        self.view_box.setRange(QRectF(0, 0, width, height))

    def _add_layer(self, layer: OverlayLayer) -> None:
        item = _contour_item(layer)
        self.view_box.addItem(item)
        self.contour_items.append(item)
        text = layer.label if layer.contours else f"{layer.label} (no outline)"
        self.legend.addItem(item, text)

    def _clear_layers(self) -> None:
        self.legend.clear()
        for item in self.contour_items:
            self.view_box.removeItem(item)
        self.contour_items = []

    @staticmethod
    def _caption_html(overlay: LesionOverlay, lesion: Lesion | None) -> str:
        parts = [f"<b>{html.escape(overlay.image_id)}</b>"]
        if lesion is not None:
            parts += [html.escape(v) for v in (lesion.diagnosis, lesion.benign_malignant) if v]
            if lesion.split:
                parts.append(f"split {html.escape(lesion.split)}")
        height, width = overlay.shape
        parts.append(f"{width} × {height} px")
        parts.append(f"{len(overlay.layers)} human mask{'s' if len(overlay.layers) != 1 else ''}")
        if overlay.image is None:
            parts.append("<span style='color:#D55E00'>image not readable</span>")
        if overlay.problems:
            n = len(overlay.problems)
            parts.append(f"<span style='color:#D55E00'>{n} problem{'s' if n != 1 else ''}</span>")
        return " &nbsp;·&nbsp; ".join(parts)

    def _on_fit_button_clicked(self) -> None:
        self.fit()

    def _on_scene_mouse_clicked(self, event) -> None:
        if event.double() and event.button() == Qt.MouseButton.LeftButton:
            self.fit()
