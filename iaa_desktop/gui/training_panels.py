"""Training in the main window: the Train menu, the training/runs/predictions docks, Grad-CAM.

``TrainingPanels`` wires the ``TrainingController`` (which owns the trainer
processes) into a ``MainWindow``: it docks the monitor, the runs panel and the
predictions panel under the lesion view, adds the Train menu, merges predicted
IAA and P(malignant) into the browser and lays Grad-CAM maps over the lesion
view (with the annotators' outlines drawn on top, as the study's figures do).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import sys

import pandas as pd
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox

from iaa_desktop.core.review.reviews import excluded_ids
from iaa_desktop.gui.training_controller import TrainingController
from iaa_desktop.gui.widgets.predictions_panel import PredictionsPanel
from iaa_desktop.gui.widgets.runs_panel import RunsPanel
from iaa_desktop.gui.widgets.training_monitor import TrainingMonitor

log = logging.getLogger(__name__)

BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea
GRAD_CAM = "Grad-CAM"
TRAINING_DOCKS = ("training", "runs", "predictions")


def trainer_installed() -> bool:
    """Whether this Python can run the trainer (torch and timm installed); imports neither."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "timm"))


class TrainingPanels(QObject):
    """Owns the training docks and menu of a ``MainWindow``."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.monitor = TrainingMonitor(window)
        self.runs = RunsPanel(window)
        self.predictions = PredictionsPanel(window)
        self.controller = TrainingController(self.monitor, self.runs, self.predictions, self)
        # Hidden until there is something to show (the View menu brings them back); tabbed
        # together only when shown, since hidden tabbed docks leave an empty tab bar behind.
        for name, title, widget in (("training", "Training", self.monitor), ("runs", "Runs", self.runs),
                                    ("predictions", "Predictions", self.predictions)):
            window.add_dock(name, title, widget, BOTTOM)
            window.docks[name].hide()

        self.controller.status_message.connect(self._on_controller_status_message)
        self.controller.error.connect(self._on_controller_error)
        self.controller.predictions_ready.connect(self._on_controller_predictions_ready)
        self.controller.run_ended.connect(self._on_controller_run_ended)
        self.predictions.image_selected.connect(self._on_predictions_image_selected)
        window.lesion_shown.connect(self._on_window_lesion_shown)

    def build_menu(self, before) -> None:
        """Add the Train menu to the window's menu bar, before the menu action ``before``."""
        menu = QMenu("&Train", self.window)
        self.window.menuBar().insertMenu(before, menu)
        self.train_action = QAction("&Train a model…", self)
        self.train_action.setShortcut(QKeySequence("Ctrl+T"))
        self.train_action.setStatusTip("IAA regressor, diagnosis only or multi-task, on the loaded dataset")
        self.train_action.triggered.connect(self._on_train_action_triggered)
        menu.addAction(self.train_action)
        self.cancel_action = QAction("&Cancel the run", self)
        self.cancel_action.triggered.connect(self.controller.cancel)
        menu.addAction(self.cancel_action)
        menu.addSeparator()
        self.runs_action = QAction("Show the &runs", self)
        self.runs_action.setShortcut(QKeySequence("Ctrl+R"))
        self.runs_action.setStatusTip("Every run of this dataset's workspace; select several to compare them")
        self.runs_action.triggered.connect(lambda: self._show("runs"))
        menu.addAction(self.runs_action)
        self.cam_action = QAction("&Grad-CAM overlay", self)
        self.cam_action.setCheckable(True)
        self.cam_action.setShortcut(QKeySequence("G"))
        self.cam_action.setStatusTip("The last model run's Grad-CAM map under the annotators' outlines")
        self.cam_action.toggled.connect(self._on_cam_action_toggled)
        menu.addAction(self.cam_action)

    # -- called by the window -------------------------------------------------

    def dataset_loaded(self, dataset) -> None:
        self.controller.set_dataset(dataset)
        self.controller.set_true_iaa(None)

    def analysis_ready(self, analysis) -> None:
        iaa = analysis.browser_agreement["iaa"] if len(analysis.browser_agreement) else None
        self.controller.set_true_iaa(iaa)

    def shutdown(self) -> None:
        self.controller.shutdown()

    # -- internals ------------------------------------------------------------

    def _show(self, name: str) -> None:
        dock = self.window.docks[name]
        if not dock.isVisible():
            others = [self.window.docks[n] for n in TRAINING_DOCKS if n != name]
            shown = [d for d in others if d.isVisible() and not d.isFloating()]
            if shown and dock.isHidden() and not self.window.tabifiedDockWidgets(dock):
                self.window.tabifyDockWidget(shown[0], dock)
        dock.show()
        dock.raise_()

    def _on_train_action_triggered(self) -> None:
        if self.window.dataset is None:
            QMessageBox.information(self.window, "Train a model", "Open a dataset first.")
            return
        if not trainer_installed():
            QMessageBox.information(
                self.window, "Train a model",
                "Training on this computer needs the train extra (torch, torchvision, timm):\n\n"
                '    pip install "iaa-desktop[train]"\n\n'
                f"The trainer runs as its own process with this Python ({sys.executable}). "
                "Training on another machine over SSH works without it.")
        # Lesions a reviewer excluded from analysis stay out of the training set (which says so).
        workspace = self.window.panels.workspace
        self.controller.export_options["excluded_ids"] = (
            excluded_ids(workspace) if workspace is not None else frozenset())
        dialog = self.controller.open_run_dialog(self.window)
        dialog.request_accepted.connect(lambda _request: self._show("training"))

    def _on_controller_status_message(self, message: str) -> None:
        self.window.statusBar().showMessage(message, 8000)

    def _on_controller_error(self, message: str) -> None:
        QMessageBox.warning(self.window, "Training", message)

    def _on_controller_run_ended(self, _run_dir: str, status: str, message: str) -> None:
        text = f"Run {status}: {message}" if message else f"Run {status}"
        self.window.statusBar().showMessage(text, 10_000)

    def _on_controller_predictions_ready(self, frame: pd.DataFrame) -> None:
        data = self.window.table.data()
        if data is not None:
            self.window.table.set_data(dataclasses.replace(data, predictions=frame))
        self._show("predictions")
        if self.cam_action.isChecked():
            self._show_cam(self.window.lesion_view.image_id)

    def _on_predictions_image_selected(self, image_id: str) -> None:
        self.window.show_lesion(image_id)

    def _on_window_lesion_shown(self, image_id: str) -> None:
        if self.cam_action.isChecked():
            self._show_cam(image_id)

    def _on_cam_action_toggled(self, on: bool) -> None:
        view = self.window.lesion_view
        if on:
            self._show_cam(view.image_id)
        elif view.heat_name == GRAD_CAM:
            view.set_heat_overlay(None)

    def _show_cam(self, image_id: str | None) -> None:
        view = self.window.lesion_view
        if image_id is None or view.overlay is None:
            return
        cam = self.predictions.cam_for(image_id, tuple(view.overlay.shape))
        if cam is None:
            if view.heat_name == GRAD_CAM:
                view.set_heat_overlay(None)
            self.window.statusBar().showMessage(
                f"No Grad-CAM map for {image_id}: run a model on the dataset first (Runs > Run on dataset)",
                8000)
            return
        if not float(cam.max()) > 0.0:
            view.set_heat_overlay(None)
            self.window.statusBar().showMessage(
                f"The model's Grad-CAM is zero everywhere on {image_id}: no region raises its output "
                "(common after a short training)", 8000)
            return
        view.set_heat_overlay(cam, GRAD_CAM)
