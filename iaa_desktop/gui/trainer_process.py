"""The trainer and the predictor as child processes (QProcess): the GUI never imports torch.

``TrainerProcess`` runs ``python -m trainer RUN_DIR/run.json --data SET.h5 --out
RUN_DIR --threads 1`` (or ``--resume``), follows ``events.jsonl`` with
``core.runs.read_events`` on a QTimer, and tells how the run ended: its status
(``core.run_records`` vocabulary) and a message (the last ``error`` event, else
the last lines the process printed). Cancel sends SIGTERM (the trainer ends its
run with an ``interrupted`` event, resumable), then kills after a timeout.

``PredictProcess`` runs ``python -m trainer.predict`` over a training set and
reports the predictions CSV it wrote.

Both take the command as an injectable ``command`` callable so tests can run
a stand-in program.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from iaa_desktop.core.training.run_records import (
    PID_FILE,
    derive_status,
    eta_seconds,
    mark_cancelled,
    run_fraction,
)
from iaa_desktop.core.training.runs import RUN_SPEC_FILE, read_events

log = logging.getLogger(__name__)

#: (program, arguments) of a trainer command, for ``run_dir`` and whether it resumes.
TrainerCommand = Callable[[Path, bool, Sequence[str]], tuple[str, list[str]]]
POLL_MS = 250
KILL_TIMEOUT_MS = 10_000
LAST_LINES = 20


def trainer_command(run_dir: Path, resume: bool, extra: Sequence[str] = (), *,
                    data: str | Path | None = None, threads: int | None = 1) -> tuple[str, list[str]]:
    """``sys.executable -m trainer [RUN_DIR/run.json] [--data SET] --out RUN_DIR [--resume] --threads N``."""
    args = ["-m", "trainer"]
    if not resume:
        args.append(str(run_dir / RUN_SPEC_FILE))
    if data is not None:
        args += ["--data", str(data)]
    args += ["--out", str(run_dir)]
    if resume:
        args.append("--resume")
    if threads:
        args += ["--threads", str(threads)]
    return sys.executable, [*args, *extra]


class ProgressClock:
    """(epoch under way, epochs, ETA seconds) from ``epoch_progress`` / ``epoch_end`` events.

    The first report sets the reference point, so start-up (imports, a resumed
    run's epochs already done) does not count into the speed.
    """

    def __init__(self) -> None:
        self._started_at = 0.0
        self._fraction_at_start: float | None = None

    def update(self, event: dict) -> tuple[int, int, float]:
        epoch, epochs = int(event.get("epoch", 0)), int(event.get("epochs", 0))
        if event.get("event") == "epoch_end":
            fraction = run_fraction(epoch + 1, epochs)
            epoch = min(epoch + 1, epochs)  # the epoch under way next
        else:
            fraction = run_fraction(epoch, epochs, int(event.get("batch", 0)), int(event.get("batches", 0)))
        if self._fraction_at_start is None:
            self._fraction_at_start, self._started_at = fraction, time.monotonic()
            return epoch, epochs, float("nan")
        elapsed = time.monotonic() - self._started_at
        return epoch, epochs, eta_seconds(elapsed, fraction, self._fraction_at_start)


def process_environment():
    from PySide6.QtCore import QProcessEnvironment

    env = QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONUNBUFFERED", "1")
    return env


class TrainerProcess(QObject):
    """One trainer process at a time, followed through its run directory's events."""

    #: The process started; carries the run directory.
    started = Signal(str)
    #: One event of ``events.jsonl`` (a dict).
    event = Signal(dict)
    #: (epoch, epochs, ETA in seconds; NaN while unknown).
    progress = Signal(int, int, float)
    #: One line the trainer printed (stdout and stderr merged).
    log_line = Signal(str)
    #: (status, message) when the process has ended: finished, cancelled, interrupted or failed.
    finished = Signal(str, str)

    def __init__(self, parent: QObject | None = None, *, command: TrainerCommand | None = None,
                 threads: int | None = 1, poll_ms: int = POLL_MS,
                 kill_timeout_ms: int = KILL_TIMEOUT_MS) -> None:
        super().__init__(parent)
        self._command = command
        self.threads = threads
        self.kill_timeout_ms = kill_timeout_ms
        self.run_dir: Path | None = None
        self.events: list[dict] = []
        self._offset = 0
        self._process: QProcess | None = None
        self._cancelled = False
        self._lines: deque[str] = deque(maxlen=LAST_LINES)
        self._partial = ""
        self._clock = ProgressClock()
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._on_kill_timer_timeout)

    # -- public API ---------------------------------------------------------

    def is_running(self) -> bool:
        return self._process is not None

    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.processId())

    def start(self, run_dir: str | Path, *, data: str | Path | None = None,
              extra_args: Sequence[str] = ()) -> None:
        """Start training ``run_dir`` (its ``run.json`` written beforehand)."""
        self._launch(Path(run_dir), resume=False, data=data, extra=extra_args)

    def resume(self, run_dir: str | Path, extra_args: Sequence[str] = ()) -> None:
        """Go on with an interrupted or cancelled run from its last saved epoch."""
        mark_cancelled(run_dir, False)
        self._launch(Path(run_dir), resume=True, data=None, extra=extra_args)

    def cancel(self) -> None:
        """Ask the trainer to stop (SIGTERM); kill it if it has not ended after ``kill_timeout_ms``."""
        if self._process is None:
            return
        self._cancelled = True
        if self.run_dir is not None:
            mark_cancelled(self.run_dir)
        self.log_line.emit("Cancelling: asking the trainer to stop…")
        self._process.terminate()
        self._kill_timer.start(self.kill_timeout_ms)

    def stop_and_wait(self, timeout_ms: int = 10_000) -> None:
        """Cancel and block until the trainer has ended (the window closes); kill it after ``timeout_ms``."""
        process = self._process
        if process is None:
            return
        self.cancel()
        if not process.waitForFinished(timeout_ms):
            process.kill()
            process.waitForFinished(2_000)

    def kill(self) -> None:
        """Kill the trainer at once (SIGKILL)."""
        if self._process is not None:
            self._process.kill()

    # -- internals ----------------------------------------------------------

    def _launch(self, run_dir: Path, *, resume: bool, data, extra: Sequence[str]) -> None:
        if self._process is not None:
            raise RuntimeError("a trainer is already running; cancel it first")
        self.run_dir = run_dir
        self.events = []
        self._offset = 0
        _, self._offset = read_events(run_dir)  # only events written from now on are new
        self._cancelled = False
        self._lines.clear()
        self._partial = ""
        self._clock = ProgressClock()
        if self._command is not None:
            program, args = self._command(run_dir, resume, extra)
        else:
            program, args = trainer_command(run_dir, resume, extra, data=data, threads=self.threads)
        process = QProcess(self)
        process.setProcessEnvironment(process_environment())
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._on_process_ready_read)
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error_occurred)
        self._process = process
        log.info("starting %s %s", program, " ".join(args))
        self.log_line.emit(f"$ {Path(program).name} {' '.join(args)}")
        process.start(program, args)
        if not process.waitForStarted(10_000):
            return  # errorOccurred(FailedToStart) reports it
        (run_dir / PID_FILE).write_text(f"{process.processId()}\n", encoding="utf-8")
        self._timer.start()
        self.started.emit(str(run_dir))

    def _poll_events(self) -> None:
        if self.run_dir is None:
            return
        events, self._offset = read_events(self.run_dir, self._offset)
        for event in events:
            self.events.append(event)
            self.event.emit(event)
            if event.get("event") in ("epoch_progress", "epoch_end"):
                self._emit_progress(event)

    def _emit_progress(self, event: dict) -> None:
        self.progress.emit(*self._clock.update(event))

    def _on_timer_timeout(self) -> None:
        self._poll_events()

    def _on_kill_timer_timeout(self) -> None:
        if self._process is not None:
            self.log_line.emit("The trainer did not stop in time: killing it.")
            self._process.kill()

    def _on_process_ready_read(self) -> None:
        if self._process is None:
            return
        text = self._partial + bytes(self._process.readAllStandardOutput().data()).decode("utf-8", "replace")
        *lines, self._partial = text.split("\n")
        for line in lines:
            line = line.rstrip("\r")
            self._lines.append(line)
            self.log_line.emit(line)

    def _on_process_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            message = f"the trainer could not start: {self._process.errorString()}"
            self._end("failed", message)

    def _on_process_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._on_process_ready_read()
        if self._partial:
            self._lines.append(self._partial)
            self.log_line.emit(self._partial)
            self._partial = ""
        self._poll_events()
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        status, message = derive_status(self.events, alive=False, cancelled=self._cancelled)
        if status == "finished" and (crashed or exit_code != 0):
            status, message = "failed", f"the trainer exited with code {exit_code} after finishing"
        elif status in ("interrupted", "pending") and not self._cancelled:
            if crashed:
                status = "interrupted"
                message = "the trainer was killed; Resume goes on from the last epoch saved"
            elif exit_code not in (0, 130):
                status = "failed"
        if status == "failed" and not message:
            tail = [line for line in self._lines if line.strip()][-5:]
            message = f"the trainer exited with code {exit_code}" + (
                ": " + " | ".join(tail) if tail else "")
        if status == "cancelled" and not message:
            message = "cancelled"
        self._end(status, message)

    def _end(self, status: str, message: str) -> None:
        self._timer.stop()
        self._kill_timer.stop()
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()
        if self.run_dir is not None:
            (self.run_dir / PID_FILE).unlink(missing_ok=True)
        log.info("trainer ended: %s %s", status, message)
        self.finished.emit(status, message)


class PredictProcess(QObject):
    """``python -m trainer.predict`` over a training set; ``finished(ok, message, csv path)``."""

    started = Signal()
    log_line = Signal(str)
    #: (ok, message, predictions CSV path).
    finished = Signal(bool, str, str)

    def __init__(self, parent: QObject | None = None, *,
                 command: Callable[[list[str]], tuple[str, list[str]]] | None = None) -> None:
        super().__init__(parent)
        self._command = command
        self._process: QProcess | None = None
        self._out = ""
        self._lines: deque[str] = deque(maxlen=LAST_LINES)

    def is_running(self) -> bool:
        return self._process is not None

    def start(self, checkpoint: str | Path, data: str | Path, out_csv: str | Path, *, device: str = "auto",
              cam: str | None = None, cam_dir: str | Path | None = None, batch_size: int = 32) -> None:
        if self._process is not None:
            raise RuntimeError("a prediction is already running")
        args = ["-m", "trainer.predict", "--checkpoint", str(checkpoint), "--data", str(data),
                "--out", str(out_csv), "--device", device, "--batch-size", str(batch_size)]
        if cam:
            args += ["--cam", cam]
            if cam_dir is not None:
                args += ["--cam-dir", str(cam_dir)]
        program, args = self._command(args) if self._command else (sys.executable, args)
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        self._out = str(out_csv)
        self._lines.clear()
        process = QProcess(self)
        env = process_environment()
        env.insert("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
        process.setProcessEnvironment(env)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._on_process_ready_read)
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error_occurred)
        self._process = process
        self.log_line.emit(f"$ {Path(program).name} {' '.join(args)}")
        process.start(program, args)
        self.started.emit()

    def cancel(self) -> None:
        if self._process is not None:
            self._process.kill()

    def stop_and_wait(self, timeout_ms: int = 5_000) -> None:
        process = self._process
        if process is not None:
            process.kill()
            process.waitForFinished(timeout_ms)

    def _on_process_ready_read(self) -> None:
        if self._process is None:
            return
        text = bytes(self._process.readAllStandardOutput().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            self._lines.append(line)
            self.log_line.emit(line)

    def _on_process_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            self._end(False, f"the predictor could not start: {self._process.errorString()}")

    def _on_process_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._on_process_ready_read()
        if exit_code == 0 and exit_status == QProcess.ExitStatus.NormalExit:
            self._end(True, self._lines[-1] if self._lines else "done")
        else:
            tail = [line for line in self._lines if line.strip()][-3:]
            self._end(False, f"prediction failed (exit code {exit_code})" + (": " + " | ".join(tail)
                                                                              if tail else ""))

    def _end(self, ok: bool, message: str) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()
        self.finished.emit(ok, message, self._out)
