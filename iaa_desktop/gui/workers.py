"""Worker threads that call the core: superqt ``create_worker`` wrappers.

Every factory here builds its worker with ``_start_thread=False`` and always
connects ``errored`` (without it superqt re-raises the worker's exception in
the main thread). The caller connects its slots and then calls ``start()``;
tests can do the same inside ``qtbot.waitSignal(worker.finished)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from superqt.utils import FunctionWorker, GeneratorWorker, create_worker

from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.dataset.summary import dataset_summary
from iaa_desktop.core.display.overlay import lesion_table_frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexedDataset:
    """A loaded dataset with what the window shows about it, all computed off the GUI thread."""

    dataset: Dataset
    table: pd.DataFrame
    summary: dict[str, object]


def index_dataset(path: str | Path) -> IndexedDataset:
    """Load the dataset at ``path`` and compute its lesion table and summary."""
    dataset = load_dataset(Path(path))
    return IndexedDataset(dataset, lesion_table_frame(dataset), dataset_summary(dataset))


def index_demo_dataset() -> IndexedDataset:
    """Generate the demo dataset on first use (in the user cache), then index it."""
    from iaa_desktop.core.dataset.demo import demo_dataset_dir

    return index_dataset(demo_dataset_dir())


class WorkerFailure(Exception):
    """A ``RuntimeError`` raised inside a generator worker, re-raised as another type.

    superqt's ``GeneratorWorker`` takes a ``RuntimeError`` for "the worker was
    deleted" and then emits neither ``errored`` nor ``finished``; wrapping it
    keeps the error visible and the worker's end signalled.
    """


def runtime_errors_reported(job: Generator):
    """Run generator ``job``, re-raising a ``RuntimeError`` as ``WorkerFailure`` (see there)."""
    try:
        return (yield from job)
    except RuntimeError as exc:
        raise WorkerFailure(f"{type(exc).__name__}: {exc}") from exc


class ClosingGeneratorWorker(GeneratorWorker):
    """A ``GeneratorWorker`` that closes its generator when it stops, in its own thread.

    superqt's ``quit()`` leaves the generator suspended at its ``yield``: its ``finally``
    blocks (the agreement cache's flush, a process pool's shutdown, the lesion decoder's
    cancelled futures) then ran only when the garbage collector got to it, in whatever
    thread that was, so what a cancelled analysis had computed was sometimes not in the
    cache when the user pressed F5. Closed here, they run before ``finished``.
    """

    def work(self):
        try:
            return super().work()
        finally:
            self._gen.close()


def generator_worker(job: Generator, on_errored: Callable[[BaseException], None]) -> GeneratorWorker:
    """A worker running ``job``, not started (see ``runtime_errors_reported``, ``ClosingGeneratorWorker``)."""
    return create_worker(runtime_errors_reported, job, _start_thread=False,
                         _connect=worker_connections(on_errored), _worker_class=ClosingGeneratorWorker)


def _log_error(exc: BaseException) -> None:
    log.debug("worker failed", exc_info=exc)


def _log_warning(showwarning_args: tuple) -> None:
    # superqt catches warnings raised in the worker and emits them as ``warned``.
    message, category, filename, lineno, *_ = showwarning_args
    log.warning("%s: %s (%s:%s)", category.__name__, message, filename, lineno)


def worker_connections(on_errored: Callable[[BaseException], None]) -> dict:
    """``_connect`` of every worker: log errors and warnings, and call ``on_errored``."""
    return {"errored": [_log_error, on_errored], "warned": _log_warning}


def dataset_worker(path: str | Path | None, on_errored: Callable[[BaseException], None]) -> FunctionWorker:
    """A worker that indexes ``path`` (the demo dataset when ``None``); not started.

    Its ``returned`` signal carries an ``IndexedDataset``.
    """
    if path is None:
        return create_worker(index_demo_dataset, _start_thread=False,
                             _connect=worker_connections(on_errored))
    return create_worker(index_dataset, path, _start_thread=False,
                         _connect=worker_connections(on_errored))


def analysis_worker(dataset: Dataset, on_errored: Callable[[BaseException], None],
                    workers: int | None = None) -> GeneratorWorker:
    """A worker that computes the agreement and QA of a whole dataset; not started.

    It yields ``Progress`` per lesion (``quit()`` stops it there; what was
    computed stays in the agreement cache) and returns a ``DatasetAnalysis``.
    """
    from iaa_desktop.core.display.dataset_analysis import iter_dataset_analysis

    return generator_worker(iter_dataset_analysis(dataset, workers=workers), on_errored)
