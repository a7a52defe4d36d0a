"""What a Slurm job runs: one training run as ``python -m trainer``, requeued from its checkpoint.

``submitit`` pickles a ``TrainJob`` into the grid's ``slurm/`` folder and calls it
on the compute node. The call starts the trainer as a child process (under
``torch.distributed.run`` when the job has several GPUs), so the node's Python
that submitit runs never imports torch itself and the trainer is exactly the one
that runs locally: same run folder, same ``events.jsonl`` and checkpoints.

Time limit and preemption: Slurm sends SIGUSR2 ``signal_delay_s`` seconds before
it kills the job; submitit's handler calls ``TrainJob.checkpoint``, which stops
the trainer with SIGTERM (the trainer treats SIGUSR2 the same way: it writes an
``interrupted`` event, and every finished epoch is already saved) and hands
submitit the same job to requeue. The requeued job finds
``checkpoints/last_state.pt`` and starts the trainer with ``--resume``.

No Qt and no torch here: the module is imported by submitit on the node.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.runs import CHECKPOINT_DIR, RUN_SPEC_FILE, read_events

log = logging.getLogger(__name__)

#: The trainer's resume state: its presence means a requeued job goes on with ``--resume``.
RESUME_STATE = "last_state.pt"
#: Seconds the trainer gets to stop after SIGTERM before it is killed.
STOP_GRACE_S = 20
#: How often the job checks whether the trainer has ended.
POLL_S = 0.5


class TrainJobError(IAAError):
    """The trainer ended without finishing; the message carries its last error."""


def trainer_command(run_dir: Path, *, python: str, gpus: int, resume: bool,
                    threads: int | None = None) -> list[str]:
    """The trainer's argv for a run folder: ``--resume`` when it has saved state, torchrun for 2+ GPUs."""
    if gpus > 1:
        head = [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
                "-m", "trainer"]
    else:
        head = [python, "-m", "trainer"]
    args = ["--out", str(run_dir), "--resume"] if resume else [str(run_dir / RUN_SPEC_FILE), "--out",
                                                                str(run_dir)]
    if threads:
        args += ["--threads", str(int(threads))]
    return head + args


def last_error(run_dir: Path) -> str:
    """The message of the run's last ``error`` event ('' when there is none)."""
    events, _ = read_events(run_dir)
    error = next((e for e in reversed(events) if e.get("event") == "error"), None)
    return str(error.get("message", "")) if error else ""


class TrainJob:
    """A picklable callable: train ``run_dir`` (its ``run.json``) on the node; requeue-safe.

    Parameters
    ----------
    run_dir
        The run folder, on a file system the node and the submitting machine share.
    gpus
        GPUs of the node to use (one trainer process each under torchrun when more than one).
    threads
        torch CPU threads (``None``: the trainer's default, i.e. the job's CPUs).
    python
        The node's Python with the project installed (default: the submitting one).
    """

    def __init__(self, run_dir: str | Path, *, gpus: int = 0, threads: int | None = None,
                 python: str = "") -> None:
        self.run_dir = Path(run_dir)
        self.gpus = int(gpus)
        self.threads = threads
        self.python = python or sys.executable
        self._process: subprocess.Popen | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_process"] = None  # a live process never travels in the pickle
        return state

    def resumable(self) -> bool:
        return (self.run_dir / CHECKPOINT_DIR / RESUME_STATE).is_file()

    def __call__(self) -> str:
        resume = self.resumable()
        argv = trainer_command(self.run_dir, python=self.python, gpus=self.gpus, resume=resume,
                               threads=self.threads or _slurm_cpus())
        log.info("running %s", " ".join(argv))
        print(("resuming: " if resume else "starting: ") + " ".join(argv), flush=True)
        self._process = process = subprocess.Popen(argv, cwd=self.run_dir)
        # Poll, never Popen.wait(): submitit's SIGUSR2 handler (``checkpoint``) runs in this thread,
        # and a wait() it interrupted would hold the lock its own wait for the trainer needs.
        while (code := process.poll()) is None:
            time.sleep(POLL_S)
        self._process = None
        if code != 0:
            message = last_error(self.run_dir) or f"the trainer exited with code {code}"
            raise TrainJobError(f"{self.run_dir.name}: {message}")
        return str(self.run_dir)

    def stop_trainer(self) -> None:
        """SIGTERM the trainer and wait (it saves nothing half-written); kill it after the grace time."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        if not _ended(process, STOP_GRACE_S):
            process.kill()
            _ended(process, 5)

    def checkpoint(self):
        """Called by submitit on SIGUSR2 (time limit, preemption): stop the trainer, requeue this job."""
        from submitit.helpers import DelayedSubmission  # only on the node, inside a submitit job

        print("time limit or preemption: stopping the trainer, the job is requeued", flush=True)
        self.stop_trainer()
        return DelayedSubmission(TrainJob(self.run_dir, gpus=self.gpus, threads=self.threads,
                                          python=self.python))


def _ended(process: subprocess.Popen, timeout: float) -> bool:
    """Whether the process ends within ``timeout`` seconds (polled: see ``TrainJob.__call__``)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _slurm_cpus() -> int | None:
    value = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return int(value) if value.isdigit() and int(value) > 0 else None
