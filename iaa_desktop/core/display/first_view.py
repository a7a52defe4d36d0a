"""The first view of a large lesion: outlines at display resolution at once, exact ones right after.

At 6000 x 4000, decoding five masks in full (inflating and unfiltering 24 MB each, the
pixel checks, tracing at full resolution) was most of a lesion switch. The viewer shows
such an image decoded at a quarter of its size (and on screen smaller still), so a first
view needs only the mask pixels under the display pixels' centres:
``png_fast.decode_png_sampled`` reads those without unfiltering (or keeping) the other rows.

``iter_lesion_first_view`` runs in two stages:

1. ``ImagePreview`` (the image), a ``Progress`` per mask, then a ``FirstView`` step whose
   ``display`` has ``exact=False``. Its display-size masks are the exact ones: the same
   source pixels ``lesion.to_display`` samples (``sample_indices``), so consensus,
   disagreement maps, fills, pair mode and the pixel read-out are already exact. Only the
   annotators' outlines differ: traced on the display-size masks and scaled to
   full-resolution coordinates, they lie within two display pixels of the exact ones
   (sampling moves a border by under one, each outline is simplified to half of one; on
   the synthetic 6000 x 4000 masks of ``bench_lesion_switch.py`` at most 1.8, about one
   screen pixel when the whole image is fitted in a 1000-pixel-wide view). Problems only
   a full decode finds (values other than 0 and the maximum) are not known yet.
2. Then the exact display, as ``lesion.iter_lesion_display`` returns it (every mask
   decoded in full with its checks, outlines traced at full resolution), is returned.
   Its masks decode in threads of low scheduling priority (where the OS allows it), so
   that drawing the first view is not slowed by them.

A viewer draws the first view, then the exact display in its place keeping the zoom:
a user who zooms in sees exact outlines a moment after the first view (about the old
first view's time), whatever the zoom. Closing the generator (switching to another lesion)
stops the refinement between masks; nothing of it is kept. Lesions shown at full
resolution (the display size is the image's) have no first view: the exact decode is as
fast, and the generator is ``iter_lesion_display`` itself.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from iaa_desktop.core.dataset.images import check_pixel_limit, read_bytes_checked, read_header_size
from iaa_desktop.core.dataset.model import Lesion, Segmentation
from iaa_desktop.core.dataset.png_fast import decode_png_sampled
from iaa_desktop.core.display.lesion import (
    ImagePreview,
    LesionDisplay,
    assemble_display,
    collect_masks,
    decode_mask_for_display,
    decode_pool,
    display_shape,
    display_target,
    iter_lesion_display,
    outline_tolerance,
    scaled_contours,
)
from iaa_desktop.core.display.overlay import DISPLAY_MAX_SIDE, read_display_image
from iaa_desktop.core.errors import MaskDecodeError
from iaa_desktop.core.progress import Progress

__all__ = ["FirstView", "iter_lesion_first_view", "sample_display_mask", "sample_indices"]

#: Niceness of the refinement threads (Linux schedules threads by their own niceness).
REFINE_NICENESS = 10
_REFINE_THREADS = max(1, min(4, os.cpu_count() or 1))
_refine_pool: ThreadPoolExecutor | None = None
_refine_lock = threading.Lock()


def _lower_priority() -> None:
    # Where threads have no niceness of their own (not Linux), the refinement runs at normal priority.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), REFINE_NICENESS)


def refine_pool() -> ThreadPoolExecutor:
    """The low-priority threads the exact stage decodes in (started on first use)."""
    global _refine_pool
    with _refine_lock:
        if _refine_pool is None:
            _refine_pool = ThreadPoolExecutor(_REFINE_THREADS, thread_name_prefix="lesion-refine",
                                              initializer=_lower_priority)
        return _refine_pool


@dataclass(frozen=True, eq=False)
class FirstView(Progress):
    """The step of ``iter_lesion_first_view`` that carries the first view (``display.exact`` is False)."""

    display: LesionDisplay | None = None


def sample_indices(source: int, target: int) -> np.ndarray:
    """The source index each of ``target`` pixels takes, exactly as ``to_display`` (OpenCV's
    ``INTER_NEAREST_EXACT``) picks it: asked of OpenCV itself, by resizing the indices."""
    indices = np.arange(source, dtype=np.int32).reshape(1, -1)
    return cv2.resize(indices, (target, 1), interpolation=cv2.INTER_NEAREST_EXACT).ravel().astype(np.int64)


def sample_display_mask(seg: Segmentation, full: tuple[int, int] | None, small: tuple[int, int] | None):
    """One mask for the first view, in ``decode_mask_for_display``'s shape of result.

    ``(display mask, outlines traced on it in full-resolution coordinates, the mask's
    full shape, ())`` when ``decode_png_sampled`` reads the file; otherwise (another PNG
    flavour, a damaged or missing file) the full decode, with its problems.
    """
    path = Path(seg.mask_path)
    try:
        data = read_bytes_checked(path)
        height, width = read_header_size(path, data)
        check_pixel_limit(path, height, width)
    except MaskDecodeError:
        return decode_mask_for_display(seg, full, small)  # which words the problem
    target_small = small or display_shape((height, width))
    rows, cols = sample_indices(height, target_small[0]), sample_indices(width, target_small[1])
    mask = decode_png_sampled(data, rows, cols)
    if mask is None:
        return decode_mask_for_display(seg, full, small)
    target_full = full or (height, width)
    contours = scaled_contours(mask, target_full, outline_tolerance(target_full, target_small))
    return mask, contours, (height, width), ()


def iter_lesion_first_view(
    lesion: Lesion, max_side: int = DISPLAY_MAX_SIDE
) -> Generator[Progress, None, LesionDisplay]:
    """Decode a lesion in two stages (see the module docstring); returns the exact ``LesionDisplay``.

    Yields ``ImagePreview``, a ``Progress`` per mask, ``FirstView`` (the display-resolution
    first view), then a ``Progress`` per mask decoded in full. Bad files become problems,
    never exceptions.
    """
    full, small = display_target(lesion, max_side)
    if full is None or small is None or tuple(small) == tuple(full):
        return (yield from iter_lesion_display(lesion, max_side))
    segs = lesion.human_segmentations
    total = 2 * len(segs) + 2
    futures: list[Future] = [decode_pool().submit(sample_display_mask, seg, full, small) for seg in segs]
    try:
        image, shape, problems = read_display_image(lesion, max_side)
        preview_shape = tuple(shape) if shape is not None else tuple(full)
        yield ImagePreview(1, total, f"{lesion.image_id}: image", lesion.image_id, image, preview_shape)
        sampled = yield from collect_masks(lesion, futures, 2, total)
        first = assemble_display(lesion, image, shape, problems, sampled, full, small, max_side, exact=False)
        yield FirstView(len(segs) + 2, total, f"{lesion.image_id}: first view", display=first)
        futures = [refine_pool().submit(decode_mask_for_display, seg, full, small) for seg in segs]
        results = yield from collect_masks(lesion, futures, len(segs) + 3, total)
    finally:
        for future in futures:
            future.cancel()
    return assemble_display(lesion, image, shape, problems, results, full, small, max_side)
