"""Export overlay figures of many lesions from the GUI: folder and format, progress, cancel, summary.

The work is ``core.figures.lesion_batch.iter_export_lesion_figures`` in a worker thread
(``gui.lesion_workers.lesion_batch_worker``); this only asks, shows progress and reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog

from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.figures.lesion_batch import LesionBatchResult
from iaa_desktop.core.progress import Progress
from iaa_desktop.gui.lesion_workers import lesion_batch_worker
from iaa_desktop.gui.widgets.export_job import ExportJob

FORMATS = ("png", "svg", "pdf")
#: Skipped lesions listed in the summary; the rest are counted.
SUMMARY_SKIPPED = 10


class LesionBatchExport(ExportJob):
    """One batch export at a time, with a progress dialog whose Cancel stops between lesions.

    ``done`` carries the ``LesionBatchResult`` (``None`` when cancelled or failed).
    With ``quiet=True`` no message box is shown (tests, scripts).
    """

    title = "Export lesion figures"

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
        ids = list(image_ids)
        return self._run(lambda on_error: lesion_batch_worker(dataset, ids, out_dir, fmt, on_error),
                         f"Exporting {len(image_ids)} lesion figures…", len(image_ids))

    def _step_text(self, step: Progress) -> str:
        return f"Exported {step.done} of {step.total}: {step.message}"

    def _summary_lines(self, result: LesionBatchResult) -> list[str]:
        lines = [f"{len(result.written)} figures written to {result.out_dir}."]
        if result.skipped:
            lines.append(f"{len(result.skipped)} lesions skipped:")
            lines += [f"• {image_id}: {reason}" for image_id, reason in result.skipped[:SUMMARY_SKIPPED]]
            if len(result.skipped) > SUMMARY_SKIPPED:
                lines.append(f"… and {len(result.skipped) - SUMMARY_SKIPPED} more")
        return lines
