"""Nothing lost: a process is SIGKILLed in the middle of a burst of review edits.

The child opens the workspace and saves edits as fast as it can, printing each
edit's id (and what it saved) after the save returned, i.e. after the commit.
The test kills it with SIGKILL mid-burst, reopens the workspace and checks that
every edit reported committed is there, the database passes
``PRAGMA integrity_check`` and the write lock died with the child. The second
test drives the same burst through the GUI's ``ReviewPanel`` (offscreen), the third
through the whole application (``MainWindow`` on a dataset, its Review dock).
"""

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from iaa_desktop.core.review.reviews import get_review
from iaa_desktop.core.review.workspace import Workspace
from tests.shared_data import REPO_ROOT

WAIT_FOR_EDITS = 60

CORE_CHILD = """
import sys
from iaa_desktop.core.review.reviews import STATUSES, Review, save_review
from iaa_desktop.core.review.workspace import Workspace

ws = Workspace.open(sys.argv[1])
assert not ws.read_only, ws.read_only_reason
for n in range(1_000_000):
    image_id = f"IMG_{n % 25:03d}"
    status = STATUSES[n % len(STATUSES)]
    note = f"note {n}, é"
    edit_id = save_review(ws, Review(image_id, status, note, "MV", "Dr. Crash"))
    print(f"{edit_id}\\t{image_id}\\t{status}\\t{note}", flush=True)
"""

GUI_CHILD = """
import os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtWidgets import QApplication
from iaa_desktop.core.review.reviews import STATUSES
from iaa_desktop.core.review.workspace import Workspace
from iaa_desktop.gui.widgets.review_panel import ReviewPanel

app = QApplication([])
panel = ReviewPanel()
panel.set_reviewer("Dr. Crash")
panel.set_workspace(Workspace.open(sys.argv[1]))
assert not panel.is_read_only()
panel.show()
for n in range(1_000_000):
    image_id = f"IMG_{n % 25:03d}"
    panel.set_lesion(image_id, ["A1", "A2"])
    status = STATUSES[(n + 1) % len(STATUSES)]
    panel.set_status(status)
    note = f"note {n}, é"
    edit_id = panel.set_note(note)
    print(f"{edit_id}\\t{image_id}\\t{status}\\t{note}", flush=True)
    app.processEvents()
"""


APP_CHILD = """
import os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QEventLoop, QSettings
from iaa_desktop.core.review.reviews import STATUSES
from iaa_desktop.gui.app import make_application
from iaa_desktop.gui.main_window import MainWindow

app = make_application()
window = MainWindow(settings=QSettings(sys.argv[2], QSettings.Format.IniFormat), analysis_workers=1)
window.show()
loop = QEventLoop()
window.dataset_loaded.connect(lambda *_: loop.quit())
window.open_dataset(sys.argv[3])
loop.exec()
panel = window.panels.review
assert not panel.is_read_only()
panel.set_reviewer("Dr. Crash")
ids = window.table.shown_image_ids()
for n in range(1_000_000):
    image_id = ids[n % len(ids)]
    window.show_lesion(image_id)  # the review panel follows the browser
    app.processEvents()
    status = STATUSES[(n + 1) % len(STATUSES)]
    panel.set_status(status)
    note = f"note {n}, é"
    edit_id = panel.set_note(note)
    print(f"{edit_id}\t{image_id}\t{status}\t{note}", flush=True)
"""


def _burst_and_kill(code: str, folder, *extra_args) -> list[tuple[int, str, str, str]]:
    """Run ``code`` on ``folder``, SIGKILL it after WAIT_FOR_EDITS edits; the edits it reported."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONIOENCODING": "utf-8"}
    args = [sys.executable, "-c", textwrap.dedent(code), str(folder), *map(str, extra_args)]
    child = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    try:
        while len(lines) < WAIT_FOR_EDITS:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"child ended early: {child.stderr.read().decode(errors='replace')}")
            lines.append(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # Lines printed between our last read and the kill count too; a cut-off last line does not.
    lines += rest.splitlines(keepends=True)
    edits = []
    for line in lines:
        if line.endswith(b"\n"):
            edit_id, image_id, status, note = line.decode("utf-8").rstrip("\n").split("\t")
            edits.append((int(edit_id), image_id, status, note))
    return edits


def _check_every_edit_is_there(folder, edits) -> None:
    with Workspace.open(folder) as ws:
        assert not ws.read_only, ws.read_only_reason  # the dead child's lock is gone
        assert ws.integrity_check() == "ok"
        saved = {row[0]: row[1:] for row in ws.connection.execute(
            "SELECT edit_id, image_id, status, note, reviewer FROM review_history")}
        for edit_id, image_id, status, note in edits:
            assert saved.get(edit_id) == (image_id, status, note, "Dr. Crash"), edit_id
        last = {}
        for edit_id, image_id, _status, _note in edits:
            last[image_id] = edit_id
        for image_id, edit_id in last.items():
            current = ws.connection.execute("SELECT edit_id FROM reviews WHERE image_id = ?",
                                            (image_id,)).fetchone()[0]
            assert current >= edit_id  # the last reported edit, or one committed just before the kill
        assert get_review(ws, edits[-1][1]).reviewer == "Dr. Crash"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")
def test_sigkill_mid_burst_loses_no_committed_edit(tmp_path):
    folder = tmp_path / "ws"
    edits = _burst_and_kill(CORE_CHILD, folder)
    assert len(edits) >= WAIT_FOR_EDITS
    _check_every_edit_is_there(folder, edits)


@pytest.mark.skipif(importlib.util.find_spec("PySide6") is None, reason="the gui extra is not installed")
def test_sigkill_of_the_review_panel_mid_burst_loses_no_committed_edit(tmp_path):
    folder = tmp_path / "ws"
    edits = _burst_and_kill(GUI_CHILD, folder)
    assert len(edits) >= WAIT_FOR_EDITS
    _check_every_edit_is_there(folder, edits)


@pytest.mark.skipif(importlib.util.find_spec("PySide6") is None, reason="the gui extra is not installed")
def test_sigkill_of_the_whole_app_mid_burst_loses_no_committed_edit(tmp_path, monkeypatch):
    """The real application (MainWindow with its Review dock) on a dataset, killed mid-burst."""
    from iaa_desktop.core.workspace_paths import WORKSPACES_ENV, workspace_dir_for
    from tests.builders import make_folder, tree_digest

    monkeypatch.setenv(WORKSPACES_ENV, str(tmp_path / "workspaces"))  # the child inherits it
    dataset = make_folder(tmp_path / "ds", shape=(40, 50))
    before = tree_digest(dataset)
    folder = workspace_dir_for(dataset)
    edits = _burst_and_kill(APP_CHILD, folder, tmp_path / "settings.ini", dataset)
    assert len(edits) >= WAIT_FOR_EDITS
    assert {image_id for _, image_id, _, _ in edits} == {"a", "b", "c"}
    _check_every_edit_is_there(folder, edits)
    assert tree_digest(dataset) == before  # the workspace lives beside the dataset, never in it
