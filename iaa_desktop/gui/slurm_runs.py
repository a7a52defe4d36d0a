"""Runs on a Slurm cluster as the GUI follows them: submit, watch queued -> running -> finished, cancel.

Thin: submitting and cancelling call ``core.training.slurm`` in worker threads
(sbatch and scancel talk to the controller); the state of each run comes from
the runs panel's own scan (``run_records.scan_runs`` asks ``squeue`` once, in
its worker), which this object triggers every few seconds while a tracked run
is queued or running. After a restart, ``adopt`` picks up the Slurm runs the
scan finds still queued or running, so the docks follow them again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from superqt.utils import create_worker

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.runs import read_events
from iaa_desktop.core.training.slurm import SLURM_FILE, SlurmOptions, cancel_runs, submit_grid
from iaa_desktop.gui.trainer_process import ProgressClock

LIVE = ("queued", "running", "pending")


class SlurmRuns(QObject):
    """The Slurm runs the window follows; one of them (``followed``) feeds the training monitor."""

    #: The grid was submitted; carries the grid record (``runs``, ``job_ids``).
    submitted = Signal(dict)
    #: Slurm refused (submission or cancel); carries Slurm's words.
    failed = Signal(str)
    #: (run directory, status, message) whenever a tracked run's status changes.
    status_changed = Signal(str, str, str)
    #: The monitor should now show this run (directory); its past events follow as ``event``.
    following = Signal(str)
    #: A new event of the followed run.
    event = Signal(dict)
    #: (epoch under way, epochs, ETA seconds) of the followed run.
    progress = Signal(int, int, float)
    #: Every tracked run has ended; carries {status: count}.
    all_ended = Signal(dict)

    def __init__(self, runs_panel, parent: QObject | None = None, poll_ms: int = 3000) -> None:
        super().__init__(parent)
        self.runs_panel = runs_panel
        self.runs: list[Path] = []
        self.statuses: dict[Path, str] = {}
        self.followed: Path | None = None
        self._offset = 0
        self._clock = ProgressClock()
        self._worker = None
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.runs_panel.refresh)
        self.runs_panel.runs_loaded.connect(self._on_runs_panel_runs_loaded)

    def is_active(self) -> bool:
        return self._worker is not None or any(s in LIVE for s in self.statuses.values())

    def submit(self, specs, workspace: str | Path, options: SlurmOptions) -> None:
        """Submit the specs as one job array (in a worker); ``submitted`` or ``failed`` follows."""
        self._worker = create_worker(submit_grid, list(specs), Path(workspace), options, _start_thread=False,
                                     _connect={"returned": self._on_submit_returned,
                                               "errored": self._on_worker_errored})
        self._worker.start()

    def cancel(self) -> None:
        """``scancel`` every tracked run still queued or running (in a worker)."""
        live = [run for run, status in self.statuses.items() if status in LIVE]
        if not live:
            return
        self._worker = create_worker(cancel_runs, live, _start_thread=False,
                                     _connect={"returned": self._on_cancel_returned,
                                               "errored": self._on_worker_errored})
        self._worker.start()

    def track(self, run_dirs) -> None:
        self.runs = [Path(d) for d in run_dirs]
        self.statuses = {run: "queued" for run in self.runs}
        self.followed = None
        self.timer.start()
        self.runs_panel.refresh()

    def adopt(self, records) -> bool:
        """Follow the Slurm runs among ``records`` that are still queued or running (after a restart)."""
        live = [r.run_dir for r in records if r.status in LIVE and (r.run_dir / SLURM_FILE).is_file()]
        if not live or self.is_active():
            return False
        self.track(live)
        return True

    # -- internals ----------------------------------------------------------

    def _on_submit_returned(self, grid: dict) -> None:
        self._worker = None
        self.track(grid["runs"])
        self.submitted.emit(grid)

    def _on_cancel_returned(self, job_ids: list) -> None:
        self._worker = None
        self.runs_panel.refresh()

    def _on_worker_errored(self, exc: BaseException) -> None:
        self._worker = None
        self.failed.emit(str(exc) if isinstance(exc, IAAError) else f"{type(exc).__name__}: {exc}")

    def _on_runs_panel_runs_loaded(self, records) -> None:
        if not self.runs:
            return
        by_dir = {r.run_dir: r for r in records}
        for run in self.runs:
            record = by_dir.get(run)
            if record is None or self.statuses.get(run) == record.status:
                continue
            self.statuses[run] = record.status
            self.status_changed.emit(str(run), record.status, record.message)
        self._follow()
        if not any(s in LIVE for s in self.statuses.values()):
            self.timer.stop()
            counts: dict[str, int] = {}
            for status in self.statuses.values():
                counts[status] = counts.get(status, 0) + 1
            self.runs = []
            self.all_ended.emit(counts)

    def _follow(self) -> None:
        """Feed the monitor: the followed run's new events; move on to a live run when it has ended."""
        if self.followed is not None:
            events, self._offset = read_events(self.followed, self._offset)
            for event in events:
                self.event.emit(event)
                if event.get("event") in ("epoch_progress", "epoch_end"):
                    self.progress.emit(*self._clock.update(event))
            if self.statuses.get(self.followed) == "running":
                return
        running = [r for r in self.runs if self.statuses.get(r) == "running"]
        nxt = running[0] if running else None
        if nxt is not None and nxt != self.followed:
            self.followed, self._offset, self._clock = nxt, 0, ProgressClock()
            self.following.emit(str(nxt))
            self._follow()
