"""The docked panels around the lesion view and the workers that feed them.

``DatasetPanels`` builds the pairwise heatmap, the agreement plots, the
problems panel and the review panel, docks them in the main window and keeps
them in step with it: a new dataset, a finished analysis, a new current lesion.
Every number comes from a worker calling the core (``gui.analysis_workers``).
"""

from __future__ import annotations

import dataclasses
import logging

from PySide6.QtCore import QObject, Qt

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.review.reviews import all_reviews
from iaa_desktop.core.review.workspace import Workspace, WorkspaceError
from iaa_desktop.gui.analysis_workers import dataset_views_worker, pair_matrices_worker
from iaa_desktop.gui.widgets.agreement_plots import AgreementPlots
from iaa_desktop.gui.widgets.pair_heatmap import PairHeatmap
from iaa_desktop.gui.widgets.problems_panel import ProblemsPanel
from iaa_desktop.gui.widgets.review_panel import ReviewPanel

log = logging.getLogger(__name__)

RIGHT = Qt.DockWidgetArea.RightDockWidgetArea


class DatasetPanels(QObject):
    """Owns the analysis and review panels of a ``MainWindow``."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.workspace: Workspace | None = None
        self.heatmap = PairHeatmap(window)
        self.plots = AgreementPlots(window)
        self.problems = ProblemsPanel(window)
        self.review = ReviewPanel(window)
        # One tabbed column beside the lesion view: each panel gets the full height.
        # Short titles: four tabs share the right dock, whose default width is 430 px.
        window.add_dock("pairs", "Pairwise", self.heatmap, RIGHT)
        window.add_dock("plots", "Plots", self.plots, RIGHT, tabify_with="pairs")
        window.add_dock("review", "Review", self.review, RIGHT, tabify_with="pairs")
        window.add_dock("problems", "Problems", self.problems, RIGHT, tabify_with="pairs")
        window.docks["pairs"].raise_()
        self._heatmap_worker = None
        self._heatmap_wanted: str | None = None
        self._heatmap_running: str | None = None
        self._views_worker = None

        self.heatmap.pair_clicked.connect(self._on_heatmap_pair_clicked)
        self.plots.lesions_selected.connect(self._on_plots_lesions_selected)
        self.problems.lesion_activated.connect(self._on_problems_lesion_activated)
        self.review.review_changed.connect(self._on_review_review_changed)
        self.review.lesion_requested.connect(self._on_review_lesion_requested)
        self.review.save_failed.connect(self._on_review_save_failed)

    # -- called by the window -------------------------------------------------

    def dataset_loaded(self, dataset) -> dict[str, str]:
        """A new dataset is shown: reset the panels, open its workspace; returns the review statuses."""
        self.heatmap.clear("No lesion selected")
        self.plots.clear("Computing agreement…")
        self.problems.set_problems(dataset.problems)
        self._open_workspace(dataset)
        self.review.set_image_order([lesion.image_id for lesion in dataset])
        return self.review.statuses() if self.workspace is not None else {}

    def analysis_ready(self, analysis, lesion_table) -> None:
        dataset = self.window.dataset
        self.problems.set_problems(dataset.problems, analysis.qa)
        worker = dataset_views_worker(analysis.agreement, lesion_table, self._on_worker_errored,
                                      dataset=dataset)
        worker.returned.connect(self.plots.set_views)
        worker.finished.connect(self._on_views_worker_finished)
        self._views_worker = worker
        worker.start()
        current = self.window.table.current_image_id()
        if current is not None:
            self.lesion_selected(current)  # its pairs now come from the table, not a fresh decode

    def lesion_selected(self, image_id: str) -> None:
        dataset = self.window.dataset
        if dataset is None:
            return
        lesion = dataset.lesion(image_id)
        self.review.set_lesion(image_id, [s.annotator for s in lesion.human_segmentations])
        self._heatmap_wanted = image_id
        self.heatmap.show_loading(image_id)
        if self._heatmap_worker is None:
            self._start_heatmap(image_id)

    def is_busy(self) -> bool:
        return self._heatmap_worker is not None or self._views_worker is not None

    def reviews(self) -> dict:
        """Every saved review of the dataset shown (pending edits saved first); empty without a
        workspace."""
        self.review.flush()
        return all_reviews(self.workspace) if self.workspace is not None else {}

    def close(self) -> None:
        self.review.flush()
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None

    # -- internals ------------------------------------------------------------

    def _open_workspace(self, dataset) -> None:
        self.review.flush()
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None
        try:
            self.workspace = Workspace.for_dataset(dataset.root)
        except (WorkspaceError, OSError) as exc:
            log.warning("no workspace for %s: %s", dataset.root, exc)
            self.window.statusBar().showMessage(f"Reviews unavailable: {exc}", 10_000)
        self.review.set_workspace(self.workspace)

    def _start_heatmap(self, image_id: str) -> None:
        analysis = self.window.analysis
        pairwise = analysis.agreement.pairwise if analysis is not None else None
        worker = pair_matrices_worker(self.window.dataset.lesion(image_id), self._on_worker_errored, pairwise)
        worker.returned.connect(self._on_heatmap_worker_returned)
        worker.finished.connect(self._on_heatmap_worker_finished)
        self._heatmap_worker = worker
        self._heatmap_running = image_id
        worker.start()

    def _on_heatmap_worker_returned(self, matrices) -> None:
        if self._heatmap_running == self._heatmap_wanted:
            self.heatmap.set_matrices(matrices)

    def _on_heatmap_worker_finished(self) -> None:
        finished = self._heatmap_running
        self._heatmap_worker = None
        self._heatmap_running = None
        if self._heatmap_wanted is not None and self._heatmap_wanted != finished:
            self._start_heatmap(self._heatmap_wanted)

    def _on_views_worker_finished(self) -> None:
        self._views_worker = None

    def _on_worker_errored(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, IAAError) else f"{type(exc).__name__}: {exc}"
        log.warning("panel worker failed: %s", message)
        self.window.statusBar().showMessage(message, 10_000)

    def _on_heatmap_pair_clicked(self, pair) -> None:
        self.window.lesion_view.show_mask_pair(pair)

    def _on_plots_lesions_selected(self, image_ids: list) -> None:
        if image_ids:
            self.window.table.select_lesions(image_ids)
        else:
            self.window.table.clear_selection()

    def _on_problems_lesion_activated(self, image_id: str) -> None:
        if image_id:
            self.window.show_lesion(image_id)

    def _on_review_review_changed(self, _image_id: str, _status: str) -> None:
        data = self.window.table.data()
        if data is not None:
            self.window.table.set_data(dataclasses.replace(data, reviews=self.review.statuses()))

    def _on_review_lesion_requested(self, image_id: str) -> None:
        self.window.show_lesion(image_id)

    def _on_review_save_failed(self, message: str) -> None:
        self.window.statusBar().showMessage(message, 10_000)
