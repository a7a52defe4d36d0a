"""Training grids on a Slurm cluster through ``submitit`` (the ``cluster`` extra): submit, follow, cancel.

A grid (seeds x backbones x alpha over one training set) becomes one Slurm job
array; each array task trains one run folder with ``python -m trainer`` (see
``slurm_job.TrainJob``), so ``events.jsonl``, ``summary.csv`` and checkpoints are
the same as for a local run and the runs panel, curves, predictions and
comparisons read them unchanged. Where things live::

    <workspace>/runs/<run id>/slurm.json    the run's Slurm job id and grid
    <workspace>/grids/<grid id>/grid.json   the grid: its runs, job ids, options
    <workspace>/grids/<grid id>/slurm/      submitit's pickles and the jobs' stdout/stderr

The training set is read from one path by every run of a grid: the workspace
when the cluster shares it, else a folder given as ``stage_dir`` (cluster
scratch) into which it is copied once per grid, never once per run.

The state of a job comes from ``squeue`` while Slurm knows it (queued, running,
requeued) and from the run's own events afterwards; a job that died before the
trainer wrote anything is reported with the tail of its stderr. Nothing here
needs ``sacct`` (accounting is often off on small clusters).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.plan import new_run_dir
from iaa_desktop.core.training.run_records import CANCELLED_MARKER, mark_cancelled
from iaa_desktop.core.training.runs import RunSpec, RunSpecError, read_events
from iaa_desktop.core.training.slurm_grid import GridSpec
from iaa_desktop.core.training.slurm_job import TrainJob
from iaa_desktop.core.workspace_paths import runs_dir

SLURM_FILE = "slurm.json"
GRID_FILE = "grid.json"
GRIDS_DIR = "grids"
#: squeue states of a job Slurm still holds, as the runs panel names them.
QUEUED_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED",
                 "RESV_DEL_HOLD", "SPECIAL_EXIT"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"}


class SlurmError(IAAError):
    """Slurm refused or cannot be reached; the message says what Slurm said."""


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of every job of a grid (one run a job).

    ``mem_gb`` 0 and ``cpus_per_task`` 0 leave the partition's defaults;
    ``extra_sbatch`` holds further sbatch options as ``name=value`` or ``--name=value``
    (``qos=high``, ``--constraint=a100``); ``max_requeues`` is how often a job that
    hits its time limit is requeued to resume from its checkpoint.
    """

    partition: str = ""
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: float = 0.0
    time_min: int = 60
    account: str = ""
    extra_sbatch: tuple[str, ...] = ()
    max_requeues: int = 3
    signal_delay_s: int = 90
    array_parallelism: int = 64
    python: str = ""

    def validate(self) -> None:
        checks = [
            (self.gpus_per_node >= 0, f"GPUs per node must be 0 or more, not {self.gpus_per_node}"),
            (self.cpus_per_task >= 0, f"CPUs per task must be 0 or more, not {self.cpus_per_task}"),
            (self.mem_gb >= 0, f"memory must be 0 (partition default) or more GB, not {self.mem_gb}"),
            (self.time_min >= 1, f"time limit must be at least 1 minute, not {self.time_min}"),
            (self.max_requeues >= 0, f"requeues must be 0 or more, not {self.max_requeues}"),
            (self.signal_delay_s >= 0, f"signal delay must be 0 or more seconds, not {self.signal_delay_s}"),
            (self.array_parallelism >= 1, "array parallelism must be at least 1"),
            (not any(c.isspace() for c in self.partition), f"partition {self.partition!r} has spaces"),
        ]
        for ok, message in checks:
            if not ok:
                raise SlurmError(message)
        extra_sbatch_parameters(self.extra_sbatch)

    def executor_parameters(self) -> dict:
        """Keyword arguments of submitit's ``SlurmExecutor.update_parameters``."""
        params: dict = {"time": self.time_min, "nodes": 1, "ntasks_per_node": 1,
                        "signal_delay_s": self.signal_delay_s, "array_parallelism": self.array_parallelism,
                        "stderr_to_stdout": False}
        if self.partition:
            params["partition"] = self.partition
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.cpus_per_task:
            params["cpus_per_task"] = self.cpus_per_task
        if self.mem_gb:
            params["mem"] = f"{int(self.mem_gb)}GB" if self.mem_gb == int(self.mem_gb) \
                else f"{int(self.mem_gb * 1024)}MB"
        if self.account:
            params["account"] = self.account
        extra = extra_sbatch_parameters(self.extra_sbatch)
        if extra:
            params["additional_parameters"] = extra
        return params

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["extra_sbatch"] = list(self.extra_sbatch)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> SlurmOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SlurmError(f"unknown Slurm option(s): {', '.join(unknown)}")
        values = dict(values)
        values["extra_sbatch"] = tuple(values.get("extra_sbatch", ()))
        return cls(**values)


def extra_sbatch_parameters(options: Sequence[str]) -> dict:
    """``("--qos=high", "exclusive")`` -> ``{"qos": "high", "exclusive": True}`` (submitit's form)."""
    params: dict = {}
    for option in options:
        text = option.strip().lstrip("-")
        if not text:
            continue
        name, sep, value = text.partition("=")
        if not name or any(c.isspace() for c in name):
            raise SlurmError(f"extra sbatch option {option!r}: write it as name=value or --name=value")
        params[name.replace("-", "_")] = value if sep else True
    return params


# --- running the Slurm commands --------------------------------------------------------------------

def _command(argv: list[str], what: str, timeout: float = 60) -> str:
    """Run a Slurm client command; a missing binary or a refusal becomes a ``SlurmError`` with its stderr."""
    if shutil.which(argv[0]) is None:
        raise SlurmError(f"{argv[0]} not found: this machine is not a Slurm submit host "
                         "(install the Slurm client and set SLURM_CONF, or train over SSH on a login node)")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{what}: {argv[0]} did not answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        raise SlurmError(f"{what}: Slurm said: {said}")
    return done.stdout


def partitions() -> list[str]:
    """The cluster's partitions (``sinfo``); the default one first."""
    names = []
    for line in _command(["sinfo", "-h", "-o", "%P"], "listing the partitions").split():
        names.append(line.rstrip("*"))
        if line.endswith("*"):
            names.insert(0, names.pop())
    return list(dict.fromkeys(names))


def check_partition(partition: str) -> None:
    """Refuse a partition the cluster does not have, naming those it has."""
    if not partition:
        return
    known = partitions()
    if partition not in known:
        raise SlurmError(f"unknown partition {partition!r}: this cluster has {', '.join(known) or 'none'}")


def squeue_states(job_ids: Iterable[str] = ()) -> dict[str, tuple[str, str]]:
    """Jobs Slurm still holds: job id (``123`` or ``123_4``) -> (state, reason); finished jobs are absent."""
    wanted = {str(j).split("_")[0] for j in job_ids}
    # This user's jobs only: a busy cluster's whole queue is thousands of lines.
    out = _command(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T|%r"], "reading the queue")
    states = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and (not wanted or parts[0].split("_")[0] in wanted):
            states[parts[0]] = (parts[1], parts[2] if parts[2] not in ("None", "(null)") else "")
    return states


# --- the grid on disk ------------------------------------------------------------------------------

def grids_dir(workspace: str | Path) -> Path:
    return runs_dir(workspace).parent / GRIDS_DIR


def read_slurm_record(run_dir: str | Path) -> dict | None:
    """The run's ``slurm.json`` (job id, grid, log paths) or ``None`` for a run not on Slurm."""
    try:
        values = json.loads((Path(run_dir) / SLURM_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) and "job_id" in values else None


def _write_json(path: Path, values: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, path)


def load_grid_record(path: str | Path) -> dict:
    """A grid's ``grid.json`` (or its folder); ``SlurmError`` naming the file when unreadable."""
    path = Path(path)
    if path.is_dir():
        path = path / GRID_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlurmError(f"{path}: no such grid (give a grid folder or its grid.json)") from None
    except (OSError, ValueError) as exc:
        raise SlurmError(f"{path}: not a readable grid record ({exc})") from None
    if not isinstance(values, dict) or not isinstance(values.get("runs"), list):
        raise SlurmError(f"{path}: not a grid record (no list of runs)")
    values["path"] = str(path)
    return values


def stage_training_set(training_set: str | Path, stage_dir: str | Path | None) -> Path:
    """The path every run of a grid reads: the set, or one copy in ``stage_dir`` (kept while unchanged)."""
    source = Path(training_set)
    if not source.is_file():
        raise SlurmError(f"{source}: training set not found")
    if stage_dir is None:
        return source.resolve()
    target = Path(stage_dir) / source.name
    if not (target.is_file() and target.stat().st_size == source.stat().st_size
            and target.stat().st_mtime >= source.stat().st_mtime):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target.with_suffix(".partial"))
        os.replace(target.with_suffix(".partial"), target)
    return target.resolve()


# --- submit ----------------------------------------------------------------------------------------

def submit_grid(grid: GridSpec | Sequence[RunSpec], workspace: str | Path, options: SlurmOptions, *,
                stage_dir: str | Path | None = None, name: str = "") -> dict:
    """Create one run folder per spec and submit them as one Slurm job array; returns the grid record.

    Raises ``SlurmError`` (sbatch missing, unknown partition, sbatch refused: with Slurm's words)
    before any run folder is made where it can tell in advance.
    """
    specs = grid.specs() if isinstance(grid, GridSpec) else list(grid)
    if not specs:
        raise SlurmError("the grid has no runs")
    options.validate()
    for spec in specs:
        try:
            spec.validate()
        except RunSpecError as exc:
            raise SlurmError(f"run spec (seed {spec.seed}, {spec.backbone}): {exc}") from None
    if shutil.which("sbatch") is None:
        raise SlurmError("sbatch not found: this machine is not a Slurm submit host (install the Slurm "
                         "client and set SLURM_CONF, or train over SSH on a login node)")
    check_partition(options.partition)
    try:
        import submitit
    except ImportError:
        raise SlurmError("submitit is not installed: pip install 'iaa-desktop[cluster]'") from None
    data = {s.data for s in specs}
    if len(data) != 1:
        raise SlurmError("every run of a grid trains on the same training set")
    shared = stage_training_set(data.pop(), stage_dir)
    specs = [s.replace(data=str(shared)) for s in specs]

    now = dt.datetime.now()
    grid_id = name or f"{now:%Y%m%d-%H%M%S}-grid"
    grid_dir = grids_dir(workspace) / grid_id
    n = 1
    while grid_dir.exists():
        n += 1
        grid_dir = grids_dir(workspace) / f"{grid_id}-{n}"
    folder = grid_dir / "slurm"
    folder.mkdir(parents=True)
    several_alphas = len({s.alpha for s in specs if s.mode == "multitask"}) > 1
    run_dirs = [new_run_dir(workspace, spec, now, tag=f"a{spec.alpha:g}" if several_alphas else "")
                for spec in specs]

    executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=options.max_requeues,
                                      python=options.python or None)
    executor.update_parameters(job_name=f"iaa-{grid_dir.name}", **options.executor_parameters())
    jobs = []
    try:
        with executor.batch():
            for run_dir in run_dirs:
                jobs.append(executor.submit(TrainJob(run_dir, gpus=options.gpus_per_node,
                                                     threads=options.cpus_per_task or None,
                                                     python=options.python)))
    except Exception as exc:  # noqa: BLE001 - submitit raises its own errors with sbatch's stderr inside
        for folder_made in (*run_dirs, grid_dir):
            shutil.rmtree(folder_made, ignore_errors=True)
        raise SlurmError(f"sbatch refused the grid: {_short(str(exc))}") from None
    submitted = now.isoformat(timespec="seconds")
    for run_dir, job in zip(run_dirs, jobs, strict=True):
        _write_json(run_dir / SLURM_FILE, {
            "job_id": str(job.job_id), "grid": str(grid_dir), "submitted": submitted,
            "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)})
    record = {"grid_id": grid_dir.name, "submitted": submitted, "training_set": str(shared),
              "options": options.to_dict(), "runs": [str(d) for d in run_dirs],
              "job_ids": [str(j.job_id) for j in jobs]}
    _write_json(grid_dir / GRID_FILE, record)
    record["path"] = str(grid_dir / GRID_FILE)
    return record


def _short(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


# --- follow and cancel -----------------------------------------------------------------------------

def stderr_tail(record: dict, lines: int = 15) -> str:
    """The last lines of a Slurm job's stderr ('' when it has none yet)."""
    try:
        text = Path(record.get("stderr", "")).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return _short(text, lines)


def slurm_status(run_dir: str | Path, queue: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(status, message) of a Slurm run from the queue (as ``squeue_states``) and its events.

    ``None`` for a run that is not on Slurm. ``queued`` while Slurm holds the job
    without running it (also after a requeue), ``running`` while it runs, then what
    the run's events say; a job gone from the queue without a final event failed,
    with the tail of its stderr as the message.
    """
    run_dir = Path(run_dir)
    record = read_slurm_record(run_dir)
    if record is None:
        return None
    events, _ = read_events(run_dir)
    if any(e.get("event") == "run_finished" for e in events):
        return "finished", ""
    job = record["job_id"]
    cancelled = (run_dir / CANCELLED_MARKER).is_file()
    state, reason = queue.get(job, ("", ""))
    if state in RUNNING_STATES:
        return "running", f"Slurm job {job}"
    if state and not cancelled:
        requeued = any(e.get("event") == "run_started" for e in events)
        resumes = ", resumes from its checkpoint" if requeued else ""
        return "queued", (f"Slurm job {job} {state.lower()}{resumes}"
                          + (f" ({reason})" if reason else ""))
    if cancelled:
        return "cancelled", f"Slurm job {job} cancelled"
    last = next((e for e in reversed(events) if e.get("event") in ("run_started", "error")), None)
    if last is None:
        tail = stderr_tail(record)
        return "failed", f"Slurm job {job} ended before training started" + (f":\n{tail}" if tail else "")
    if last["event"] == "run_started":
        tail = stderr_tail(record)
        return "interrupted", f"Slurm job {job} ended without a final event" + (f":\n{tail}" if tail else "")
    return None  # the trainer's own error event says what happened (run_records.derive_status)


def grid_status(grid: dict) -> list[dict]:
    """One row per run of a grid: run, job id, status, message (from the queue and the run folders)."""
    from iaa_desktop.core.training.run_records import read_run_record

    run_dirs = [Path(d) for d in grid["runs"]]
    queue = squeue_states(grid.get("job_ids", ()))
    rows = []
    for run_dir in run_dirs:
        record = read_run_record(run_dir, running=False, queue=queue)
        rows.append({"run": run_dir.name, "run_dir": str(run_dir),
                     "job_id": (read_slurm_record(run_dir) or {}).get("job_id", ""),
                     "status": record.status, "epochs": record.epochs_done,
                     "message": record.message})
    return rows


def cancel_runs(run_dirs: Iterable[str | Path]) -> list[str]:
    """Mark the runs cancelled and ``scancel`` their jobs (queued or running); returns the job ids."""
    ids = []
    for run_dir in run_dirs:
        record = read_slurm_record(run_dir)
        if record is None:
            continue
        mark_cancelled(run_dir)
        ids.append(record["job_id"])
    if ids:
        _command(["scancel", *ids], f"cancelling job(s) {', '.join(ids)}")
    return ids
