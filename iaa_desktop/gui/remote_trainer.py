"""The trainer on another machine over SSH, with the same signals as the local ``TrainerProcess``.

The command lines come from ``core.remote``: upload the training set and the
spec, start ``python -m trainer`` under ``nohup`` on the remote machine, then
every ``poll_ms`` fetch the new bytes of its ``events.jsonl`` into the local run
directory (read with ``core.runs.read_events`` like a local run) and check the
remote process is alive. When the run has ended the remote run directory is
copied back (checkpoints, summary, log). Each ssh/rsync call is a short QProcess.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.remote import (
    RemoteTarget,
    alive_command,
    append_events_chunk,
    cancel_command,
    download_command,
    fetch_events_command,
    start_command,
    upload_commands,
)
from iaa_desktop.core.training.run_records import derive_status, mark_cancelled
from iaa_desktop.core.training.runs import EVENTS_FILE, RUN_SPEC_FILE, RunSpecError, load_spec, read_events
from iaa_desktop.gui.trainer_process import ProgressClock

log = logging.getLogger(__name__)

POLL_MS = 2000
COMMAND_TIMEOUT_MS = 120_000


class RemoteTrainerProcess(QObject):
    """Train a run directory on ``target``; ``finished(status, message)`` when it has ended there."""

    started = Signal(str)
    event = Signal(dict)
    progress = Signal(int, int, float)
    log_line = Signal(str)
    finished = Signal(str, str)

    def __init__(self, target: RemoteTarget | None = None, parent: QObject | None = None, *,
                 poll_ms: int = POLL_MS, threads: int | None = None) -> None:
        super().__init__(parent)
        self.target = target
        self.threads = threads
        self.run_dir: Path | None = None
        self.events: list[dict] = []
        self._active = False
        self._cancelled = False
        self._offset = 0
        self._local_size = 0
        self._process: QProcess | None = None
        self._clock = ProgressClock()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._on_timer_timeout)

    # -- public API (as TrainerProcess) --------------------------------------

    def is_running(self) -> bool:
        return self._active

    def pid(self) -> int | None:
        return None  # the process lives on the remote machine

    def start(self, run_dir: str | Path, *, data: str | Path | None = None,
              extra_args: Sequence[str] = ()) -> None:
        run_dir = Path(run_dir)
        data = Path(data) if data is not None else Path(self._spec_data(run_dir))
        steps = upload_commands(self._target(), run_dir.name, data, run_dir / RUN_SPEC_FILE)
        steps.append(start_command(self._target(), run_dir.name, data, threads=self.threads,
                                   extra_args=tuple(extra_args)))
        self._begin(run_dir, steps)

    def resume(self, run_dir: str | Path, extra_args: Sequence[str] = ()) -> None:
        run_dir = Path(run_dir)
        mark_cancelled(run_dir, False)
        data = self._spec_data(run_dir)
        self._begin(run_dir, [start_command(self._target(), run_dir.name, data, resume=True,
                                            threads=self.threads, extra_args=tuple(extra_args))])

    def cancel(self) -> None:
        """SIGTERM the remote trainer; polling goes on until it has written its last event."""
        if not self._active or self.run_dir is None:
            return
        self._cancelled = True
        mark_cancelled(self.run_dir)
        self.log_line.emit("Cancelling: asking the remote trainer to stop…")
        self._pending_cancel = True

    def detach(self) -> None:
        """Stop following the remote run (it goes on there); nothing more is emitted."""
        self._active = False
        self._timer.stop()
        if self._process is not None:
            self._process.kill()
            self._process.waitForFinished(2_000)

    # -- internals ----------------------------------------------------------

    def _target(self) -> RemoteTarget:
        if self.target is None:
            raise IAAError("no remote machine set: give a host, a Python and a working directory")
        self.target.validate()
        return self.target

    @staticmethod
    def _spec_data(run_dir: Path) -> str:
        try:
            return load_spec(run_dir / RUN_SPEC_FILE).data
        except RunSpecError as exc:
            raise IAAError(str(exc)) from None

    def _begin(self, run_dir: Path, steps: list[list[str]]) -> None:
        if self._active:
            raise RuntimeError("a remote trainer is already running; cancel it first")
        self.run_dir = run_dir
        self.events = []
        _, self._offset = read_events(run_dir)
        events_path = run_dir / EVENTS_FILE
        self._local_size = events_path.stat().st_size if events_path.is_file() else 0
        self._cancelled = False
        self._pending_cancel = False
        self._clock = ProgressClock()
        self._active = True
        self._run_steps(list(steps), self._on_started)

    def _run_steps(self, steps: list[list[str]], then: Callable[[], None]) -> None:
        if not steps:
            then()
            return
        argv = steps.pop(0)
        self._run(argv, lambda code, out, err: self._run_steps(steps, then) if code == 0 else
                  self._end("failed", f"{argv[0]} failed (exit code {code}): {err.strip()[-400:]}"))

    def _run(self, argv: list[str], done: Callable[[int, bytes, str], None]) -> None:
        process = QProcess(self)
        self._process = process
        self.log_line.emit("$ " + " ".join(argv))

        def finished(code: int, status: QProcess.ExitStatus) -> None:
            out = bytes(process.readAllStandardOutput().data())
            err = bytes(process.readAllStandardError().data()).decode("utf-8", "replace")
            self._process = None
            process.deleteLater()
            done(code if status == QProcess.ExitStatus.NormalExit else -1, out, err)

        def errored(error: QProcess.ProcessError) -> None:
            if error == QProcess.ProcessError.FailedToStart:
                self._process = None
                process.deleteLater()
                self._end("failed", f"{argv[0]} could not start: {process.errorString()}")

        process.finished.connect(finished)
        process.errorOccurred.connect(errored)
        process.start(argv[0], argv[1:])

    def _on_started(self) -> None:
        self.started.emit(str(self.run_dir))
        self._timer.start()

    def _on_timer_timeout(self) -> None:
        if not self._active or self.run_dir is None:
            return
        if self._pending_cancel:
            self._pending_cancel = False
            self._run(cancel_command(self._target(), self.run_dir.name), lambda *_: self._fetch())
            return
        self._fetch()

    def _fetch(self) -> None:
        argv = fetch_events_command(self._target(), self.run_dir.name, self._local_size)
        self._run(argv, self._on_fetched)

    def _on_fetched(self, code: int, out: bytes, err: str) -> None:
        if code != 0:
            self.log_line.emit(f"could not read the remote events (exit code {code}): {err.strip()}")
        elif out:
            self._local_size = append_events_chunk(self.run_dir, out)
        events, self._offset = read_events(self.run_dir, self._offset)
        for event in events:
            self.events.append(event)
            self.event.emit(event)
            if event.get("event") in ("epoch_progress", "epoch_end"):
                self.progress.emit(*self._clock.update(event))
            if event.get("event") == "error":
                self.log_line.emit(f"error: {event.get('message', '')}")
        if any(e.get("event") in ("run_finished", "error") for e in events):
            self._download()
            return
        self._run(alive_command(self._target(), self.run_dir.name), self._on_alive_checked)

    def _on_alive_checked(self, code: int, _out: bytes, _err: str) -> None:
        if code == 0:
            self._timer.start()
        else:  # not running, no final event yet: read what is left, then stop
            self._run(fetch_events_command(self._target(), self.run_dir.name, self._local_size),
                      self._on_last_fetch)

    def _on_last_fetch(self, code: int, out: bytes, _err: str) -> None:
        if code == 0 and out:
            self._local_size = append_events_chunk(self.run_dir, out)
        events, self._offset = read_events(self.run_dir, self._offset)
        for event in events:
            self.events.append(event)
            self.event.emit(event)
        self._download()

    def _download(self) -> None:
        self._run(download_command(self._target(), self.run_dir.name, self.run_dir), self._on_downloaded)

    def _on_downloaded(self, code: int, _out: bytes, err: str) -> None:
        if code != 0:
            self.log_line.emit(f"could not copy the run directory back (exit code {code}): {err.strip()}")
        status, message = derive_status(self.events, alive=False, cancelled=self._cancelled)
        self._end(status, message or ("cancelled" if status == "cancelled" else ""))

    def _end(self, status: str, message: str) -> None:
        if not self._active:
            return
        self._active = False
        self._timer.stop()
        log.info("remote trainer ended: %s %s", status, message)
        self.finished.emit(status, message)
