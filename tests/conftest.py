"""Shared test setup."""

import atexit
import os
import shutil
import tempfile

import pytest

# Before any QApplication exists: without a display pytest-qt would abort the run.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Tests never touch the user's cache, workspaces or logs: one throw-away folder per session
# (the demo dataset is generated there once, in about 3 s).
_SESSION_DIR = tempfile.mkdtemp(prefix="iaa-desktop-tests-")
atexit.register(shutil.rmtree, _SESSION_DIR, True)
for _name, _sub in (("IAA_DESKTOP_CACHE_DIR", "cache"), ("IAA_DESKTOP_WORKSPACES_DIR", "workspaces"),
                    ("IAA_DESKTOP_LOG_DIR", "logs")):
    os.environ.setdefault(_name, os.path.join(_SESSION_DIR, _sub))

try:  # the GUI tests' QApplication comes from pytest-qt, not make_application: guard here too
    from iaa_desktop.gui.pyside_fixes import apply_pyside_workarounds
except ImportError:  # no PySide6: the core tests run without it
    pass
else:
    apply_pyside_workarounds()



@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node Slurm for the session (tests/slurm_cluster.py); skips saying why it cannot run.

    ``SLURM_CONF`` points at it while it runs, so sbatch/squeue/scancel and submitit find it.
    """
    from tests.slurm_cluster import ClusterUnavailable, start_cluster, stop_cluster

    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterUnavailable as exc:
        pytest.skip(f"no test Slurm: {exc}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
