"""Agreement over a whole dataset: every lesion in parallel processes, cached on disk.

``iter_dataset_agreement`` is a generator: it yields ``Progress`` per lesion
and returns a ``DatasetAgreement``. Closing it (the GUI's Cancel, Ctrl+C in the
CLI) stops at the next lesion: queued work is cancelled and what was computed
so far stays in the cache.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from iaa_desktop.core.agreement.boundary import DEFAULT_SPEC, BoundarySpec
from iaa_desktop.core.agreement.cache import AgreementCache, default_cache_path
from iaa_desktop.core.agreement.chance import CHANCE_COLUMNS
from iaa_desktop.core.agreement.lesion import (
    STAPLE_COLUMNS,
    LesionAgreement,
    lesion_agreement,
    lesion_fingerprint,
)
from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS
from iaa_desktop.core.dataset.model import Dataset, Problem
from iaa_desktop.core.parallel import bounded_results, process_pool
from iaa_desktop.core.progress import Progress

_DEFAULT = object()


@dataclass(frozen=True)
class DatasetAgreement:
    """The pairwise table, STAPLE's estimates, chance-corrected agreement, and what went wrong.

    ``pairwise`` has the IMA++ columns (MedPy's convention) first, then the MetricsReloaded
    columns (``mr_*``) when they were computed. ``chance`` has one row per lesion with pairs:
    ``img_id`` and ``chance.CHANCE_COLUMNS``.
    """

    pairwise: pd.DataFrame
    staple: pd.DataFrame
    problems: tuple[Problem, ...]
    consensus_source: dict[str, str]
    computed: int
    from_cache: int
    chance: pd.DataFrame = None  # type: ignore[assignment]  # set by _assemble

    @property
    def n_lesions_with_pairs(self) -> int:
        return int(self.pairwise["img_id"].nunique()) if len(self.pairwise) else 0


def _assemble(results: list[LesionAgreement], computed: int, cached: int) -> DatasetAgreement:
    pairs = [row for r in results for row in r.pairs]
    staple_rows = [row for r in results for row in r.staple_rows]
    extra = next((r.extra_columns for r in results if r.pairs), ())
    pairwise = pd.DataFrame(pairs, columns=[*PAIRWISE_COLUMNS, *extra])
    chance = pd.DataFrame([(r.image_file_name, *r.chance) for r in results if r.pairs and r.chance],
                          columns=["img_id", *CHANCE_COLUMNS])
    staple = pd.DataFrame(staple_rows, columns=list(STAPLE_COLUMNS))
    return DatasetAgreement(
        pairwise=pairwise,
        staple=staple,
        problems=tuple(p for r in results for p in r.problems),
        consensus_source={r.image_id: r.consensus_source for r in results if r.consensus_source},
        computed=computed,
        from_cache=cached,
        chance=chance,
    )


#: Below this much mask to read (megapixels, summed over masks) a process pool costs more to
#: start (spawn and imports, ~1.5 s a worker on 2 cores) than it saves, measured: the demo's
#: 150 MP 0.5-1.0 s in this process vs 1.9 s on 2 workers; 60 IMA++-sized lesions (~1,250 MP)
#: 3.3 s vs 3.5 s.
SMALL_WORK_MASK_MP = 1000.0
_UNKNOWN_IMAGE_MP = 6.1  # IMA++'s median image, for a lesion whose size the index lacks


def suggested_workers(dataset: Dataset, cores: int | None = None) -> int:
    """Processes worth starting for ``dataset``'s agreement: every core, or 1 for little work."""
    cores = max(1, cores or os.cpu_count() or 1)
    work = sum(len(lesion.segmentations) * (lesion.width * lesion.height / 1e6
                                            if lesion.width and lesion.height else _UNKNOWN_IMAGE_MP)
               for lesion in dataset if lesion.segmentations)
    return 1 if work < SMALL_WORK_MASK_MP else cores


def iter_dataset_agreement(
    dataset: Dataset,
    *,
    workers: int | None = None,
    cache=_DEFAULT,
    maps_dir: Path | None = None,
    empty_policy: str = "imapp",
    boundary: BoundarySpec | None = DEFAULT_SPEC,
) -> Generator[Progress, None, DatasetAgreement]:
    """Compute (or read from cache) the agreement of every lesion of ``dataset``.

    Parameters
    ----------
    dataset
        An indexed dataset; only lesions with masks are visited.
    workers
        Processes to use (default: every core). 1 computes in this process.
    cache
        An ``AgreementCache``, ``None`` for no cache, or (default) the dataset's
        cache file in the user cache directory.
    maps_dir
        When given, consensus masks and disagreement maps are written there as
        PNG (every lesion is then computed, since maps are not cached).
    empty_policy
        Passed to ``pair_metrics`` (default: the IMA++ tables' convention).
    boundary
        NSD tolerances and Boundary IoU widths of the MetricsReloaded columns (default
        :class:`BoundarySpec`); ``None`` computes MedPy's columns only.
    """
    if cache is _DEFAULT:
        cache = AgreementCache(default_cache_path(dataset.root))
    lesions = [lesion for lesion in dataset if lesion.segmentations]
    total = len(lesions)
    results: dict[int, LesionAgreement] = {}
    todo: list[tuple[int, str]] = []
    for index, lesion in enumerate(lesions):
        key = lesion_fingerprint(lesion, f"{empty_policy}|{boundary.key() if boundary else '-'}")
        hit = cache.get(key) if cache is not None and maps_dir is None else None
        if hit is not None:
            results[index] = hit
        else:
            todo.append((index, key))
    cached = len(results)
    if cached:
        yield Progress(cached, total, f"{cached} lesions from the cache")
    job = partial(lesion_agreement, empty_policy=empty_policy, maps_dir=maps_dir, boundary=boundary)
    workers = max(1, workers or os.cpu_count() or 1)
    try:
        if workers == 1 or len(todo) <= 1:
            for index, key in todo:
                results[index] = job(lesions[index])
                _store(cache, key, results[index])
                yield Progress(len(results), total, lesions[index].image_id)
        else:
            yield from _run_pool(job, lesions, todo, workers, results, cache, total)
    finally:
        if cache is not None:
            cache.flush()
    return _assemble([results[i] for i in sorted(results)], len(todo), cached)


def _store(cache: AgreementCache | None, key: str, result: LesionAgreement) -> None:
    if cache is not None:
        cache.put(key, result)


def _run_pool(job, lesions, todo, workers, results, cache, total) -> Generator[Progress, None, None]:
    with process_pool(workers) as pool:
        done = bounded_results(pool, todo, lambda p, item: p.submit(job, lesions[item[0]]), 4 * workers)
        for (index, key), result in done:
            results[index] = result
            _store(cache, key, result)
            yield Progress(len(results), total, lesions[index].image_id)
