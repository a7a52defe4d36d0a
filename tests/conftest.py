"""Shared test setup."""

import atexit
import os
import shutil
import tempfile

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
