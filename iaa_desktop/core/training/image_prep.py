"""Decoding and resizing dataset images for a training set: one image, or many in parallel.

JPEGs are decoded at 1/2, 1/4 or 1/8 scale when that still leaves at least twice the target
size (libjpeg's DCT scaling, several times faster than decoding in full), then resized with
``cv2.INTER_AREA``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from iaa_desktop.core.dataset.images import check_pixel_limit, read_bytes_checked, read_header_size
from iaa_desktop.core.errors import MaskDecodeError
from iaa_desktop.core.parallel import bounded_results, process_pool

_REASON_KINDS = {"missing": "missing_image", "empty": "empty_file", "truncated": "truncated_file",
                 "too_large": "image_too_large"}


# --- decoding --------------------------------------------------------------------------------------

def _reduce_factor(data: bytes, height: int, width: int, size: int) -> int:
    if not data.startswith(b"\xff\xd8"):
        return 1
    for factor in (8, 4, 2):
        if min(height, width) >= 2 * size * factor:
            return factor
    return 1


_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
          8: cv2.IMREAD_REDUCED_COLOR_8}


def prepare_image(path: str | Path, size: int) -> np.ndarray:
    """Decode ``path`` and resize it to (size, size, 3) RGB uint8.

    Raises ``MaskDecodeError`` (with ``reason``) for a missing, empty, truncated,
    oversized or unreadable file.
    """
    path = Path(path)
    data = read_bytes_checked(path)
    height, width = read_header_size(path, data)
    check_pixel_limit(path, height, width)
    flags = _FLAGS[_reduce_factor(data, height, width, size)]
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is None:
        raise MaskDecodeError(f"{path}: not a readable image")
    if bgr.shape[:2] != (size, size):
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _prepare_or_reason(path: str, size: int) -> tuple[np.ndarray | None, str, str]:
    # Returns instead of raising: cheap to pickle back from a worker process.
    try:
        return prepare_image(path, size), "", ""
    except MaskDecodeError as exc:
        return None, _REASON_KINDS.get(exc.reason, "unreadable_image"), str(exc)
    except (OSError, cv2.error, ValueError) as exc:
        return None, "unreadable_image", f"{path}: not a readable image ({exc})"


def _make_executor(workers: int, parallel: str) -> Executor:
    if parallel == "processes":

        # spawn, not fork: the GUI calls this from a thread of a Qt process.
        return process_pool(workers)
    return ThreadPoolExecutor(workers, thread_name_prefix="training-set")


def _iter_prepared(paths: Sequence[str], size: int, workers: int, parallel: str):
    """(index, image or None, kind, message) in order, decoded ``workers`` at a time."""
    if workers <= 1 or len(paths) <= 1:
        for index, path in enumerate(paths):
            yield (index, *_prepare_or_reason(path, size))
        return
    with _make_executor(workers, parallel) as pool:
        submit = lambda p, item: p.submit(_prepare_or_reason, item[1], size)  # noqa: E731
        for (index, _), prepared in bounded_results(pool, enumerate(paths), submit, 4 * workers,
                                                    ordered=True):
            yield (index, *prepared)
