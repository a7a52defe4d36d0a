"""Mask decoding policy: every common PNG flavour in, a boolean mask and problems out.

Accepted: 8-bit gray with 0/1 or 0/255, 16-bit gray, RGB/RGBA and palette PNGs
(and anything else OpenCV reads). Non-zero is foreground (for palette PNGs:
a non-zero palette *index*). Values other than 0 and the mask's maximum are
reported as ``non_binary_mask``; a mask whose size differs from its image as
``size_mismatch``. Unreadable, empty, truncated and missing files give a
problem record and no mask; nothing here raises for a bad file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from iaa_desktop.core.dataset.images import check_pixel_limit, read_bytes_checked, read_header_size
from iaa_desktop.core.dataset.model import Problem, Segmentation, make_problem
from iaa_desktop.core.dataset.png_fast import decode_png, decode_png_mask
from iaa_desktop.core.errors import MaskDecodeError

_PNG_PALETTE_COLOR_TYPE = 3
_REASON_TO_KIND = {
    "missing": "missing_mask",
    "empty": "empty_file",
    "truncated": "truncated_file",
    "unreadable": "unreadable_mask",
    "too_large": "image_too_large",
}


@dataclass(frozen=True)
class DecodedMask:
    """A decoded mask (``None`` when it could not be read) and what was wrong with it."""

    mask: np.ndarray | None
    problems: tuple[Problem, ...] = ()
    #: Half-open ``(row0, col0, row1, col1)`` of the foreground (``None``: empty mask), when
    #: the decoder found it on the way (``box_known``); otherwise compute it from ``mask``.
    box: tuple[int, int, int, int] | None = None
    box_known: bool = False

    @property
    def ok(self) -> bool:
        return self.mask is not None


def _is_palette_png(data: bytes) -> bool:
    # Colour type is byte 25: 8-byte signature, 4-byte length, "IHDR", width, height, depth.
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 and data[25] == _PNG_PALETTE_COLOR_TYPE


def _decode_pixels(path: Path, data: bytes) -> np.ndarray:
    fast = decode_png(data)  # the common mask PNGs, several times faster (see png_fast)
    if fast is not None:
        return fast
    if _is_palette_png(data):
        # OpenCV expands palettes to colours; the palette index is what labels mean.
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise MaskDecodeError(f"{path}: not a readable image (the header is fine, the pixel data is damaged)")
    return pixels


def _to_gray(pixels: np.ndarray) -> np.ndarray:
    """One channel whose non-zero pixels are foreground."""
    if pixels.ndim == 2:
        return pixels
    colour = pixels[..., :3].max(axis=2)
    if pixels.shape[2] == 4 and not colour.any():
        # Black RGB with the mask in the alpha channel.
        return pixels[..., 3]
    return colour


def _histogram_u8(gray: np.ndarray) -> np.ndarray:
    """Exact int64 counts of each value of a 2-D uint8 image.

    OpenCV returns float32 counts, exact only below 2**24: larger images are counted in
    blocks of rows.
    """
    rows = max(1, (1 << 23) // max(gray.shape[1], 1))
    counts = np.zeros(256, np.int64)
    for start in range(0, gray.shape[0], rows):
        block = np.ascontiguousarray(gray[start:start + rows])
        counts += cv2.calcHist([block], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    return counts


def _intermediate_from_counts(counts: np.ndarray) -> tuple[int, int]:
    """:func:`_count_intermediate` of a uint8 image from its 256-bin histogram."""
    levels = np.flatnonzero(counts[1:]) + 1
    if not levels.size:
        return 0, 0
    intermediate = int(counts[levels[:-1]].sum())
    return intermediate, int(levels.size) if intermediate else 1


def _count_intermediate(gray: np.ndarray) -> tuple[int, int]:
    """Pixels whose value is neither 0 nor the mask's maximum, and the number of non-zero levels."""
    if gray.dtype == np.uint8 and gray.ndim == 2:
        # One histogram pass, no temporary image: at 6000 x 4000 a comparison image is 24 MB
        # of fresh memory, and its page faults cost more than the counting.
        return _intermediate_from_counts(_histogram_u8(gray))
    if gray.dtype == np.uint16 and gray.ndim == 2:
        # OpenCV's counts run at memory speed; the common binary mask needs nothing else.
        top = int(cv2.minMaxLoc(gray)[1])
        if top == 0:
            return 0, 0
        intermediate = cv2.countNonZero(gray) - cv2.countNonZero(cv2.compare(gray, top, cv2.CMP_EQ))
    else:
        top = gray.max()
        intermediate = int(np.count_nonzero((gray != 0) & (gray != top)))
    if not intermediate:
        return 0, 1 if top else 0
    return int(intermediate), int(np.unique(gray[gray != 0]).size)


def decode_mask(
    path: Path,
    *,
    image_id: str = "",
    expected_shape: tuple[int, int] | None = None,
) -> DecodedMask:
    """Decode one mask file into a boolean (H, W) array, recording what is wrong.

    Parameters
    ----------
    path
        The mask file.
    image_id
        The lesion it belongs to; copied into problem records.
    expected_shape
        (height, width) of the lesion image; a different mask size is reported
        as ``size_mismatch`` (the mask is still returned).
    """
    path = Path(path)
    try:
        data = read_bytes_checked(path)
        height, width = read_header_size(path, data)
        check_pixel_limit(path, height, width)
        # The common 8-bit gray and palette masks: thresholded, counted and boxed while
        # decoding (one pass); every other file the usual way.
        fused = decode_png_mask(data)
        pixels = _decode_pixels(path, data) if fused is None else None
    except MaskDecodeError as exc:
        return DecodedMask(None, (make_problem(_REASON_TO_KIND[exc.reason], str(exc), path, image_id),))

    problems: list[Problem] = []
    if fused is not None:
        mask, counts, box = fused
        intermediate, levels = _intermediate_from_counts(counts)
    else:
        gray = _to_gray(pixels)
        intermediate, levels = _count_intermediate(gray)
        mask, box = gray != 0, None
    if intermediate:
        share = 100.0 * intermediate / mask.size
        problems.append(
            make_problem(
                "non_binary_mask",
                f"{path}: mask has {levels} non-zero values ({intermediate:,} pixels, "
                f"{share:.2g} %, are neither 0 nor the maximum); every non-zero pixel "
                "is taken as foreground",
                path,
                image_id,
            )
        )
    if expected_shape is not None and tuple(mask.shape) != tuple(expected_shape):
        problems.append(
            make_problem(
                "size_mismatch",
                f"{path}: mask is {mask.shape[1]} x {mask.shape[0]} but its image is "
                f"{expected_shape[1]} x {expected_shape[0]}",
                path,
                image_id,
            )
        )
    return DecodedMask(mask, tuple(problems), box, box_known=fused is not None)


def load_segmentation(seg: Segmentation, expected_shape: tuple[int, int] | None = None) -> DecodedMask:
    """Decode a segmentation's mask (see ``decode_mask``)."""
    return decode_mask(seg.mask_path, image_id=seg.image_id, expected_shape=expected_shape)
