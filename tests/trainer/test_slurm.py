"""Training grids on a real (throwaway, single-node) Slurm via submitit: finish, cancel, time limit + requeue.

The cluster comes from the session fixture ``slurm_cluster`` (tests/conftest.py);
without the Slurm binaries or root these tests skip and say so. Runs are tiny
(12 demo lesions at 32 px, 1-2 batches an epoch, CPU, one thread).
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from iaa_desktop.core.training import slurm
from iaa_desktop.core.training.run_comparison import comparison_table
from iaa_desktop.core.training.run_records import read_run_record, scan_runs
from iaa_desktop.core.training.runs import RunSpec, read_events
from iaa_desktop.core.training.slurm_grid import GridSpec
from tests.slurm_cluster import PARTITION

pytestmark = pytest.mark.slow


def _spec(training_set, **overrides) -> RunSpec:
    values = {"data": str(training_set), "mode": "multitask", "backbone": "resnet10t", "batch_size": 4,
              "epochs": 2, "max_steps_per_epoch": 2, "device": "cpu", "augment": False}
    return RunSpec(**{**values, **overrides})


def _options(**overrides) -> slurm.SlurmOptions:
    return slurm.SlurmOptions(**{"partition": PARTITION, "cpus_per_task": 1, "time_min": 5, **overrides})


def _wait(condition, timeout: float, what: str, cluster):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{cluster.log_tail()}")


def _statuses(grid) -> list[str]:
    return [row["status"] for row in slurm.grid_status(grid)]


def _epochs_saved(run_dir) -> list[int]:
    """Epochs whose resume state is on disk (``epoch_end`` comes just before the checkpoint)."""
    return [int(e["epoch"]) for e in read_events(run_dir)[0]
            if e["event"] == "checkpoint_saved" and e["which"] == "last"]


def test_grid_of_two_seeds_runs_to_completion(slurm_cluster, training_set, tmp_path):
    workspace = tmp_path / "workspace"
    # Held at submission (an extra sbatch option): the runs must show as queued, then run once released.
    grid = slurm.submit_grid(GridSpec(_spec(training_set), seeds=(0, 1)), workspace,
                             _options(extra_sbatch=("--hold",)), stage_dir=tmp_path / "scratch")
    assert len(grid["job_ids"]) == 2 and grid["job_ids"][0].endswith("_0"), grid["job_ids"]
    assert len({j.split("_")[0] for j in grid["job_ids"]}) == 1  # one job array
    assert Path(grid["training_set"]) == (tmp_path / "scratch" / training_set.name).resolve()
    rows = slurm.grid_status(grid)
    assert [r["status"] for r in rows] == ["queued", "queued"], rows
    assert "held" in rows[0]["message"].lower() or "pending" in rows[0]["message"].lower(), rows
    subprocess.run(["scontrol", "release", grid["job_ids"][0].split("_")[0]], check=True)

    _wait(lambda: _statuses(grid) == ["finished", "finished"], 120, "both runs to finish", slurm_cluster)
    records = scan_runs(workspace)
    assert [r.status for r in records] == ["finished", "finished"]
    assert sorted(r.spec.seed for r in records) == [0, 1]
    for record in records:
        assert record.spec.data == grid["training_set"]  # both read the one staged copy
        assert (record.run_dir / "summary.csv").is_file()
        assert (record.run_dir / "checkpoints" / "best.safetensors").is_file()
        assert record.epochs_done == 2 and record.test_metrics
    table = comparison_table(records, "balanced_accuracy")
    assert table["n"].tolist() == [2]  # the runs panel's comparison sees both seeds


def test_cancel_stops_a_running_job(slurm_cluster, training_set, tmp_path):
    workspace = tmp_path / "workspace"
    grid = slurm.submit_grid([_spec(training_set, epochs=500, max_steps_per_epoch=1)], workspace, _options())
    run_dir = Path(grid["runs"][0])
    _wait(lambda: _epochs_saved(run_dir), 90, "a first saved epoch", slurm_cluster)
    assert _statuses(grid) == ["running"]
    assert slurm.cancel_runs([run_dir]) == grid["job_ids"]
    _wait(lambda: not slurm.squeue_states(grid["job_ids"]), 60, "the job to leave the queue", slurm_cluster)
    record = read_run_record(run_dir, running=False, queue={})
    assert record.status == "cancelled", record
    assert record.epochs_done < 500
    assert record.resumable  # the trainer saved its last epoch: Resume goes on from there


def test_time_limit_requeues_and_resumes_from_the_checkpoint(slurm_cluster, training_set, tmp_path):
    workspace = tmp_path / "workspace"
    # SIGUSR2 55 s before the time limit: submitit stops the trainer and requeues the job.
    grid = slurm.submit_grid([_spec(training_set, epochs=1000, max_steps_per_epoch=1)], workspace,
                             _options(time_min=5, signal_delay_s=55))
    run_dir = Path(grid["runs"][0])
    job = grid["job_ids"][0]

    # Slurm sends the warning at its periodic check, up to a minute early: with a one-minute limit
    # from the start it can come before anything is saved. So the limit drops to one minute once
    # the first epoch is saved; from then on the job is within 55 s of it and gets the signal.
    _wait(lambda: _epochs_saved(run_dir), 90, "a first saved epoch", slurm_cluster)
    subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=1"], check=True)

    def resumed():
        events = read_events(run_dir)[0]
        starts = [e for e in events if e["event"] == "run_started"]
        return len(starts) >= 2 and any(e["event"] == "epoch_end" for e in events[events.index(starts[1]):])

    def requeued():
        state = slurm.squeue_states([job]).get(job, ("", ""))
        return state[0] == "PENDING" and any(e["event"] == "error" for e in read_events(run_dir)[0])

    _wait(requeued, 90, "the job to be requeued at its time limit", slurm_cluster)
    assert _statuses(grid) == ["queued"]
    assert "resumes from its checkpoint" in slurm.grid_status(grid)[0]["message"]
    # The requeued job keeps its one-minute limit, whose warning would stop it again at once:
    # give it time back. Slurm holds it for the credential lifetime (cred_expire, 10 s in the
    # test cluster); forcing an earlier start raced with the revoked credential ("Job credential
    # revoked", the job killed), so it starts by itself.
    subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=10"], check=True)
    _wait(resumed, 90, "the requeued job to resume", slurm_cluster)
    events = read_events(run_dir)[0]
    starts = [i for i, e in enumerate(events) if e["event"] == "run_started"]
    first, second = events[:starts[1]], events[starts[1]:]
    assert any(e["event"] == "error" and "interrupted" in e["message"] for e in first), first[-3:]
    saved = max(e["epoch"] for e in first if e["event"] == "checkpoint_saved" and e["which"] == "last")
    # The stop may save one more checkpoint than its events show (the signal can land between
    # the save and its event): the resume starts from the last saved epoch, never an older one.
    resumed_from = events[starts[1]]["resumed_from_epoch"]
    assert resumed_from in (saved, saved + 1)
    # The requeued trainer goes on after the saved epoch; no epoch is trained twice from scratch.
    assert min(e["epoch"] for e in second if e["event"] == "epoch_end") == resumed_from + 1
    assert "resuming:" in Path(slurm.read_slurm_record(run_dir)["stdout"]).read_text()
    slurm.cancel_runs([run_dir])
    _wait(lambda: not slurm.squeue_states(grid["job_ids"]), 60, "the job to leave the queue", slurm_cluster)


def test_unknown_partition_and_missing_sbatch_say_so(slurm_cluster, training_set, tmp_path, monkeypatch):
    spec = _spec(training_set)
    with pytest.raises(slurm.SlurmError, match=r"unknown partition 'gpu-a100': this cluster has debug"):
        slurm.submit_grid([spec], tmp_path / "ws", _options(partition="gpu-a100"))
    assert not (tmp_path / "ws").exists()  # nothing was created for a refused grid
    # sbatch itself refuses (more memory than the node has): its words come back, no folder stays.
    with pytest.raises(slurm.SlurmError, match=r"sbatch refused the grid:(.|\n)*sbatch: error"):
        slurm.submit_grid([spec], tmp_path / "ws", _options(mem_gb=100_000))
    assert not any((tmp_path / "ws" / "runs").glob("*")) and not any((tmp_path / "ws" / "grids").glob("*"))
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                               if not (Path(p) / "sbatch").exists()))
    with pytest.raises(slurm.SlurmError, match="sbatch not found"):
        slurm.submit_grid([spec], tmp_path / "ws", _options())


def test_cli_submits_reports_and_cancels(slurm_cluster, training_set, tmp_path, capsys):
    from iaa_desktop.cli.train_grid import main

    grid_file = tmp_path / "grid.json"
    grid_file.write_text(json.dumps({**_spec(training_set).to_dict(), "seeds": [0, 1]}))
    workspace = tmp_path / "workspace"
    assert main([str(grid_file), "--slurm", PARTITION, "--workspace", str(workspace), "--cpus", "1",
                 "--sbatch=--hold"]) == 0
    out = capsys.readouterr().out
    grid_dir = Path(out.splitlines()[0].split("grid: ")[1])
    job_ids = [line.split("\t")[0] for line in out.splitlines()[1:]]
    assert len(job_ids) == 2 and all(j.split("_")[0] == job_ids[0].split("_")[0] for j in job_ids), out

    assert main([str(grid_dir), "--status"]) == 3  # still queued
    assert capsys.readouterr().out.count("\tqueued\t") == 2
    assert main([str(grid_dir), "--cancel"]) == 0
    assert capsys.readouterr().out.startswith("cancelled 2 job(s)")
    _wait(lambda: not slurm.squeue_states(job_ids), 60, "the jobs to leave the queue", slurm_cluster)
    assert main([str(grid_dir / "grid.json"), "--status"]) == 0
    assert capsys.readouterr().out.count("\tcancelled\t") == 2

    assert main([str(grid_file), "--slurm", "nope", "--workspace", str(workspace)]) == 1
    assert "unknown partition 'nope': this cluster has debug" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.json"), "--slurm", PARTITION, "--workspace", str(workspace)]) == 2
    assert "grid file not found" in capsys.readouterr().err


def test_a_job_that_cannot_start_is_failed_with_its_stderr(slurm_cluster, training_set, tmp_path):
    grid = slurm.submit_grid([_spec(training_set)], tmp_path / "workspace",
                             _options(python=str(tmp_path / "no-such-python")))
    _wait(lambda: _statuses(grid) == ["failed"], 60, "the job to fail", slurm_cluster)
    message = slurm.grid_status(grid)[0]["message"]
    assert "ended before training started" in message
    assert "no-such-python" in message  # srun's own words from the job's stderr


def test_slurm_warning_then_sigterm_stop_the_trainer_once_with_its_event(training_set, tmp_path):
    """Under Slurm the trainer gets SIGUSR2 and at once SIGTERM from its job: one clean stop, one event."""
    import signal
    import sys

    run_dir = tmp_path / "run"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(_spec(training_set, epochs=1000, max_steps_per_epoch=1).to_dict()))
    process = subprocess.Popen([sys.executable, "-m", "trainer", str(spec), "--out", str(run_dir),
                                "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _epochs_saved(run_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGUSR2)
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        assert code == 130, (code, (run_dir / "train.log").read_text()[-2000:])
    finally:
        process.kill()
    errors = [e for e in read_events(run_dir)[0] if e["event"] == "error"]
    assert len(errors) == 1 and "interrupted" in errors[0]["message"], errors
    assert read_run_record(run_dir, running=False).resumable


def test_stopping_a_test_cluster_leaves_none_of_its_step_daemons(slurm_cluster, tmp_path):
    """A second throwaway cluster with a running job: stopped, none of its slurmstepd is left, and
    the session's cluster (another Slurm on the same machine) still runs its own."""
    from tests.slurm_cluster import start_cluster, step_daemons, stop_cluster

    other, mine = start_cluster(tmp_path / "other"), None
    try:
        env = {**os.environ, "SLURM_CONF": str(other.conf)}
        # Job logs in tmp_path: sbatch's default slurm-<id>.out lands in the current folder (the checkout).
        logs = f"--output={tmp_path}/slurm-%j.out"
        subprocess.run(["sbatch", logs, "--wrap", "sleep 300"], env=env, check=True, capture_output=True)
        _wait(lambda: step_daemons(other), 60, "the job's step daemon", other)
        mine = subprocess.run(["sbatch", "--parsable", logs, "--wrap", "sleep 300"], check=True,
                              capture_output=True, text=True).stdout.strip()  # on the session's cluster
        _wait(lambda: step_daemons(slurm_cluster), 60, "a step daemon of the session's cluster",
              slurm_cluster)
    finally:
        stop_cluster(other)
    try:
        assert step_daemons(other) == []
        assert step_daemons(slurm_cluster), "the session cluster's step daemons were stopped too"
    finally:
        if mine:
            subprocess.run(["scancel", mine], check=True)
