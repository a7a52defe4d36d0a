"""Shared test setup."""

import os

# Before any QApplication exists: without a display pytest-qt would abort the run.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
