"""A throwaway single-node Slurm for the tests: generated slurm.conf, started as root, stopped by pid.

``start_cluster(folder)`` returns a ``Cluster`` (or raises ``ClusterUnavailable``
saying why: not root, binaries missing, a daemon that did not come up). All of
Slurm's state lives in ``folder``; the daemons listen on free ports so a real
Slurm on the machine is left alone. munged is started only when none answers,
and then stopped again. Recipe: ENVIRONMENT.md, "A real single-node Slurm".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "munged", "munge", "unmunge")
PARTITION = "debug"


class ClusterUnavailable(RuntimeError):
    """Why a test Slurm cannot run here."""


@dataclass
class Cluster:
    folder: Path
    conf: Path
    pids: list[int] = field(default_factory=list)
    #: munged when this module started it (``None``: one was already running).
    munge_pid: int | None = None

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("ctld.log", "d.log"):
            path = self.folder / name
            if path.is_file():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _munge_works() -> bool:
    try:
        token = subprocess.run(["munge", "-n"], capture_output=True, timeout=10, check=True).stdout
        return subprocess.run(["unmunge"], input=token, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _start_munge(folder: Path) -> int | None:
    """Start munged (as the munge user) when none answers; its pid, or ``None`` when one already ran."""
    if _munge_works():
        return None
    if not Path("/etc/munge/munge.key").is_file():
        subprocess.run(["mungekey", "-c"], check=True, capture_output=True)
        shutil.chown("/etc/munge/munge.key", "munge", "munge")
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged"], check=True,
                   capture_output=True)
    for _ in range(50):
        if _munge_works():
            break
        time.sleep(0.1)
    else:
        raise ClusterUnavailable("munged started but munge -n | unmunge fails")
    pid_file = Path("/run/munge/munged.pid")
    return int(pid_file.read_text().strip()) if pid_file.is_file() else None


def write_conf(folder: Path) -> Path:
    host = socket.gethostname().split(".")[0]
    mem = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
    (folder / "state").mkdir(parents=True, exist_ok=True)
    (folder / "spool").mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    # KillWait/MinJobAge short: a timed-out job is killed and requeued within seconds, not 30 s.
    # cred_expire 10 s (default 120): a requeued job waits that long before it may start again,
    # since an earlier start on the same node finds its credential revoked and is killed.
    conf.write_text(f"""ClusterName=iaatest
SlurmctldHost={host}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/ctld.log
SlurmdLogFile={folder}/d.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
KillWait=5
MinJobAge=30
OverTimeLimit=0
NodeName={host} CPUs={os.cpu_count()} RealMemory={mem} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def start_cluster(folder: Path, timeout: float = 30) -> Cluster:
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        raise ClusterUnavailable(f"Slurm/munge binaries not installed ({', '.join(missing)}): "
                                 "apt-get install slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        raise ClusterUnavailable("a test Slurm is started as root (slurmd must run as root); not root here")
    folder.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(folder, write_conf(folder))
    cluster.munge_pid = _start_munge(folder)
    env = {**os.environ, "SLURM_CONF": str(cluster.conf)}
    for daemon, pid_file in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
        subprocess.run([daemon, "-c", "-f", str(cluster.conf)] if daemon == "slurmctld"
                       else [daemon, "-c", "-f", str(cluster.conf)], env=env, check=True, capture_output=True)
        for _ in range(100):
            if (folder / pid_file).is_file() and (folder / pid_file).read_text().strip():
                cluster.pids.insert(0, int((folder / pid_file).read_text().strip()))
                break
            time.sleep(0.1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() in ("idle", "mix", "alloc"):
            return cluster
        time.sleep(0.5)
    stop_cluster(cluster)
    raise ClusterUnavailable(f"Slurm did not come up within {timeout:.0f} s:\n{cluster.log_tail()}")


def step_daemons(cluster: Cluster) -> list[int]:
    """The ``slurmstepd`` processes of this cluster (not of another Slurm on the machine).

    A step daemon inherits slurmd's environment, and this module starts slurmd with
    ``SLURM_CONF`` naming the cluster's own ``slurm.conf``: that is how they are told apart.
    """
    wanted = f"SLURM_CONF={cluster.conf}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "slurmstepd":
                continue
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:  # ended meanwhile, or not readable
            continue
    return pids


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)


def _other_controllers(cluster: Cluster) -> bool:
    """Whether a slurmctld other than this cluster's runs on the machine."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) not in cluster.pids:
            try:
                if (proc / "comm").read_text().strip() == "slurmctld":
                    return True
            except OSError:
                continue
    return False


def stop_cluster(cluster: Cluster) -> None:
    """Cancel every job, stop the daemons (and a munged this module started) by pid, then the
    cluster's own step daemons that outlived slurmd (a cancelled job's can)."""
    env = {**os.environ, "SLURM_CONF": str(cluster.conf)}
    subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True, timeout=20)
    for pid in cluster.pids:
        _stop(pid)
    # munged is shared: another test session's cluster (a second checkout on the machine) may be
    # using it even though this one started it; it is stopped only when no other slurmctld runs.
    if cluster.munge_pid and not _other_controllers(cluster):
        _stop(cluster.munge_pid)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        left = step_daemons(cluster)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + 5
        while left and step_daemons(cluster) and time.monotonic() < deadline:
            time.sleep(0.1)
