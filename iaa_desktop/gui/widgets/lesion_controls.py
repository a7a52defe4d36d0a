"""The lesion view's controls: display mode, opacity, consensus and disagreement overlays, annotators.

Widgets only: they hold no lesion data and emit what the user chose; ``LesionView``
applies it. Every control's tooltip names its keyboard shortcut.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from iaa_desktop.core.dataset.model import Lesion

#: Display modes of the annotators' masks.
MODES = ("contours", "filled")
#: Disagreement maps, in the order the D key cycles through them.
DISAGREEMENT_CHOICES = ("off", "vote fraction", "entropy")


class LesionControls(QWidget):
    """One row of controls above the lesion image."""

    mode_changed = Signal(str)
    opacity_changed = Signal(float)
    majority_toggled = Signal(bool)
    staple_toggled = Signal(bool)
    disagreement_changed = Signal(str)
    show_all_clicked = Signal()
    export_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode_box = QComboBox(self)
        self.mode_box.addItems(["Contours", "Filled"])
        self.mode_box.setToolTip("Draw each annotator's mask as an outline or filled (key F)")
        self.mode_box.currentIndexChanged.connect(self._on_mode_box_index_changed)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(5, 100)
        self.opacity_slider.setValue(100)
        self.opacity_slider.setFixedWidth(90)
        self.opacity_slider.setToolTip("Opacity of the overlays (masks, consensus, heat map)")
        self.opacity_slider.valueChanged.connect(self._on_opacity_slider_value_changed)
        self.majority_box = QCheckBox("MV", self)
        self.majority_box.setToolTip("Majority-vote consensus outline, ties to foreground (key M)")
        self.majority_box.toggled.connect(self.majority_toggled)
        self.staple_box = QCheckBox("STAPLE", self)
        self.staple_box.setToolTip("STAPLE consensus outline (p > 0.5); the legend then shows each "
                                   "annotator's STAPLE sensitivity and specificity (key S)")
        self.staple_box.toggled.connect(self.staple_toggled)
        self.disagreement_box = QComboBox(self)
        self.disagreement_box.addItems(["No heat map", "Vote fraction", "Entropy"])
        self.disagreement_box.setToolTip("Disagreement heat map: share of annotators marking each pixel, "
                                         "or the entropy of their votes (key D cycles)")
        self.disagreement_box.currentIndexChanged.connect(self._on_disagreement_box_index_changed)
        self.show_all_button = QPushButton("Show all", self)
        self.show_all_button.setToolTip("Leave pair mode and show every annotator again (Esc, or 0)")
        self.show_all_button.clicked.connect(self.show_all_clicked)
        self.export_button = QPushButton("Export…", self)
        self.export_button.setToolTip("Save the view as it is shown: PNG, SVG or PDF")
        self.export_button.clicked.connect(self.export_clicked)

        # Two short rows, so that the view fits between the browser and the panels on a
        # 1280-pixel screen; a narrower view clips them rather than forcing the window wider.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        display = QHBoxLayout()
        display.addWidget(self.mode_box)
        display.addWidget(QLabel("Opacity", self))
        display.addWidget(self.opacity_slider, 1)
        display.addWidget(self.show_all_button)
        display.addWidget(self.export_button)
        overlays = QHBoxLayout()
        overlays.addWidget(self.majority_box)
        overlays.addWidget(self.staple_box)
        overlays.addWidget(self.disagreement_box)
        overlays.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(2)
        layout.addLayout(display)
        layout.addLayout(overlays)

    def set_quietly(self, *, mode: str | None = None, majority: bool | None = None,
                    staple: bool | None = None, disagreement: str | None = None) -> None:
        """Show a state set elsewhere (a key, an API call) without emitting signals."""
        widgets = (self.mode_box, self.majority_box, self.staple_box, self.disagreement_box)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            if mode is not None:
                self.mode_box.setCurrentIndex(MODES.index(mode))
            if majority is not None:
                self.majority_box.setChecked(majority)
            if staple is not None:
                self.staple_box.setChecked(staple)
            if disagreement is not None:
                self.disagreement_box.setCurrentIndex(DISAGREEMENT_CHOICES.index(disagreement))
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    def _on_mode_box_index_changed(self, index: int) -> None:
        self.mode_changed.emit(MODES[index])

    def _on_opacity_slider_value_changed(self, value: int) -> None:
        self.opacity_changed.emit(value / 100.0)

    def _on_disagreement_box_index_changed(self, index: int) -> None:
        self.disagreement_changed.emit(DISAGREEMENT_CHOICES[index])


def _swatch_icon(colour: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class AnnotatorChecklist(QWidget):
    """One checkbox per annotator, in its colour: which masks are drawn (keys 1-9, 0 shows all)."""

    visibility_changed = Signal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.boxes: list[QCheckBox] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.setSpacing(2)
        self._title = QLabel("<b>Annotators</b>", self)
        self._title.setToolTip("Annotator · tool · skill. Keys 1-9 toggle an annotator, 0 or ` shows all")
        self._layout.addWidget(self._title)
        self._layout.addStretch(1)

    def set_entries(self, entries: list[tuple[str, str, bool]]) -> None:
        """One box per ``(label, colour, enabled)``, all checked (boxes are reused from lesion to lesion)."""
        for box in self.boxes[len(entries):]:
            self._layout.removeWidget(box)
            # Hidden now: deleteLater waits for the event loop level it was posted from, and a
            # lesion shown from a nested loop (a dialog, a wait) would keep the old boxes on screen.
            box.hide()
            box.deleteLater()
        self.boxes = self.boxes[:len(entries)]
        for i, (label, colour, enabled) in enumerate(entries):
            if i == len(self.boxes):
                box = QCheckBox(self)
                box.toggled.connect(lambda checked, index=i: self.visibility_changed.emit(index, checked))
                self._layout.insertWidget(self._layout.count() - 1, box)
                self.boxes.append(box)
            box = self.boxes[i]
            box.blockSignals(True)
            box.setText(label)
            if box.property("swatch") != colour:
                box.setIcon(_swatch_icon(colour))
                box.setProperty("swatch", colour)
            box.setChecked(True)
            box.setEnabled(enabled)
            box.blockSignals(False)
            key = f"key {i + 1}" if i < 9 else "no key"
            box.setToolTip(f"Show or hide {label} ({key}; 0 or ` shows all)")

    def set_labels(self, labels: list[str]) -> None:
        """New texts (e.g. with STAPLE's sensitivity and specificity) for the same boxes."""
        for box, label in zip(self.boxes, labels, strict=False):
            box.setText(label)

    def set_checked_quietly(self, index: int, checked: bool) -> None:
        box = self.boxes[index]
        box.blockSignals(True)
        box.setChecked(checked)
        box.blockSignals(False)

    def labels(self) -> list[str]:
        return [box.text() for box in self.boxes]


def caption_html(overlay, lesion: Lesion | None) -> str:
    """The one-line caption above a lesion: id, labels, size, masks, problems (rich text)."""
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
