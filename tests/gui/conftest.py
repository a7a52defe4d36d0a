"""GUI test setup."""

import gc

import pytest

_frozen = False


@pytest.fixture(autouse=True)
def _garbage_collected_in_the_gui_thread():
    """Run the cyclic garbage collector only in the GUI thread, as the application does.

    A Qt wrapper left in a reference cycle by an earlier test can otherwise be freed by a
    collection that happens to start in a worker thread: its C++ destructor takes a Qt lock
    the GUI thread holds and then waits for the interpreter lock, and both threads hang
    (seen here: a ``QMenu`` destroyed inside pandas code in an analysis worker).
    ``gui.app.make_application`` installs pyqtgraph's ``GarbageCollector`` for the same
    reason; the tests' QApplication comes from pytest-qt, so this fixture does it per test.
    The objects alive before the first GUI test (modules, fixtures) are frozen out of the
    collections, which keeps each test's collection short.
    """
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.enable()


@pytest.fixture
def view(qtbot):
    """A shown 900 x 600 ``LesionView`` (imported here so that only tests that use it need Qt)."""
    from iaa_desktop.gui.widgets.lesion_view import LesionView

    widget = LesionView()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    return widget
