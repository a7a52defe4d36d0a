"""File > Export > Reviewed dataset…: asks where and what, runs the export in a worker, reports.

The work is ``core.curation.reviewed_export.iter_export_reviewed``; this only asks for the
folder and whether to include every annotator's mask, shows progress with Cancel (an
interrupted export leaves no folder) and summarises what was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QProgressDialog, QWidget

from iaa_desktop.core.curation.reviewed_export import ReviewedExportSummary, iter_export_reviewed
from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress
from iaa_desktop.core.review.reviews import Review
from iaa_desktop.gui.workers import generator_worker

TITLE = "Export reviewed dataset"
CONTENTS = ("The reviewed reference of each lesion", "The reference and every annotator's mask")
#: Lesions left out that the summary names; the manifest lists all.
SUMMARY_SKIPPED = 10


class ReviewedExport(QObject):
    """One reviewed-dataset export at a time. ``done`` carries the summary (``None``: cancelled
    or failed). With ``quiet=True`` no message box is shown (tests, scripts)."""

    done = Signal(object)

    def __init__(self, parent: QWidget, quiet: bool = False) -> None:
        super().__init__(parent)
        self._parent = parent
        self.quiet = quiet
        self.worker = None
        self.dialog: QProgressDialog | None = None
        self.result: ReviewedExportSummary | None = None
        self.error: str | None = None

    def is_busy(self) -> bool:
        return self.worker is not None

    def ask_and_start(self, dataset: Dataset, reviews: Mapping[str, Review]) -> bool:
        """Ask for a new or empty folder and the contents, then start; False when cancelled."""
        out_dir = QFileDialog.getExistingDirectory(
            self._parent, "Export the reviewed dataset to a new or empty folder",
            str(Path(dataset.root).parent))
        if not out_dir:
            return False
        choice, ok = QInputDialog.getItem(
            self._parent, TITLE, "Masks to write (lesions marked 'exclude' are left out; STAPLE where no "
            "reference was chosen):", list(CONTENTS), 0, False)
        return bool(ok) and self.start(dataset, reviews, out_dir, include_annotators=choice == CONTENTS[1])

    def start(self, dataset: Dataset, reviews: Mapping[str, Review], out_dir: str | Path,
              include_annotators: bool = False) -> bool:
        """Export to ``out_dir``; False while another export runs."""
        if self.worker is not None:
            return False
        self.result, self.error = None, None
        self.dialog = QProgressDialog("Exporting the reviewed dataset…", "Cancel", 0, max(len(dataset), 1),
                                      self._parent)
        self.dialog.setWindowTitle(TITLE)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(300)
        self.dialog.setAutoReset(False)
        self.dialog.setAutoClose(False)
        job = iter_export_reviewed(dataset, dict(reviews), out_dir, include_annotators=include_annotators)
        worker = generator_worker(job, self._on_worker_errored)
        worker.yielded.connect(self._on_worker_yielded)
        worker.returned.connect(self._on_worker_returned)
        worker.finished.connect(self._on_worker_finished)
        self.dialog.canceled.connect(worker.quit)  # stops at the next lesion; the folder is removed
        self.worker = worker
        worker.start()
        return True

    def _on_worker_yielded(self, step: Progress) -> None:
        if self.dialog is not None:
            self.dialog.setLabelText(f"Lesion {step.done} of {step.total}: {step.message}")
            self.dialog.setValue(step.done)

    def _on_worker_returned(self, result: ReviewedExportSummary) -> None:
        self.result = result

    def _on_worker_errored(self, exc: BaseException) -> None:
        self.error = str(exc) if isinstance(exc, IAAError | OSError) else f"{type(exc).__name__}: {exc}"

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
            QMessageBox.critical(self._parent, TITLE, self.error)
        elif self.result is None:
            QMessageBox.information(self._parent, TITLE, "Export cancelled; nothing was written.")
        else:
            QMessageBox.information(self._parent, TITLE, "\n".join(summary_lines(self.result)))


def summary_lines(result: ReviewedExportSummary) -> list[str]:
    """What an export wrote, in sentences for the summary box."""
    references = ", ".join(f"{kind} {n}" for kind, n in result.references.items()) or "none"
    lines = [f"{result.n_exported} lesions written to {result.out_dir} (references: {references}).",
             f"{result.n_excluded_by_review} lesions marked 'exclude' left out."]
    if result.n_default_reference:
        lines.append(f"{result.n_default_reference} lesions had no chosen reference: STAPLE was used "
                     "(reference_source 'default' in metadata.csv).")
    if result.skipped:
        lines.append(f"{len(result.skipped)} lesions could not be read and were left out:")
        shown = list(result.skipped.items())[:SUMMARY_SKIPPED]
        lines += [f"• {image_id}: {reason}" for image_id, reason in shown]
        if len(result.skipped) > SUMMARY_SKIPPED:
            lines.append(f"… and {len(result.skipped) - SUMMARY_SKIPPED} more (manifest.json lists all)")
    return lines
