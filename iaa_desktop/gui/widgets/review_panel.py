"""The review panel: a lesion's status, note, chosen reference and reviewer, saved as you go.

Every change is saved at once through :mod:`iaa_desktop.core.review.reviews` into the
workspace (one small SQLite transaction, durable when it returns: a few
milliseconds, so it runs in the GUI thread and nothing is ever pending in a
worker when the app dies). The note is saved 0.8 s after typing stops, when
the lesion changes and when the panel closes.

Shortcuts (window-wide, so they work while the lesion view has focus; plain
digits are left to the lesion view's annotator toggles): Alt+1 consensus
acceptable, Alt+2 needs re-annotation, Alt+3 exclude, Alt+0 back to
unreviewed, Alt+N next unreviewed lesion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.review import reviews as core_review
from iaa_desktop.core.review.reviews import CONSENSUS_REFERENCES, STATUS_LABELS, STATUSES, Review
from iaa_desktop.core.review.workspace import Workspace

log = logging.getLogger(__name__)

#: Status -> shortcut.
STATUS_SHORTCUTS = {"consensus_acceptable": "Alt+1", "needs_reannotation": "Alt+2", "exclude": "Alt+3",
                    "unreviewed": "Alt+0"}
NEXT_UNREVIEWED_SHORTCUT = "Alt+N"
NOTE_SAVE_DELAY_MS = 800
#: Background of the checked status button (colour-blind-safe, dark text on each).
STATUS_COLOURS = {"unreviewed": "#d9d9d9", "consensus_acceptable": "#8fd18f",
                  "needs_reannotation": "#f5c26b", "exclude": "#e8a0a0"}
_NO_REFERENCE = "(none)"


class ReviewPanel(QWidget):
    """Review one lesion at a time; see the module docstring.

    Signals
    -------
    review_changed(str, str)
        A review was saved: image id and its status (for the browser's column).
    lesion_requested(str)
        "Next unreviewed" picked this image id: the window should select it.
    save_failed(str)
        A save was refused (read-only workspace, invalid review): the message.
    """

    review_changed = Signal(str, str)
    lesion_requested = Signal(str)
    save_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._workspace: Workspace | None = None
        self._image_id: str | None = None
        self._annotators: tuple[str, ...] = ()
        self._image_order: list[str] = []
        self._statuses: dict[str, str] = {}
        self.last_edit_id: int | None = None

        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fff3b0; color: #4a3b00; padding: 4px; border-radius: 3px;")
        self.banner.hide()
        self.lesion_label = QLabel("No lesion selected", self)
        self.lesion_label.setStyleSheet("font-weight: bold;")

        self.status_group = QButtonGroup(self)
        self.status_group.setExclusive(True)
        self.status_buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for i, status in enumerate(STATUSES):
            button = QPushButton(f"{STATUS_LABELS[status]}\n{STATUS_SHORTCUTS[status]}", self)
            button.setCheckable(True)
            button.setStyleSheet(f"QPushButton:checked {{ background: {STATUS_COLOURS[status]}; "
                                 "color: black; border: 2px solid #333; "
                                 "border-radius: 3px; padding: 3px; }")
            button.setToolTip(f"Set the status to “{STATUS_LABELS[status]}” ({STATUS_SHORTCUTS[status]})")
            self.status_group.addButton(button, i)
            self.status_buttons[status] = button
            grid.addWidget(button, i // 2, i % 2)
        self.status_group.idClicked.connect(self._on_status_group_id_clicked)

        self.reference_combo = QComboBox(self)
        self.reference_combo.setToolTip("The mask a reviewer chose as the reference for this lesion")
        self.reference_combo.activated.connect(self._on_reference_combo_activated)
        self.reviewer_edit = QLineEdit(self)
        self.reviewer_edit.setPlaceholderText("Your name (saved with each review)")
        self.note_edit = QPlainTextEdit(self)
        self.note_edit.setPlaceholderText("Note (saved as you type)")
        self.note_edit.textChanged.connect(self._on_note_edit_text_changed)
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.setInterval(NOTE_SAVE_DELAY_MS)
        self._note_timer.timeout.connect(self._on_note_timer_timeout)
        self.next_button = QPushButton(f"Next unreviewed  ({NEXT_UNREVIEWED_SHORTCUT})", self)
        self.next_button.clicked.connect(self.go_to_next_unreviewed)
        self.saved_label = QLabel("", self)
        self.saved_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Reference", self.reference_combo)
        form.addRow("Reviewer", self.reviewer_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(self.lesion_label)
        layout.addLayout(grid)
        layout.addLayout(form)
        layout.addWidget(QLabel("Note", self))
        layout.addWidget(self.note_edit, 1)
        layout.addWidget(self.next_button)
        layout.addWidget(self.saved_label)

        self.status_actions: dict[str, QAction] = {}
        for status in STATUSES:
            action = QAction(STATUS_LABELS[status], self)
            action.setShortcut(QKeySequence(STATUS_SHORTCUTS[status]))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _checked=False, s=status: self.set_status(s))
            self.addAction(action)
            self.status_actions[status] = action
        self.next_action = QAction("Next unreviewed lesion", self)
        self.next_action.setShortcut(QKeySequence(NEXT_UNREVIEWED_SHORTCUT))
        self.next_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.next_action.triggered.connect(self.go_to_next_unreviewed)
        self.addAction(self.next_action)
        self._update_enabled()

    # -- public API ---------------------------------------------------------

    def set_workspace(self, workspace: Workspace | None) -> None:
        """Use ``workspace`` (``None``: none open). A read-only one is shown with its reason."""
        self.flush()
        self._workspace = workspace
        self._statuses = core_review.statuses(workspace) if workspace is not None else {}
        if workspace is not None and workspace.read_only:
            self.banner.setText(f"Read-only: {workspace.read_only_reason}")
            self.banner.show()
        else:
            self.banner.hide()
        self._load_current()

    def workspace(self) -> Workspace | None:
        return self._workspace

    def is_read_only(self) -> bool:
        return self._workspace is None or self._workspace.read_only

    def set_image_order(self, image_ids: Sequence[str]) -> None:
        """The lesions in the browser's order, for "next unreviewed"."""
        self._image_order = list(image_ids)

    def set_lesion(self, image_id: str | None, annotators: Sequence[str] = ()) -> None:
        """Show the review of ``image_id``; ``annotators`` fill the reference choices."""
        self.flush()
        self._image_id = image_id
        self._annotators = tuple(dict.fromkeys(a for a in annotators if a not in ("ST", "MV")))
        with QSignalBlocker(self.reference_combo):
            self.reference_combo.clear()
            self.reference_combo.addItems([_NO_REFERENCE, *self._annotators, *CONSENSUS_REFERENCES])
        self._load_current()

    def image_id(self) -> str | None:
        return self._image_id

    def set_reviewer(self, name: str) -> None:
        self.reviewer_edit.setText(name)

    def reviewer(self) -> str:
        return self.reviewer_edit.text().strip()

    def current_review(self) -> Review:
        """The review as the panel shows it now (saved or not)."""
        reference = self.reference_combo.currentText()
        checked = self.status_group.checkedId()
        return Review(
            image_id=self._image_id or "",
            status=STATUSES[checked] if checked >= 0 else "unreviewed",
            note=self.note_edit.toPlainText(),
            reference="" if reference in ("", _NO_REFERENCE) else reference,
            reviewer=self.reviewer(),
        )

    def set_status(self, status: str) -> int | None:
        """Set and save the current lesion's status; returns the edit id (``None`` if not saved)."""
        if status not in STATUSES:
            raise ValueError(f"unknown review status {status!r}")
        if self._image_id is None:
            return None
        with QSignalBlocker(self.status_group):
            self.status_buttons[status].setChecked(True)
        return self.save()

    def set_note(self, text: str) -> int | None:
        """Replace the note and save it now; returns the edit id."""
        with QSignalBlocker(self.note_edit):
            self.note_edit.setPlainText(text)
        return self.save()

    def set_reference(self, reference: str) -> int | None:
        """Choose the reference (an annotator, ``MV``, ``STAPLE`` or ``""``) and save it."""
        index = self.reference_combo.findText(reference or _NO_REFERENCE)
        if index < 0:
            raise ValueError(f"{reference!r} is not a reference of lesion {self._image_id}")
        self.reference_combo.setCurrentIndex(index)
        return self.save()

    def save(self) -> int | None:
        """Save what the panel shows; returns the edit id, or ``None`` (nothing to save, refused)."""
        self._note_timer.stop()
        if self._image_id is None or self._workspace is None:
            return None
        review = self.current_review()
        try:
            edit_id = core_review.save_review(self._workspace, review, annotators=self._annotators)
        except IAAError as exc:
            log.warning("review not saved: %s", exc)
            if self.is_read_only():
                self._load_current()  # show what is saved, not the refused change
            self.saved_label.setText(f"Not saved: {exc}")
            self.save_failed.emit(str(exc))
            return None
        self.last_edit_id = edit_id
        self._statuses[review.image_id] = review.status
        self.saved_label.setText(f"Saved (edit {edit_id})" + (f" by {review.reviewer}" if review.reviewer
                                                               else ""))
        self.review_changed.emit(review.image_id, review.status)
        return edit_id

    def flush(self) -> None:
        """Save a note still waiting for its timer."""
        if self._note_timer.isActive():
            self.save()

    def statuses(self) -> dict[str, str]:
        """Image id -> status of every reviewed lesion (others are ``unreviewed``)."""
        return dict(self._statuses)

    def reviews_frame(self, image_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Saved reviews as a table (``core.review.REVIEW_COLUMNS``)."""
        if self._workspace is None:
            return pd.DataFrame(columns=list(core_review.REVIEW_COLUMNS))
        return core_review.reviews_frame(self._workspace, image_ids)

    def go_to_next_unreviewed(self) -> str | None:
        """Emit ``lesion_requested`` with the next unreviewed lesion after the current one."""
        self.flush()
        target = core_review.next_unreviewed(self._image_order, self._statuses, self._image_id)
        if target is None:
            self.saved_label.setText("Every lesion is reviewed")
        else:
            self.lesion_requested.emit(target)
        return target

    # -- internals ----------------------------------------------------------

    def _load_current(self) -> None:
        review = (core_review.get_review(self._workspace, self._image_id)
                  if self._workspace is not None and self._image_id is not None
                  else Review(self._image_id or ""))
        self.lesion_label.setText(self._image_id or "No lesion selected")
        with QSignalBlocker(self.status_group):
            self.status_buttons[review.status].setChecked(True)
        with QSignalBlocker(self.note_edit):
            self.note_edit.setPlainText(review.note)
        with QSignalBlocker(self.reference_combo):
            index = self.reference_combo.findText(review.reference or _NO_REFERENCE)
            if index < 0 and review.reference:  # a reference no longer among the masks: keep it visible
                self.reference_combo.addItem(review.reference)
                index = self.reference_combo.count() - 1
            self.reference_combo.setCurrentIndex(max(index, 0))
        if review.updated:
            who = f" by {review.reviewer}" if review.reviewer else ""
            self.saved_label.setText(f"Last saved {review.updated}{who}")
        else:
            self.saved_label.setText("Not reviewed yet")
        self._update_enabled()

    def _update_enabled(self) -> None:
        editable = self._image_id is not None and not self.is_read_only()
        for widget in (*self.status_buttons.values(), self.reference_combo, self.reviewer_edit):
            widget.setEnabled(editable)
        self.note_edit.setReadOnly(not editable)
        for action in self.status_actions.values():
            action.setEnabled(editable)
        self.next_action.setEnabled(self._image_id is not None or bool(self._image_order))

    def _on_status_group_id_clicked(self, index: int) -> None:
        self.set_status(STATUSES[index])

    def _on_reference_combo_activated(self, _index: int) -> None:
        self.save()

    def _on_note_edit_text_changed(self) -> None:
        if not self.is_read_only() and self._image_id is not None:
            self._note_timer.start()

    def _on_note_timer_timeout(self) -> None:
        self.save()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.flush()
        super().closeEvent(event)
