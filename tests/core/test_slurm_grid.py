"""Slurm grids without a cluster: grid files, sbatch options, trainer command lines, and how a run's
status follows the queue (the real-Slurm tests are in tests/trainer/test_slurm.py)."""

import json
from pathlib import Path

import pytest

from iaa_desktop.core.training import slurm
from iaa_desktop.core.training.run_records import mark_cancelled, read_run_record
from iaa_desktop.core.training.runs import RunSpec, RunSpecError, append_event, save_spec
from iaa_desktop.core.training.slurm_grid import GridSpec, grid_from_dict, load_grid
from iaa_desktop.core.training.slurm_job import TrainJob, trainer_command


def test_grid_crosses_backbones_alphas_and_seeds():
    grid = GridSpec(RunSpec(mode="multitask"), seeds=(0, 1), backbones=("resnet18", "mobilenetv2_100"),
                    alphas=(0.25, 0.75))
    specs = grid.specs()
    assert len(specs) == 8
    assert {(s.backbone, s.alpha, s.seed) for s in specs} == {
        (b, a, s) for b in ("resnet18", "mobilenetv2_100") for a in (0.25, 0.75) for s in (0, 1)}
    # α means nothing to a diagnosis-only run: not crossed there.
    assert len(GridSpec(RunSpec(mode="classification"), seeds=(0, 1), alphas=(0.25, 0.75)).specs()) == 2


def test_grid_file_resolves_data_and_names_bad_fields(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"data": "sets/a.h5", "epochs": 3, "seeds": [0, 1, 1], "alphas": [0.5]}))
    grid = load_grid(path)
    assert grid.base.data == str((tmp_path / "sets" / "a.h5").resolve())
    assert grid.seeds == (0, 1)  # duplicates dropped
    path.write_text(json.dumps({"seeds": "0-4"}))
    with pytest.raises(RunSpecError, match=r"grid\.json: grid field 'seeds' must be a list"):
        load_grid(path)
    with pytest.raises(RunSpecError, match="alpha must lie in"):
        grid_from_dict({"mode": "multitask", "alphas": [1.5]})
    with pytest.raises(RunSpecError, match="unknown run spec field"):
        grid_from_dict({"seed_list": [1]})


def test_options_become_submitit_parameters():
    options = slurm.SlurmOptions(partition="gpu", gpus_per_node=2, cpus_per_task=8, mem_gb=31.5, time_min=90,
                                 account="lab", extra_sbatch=("--qos=high", "exclusive", "constraint=a100"))
    params = options.executor_parameters()
    assert params["partition"] == "gpu" and params["gpus_per_node"] == 2 and params["time"] == 90
    assert params["mem"] == "32256MB" and params["account"] == "lab"
    assert params["additional_parameters"] == {"qos": "high", "exclusive": True, "constraint": "a100"}
    assert "partition" not in slurm.SlurmOptions().executor_parameters()  # the cluster's default
    assert slurm.SlurmOptions.from_dict(options.to_dict()) == options
    with pytest.raises(slurm.SlurmError, match="time limit must be at least 1 minute"):
        slurm.SlurmOptions(time_min=0).validate()
    with pytest.raises(slurm.SlurmError, match="write it as name=value"):
        slurm.SlurmOptions(extra_sbatch=("--q os=1",)).validate()


def test_trainer_command_resumes_and_uses_torchrun_for_several_gpus(tmp_path):
    plain = trainer_command(tmp_path, python="py", gpus=1, resume=False, threads=2)
    assert plain == ["py", "-m", "trainer", str(tmp_path / "run.json"), "--out", str(tmp_path),
                     "--threads", "2"]
    ddp = trainer_command(tmp_path, python="py", gpus=4, resume=True)
    assert ddp[:5] == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert ddp[-4:] == ["trainer", "--out", str(tmp_path), "--resume"]
    job = TrainJob(tmp_path)
    assert not job.resumable()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last_state.pt").write_bytes(b"")
    assert job.resumable()


def _slurm_run(tmp_path: Path, job_id: str = "7_0") -> Path:
    run_dir = tmp_path / "runs" / "r1"
    save_spec(RunSpec(data="x.h5"), run_dir / "run.json")
    (run_dir / "slurm.json").write_text(json.dumps({"job_id": job_id, "stderr": str(tmp_path / "err.txt")}))
    return run_dir


def test_status_follows_the_queue_then_the_events(tmp_path):
    run_dir = _slurm_run(tmp_path)
    status = lambda queue: read_run_record(run_dir, running=False, queue=queue)  # noqa: E731
    assert status({"7_0": ("PENDING", "Priority")}).status == "queued"
    assert "Priority" in status({"7_0": ("PENDING", "Priority")}).message
    # Gone from the queue before the trainer wrote anything: failed, with the job's stderr.
    (tmp_path / "err.txt").write_text("srun: error: task 0: Exited with exit code 1\nImportError: trainer\n")
    record = status({})
    assert record.status == "failed" and "ImportError: trainer" in record.message
    append_event(run_dir, "run_started", spec={})
    assert status({"7_0": ("RUNNING", "")}).status == "running"
    append_event(run_dir, "error", message="training interrupted; --resume continues")
    requeued = status({"7_0": ("PENDING", "BeginTime")})
    assert requeued.status == "queued" and "resumes from its checkpoint" in requeued.message
    assert status({}).status == "interrupted"  # requeues used up: the trainer's own event decides
    mark_cancelled(run_dir)
    assert status({"7_0": ("PENDING", "")}).status == "cancelled"
    append_event(run_dir, "run_started", spec={})
    append_event(run_dir, "run_finished", best_epoch=1, best={}, test={})
    assert status({"7_0": ("COMPLETING", "")}).status == "finished"
    assert read_run_record(run_dir, running=False).status == "finished"  # no queue given: events only


def test_submit_refuses_before_creating_anything_without_sbatch(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(slurm.SlurmError, match="sbatch not found"):
        slurm.submit_grid([RunSpec(data=str(tmp_path / "x.h5"))], tmp_path / "ws", slurm.SlurmOptions())
    assert not (tmp_path / "ws").exists()
    with pytest.raises(slurm.SlurmError, match="squeue not found"):
        slurm.squeue_states()
    with pytest.raises(slurm.SlurmError, match="the grid has no runs"):
        slurm.submit_grid([], tmp_path / "ws", slurm.SlurmOptions())


def test_grid_runs_that_differ_in_alpha_are_named_apart(tmp_path):
    from iaa_desktop.core.training.plan import new_run_dir

    spec = RunSpec(mode="multitask", alpha=0.25, seed=3)
    assert new_run_dir(tmp_path, spec, tag="a0.25").name.endswith("-multitask-resnet18-a0.25-s3")
    assert new_run_dir(tmp_path, spec).name.endswith("-multitask-resnet18-s3")  # local runs: unchanged
