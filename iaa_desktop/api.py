"""The public Python API: what a researcher needs in a notebook, in a handful of functions.

``import iaa_desktop as iaa`` gives these names (loaded on first use, so ``import iaa_desktop``
stays instant for the GUI and the CLI)::

    dataset = iaa.demo_dataset()                       # or iaa.load_dataset("path/to/IMA++")
    agreement = iaa.compute_agreement(dataset, progress=print)
    tables = iaa.agreement_tables(agreement.pairwise)  # image_level, factor_*, intra_inter_*
    result = iaa.analyse(dataset, agreement)           # malignant vs benign, factors, annotators
    result.malignancy.p_mannwhitney, result.malignancy.cohens_d
    iaa.write_report(result, "report/")                # stats.json, CSV tables, figures, HTML
    mv, st = iaa.consensus(dataset.lesions[0])         # majority vote and STAPLE of one lesion
    iaa.export_training_set(dataset, "train.h5", size=224)

Everything else in ``iaa_desktop.core`` stays importable, but only these names are promised
to keep their signatures between minor versions. Long jobs take ``progress``: ``None``, or a
callable that receives :class:`~iaa_desktop.core.progress.Progress` steps (``done``,
``total``, ``message``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.consensus import majority_vote
from iaa_desktop.core.agreement.engine import DatasetAgreement, iter_dataset_agreement
from iaa_desktop.core.agreement.staple import StapleResult, staple
from iaa_desktop.core.agreement.tables import agreement_tables
from iaa_desktop.core.dataset.demo import demo_dataset_dir
from iaa_desktop.core.dataset.io.detect import load_dataset as _load_dataset
from iaa_desktop.core.dataset.masks import decode_mask
from iaa_desktop.core.dataset.model import Dataset, Lesion
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress, run_to_end
from iaa_desktop.core.statistics.analysis import AnalysisResult, image_metadata_from_dataset, run_analysis
from iaa_desktop.core.statistics.analysis_output import stats_json, write_analysis_tables
from iaa_desktop.core.training.training_set import TrainingSetInfo, iter_export_training_set

__all__ = [
    "AnalysisResult",
    "Dataset",
    "DatasetAgreement",
    "Lesion",
    "Progress",
    "StapleResult",
    "agreement_tables",
    "analyse",
    "compute_agreement",
    "consensus",
    "demo_dataset",
    "export_training_set",
    "load_dataset",
    "write_report",
]

ProgressCallback = Callable[[Progress], None] | None


def load_dataset(path: str | Path, layout: str | None = None, **options) -> Dataset:
    """Index the dataset at ``path``: images, masks and metadata, nothing decoded yet.

    Parameters
    ----------
    path
        The dataset folder: an IMA++ release, the folder layout (``images/``,
        ``masks/<annotator>/``), ISIC 2018/2019, derm7pt or PH2.
    layout
        One of those layouts' names, when detection should be skipped.
    options
        Passed to the layout's loader (e.g. ``masks_dir=`` for IMA++).

    Returns
    -------
    Dataset
        Its ``lesions`` (each with ``segmentations``), and ``problems`` found while indexing
        (missing files, unreadable tables), each naming the file.
    """
    return _load_dataset(Path(path), layout, **options)


def demo_dataset(seed: int = 0) -> Dataset:
    """The embedded demo dataset (generated into the user cache on first use), loaded."""
    return _load_dataset(demo_dataset_dir(seed))


def compute_agreement(dataset: Dataset, *, workers: int | None = None, cache: bool = True,
                      progress: ProgressCallback = None) -> DatasetAgreement:
    """Pairwise agreement of every lesion's masks (MedPy's metrics, as IMA++), with consensus.

    Parameters
    ----------
    dataset
        From :func:`load_dataset`.
    workers
        Processes (default: every core; 1 computes in this process).
    cache
        Re-use and store per-lesion results in the user cache (keyed by the masks' bytes).
    progress
        Called with each :class:`Progress` step.

    Returns
    -------
    DatasetAgreement
        ``pairwise`` (one row per mask pair, IMA++'s columns, consensus pairs included),
        ``staple`` (per-annotator sensitivity/specificity), ``problems``.
    """
    options = {} if cache else {"cache": None}
    return run_to_end(iter_dataset_agreement(dataset, workers=workers, **options), progress)


def analyse(dataset: Dataset | None, agreement: DatasetAgreement | pd.DataFrame, *,
            image_metadata: pd.DataFrame | None = None, include_indeterminate: bool = False,
            seed: int = 0, n_boot: int = 10_000, excluded_ids: Iterable[str] = ()) -> AnalysisResult:
    """The study's analysis: malignant vs benign IAA, intra vs inter pairs, annotators, correlates.

    Parameters
    ----------
    dataset
        Gives the labels, image sizes and ages; ``None`` with ``image_metadata``.
    agreement
        From :func:`compute_agreement`, or a pairwise table (e.g. a published IMA++ CSV read
        with ``iaa_desktop.core.agreement.table_io.read_pairwise_csv``).
    image_metadata
        An IMA++-style metadata table, instead of ``dataset``.
    include_indeterminate, seed, n_boot, excluded_ids
        As :func:`iaa_desktop.core.statistics.analysis.run_analysis`.

    Returns
    -------
    AnalysisResult
        ``malignancy`` (Mann-Whitney U, KS, Cohen's d, AUC, bootstrap CI), ``intra_inter``,
        ``per_annotator``, ``correlations``, ``image_level``, ``images`` and more.
    """
    pairwise = agreement.pairwise if isinstance(agreement, DatasetAgreement) else agreement
    if image_metadata is None:
        if dataset is None:
            raise IAAError("analyse needs a dataset or an image_metadata table")
        image_metadata = image_metadata_from_dataset(dataset)
    return run_analysis(pairwise, image_metadata, include_indeterminate=include_indeterminate,
                        seed=seed, n_boot=n_boot, excluded_ids=excluded_ids)


def write_report(result: AnalysisResult, out_dir: str | Path, *, figures: bool = True,
                 formats: tuple[str, ...] = ("png", "svg", "pdf"), dpi: int = 200) -> Path:
    """Write ``stats.json``, the analysis tables (CSV) and, with ``figures``, the figures and
    ``report.html`` into ``out_dir`` (created if needed); the folder's path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_analysis_tables(result, out)
    stats = stats_json(result)
    (out / "stats.json").write_text(json.dumps(stats, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if figures:
        from iaa_desktop.core.figures import write_report_figures
        from iaa_desktop.core.statistics.html_report import write_html_report

        drawn = write_report_figures(result, out, formats=formats, dpi=dpi)
        shown = {k: v for k, v in stats.items() if k not in ("factor_matrices", "per_annotator")}
        write_html_report(result, shown, drawn, out, parameters=dict(result.parameters))
    return out


def consensus(lesion: Lesion) -> tuple[np.ndarray, StapleResult]:
    """Majority vote (ties to foreground, as IMA++) and STAPLE of one lesion's human masks.

    Returns
    -------
    (numpy.ndarray, StapleResult)
        The bool majority-vote mask, and STAPLE's mask, probability map and per-annotator
        sensitivity/specificity (in the order of ``lesion.human_segmentations``).

    Raises
    ------
    IAAError
        When fewer than two of the lesion's human masks can be read, naming the files.
    """
    shape = (lesion.height, lesion.width) if lesion.height and lesion.width else None
    masks, problems = [], []
    for seg in lesion.human_segmentations:
        decoded = decode_mask(seg.mask_path, image_id=lesion.image_id, expected_shape=shape)
        problems.extend(p.message for p in decoded.problems)
        if decoded.mask is not None and (shape is None or decoded.mask.shape == shape):
            masks.append(decoded.mask)
            shape = decoded.mask.shape
    if len(masks) < 2:
        detail = "; ".join(problems) or f"{len(lesion.human_segmentations)} human mask(s)"
        raise IAAError(f"{lesion.image_id}: consensus needs two readable human masks ({detail})")
    return majority_vote(masks), staple(masks)


def export_training_set(dataset: Dataset, out_path: str | Path, *, size: int = 224,
                        iaa: pd.Series | None = None, excluded_ids: Iterable[str] = (),
                        progress: ProgressCallback = None) -> TrainingSetInfo:
    """Write ``dataset`` as an HDF5 training set for ``iaa-train`` (never into the dataset).

    ``iaa`` gives IAA per image id (default: computed from the masks); see
    :func:`iaa_desktop.core.training.training_set.iter_export_training_set` for the rest.
    """
    job = iter_export_training_set(dataset, out_path, size=size, iaa=iaa, excluded_ids=excluded_ids)
    return run_to_end(job, progress)
