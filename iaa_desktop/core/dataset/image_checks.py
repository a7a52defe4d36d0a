"""Checking lesion images the way masks are checked: missing, empty, truncated, undecodable,
too large, or with an unexpected number of channels.

Two depths: ``decode=False`` reads only each file's header and its last bytes (fast: what
``iaa-desktop info`` does on every load), ``decode=True`` also decodes the pixels (what
``qa`` and ``metrics`` do). Nothing here raises for a bad file: every check gives
``Problem`` records that name the file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from iaa_desktop.core.dataset.images import (
    _PNG_SIGNATURE,
    check_pixel_limit,
    check_trailer,
    load_image,
    read_header_size,
)
from iaa_desktop.core.dataset.model import Dataset, Lesion, Problem, make_problem
from iaa_desktop.core.errors import MaskDecodeError
from iaa_desktop.core.parallel import process_pool
from iaa_desktop.core.progress import Progress

#: ``MaskDecodeError.reason`` -> the problem kind it is for an image.
IMAGE_REASON_KINDS = {
    "missing": "missing_image",
    "empty": "empty_file",
    "truncated": "truncated_file",
    "unreadable": "unreadable_image",
    "too_large": "image_too_large",
}
#: Channel counts an image may have without comment (gray, RGB; palettes count as one).
ACCEPTED_CHANNELS = (1, 3)
#: PNG colour type (IHDR byte 25) -> channels stored.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_CHANNEL_NAMES = {2: "gray + alpha", 4: "RGBA or CMYK"}
#: Bytes read from each end of a file for the header-only check.
_HEAD_BYTES = 64
_TAIL_BYTES = 64


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: pixel size and channels stored."""

    height: int
    width: int
    channels: int


def _channels(path: Path, head: bytes) -> int:
    if head.startswith(_PNG_SIGNATURE) and len(head) > 25 and head[12:16] == b"IHDR":
        return _PNG_CHANNELS.get(head[25], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            return len(img.getbands())


def read_image_header(path: Path) -> ImageHeader:
    """Size and channels from the header, after checking the file is there, not empty and not
    cut short (its end marker is read too). The pixels are not decoded.

    Raises
    ------
    MaskDecodeError
        With ``reason`` ``missing``, ``empty``, ``truncated``, ``unreadable`` or ``too_large``.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise MaskDecodeError(f"{path}: is a directory, not an image file")
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
            handle.seek(max(size - _TAIL_BYTES, 0))
            tail = handle.read(_TAIL_BYTES)
    except FileNotFoundError:
        raise MaskDecodeError(f"{path}: file not found", "missing") from None
    except OSError as exc:
        raise MaskDecodeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise MaskDecodeError(f"{path}: file is empty (0 bytes)", "empty")
    # The header first: garbage after a PNG signature is unreadable, not a truncated PNG.
    height, width = read_header_size(path, head if head.startswith(_PNG_SIGNATURE) else None)
    # check_trailer looks at the start (format) and the last bytes (end marker).
    reason = check_trailer(path, head + tail if size > _HEAD_BYTES else head)
    if reason:
        raise MaskDecodeError(reason, "truncated")
    check_pixel_limit(path, height, width)
    try:
        channels = _channels(path, head)
    except (OSError, SyntaxError, ValueError) as exc:
        raise MaskDecodeError(f"{path}: not a readable image ({exc})") from None
    return ImageHeader(height, width, channels)


def _channel_problem(path: Path, channels: int, image_id: str) -> Problem | None:
    if channels in ACCEPTED_CHANNELS:
        return None
    what = _CHANNEL_NAMES.get(channels, "not gray or RGB")
    return make_problem(
        "unexpected_channels",
        f"{path}: image has {channels} channels ({what}); read as RGB, any extra channel ignored",
        path, image_id)


def _decode_reduction(path: Path) -> int:
    # libjpeg still entropy-decodes every block when it scales down, so damage is found at a
    # quarter of the cost; other formats decode fully anyway.
    return 4 if path.suffix.lower() in (".jpg", ".jpeg") else 1


def check_image(path: Path, *, image_id: str = "", decode: bool = False) -> list[Problem]:
    """Every problem of one image file (empty when it is fine).

    Parameters
    ----------
    path
        The image file.
    image_id
        The lesion it belongs to; copied into the problem records.
    decode
        Also decode the pixels (finds damage the header does not show).
    """
    path = Path(path)
    try:
        header = read_image_header(path)
        if decode:
            load_image(path, reduce=_decode_reduction(path))
    except MaskDecodeError as exc:
        return [make_problem(IMAGE_REASON_KINDS[exc.reason], str(exc), path, image_id)]
    problem = _channel_problem(path, header.channels, image_id)
    return [problem] if problem else []


def lesion_image_problems(lesion: Lesion, decode: bool = False) -> list[Problem]:
    """``check_image`` of a lesion's image; nothing when it has no image file (the loader
    already reported that as ``missing_image``)."""
    if lesion.image_path is None:
        return []
    return check_image(lesion.image_path, image_id=lesion.image_id, decode=decode)


def _decode_lesion(lesion: Lesion) -> list[Problem]:
    return lesion_image_problems(lesion, decode=True)


def _header_lesion(lesion: Lesion) -> list[Problem]:
    return lesion_image_problems(lesion, decode=False)


def iter_image_checks(dataset: Dataset | Sequence[Lesion], *, decode: bool = False,
                      workers: int = 1) -> Generator[Progress, None, list[Problem]]:
    """Check every lesion's image; yields progress per lesion, returns the problems found.

    ``workers`` > 1 decodes in that many processes (header checks stay in this one:
    they are bound by the disk, not the CPU).
    """
    lesions = [lesion for lesion in dataset if lesion.image_path is not None]
    problems: list[Problem] = []
    if decode and workers > 1 and len(lesions) > 1:
        with process_pool(min(workers, os.cpu_count() or 1)) as pool:
            for i, found in enumerate(pool.map(_decode_lesion, lesions, chunksize=8)):
                problems.extend(found)
                yield Progress(i + 1, len(lesions), lesions[i].image_id)
        return problems
    check = _decode_lesion if decode else _header_lesion
    for i, lesion in enumerate(lesions):
        problems.extend(check(lesion))
        yield Progress(i + 1, len(lesions), lesion.image_id)
    return problems
