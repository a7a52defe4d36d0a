"""The recent-datasets list kept in QSettings (newest first, existing folders only)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

KEY = "datasets/recent"
LAST_KEY = "datasets/last"
MAX_RECENT = 8


def recent_datasets(settings: QSettings) -> list[str]:
    """Remembered dataset folders, newest first, leaving out those that no longer exist."""
    value = settings.value(KEY, [])
    paths = [value] if isinstance(value, str) else list(value or [])
    return [p for p in paths if isinstance(p, str) and Path(p).is_dir()]


def remember_dataset(settings: QSettings, path: str | Path) -> list[str]:
    """Put ``path`` first in the recent list and make it the one reopened at start; the new list."""
    path = str(Path(path).resolve())
    paths = [path] + [p for p in recent_datasets(settings) if p != path]
    settings.setValue(KEY, paths[:MAX_RECENT])
    settings.setValue(LAST_KEY, path)
    return paths[:MAX_RECENT]


def last_dataset(settings: QSettings) -> str | None:
    """The dataset open when the app last closed, when it still exists ("" or None: the demo)."""
    value = settings.value(LAST_KEY, "")
    return value if isinstance(value, str) and value and Path(value).is_dir() else None


def forget_last(settings: QSettings) -> None:
    """The demo was opened last: start on it next time."""
    settings.setValue(LAST_KEY, "")
