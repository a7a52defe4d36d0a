"""The training monitor: live loss and validation-metric curves, progress with ETA, the log, Cancel/Resume.

It draws what it is given: events (dicts from ``events.jsonl``), turned into
curves by ``core.run_records.curves_from_events``; progress and ETA as the
``TrainerProcess`` reports them; log lines. It also shows the training-set
export step (``show_step``), whose Cancel stops the export worker.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from iaa_desktop.core.palette import OKABE_ITO
from iaa_desktop.core.progress import Progress
from iaa_desktop.core.training.run_records import BASELINE_LABEL, METRICS, curves_from_events

#: Validation metrics drawn in the second plot, by mode.
METRIC_CURVES = {
    "regression": ("mae", "pearson"),
    "classification": ("balanced_accuracy", "auroc"),
    "multitask": ("balanced_accuracy", "auroc", "mae"),
}
_COLOURS = {"train_loss": OKABE_ITO["blue"], "val_loss": OKABE_ITO["vermillion"],
            "val_balanced_accuracy": OKABE_ITO["blue"], "val_auroc": OKABE_ITO["bluish_green"],
            "val_mae": OKABE_ITO["vermillion"], "val_pearson": OKABE_ITO["reddish_purple"],
            "val_baseline_mae": "#222222"}
#: Dashed curves: validation loss, and the MAE of the training-median constant the model must beat.
_DASHED = ("val_loss", "val_baseline_mae")
LOG_LINES = 5000


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "ETA …"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"ETA {seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"ETA {seconds // 60} min {seconds % 60:02d} s"
    return f"ETA {seconds} s"


def _plot(title: str, left: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setTitle(title, color="#222", size="10pt")
    plot.setLabel("bottom", "epoch")
    plot.setLabel("left", left)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.addLegend(offset=(-10, 10), labelTextColor="#222")
    for axis in ("left", "bottom"):
        plot.getAxis(axis).setTextPen("#222")
        plot.getAxis(axis).setPen("#666")
        plot.getAxis(axis).enableAutoSIPrefix(False)  # "value (x0.001)" reads badly for metrics
    return plot


class TrainingMonitor(QWidget):
    """Curves, progress and log of the run being trained (or of a past run, replayed)."""

    #: The user pressed Cancel (the training run or the export step).
    cancel_requested = Signal()
    #: The user pressed Resume; carries the run directory shown.
    resume_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir: str | None = None
        self.mode = "multitask"
        self.events: list[dict] = []
        self.curves: dict[str, pg.PlotDataItem] = {}

        self.title_label = QLabel("No run", self)
        bold = QFont(self.title_label.font())
        bold.setBold(True)
        self.title_label.setFont(bold)
        self.status_label = QLabel("", self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("")
        self.progress_bar.setTextVisible(True)
        self.eta_label = QLabel("", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setEnabled(False)
        self.resume_button.clicked.connect(self._on_resume_button_clicked)

        self.loss_plot = _plot("Loss", "loss")
        self.metric_plot = _plot("Validation metrics", "value")
        self.log_view = QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setFont(QFont("monospace", 8))
        self.log_view.setPlaceholderText("The trainer's log appears here.")

        top = QHBoxLayout()
        top.addWidget(self.title_label, 1)
        top.addWidget(self.status_label)
        bar = QHBoxLayout()
        bar.addWidget(self.progress_bar, 1)
        bar.addWidget(self.eta_label)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.resume_button)
        plots = QSplitter(self)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.metric_plot)
        splitter = QSplitter(self)
        splitter.setOrientation(pg.QtCore.Qt.Orientation.Vertical)
        splitter.addWidget(plots)
        splitter.addWidget(self.log_view)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)

    # -- public API ---------------------------------------------------------

    def start_run(self, run_dir: str, title: str, mode: str, events: list[dict] | None = None) -> None:
        """Show a run from the start (or a past run with its ``events``)."""
        self.run_dir = str(run_dir)
        self.mode = mode
        self.events = list(events or [])
        self.title_label.setText(title)
        self.status_label.setText("running")
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting the trainer…")
        self.eta_label.setText("")
        self.set_running(True)
        for plot in (self.loss_plot, self.metric_plot):
            plot.clear()
            plot.plotItem.legend.clear()
        self.curves = {}
        self._redraw()

    def show_past_run(self, run_dir: str, title: str, mode: str, events: list[dict], status: str,
                      message: str = "", resumable: bool = False) -> None:
        """Replay a run's events (e.g. picked in the runs panel)."""
        self.start_run(run_dir, title, mode, events)
        epochs = [e for e in events if e.get("event") == "epoch_end"]
        if epochs:
            last = epochs[-1]
            done, total = int(last["epoch"]), int(last.get("epochs", last["epoch"]))
            self.set_progress(done + 1, total, math.nan)
            self.progress_bar.setFormat(f"{done} of {total} epochs")
        self.set_finished(status, message, resumable)

    def show_step(self, progress: Progress) -> None:
        """A preparation step (the training-set export) with its own progress."""
        self.status_label.setText("preparing")
        self.cancel_button.setEnabled(True)
        self.resume_button.setEnabled(False)
        self.progress_bar.setRange(0, max(1, progress.total))
        self.progress_bar.setValue(progress.done)
        self.progress_bar.setFormat(f"Training set: {progress.message} (%v/%m)")

    def add_event(self, event: dict) -> None:
        """One new event of the run shown; curves are redrawn at each epoch end."""
        self.events.append(event)
        if event.get("event") == "epoch_end":
            self._redraw()
        elif event.get("event") == "run_started" and event.get("device"):
            self.status_label.setText(f"running on {event['device']}")

    def set_progress(self, epoch: int, epochs: int, eta: float) -> None:
        """``epoch`` (1-based) is under way: the bar shows the epochs done before it."""
        if epochs <= 0:
            return
        self.progress_bar.setRange(0, epochs)
        self.progress_bar.setValue(max(0, min(epoch - 1, epochs)))
        self.progress_bar.setFormat(f"epoch {epoch} of {epochs}")
        self.eta_label.setText(format_eta(eta))

    def append_log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        if running:
            self.resume_button.setEnabled(False)

    def set_finished(self, status: str, message: str = "", resumable: bool = False) -> None:
        """The run ended: its status, why, and whether Resume is offered."""
        self.set_running(False)
        self.status_label.setText(status if not message else f"{status}: {message}")
        self.status_label.setToolTip(message)
        colour = {"finished": "#1b7f3b", "failed": "#b00020"}.get(status, "#8a5a00")
        self.status_label.setStyleSheet(f"color: {colour};")
        self.resume_button.setEnabled(resumable)
        self.eta_label.setText("")
        if status == "finished":
            self.progress_bar.setValue(self.progress_bar.maximum())
            total = self.progress_bar.maximum()
            self.progress_bar.setFormat(f"{total} of {total} epochs")

    def curve_data(self, name: str) -> tuple[list[float], list[float]]:
        """(epochs, values) drawn for a curve (``train_loss``, ``val_loss``, ``val_<metric>``)."""
        item = self.curves.get(name)
        if item is None or item.xData is None:
            return [], []
        return list(item.xData), list(item.yData)

    # -- internals ----------------------------------------------------------

    def _redraw(self) -> None:
        curves = curves_from_events(self.events)
        wanted = [("train_loss", "training", self.loss_plot), ("val_loss", "validation", self.loss_plot)]
        wanted += [(f"val_{m}", METRICS[m][0], self.metric_plot) for m in METRIC_CURVES.get(self.mode, ())]
        if "mae" in METRIC_CURVES.get(self.mode, ()):
            wanted.append(("val_baseline_mae", BASELINE_LABEL, self.metric_plot))
        for name, label, plot in wanted:
            xs, ys = curves.get(name, ([], []))
            item = self.curves.get(name)
            if item is None:
                colour = _COLOURS.get(name, "#444")
                dashed = name in _DASHED
                pen = pg.mkPen(colour, width=2, style=pg.QtCore.Qt.PenStyle.DashLine if dashed else
                               pg.QtCore.Qt.PenStyle.SolidLine)
                symbol = None if name == "val_baseline_mae" else "s" if dashed else "o"
                item = plot.plot([], [], pen=pen, symbol=symbol, symbolSize=7,
                                 symbolBrush=colour, symbolPen=colour, name=label)
                self.curves[name] = item
            ys = [y if math.isfinite(y) else math.nan for y in ys]
            item.setData(xs, ys, connect="finite")
        last = max((max(xs) for xs, _ in curves.values() if xs), default=1)
        step = max(1, math.ceil(last / 10))  # whole epochs, at most about ten ticks
        for plot in (self.loss_plot, self.metric_plot):
            plot.getAxis("bottom").setTickSpacing(step, step)
            plot.enableAutoRange()

    def _on_cancel_button_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.status_label.setText("cancelling…")
        self.cancel_requested.emit()

    def _on_resume_button_clicked(self) -> None:
        if self.run_dir:
            self.resume_button.setEnabled(False)
            self.resume_requested.emit(self.run_dir)
