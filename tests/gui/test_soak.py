"""Soak: the main window on the demo dataset, 2,000 lesion switches, memory growth under 50 MB.

RSS is read from ``/proc/self/status`` (Linux) after a warm-up of 100 switches
(caches fill, Qt and pyqtgraph allocate their pools) and again after the 2,000
switches; the figure and the time taken are printed (``pytest -s`` shows them).
"""

import gc
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

from PySide6.QtCore import QSettings  # noqa: E402

from iaa_desktop.gui.main_window import MainWindow  # noqa: E402
from iaa_desktop.gui.pyside_fixes import apply_pyside_workarounds  # noqa: E402

WARM_UP = 100
SWITCHES = 2_000
MAX_GROWTH_MB = 50.0
TIMEOUT_MS = 30_000
STATUS = Path("/proc/self/status")


def rss_mb() -> float:
    """Resident set size of this process in MB (VmRSS)."""
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


def _switch(qtbot, window, row: int) -> None:
    with qtbot.waitSignal(window.lesion_shown, timeout=TIMEOUT_MS):
        window.table.select_row(row)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc (Linux)")
def test_2000_lesion_switches_grow_memory_less_than_50_mb(qtbot, tmp_path):
    # PySide6 6.12.0 + Python 3.11 abort after a few hundred signal emits without it.
    apply_pyside_workarounds()
    window = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignals([window.dataset_loaded, window.lesion_shown], timeout=120_000):
        assert window.open_dataset(None)  # the demo dataset
    # The dataset's analysis (agreement, QA, plots) lands once, whenever it finishes: let it land
    # before measuring, so that the figure is the switching's alone.
    qtbot.waitUntil(lambda: window.analysis is not None and not window.is_busy(), timeout=120_000)
    rows = window.table.row_count()
    assert rows >= 2
    # Walk forward then jump across the table so consecutive switches always change lesion.
    order = [(i * 7) % rows if rows % 7 else i % rows for i in range(WARM_UP + SWITCHES + 1)]
    order = [row if row != window_row else (row + 1) % rows
             for row, window_row in zip(order[1:], order[:-1], strict=True)]
    for row in order[:WARM_UP]:
        _switch(qtbot, window, row)
    gc.collect()
    qtbot.wait(50)
    before = rss_mb()
    started = time.perf_counter()
    for row in order[WARM_UP:WARM_UP + SWITCHES]:
        _switch(qtbot, window, row)
    seconds = time.perf_counter() - started
    gc.collect()
    qtbot.wait(50)
    growth = rss_mb() - before
    print(f"\nsoak: {SWITCHES} lesion switches over {rows} lesions in {seconds:.1f} s "
          f"({1000 * seconds / SWITCHES:.1f} ms each); RSS {before:.1f} MB -> {before + growth:.1f} MB, "
          f"growth {growth:+.1f} MB")
    assert growth < MAX_GROWTH_MB


def test_the_pyside_workaround_keeps_none_true_and_false_alive():
    applied = apply_pyside_workarounds()
    assert apply_pyside_workarounds() == applied  # once only
    settings = QSettings()  # any binding object: its void calls are what dropped references
    for _ in range(5_000):
        settings.setFallbacksEnabled(True)
    if "singleton-refcount" in applied:
        assert min(sys.getrefcount(v) for v in (None, True, False)) > 1 << 39
    else:
        assert sys.getrefcount(None) > 1  # the interpreter survived 5,000 void calls
