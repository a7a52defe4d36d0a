"""Predictions of a model on the loaded dataset: predicted vs true IAA, and the columns for the browser.

``set_predictions`` takes the frame ``core.predictions.read_predictions`` gives
(indexed by image id); the panel emits ``columns_ready`` with the per-image
columns (``predicted_iaa``, ``p_malignant``) for the browser, and draws the
scatter of predicted vs true IAA (``core.predictions.iaa_scatter``: MAE and
Pearson). ``cam_for(image_id, shape)`` reads the Grad-CAM map
(``core.predictions.read_cam``) for the lesion view's heat overlay.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.figures.style import BENIGN, MALIGNANT
from iaa_desktop.core.training.predictions import (
    CAM_HEADS,
    SUBSETS,
    PredictionsError,
    ScatterData,
    available_cam_heads,
    browser_columns,
    iaa_scatter,
    read_cam,
)


class PredictionsPanel(QWidget):
    """Scatter of predicted vs true IAA with MAE and Pearson; prediction columns and Grad-CAM maps."""

    #: Per-image prediction columns (a DataFrame indexed by image id) to merge into the browser.
    columns_ready = Signal(object)
    #: A point was clicked; carries its image id.
    image_selected = Signal(str)
    #: (image id, Grad-CAM array float32 in [0, 1]) after ``show_cam``.
    cam_ready = Signal(str, object)
    #: The user pressed Cancel while a prediction ran.
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: pd.DataFrame | None = None
        self.true_iaa: pd.Series | None = None
        self.cam_dir: Path | None = None
        self.scatter: ScatterData | None = None
        #: The image ids the run trained on or chose its epoch by (``None``: not known).
        self.seen: frozenset[str] | None = None
        self.seen_note = ""

        self.title_label = QLabel("No predictions yet: pick a finished run and press Run on dataset", self)
        self.title_label.setWordWrap(True)
        self.stats_label = QLabel("", self)
        self.stats_label.setWordWrap(True)  # the figures and what they are over: long at dock widths
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.head_combo = QComboBox(self)
        self.head_combo.setToolTip("Which head's Grad-CAM the lesion view shows")
        self.head_combo.setEnabled(False)
        self.subset_combo = QComboBox(self)
        for subset, label in zip(SUBSETS, ("images the run never saw", "all images",
                                           "the run's training and validation images"), strict=True):
            self.subset_combo.addItem(label, subset)
        self.subset_combo.setToolTip("Which images the MAE and the points are over: a model's figure "
                                     "counts only on images it neither trained on nor chose its epoch by")
        self.subset_combo.currentIndexChanged.connect(self._draw)

        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "True IAA (mean pairwise Dice)")
        self.plot.setLabel("left", "Predicted IAA")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("#222")
            self.plot.getAxis(axis).setPen("#666")
        self.identity = pg.PlotCurveItem([0, 1], [0, 1], pen=pg.mkPen("#888", width=1,
                                                                      style=pg.QtCore.Qt.PenStyle.DashLine))
        self.plot.addItem(self.identity)
        #: The training-median constant (a horizontal line): what the model's points must beat.
        self.constant = pg.PlotCurveItem([], [], pen=pg.mkPen("#222", width=1.5,
                                                              style=pg.QtCore.Qt.PenStyle.DotLine))
        self.constant.setToolTip("constant (training median)")
        self.plot.addItem(self.constant)
        self.points = pg.ScatterPlotItem(size=8, pen=pg.mkPen("#222", width=0.6),
                                         brush=pg.mkBrush(BENIGN), hoverable=True)
        self.points.sigClicked.connect(self._on_points_clicked)
        self.plot.addItem(self.points)
        legend = self.plot.addLegend(offset=(10, 10), labelTextColor="#222")
        for label, colour, symbol in (("benign", BENIGN, "o"), ("malignant", MALIGNANT, "s"),
                                      ("label unknown", "#999999", "o")):
            legend.addItem(pg.ScatterPlotItem(size=8, brush=pg.mkBrush(colour), symbol=symbol,
                                              pen=pg.mkPen("#222", width=0.6)), label)
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1))

        top = QHBoxLayout()
        top.addWidget(self.title_label, 1)
        top.addWidget(QLabel("Over", self))
        top.addWidget(self.subset_combo)
        top.addWidget(QLabel("Grad-CAM", self))
        top.addWidget(self.head_combo)
        busy = QHBoxLayout()
        busy.addWidget(self.progress_bar, 1)
        busy.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(busy)
        layout.addWidget(self.stats_label)
        layout.addWidget(self.plot, 1)

    # -- public API ---------------------------------------------------------

    def set_busy(self, busy: bool, text: str = "") -> None:
        """Show that a prediction runs (an indeterminate bar: iaa-predict reports no steps)."""
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.progress_bar.setFormat(text)
        if text:
            self.title_label.setText(text)

    def set_true_iaa(self, series: pd.Series | None) -> None:
        """The dataset's image-level IAA (image id -> IAA), used instead of the training set's."""
        self.true_iaa = series
        self._draw()

    def set_predictions(self, predictions: pd.DataFrame, *, title: str = "",
                        cam_dir: str | Path | None = None, seen: frozenset[str] | None = None,
                        seen_note: str = "") -> None:
        """Show a model's predictions (``core.predictions.read_predictions``) and emit ``columns_ready``.

        ``seen``: the ids the run trained on or chose its epoch by (``core.predictions.
        seen_in_training``); the figures leave them out unless the user asks. ``seen_note`` says
        why they are not known when ``seen`` is ``None``.
        """
        self.predictions = predictions
        self.seen, self.seen_note = seen, seen_note
        self.subset_combo.setEnabled(seen is not None)
        self.cam_dir = None if cam_dir is None else Path(cam_dir)
        self.title_label.setText(title or f"Predictions for {len(predictions):,} images")
        heads = available_cam_heads(self.cam_dir) if self.cam_dir else []
        self.head_combo.clear()
        for head in heads:
            self.head_combo.addItem("IAA head" if head == "regression" else "diagnosis head", head)
        self.head_combo.setEnabled(bool(heads))
        self._draw()
        self.columns_ready.emit(browser_columns(predictions))

    def cam_head(self) -> str | None:
        head = self.head_combo.currentData()
        return str(head) if head in CAM_HEADS else None

    def cam_for(self, image_id: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The Grad-CAM map of an image (resized to ``shape`` = (height, width)), or ``None``."""
        if self.cam_dir is None:
            return None
        try:
            return read_cam(self.cam_dir, image_id, self.cam_head(), shape)
        except IAAError:
            return None

    def show_cam(self, image_id: str, shape: tuple[int, int] | None = None) -> bool:
        """Emit ``cam_ready`` for an image when it has a map; returns whether it had one."""
        cam = self.cam_for(image_id, shape)
        if cam is not None:
            self.cam_ready.emit(image_id, cam)
        return cam is not None

    # -- internals ----------------------------------------------------------

    def _draw(self) -> None:
        self.points.setData([], [])
        self.scatter = None
        if self.predictions is None:
            return
        try:
            scatter = iaa_scatter(self.predictions, self.true_iaa, seen=self.seen,
                                  subset=self.subset_combo.currentData() or "unseen")
        except PredictionsError as exc:
            self.stats_label.setText(str(exc))
            return
        self.scatter = scatter
        brushes = [pg.mkBrush(MALIGNANT if m == 1 else BENIGN if m == 0 else "#999999")
                   for m in scatter.malignant]
        self.points.setData(x=scatter.true, y=scatter.predicted, data=list(scatter.image_ids),
                            brush=brushes or None, symbol=["s" if m == 1 else "o" for m in scatter.malignant]
                            or "o")
        pearson = "n/a" if math.isnan(scatter.pearson) else f"{scatter.pearson:.3f}"
        mae = "n/a" if math.isnan(scatter.mae) else f"{scatter.mae:.3f}"
        versus = ""
        if math.isfinite(scatter.baseline_mae):
            versus = (f" vs {scatter.baseline_mae:.3f} for the constant (training median "
                      f"{scatter.baseline:.3f}), ratio {scatter.mae_ratio:.2f}")
        self.stats_label.setText(f"MAE {mae}{versus}   Pearson r {pearson}   "
                                 f"n = {scatter.n:,} {self._over_text(scatter)}")
        if scatter.n:
            low = float(min(scatter.true.min(), scatter.predicted.min(), 0.5))
            high = float(max(scatter.true.max(), scatter.predicted.max(), 1.0))
            self.identity.setData([low, high], [low, high])
            if math.isfinite(scatter.baseline):  # the constant predicts the same for every image
                self.constant.setData([low, high], [scatter.baseline, scatter.baseline])
            else:
                self.constant.setData([], [])
            margin = 0.03 * (high - low)
            self.plot.setRange(xRange=(low - margin, high + margin), yRange=(low - margin, high + margin),
                               padding=0)

    def _over_text(self, scatter: ScatterData) -> str:
        left_out = f"; {scatter.n_left_out:,} left out" if scatter.n_left_out else ""
        if scatter.subset == "unseen":
            return f"images with a true IAA the run never saw{left_out}"
        if scatter.subset == "seen":
            return f"images the run trained on or chose its epoch by (flattering){left_out}"
        if self.seen is None:
            why = f": {self.seen_note}" if self.seen_note else ""
            return f"images with a true IAA (which ones the run trained on is not known{why})"
        return "images with a true IAA, training images included (flattering)"

    def _on_points_clicked(self, _item, points, *_args) -> None:
        if len(points):
            self.image_selected.emit(str(points[0].data()))
