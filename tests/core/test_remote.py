"""Remote GPU over SSH: the exact command lines, and start/poll/cancel through a stand-in ssh."""

import shlex
import subprocess
import sys
import time

import pytest

from iaa_desktop.core.training.remote import (
    RemoteError,
    RemoteTarget,
    alive_command,
    append_events_chunk,
    cancel_command,
    download_command,
    fetch_events_command,
    start_command,
    upload_commands,
)
from iaa_desktop.core.training.runs import append_event, read_events

TARGET = RemoteTarget(host="me@gpu-box", python="/opt/env/bin/python", workdir="~/iaa runs", port=2222)
SSH = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", "2222", "me@gpu-box", "--"]


def test_upload_creates_folders_then_copies_set_and_spec(tmp_path):
    commands = upload_commands(TARGET, "r1", tmp_path / "demo-224px.h5", tmp_path / "run.json")
    assert commands[0] == [*SSH, "mkdir -p ~/'iaa runs/runs/r1' ~/'iaa runs/training-sets'"]
    rsync = ["rsync", "-az", "--partial", "-e", "ssh -o BatchMode=yes -o ConnectTimeout=10 -p 2222"]
    assert commands[1] == [*rsync, str(tmp_path / "demo-224px.h5"),
                           "me@gpu-box:~/iaa runs/training-sets/demo-224px.h5"]
    assert commands[2] == [*rsync, str(tmp_path / "run.json"), "me@gpu-box:~/iaa runs/runs/r1/run.json"]


def test_start_runs_the_trainer_in_the_background_with_a_pid_file():
    command = start_command(TARGET, "r1", "/local/demo-224px.h5", threads=4)
    assert command[:-1] == SSH
    assert command[-1] == (
        "nohup /opt/env/bin/python -m trainer ~/'iaa runs/runs/r1/run.json' "
        "--data ~/'iaa runs/training-sets/demo-224px.h5' --out ~/'iaa runs/runs/r1' --threads 4 "
        "> ~/'iaa runs/runs/r1/trainer.out' 2>&1 < /dev/null & "
        "echo $! > ~/'iaa runs/runs/r1/remote_trainer.pid'")
    resumed = start_command(TARGET, "r1", "/local/demo-224px.h5", resume=True, extra_args=("--epochs", "5"))
    assert "run.json" not in resumed[-1].split(">")[0]
    assert "--out ~/'iaa runs/runs/r1' --resume --epochs 5 >" in resumed[-1]


def test_poll_cancel_and_download_commands(tmp_path):
    assert fetch_events_command(TARGET, "r1", 120)[-1] == (
        "test -f ~/'iaa runs/runs/r1/events.jsonl' && tail -c +121 ~/'iaa runs/runs/r1/events.jsonl' || true")
    pid = "~/'iaa runs/runs/r1/remote_trainer.pid'"
    assert alive_command(TARGET, "r1")[-1] == f"kill -0 \"$(cat {pid})\" 2>/dev/null"
    assert cancel_command(TARGET, "r1")[-1] == "kill -TERM \"$(cat ~/'iaa runs/runs/r1/remote_trainer.pid')\""
    assert download_command(TARGET, "r1", tmp_path / "run") == [
        "rsync", "-az", "--exclude", "remote_trainer.pid", "-e",
        "ssh -o BatchMode=yes -o ConnectTimeout=10 -p 2222",
        "me@gpu-box:~/iaa runs/runs/r1/", f"{tmp_path / 'run'}/"]
    with pytest.raises(RemoteError, match="offset"):
        fetch_events_command(TARGET, "r1", -1)


@pytest.mark.parametrize("target", [RemoteTarget(host=""), RemoteTarget(host="-oProxyCommand=x"),
                                    RemoteTarget(host="a b"), RemoteTarget(host="h", python=" "),
                                    RemoteTarget(host="h", workdir=""), RemoteTarget(host="h", port=70000)])
def test_bad_targets_are_refused(target):
    with pytest.raises(RemoteError):
        target.ssh("true")


def test_events_arrive_in_pieces_and_read_as_local_ones(tmp_path):
    remote = tmp_path / "remote"
    append_event(remote, "run_started", device="cuda:0")
    append_event(remote, "epoch_end", epoch=1, epochs=2, train_loss=0.5, val={})
    data = (remote / "events.jsonl").read_bytes()
    local = tmp_path / "local"
    offset = append_events_chunk(local, data[:30])  # a half line: not an event yet
    assert read_events(local)[0] == []
    offset = append_events_chunk(local, data[offset:])
    assert offset == len(data)
    assert [e["event"] for e in read_events(local)[0]] == ["run_started", "epoch_end"]


@pytest.fixture
def fake_ssh(tmp_path):
    """An ``ssh`` that runs the remote command locally in ``home`` (what sshd would do)."""
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    script.write_text("#!/bin/sh\nwhile [ \"$1\" != \"--\" ]; do shift; done\nshift\n"
                      f"cd {shlex.quote(str(home))}\nexec sh -c \"$1\"\n")
    script.chmod(0o755)
    return home, bin_dir


def test_start_poll_and_cancel_through_ssh(fake_ssh, tmp_path, monkeypatch):
    home, bin_dir = fake_ssh
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    # A stand-in trainer: writes run_started, then an epoch a second until SIGTERM, like iaa-train.
    trainer = tmp_path / "fake_python"
    trainer.write_text(
        f"#!{sys.executable}\n"
        "import signal, sys, time\n"
        "from iaa_desktop.core.training.runs import append_event\n"
        "out = sys.argv[sys.argv.index('--out') + 1]\n"
        "def stop(*_):\n"
        "    append_event(out, 'error', message='training interrupted; --resume continues')\n"
        "    sys.exit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "append_event(out, 'run_started', device='cuda:0')\n"
        "for epoch in range(1, 100):\n"
        "    time.sleep(0.2)\n"
        "    append_event(out, 'epoch_end', epoch=epoch, epochs=99, train_loss=1.0, val={})\n")
    trainer.chmod(0o755)
    target = RemoteTarget(host="gpu-box", python=str(trainer), workdir="work")
    (home / "work" / "runs" / "r1").mkdir(parents=True)
    subprocess.run(start_command(target, "r1", "/local/set.h5"), check=True, timeout=20)

    local, offset, kinds = tmp_path / "local", 0, []
    deadline = time.monotonic() + 20
    while "epoch_end" not in kinds and time.monotonic() < deadline:
        chunk = subprocess.run(fetch_events_command(target, "r1", offset), capture_output=True, check=True,
                               timeout=20).stdout
        offset = append_events_chunk(local, chunk)
        kinds = [e["event"] for e in read_events(local)[0]]
        time.sleep(0.1)
    assert kinds[:2] == ["run_started", "epoch_end"]
    assert subprocess.run(alive_command(target, "r1"), timeout=20).returncode == 0

    subprocess.run(cancel_command(target, "r1"), check=True, timeout=20)
    deadline = time.monotonic() + 20
    while subprocess.run(alive_command(target, "r1"), timeout=20).returncode == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    chunk = subprocess.run(fetch_events_command(target, "r1", offset), capture_output=True, check=True,
                           timeout=20).stdout
    append_events_chunk(local, chunk)
    events = read_events(local)[0]
    assert events[-1]["event"] == "error" and "interrupted" in events[-1]["message"]
    remote_events = home / "work" / "runs" / "r1" / "events.jsonl"
    assert (local / "events.jsonl").read_bytes() == remote_events.read_bytes()


def test_a_run_remembers_its_remote_machine(tmp_path):
    from iaa_desktop.core.training.remote import load_remote_target, save_remote_target

    assert load_remote_target(tmp_path) is None
    save_remote_target(tmp_path, TARGET)
    assert load_remote_target(tmp_path) == TARGET


def test_the_run_dialog_request_names_a_bad_remote_machine():
    from iaa_desktop.core.training.plan import RunRequest, remote_target, request_problems

    assert remote_target(RunRequest()) is None
    good = RunRequest(remote_host="me@gpu", remote_python="/env/bin/python", remote_workdir="runs")
    assert remote_target(good) == RemoteTarget("me@gpu", "/env/bin/python", "runs")
    assert request_problems(good) == []
    problems = request_problems(RunRequest(remote_host="me@gpu", remote_python=" "))
    assert problems == ["Remote Python: give the path of the remote environment's python."]
