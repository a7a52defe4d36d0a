"""Opening an IMA++-sized index in the browser, sorting it and scrolling it (offscreen).

Issue 5 target: opening an index the size of IMA++ (15k rows) in <= 2 s with a table
that scrolls smoothly. Measured on the real IMA++ metadata (14,967 images):

- open: ``load_dataset`` + browser frame + ``LesionTable.set_data`` + first paint, median
  over repeats;
- sort: a header click on a numeric and a text column, the browser's numpy sort against
  the baseline of a ``QSortFilterProxyModel`` over the same data (the previous design);
- scroll: time to paint each page while paging through the whole table (median and
  95th percentile per page; 16 ms is one frame at 60 Hz).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_browser.py [--imapp ../shared/data/imapp]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QSortFilterProxyModel, Qt  # noqa: E402

from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.display.browser_table import BrowserData, base_frame  # noqa: E402
from iaa_desktop.gui.app import make_application  # noqa: E402
from iaa_desktop.gui.widgets.lesion_table import DataFrameModel, LesionTable  # noqa: E402


def _open(root: Path, app) -> tuple[float, LesionTable]:
    t = time.perf_counter()
    dataset = load_dataset(root)
    table = LesionTable()
    table.resize(560, 760)
    table.set_data(BrowserData(base_frame(dataset)))
    table.show()
    table.view.viewport().repaint()
    app.processEvents()
    return time.perf_counter() - t, table


def _median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imapp", type=Path, default=REPO.parent / "shared" / "data" / "imapp")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.imapp.is_dir():
        print(f"no IMA++ metadata at {args.imapp}", file=sys.stderr)
        return 2
    app = make_application()
    opens = []
    for _ in range(args.repeats):
        seconds, table = _open(args.imapp, app)
        opens.append(seconds)
    rows = table.row_count()
    print(f"open {rows:,} rows: median {statistics.median(opens):.2f} s (target <= 2 s) {opens}")

    columns = table.model.column_names()
    frame = table.model.frame()
    proxy_source = DataFrameModel()
    proxy_source.set_frame(frame[columns])
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(proxy_source)
    for name in ("annotators", "diagnosis"):
        col = columns.index(name)
        ours = _median_time(lambda c=col: table.model.sort(c, Qt.SortOrder.DescendingOrder))
        theirs = _median_time(lambda c=col: (proxy.sort(-1), proxy.sort(c, Qt.SortOrder.DescendingOrder)))
        print(f"sort by {name}: browser {ours * 1000:.1f} ms, QSortFilterProxyModel baseline "
              f"{theirs * 1000:.0f} ms ({theirs / ours:.0f}x)")

    view = table.view
    page = max(view.viewport().height() // view.verticalHeader().defaultSectionSize(), 1)
    times = []
    for row in range(0, rows, page):
        view.scrollTo(table.model.index(row, 0))
        t = time.perf_counter()
        view.viewport().repaint()
        times.append(time.perf_counter() - t)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    print(f"scroll {len(times)} pages of {page} rows: paint median {statistics.median(times) * 1000:.1f} ms, "
          f"95th percentile {p95 * 1000:.1f} ms (one frame at 60 Hz is 16.7 ms)")
    table.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
