"""The runs panel: every run of the workspace, and a comparison of the runs selected.

Runs are read back from ``<workspace>/runs`` by ``core.run_records.scan_runs``
(in a worker), so the panel shows the same after a restart. Selecting several
runs fills the comparison (``core.training.run_comparison.comparison_table``: mean ± SD per
task × backbone over seeds) as a table and a bar plot; both export through core
(CSV; the journal-style figure as PNG, SVG and PDF).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.figures.export import export_figure
from iaa_desktop.core.palette import OKABE_ITO
from iaa_desktop.core.training.run_comparison import (
    comparison_figure,
    comparison_groups,
    comparison_table,
    write_comparison_csv,
)
from iaa_desktop.core.training.run_records import (
    BASELINE_LABEL,
    METRICS,
    MODE_LABELS,
    RunRecord,
    records_frame,
    scan_runs,
)
from iaa_desktop.core.training.slurm_login import is_slurm_run

_Index = QModelIndex | QPersistentModelIndex
_BASELINE_PEN = pg.mkPen("#222", width=2, style=Qt.PenStyle.DashLine)
_TASK_COLOURS = {"IAA regressor": OKABE_ITO["bluish_green"], "Diagnosis only": OKABE_ITO["blue"],
                 "Multi-task": OKABE_ITO["vermillion"]}
HEADERS = {"run": "Run", "task": "Task", "backbone": "Backbone", "seed": "Seed", "status": "Status",
           "epochs": "Epochs", "best_epoch": "Best epoch", "val_balanced_accuracy": "Val bal. acc.",
           "val_mae": "Val MAE", "test_balanced_accuracy": "Test bal. acc.", "test_mae": "Test MAE",
           "val_baseline_mae": "Val MAE, constant", "test_baseline_mae": "Test MAE, constant",
           "mae_ratio": "MAE / constant", "baseline_mae": "Constant MAE",
           "duration": "Duration", "device": "Device", "training_set": "Training set", "message": "Message",
           "n": "n", "mean": "Mean", "sd": "SD", "seeds": "Seeds", "values": "Values", "runs": "Runs"}


def _scan(token: int, workspace: Path, running: tuple) -> tuple[int, list[RunRecord]]:
    return token, scan_runs(workspace, running=running)


class FrameModel(QAbstractTableModel):
    """A read-only view of a DataFrame (numbers shown with 4 significant digits)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.frame = pd.DataFrame()

    def set_frame(self, frame: pd.DataFrame) -> None:
        self.beginResetModel()
        self.frame = frame.reset_index(drop=True)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.frame)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.frame.columns)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        value = self.frame.iat[index.row(), index.column()]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, (float, np.floating)):
            return f"{float(value):.4g}"
        if isinstance(value, (np.integer,)):
            return int(value)
        return str(value)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            name = str(self.frame.columns[section])
            return HEADERS.get(name, name)
        return section + 1


#: Statuses a run can be cancelled in.
CANCELLABLE = ("running", "queued")


def _table(parent: QWidget, multi: bool) -> tuple[QTableView, FrameModel]:
    view = QTableView(parent)
    model = FrameModel(view)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection if multi
                          else QAbstractItemView.SelectionMode.NoSelection)
    view.verticalHeader().setVisible(False)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 8)
    return view, model


class RunsPanel(QWidget):
    """Every run of a workspace; select several to compare them."""

    #: Records were (re)loaded; carries the list of ``RunRecord``.
    runs_loaded = Signal(list)
    #: The current run changed; carries its ``RunRecord``.
    run_selected = Signal(object)
    #: The user asked to resume a run; carries its directory.
    resume_requested = Signal(str)
    #: The user asked (and confirmed) to cancel a queued or running run; carries its directory.
    cancel_requested = Signal(str)
    #: The user asked to run a model on the loaded dataset; carries its run directory.
    predict_requested = Signal(str)
    #: The comparison changed; carries the comparison DataFrame.
    comparison_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace: Path | None = None
        self.records: list[RunRecord] = []
        self.running: set[str] = set()
        self.comparison = pd.DataFrame()
        self._worker = None
        self._scan_token = 0

        self.runs_view, self.runs_model = _table(self, multi=True)
        self.runs_view.selectionModel().selectionChanged.connect(self._on_runs_selection_changed)
        self.compare_view, self.compare_model = _table(self, multi=False)
        self.metric_combo = QComboBox(self)
        for name, (label, _) in METRICS.items():
            self.metric_combo.addItem(label, name)
        self.metric_combo.currentIndexChanged.connect(self._on_runs_selection_changed)
        self.source_combo = QComboBox(self)
        self.source_combo.addItem("test split (best checkpoint)", "test")
        self.source_combo.addItem("validation (best epoch)", "val")
        self.source_combo.currentIndexChanged.connect(self._on_runs_selection_changed)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self.cancel_button = QPushButton("Cancel run…", self)
        self.cancel_button.setToolTip("Stop the selected run (a queued or running Slurm job is scancel-ed); "
                                      "its finished epochs stay saved and Resume goes on from them")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.runs_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.runs_view.customContextMenuRequested.connect(self._on_runs_view_context_menu)
        self.predict_button = QPushButton("Run on dataset", self)
        self.predict_button.setToolTip("Predict IAA / malignancy (and Grad-CAM) for the loaded dataset")
        self.predict_button.clicked.connect(self._on_predict_button_clicked)
        self.export_csv_button = QPushButton("Export CSV…", self)
        self.export_csv_button.clicked.connect(self._on_export_csv_button_clicked)
        self.export_figure_button = QPushButton("Export figure…", self)
        self.export_figure_button.clicked.connect(self._on_export_figure_button_clicked)
        self.summary_label = QLabel("No workspace", self)

        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("left", "Balanced accuracy")
        self.plot.showGrid(y=True, alpha=0.25)
        self.plot.addLegend(offset=(10, 5), labelTextColor="#222")
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # "IAA MAE (x0.001)" reads badly
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("#222")
            self.plot.getAxis(axis).setPen("#666")
        self.plot.setMouseEnabled(x=False, y=False)

        buttons = QHBoxLayout()
        for widget in (self.refresh_button, self.resume_button, self.cancel_button, self.predict_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.summary_label)
        compare_bar = QHBoxLayout()
        compare_bar.addWidget(QLabel("Compare", self))
        compare_bar.addWidget(self.metric_combo)
        compare_bar.addWidget(QLabel("on", self))
        compare_bar.addWidget(self.source_combo)
        compare_bar.addStretch(1)
        compare_bar.addWidget(self.export_csv_button)
        compare_bar.addWidget(self.export_figure_button)
        compare = QSplitter(self)
        compare.addWidget(self.compare_view)
        compare.addWidget(self.plot)
        compare.setStretchFactor(1, 1)
        compare.setSizes([460, 640])
        lower = QWidget(self)
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addLayout(compare_bar)
        lower_layout.addWidget(compare, 1)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.runs_view)
        splitter.addWidget(lower)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(splitter, 1)
        self._update_buttons()

    # -- public API ---------------------------------------------------------

    def set_workspace(self, workspace: str | Path | None) -> None:
        """Show the runs of ``workspace`` (read in a worker; ``runs_loaded`` when done)."""
        self.workspace = None if workspace is None else Path(workspace)
        self.refresh()

    def set_running(self, run_dirs) -> None:
        """The run directories this app is training now (shown as running)."""
        self.running = {str(Path(p)) for p in run_dirs}

    def refresh(self) -> None:
        if self.workspace is None:
            self._scan_token += 1
            self._on_worker_returned((self._scan_token, []))
            return
        self.summary_label.setText("Reading runs…")
        self._scan_token += 1
        # Bound methods, not lambdas: Qt drops the connections if the panel is deleted first.
        worker = create_worker(_scan, self._scan_token, self.workspace, tuple(self.running),
                               _start_thread=False, _connect={"returned": self._on_worker_returned,
                                         "errored": self._on_worker_errored})
        self._worker = worker
        worker.start()

    def is_loading(self) -> bool:
        """Whether a scan of the workspace is under way."""
        return self._worker is not None

    def select_runs(self, run_ids) -> None:
        """Select the runs with these ids (as the user would)."""
        wanted = set(run_ids)
        view = self.runs_view
        view.clearSelection()
        mode = view.selectionMode()
        view.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row, record in enumerate(self.records):
            if record.run_id in wanted:
                view.selectRow(row)
        view.setSelectionMode(mode)

    def selected_records(self) -> list[RunRecord]:
        rows = sorted({index.row() for index in self.runs_view.selectionModel().selectedRows()})
        return [self.records[row] for row in rows if row < len(self.records)]

    def chosen_metric(self) -> str:
        """The metric compared (not ``metric``: that name would override ``QWidget.metric``,
        which Qt calls with a paint-device metric when it grabs or paints the widget)."""
        return str(self.metric_combo.currentData())

    def set_metric(self, metric: str) -> None:
        self.metric_combo.setCurrentIndex(max(0, self.metric_combo.findData(metric)))

    def export_comparison_csv(self, path: str | Path) -> Path:
        return write_comparison_csv(self.comparison, path)

    def export_comparison_figure(self, stem: str | Path, formats=("png", "svg", "pdf")) -> list[Path]:
        figure = comparison_figure(self.comparison, self.chosen_metric())
        return export_figure(figure, stem, formats)

    # -- internals ----------------------------------------------------------

    def _on_worker_returned(self, result: tuple[int, list]) -> None:
        token, records = result
        if token != self._scan_token:
            return  # a newer refresh is under way: its result wins
        self._worker = None
        self.records = list(records)
        self.runs_model.set_frame(records_frame(self.records))
        self.runs_view.resizeColumnsToContents()
        for column in range(self.runs_model.columnCount()):
            self.runs_view.setColumnWidth(column, min(260, self.runs_view.columnWidth(column)))
        counts = pd.Series([r.status for r in self.records]).value_counts()
        self.summary_label.setText(f"{len(self.records)} run(s)" + (
            ": " + ", ".join(f"{n} {s}" for s, n in counts.items()) if len(counts) else ""))
        self._on_runs_selection_changed()
        self.runs_loaded.emit(self.records)

    def _on_worker_errored(self, exc: BaseException) -> None:
        self._worker = None
        self.summary_label.setText(f"Cannot read the runs: {exc}")

    def _on_runs_selection_changed(self, *_args) -> None:
        selected = self.selected_records()
        if selected:
            self.run_selected.emit(selected[-1])
        try:
            source = str(self.source_combo.currentData())
            self.comparison = comparison_table(selected, self.chosen_metric(), source)
        except IAAError:
            self.comparison = pd.DataFrame()
        self.compare_model.set_frame(self.comparison)
        self.compare_view.resizeColumnsToContents()
        for column in range(self.compare_model.columnCount()):
            self.compare_view.setColumnWidth(column, min(150, self.compare_view.columnWidth(column)))
        self._draw_comparison()
        self._update_buttons()
        self.comparison_changed.emit(self.comparison)

    def _draw_comparison(self) -> None:
        self.plot.clear()
        self.plot.plotItem.legend.clear()
        table = self.comparison
        self.plot.setLabel("left", METRICS[self.chosen_metric()][0])
        if table.empty:
            self.plot.getAxis("bottom").setTicks([[]])
            return
        groups = comparison_groups(table)
        backbones = list(dict.fromkeys(groups))
        tasks = [t for t in MODE_LABELS.values() if t in set(table["task"])]
        width = 0.8 / len(tasks)
        for i, task in enumerate(tasks):
            part = table[table["task"] == task]
            xs = np.array([backbones.index(b) - 0.4 + width * (i + 0.5) for b in groups[part.index]])
            means = part["mean"].to_numpy(dtype=float)
            sds = np.nan_to_num(part["sd"].to_numpy(dtype=float))
            colour = _TASK_COLOURS.get(task, "#999")
            self.plot.addItem(pg.BarGraphItem(x=xs, height=means, width=width * 0.9, brush=colour,
                                              pen=pg.mkPen("#222", width=1), name=task))
            self.plot.addItem(pg.ErrorBarItem(x=xs, y=means, height=2 * sds, beam=width * 0.3,
                                              pen=pg.mkPen("#222", width=1.5)))
            for x, values in zip(xs, part["values"], strict=True):
                ys = [float(v) for v in str(values).split(";") if v]
                self.plot.plot([x] * len(ys), ys, pen=None, symbol="o", symbolSize=6, symbolBrush="#222",
                               symbolPen=None)
            self._draw_baseline(xs, part, width)
        if self.chosen_metric() == "mae_ratio":  # the constant is 1 on this scale
            self.plot.addItem(pg.InfiniteLine(1.0, angle=0, pen=_BASELINE_PEN))
            self.plot.plot([], [], pen=_BASELINE_PEN, name=BASELINE_LABEL)
        self.plot.getAxis("bottom").setTicks([[(j, b.replace("\n", " / ")) for j, b in enumerate(backbones)]])
        self.plot.setXRange(-0.6, len(backbones) - 0.4, padding=0)
        high = max(1.0, float(np.nanmax(table["mean"] + np.nan_to_num(table["sd"]))) * 1.1) \
            if METRICS[self.chosen_metric()][1] and self.chosen_metric() != "pearson" else None
        if high is not None:
            self.plot.setYRange(0, high, padding=0)
        else:
            self.plot.enableAutoRange(axis="y")

    def _draw_baseline(self, xs: np.ndarray, part: pd.DataFrame, width: float) -> None:
        """A dashed mark over each MAE bar at the training-median constant's MAE (drawn, not computed)."""
        if "baseline_mae" not in part.columns:
            return
        named = any(item.name() == BASELINE_LABEL for item in self.plot.plotItem.listDataItems())
        for x, constant in zip(xs, part["baseline_mae"].to_numpy(dtype=float), strict=True):
            if math.isfinite(constant):
                self.plot.plot([x - width * 0.45, x + width * 0.45], [constant, constant], pen=_BASELINE_PEN,
                               name=None if named else BASELINE_LABEL)
                named = True

    def _update_buttons(self) -> None:
        selected = self.selected_records()
        current = selected[-1] if selected else None
        self.resume_button.setEnabled(current is not None and current.resumable
                                      and str(current.run_dir) not in self.running)
        self.cancel_button.setEnabled(current is not None and current.status in CANCELLABLE)
        self.predict_button.setEnabled(current is not None and current.status == "finished")
        has = not self.comparison.empty
        self.export_csv_button.setEnabled(has)
        self.export_figure_button.setEnabled(has)

    def _on_resume_button_clicked(self) -> None:
        selected = self.selected_records()
        if selected:
            self.resume_requested.emit(str(selected[-1].run_dir))

    def _on_cancel_button_clicked(self) -> None:
        selected = self.selected_records()
        if selected and selected[-1].status in CANCELLABLE:
            self.confirm_cancel(selected[-1])

    def confirm_cancel(self, record: RunRecord) -> bool:
        """Ask before cancelling ``record``; ``cancel_requested`` when the user says yes."""
        where = "Its Slurm job is cancelled (scancel)" if is_slurm_run(record.run_dir) else \
            "Its trainer is stopped"
        answer = QMessageBox.question(
            self, "Cancel run", f"Cancel {record.run_id} ({record.status})?\n\n{where}; the epochs it has "
            "finished stay saved and Resume goes on from the last one.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.cancel_requested.emit(str(record.run_dir))
        return True

    def _on_runs_view_context_menu(self, pos) -> None:
        row = self.runs_view.indexAt(pos).row()
        if not 0 <= row < len(self.records):
            return
        record = self.records[row]
        menu = QMenu(self)
        cancel = menu.addAction("Cancel run…")
        cancel.setEnabled(record.status in CANCELLABLE)
        resume = menu.addAction("Resume")
        resume.setEnabled(record.resumable and str(record.run_dir) not in self.running)
        chosen = menu.exec(self.runs_view.viewport().mapToGlobal(pos))
        if chosen is cancel:
            self.confirm_cancel(record)
        elif chosen is resume:
            self.resume_requested.emit(str(record.run_dir))

    def _on_predict_button_clicked(self) -> None:
        selected = self.selected_records()
        if selected:
            self.predict_requested.emit(str(selected[-1].run_dir))

    def _on_export_csv_button_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison", "run-comparison.csv", "CSV (*.csv)")
        if path:
            self._export(lambda: self.export_comparison_csv(path))

    def _on_export_figure_button_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison figure (PNG, SVG and PDF)",
                                              "run-comparison.png", "Figure (*.png *.svg *.pdf)")
        if path:
            self._export(lambda: self.export_comparison_figure(Path(path).with_suffix("")))

    def _export(self, action) -> None:
        try:
            written = action()
        except (IAAError, OSError) as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return
        names = written if isinstance(written, list) else [written]
        self.summary_label.setText("Exported " + ", ".join(Path(p).name for p in names))
