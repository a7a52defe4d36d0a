"""A run started from the command line (``python -m trainer``) records its own pid and host: the runs
panel's scan sees it running (not interrupted) and can stop it; a pid file of another host is no
process here (run folders on a cluster's shared file system, or copied back from an SSH host)."""

import os
import socket
import subprocess
import sys
import time

from iaa_desktop.core.training.run_records import (
    PID_FILE,
    live_pid,
    read_run_record,
    remove_pid_file,
    stop_local_run,
    write_pid_file,
)
from iaa_desktop.core.training.runs import read_events


def test_a_command_line_run_shows_running_and_is_stopped_by_the_runs_panel(training_set, tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "trainer", "--data", str(training_set), "--out",
                                str(run_dir), "--mode", "classification", "--backbone", "resnet10t",
                                "--epochs", "500", "--max-steps", "1", "--batch-size", "4", "--device", "cpu",
                                "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # An epoch is finished (and resumable) once its last checkpoint is saved, which comes
        # after its epoch_end event: waiting for epoch_end alone raced the save.
        while not any(e["event"] == "checkpoint_saved" and e.get("which") == "last"
                      for e in read_events(run_dir)[0]):
            assert process.poll() is None and time.monotonic() < deadline, "the trainer did not train"
            time.sleep(0.5)
        fields = (run_dir / PID_FILE).read_text().split()
        assert fields == [str(process.pid), socket.gethostname()]
        assert read_run_record(run_dir).status == "running"  # was "interrupted" without the pid file
        assert stop_local_run(run_dir)
        assert process.wait(timeout=60) == 130
    finally:
        process.kill()
        process.wait()
    record = read_run_record(run_dir)
    assert record.status == "cancelled" and record.resumable
    assert not (run_dir / PID_FILE).exists()  # removed by the trainer on its way out
    assert not stop_local_run(run_dir)


def test_a_pid_file_of_another_host_names_no_process_here(tmp_path):
    (tmp_path / PID_FILE).write_text(f"{os.getpid()}\nsome-compute-node\n")
    assert live_pid(tmp_path) is None
    write_pid_file(tmp_path)  # this process (pytest): alive, but not a trainer
    assert live_pid(tmp_path) is None
    remove_pid_file(tmp_path)
    assert not (tmp_path / PID_FILE).exists()
    (tmp_path / PID_FILE).write_text("1\n")  # another process's file is left alone
    remove_pid_file(tmp_path)
    assert (tmp_path / PID_FILE).exists()
