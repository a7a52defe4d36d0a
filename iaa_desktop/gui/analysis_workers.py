"""Worker threads for the analysis panels: pair matrices, dataset plots, QA findings.

Built like ``iaa_desktop.gui.workers``: superqt ``create_worker`` with
``_start_thread=False`` and ``errored`` always connected (without it superqt
re-raises the worker's exception in the main thread). The caller connects
``returned`` (and ``yielded`` for generators), then calls ``start()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd
from superqt.utils import FunctionWorker, GeneratorWorker, create_worker

from iaa_desktop.core.agreement.lesion import lesion_agreement
from iaa_desktop.core.dataset.model import Dataset, Lesion
from iaa_desktop.core.dataset.qa import iter_qa
from iaa_desktop.core.display.pair_matrix import PairMatrix, lesion_agreement_from_table, pair_matrices
from iaa_desktop.core.statistics.analysis import image_metadata_from_dataset
from iaa_desktop.core.statistics.views import DatasetViews, dataset_views
from iaa_desktop.gui.workers import generator_worker, worker_connections

log = logging.getLogger(__name__)


def lesion_pair_matrices(lesion: Lesion, pairwise: pd.DataFrame | None = None
                         ) -> dict[tuple[str, bool], PairMatrix]:
    """Every heatmap view of one lesion: its pairs from ``pairwise`` when given, else measured now."""
    if pairwise is not None and len(pairwise):
        agreement = lesion_agreement_from_table(pairwise, lesion)
        if agreement.pairs:
            return pair_matrices(agreement, lesion)
    return pair_matrices(lesion_agreement(lesion), lesion)


def pair_matrices_worker(lesion: Lesion, on_errored: Callable[[BaseException], None],
                         pairwise: pd.DataFrame | None = None) -> FunctionWorker:
    """A worker measuring one lesion's mask pairs; not started.

    ``returned`` carries ``dict[(metric, include_consensus), PairMatrix]`` for
    ``PairHeatmap.set_matrices``. With ``pairwise`` (a ``DatasetAgreement``'s
    table) the lesion's rows are reused instead of decoding its masks again.
    """
    return create_worker(lesion_pair_matrices, lesion, pairwise, _start_thread=False,
                         _connect=worker_connections(on_errored))


def views_with_metadata(agreement, lesion_table: pd.DataFrame, dataset: Dataset | None = None,
                        n_boot: int = 1000) -> DatasetViews:
    """``dataset_views``, with image size and age columns when ``dataset`` is given."""
    metadata = image_metadata_from_dataset(dataset) if dataset is not None else None
    return dataset_views(agreement, lesion_table, metadata, n_boot=n_boot)


def dataset_views_worker(agreement, lesion_table: pd.DataFrame, on_errored: Callable[[BaseException], None],
                         dataset: Dataset | None = None) -> FunctionWorker:
    """A worker computing every agreement plot's data; not started.

    ``agreement`` is a ``DatasetAgreement`` (from ``iter_dataset_agreement``)
    and ``lesion_table`` the ``lesion_table_frame``; ``returned`` carries a
    ``DatasetViews`` for ``AgreementPlots.set_views``.
    """
    return create_worker(views_with_metadata, agreement, lesion_table, dataset, _start_thread=False,
                         _connect=worker_connections(on_errored))


def qa_worker(dataset: Dataset, on_errored: Callable[[BaseException], None]) -> GeneratorWorker:
    """A worker running the mask QA checks; not started.

    It yields ``Progress`` per lesion (``quit()`` stops it there) and
    ``returned`` carries the findings table for ``ProblemsPanel.set_problems``.
    """
    return generator_worker(iter_qa(dataset), on_errored)
