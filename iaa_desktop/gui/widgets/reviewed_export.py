"""File > Export > Reviewed dataset…: asks where and what, runs the export in a worker, reports.

The work is ``core.curation.reviewed_export.iter_export_reviewed``; this only asks for the
folder and whether to include every annotator's mask, shows progress with Cancel (an
interrupted export leaves no folder) and summarises what was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog

from iaa_desktop.core.curation.reviewed_export import ReviewedExportSummary, iter_export_reviewed
from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress
from iaa_desktop.core.review.reviews import Review
from iaa_desktop.gui.widgets.export_job import ExportJob
from iaa_desktop.gui.workers import generator_worker

TITLE = "Export reviewed dataset"
CONTENTS = ("The reviewed reference of each lesion", "The reference and every annotator's mask")
#: Lesions left out that the summary names; the manifest lists all.
SUMMARY_SKIPPED = 10


class ReviewedExport(ExportJob):
    """One reviewed-dataset export at a time. ``done`` carries the summary (``None``: cancelled
    or failed). With ``quiet=True`` no message box is shown (tests, scripts)."""

    title = TITLE
    plain_errors = (IAAError, OSError)
    cancelled_text = "Export cancelled; nothing was written."

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
        """Export to ``out_dir``; False while another export runs. Cancel stops at the next
        lesion and the folder is removed."""
        job = lambda: iter_export_reviewed(dataset, dict(reviews), out_dir,  # noqa: E731
                                           include_annotators=include_annotators)
        return self._run(lambda on_error: generator_worker(job(), on_error),
                         "Exporting the reviewed dataset…", len(dataset))

    def _step_text(self, step: Progress) -> str:
        return f"Lesion {step.done} of {step.total}: {step.message}"

    def _summary_lines(self, result: ReviewedExportSummary) -> list[str]:
        return summary_lines(result)


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
