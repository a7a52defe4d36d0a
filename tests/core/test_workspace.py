"""The workspace database: WAL, transactions, one writer, read-only second instances, refusals."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from iaa_desktop.core.review.reviews import Review, all_reviews, save_review
from iaa_desktop.core.review.workspace import (
    LOCK_NAME,
    SCHEMA_VERSION,
    Workspace,
    WorkspaceError,
    read_lock_holder,
)
from iaa_desktop.core.workspace_paths import DATABASE_NAME, WORKSPACES_ENV, workspace_dir_for
from tests.builders import make_folder, tree_digest
from tests.shared_data import REPO_ROOT


def test_a_new_workspace_is_a_wal_database_with_the_schema(tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        assert not ws.read_only and ws.read_only_reason == ""
        assert ws.path == tmp_path / "ws" / DATABASE_NAME
        assert ws.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ws.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert ws.integrity_check() == "ok"
        holder = read_lock_holder(ws.folder)
        assert holder is not None and holder.pid == os.getpid()


def test_for_dataset_keeps_the_workspace_beside_the_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv(WORKSPACES_ENV, str(tmp_path / "workspaces"))
    root = make_folder(tmp_path / "data")
    before = tree_digest(root)
    with Workspace.for_dataset(root) as ws:
        save_review(ws, Review("a", "exclude"))
        assert ws.folder == workspace_dir_for(root)
        assert ws.meta("dataset_root") == str(root.resolve())
    assert tree_digest(root) == before


def test_a_workspace_inside_the_dataset_is_refused(tmp_path):
    root = make_folder(tmp_path / "data")
    with pytest.raises(WorkspaceError, match="inside the dataset"):
        Workspace.open(root / "ws", dataset_root=root)
    assert not (root / "ws").exists()


def test_second_instance_opens_read_only_and_says_who_holds_the_lock(tmp_path):
    first = Workspace.open(tmp_path / "ws")
    save_review(first, Review("a", "exclude", note="kept"))
    second = Workspace.open(tmp_path / "ws")
    try:
        assert second.read_only
        assert f"process {os.getpid()}" in second.read_only_reason
        assert "opened read-only" in second.read_only_reason
        assert all_reviews(second)["a"].note == "kept"  # it still reads
        with pytest.raises(WorkspaceError, match="open for writing in another IAA Desktop"):
            save_review(second, Review("b", "exclude"))
        save_review(first, Review("b", "needs_reannotation"))
        assert all_reviews(second)["b"].status == "needs_reannotation"  # sees the writer's commits
    finally:
        second.close()
        first.close()
    with Workspace.open(tmp_path / "ws") as third:  # the lock is free again
        assert not third.read_only
        assert third.integrity_check() == "ok"
        assert set(all_reviews(third)) == {"a", "b"}


def test_another_process_holding_the_workspace_makes_us_read_only(tmp_path):
    folder = tmp_path / "ws"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from iaa_desktop.core.review.workspace import Workspace
            ws = Workspace.open({str(folder)!r})
            print("read_only" if ws.read_only else "writer", flush=True)
            sys.stdin.readline()
            ws.close()
        """)],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writer"
        with Workspace.open(folder) as ws:
            assert ws.read_only
            assert f"process {child.pid}" in ws.read_only_reason
    finally:
        child.communicate("\n", timeout=30)
    assert child.returncode == 0
    with Workspace.open(folder) as ws:
        assert not ws.read_only


def test_read_only_on_request_and_without_a_database(tmp_path):
    with pytest.raises(WorkspaceError, match="no workspace database"):
        Workspace.open(tmp_path / "missing", read_only=True)
    Workspace.open(tmp_path / "ws").close()
    with Workspace.open(tmp_path / "ws", read_only=True) as ws:
        assert ws.read_only and "on request" in ws.read_only_reason
        with pytest.raises(WorkspaceError, match="on request"):
            save_review(ws, Review("a"))


def test_a_failed_transaction_is_rolled_back(tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        save_review(ws, Review("a", "exclude"))
        with pytest.raises(RuntimeError), ws.transaction() as db:
            db.execute("DELETE FROM reviews")
            raise RuntimeError("boom")
        assert set(all_reviews(ws)) == {"a"}


def test_a_newer_schema_and_a_non_database_file_are_refused_clearly(tmp_path):
    newer = tmp_path / "newer"
    Workspace.open(newer).close()
    with sqlite3.connect(newer / DATABASE_NAME) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(WorkspaceError, match="newer IAA Desktop"):
        Workspace.open(newer)
    assert not (newer / LOCK_NAME).read_text()  # the lock was released
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / DATABASE_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkspaceError, match=f"{DATABASE_NAME}: not a readable workspace database"):
        Workspace.open(garbage)
    assert read_lock_holder(garbage) is None  # the failed open released its lock


def test_a_closed_workspace_says_so(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    ws.close()
    ws.close()
    with pytest.raises(WorkspaceError, match="closed"):
        all_reviews(ws)


def test_without_os_locks_a_dead_holder_is_taken_over_and_a_live_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr("iaa_desktop.core.review.workspace.fcntl", None)
    folder = tmp_path / "ws"
    Workspace.open(folder).close()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    host = socket.gethostname()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": int(finished.stdout), "host": host, "since": "x"}))
    with Workspace.open(folder) as ws:
        assert not ws.read_only  # the stale lock of a dead process is taken over
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": host, "since": "x"}))
        with Workspace.open(folder) as ws:
            assert ws.read_only and f"process {sleeper.pid} on {host}" in ws.read_only_reason
    finally:
        sleeper.kill()
        sleeper.wait()
