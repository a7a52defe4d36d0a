"""One lesion: the image with every annotator's mask, consensus and disagreement overlays (pyqtgraph).

The scene is in full-resolution image pixels (x right, y down, aspect ratio locked),
whatever size the image was decoded at, so outlines from the core line up with the image.
Wheel zooms, dragging pans, "Fit" (or double-click) shows the whole image again.

Keys (while the view has focus): 1-9 toggle an annotator, 0 or ` shows all, F switches
outlines/filled, M the majority vote, S STAPLE, D cycles the disagreement map, Esc leaves
pair mode. Everything drawn comes from a ``core.lesion_display.LesionDisplay`` (an older
``core.overlay.LesionOverlay`` is drawn too, outlines only).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from iaa_desktop.core.dataset.model import Lesion
from iaa_desktop.core.display.lesion import (
    CONSENSUS_NAMES,
    ImagePreview,
    LesionDisplay,
    pair_masks,
    staple_labels,
)
from iaa_desktop.core.display.overlay import LesionOverlay
from iaa_desktop.core.display.pixel_readout import pixel_readout, readout_text
from iaa_desktop.core.errors import IAAError
from iaa_desktop.gui.widgets.lesion_controls import (
    DISAGREEMENT_CHOICES,
    AnnotatorChecklist,
    LesionControls,
    caption_html,
)
from iaa_desktop.gui.widgets.lesion_layers import CONSENSUS_STYLES
from iaa_desktop.gui.widgets.lesion_scene import LesionScene

_HEAT_NAMES = {"vote fraction": "Vote fraction", "entropy": "Entropy (bits)"}


class LesionView(QWidget):
    """The image, overlays, legend and controls of one lesion, and a pixel read-out line.

    Signals
    -------
    staple_requested(str)
        STAPLE is wanted (overlay or pair) for the lesion shown and its display has none:
        compute ``core.lesion_display.with_staple`` off the GUI thread and call
        ``show_overlay`` with the result.
    pair_closed()
        Pair mode ended ("Show all" or Esc).
    """

    staple_requested = Signal(str)
    pair_closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.caption = QLabel("No lesion selected", self)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long caption is clipped rather than widening the window (its tooltip has the problems).
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.fit_button = QPushButton("Fit", self)
        self.fit_button.setToolTip("Show the whole image (or double-click the image)")
        self.fit_button.clicked.connect(self._on_fit_button_clicked)
        self.controls = LesionControls(self)
        self.checklist = AnnotatorChecklist(self)
        self.readout = QLabel(" ", self)
        self.readout.setContentsMargins(4, 2, 4, 2)
        # Clipped rather than widening the window: with 8 annotators the line outgrows a 1280 screen.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setToolTip("The pixel under the cursor: which annotators include it, "
                                "majority vote, vote fraction, STAPLE")

        self.graphics = pg.GraphicsLayoutWidget(self)
        self.scene = LesionScene(self.graphics)
        # These never change: plain attributes for callers (and the main window's tests).
        self.view_box = self.scene.view_box
        self.image_item = self.scene.image_item
        self.heat_item = self.scene.heat_item
        self.legend = self.scene.legend
        self.graphics.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)
        self.graphics.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.graphics.installEventFilter(self)

        self.overlay: LesionOverlay | LesionDisplay | None = None
        self.lesion: Lesion | None = None
        self.visible: list[bool] = []
        self.mode = "contours"
        self.opacity = 1.0
        self.show_majority = False
        self.show_staple = False
        self.disagreement = "off"
        self.pair: tuple[int | str, int | str] | None = None
        self.heat_name = ""
        self._preview_id: str | None = None
        # Where the cursor last was over the image (scene coordinates; None when it left): the
        # read-out is recomputed there when the lesion changes under a still mouse.
        self._cursor_scene_pos: QPointF | None = None

        self.controls.mode_changed.connect(self.set_mode)
        self.controls.opacity_changed.connect(self.set_opacity)
        self.controls.majority_toggled.connect(self.set_majority_visible)
        self.controls.staple_toggled.connect(self.set_staple_visible)
        self.controls.disagreement_changed.connect(self.set_disagreement)
        self.controls.show_all_clicked.connect(self.show_all)
        self.controls.export_clicked.connect(self._on_controls_export_clicked)
        self.checklist.visibility_changed.connect(self.set_annotator_visible)
        self.controls.show_all_button.setEnabled(False)

        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 2)
        top.addWidget(self.caption, 1)
        top.addWidget(self.fit_button)
        middle = QHBoxLayout()
        middle.setContentsMargins(0, 0, 0, 0)
        middle.addWidget(self.graphics, 1)
        middle.addWidget(self.checklist)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addWidget(self.controls)
        layout.addLayout(middle, 1)
        layout.addWidget(self.readout)

    # -- what is shown --------------------------------------------------------

    @property
    def image_id(self) -> str | None:
        """The lesion shown, or ``None``."""
        return None if self.overlay is None else self.overlay.image_id

    @property
    def display(self) -> LesionDisplay | None:
        """The full display data of the lesion shown (``None`` for none, or an outlines-only overlay)."""
        return self.overlay if isinstance(self.overlay, LesionDisplay) else None

    @property
    def contour_items(self) -> list[pg.PlotCurveItem]:
        """One outline item per layer of the lesion shown."""
        return self.scene.contour_items

    @property
    def fill_items(self) -> list[pg.ImageItem | None]:
        """One fill item per layer, ``None`` until filled mode first needs it."""
        return self.scene.fill_items

    @property
    def consensus_items(self) -> dict[str, pg.PlotCurveItem]:
        return self.scene.consensus_items

    @property
    def pair_items(self) -> list[pg.ImageItem]:
        """The "only A" and "only B" fills of pair mode."""
        return self.scene.pair_items

    @property
    def colour_bar(self) -> pg.ColorBarItem | None:
        return self.scene.colour_bar

    def legend_labels(self) -> list[str]:
        """The legend's entries as plain text, in order."""
        return [label.text for _sample, label in self.legend.items]

    def clear(self, message: str = "No lesion selected") -> None:
        """Show nothing but ``message`` in the caption."""
        self.overlay = None
        self.lesion = None
        self.pair = None
        self.scene.clear()
        self.set_heat_overlay(None)
        self.checklist.set_entries([])
        self.caption.setText(html.escape(message))
        self.caption.setToolTip("")
        self.readout.setText(" ")

    def show_loading(self, image_id: str) -> None:
        """Say that ``image_id`` is on its way; the previous lesion stays until it comes."""
        self.caption.setText(f"<b>{html.escape(image_id)}</b> &nbsp;loading…")

    def show_preview(self, preview: ImagePreview) -> None:
        """Show a lesion's image alone while its masks are still decoding (``LesionLoader.preview``)."""
        if preview.image is None:
            return
        self.overlay = None
        self.pair = None
        self.scene.hide_overlays()
        self.scene.set_legend([])
        self.set_heat_overlay(None)
        self.scene.set_image(preview.image, preview.shape)
        self._preview_id = preview.image_id
        self.caption.setText(f"<b>{html.escape(preview.image_id)}</b> &nbsp;decoding the masks…")
        self.readout.setText(" ")
        height, width = preview.shape
        self.view_box.setRange(QRectF(0, 0, width, height))

    def show_overlay(self, overlay: LesionDisplay | LesionOverlay, lesion: Lesion | None = None) -> None:
        """Draw a lesion: a new one fitted in view, the same again (say, with STAPLE) keeping the zoom."""
        same = self.overlay is not None and overlay.image_id == self.overlay.image_id \
            and len(overlay.layers) == len(self.overlay.layers)
        previewed = overlay.image_id == self._preview_id  # fitted already; keep a zoom made meanwhile
        self._preview_id = None
        self.overlay = overlay
        self.lesion = lesion if lesion is not None else (self.lesion if same else None)
        self.scene.set_lesion(overlay)
        if not same:
            self.visible = [True] * len(overlay.layers)
            self.pair = None
            if self.disagreement == "off":
                self.set_heat_overlay(None)  # an outside heat map (Grad-CAM) belongs to the old image
        self.checklist.set_entries([(layer.label, layer.colour, bool(layer.contours))
                                    for layer in overlay.layers])
        for i, shown in enumerate(self.visible):
            self.checklist.set_checked_quietly(i, shown)
        has_data = self.display is not None
        for widget in (self.controls.majority_box, self.controls.staple_box, self.controls.disagreement_box,
                       self.controls.mode_box):
            widget.setEnabled(has_data)
        self.caption.setText(caption_html(overlay, self.lesion))
        self.caption.setToolTip("\n".join(p.message for p in overlay.problems))
        if self.disagreement != "off":
            self.set_disagreement(self.disagreement)
        self._ask_for_staple()  # STAPLE on: the new lesion's second stage is wanted at once
        self._refresh()
        if not same and not previewed:
            self.fit()
        self._update_readout()  # the pixel under a still cursor now belongs to this lesion

    def fit(self) -> None:
        """Show the whole image."""
        if self.overlay is None:
            return
        height, width = self.overlay.shape
        self.view_box.setRange(QRectF(0, 0, width, height))

    # -- state changes (controls, keys, callers) --------------------------------

    def set_annotator_visible(self, index: int, visible: bool) -> None:
        """Show or hide annotator ``index`` (a layer of the lesion)."""
        if 0 <= index < len(self.visible):
            self.visible[index] = bool(visible)
            self.checklist.set_checked_quietly(index, bool(visible))
            self._refresh()

    def toggle_annotator(self, index: int) -> None:
        if 0 <= index < len(self.visible):
            self.set_annotator_visible(index, not self.visible[index])

    def show_all(self) -> None:
        """Every annotator visible again, and pair mode left."""
        was_pair = self.pair is not None
        self.pair = None
        self.visible = [True] * len(self.visible)
        for i in range(len(self.visible)):
            self.checklist.set_checked_quietly(i, True)
        self._refresh()
        if was_pair:
            self.pair_closed.emit()

    def set_mode(self, mode: str) -> None:
        """``"contours"`` or ``"filled"``."""
        if mode not in ("contours", "filled"):
            raise ValueError(f"mode must be 'contours' or 'filled', got {mode!r}")
        self.mode = mode
        self.controls.set_quietly(mode=mode)
        self._refresh()

    def set_opacity(self, opacity: float) -> None:
        """Opacity of every overlay, 0-1 (the image stays opaque)."""
        self.opacity = float(np.clip(opacity, 0.0, 1.0))
        slider = self.controls.opacity_slider
        slider.blockSignals(True)
        slider.setValue(round(self.opacity * 100))
        slider.blockSignals(False)
        self._refresh()

    def set_majority_visible(self, visible: bool) -> None:
        self.show_majority = bool(visible)
        self.controls.set_quietly(majority=self.show_majority)
        self._refresh()

    def set_staple_visible(self, visible: bool) -> None:
        """Show STAPLE (asking for it with ``staple_requested`` when not computed yet)."""
        self.show_staple = bool(visible)
        self.controls.set_quietly(staple=self.show_staple)
        self._ask_for_staple()
        self._refresh()

    def set_disagreement(self, kind: str) -> None:
        """``"off"``, ``"vote fraction"`` or ``"entropy"``: the heat overlay of disagreement."""
        if kind not in DISAGREEMENT_CHOICES:
            raise ValueError(f"kind must be one of {DISAGREEMENT_CHOICES}, got {kind!r}")
        self.disagreement = kind
        self.controls.set_quietly(disagreement=kind)
        display = self.display
        if kind == "off" or display is None:
            self.set_heat_overlay(None)
            return
        array = display.vote_fraction if kind == "vote fraction" else display.entropy
        self.set_heat_overlay(array, _HEAT_NAMES[kind], (0.0, 1.0))
        # set_heat_overlay resets the choice, as an outside heat map replaces the disagreement map.
        self.disagreement = kind
        self.controls.set_quietly(disagreement=kind)

    def set_heat_overlay(self, array: np.ndarray | None, name: str = "", levels=(0.0, 1.0)) -> None:
        """A heat map over the whole image (any size, stretched), with its colour bar; ``None`` removes it.

        Values at or below ``levels[0]`` are transparent. Used by the disagreement map,
        and by callers with maps of their own (e.g. Grad-CAM, values in [0, 1]).
        """
        self.disagreement = "off"
        self.controls.set_quietly(disagreement="off")
        if self.overlay is None:
            array = None
        self.scene.set_heat(array, name, levels, self.opacity)
        self.heat_name = "" if array is None else name

    def show_pair(self, a: int | str, b: int | str) -> None:
        """Only masks ``a`` and ``b`` (layer indices, ``"MV"`` or ``"STAPLE"``) and where they differ.

        Pixels only ``a`` marks are filled in ``a``'s colour, those only ``b`` marks in
        ``b``'s; "Show all" or Esc goes back.
        """
        if self.display is None:
            return
        self.pair = (a, b)
        self._ask_for_staple()
        self._refresh()

    def show_mask_pair(self, pair) -> None:
        """``show_pair`` for a clicked pair-heatmap cell (``core.pair_matrix.MaskPair``) of this lesion."""
        if pair.image_id == self.image_id:
            self.show_pair(*pair.keys)

    def export(self, path: str | Path) -> Path:
        """Save the image and overlays as shown (legend and colour bar included): .png, .svg or .pdf."""
        from iaa_desktop.gui.plot_export import export_widget

        return export_widget(self.graphics, path, title=self.image_id or "lesion")

    # -- drawing ------------------------------------------------------------------

    def _ask_for_staple(self) -> None:
        display = self.display
        wants = self.show_staple or (self.pair is not None and "STAPLE" in self.pair)
        if wants and display is not None and display.staple is None and display.readable:
            self.staple_requested.emit(display.image_id)

    def _refresh(self) -> None:
        """Make the items' visibility, opacity and the legend match the view's state."""
        if self.overlay is None:
            return
        self.scene.hide_overlays()
        self.controls.show_all_button.setEnabled(self.pair is not None)
        entries: list[tuple[pg.GraphicsObject, str]] = []
        if self.pair is not None and self._draw_pair(entries):
            self.scene.set_legend(entries)
            return
        self.pair = None
        labels = self._annotator_labels()
        self.checklist.set_labels(labels)
        for i, (item, label) in enumerate(zip(self.contour_items, labels, strict=True)):
            # Filled: the fill under the outline (overlapping fills alone blur into one colour).
            fill = self.scene.fill(self.display, i) if self.mode == "filled" else None
            for shown in (item, fill):
                if shown is not None:
                    shown.setVisible(self.visible[i])
                    shown.setOpacity(self.opacity)
            item.legend_toggle = lambda index=i: self.toggle_annotator(index)
            no_mask = not self.overlay.layers[i].contours
            entries.append((item, f"{label} (no outline)" if no_mask else label))
        for name, wanted in (("MV", self.show_majority), ("STAPLE", self.show_staple)):
            item = self.scene.consensus(self.display, name) if wanted else None
            if item is not None:
                item.show()
                item.setOpacity(self.opacity)
                entries.append((item, CONSENSUS_NAMES[name]))
        self.scene.set_heat_opacity(self.opacity)
        self.scene.set_legend(entries)

    def _annotator_labels(self) -> list[str]:
        display = self.display
        if self.show_staple and display is not None:
            return staple_labels(display)
        return [layer.label for layer in self.overlay.layers]

    def _draw_pair(self, entries: list) -> bool:
        """Draw pair mode; False when the pair cannot be shown (yet)."""
        display = self.display
        a, b = self.pair
        try:
            pair = pair_masks(display, a, b)
        except ValueError:
            return display is not None and display.staple is None and "STAPLE" in self.pair
        for which, name, only in ((a, pair.label_a, pair.only_a), (b, pair.label_b, pair.only_b)):
            if isinstance(which, str):
                outline, text = self.scene.consensus(display, which), name
                colour = CONSENSUS_STYLES[which][0]
            else:
                layer = display.layers[which]
                outline, colour = self.contour_items[which], layer.colour
                # "A01 · T3 · S1 #2" for a repeat, matching "only A01 #2".
                text = layer.label + name[len(layer.segmentation.annotator):]
            outline.show()
            outline.setOpacity(self.opacity)
            outline.legend_toggle = None
            entries.append((outline, text))
            entries.append((self.scene.add_pair_fill(only, colour, self.opacity), f"only {name}"))
        return True

    # -- keys, mouse, buttons -----------------------------------------------------------

    def handle_key(self, key: int) -> bool:
        """Apply a shortcut key; True when it was one."""
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.toggle_annotator(key - Qt.Key.Key_1)
            return True
        choices = DISAGREEMENT_CHOICES
        actions = {
            Qt.Key.Key_0: self.show_all, Qt.Key.Key_QuoteLeft: self.show_all,
            Qt.Key.Key_Escape: self.show_all,
            Qt.Key.Key_F: lambda: self.set_mode("filled" if self.mode == "contours" else "contours"),
            Qt.Key.Key_M: lambda: self.set_majority_visible(not self.show_majority),
            Qt.Key.Key_S: lambda: self.set_staple_visible(not self.show_staple),
            Qt.Key.Key_D: lambda: self.set_disagreement(
                choices[(choices.index(self.disagreement) + 1) % len(choices)]),
        }
        action = actions.get(key)
        if action is not None:
            action()
        return action is not None

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier or not self.handle_key(event.key()):
            super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if watched is self.graphics and event.type() == QEvent.Type.Leave:
            self._cursor_scene_pos = None
            self.readout.setText(" ")
        if watched is self.graphics and event.type() == QEvent.Type.KeyPress:
            plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if plain and self.handle_key(event.key()):
                return True
        return super().eventFilter(watched, event)

    def _on_fit_button_clicked(self) -> None:
        self.fit()

    def _on_scene_mouse_clicked(self, event) -> None:
        if event.double() and event.button() == Qt.MouseButton.LeftButton:
            self.fit()

    def _on_scene_mouse_moved(self, pos) -> None:
        self._cursor_scene_pos = QPointF(pos)
        self._update_readout()

    def _update_readout(self) -> None:
        """The read-out of the pixel under the cursor in the lesion shown, or blank."""
        display, pos = self.display, self._cursor_scene_pos
        if display is None or pos is None or not self.view_box.sceneBoundingRect().contains(pos):
            self.readout.setText(" ")
            return
        point = self.view_box.mapSceneToView(pos)
        self.readout.setText(readout_text(pixel_readout(display, point.x(), point.y())) or " ")

    def _on_controls_export_clicked(self) -> None:
        from iaa_desktop.gui.plot_export import FILE_FILTER

        path, _ = QFileDialog.getSaveFileName(self, "Export lesion view", f"{self.image_id or 'lesion'}.png",
                                              FILE_FILTER)
        if not path:
            return
        try:
            self.export(path if Path(path).suffix else f"{path}.png")
        except IAAError as exc:
            QMessageBox.critical(self, "Export lesion view", str(exc))
