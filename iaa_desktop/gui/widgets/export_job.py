"""One export at a time from the GUI: a worker, a progress dialog with Cancel, a summary box.

The exports (lesion figures, the reviewed dataset) differ in what they ask, run and report;
the lifecycle they share lives here. A subclass starts its worker with :meth:`ExportJob._run`
and says how a step and the result read (``_step_text``, ``_summary_lines``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress


class ExportJob(QObject):
    """``done`` carries the result (``None``: cancelled or failed). With ``quiet=True`` no
    message box is shown (tests, scripts)."""

    done = Signal(object)

    #: Window title of the dialog and the message boxes.
    title = "Export"
    #: Errors whose message is shown as it is (others with their type name).
    plain_errors: tuple[type[BaseException], ...] = (IAAError,)
    #: What the summary says when the user cancelled.
    cancelled_text = "Export cancelled."

    def __init__(self, parent: QWidget, quiet: bool = False) -> None:
        super().__init__(parent)
        self._parent = parent
        self.quiet = quiet
        self.worker = None
        self.dialog: QProgressDialog | None = None
        self.result = None
        self.error: str | None = None

    def is_busy(self) -> bool:
        return self.worker is not None

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def _run(self, make_worker: Callable[[Callable[[BaseException], None]], object], label: str,
             maximum: int) -> bool:
        """Start the worker ``make_worker(on_error)`` returns, with a progress dialog; False while
        another export runs."""
        if self.worker is not None:
            return False
        self.result, self.error = None, None
        self.dialog = QProgressDialog(label, "Cancel", 0, max(maximum, 1), self._parent)
        self.dialog.setWindowTitle(self.title)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(300)
        self.dialog.setAutoReset(False)
        self.dialog.setAutoClose(False)
        worker = make_worker(self._on_worker_errored)
        worker.yielded.connect(self._on_worker_yielded)
        worker.returned.connect(self._on_worker_returned)
        worker.finished.connect(self._on_worker_finished)
        self.dialog.canceled.connect(worker.quit)  # stops at the next lesion
        self.worker = worker
        worker.start()
        return True

    def _step_text(self, step: Progress) -> str:
        return f"{step.done} of {step.total}: {step.message}"

    def _summary_lines(self, result) -> list[str]:
        raise NotImplementedError

    def _on_worker_yielded(self, step: Progress) -> None:
        dialog = self.dialog
        if dialog is not None:
            dialog.setLabelText(self._step_text(step))
            # Last: a modal progress dialog processes events in setValue (the export may end there).
            dialog.setValue(step.done)

    def _on_worker_returned(self, result) -> None:
        self.result = result

    def _on_worker_errored(self, exc: BaseException) -> None:
        self.error = str(exc) if isinstance(exc, self.plain_errors) else f"{type(exc).__name__}: {exc}"

    def _on_worker_finished(self) -> None:
        self.worker = None
        if self.dialog is not None:
            self.dialog.reset()
            self.dialog.deleteLater()
            self.dialog = None
        if not self.quiet:
            self._show_summary()
        self.done.emit(self.result)

    def _show_summary(self) -> None:
        if self.error is not None:
            QMessageBox.critical(self._parent, self.title, self.error)
        elif self.result is None:
            QMessageBox.information(self._parent, self.title, self.cancelled_text)
        else:
            QMessageBox.information(self._parent, self.title, "\n".join(self._summary_lines(self.result)))
