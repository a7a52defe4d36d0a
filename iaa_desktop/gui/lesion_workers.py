"""Worker threads for the lesion view: decoding a lesion (through the display cache), STAPLE, batch export.

Factories build superqt workers with ``_start_thread=False`` and ``errored`` connected,
as ``iaa_desktop.gui.workers`` does. ``LesionLoader`` wraps them for a window: the newest
request wins, revisits come from the cache without a thread, a large lesion is shown first
at display resolution and then exactly (``core.display.first_view``), and STAPLE is computed
on demand (after the exact draw) and cached with the lesion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from superqt.utils import FunctionWorker, GeneratorWorker, create_worker

from iaa_desktop.core.dataset.model import Dataset, Lesion
from iaa_desktop.core.display.cache import DisplayCache, lesion_cache_key
from iaa_desktop.core.display.first_view import FirstView, iter_lesion_first_view
from iaa_desktop.core.display.lesion import (
    ImagePreview,
    LesionDisplay,
    iter_lesion_display,
    prepare_decoding,
    with_staple,
)
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.figures.lesion_batch import iter_export_lesion_figures
from iaa_desktop.core.progress import Progress
from iaa_desktop.gui.workers import generator_worker, worker_connections

log = logging.getLogger(__name__)

#: Images from this many full-resolution pixels on are shown before their masks are decoded
#: (at 6000 x 4000 the masks take most of the first view; small ones come too fast to bother).
PREVIEW_MIN_PIXELS = 8_000_000


def cached_lesion_display(lesion: Lesion, cache: DisplayCache | None,
                          first_view: bool = False) -> Generator[Progress, None, LesionDisplay]:
    """``iter_lesion_display`` that first looks in ``cache`` and stores what it decoded there.

    With ``first_view``, ``iter_lesion_first_view``: a ``FirstView`` step comes before the
    exact display (only the exact display is cached).
    """
    key = lesion_cache_key(lesion)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    display = yield from (iter_lesion_first_view(lesion) if first_view else iter_lesion_display(lesion))
    if cache is not None:
        cache.put(key, display)
    return display


def staple_display(lesion: Lesion, display: LesionDisplay, cache: DisplayCache | None) -> LesionDisplay:
    """``display`` with STAPLE (``core.lesion_display.with_staple``), replacing the cached entry."""
    result = with_staple(display)
    if cache is not None and result is not display:
        cache.put(lesion_cache_key(lesion), result)
    return result


def lesion_display_worker(lesion: Lesion, cache: DisplayCache | None,
                          on_errored: Callable[[BaseException], None],
                          first_view: bool = False) -> GeneratorWorker:
    """Decode ``lesion`` for the view (from ``cache`` when there); not started.

    Yields ``Progress`` per file (and with ``first_view`` a ``FirstView`` step, see
    ``cached_lesion_display``); ``returned`` carries the exact ``LesionDisplay``.
    """
    return generator_worker(cached_lesion_display(lesion, cache, first_view), on_errored)


def staple_worker(lesion: Lesion, display: LesionDisplay, cache: DisplayCache | None,
                  on_errored: Callable[[BaseException], None]) -> FunctionWorker:
    """Compute STAPLE for a decoded lesion; not started. ``returned`` carries the new ``LesionDisplay``."""
    return create_worker(staple_display, lesion, display, cache, _start_thread=False,
                         _connect=worker_connections(on_errored))


def lesion_batch_worker(dataset: Dataset, image_ids: Sequence[str], out_dir: str | Path, fmt: str,
                        on_errored: Callable[[BaseException], None]) -> GeneratorWorker:
    """Export one overlay figure per lesion (``iter_export_lesion_figures``); not started.

    Yields ``Progress`` per lesion (``quit()`` stops between lesions); ``returned``
    carries a ``LesionBatchResult``. A folder inside the dataset ends in ``errored``
    with an ``ExportLocationError``.
    """
    job = iter_export_lesion_figures(dataset, list(image_ids), out_dir, fmt)
    return generator_worker(job, on_errored)


class LesionLoader(QObject):
    """Decodes the lesions a window asks for, one at a time, newest request first, through a cache.

    Signals: ``loading(str image_id)``, ``progress(Progress)``, ``loaded(LesionDisplay)``,
    ``failed(str image_id, str message)``, and ``preview(ImagePreview)`` for a large
    image whose masks are still decoding (connect it to ``LesionView.show_preview``).
    Connect ``LesionView.staple_requested`` to ``request_staple`` and ``loaded`` to
    ``LesionView.show_overlay``. ``prefetch`` decodes
    lesions the user is likely to open next (the table's neighbours) while idle, so that
    switching to them is a cache hit.

    A requested lesion the view shows reduced (larger than ``DISPLAY_MAX_SIDE``) is
    delivered twice: ``loaded`` first carries its first view (``exact`` False: outlines
    traced at display resolution, see ``core.display.first_view``), then, for the same
    lesion unless another was asked for meanwhile, the exact display. With
    ``first_view=False`` every lesion is decoded exactly before it is delivered once (the
    path before the first view; benchmarks compare the two).
    """

    loading = Signal(str)
    progress = Signal(object)
    preview = Signal(object)
    loaded = Signal(object)
    failed = Signal(str, str)

    def __init__(self, cache: DisplayCache | None = None, parent: QObject | None = None,
                 first_view: bool = True) -> None:
        super().__init__(parent)
        self.cache = cache if cache is not None else DisplayCache()
        self.first_view = first_view
        self.dataset: Dataset | None = None
        self._worker: GeneratorWorker | None = None
        self._worker_id: str | None = None
        self._wanted: str | None = None
        self._prefetch: list[str] = []
        self._staple_worker: FunctionWorker | None = None
        self._current: LesionDisplay | None = None

    def set_dataset(self, dataset: Dataset | None) -> None:
        """Serve lesions of ``dataset`` (the cache is emptied when it changes)."""
        if dataset is not self.dataset:
            self.cancel()
            self.cache.clear()
            if dataset is not None:
                prepare_decoding()
        self.dataset = dataset

    def is_busy(self) -> bool:
        return self._worker is not None or self._staple_worker is not None

    def cancel(self) -> None:
        """Drop the pending request and prefetches; a running decode stops at its next file."""
        self._wanted = None
        self._prefetch = []
        if self._worker is not None:
            self._worker.quit()

    def request(self, image_id: str) -> None:
        """Show ``image_id``: at once from the cache, else decoded in a worker (the newest request wins)."""
        if self.dataset is None:
            return
        hit = self.cache.get(lesion_cache_key(self.dataset.lesion(image_id)))
        if hit is not None:
            self._wanted = None
            self._deliver(hit)
            return
        self._wanted = image_id
        self.loading.emit(image_id)
        if self._worker is None:
            self._start(image_id)
        elif self._worker_id != image_id:
            self._worker.quit()  # stops at its next file; finished starts the wanted one
        # else: it is being prefetched; its result is delivered when it comes

    def prefetch(self, image_ids: list[str]) -> None:
        """Decode these lesions into the cache while no request is waiting (replaces earlier ones)."""
        self._prefetch = [i for i in image_ids if i != self._wanted]
        if self._worker is None:
            self._start_next_prefetch()

    def request_staple(self, image_id: str) -> None:
        """Compute STAPLE for the lesion last delivered; ``loaded`` then carries it again, with STAPLE.

        Not for a first view: the view asks again when the exact display is delivered.
        """
        current = self._current
        if (self.dataset is None or current is None or current.image_id != image_id or not current.exact
                or current.staple is not None or self._staple_worker is not None):
            return
        worker = staple_worker(self.dataset.lesion(image_id), current, self.cache,
                               lambda exc: self._on_worker_errored(exc, image_id))
        worker.returned.connect(self._on_staple_worker_returned)
        worker.finished.connect(self._on_staple_worker_finished)
        self._staple_worker = worker
        worker.start()

    def _start(self, image_id: str) -> None:
        # A first view only for a lesion someone waits for: a prefetched one is decoded exactly.
        worker = lesion_display_worker(self.dataset.lesion(image_id), self.cache,
                                       lambda exc: self._on_worker_errored(exc, image_id),
                                       self.first_view and image_id == self._wanted)
        worker.yielded.connect(self._on_worker_yielded)
        worker.returned.connect(self._on_worker_returned)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        self._worker_id = image_id
        worker.start()

    def _start_next_prefetch(self) -> None:
        while self._prefetch and self.dataset is not None:
            image_id = self._prefetch.pop(0)
            try:
                lesion = self.dataset.lesion(image_id)
            except KeyError:
                continue
            if lesion_cache_key(lesion) not in self.cache:
                self._start(image_id)
                return

    def _deliver(self, display: LesionDisplay) -> None:
        self._current = display
        self.loaded.emit(display)

    def _on_worker_yielded(self, step: Progress) -> None:
        if self._worker_id != self._wanted:
            return
        if (isinstance(step, ImagePreview) and step.image is not None
                and step.shape[0] * step.shape[1] >= PREVIEW_MIN_PIXELS):
            self.preview.emit(step)
        self.progress.emit(step)
        if isinstance(step, FirstView) and step.display is not None:
            self._deliver(step.display)  # still wanted: the exact display follows

    def _on_worker_returned(self, display: LesionDisplay) -> None:
        if display.image_id == self._wanted:
            self._wanted = None
            self._deliver(display)

    def _on_worker_errored(self, exc: BaseException, image_id: str) -> None:
        message = str(exc) if isinstance(exc, IAAError) else f"{type(exc).__name__}: {exc}"
        log.warning("could not decode %s: %s", image_id, message)
        if image_id == self._wanted:
            self._wanted = None
        self.failed.emit(image_id, message)

    def _on_worker_finished(self) -> None:
        self._worker = None
        self._worker_id = None
        if self._wanted is not None:
            self.request(self._wanted)  # from the cache when a prefetch just finished it
        else:
            self._start_next_prefetch()

    def _on_staple_worker_returned(self, display: LesionDisplay) -> None:
        if self._current is not None and display.image_id == self._current.image_id:
            self._deliver(display)

    def _on_staple_worker_finished(self) -> None:
        self._staple_worker = None
