"""``iaa-desktop [DATASET] --screenshot PNG``: open, show the worst lesion, save the window, quit.

For documentation and smoke tests: works offscreen (``QT_QPA_PLATFORM=offscreen``)
and under Xvfb. The window uses throw-away settings, so the user's saved
layout and recent list are neither used nor changed.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from iaa_desktop.core.display.browser_table import lowest_iaa_image

log = logging.getLogger(__name__)

#: The window size of screenshots (fits a 1280 x 800 Xvfb screen).
SIZE = (1280, 800)
#: How long the window must stay idle before it is captured, and the longest wait in all (ms).
SETTLE_MS = 400
TIMEOUT_MS = 180_000
POLL_MS = 100


class ScreenshotJob:
    """Drives a ``MainWindow`` to the lowest-IAA lesion and saves it; ``exit_code`` when done."""

    def __init__(self, window, out: Path) -> None:
        self.window = window
        self.out = out
        self.exit_code: int | None = None
        self._target: str | None = None
        self._idle_ms = 0
        self._elapsed = 0
        window.analysis_ready.connect(self._on_window_analysis_ready)
        window.dataset_failed.connect(self._on_window_dataset_failed)
        self._timer = QTimer(window)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()

    def _on_window_analysis_ready(self, _analysis) -> None:
        data = self.window.table.data()
        target = lowest_iaa_image(data.frame()) if data is not None else None
        self._target = target or self.window.table.current_image_id() or ""
        if target:
            self.window.show_lesion(target)

    def _on_window_dataset_failed(self, message: str) -> None:
        log.error("screenshot: %s", message)
        self._finish(1)

    def _on_timer_timeout(self) -> None:
        self._elapsed += POLL_MS
        if self._elapsed > TIMEOUT_MS:
            log.error("screenshot: the window did not settle within %d s", TIMEOUT_MS // 1000)
            self._finish(1)
            return
        ready = (self._target is not None and not self.window.is_busy()
                 and (not self._target or self.window.lesion_view.image_id == self._target))
        self._idle_ms = self._idle_ms + POLL_MS if ready else 0
        if self._idle_ms >= SETTLE_MS:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            ok = self.window.grab().save(str(self.out))
            print(f"{'saved' if ok else 'could not save'} {self.out} "
                  f"(lesion {self.window.lesion_view.image_id or 'none'})")
            self._finish(0 if ok else 1)

    def _finish(self, code: int) -> None:
        self._timer.stop()
        self.exit_code = code
        self.window.close()
        QApplication.instance().exit(code)


def run_screenshot(app: QApplication, path: str | None, out: str | Path, log_path: Path | None) -> int:
    """Open ``path`` (the demo when ``None``), capture the window to ``out``; the exit code."""
    from iaa_desktop.gui.main_window import MainWindow

    with tempfile.TemporaryDirectory(prefix="iaa-desktop-screenshot-") as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, log_path=log_path)
        window.resize(*SIZE)
        window.show()
        job = ScreenshotJob(window, Path(out))
        window.open_dataset(path)
        code = app.exec()
        return job.exit_code if job.exit_code is not None else code
