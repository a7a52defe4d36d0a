"""The review panel, offscreen: statuses, shortcuts, note, reference, next unreviewed, read-only."""

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QLineEdit, QMainWindow  # noqa: E402

from iaa_desktop.core.review.reviews import Review, all_reviews, get_review, save_review  # noqa: E402
from iaa_desktop.core.review.workspace import Workspace  # noqa: E402
from iaa_desktop.gui.widgets.review_panel import NOTE_SAVE_DELAY_MS, ReviewPanel  # noqa: E402

IDS = ["a", "b", "c", "d"]


@pytest.fixture
def workspace(tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        yield ws


@pytest.fixture
def window(qtbot, workspace):
    """The panel in a window, as the main window docks it, with the window active for shortcuts."""
    win = QMainWindow()
    panel = ReviewPanel(win)
    win.setCentralWidget(QLineEdit(win))  # stands in for the lesion view; takes the focus
    win.setMenuWidget(panel)
    qtbot.addWidget(win)
    panel.set_workspace(workspace)
    panel.set_image_order(IDS)
    panel.set_reviewer("Dr. R")
    panel.set_lesion("a", ["A1", "A2", "ST", "MV"])
    win.show()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow)
    return win, panel


def test_clicking_a_status_saves_it_and_signals(qtbot, window, workspace):
    _win, panel = window
    with qtbot.waitSignal(panel.review_changed) as blocker:
        qtbot.mouseClick(panel.status_buttons["needs_reannotation"], Qt.MouseButton.LeftButton)
    assert blocker.args == ["a", "needs_reannotation"]
    saved = get_review(workspace, "a")
    assert (saved.status, saved.reviewer) == ("needs_reannotation", "Dr. R") and saved.updated
    assert panel.statuses() == {"a": "needs_reannotation"}
    assert panel.reviews_frame(IDS)["status"].tolist() == ["needs_reannotation", "unreviewed",
                                                           "unreviewed", "unreviewed"]


@pytest.mark.parametrize(("key", "status"), [(Qt.Key.Key_1, "consensus_acceptable"),
                                             (Qt.Key.Key_2, "needs_reannotation"),
                                             (Qt.Key.Key_3, "exclude")])
def test_alt_digit_shortcuts_set_the_status_from_anywhere_in_the_window(qtbot, window, workspace, key,
                                                                          status):
    win, panel = window
    win.centralWidget().setFocus()
    with qtbot.waitSignal(panel.review_changed) as blocker:
        QTest.keyClick(win.centralWidget(), key, Qt.KeyboardModifier.AltModifier)
    assert blocker.args == ["a", status]
    assert get_review(workspace, "a").status == status
    with qtbot.waitSignal(panel.review_changed):
        QTest.keyClick(win.centralWidget(), Qt.Key.Key_0, Qt.KeyboardModifier.AltModifier)
    assert get_review(workspace, "a").status == "unreviewed"


def test_next_unreviewed_skips_reviewed_lesions(qtbot, window, workspace):
    win, panel = window
    save_review(workspace, Review("b", "exclude"))
    panel.set_workspace(workspace)  # re-reads the statuses
    panel.set_lesion("a", ["A1"])
    with qtbot.waitSignal(panel.lesion_requested) as blocker:
        QTest.keyClick(win.centralWidget(), Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    assert blocker.args == ["c"]
    with qtbot.waitSignal(panel.lesion_requested) as blocker:
        qtbot.mouseClick(panel.next_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["c"]


def test_the_note_is_saved_after_typing_and_when_the_lesion_changes(qtbot, window, workspace):
    _win, panel = window
    panel.note_edit.setFocus()
    QTest.keyClicks(panel.note_edit, "fuzzy border")
    with qtbot.waitSignal(panel.review_changed, timeout=NOTE_SAVE_DELAY_MS * 5):
        pass
    assert get_review(workspace, "a").note == "fuzzy border"
    QTest.keyClicks(panel.note_edit, ", recheck")
    panel.set_lesion("b", ["A1"])  # before the timer: saved on the way out
    assert get_review(workspace, "a").note == "fuzzy border, recheck"
    assert panel.note_edit.toPlainText() == ""
    panel.set_lesion("a", ["A1", "A2"])
    assert panel.note_edit.toPlainText() == "fuzzy border, recheck"


def test_reference_choices_and_saving(qtbot, window, workspace):
    _win, panel = window
    choices = [panel.reference_combo.itemText(i) for i in range(panel.reference_combo.count())]
    assert choices == ["(none)", "A1", "A2", "MV", "STAPLE"]  # consensus masks are not annotators
    panel.set_reference("STAPLE")
    assert get_review(workspace, "a").reference == "STAPLE"
    with pytest.raises(ValueError, match="not a reference"):
        panel.set_reference("Z9")


def test_a_second_instance_shows_read_only_and_saves_nothing(qtbot, workspace, tmp_path):
    save_review(workspace, Review("a", "exclude", note="first instance"))
    second = Workspace.open(workspace.folder)
    panel = ReviewPanel()
    qtbot.addWidget(panel)
    try:
        panel.set_workspace(second)
        panel.set_lesion("a", ["A1"])
        panel.show()
        assert panel.is_read_only()
        assert panel.banner.isVisible() and "Read-only" in panel.banner.text()
        assert "open for writing in another IAA Desktop" in panel.banner.text()
        assert not panel.status_buttons["exclude"].isEnabled() and panel.note_edit.isReadOnly()
        assert panel.status_buttons["exclude"].isChecked()  # still shows the saved review
        assert panel.note_edit.toPlainText() == "first instance"
        with qtbot.waitSignal(panel.save_failed) as blocker:
            assert panel.set_status("consensus_acceptable") is None
        assert "read-only" in blocker.args[0]
        assert all_reviews(workspace)["a"].status == "exclude"
        assert panel.status_buttons["exclude"].isChecked()  # the refused change is not shown
    finally:
        panel.set_workspace(None)
        second.close()


def test_without_a_lesion_or_workspace_nothing_is_editable(qtbot):
    panel = ReviewPanel()
    qtbot.addWidget(panel)
    assert panel.set_status("exclude") is None
    assert not panel.status_buttons["exclude"].isEnabled()
    assert panel.lesion_label.text() == "No lesion selected"
