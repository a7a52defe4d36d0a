"""Everything the desktop app computes about a whole dataset after opening it.

One generator runs the agreement engine (cached per lesion, in worker
processes) and then mask QA, yielding ``Progress`` throughout so that the GUI
can show one progress bar and stop both with one Cancel.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import pandas as pd

from iaa_desktop.core.agreement.engine import DatasetAgreement, iter_dataset_agreement
from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.dataset.qa import iter_qa
from iaa_desktop.core.display.browser_table import agreement_columns, qa_flag_column
from iaa_desktop.core.progress import Progress


@dataclass(frozen=True)
class DatasetAnalysis:
    """The agreement of every lesion, the QA findings, and the browser columns they give."""

    agreement: DatasetAgreement
    qa: pd.DataFrame
    browser_agreement: pd.DataFrame
    qa_flags: pd.Series


def iter_dataset_analysis(
    dataset: Dataset, *, workers: int | None = None, cache=None, use_default_cache: bool = True,
) -> Generator[Progress, None, DatasetAnalysis]:
    """Agreement (then QA) of ``dataset``; yields progress, returns a ``DatasetAnalysis``.

    Parameters
    ----------
    workers
        Processes for both steps (default: the agreement engine's default; QA
        uses the same number).
    cache
        An ``AgreementCache`` to use; with ``None`` and ``use_default_cache`` the
        dataset's cache in the user cache folder, else no cache.
    """
    kwargs = {"workers": workers}
    if cache is not None or not use_default_cache:
        kwargs["cache"] = cache
    n_lesions = sum(1 for lesion in dataset if lesion.segmentations)
    total = 2 * max(n_lesions, 1)
    job = iter_dataset_agreement(dataset, **kwargs)
    try:
        while True:
            step = next(job)
            yield Progress(step.done, total, f"Agreement: {step.message}")
    except StopIteration as stop:
        agreement: DatasetAgreement = stop.value
    qa_job = iter_qa(dataset, workers=workers or 1, decode_images=False)  # headers: see iter_qa
    try:
        while True:
            step = next(qa_job)
            yield Progress(n_lesions + step.done, total, f"Mask QA: {step.message}")
    except StopIteration as stop:
        qa_table: pd.DataFrame = stop.value
    columns = agreement_columns(agreement.pairwise)
    return DatasetAnalysis(agreement, qa_table, columns, qa_flag_column(qa_table))
