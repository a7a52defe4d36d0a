"""Slurm through a cluster's login node over SSH: the project's own CLI submits the grid there.

This machine needs no Slurm client: everything Slurm is asked goes through
``ssh LOGIN python -m iaa_desktop.cli.train_grid ... --json`` with a
``remote.RemoteTarget`` (the login node, its Python with ``iaa-desktop[cluster]``
installed, a working folder on the cluster's shared file system, which the
compute nodes read and write):

1. ``submit_grid_via_login``: the training set is copied once to
   ``<workdir>/training-sets/`` (rsync: resumable, skipped when unchanged) and the
   grid file to ``<workdir>/grid-files/``; the CLI submits it there with
   ``--workspace <workdir>`` and answers with the grid record (remote run folders,
   job ids). Each run gets a mirror folder in this workspace's ``runs/`` with a
   ``slurm_login.json``: login node, remote grid and run folder, job id, and the
   status the login node last reported.
2. ``refresh_login_runs``: ``--status --json`` once per grid, then the runs that
   train (or have just ended) are copied back in one rsync: without
   ``checkpoints/`` while they train, whole once they have ended. The local
   ``events.jsonl`` follows the remote one, so the runs panel, curves,
   comparisons and predictions read the mirror as any run.
3. ``cancel_login_runs``: ``--cancel --run NAME --json`` (scancel on the login node).

Messages name the login node and say what went wrong there: not reachable, no
such Python, no iaa-desktop in it, no ``sbatch`` (not a login node), or what
Slurm said (an unknown partition lists the cluster's partitions).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shlex
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from iaa_desktop.core.training.remote import RemoteTarget, remote_training_set
from iaa_desktop.core.training.remote import quote_path as _q
from iaa_desktop.core.training.run_records import mark_cancelled
from iaa_desktop.core.training.runs import RunSpec, RunSpecError, save_spec
from iaa_desktop.core.training.slurm import (
    SLURM_FILE,
    SlurmError,
    SlurmOptions,
    cancel_runs,
    read_slurm_record,
)
from iaa_desktop.core.training.slurm_grid import grid_values
from iaa_desktop.core.workspace_paths import runs_dir

LOGIN_FILE = "slurm_login.json"
GRID_FILES_DIR = "grid-files"
CLI_MODULE = "iaa_desktop.cli.train_grid"
#: Statuses after which Slurm holds the job no more (the run folder is copied back whole once).
ENDED = ("finished", "failed", "cancelled", "interrupted")
#: Not copied back: the remote Slurm record (remote paths: the login node is asked instead)
#: and process-id files of processes on other machines.
SYNC_EXCLUDES = (SLURM_FILE, "trainer.pid", "remote_trainer.pid")
SSH_TIMEOUT_S = 120
COPY_TIMEOUT_S = 3600


# --- talking to the login node ---------------------------------------------------------------------

def _run(argv: list[str], what: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SlurmError(f"{what}: {argv[0]} not found on this machine (install OpenSSH and rsync)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{what}: {argv[0]} did not finish within {timeout:.0f} s") from None


def login_failure(target: RemoteTarget, code: int, stderr: str, what: str) -> SlurmError:
    """A ``SlurmError`` that says in plain words why a command on the login node failed."""
    host, said = target.host, stderr.strip()
    last = said.splitlines()[-1].removeprefix("iaa-train-grid: ").strip() if said else f"exit code {code}"
    if code == 255:
        return SlurmError(f"{what}: cannot reach the login node {host} over ssh "
                          f"(key-based login needed): {last}")
    if code == 127 or "not found" in said and target.python in said and CLI_MODULE not in said:
        return SlurmError(f"{what}: {target.python} not found on {host}: give the path of the login node's "
                          "Python with iaa-desktop[cluster] installed")
    if "No module named" in said and ("iaa_desktop" in said.split("No module named")[-1][:20]):
        return SlurmError(f"{what}: the Python {target.python} on {host} has no iaa-desktop: "
                          "pip install 'iaa-desktop[cluster]' there")
    if "unrecognized arguments" in said:
        return SlurmError(f"{what}: the iaa-desktop on {host} is older than this one ({last}): "
                          "update it there")
    if "sbatch not found" in said:
        return SlurmError(f"{what}: {host} has no sbatch: it is not a Slurm login node, or Slurm's commands "
                          "are not on the PATH of a non-interactive ssh shell there")
    return SlurmError(f"{what}: the login node {host} said: {last}")


def cli_command(target: RemoteTarget, args: Sequence[str]) -> list[str]:
    """``ssh LOGIN PYTHON -m iaa_desktop.cli.train_grid ARGS`` (args already quoted for the remote shell)."""
    return target.ssh(" ".join([_q(target.python), "-m", CLI_MODULE, *args]))


def run_cli(target: RemoteTarget, args: Sequence[str], what: str, ok_codes=(0,)) -> dict:
    """Run the grid CLI on the login node with ``--json``; its JSON answer, or a ``SlurmError``."""
    done = _run(cli_command(target, [*args, "--json"]), what, SSH_TIMEOUT_S)
    if done.returncode not in ok_codes:
        raise login_failure(target, done.returncode, done.stderr or done.stdout, what)
    for line in reversed(done.stdout.strip().splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict):
            return answer
    raise SlurmError(f"{what}: the login node {target.host} gave no answer the GUI can read "
                     f"({done.stdout.strip()[-200:] or 'nothing'})")


def _rsync(target: RemoteTarget, *args: str) -> list[str]:
    return ["rsync", "-az", "--partial", "-e", target.rsync_shell(), *args]


def _copy(argv: list[str], target: RemoteTarget, what: str) -> None:
    done = _run(argv, what, COPY_TIMEOUT_S)
    if done.returncode != 0:
        raise login_failure(target, done.returncode, done.stderr or done.stdout, what)


# --- submit ----------------------------------------------------------------------------------------

def upload_grid(target: RemoteTarget, specs: Sequence[RunSpec], name: str) -> PurePosixPath:
    """Copy the grid's training set (once) and its grid file to the login node; the remote grid file.

    The grid file names its training set relative to itself (``../training-sets/``),
    which the CLI resolves on the login node.
    """
    training_set = Path(specs[0].data)
    if not training_set.is_file():
        raise SlurmError(f"{training_set}: training set not found")
    values = grid_values(list(specs))
    data = remote_training_set(target, training_set)
    values["data"] = f"../{data.parent.name}/{data.name}"
    grid_file = PurePosixPath(target.workdir) / GRID_FILES_DIR / f"{name}.json"
    _copy(target.ssh(f"mkdir -p {_q(data.parent)} {_q(grid_file.parent)}"), target,
          f"creating {target.workdir} on {target.host}")
    _copy(_rsync(target, str(training_set), f"{target.host}:{data}"), target,
          f"copying the training set to {target.host}")
    with tempfile.TemporaryDirectory(prefix="iaa-grid-") as folder:
        local = Path(folder) / grid_file.name
        local.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
        _copy(_rsync(target, str(local), f"{target.host}:{grid_file}"), target,
              f"copying the grid file to {target.host}")
    return grid_file


def submit_arguments(options: SlurmOptions, workdir: str) -> list[str]:
    """The CLI's submit flags for ``options`` (quoted for the remote shell)."""
    args = ["--slurm", shlex.quote(options.partition), "--workspace", _q(workdir),
            "--gpus", str(options.gpus_per_node), "--cpus", str(options.cpus_per_task),
            "--mem-gb", f"{options.mem_gb:g}", "--time", str(options.time_min),
            "--max-requeues", str(options.max_requeues)]
    if options.account:
        args += ["--account", shlex.quote(options.account)]
    args += [shlex.quote(f"--sbatch={option}") for option in options.extra_sbatch]
    if options.python:
        args += ["--python", shlex.quote(options.python)]
    return args


def submit_grid_via_login(specs: Sequence[RunSpec], workspace: str | Path, options: SlurmOptions,
                          target: RemoteTarget) -> dict:
    """Submit the runs as one job array from the login node; the grid record with the local mirrors.

    Returns ``{"runs": [local run folders], "job_ids": [...], "grid": remote grid folder,
    "login_node": host}``; ``SlurmError`` (with what the login node or Slurm said) otherwise.
    """
    specs = list(specs)
    if not specs:
        raise SlurmError("the grid has no runs")
    options.validate()
    target.validate()
    try:
        for spec in specs:
            spec.validate()
        grid_values(specs)
    except RunSpecError as exc:
        raise SlurmError(str(exc)) from None
    now = dt.datetime.now()
    remote_file = upload_grid(target, specs, f"{now:%Y%m%d-%H%M%S}-grid")
    answer = run_cli(target, [_q(remote_file), *submit_arguments(options, target.workdir)],
                     f"submitting the grid through {target.host}")
    try:
        remote_runs, job_ids = list(answer["runs"]), [str(j) for j in answer["job_ids"]]
        grid = str(PurePosixPath(answer["path"]).parent)
    except (KeyError, TypeError):
        raise SlurmError(f"submitting the grid through {target.host}: unexpected answer {answer}") from None
    if len(remote_runs) != len(specs):
        raise SlurmError(f"{target.host} submitted {len(remote_runs)} runs, not {len(specs)}")
    local_runs = []
    checked = now.isoformat(timespec="seconds")
    for spec, remote_run, job_id in zip(specs, remote_runs, job_ids, strict=True):
        local = runs_dir(workspace) / PurePosixPath(remote_run).name
        local.mkdir(parents=True, exist_ok=True)
        save_spec(spec, local / "run.json")  # the login node's copy (its own data path) replaces it
        write_login_record(local, {
            "login_node": dataclasses.asdict(target), "grid": grid, "run_dir": remote_run,
            "job_id": job_id, "status": "queued", "message": f"Slurm job {job_id} submitted through "
                                                             f"{target.host}",
            "checked": checked, "synced": False})
        local_runs.append(str(local))
    return {"runs": local_runs, "job_ids": job_ids, "grid": grid, "login_node": target.host}


# --- the local mirror ------------------------------------------------------------------------------

def write_login_record(run_dir: str | Path, values: dict) -> None:
    path = Path(run_dir) / LOGIN_FILE
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    temp.replace(path)


def read_login_record(run_dir: str | Path) -> dict | None:
    """The run's ``slurm_login.json`` (``None``: not submitted through a login node, or unreadable)."""
    try:
        values = json.loads((Path(run_dir) / LOGIN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(values, dict) or not {"login_node", "grid", "run_dir", "job_id"} <= set(values):
        return None
    return values


def login_target(record: dict) -> RemoteTarget:
    try:
        return RemoteTarget(**record["login_node"])
    except TypeError:
        raise SlurmError(f"unreadable login node in {LOGIN_FILE}: {record['login_node']!r}") from None


def login_status(run_dir: str | Path, events: Sequence[dict]) -> tuple[str, str] | None:
    """(status, message) of a run submitted through a login node, as the login node last reported it.

    ``None`` for other runs. The report decides, not the copied-back events: an ended
    status is recorded only once the whole run folder is back (``refresh_login_runs``),
    so a run shows finished when its checkpoints are here, and the GUI polls until then.
    """
    record = read_login_record(run_dir)
    if record is None:
        return None
    status = str(record.get("status") or "queued")
    if status == "finished" or (status in ENDED and any(e.get("event") == "run_finished" for e in events)):
        return "finished", ""
    return status, str(record.get("message") or "")


def _group(run_dirs: Iterable[str | Path]) -> dict[tuple[RemoteTarget, str], list[tuple[Path, dict]]]:
    groups: dict[tuple[RemoteTarget, str], list[tuple[Path, dict]]] = {}
    for run_dir in run_dirs:
        record = read_login_record(run_dir)
        if record is not None:
            groups.setdefault((login_target(record), record["grid"]), []).append((Path(run_dir), record))
    return groups


def sync_command(target: RemoteTarget, remote_runs: Sequence[str], local_runs_dir: str | Path, *,
                 checkpoints: bool) -> list[str]:
    """One rsync that copies these remote run folders into ``local_runs_dir`` (checkpoints or not)."""
    excludes = [*SYNC_EXCLUDES, *(() if checkpoints else ("checkpoints",))]
    args = [arg for name in excludes for arg in ("--exclude", name)]
    return _rsync(target, *args, *(f"{target.host}:{run}" for run in remote_runs), f"{Path(local_runs_dir)}/")


def refresh_login_runs(run_dirs: Iterable[str | Path]) -> dict[str, tuple[str, str]]:
    """Ask each login node for its runs' states and copy back what changed; local run dir -> (status, msg).

    Runs already ended and copied back are not asked again. The first failure
    (login node unreachable...) raises ``SlurmError``; the records keep their last state.
    """
    result: dict[str, tuple[str, str]] = {}
    for (target, grid), items in _group(run_dirs).items():
        items = [(d, r) for d, r in items if not (r.get("status") in ENDED and r.get("synced"))]
        if not items:
            continue
        answer = run_cli(target, [_q(grid), "--status"], f"reading the grid's state from {target.host}",
                         ok_codes=(0, 1, 3))
        rows = {row.get("run"): row for row in answer.get("runs", []) if isinstance(row, dict)}
        now = dt.datetime.now().isoformat(timespec="seconds")
        light, full = [], []
        for local, record in items:
            row = rows.get(local.name)
            if row is None:
                continue
            record.update(status=str(row.get("status", "")), message=str(row.get("message", "")), checked=now)
            if record["status"] in ENDED:
                full.append((local, record))
            elif record["status"] == "running":
                light.append((local, record))
            result[str(local)] = (record["status"], record["message"])
        for batch, whole in ((light, False), (full, True)):
            if not batch:
                continue
            parent = batch[0][0].parent
            _copy(sync_command(target, [r["run_dir"] for _, r in batch], parent, checkpoints=whole), target,
                  f"copying run folders back from {target.host}")
            for _, record in batch:
                record["synced"] = whole
        for local, record in items:
            if str(local) in result:
                write_login_record(local, record)
    return result


# --- cancel ----------------------------------------------------------------------------------------

def cancel_login_runs(run_dirs: Iterable[str | Path]) -> list[str]:
    """``scancel`` the runs' jobs through their login nodes; marks them cancelled; returns the job ids."""
    ids: list[str] = []
    for (target, grid), items in _group(run_dirs).items():
        names = [arg for local, _ in items for arg in ("--run", shlex.quote(local.name))]
        answer = run_cli(target, [_q(grid), "--cancel", *names], f"cancelling through {target.host}")
        cancelled = [str(j) for j in answer.get("cancelled", [])]
        for local, record in items:
            mark_cancelled(local)
            if record.get("status") not in ENDED:
                # Still live until the next refresh reports it ended and copies its folder back.
                record.update(message=f"Slurm job {record['job_id']}: cancel sent through {target.host}")
                write_login_record(local, record)
        ids += cancelled
    return ids


def is_slurm_run(run_dir: str | Path) -> bool:
    """Whether a run was submitted to Slurm, here or through a login node."""
    return read_slurm_record(run_dir) is not None or read_login_record(run_dir) is not None


def cancel_slurm_runs(run_dirs: Iterable[str | Path]) -> list[str]:
    """Cancel Slurm runs wherever they were submitted (``scancel`` here, or through their login node)."""
    run_dirs = [Path(d) for d in run_dirs]
    here = [d for d in run_dirs if read_slurm_record(d) is not None and read_login_record(d) is None]
    ids = cancel_runs(here) if here else []
    return ids + cancel_login_runs(d for d in run_dirs if read_login_record(d) is not None)
