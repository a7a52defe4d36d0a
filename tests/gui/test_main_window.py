"""The main window, offscreen: loading, the lesion table, the lesion view, errors."""

import logging
import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from iaa_desktop.core.palette import ANNOTATOR_COLOURS  # noqa: E402
from iaa_desktop.gui import main_window as main_window_module  # noqa: E402
from iaa_desktop.gui.app import make_excepthook  # noqa: E402
from iaa_desktop.gui.main_window import MainWindow, about_text  # noqa: E402
from iaa_desktop.gui.widgets.lesion_table import DataFrameModel  # noqa: E402
from iaa_desktop.gui.workers import dataset_worker, generator_worker  # noqa: E402
from tests.builders import make_folder  # noqa: E402
from tests.shared_data import REPO_ROOT  # noqa: E402

TIMEOUT_MS = 15_000


@pytest.fixture
def dataset_dir(tmp_path):
    return make_folder(tmp_path / "ds", shape=(60, 80))


@pytest.fixture
def message_boxes(monkeypatch):
    """QMessageBox's static dialogs, recorded instead of shown (they would block)."""
    shown = []

    def fake(kind):
        return lambda parent, title, text, *args, **kwargs: shown.append((kind, title, text))

    for kind in ("critical", "warning", "information", "about"):
        monkeypatch.setattr(QMessageBox, kind, fake(kind))
    return shown


@pytest.fixture
def window(qtbot, tmp_path, message_boxes):
    win = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                     analysis_workers=1)
    qtbot.addWidget(win)
    win.show()
    return win


def open_and_wait(qtbot, window, path):
    """Open ``path`` and wait until its first lesion is drawn and no worker runs."""
    with qtbot.waitSignals([window.dataset_loaded, window.lesion_shown], timeout=TIMEOUT_MS):
        assert window.open_dataset(path)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=TIMEOUT_MS)


def table_ids(window):
    return [window.table.image_id_at(row) for row in range(window.table.row_count())]


def test_dataset_worker_reports_a_bad_path_as_an_error(qtbot, tmp_path):
    errors, results = [], []
    worker = dataset_worker(tmp_path / "missing", errors.append)
    worker.returned.connect(results.append)
    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS):
        worker.start()
    assert results == []
    assert len(errors) == 1 and "no such directory" in str(errors[0])


def test_a_cancelled_generator_worker_runs_its_clean_up_before_finished(qtbot):
    import threading

    cleaned: list[str] = []
    release = threading.Event()

    def job():
        try:
            for i in range(1000):
                yield i
                release.wait(5)
        finally:  # as the agreement engine's cache flush and pool shutdown
            cleaned.append(threading.current_thread().name)

    errors: list[BaseException] = []
    worker = generator_worker(job(), errors.append)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.yielded.connect(lambda _step: worker.quit())
        worker.start()
        qtbot.waitUntil(lambda: worker.abort_requested, timeout=5_000)
        release.set()
    assert cleaned and cleaned[0] != threading.main_thread().name  # ran, in the worker thread
    assert errors == []
    assert worker is not None  # still referenced: superqt alone leaves the clean-up to the collector


def test_window_loads_a_dataset(qtbot, window, dataset_dir):
    open_and_wait(qtbot, window, dataset_dir)
    assert table_ids(window) == ["a", "b", "c"]
    assert window.counts_label.text() == "3 images · 6 masks · 2 annotators"
    assert window.problems_label.text() == "0 problems"
    assert "ds" in window.windowTitle()
    assert window.lesion_view.image_id == "a"
    assert window.table.current_image_id() == "a"
    assert window.task_label.text() == "Ready"


def test_table_sorts_by_column(qtbot, window, dataset_dir):
    open_and_wait(qtbot, window, dataset_dir)
    columns = window.table.model.column_names()
    window.table.view.sortByColumn(columns.index("masks"), Qt.SortOrder.AscendingOrder)
    assert table_ids(window) == ["c", "b", "a"]
    window.table.view.sortByColumn(columns.index("split"), Qt.SortOrder.DescendingOrder)
    assert table_ids(window) == ["c", "a", "b"]  # val, train, test


def test_table_sorts_numbers_as_numbers(qtbot):
    model = DataFrameModel()
    model.set_frame(pd.DataFrame({"image_id": ["x", "y", "z"], "masks": [2, 10, 1],
                                  "diagnosis": ["nevus", None, "melanoma"]}))
    from PySide6.QtCore import QSortFilterProxyModel

    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.sort(1, Qt.SortOrder.AscendingOrder)
    assert [proxy.index(r, 0).data() for r in range(3)] == ["z", "x", "y"]
    assert model.index(1, 2).data() == ""  # missing values show as empty cells


def test_filter_box_keeps_matching_rows(qtbot, window, dataset_dir):
    open_and_wait(qtbot, window, dataset_dir)
    window.table.filter_edit.setText("NEVUS")
    qtbot.waitUntil(lambda: table_ids(window) == ["a", "c"], timeout=2000)  # applied after a pause
    window.table.filter_edit.clear()
    qtbot.waitUntil(lambda: window.table.row_count() == 3, timeout=2000)


def test_selecting_a_row_draws_one_contour_per_human_annotator(qtbot, window, dataset_dir):
    open_and_wait(qtbot, window, dataset_dir)
    view = window.lesion_view
    # Lesion a: R1 and R2 (the MV consensus mask is not drawn).
    assert len(view.contour_items) == 2
    assert view.legend_labels() == ["R1 · T1 · S1", "R2 · T3 · S2"]
    colours = [item.opts["pen"].color().name().upper() for item in view.contour_items]
    assert colours == list(ANNOTATOR_COLOURS[:2])
    assert view.image_item.image.shape == (60, 80, 3)
    assert all(item.getViewBox() is view.view_box for item in view.contour_items)

    with qtbot.waitSignal(window.lesion_shown, timeout=TIMEOUT_MS) as shown:
        window.table.select_row(2)
    assert shown.args == ["c"]
    assert view.legend_labels() == ["R1 · T1 · S1"]
    assert len(view.contour_items) == 1
    assert "nevus" in view.caption.text() and "80 × 60 px" in view.caption.text()


def test_image_view_keeps_aspect_and_points_y_down(qtbot, window, dataset_dir):
    open_and_wait(qtbot, window, dataset_dir)
    state = window.lesion_view.view_box.state
    assert state["aspectLocked"]
    assert state["yInverted"]


def test_keyboard_moves_through_the_table(qtbot, window, dataset_dir):
    open_and_wait(qtbot, window, dataset_dir)
    table_view = window.table.view
    with qtbot.waitSignal(window.lesion_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.keyClick(table_view, Qt.Key.Key_Down)
    assert shown.args == ["b"]
    with qtbot.waitSignal(window.lesion_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.keyClick(table_view, Qt.Key.Key_PageDown)
    assert shown.args == ["c"]
    with qtbot.waitSignal(window.lesion_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.keyClick(table_view, Qt.Key.Key_PageUp)
    assert shown.args == ["a"]
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=TIMEOUT_MS)


def test_fast_selection_shows_the_last_lesion_asked_for(qtbot, window, dataset_dir):
    open_and_wait(qtbot, window, dataset_dir)
    for row in (1, 2, 1, 2):
        window.table.select_row(row)
    qtbot.waitUntil(lambda: not window.is_busy() and window.lesion_view.image_id == "c",
                    timeout=TIMEOUT_MS)
    assert window.lesion_view.legend_labels() == ["R1 · T1 · S1"]


def test_unreadable_mask_is_listed_without_an_outline(qtbot, window, dataset_dir):
    (dataset_dir / "masks" / "R2" / "a.png").write_bytes(b"not a png")
    open_and_wait(qtbot, window, dataset_dir)
    assert window.lesion_view.legend_labels() == ["R1 · T1 · S1", "R2 · T3 · S2 (no outline)"]
    assert "1 problem" in window.lesion_view.caption.text()


@pytest.mark.parametrize("name, expected", [("missing", "no such directory"),
                                            ("not_a_dataset", "not a dataset")])
def test_bad_path_shows_an_error_and_the_window_keeps_working(
        qtbot, window, dataset_dir, tmp_path, message_boxes, name, expected):
    open_and_wait(qtbot, window, dataset_dir)
    bad = tmp_path / name
    if name == "not_a_dataset":
        bad.mkdir()
    with qtbot.waitSignal(window.dataset_failed, timeout=TIMEOUT_MS) as failed:
        window.open_dataset(bad)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=TIMEOUT_MS)
    assert expected in failed.args[0]
    assert [(kind, title) for kind, title, _ in message_boxes] == [("critical", "Cannot open dataset")]
    assert expected in message_boxes[0][2]
    # The previous dataset is still shown and the window still works.
    assert table_ids(window) == ["a", "b", "c"]
    assert window.open_action.isEnabled()
    with qtbot.waitSignal(window.lesion_shown, timeout=TIMEOUT_MS):
        window.table.select_row(1)
    open_and_wait(qtbot, window, dataset_dir)


def test_menus_and_about(qtbot, window, message_boxes):
    assert window.open_action.shortcut().toString() == "Ctrl+O"
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"
    window.about_action.trigger()
    ((kind, _title, text),) = message_boxes
    assert kind == "about"
    for name in ("Qt", "PySide6", "pyqtgraph", "numpy"):
        assert f"<td>{name}</td>" in text
    assert text == about_text()


def test_without_the_demo_the_window_opens_empty_with_a_hint(qtbot, window, monkeypatch):
    monkeypatch.setattr(main_window_module, "demo_available", lambda: False)
    window.open_default()
    assert not window.is_busy()
    assert "File > Open dataset" in window.task_label.text()
    assert window.table.row_count() == 0


def test_window_geometry_is_restored(qtbot, tmp_path, message_boxes):
    settings_path = str(tmp_path / "geometry.ini")
    first = MainWindow(settings=QSettings(settings_path, QSettings.Format.IniFormat))
    qtbot.addWidget(first)
    smallest = first.minimumSizeHint()
    first.resize(max(smallest.width(), 700) + 37, max(smallest.height(), 520) + 23)
    first.show()
    size = (first.width(), first.height())  # as shown (the docks' own minimum may enlarge it)
    first.close()
    second = MainWindow(settings=QSettings(settings_path, QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    assert second.height() == size[1]
    # The offscreen screen is 800 px wide: Qt fits a restored window into it.
    screen_width = second.screen().availableGeometry().width()
    assert second.width() == min(size[0], screen_width) or second.width() >= screen_width - 10


def test_excepthook_logs_and_names_the_log_file(qtbot, tmp_path, message_boxes, caplog):
    hook = make_excepthook(tmp_path / "iaa-desktop.log")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        with caplog.at_level(logging.CRITICAL):
            hook(type(exc), exc, exc.__traceback__)
    assert "uncaught exception" in caplog.text
    ((kind, _title, text),) = message_boxes
    assert kind == "critical"
    assert "ValueError: boom" in text and str(tmp_path / "iaa-desktop.log") in text


def test_launch_gui_without_qt_says_how_to_install():
    code = (
        "import sys\n"
        "for name in ('PySide6', 'pyqtgraph', 'superqt'):\n"
        "    sys.modules[name] = None\n"
        "from iaa_desktop.cli.gui import launch_gui\n"
        "sys.exit(launch_gui(None))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert 'pip install "iaa-desktop[gui]"' in result.stderr
