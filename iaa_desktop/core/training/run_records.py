"""The runs of a workspace as records: status, best metrics, duration, and comparisons across runs.

Everything here is read back from the run directories (``<workspace>/runs/<run id>/``)
that ``iaa-train`` writes (layout: ``iaa_desktop.core.training.runs``), so the runs panel
shows the same thing after a restart as while the runs went on. Two small files
are the app's own: ``trainer.pid`` (the local trainer's process id while it runs)
and ``cancelled`` (the user stopped the run).

Status of a run:

==============  ===============================================================
``running``     the trainer process is alive (or the caller says it runs)
``finished``    a ``run_finished`` event
``cancelled``   stopped by the user (the ``cancelled`` marker); ``--resume`` goes on
``interrupted`` an interrupt ``error`` event (SIGTERM, Ctrl-C), or no final event and
                no live process (killed, power cut); ``--resume`` goes on
``failed``      any other ``error`` event (the message says why)
``pending``     no event yet and no live process
``queued``      a Slurm job waiting in the queue (also after a requeue; ``core.training.slurm``)
==============  ===============================================================

A run submitted to Slurm (``slurm.json`` in its folder) is ``queued`` or ``running``
while ``squeue`` lists its job, then its events decide as above. A run submitted
through a login node over SSH (``slurm_login.json``: a local mirror of the remote
folder) has the status the login node last reported (``core.training.slurm_login``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import signal
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.runs import CHECKPOINT_DIR, RunSpec, RunSpecError, load_spec, read_events
from iaa_desktop.core.workspace_paths import runs_dir

PID_FILE = "trainer.pid"
CANCELLED_MARKER = "cancelled"
STATUSES = ("running", "finished", "cancelled", "interrupted", "failed", "pending", "queued")
#: How the GUI names the trainer's modes.
MODE_LABELS = {"regression": "IAA regressor", "classification": "Diagnosis only", "multitask": "Multi-task"}
#: Metrics a comparison can be made on: name -> (label, higher is better).
METRICS = {
    "balanced_accuracy": ("Balanced accuracy", True),
    "auroc": ("AUROC", True),
    "accuracy": ("Accuracy", True),
    "f1_macro": ("Macro F1", True),
    "mae": ("IAA MAE", False),
    #: The model's MAE over the MAE of predicting the training median for every image: < 1 beats it.
    "mae_ratio": ("IAA MAE / constant", False),
    "baseline_mae": ("IAA MAE of the constant (training median)", False),
    "pearson": ("IAA Pearson r", True),
}
#: The constant every regression figure is compared with, as the GUI names it.
BASELINE_LABEL = "constant (training median)"


class RunRecordError(IAAError):
    """A comparison or export that cannot be made (no run, no metric)."""


@dataclass(frozen=True)
class RunRecord:
    """One run directory, summarised."""

    run_id: str
    run_dir: Path
    spec: RunSpec | None
    status: str
    message: str = ""
    epochs_done: int = 0
    #: The last epoch whose checkpoint and resume state were saved (where ``--resume`` goes on from).
    epochs_saved: int = 0
    best_epoch: int | None = None
    best_metrics: dict = field(default_factory=dict)
    test_metrics: dict = field(default_factory=dict)
    seconds: float = math.nan
    device: str = ""
    started: str = ""

    @property
    def resumable(self) -> bool:
        """Whether ``--resume`` can go on (stopped early, with a saved last epoch)."""
        last = self.run_dir / CHECKPOINT_DIR / "last_state.pt"
        return self.status in ("cancelled", "interrupted", "failed") and last.is_file()

    def metric(self, name: str, source: str = "auto") -> float:
        """A metric of the run: ``test`` (best checkpoint on the test split), ``val`` (best epoch)
        or ``auto`` (test when the run has test metrics, else val); NaN when absent."""
        if source not in ("auto", "test", "val"):
            raise ValueError(f"source must be auto, test or val, not {source!r}")
        use_test = source == "test" or (source == "auto" and bool(self.test_metrics))
        value = (self.test_metrics if use_test else self.best_metrics).get(name)
        return math.nan if value is None else float(value)


# --- one run ---------------------------------------------------------------------------------------

def live_pid(run_dir: str | Path) -> int | None:
    """The process id in ``trainer.pid`` when it names a live trainer on this machine, else ``None``.

    The file holds the process id, and when the trainer wrote it itself, its host on a
    second line: a run folder on a shared file system (Slurm) or copied back from
    another machine names a process there, never one here.
    """
    path = Path(run_dir) / PID_FILE
    try:
        fields = path.read_text(encoding="utf-8").split()
        pid = int(fields[0])
        if len(fields) > 1 and fields[1] != socket.gethostname():
            return None
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.is_file():  # Linux: make sure the id was not reused by another program
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            return None
        # `python -m trainer ...`, `python -m trainer.predict ...` or the iaa-train script;
        # not any process that merely has "trainer" somewhere (pytest tests/trainer).
        if not any(arg == b"trainer" or arg.startswith(b"trainer.") or arg.endswith(b"iaa-train")
                   for arg in args):
            return None
    return pid


def pid_alive(run_dir: str | Path) -> bool:
    """Whether ``trainer.pid`` names a live process that is a trainer (on this machine)."""
    return live_pid(run_dir) is not None


def write_pid_file(run_dir: str | Path) -> Path:
    """The trainer records its own process id and host, so that a run started from the command line
    shows as running (not interrupted) in the runs panel, and can be cancelled from there."""
    path = Path(run_dir) / PID_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n{socket.gethostname()}\n", encoding="utf-8")
    return path


def remove_pid_file(run_dir: str | Path) -> None:
    """Remove ``trainer.pid`` when it still names this process (another may have started since)."""
    path = Path(run_dir) / PID_FILE
    try:
        if int(path.read_text(encoding="utf-8").split()[0]) == os.getpid():
            path.unlink()
    except (OSError, ValueError, IndexError):
        pass


def stop_local_run(run_dir: str | Path) -> bool:
    """SIGTERM the trainer of a run that trains on this machine (whoever started it); marks it cancelled.

    False when no live trainer of the run is known here. The trainer stops at once and
    writes its ``interrupted`` event; every finished epoch is saved (Resume goes on).
    """
    pid = live_pid(run_dir)
    if pid is None:
        return False
    mark_cancelled(run_dir)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # it ended in between
        return False
    return True


def mark_cancelled(run_dir: str | Path, cancelled: bool = True) -> None:
    """Record (or clear, on resume) that the user stopped the run."""
    path = Path(run_dir) / CANCELLED_MARKER
    if cancelled:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dt.datetime.now(dt.UTC).isoformat(timespec="seconds") + "\n", encoding="utf-8")
    else:
        path.unlink(missing_ok=True)


def is_interrupt_message(message: str) -> bool:
    return "interrupted" in message.lower()


def derive_status(events: Sequence[dict], *, alive: bool, cancelled: bool = False) -> tuple[str, str]:
    """(status, message) of a run from its events (see the module docstring)."""
    if alive:
        return "running", ""
    last = next((e for e in reversed(events) if e.get("event") in ("run_started", "run_finished", "error")),
                None)
    if last is None:
        return ("cancelled", "cancelled before it started") if cancelled else (
            ("interrupted", "stopped before its first event") if events else ("pending", ""))
    if last["event"] == "run_finished":
        return "finished", ""
    if last["event"] == "run_started":
        return ("cancelled", "cancelled") if cancelled else (
            "interrupted", "the trainer stopped without a final event (killed?)")
    message = str(last.get("message", ""))
    if cancelled:
        return "cancelled", message
    return ("interrupted" if is_interrupt_message(message) else "failed"), message


def selection_metric(mode: str) -> tuple[str, bool]:
    """(metric, higher is better) the trainer picks its best epoch by (as ``trainer.metrics``)."""
    return ("mae", False) if mode == "regression" else ("balanced_accuracy", True)


def _best_from_epochs(events: Sequence[dict], mode: str) -> tuple[int | None, dict]:
    key, higher = selection_metric(mode)
    best_epoch, best, best_value = None, {}, None
    for event in events:
        if event.get("event") != "epoch_end":
            continue
        val = event.get("val") or {}
        value = val.get(key)
        if value is None:
            continue
        if best_value is None or (value > best_value if higher else value < best_value):
            best_epoch, best, best_value = int(event["epoch"]), dict(val), value
    return best_epoch, best


def _time(event: dict) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(event["time"]))
    except (KeyError, ValueError):
        return None


def run_seconds(events: Sequence[dict]) -> float:
    """Training time: from each ``run_started`` to the last event before the next one, summed."""
    total, start, last = 0.0, None, None
    for event in events:
        when = _time(event)
        if when is None:
            continue
        if event.get("event") == "run_started":
            if start is not None and last is not None:
                total += (last - start).total_seconds()
            start = when
        last = when
    if start is None or last is None:
        return math.nan
    return total + (last - start).total_seconds()


def read_run_record(run_dir: str | Path, *, running: bool | None = None,
                    queue: dict[str, tuple[str, str]] | None = None) -> RunRecord:
    """The record of one run directory; ``running`` overrides the live-process check.

    ``queue``: Slurm's jobs (``slurm.squeue_states``) for a run submitted to Slurm.
    """
    run_dir = Path(run_dir)
    events, _ = read_events(run_dir)
    spec = None
    try:
        spec = load_spec(run_dir / "run.json")
    except RunSpecError:
        started = next((e for e in events if e.get("event") == "run_started"), None)
        if started and isinstance(started.get("spec"), dict):
            try:
                spec = RunSpec.from_dict(started["spec"])
            except RunSpecError:
                spec = None
    alive = pid_alive(run_dir) if running is None else running
    status, message = derive_status(events, alive=alive, cancelled=(run_dir / CANCELLED_MARKER).is_file())
    if not alive:
        from iaa_desktop.core.training.slurm_login import login_status

        status, message = login_status(run_dir, events) or (status, message)
    if queue is not None and not alive:
        from iaa_desktop.core.training.slurm import slurm_status

        status, message = slurm_status(run_dir, queue) or (status, message)
    mode = spec.mode if spec else "regression"
    finished = next((e for e in reversed(events) if e.get("event") == "run_finished"), None)
    if finished is not None:
        best_epoch, best = finished.get("best_epoch"), dict(finished.get("best") or {})
        test = dict(finished.get("test") or {})
    else:
        (best_epoch, best), test = _best_from_epochs(events, mode), {}
    epochs_done = max((int(e["epoch"]) for e in events if e.get("event") == "epoch_end"), default=0)
    epochs_saved = max((int(e["epoch"]) for e in events
                        if e.get("event") == "checkpoint_saved" and e.get("which") == "last"), default=0)
    started = next((e for e in events if e.get("event") == "run_started"), {})
    return RunRecord(
        run_id=run_dir.name, run_dir=run_dir, spec=spec, status=status, message=message,
        epochs_done=epochs_done, epochs_saved=epochs_saved, best_epoch=best_epoch, best_metrics=best,
        test_metrics=test,
        seconds=run_seconds(events), device=str(started.get("device", "")),
        started=str(started.get("time", "")))


def scan_runs(workspace: str | Path, *, running: Iterable[str | Path] = ()) -> list[RunRecord]:
    """Every run of a workspace (folders of ``<workspace>/runs`` with a spec or events), oldest first.

    ``running``: run directories the caller knows to be running (its own processes).
    """
    folder = runs_dir(workspace)
    if not folder.is_dir():
        return []
    live = {Path(p).resolve() for p in running}
    run_dirs = [p for p in sorted(folder.iterdir()) if p.is_dir()
                and ((p / "run.json").is_file() or (p / "events.jsonl").is_file())]
    queue = _slurm_queue(run_dirs)
    records = []
    for run_dir in run_dirs:
        records.append(read_run_record(run_dir, running=True if run_dir.resolve() in live else None,
                                       queue=queue))
    return sorted(records, key=lambda r: (r.started or "~", r.run_id))


def _slurm_queue(run_dirs: Sequence[Path]) -> dict[str, tuple[str, str]] | None:
    """Slurm's queue when some run was submitted to Slurm (one ``squeue`` call), else ``None``.

    ``None`` too when Slurm cannot be asked: the runs' events still say how they ended.
    """
    from iaa_desktop.core.training.slurm import SLURM_FILE, SlurmError, squeue_states

    if not any((d / SLURM_FILE).is_file() for d in run_dirs):
        return None
    try:
        return squeue_states()
    except SlurmError:
        return None


# --- tables ----------------------------------------------------------------------------------------

def _fmt_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def records_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run, the columns the runs panel shows."""
    rows = []
    for r in records:
        spec = r.spec
        rows.append({
            "run": r.run_id,
            "task": MODE_LABELS.get(spec.mode, spec.mode) if spec else "",
            "backbone": spec.backbone if spec else "",
            "seed": spec.seed if spec else np.nan,
            "status": r.status,
            "epochs": f"{r.epochs_done}/{spec.epochs}" if spec else str(r.epochs_done),
            "best_epoch": r.best_epoch if r.best_epoch is not None else np.nan,
            "val_balanced_accuracy": r.best_metrics.get("balanced_accuracy", np.nan),
            "val_mae": r.best_metrics.get("mae", np.nan),
            "val_baseline_mae": r.best_metrics.get("baseline_mae", np.nan),
            "test_balanced_accuracy": r.test_metrics.get("balanced_accuracy", np.nan),
            "test_mae": r.test_metrics.get("mae", np.nan),
            "test_baseline_mae": r.test_metrics.get("baseline_mae", np.nan),
            "mae_ratio": r.metric("mae_ratio"),
            "duration": _fmt_seconds(r.seconds),
            "device": r.device,
            "training_set": Path(spec.data).name if spec and spec.data else "",
            "message": r.message,
        })
    return pd.DataFrame(rows, columns=["run", "task", "backbone", "seed", "status", "epochs", "best_epoch",
                                       "val_balanced_accuracy", "val_mae", "val_baseline_mae",
                                       "test_balanced_accuracy", "test_mae", "test_baseline_mae", "mae_ratio",
                                       "duration", "device", "training_set", "message"])


# --- live curves and ETA ---------------------------------------------------------------------------

def curves_from_events(events: Sequence[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """Per-epoch curves from ``epoch_end`` events: ``train_loss``, ``val_loss`` and ``val_<metric>``.

    A resumed run repeats no epoch: the last value of an epoch wins.
    """
    per_epoch: dict[str, dict[int, float]] = {}
    for event in events:
        if event.get("event") != "epoch_end":
            continue
        epoch = int(event["epoch"])
        values = {"train_loss": event.get("train_loss")}
        values.update({f"val_{k}": v for k, v in (event.get("val") or {}).items()})
        for name, value in values.items():
            if value is not None:
                per_epoch.setdefault(name, {})[epoch] = float(value)
    return {name: (sorted(v), [v[e] for e in sorted(v)]) for name, v in per_epoch.items()}


def run_fraction(epoch: int, epochs: int, batch: int = 0, batches: int = 0) -> float:
    """Fraction of a run done at ``batch`` of ``batches`` in ``epoch`` (1-based) of ``epochs``."""
    if epochs <= 0:
        return 0.0
    within = batch / batches if batches > 0 else 0.0
    return min(1.0, max(0.0, (epoch - 1 + within) / epochs))


def eta_seconds(elapsed: float, fraction_now: float, fraction_at_start: float = 0.0) -> float:
    """Seconds left at constant speed since ``fraction_at_start``; NaN before any progress."""
    done = fraction_now - fraction_at_start
    if done <= 0 or elapsed <= 0:
        return math.nan
    return elapsed * (1.0 - fraction_now) / done
