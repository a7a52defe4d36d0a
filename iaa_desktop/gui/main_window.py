"""The main window: the lesion view in the middle, the browser and panels in docks around it.

Loading a dataset, decoding a lesion and analysing the whole dataset run in
worker threads (``iaa_desktop.gui.workers``); the window only starts them,
shows their progress (with Cancel) and draws their results. A dataset that
cannot be read gives a message box and leaves the window as it was.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import PySide6
from PySide6.QtCore import QByteArray, QSettings, Qt, QThreadPool, Signal, qVersion
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabBar,
    QWidget,
)

from iaa_desktop._version import __version__
from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.dataset.qa import qa_summary
from iaa_desktop.core.display.browser_table import BrowserData, base_frame
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress
from iaa_desktop.gui import recent
from iaa_desktop.gui.dataset_panels import DatasetPanels
from iaa_desktop.gui.lesion_workers import LesionLoader
from iaa_desktop.gui.training_panels import TrainingPanels
from iaa_desktop.gui.widgets.lesion_batch_export import LesionBatchExport
from iaa_desktop.gui.widgets.lesion_table import LesionTable
from iaa_desktop.gui.widgets.lesion_view import LesionView
from iaa_desktop.gui.widgets.reviewed_export import ReviewedExport
from iaa_desktop.gui.workers import IndexedDataset, analysis_worker, dataset_worker

log = logging.getLogger(__name__)

APP_NAME = "IAA Desktop"
#: Longest the window waits for running workers when it closes, in ms.
CLOSE_WAIT_MS = 5000
#: Bump when docks are added or renamed: an older saved layout is then ignored.
LAYOUT_VERSION = 2
LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea


def demo_available() -> bool:
    """Whether the demo dataset generator is installed."""
    return importlib.util.find_spec("iaa_desktop.core.dataset.demo") is not None


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


def dropped_folder(event: QDragEnterEvent | QDropEvent) -> str | None:
    """The local folder being dragged onto the window, if it is exactly one folder."""
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = Path(urls[0].toLocalFile())
    return str(path) if path.is_dir() else None


class MainWindow(QMainWindow):
    """The application window.

    Parameters
    ----------
    settings
        Where geometry, dock layout and recent datasets are kept; the
        application's default ``QSettings`` when ``None`` (tests pass one
        backed by a temporary file).
    log_path
        The log file, named in messages about unexpected errors.
    analysis_workers
        Processes for the dataset analysis (default: every core).
    """

    #: An ``IndexedDataset`` was loaded and is shown.
    dataset_loaded = Signal(object)
    #: Opening a dataset failed; carries the message shown.
    dataset_failed = Signal(str)
    #: A lesion's image and exact outlines are drawn (after a first view, if any); carries its image id.
    lesion_shown = Signal(str)
    #: The dataset analysis (agreement + QA) finished; carries the ``DatasetAnalysis``.
    analysis_ready = Signal(object)

    def __init__(self, settings: QSettings | None = None, log_path: Path | None = None,
                 parent: QWidget | None = None, analysis_workers: int | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.log_path = log_path
        self.analysis_workers = analysis_workers
        self.dataset: Dataset | None = None
        self.analysis = None
        self._dataset_worker = None
        self._dataset_path: str | None = None
        self._analysis_worker = None
        # Requests are numbered so that a result for an older dataset is dropped.
        self._analysis_request = 0

        self.setWindowTitle(APP_NAME)
        self.setObjectName("main_window")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.lesion_view = LesionView(self)
        self.setCentralWidget(self.lesion_view)
        self.lesion_loader = LesionLoader(parent=self)
        self.lesion_loader.loading.connect(self._on_lesion_loader_loading)
        self.lesion_loader.preview.connect(self.lesion_view.show_preview)
        self.lesion_loader.loaded.connect(self._on_lesion_loader_loaded)
        self.lesion_loader.failed.connect(self._on_lesion_loader_failed)
        self.lesion_view.staple_requested.connect(self.lesion_loader.request_staple)
        self.batch_export = LesionBatchExport(self)
        self.batch_export.done.connect(self._on_batch_export_done)
        self.reviewed_export = ReviewedExport(self)
        # The browser and the panels run full height; training docks (bottom) span the full width.
        self.setCorner(Qt.Corner.TopLeftCorner, LEFT)
        self.setCorner(Qt.Corner.TopRightCorner, RIGHT)
        self.setCorner(Qt.Corner.BottomLeftCorner, BOTTOM)
        self.setCorner(Qt.Corner.BottomRightCorner, BOTTOM)
        self.table = LesionTable(self)
        self.table.lesion_selected.connect(self._on_table_lesion_selected)
        self.docks: dict[str, QDockWidget] = {}
        self.browser_dock = self.add_dock("browser", "Lesions", self.table, LEFT)
        self.panels = DatasetPanels(self)
        self.training = TrainingPanels(self)

        self._build_menus()
        self._build_view_shortcuts()
        self._build_status_bar()
        self._restore_geometry()

    # -- public API ---------------------------------------------------------

    def add_dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea,
                 tabify_with: str | None = None) -> QDockWidget:
        """Put ``widget`` in a dock (its layout is saved and restored by ``name``)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        if tabify_with is not None and tabify_with in self.docks:
            self.tabifyDockWidget(self.docks[tabify_with], dock)
            self.keep_tab_titles_whole()
        self.docks[name] = dock
        if hasattr(self, "view_menu"):
            self.view_menu.addAction(dock.toggleViewAction())
        return dock

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
        self._dataset_path = None if path is None else str(path)
        worker = dataset_worker(path, self._on_dataset_worker_errored)
        worker.returned.connect(self._on_dataset_worker_returned)
        worker.finished.connect(self._on_dataset_worker_finished)
        self._dataset_worker = worker
        worker.start()
        return True

    def open_default(self) -> None:
        """Reopen the last dataset, else the demo, else say how to open one."""
        last = recent.last_dataset(self.settings)
        if last is not None:
            self.open_dataset(last)
        elif demo_available():
            self.open_dataset(None)
        else:
            self._set_task("No dataset open: use File > Open dataset… (Ctrl+O)")

    def is_busy(self) -> bool:
        """Whether a worker is running."""
        workers = (self._dataset_worker, self._analysis_worker)
        return (any(w is not None for w in workers) or self.lesion_loader.is_busy()
                or self.panels.is_busy())

    def cancel_analysis(self) -> None:
        """Stop the dataset analysis at its next lesion (what is done stays cached)."""
        if self._analysis_worker is not None:
            self._set_task("Cancelling the analysis…")
            self._analysis_worker.quit()

    def show_lesion(self, image_id: str) -> bool:
        """Make ``image_id`` the current lesion (clearing browser filters that hide it)."""
        return self.table.select_image(image_id)

    # -- building -----------------------------------------------------------

    def _action(self, text: str, slot, shortcut: QKeySequence | str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action("&Open dataset…", self._on_open_action_triggered,
                                        QKeySequence.StandardKey.Open,
                                        "Open a dataset folder (IMA++ release or folder layout)")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._on_recent_menu_about_to_show)
        self.open_demo_action = self._action("Open &demo dataset", self._on_open_demo_action_triggered)
        self.open_demo_action.setEnabled(demo_available())
        file_menu.addAction(self.open_demo_action)
        file_menu.addSeparator()
        self.export_menu = file_menu.addMenu("&Export")
        self.export_table_action = self._action("Lesion table as &CSV…",
                                                self._on_export_table_action_triggered,
                                                tip="Save the browser's rows, as filtered and sorted")
        self.export_menu.addAction(self.export_table_action)
        self.export_view_action = self._action("Lesion &view as PNG, SVG or PDF…",
                                               self._on_export_view_action_triggered, "Ctrl+E",
                                               "Save the lesion view as shown, with its legend")
        self.export_menu.addAction(self.export_view_action)
        self.export_figures_action = self._action("Overlay &figures of the listed lesions…",
                                                  self._on_export_figures_action_triggered, "Ctrl+Shift+E",
                                                  "One journal-style overlay figure per lesion listed in "
                                                  "the browser (progress, Cancel)")
        self.export_menu.addAction(self.export_figures_action)
        self.export_reviewed_action = self._action(
            "&Reviewed dataset…", self._on_export_reviewed_action_triggered,
            tip="A folder-layout dataset of what reviewers decided: each lesion's chosen reference "
                "(STAPLE where none), lesions marked 'exclude' left out, the reviews in metadata.csv")
        self.export_menu.addAction(self.export_reviewed_action)
        file_menu.addSeparator()
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        file_menu.addAction(self.quit_action)

        self.view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            self.view_menu.addAction(dock.toggleViewAction())
        self.find_action = self._action("&Find lesion", self._on_find_action_triggered, "Ctrl+F",
                                        "Filter the lesion list")
        self.view_menu.addAction(self.find_action)
        self.view_menu.addSeparator()

        self.analysis_menu = self.menuBar().addMenu("&Analysis")
        self.reanalyse_action = self._action("&Compute agreement and QA",
                                             self._on_reanalyse_action_triggered, "F5",
                                             "Compute (or read from the cache) every lesion's agreement")
        self.analysis_menu.addAction(self.reanalyse_action)
        self.worst_action = self._action("Go to the &lowest-agreement lesion",
                                         self._on_worst_action_triggered, "Ctrl+L")
        self.analysis_menu.addAction(self.worst_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.training.build_menu(help_menu.menuAction())
        self.about_action = self._action("&About IAA Desktop", self._on_about_action_triggered)
        help_menu.addAction(self.about_action)

    def _build_view_shortcuts(self) -> None:
        """The lesion view's keys (1-9, 0, F, M, S, D, Esc) work wherever the focus is in the window.

        Text fields still get their characters: a line edit claims plain printable keys
        before a shortcut sees them.
        """
        keys = [*range(Qt.Key.Key_1, Qt.Key.Key_9 + 1), Qt.Key.Key_0, Qt.Key.Key_QuoteLeft, Qt.Key.Key_F,
                Qt.Key.Key_M, Qt.Key.Key_S, Qt.Key.Key_D, Qt.Key.Key_Escape]
        self.view_shortcuts = []
        for key in keys:
            shortcut = QShortcut(QKeySequence(int(key)), self)
            shortcut.activated.connect(lambda key=int(key): self.lesion_view.handle_key(key))
            self.view_shortcuts.append(shortcut)

    def _build_status_bar(self) -> None:
        self.task_label = QLabel("Ready", self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the analysis (what is computed so far is kept in the cache)")
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.counts_label = QLabel("No dataset open", self)
        self.problems_label = QLabel("", self)
        self._loader_problems: tuple[int, dict[str, int]] = (0, {})
        bar = self.statusBar()
        bar.addWidget(self.task_label, 1)
        bar.addWidget(self.progress_bar)
        bar.addWidget(self.cancel_button)
        bar.addPermanentWidget(self.counts_label)
        bar.addPermanentWidget(self.problems_label)
        self._show_progress(None)

    def _show_progress(self, progress: Progress | None) -> None:
        on = progress is not None
        self.progress_bar.setVisible(on)
        self.cancel_button.setVisible(on)
        if on:
            self.progress_bar.setRange(0, max(progress.total, 1))
            self.progress_bar.setValue(progress.done)

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("main_window/geometry")
        restored = isinstance(geometry, QByteArray | bytes) and self.restoreGeometry(geometry)
        if not restored:
            # 1400 x 860, but never more than the screen (a 1280 x 800 laptop).
            available = self.screen().availableGeometry()
            self.resize(min(1400, available.width()), min(860, available.height()))
        self.restore_layout()

    def keep_tab_titles_whole(self) -> None:
        """Dock tabs show their whole titles (Qt elides "Review" to "Re..." in a narrow dock; a
        tab bar too narrow for all its tabs scrolls instead)."""
        for bar in self.findChildren(QTabBar):
            bar.setElideMode(Qt.TextElideMode.ElideNone)
            bar.setUsesScrollButtons(True)

    def restore_layout(self) -> bool:
        """Restore the saved dock layout (call again after adding docks)."""
        state = self.settings.value("main_window/state")
        if isinstance(state, QByteArray | bytes):
            restored = self.restoreState(state, LAYOUT_VERSION)
            self.keep_tab_titles_whole()  # restoring may make new tab bars
            return restored
        # Default layout: the browser on the left, the lesion view in the middle, the panels
        # (pair heatmap, plots, review, problems) as tabs on the right, all full height.
        self.resizeDocks([self.browser_dock, self.docks["pairs"]], [380, 430], Qt.Orientation.Horizontal)
        return False

    def _save_geometry(self) -> None:
        self.settings.setValue("main_window/geometry", self.saveGeometry())
        self.settings.setValue("main_window/state", self.saveState(LAYOUT_VERSION))
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
        self._loader_problems = (int(s["problem_count"]), dict(s["problems"]))
        self._show_problem_counts({})

    def _show_problem_counts(self, qa: dict[str, dict[str, int]]) -> None:
        """Loader problems and, once the analysis ran, the QA findings (``core.qa.qa_summary``)."""
        n, by_kind = self._loader_problems
        findings = sum(sum(kinds.values()) for kinds in qa.values())
        parts = [_plural(n, "problem")] + ([_plural(findings, "QA finding")] if findings else [])
        self.problems_label.setText(" · ".join(parts))
        lines = [f"{kind}: {count}" for kind, count in by_kind.items()]
        lines += [f"QA, {severity}: {kind}: {count}" for severity, kinds in qa.items()
                  for kind, count in kinds.items()]
        self.problems_label.setToolTip("\n".join(lines) + "\n(the Problems tab lists them)" if lines
                                       else "No problems found")
        colour = "#D55E00" if n or "high" in qa else "palette(window-text)"
        self.problems_label.setStyleSheet(f"color: {colour}; padding: 0 4px;")

    def _unexpected(self, exc: BaseException, doing: str) -> str:
        log.error("unexpected error while %s", doing, exc_info=exc)
        where = f" Details are in the log file {self.log_path}." if self.log_path else ""
        return f"Unexpected error while {doing}: {type(exc).__name__}: {exc}.{where}"

    def _idle_task(self) -> None:
        # Lesion decoding is shown in the lesion view itself, not as the window's task.
        if self._dataset_worker is None and self._analysis_worker is None:
            self._set_task("Ready")

    # -- dataset analysis ---------------------------------------------------

    def start_analysis(self) -> bool:
        """Compute agreement and QA of the open dataset in the background (progress bar, Cancel)."""
        if self.dataset is None or self._analysis_worker is not None:
            return False
        self._analysis_request += 1
        worker = analysis_worker(self.dataset, self._on_analysis_worker_errored, self.analysis_workers)
        worker.yielded.connect(self._on_analysis_worker_yielded)
        worker.returned.connect(self._on_analysis_worker_returned)
        worker.finished.connect(self._on_analysis_worker_finished)
        self._analysis_worker = worker
        self._analysis_worker_request = self._analysis_request
        self._set_task("Computing agreement…")
        self._show_progress(Progress(0, 1))
        worker.start()
        return True

    # -- lesions ------------------------------------------------------------

    def _request_lesion(self, image_id: str) -> None:
        """Show ``image_id`` (from the cache at once, else decoded; the newest request wins)."""
        self.lesion_loader.request(image_id)
        # Decode the neighbours ahead, so that arrow keys find them ready.
        ids = self.table.shown_image_ids()
        row = self.table.model.row_of(image_id)
        if row is not None:
            self.lesion_loader.prefetch([ids[r] for r in (row + 1, row - 1) if 0 <= r < len(ids)])

    # -- slots --------------------------------------------------------------

    def _on_open_action_triggered(self) -> None:
        start = str(self.dataset.root.parent) if self.dataset is not None else str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Open dataset folder", start)
        if path:
            self.open_dataset(path)

    def _on_open_demo_action_triggered(self) -> None:
        self.open_dataset(None)

    def _on_recent_menu_about_to_show(self) -> None:
        self.recent_menu.clear()
        paths = recent.recent_datasets(self.settings)
        for i, path in enumerate(paths):
            action = self.recent_menu.addAction(f"&{i + 1}  {path}")
            action.triggered.connect(lambda _checked=False, p=path: self.open_dataset(p))
        if not paths:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def _on_about_action_triggered(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}", about_text())

    def _on_find_action_triggered(self) -> None:
        self.browser_dock.show()
        self.browser_dock.raise_()
        self.table.filter_edit.setFocus()
        self.table.filter_edit.selectAll()

    def _on_reanalyse_action_triggered(self) -> None:
        self.start_analysis()

    def _on_worst_action_triggered(self) -> None:
        from iaa_desktop.core.display.browser_table import lowest_iaa_image

        data = self.table.data()
        image_id = lowest_iaa_image(data.frame()) if data is not None else None
        if image_id is None:
            self.statusBar().showMessage("No lesion has an IAA yet (it needs 2 or more readable masks)", 6000)
        else:
            self.show_lesion(image_id)

    def _on_export_table_action_triggered(self) -> None:
        from iaa_desktop.core.agreement.table_io import write_table

        if self.table.data() is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the lesion table", "lesions.csv", "CSV (*.csv)")
        if not path:
            return
        frame = self.table.model.frame().iloc[self.table.model.shown_positions()]
        try:
            write_table(frame.drop(columns=["tools", "skills"], errors="ignore"), path)
        except (OSError, IAAError) as exc:
            QMessageBox.critical(self, "Cannot export the table", f"{path}: {exc}")
            return
        self.statusBar().showMessage(f"Saved {len(frame):,} rows to {path}", 6000)

    def _on_dataset_worker_returned(self, indexed: IndexedDataset) -> None:
        if self._analysis_worker is not None:
            self._analysis_worker.quit()
        self._analysis_request += 1  # drops the old dataset's analysis result
        self.lesion_loader.set_dataset(indexed.dataset)  # drops what was coming for the old one
        self.dataset = indexed.dataset
        self.analysis = None
        self.lesion_view.clear()
        reviews = self.panels.dataset_loaded(indexed.dataset)
        self.training.dataset_loaded(indexed.dataset)
        self.table.set_data(BrowserData(base_frame(indexed.dataset), reviews=reviews))
        self._show_counts(indexed)
        name = indexed.dataset.name or indexed.dataset.root.name
        self.setWindowTitle(f"{name} — {APP_NAME}")
        if self._dataset_path is None:
            recent.forget_last(self.settings)
        else:
            recent.remember_dataset(self.settings, self._dataset_path)
        self.dataset_loaded.emit(indexed)
        if self.table.row_count() and self.table.current_image_id() is None:
            self.table.select_row(0)  # unless a dataset_loaded slot chose a lesion
        self.table.view.setFocus()
        if self._analysis_worker is None:
            self.start_analysis()
        else:
            self._restart_analysis = True

    def _on_dataset_worker_errored(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, IAAError) else self._unexpected(exc, "opening the dataset")
        self._set_task("Could not open the dataset")
        QMessageBox.critical(self, "Cannot open dataset", message)
        self.dataset_failed.emit(message)

    def _on_dataset_worker_finished(self) -> None:
        self._dataset_worker = None
        self.open_action.setEnabled(True)
        self.open_demo_action.setEnabled(demo_available())
        if self.task_label.text().startswith("Loading"):
            self._idle_task()

    def _on_analysis_worker_yielded(self, progress: Progress) -> None:
        if self._analysis_worker_request != self._analysis_request:
            return
        self._show_progress(progress)
        self._set_task(f"{progress.message} ({progress.done:,}/{progress.total:,})")

    def _on_analysis_worker_returned(self, analysis) -> None:
        if self._analysis_worker_request != self._analysis_request or self.dataset is None:
            return
        self.analysis = analysis
        self._show_problem_counts(qa_summary(analysis.qa))
        data = self.table.data()
        if data is not None:
            self.table.set_data(BrowserData(data.base, analysis.browser_agreement, analysis.qa_flags,
                                            data.predictions, data.reviews))
            self.panels.analysis_ready(analysis, data.base)
            self.training.analysis_ready(analysis)
        self.analysis_ready.emit(analysis)

    def _on_analysis_worker_errored(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, IAAError) else self._unexpected(exc, "computing the agreement")
        self.statusBar().showMessage(message, 10_000)

    def _on_analysis_worker_finished(self) -> None:
        self._analysis_worker = None
        self._show_progress(None)
        if getattr(self, "_restart_analysis", False):
            self._restart_analysis = False
            self.start_analysis()
            return
        if self.analysis is None and self.dataset is not None:
            self._set_task("Analysis stopped: F5 computes it again (finished lesions come from the cache)")
        else:
            self._idle_task()

    def _on_table_lesion_selected(self, image_id: str) -> None:
        if self.dataset is not None:
            self._request_lesion(image_id)
            self.panels.lesion_selected(image_id)

    def _on_lesion_loader_loading(self, image_id: str) -> None:
        self.lesion_view.show_loading(image_id)

    def _on_lesion_loader_loaded(self, display) -> None:
        if self.dataset is None:
            return
        self.lesion_view.show_overlay(display, self.dataset.lesion(display.image_id))
        self._idle_task()
        if display.exact:  # a first view is followed by the exact display: say it once
            self.lesion_shown.emit(display.image_id)

    def _on_lesion_loader_failed(self, image_id: str, message: str) -> None:
        if image_id != self.table.current_image_id():
            return  # a lesion decoded ahead, not the one on screen
        self.lesion_view.clear(f"{image_id}: {message}")
        self.statusBar().showMessage(message, 10_000)
        self._idle_task()

    def _on_export_view_action_triggered(self) -> None:
        if self.lesion_view.image_id is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the lesion view", f"{self.lesion_view.image_id}.png",
            "PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)")
        if not path:
            return
        try:
            self.lesion_view.export(path)
        except (OSError, IAAError, ValueError) as exc:
            QMessageBox.critical(self, "Cannot export the lesion view", f"{path}: {exc}")
            return
        self.statusBar().showMessage(f"Saved {path}", 6000)

    def _on_export_figures_action_triggered(self) -> None:
        if self.dataset is not None:
            self.batch_export.ask_and_start(self.dataset, self.table.shown_image_ids())

    def _on_export_reviewed_action_triggered(self) -> None:
        if self.dataset is not None:
            self.reviewed_export.ask_and_start(self.dataset, self.panels.reviews())

    def _on_batch_export_done(self, result) -> None:
        if result is not None:
            skipped = f", {len(result.skipped)} skipped (see the log)" if result.skipped else ""
            for image_id, reason in result.skipped:
                log.warning("figure of %s not written: %s", image_id, reason)
            self.statusBar().showMessage(
                f"Wrote {len(result.written)} figure file(s) to {result.out_dir}{skipped}", 10_000)

    # -- Qt events ----------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if dropped_folder(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        folder = dropped_folder(event)
        if folder is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_dataset(folder)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self._save_geometry()
        self.panels.close()
        self.training.shutdown()
        self.lesion_loader.cancel()
        for worker in (self._dataset_worker, self._analysis_worker):
            if worker is not None:
                worker.quit()
        # Let workers end before the window (their signals' receiver) goes away.
        QThreadPool.globalInstance().waitForDone(CLOSE_WAIT_MS)
        super().closeEvent(event)
