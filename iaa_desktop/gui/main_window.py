"""The main window: the lesion table beside the lesion view, menus and a status bar.

Loading a dataset and decoding a lesion both run in worker threads
(``iaa_desktop.gui.workers``); the window only starts them and draws their
results. A dataset that cannot be read gives a message box and leaves the
window as it was.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import PySide6
from PySide6.QtCore import QByteArray, QSettings, QThreadPool, Signal, qVersion
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QSplitter, QWidget

from iaa_desktop import __version__
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.model import Dataset
from iaa_desktop.core.overlay import LesionOverlay
from iaa_desktop.core.progress import Progress
from iaa_desktop.gui.widgets.lesion_table import LesionTable
from iaa_desktop.gui.widgets.lesion_view import LesionView
from iaa_desktop.gui.workers import IndexedDataset, dataset_worker, lesion_worker

log = logging.getLogger(__name__)

APP_NAME = "IAA Desktop"
#: Longest the window waits for running workers when it closes, in ms.
CLOSE_WAIT_MS = 5000


def demo_available() -> bool:
    """Whether the demo dataset generator is installed."""
    return importlib.util.find_spec("iaa_desktop.core.demo") is not None


def about_text() -> str:
    """The About box: our version and the versions of what we run on."""
    return (
        f"<h3>{APP_NAME} {__version__}</h3>"
        "<p>Inter-annotator agreement in dermoscopic skin-lesion segmentation.</p>"
        "<table>"
        f"<tr><td>Qt</td><td>{qVersion()}</td></tr>"
        f"<tr><td>PySide6</td><td>{PySide6.__version__}</td></tr>"
        f"<tr><td>pyqtgraph</td><td>{pg.__version__}</td></tr>"
        f"<tr><td>numpy</td><td>{np.__version__}</td></tr>"
        f"<tr><td>Python</td><td>{platform.python_version()}</td></tr>"
        "</table>"
    )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


class MainWindow(QMainWindow):
    """The application window.

    Parameters
    ----------
    settings
        Where the window geometry is kept; the application's default
        ``QSettings`` when ``None`` (tests pass one backed by a temporary file).
    log_path
        The log file, named in messages about unexpected errors.
    """

    #: An ``IndexedDataset`` was loaded and is shown.
    dataset_loaded = Signal(object)
    #: Opening a dataset failed; carries the message shown.
    dataset_failed = Signal(str)
    #: A lesion's image and outlines are drawn; carries its image id.
    lesion_shown = Signal(str)

    def __init__(self, settings: QSettings | None = None, log_path: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.log_path = log_path
        self.dataset: Dataset | None = None
        self._dataset_worker = None
        self._lesion_worker = None
        self._lesion_worker_id: str | None = None
        # Requests are numbered so that a result for an older request is dropped.
        self._lesion_request = 0
        self._lesion_worker_request = 0
        self._wanted_lesion: str | None = None
        # Until the user moves the splitter (or a saved state exists), fit the table's columns.
        self._splitter_sized = False

        self.setWindowTitle(APP_NAME)
        self.table = LesionTable(self)
        self.lesion_view = LesionView(self)
        self.splitter = QSplitter(self)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.lesion_view)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.splitterMoved.connect(self._on_splitter_splitter_moved)
        self.setCentralWidget(self.splitter)
        self.table.lesion_selected.connect(self._on_table_lesion_selected)

        self._build_menus()
        self.task_label = QLabel("Ready", self)
        self.counts_label = QLabel("No dataset open", self)
        self.problems_label = QLabel("", self)
        self.statusBar().addWidget(self.task_label, 1)
        self.statusBar().addPermanentWidget(self.counts_label)
        self.statusBar().addPermanentWidget(self.problems_label)
        self._restore_geometry()

    # -- public API ---------------------------------------------------------

    def open_dataset(self, path: str | Path | None) -> bool:
        """Start loading the dataset at ``path`` (the demo dataset when ``None``).

        Returns False, doing nothing, while another dataset is loading.
        ``dataset_loaded`` or ``dataset_failed`` tells how it ended.
        """
        if self._dataset_worker is not None:
            log.info("a dataset is already loading; ignored %s", path)
            return False
        what = "the demo dataset (generated on first use)" if path is None else str(path)
        self._set_task(f"Loading {what}…")
        self.open_action.setEnabled(False)
        self.open_demo_action.setEnabled(False)
        worker = dataset_worker(path, self._on_dataset_worker_errored)
        worker.returned.connect(self._on_dataset_worker_returned)
        worker.finished.connect(self._on_dataset_worker_finished)
        self._dataset_worker = worker
        worker.start()
        return True

    def open_default(self) -> None:
        """Open the demo dataset, or say how to open one when the demo is not available."""
        if demo_available():
            self.open_dataset(None)
        else:
            self._set_task("No dataset open: use File > Open dataset… (Ctrl+O)")

    def is_busy(self) -> bool:
        """Whether a worker is running."""
        return self._dataset_worker is not None or self._lesion_worker is not None

    # -- building -----------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open dataset…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.setStatusTip("Open a dataset folder (IMA++ release or folder layout)")
        self.open_action.triggered.connect(self._on_open_action_triggered)
        file_menu.addAction(self.open_action)
        self.open_demo_action = QAction("Open &demo dataset", self)
        self.open_demo_action.setEnabled(demo_available())
        self.open_demo_action.triggered.connect(self._on_open_demo_action_triggered)
        file_menu.addAction(self.open_demo_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction("&About IAA Desktop", self)
        self.about_action.triggered.connect(self._on_about_action_triggered)
        help_menu.addAction(self.about_action)

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("main_window/geometry")
        if isinstance(geometry, QByteArray | bytes) and self.restoreGeometry(geometry):
            splitter = self.settings.value("main_window/splitter")
            if isinstance(splitter, QByteArray | bytes):
                self._splitter_sized = self.splitter.restoreState(splitter)
            return
        self.resize(1240, 780)
        self.splitter.setSizes([540, 700])

    def _save_geometry(self) -> None:
        self.settings.setValue("main_window/geometry", self.saveGeometry())
        self.settings.setValue("main_window/splitter", self.splitter.saveState())
        self.settings.sync()

    def _set_task(self, text: str) -> None:
        self.task_label.setText(text)

    def _show_counts(self, indexed: IndexedDataset) -> None:
        s = indexed.summary
        self.counts_label.setText(" · ".join([
            _plural(int(s["images"]), "image"),
            _plural(int(s["masks"]), "mask"),
            _plural(int(s["annotators"]), "annotator"),
        ]))
        n = int(s["problem_count"])
        self.problems_label.setText(_plural(n, "problem"))
        by_kind = s["problems"]
        self.problems_label.setToolTip(
            "\n".join(f"{kind}: {count}" for kind, count in by_kind.items()) if n else "No problems found")
        colour = "#D55E00" if n else "palette(window-text)"
        self.problems_label.setStyleSheet(f"color: {colour}; padding: 0 4px;")

    def _unexpected(self, exc: BaseException, doing: str) -> str:
        log.error("unexpected error while %s", doing, exc_info=exc)
        where = f" Details are in the log file {self.log_path}." if self.log_path else ""
        return f"Unexpected error while {doing}: {type(exc).__name__}: {exc}.{where}"

    # -- lesions ------------------------------------------------------------

    def _request_lesion(self, image_id: str) -> None:
        """Show ``image_id``: the newest request wins, one decode at a time."""
        self._wanted_lesion = image_id
        self._lesion_request += 1
        self.lesion_view.show_loading(image_id)
        if self._lesion_worker is not None:
            self._lesion_worker.quit()  # stops at its next file; finished starts the wanted one
            return
        self._start_lesion_worker(image_id)

    def _start_lesion_worker(self, image_id: str) -> None:
        assert self.dataset is not None
        worker = lesion_worker(self.dataset.lesion(image_id), self._on_lesion_worker_errored)
        worker.yielded.connect(self._on_lesion_worker_yielded)
        worker.returned.connect(self._on_lesion_worker_returned)
        worker.finished.connect(self._on_lesion_worker_finished)
        self._lesion_worker = worker
        self._lesion_worker_id = image_id
        self._lesion_worker_request = self._lesion_request
        worker.start()

    # -- slots --------------------------------------------------------------

    def _on_splitter_splitter_moved(self, _pos: int, _index: int) -> None:
        self._splitter_sized = True  # the user's choice now; keep it

    def _on_open_action_triggered(self) -> None:
        start = str(self.dataset.root.parent) if self.dataset is not None else str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Open dataset folder", start)
        if path:
            self.open_dataset(path)

    def _on_open_demo_action_triggered(self) -> None:
        self.open_dataset(None)

    def _on_about_action_triggered(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}", about_text())

    def _on_dataset_worker_returned(self, indexed: IndexedDataset) -> None:
        if self._lesion_worker is not None:
            self._lesion_worker.quit()
        self._wanted_lesion = None
        self._lesion_request += 1  # drops any result still coming for the old dataset
        self.dataset = indexed.dataset
        self.lesion_view.clear()
        self.table.set_frame(indexed.table)
        if not self._splitter_sized:
            table_width = min(self.table.preferred_width(), self.width() // 2)
            self.splitter.setSizes([table_width, max(self.width() - table_width, 1)])
        self._show_counts(indexed)
        name = indexed.dataset.name or indexed.dataset.root.name
        self.setWindowTitle(f"{name} — {APP_NAME}")
        self.dataset_loaded.emit(indexed)
        if self.table.row_count() and self.table.current_image_id() is None:
            self.table.select_row(0)  # unless a dataset_loaded slot chose a lesion
        self.table.view.setFocus()

    def _on_dataset_worker_errored(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, IAAError) else self._unexpected(exc, "opening the dataset")
        self._set_task("Could not open the dataset")
        QMessageBox.critical(self, "Cannot open dataset", message)
        self.dataset_failed.emit(message)

    def _on_dataset_worker_finished(self) -> None:
        self._dataset_worker = None
        self.open_action.setEnabled(True)
        self.open_demo_action.setEnabled(demo_available())
        if self._lesion_worker is None and self.task_label.text().startswith("Loading"):
            self._set_task("Ready")

    def _on_table_lesion_selected(self, image_id: str) -> None:
        if self.dataset is not None:
            self._request_lesion(image_id)

    def _on_lesion_worker_yielded(self, progress: Progress) -> None:
        self._set_task(f"Decoding {progress.message} ({progress.done}/{progress.total})")

    def _on_lesion_worker_returned(self, overlay: LesionOverlay) -> None:
        if self._lesion_worker_request != self._lesion_request or self.dataset is None:
            return  # a stale result: the user has moved on
        self.lesion_view.show_overlay(overlay, self.dataset.lesion(overlay.image_id))
        self.lesion_shown.emit(overlay.image_id)

    def _on_lesion_worker_errored(self, exc: BaseException) -> None:
        if self._lesion_worker_request != self._lesion_request:
            log.info("error for a lesion no longer wanted", exc_info=exc)
            return
        image_id = self._lesion_worker_id or "?"
        message = str(exc) if isinstance(exc, IAAError) else self._unexpected(exc, f"decoding {image_id}")
        self.lesion_view.clear(f"{image_id}: {message}")
        self.statusBar().showMessage(message, 10_000)

    def _on_lesion_worker_finished(self) -> None:
        finished_request = self._lesion_worker_request
        self._lesion_worker = None
        self._lesion_worker_id = None
        if self._wanted_lesion is not None and finished_request != self._lesion_request:
            self._start_lesion_worker(self._wanted_lesion)
        elif self._dataset_worker is None:
            self._set_task("Ready")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self._save_geometry()
        self._wanted_lesion = None
        for worker in (self._lesion_worker, self._dataset_worker):
            if worker is not None:
                worker.quit()
        # Let workers end before the window (their signals' receiver) goes away.
        QThreadPool.globalInstance().waitForDone(CLOSE_WAIT_MS)
        super().closeEvent(event)
