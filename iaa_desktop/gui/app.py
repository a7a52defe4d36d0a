"""Application setup: QApplication, pyqtgraph options, logging and the exception hook.

This is the only module of the GUI that configures logging handlers (see
STYLE.md); everything else uses ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

import platformdirs
import pyqtgraph as pg
from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtWidgets import QApplication, QMessageBox

from iaa_desktop._version import __version__
from iaa_desktop.gui.pyside_fixes import apply_pyside_workarounds

log = logging.getLogger(__name__)

#: Overrides the folder the log file is written to.
LOG_DIR_ENV = "IAA_DESKTOP_LOG_DIR"
LOG_NAME = "iaa-desktop.log"
_LOG_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
_pyqtgraph_configured = False

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], None]


def log_file_path() -> Path:
    """Where the GUI writes its log (``$IAA_DESKTOP_LOG_DIR`` or the user log folder)."""
    folder = os.environ.get(LOG_DIR_ENV) or platformdirs.user_log_dir("iaa-desktop")
    return Path(folder) / LOG_NAME


def configure_logging(level: int = logging.INFO) -> Path:
    """Log to a rotating file (``level`` and up) and to stderr (warnings); returns the file.

    Calling it again replaces the handlers it added before.
    """
    path = log_file_path()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_iaa_desktop", False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"))
        handlers[-1].setLevel(level)
    except OSError as exc:  # a read-only home must not stop the app
        print(f"iaa-desktop: cannot write the log file {path}: {exc}", file=sys.stderr)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    handlers.append(stderr)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        handler._iaa_desktop = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(min(level, root.level) if root.level else level)
    log.info("iaa-desktop %s, log file %s", __version__, path)
    return path


def configure_pyqtgraph() -> None:
    """Set pyqtgraph's global options, once per process."""
    global _pyqtgraph_configured
    if not _pyqtgraph_configured:
        # Images are (row, column) arrays, as numpy, OpenCV and the core give them.
        pg.setConfigOptions(imageAxisOrder="row-major")
        _pyqtgraph_configured = True


def make_excepthook(log_path: Path | None) -> ExceptHook:
    """A ``sys.excepthook`` that logs an uncaught exception and tells the user where the log is.

    The message box appears only when a QApplication exists, and never twice
    at once (an error while it is shown is only logged).
    """
    showing = False

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        nonlocal showing
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))
        if QApplication.instance() is None or showing:
            return
        showing = True
        try:
            where = f"\n\nThe full report is in the log file:\n{log_path}" if log_path else ""
            QMessageBox.critical(None, "Unexpected error",
                                 f"An unexpected error occurred:\n{exc_type.__name__}: {exc}{where}")
        finally:
            showing = False

    return excepthook


def make_application(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication (created if needed), named so QSettings finds our settings."""
    apply_pyside_workarounds()
    configure_pyqtgraph()
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setOrganizationName("iaa-desktop")
    app.setApplicationName("iaa-desktop")
    app.setApplicationDisplayName("IAA Desktop")
    app.setApplicationVersion(__version__)
    if not hasattr(app, "_iaa_garbage_collector"):
        # Collect reference cycles only in the GUI thread, on a timer: a Qt wrapper freed by a
        # collection that starts in a worker thread runs its C++ destructor there, which takes a
        # Qt lock the GUI thread may hold while it waits for the interpreter lock (a deadlock
        # seen in the tests). pyqtgraph's collector disables automatic collection for this.
        app._iaa_garbage_collector = GarbageCollector(interval=1.0)
    return app


def main(path: str | None = None, screenshot: str | None = None) -> int:
    """Run the desktop app on ``path`` (the demo dataset when ``None``); the exit code.

    Parameters
    ----------
    path
        A dataset folder to open at start.
    screenshot
        Save the window showing the lowest-IAA lesion to this PNG and exit.
    """
    from iaa_desktop.gui.main_window import MainWindow

    log_path = configure_logging()
    app = make_application()
    sys.excepthook = make_excepthook(log_path)
    if screenshot is not None:
        from iaa_desktop.gui.screenshot import run_screenshot

        return run_screenshot(app, path, screenshot, log_path)
    window = MainWindow(log_path=log_path)
    window.show()
    if path is None:
        window.open_default()
    else:
        window.open_dataset(path)
    return app.exec()
