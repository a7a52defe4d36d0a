"""Export overlay figures of many lesions from the GUI: folder and format, progress, cancel, summary.

The work is ``core.figures.lesion_batch.iter_export_lesion_figures`` in a worker thread
(``gui.lesion_workers.lesion_batch_worker``); this only asks, shows progress and reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QProgressDialog, QWidget

from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.figures.lesion_batch import LesionBatchResult
from iaa_desktop.core.progress import Progress
from iaa_desktop.gui.lesion_workers import lesion_batch_worker

FORMATS = ("png", "svg", "pdf")
#: Skipped lesions listed in the summary; the rest are counted.
SUMMARY_SKIPPED = 10


class LesionBatchExport(QObject):
    """One batch export at a time, with a progress dialog whose Cancel stops between lesions.

    ``done`` carries the ``LesionBatchResult`` (``None`` when cancelled or failed).
    With ``quiet=True`` no message box is shown (tests, scripts).
    """

    done = Signal(object)

    def __init__(self, parent: QWidget, quiet: bool = False) -> None:
        super().__init__(parent)
        self._parent = parent
        self.quiet = quiet
        self.worker = None
        self.dialog: QProgressDialog | None = None
        self.result: LesionBatchResult | None = None
        self.error: str | None = None

    def is_busy(self) -> bool:
        return self.worker is not None

    def ask_and_start(self, dataset: Dataset, image_ids: Sequence[str]) -> bool:
        """Ask for the folder and format, then start; False when the user cancelled."""
        out_dir = QFileDialog.getExistingDirectory(self._parent, "Export lesion figures to",
                                                   str(Path(dataset.root).parent))
        if not out_dir:
            return False
        fmt, ok = QInputDialog.getItem(self._parent, "Export lesion figures",
                                       f"Format of the {len(image_ids)} figures:", list(FORMATS), 0, False)
        return bool(ok) and self.start(dataset, image_ids, out_dir, fmt)

    def start(self, dataset: Dataset, image_ids: Sequence[str], out_dir: str | Path, fmt: str) -> bool:
        """Export ``image_ids`` to ``out_dir`` as ``fmt``; False while another export runs."""
        if self.worker is not None:
            return False
        self.result, self.error = None, None
        self.dialog = QProgressDialog(f"Exporting {len(image_ids)} lesion figures…", "Cancel", 0,
                                      max(len(image_ids), 1), self._parent)
        self.dialog.setWindowTitle("Export lesion figures")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(300)
        self.dialog.setAutoReset(False)
        self.dialog.setAutoClose(False)
        worker = lesion_batch_worker(dataset, list(image_ids), out_dir, fmt, self._on_worker_errored)
        worker.yielded.connect(self._on_worker_yielded)
        worker.returned.connect(self._on_worker_returned)
        worker.finished.connect(self._on_worker_finished)
        self.dialog.canceled.connect(worker.quit)  # stops at the next lesion
        self.worker = worker
        worker.start()
        return True

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def _on_worker_yielded(self, step: Progress) -> None:
        dialog = self.dialog
        if dialog is not None:
            dialog.setLabelText(f"Exported {step.done} of {step.total}: {step.message}")
            # Last: a modal progress dialog processes events in setValue (the export may end there).
            dialog.setValue(step.done)

    def _on_worker_returned(self, result: LesionBatchResult) -> None:
        self.result = result

    def _on_worker_errored(self, exc: BaseException) -> None:
        self.error = str(exc) if isinstance(exc, IAAError) else f"{type(exc).__name__}: {exc}"

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
            QMessageBox.critical(self._parent, "Export lesion figures", self.error)
            return
        if self.result is None:
            QMessageBox.information(self._parent, "Export lesion figures", "Export cancelled.")
            return
        lines = [f"{len(self.result.written)} figures written to {self.result.out_dir}."]
        if self.result.skipped:
            lines.append(f"{len(self.result.skipped)} lesions skipped:")
            lines += [f"• {image_id}: {reason}" for image_id, reason in self.result.skipped[:SUMMARY_SKIPPED]]
            if len(self.result.skipped) > SUMMARY_SKIPPED:
                lines.append(f"… and {len(self.result.skipped) - SUMMARY_SKIPPED} more")
        QMessageBox.information(self._parent, "Export lesion figures", "\n".join(lines))
