"""Running the same trainer on another machine over SSH: the exact command lines.

The remote machine needs the project installed in a Python environment
(``RemoteTarget.python``) and SSH access with a key (``BatchMode``: never a
password prompt). A remote run lives in ``<workdir>/runs/<run id>/`` with its
training set in ``<workdir>/training-sets/``; the local run directory mirrors it:

1. ``upload_commands``: create the folders, copy the training set (rsync,
   resumable, skipped when unchanged) and ``run.json``;
2. ``start_command``: ``nohup python -m trainer ...`` in the background, its
   process id in ``remote_trainer.pid``, stdout/stderr in ``trainer.out``;
3. ``fetch_events_command``: the bytes of ``events.jsonl`` after the local
   copy's length (``tail -c +N``); append them with ``append_events_chunk`` and
   read them with ``core.runs.read_events`` exactly like a local run;
4. ``alive_command`` / ``cancel_command`` (SIGTERM: the trainer saves nothing
   half-written and ``--resume`` goes on) / ``download_command`` (the whole run
   directory back: checkpoints, summary, log).

Every function returns an argv list for ``subprocess`` or ``QProcess``; nothing
here runs a command, so it is tested by the command lines themselves.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.runs import EVENTS_FILE, RUN_SPEC_FILE

#: Not ``trainer.pid`` (the local runs' file): a remote process id means nothing on this machine.
REMOTE_PID_FILE = "remote_trainer.pid"
REMOTE_OUTPUT_FILE = "trainer.out"


class RemoteError(IAAError):
    """A remote target that cannot be used as given."""


@dataclass(frozen=True)
class RemoteTarget:
    """A machine to train on: ``host`` (``user@host`` or an ~/.ssh/config alias), its Python, a folder."""

    host: str
    python: str = "python3"
    workdir: str = "iaa-desktop"
    port: int | None = None
    identity: str | None = None
    connect_timeout: int = 10

    def validate(self) -> None:
        if not self.host.strip() or any(c.isspace() for c in self.host) or self.host.startswith("-"):
            raise RemoteError(f"remote host {self.host!r}: give user@host or an ssh config name")
        if not self.python.strip():
            raise RemoteError("remote Python: give the path of the remote environment's python")
        if not self.workdir.strip():
            raise RemoteError("remote working directory: give a folder on the remote machine")
        if self.port is not None and not 0 < self.port < 65536:
            raise RemoteError(f"remote port {self.port} is not a TCP port")

    def ssh_options(self) -> list[str]:
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if self.port is not None:
            options += ["-p", str(self.port)]
        if self.identity:
            options += ["-i", self.identity]
        return options

    def ssh(self, remote_command: str) -> list[str]:
        """``ssh [options] host -- 'command'`` (the command is one shell string run by the remote shell)."""
        self.validate()
        return ["ssh", *self.ssh_options(), self.host, "--", remote_command]

    def rsync_shell(self) -> str:
        return shlex.join(["ssh", *self.ssh_options()])


def quote_path(path: PurePosixPath | str) -> str:
    """A remote path quoted for the remote shell; a leading ``~/`` stays outside the quotes (it expands)."""
    text = str(path)
    if text.startswith("~/"):
        return "~/" + shlex.quote(text[2:])
    return shlex.quote(text)


_q = quote_path


def remote_run_dir(target: RemoteTarget, run_id: str) -> PurePosixPath:
    return PurePosixPath(target.workdir) / "runs" / run_id


def remote_training_set(target: RemoteTarget, training_set: str | Path) -> PurePosixPath:
    return PurePosixPath(target.workdir) / "training-sets" / Path(training_set).name


def upload_commands(target: RemoteTarget, run_id: str, training_set: str | Path,
                    spec_file: str | Path) -> list[list[str]]:
    """Commands that create the remote folders and copy the training set and the spec.

    The spec is copied as is; ``start_command`` passes the remote training-set
    path with ``--data``, which overrides the spec's local one.
    """
    run_dir = remote_run_dir(target, run_id)
    data = remote_training_set(target, training_set)
    mkdir = target.ssh(f"mkdir -p {_q(run_dir)} {_q(data.parent)}")
    rsync = ["rsync", "-az", "--partial", "-e", target.rsync_shell()]
    return [mkdir,
            [*rsync, str(training_set), f"{target.host}:{data}"],
            [*rsync, str(spec_file), f"{target.host}:{run_dir / RUN_SPEC_FILE}"]]


def start_command(target: RemoteTarget, run_id: str, training_set: str | Path, *, resume: bool = False,
                  threads: int | None = None, extra_args: tuple[str, ...] = ()) -> list[str]:
    """Start ``python -m trainer`` in the background on the remote machine (survives the SSH session)."""
    run_dir = remote_run_dir(target, run_id)
    args = [_q(target.python), "-m", "trainer"]
    if not resume:
        args.append(_q(run_dir / RUN_SPEC_FILE))
    args += ["--data", _q(remote_training_set(target, training_set)), "--out", _q(run_dir)]
    if resume:
        args.append("--resume")
    if threads:
        args += ["--threads", str(int(threads))]
    args += [shlex.quote(a) for a in extra_args]
    # Paths are relative to the remote home unless the workdir is absolute (as rsync reads them).
    script = (f"nohup {' '.join(args)} > {_q(run_dir / REMOTE_OUTPUT_FILE)} 2>&1 < /dev/null & "
              f"echo $! > {_q(run_dir / REMOTE_PID_FILE)}")
    return target.ssh(script)


def fetch_events_command(target: RemoteTarget, run_id: str, offset: int) -> list[str]:
    """Print the remote ``events.jsonl`` from byte ``offset`` on (nothing when it does not exist yet)."""
    if offset < 0:
        raise RemoteError(f"byte offset must be 0 or more, not {offset}")
    path = remote_run_dir(target, run_id) / EVENTS_FILE
    return target.ssh(f"test -f {_q(path)} && tail -c +{offset + 1} {_q(path)} || true")


def append_events_chunk(local_run_dir: str | Path, chunk: bytes) -> int:
    """Append bytes fetched with ``fetch_events_command`` to the local ``events.jsonl``; returns its size.

    The next fetch starts at the returned size. A half-written last line is fine:
    ``read_events`` leaves it until the rest arrives.
    """
    path = Path(local_run_dir) / EVENTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(chunk)
    return path.stat().st_size


def alive_command(target: RemoteTarget, run_id: str) -> list[str]:
    """Exit status 0 while the remote trainer runs."""
    pid = remote_run_dir(target, run_id) / REMOTE_PID_FILE
    return target.ssh(f"kill -0 \"$(cat {_q(pid)})\" 2>/dev/null")


def cancel_command(target: RemoteTarget, run_id: str) -> list[str]:
    """SIGTERM the remote trainer (it writes an ``error`` event saying it was interrupted)."""
    pid = remote_run_dir(target, run_id) / REMOTE_PID_FILE
    return target.ssh(f"kill -TERM \"$(cat {_q(pid)})\"")


def download_command(target: RemoteTarget, run_id: str, local_run_dir: str | Path) -> list[str]:
    """Copy the remote run directory back over the local one (checkpoints, summary, log, events)."""
    run_dir = remote_run_dir(target, run_id)
    return ["rsync", "-az", "--exclude", REMOTE_PID_FILE, "-e", target.rsync_shell(),
            f"{target.host}:{run_dir}/", f"{Path(local_run_dir)}/"]


REMOTE_FILE = "remote.json"


def save_remote_target(run_dir: str | Path, target: RemoteTarget) -> Path:
    """Record in the local run directory where the run trains (so Resume goes back there)."""
    import dataclasses
    import json

    path = Path(run_dir) / REMOTE_FILE
    path.write_text(json.dumps(dataclasses.asdict(target), indent=2) + "\n", encoding="utf-8")
    return path


def load_remote_target(run_dir: str | Path) -> RemoteTarget | None:
    """The machine a run trains on (``None``: a local run, or an unreadable record)."""
    import json

    path = Path(run_dir) / REMOTE_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return RemoteTarget(**values)
    except (OSError, ValueError, TypeError):
        return None
