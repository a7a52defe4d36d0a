"""Runs on a Slurm cluster as the GUI follows them: submit, watch queued -> running -> finished, cancel.

Thin: submitting and cancelling call ``core.training.slurm`` (sbatch here) or
``core.training.slurm_login`` (the project's CLI on a login node over SSH) in
worker threads; the state of each run comes from the runs panel's own scan
(``run_records.scan_runs`` asks ``squeue`` once, in its worker), which this
object triggers every few seconds while a tracked run is queued or running.
Runs submitted through a login node are first refreshed from it (one ssh per
grid and one rsync of the runs that train, in a worker), then scanned. After a
restart, ``adopt`` picks up the Slurm runs the scan finds still queued or
running, so the docks follow them again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from superqt.utils import create_worker

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.remote import RemoteTarget
from iaa_desktop.core.training.runs import read_events
from iaa_desktop.core.training.slurm import SLURM_FILE, SlurmOptions, submit_grid
from iaa_desktop.core.training.slurm_login import (
    LOGIN_FILE,
    cancel_slurm_runs,
    refresh_login_runs,
    submit_grid_via_login,
)
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
    #: A line for the log (a login node that did not answer a refresh; polling goes on).
    notice = Signal(str)

    def __init__(self, runs_panel, parent: QObject | None = None, poll_ms: int = 3000) -> None:
        super().__init__(parent)
        self.runs_panel = runs_panel
        self.runs: list[Path] = []
        self.statuses: dict[Path, str] = {}
        self.followed: Path | None = None
        self._offset = 0
        self._clock = ProgressClock()
        self._worker = None
        self._poll_worker = None
        self._last_notice = ""
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self._on_timer_timeout)
        self.runs_panel.runs_loaded.connect(self._on_runs_panel_runs_loaded)

    def is_active(self) -> bool:
        return self._worker is not None or any(s in LIVE for s in self.statuses.values())

    def submit(self, specs, workspace: str | Path, options: SlurmOptions) -> None:
        """Submit the specs as one job array (in a worker); ``submitted`` or ``failed`` follows."""
        self._worker = create_worker(submit_grid, list(specs), Path(workspace), options, _start_thread=False,
                                     _connect={"returned": self._on_submit_returned,
                                               "errored": self._on_worker_errored})
        self._worker.start()

    def submit_via_login(self, specs, workspace: str | Path, options: SlurmOptions,
                         target: RemoteTarget) -> None:
        """Submit through a login node over SSH (copy, then its CLI; a worker): ``submitted``/``failed``."""
        self._worker = create_worker(submit_grid_via_login, list(specs), Path(workspace), options, target,
                                     _start_thread=False,
                                     _connect={"returned": self._on_submit_returned,
                                               "errored": self._on_worker_errored})
        self._worker.start()

    def cancel(self, run_dirs=None) -> bool:
        """``scancel`` these runs, or every tracked run still queued or running (in a worker).

        Runs submitted through a login node are cancelled there. False when there is nothing
        to cancel or a submission or cancel is still under way.
        """
        if run_dirs is None:
            run_dirs = [run for run, status in self.statuses.items() if status in LIVE]
        run_dirs = [Path(d) for d in run_dirs]
        if not run_dirs or self._worker is not None:
            return False
        for run in run_dirs:  # followed until they have ended (and a login node's are copied back)
            if run not in self.runs:
                self.runs.append(run)
                self.statuses.setdefault(run, "")
        self._worker = create_worker(cancel_slurm_runs, run_dirs, _start_thread=False,
                                     _connect={"returned": self._on_cancel_returned,
                                               "errored": self._on_worker_errored})
        self._worker.start()
        return True

    def track(self, run_dirs) -> None:
        self.runs = [Path(d) for d in run_dirs]
        self.statuses = {run: "queued" for run in self.runs}
        self.followed = None
        self.timer.start()
        self.runs_panel.refresh()

    def adopt(self, records) -> bool:
        """Follow the Slurm runs among ``records`` that are still queued or running (after a restart)."""
        live = [r.run_dir for r in records if r.status in LIVE
                and ((r.run_dir / SLURM_FILE).is_file() or (r.run_dir / LOGIN_FILE).is_file())]
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
        self._on_timer_timeout()
        self.timer.start()

    def _on_timer_timeout(self) -> None:
        """Refresh the runs of a login node from it first (in a worker), then scan the runs panel."""
        if self._poll_worker is not None:
            return
        remote = [run for run in self.runs if (run / LOGIN_FILE).is_file()]
        if not remote:
            self.runs_panel.refresh()
            return
        self._poll_worker = create_worker(refresh_login_runs, remote, _start_thread=False,
                                          _connect={"returned": self._on_poll_returned,
                                                    "errored": self._on_poll_errored})
        self._poll_worker.start()

    def _on_poll_returned(self, _states: dict) -> None:
        self._poll_worker = None
        self._last_notice = ""
        self.runs_panel.refresh()

    def _on_poll_errored(self, exc: BaseException) -> None:
        self._poll_worker = None
        text = str(exc) if isinstance(exc, IAAError) else f"{type(exc).__name__}: {exc}"
        if text != self._last_notice:  # once, not every few seconds while the login node is away
            self._last_notice = text
            self.notice.emit(f"{text} (trying again)")
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
