"""Slurm through a login node over SSH: a stand-in ssh/rsync (tests/fake_remote.py) runs "the login
node" on this machine, where the project's CLI submits to the real throwaway Slurm of the
``slurm_cluster`` fixture. Submit, follow, copy back, cancel one run; and what each failure says."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iaa_desktop.core.training import slurm, slurm_login
from iaa_desktop.core.training.remote import RemoteTarget
from iaa_desktop.core.training.run_comparison import comparison_table
from iaa_desktop.core.training.run_records import read_run_record, scan_runs
from iaa_desktop.core.training.runs import RunSpec, RunSpecError
from iaa_desktop.core.training.slurm_grid import GridSpec, grid_values
from tests.fake_remote import install
from tests.slurm_cluster import PARTITION

pytestmark = pytest.mark.slow


def _spec(training_set, **overrides) -> RunSpec:
    values = {"data": str(training_set), "mode": "multitask", "backbone": "resnet10t", "batch_size": 4,
              "epochs": 2, "max_steps_per_epoch": 2, "device": "cpu", "augment": False}
    return RunSpec(**{**values, **overrides})


@pytest.fixture
def login(tmp_path, monkeypatch):
    """(home of the login node, target): ssh/rsync stand-ins first on PATH."""
    home, bin_dir = install(tmp_path / "login")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return home, RemoteTarget(host="login", python=sys.executable, workdir="cluster-ws")


def _options(**overrides) -> slurm.SlurmOptions:
    return slurm.SlurmOptions(**{"partition": PARTITION, "cpus_per_task": 1, "time_min": 5, **overrides})


def _refresh_until(run_dirs, wanted, timeout, cluster):
    """Refresh as the GUI does until the runs' records have the wanted statuses."""
    deadline = time.monotonic() + timeout
    statuses = []
    while time.monotonic() < deadline:
        slurm_login.refresh_login_runs(run_dirs)
        statuses = [read_run_record(d).status for d in run_dirs]
        if statuses == wanted:
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {wanted}: {statuses}\n{cluster.log_tail()}")


def test_grid_values_give_back_the_runs_and_refuse_a_non_grid(training_set):
    specs = GridSpec(_spec(training_set), seeds=(0, 1), backbones=("resnet10t", "resnet18"),
                     alphas=(0.25, 0.5)).specs()
    values = grid_values(specs)
    assert (values["seeds"], values["backbones"], values["alphas"]) == ([0, 1], ["resnet10t", "resnet18"],
                                                                        [0.25, 0.5])
    assert GridSpec(specs[0], (0, 1), ("resnet10t", "resnet18"), (0.25, 0.5)).specs() == specs
    with pytest.raises(RunSpecError, match="not one grid"):
        grid_values([specs[0], specs[3]])


def test_a_grid_submitted_through_the_login_node_is_followed_copied_back_and_cancelled_per_run(
        slurm_cluster, training_set, login, tmp_path):
    home, target = login
    workspace = tmp_path / "local-ws"
    # Held: both runs must show queued; then seed 1 alone is cancelled and seed 0 trains.
    grid = slurm_login.submit_grid_via_login(GridSpec(_spec(training_set), seeds=(0, 1)).specs(), workspace,
                                             _options(extra_sbatch=("--hold",)), target)
    assert (home / "cluster-ws" / "training-sets" / training_set.name).is_file()  # copied once
    remote_runs = [Path(r) for r in json.loads((Path(grid["grid"]) / "grid.json").read_text())["runs"]]
    assert all(str(r).startswith(str(home / "cluster-ws" / "runs")) for r in remote_runs)
    local = [Path(r) for r in grid["runs"]]
    assert [d.name for d in local] == [r.name for r in remote_runs]
    assert [r.status for r in scan_runs(workspace)] == ["queued", "queued"]

    states = slurm_login.refresh_login_runs(local)
    assert [states[str(d)][0] for d in local] == ["queued", "queued"], states
    assert "held" in states[str(local[0])][1].lower() or "pending" in states[str(local[0])][1].lower()

    assert slurm_login.cancel_slurm_runs([local[1]]) == [grid["job_ids"][1]]
    _refresh_until(local, ["queued", "cancelled"], 30, slurm_cluster)  # reported, then copied back
    subprocess.run(["scontrol", "release", grid["job_ids"][0].split("_")[0]], check=True)
    _refresh_until(local, ["finished", "cancelled"], 150, slurm_cluster)

    records = {r.run_dir: r for r in scan_runs(workspace)}
    done = records[local[0]]
    assert done.status == "finished" and done.epochs_done == 2 and done.test_metrics
    assert (local[0] / "checkpoints" / "best.safetensors").is_file()  # copied back whole once ended
    assert (local[0] / "events.jsonl").read_bytes() == (remote_runs[0] / "events.jsonl").read_bytes()
    assert not (local[0] / "slurm.json").exists()  # remote paths: the login node is asked instead
    assert records[local[1]].status == "cancelled"
    assert comparison_table([done], "balanced_accuracy")["n"].tolist() == [1]
    # Ended and copied back: the login node is not asked again.
    assert slurm_login.refresh_login_runs(local) == {}


def test_what_the_login_node_lacks_is_said(slurm_cluster, training_set, login, tmp_path):
    home, target = login
    specs = [_spec(training_set)]

    def refused(**changes):
        with pytest.raises(slurm.SlurmError) as info:
            slurm_login.submit_grid_via_login(specs, tmp_path / "ws", _options(**changes.pop("options", {})),
                                              RemoteTarget(**{**target.__dict__, **changes}))
        return str(info.value)

    assert "unknown partition 'nope': this cluster has debug" in refused(options={"partition": "nope"})
    assert "the login node login said" in refused(options={"partition": "nope"})
    assert "/opt/none/python not found on login" in refused(python="/opt/none/python")
    bare = tmp_path / "bare-python"  # a Python without the project
    bare.write_text("#!/bin/sh\nexec /usr/bin/python3 -I \"$@\"\n")
    bare.chmod(0o755)
    assert "has no iaa-desktop: pip install 'iaa-desktop[cluster]' there" in refused(python=str(bare))
    no_slurm = tmp_path / "python-without-slurm"  # the project, but no sbatch on the PATH
    no_slurm.write_text(f"#!/bin/sh\nPATH=/nonexistent exec {sys.executable} \"$@\"\n")
    no_slurm.chmod(0o755)
    assert "login has no sbatch: it is not a Slurm login node" in refused(python=str(no_slurm))
    assert "cannot reach the login node unreachable over ssh" in refused(host="unreachable")
    assert not (tmp_path / "ws").exists()  # nothing local for a refused grid
