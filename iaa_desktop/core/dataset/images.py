"""Reading image files lazily and safely: header-only sizes, decompression-bomb limits."""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from iaa_desktop.core.errors import MaskDecodeError

#: Largest image we decode, in pixels. IMA++ tops out near 31 MP; 150 MP leaves room
#: for whole-slide-like photos while refusing decompression bombs (a 20k x 20k PNG
#: of a few KB would need 1.2 GB as RGB).
MAX_IMAGE_PIXELS = int(os.environ.get("IAA_DESKTOP_MAX_IMAGE_PIXELS", 150_000_000))

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8"


def read_header_size(path: Path, data: bytes | None = None) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels.

    Parameters
    ----------
    path
        The image file; named in error messages.
    data
        The file's bytes when already read (then the file is not opened again).

    Raises
    ------
    MaskDecodeError
        When the file is missing, empty or not an image we can read.
    """
    if data is not None and not data:
        raise MaskDecodeError(f"{path}: file is empty (0 bytes)", "empty")
    if data is not None and data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
        # Read PNG sizes ourselves: Pillow refuses huge ones before telling their size.
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    source = io.BytesIO(data) if data is not None else path
    try:
        with warnings.catch_warnings():
            # Pillow warns (DecompressionBombWarning) above its own limit: we apply ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                width, height = img.size
    except FileNotFoundError:
        raise MaskDecodeError(f"{path}: file not found", "missing") from None
    except Image.DecompressionBombError as exc:
        raise MaskDecodeError(f"{path}: image is too large to decode safely ({exc})",
                              "too_large") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if data is None and Path(path).is_file() and Path(path).stat().st_size == 0:
            raise MaskDecodeError(f"{path}: file is empty (0 bytes)", "empty") from None
        # Pillow names its BytesIO source, not the file: say what is wrong in words instead.
        detail = "not a known image format" if isinstance(exc, Image.UnidentifiedImageError) else exc
        raise MaskDecodeError(f"{path}: not a readable image ({detail})") from None
    return height, width


def check_trailer(path: Path, data: bytes) -> str | None:
    """A reason string when a PNG or JPEG file is cut short, else ``None``.

    Decoders often return a partial image for a truncated file (libjpeg fills
    the rest with gray), so we check that the format's end marker is present.
    """
    if data.startswith(_PNG_SIGNATURE):
        if b"IEND" not in data[-16:]:
            return f"{path}: PNG file is truncated (no IEND chunk at the end)"
    elif data.startswith(_JPEG_SIGNATURE) and b"\xff\xd9" not in data[-64:]:
        return f"{path}: JPEG file is truncated (no end-of-image marker)"
    return None


def read_bytes_checked(path: Path) -> bytes:
    """The file's bytes, refusing empty and truncated files with a clear message."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise MaskDecodeError(f"{path}: file not found", "missing") from None
    except IsADirectoryError:
        raise MaskDecodeError(f"{path}: is a directory, not an image file") from None
    except OSError as exc:
        raise MaskDecodeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise MaskDecodeError(f"{path}: file is empty (0 bytes)", "empty")
    reason = check_trailer(path, data)
    if reason:
        raise MaskDecodeError(reason, "truncated")
    return data


def check_pixel_limit(path: Path, height: int, width: int) -> None:
    if height * width > MAX_IMAGE_PIXELS:
        raise MaskDecodeError(
            f"{path}: image is {width} x {height} pixels, above the limit of "
            f"{MAX_IMAGE_PIXELS:,} pixels (set IAA_DESKTOP_MAX_IMAGE_PIXELS to raise it)",
            "too_large",
        )


def load_image(path: Path, reduce: int = 1) -> np.ndarray:
    """Decode an image as RGB uint8 (H, W, 3).

    Parameters
    ----------
    path
        Image file (JPEG, PNG, ...).
    reduce
        1, 2, 4 or 8: let the JPEG decoder downscale while decoding (much
        faster than decoding at full size and resizing, for thumbnails).
    """
    path = Path(path)
    data = read_bytes_checked(path)
    height, width = read_header_size(path, data)
    check_pixel_limit(path, height, width)
    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }[reduce]
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is None:
        raise MaskDecodeError(f"{path}: not a readable image (the header is fine, the pixel data is damaged)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
