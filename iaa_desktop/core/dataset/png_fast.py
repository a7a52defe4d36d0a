"""Fast decoding of the PNG flavours masks come in; anything else is left to OpenCV or Pillow.

libpng inflates with zlib, which copies the long runs of a mask byte by byte: a
6000 x 4000 mask of 46 KB takes ~90 ms to decode, 60 of them inflating. libdeflate
(the ``deflate`` package) inflates the same stream in 2 ms, and the compiled unfilter
below skips filtered words that are zero (a run continues) and runs None and Up rows
in vectorised loops, so the whole decode takes ~5-8 ms. It matters twice: the lesion
view's first look at a large lesion, and every mask the agreement engine and QA read.
``decode_png_mask`` is what ``masks.decode_mask`` calls for the 1-byte flavours: the
boolean mask, the levels' histogram and the foreground's box in the same pass, where
thresholding, counting and boxing took three more passes over the image (a 30 MP mask:
~30 ms -> ~11 ms for the whole ``decode_mask``). ``decode_png_sampled`` goes further for a
display-size look at a mask: it unfilters only the rows it samples (and the rows those
rows' filters read) into two row buffers, and returns the sampled pixels.

``decode_png`` handles non-interlaced 8-bit grayscale, 16-bit grayscale and 8-bit
palette PNGs without transparency, returning exactly what the decoders used elsewhere
return for them: OpenCV's ``IMREAD_UNCHANGED`` array for grayscale (uint8, or uint16
in native byte order) and Pillow's palette *indices* for palette images. For every
other file (another colour type or bit depth, interlacing, a ``tRNS`` chunk, an
unknown critical chunk, a bad CRC, a stream that does not inflate to exactly the image
size) it returns ``None`` and the caller decodes the usual way, which also words the
error for a damaged file.
"""

from __future__ import annotations

import struct
import zlib

import deflate
import numpy as np
from numba import njit

__all__ = ["decode_png", "decode_png_mask", "decode_png_sampled", "warm_up"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GRAY, _PALETTE = 0, 3
#: (colour type, bit depth) -> bytes per pixel, for the flavours decoded here.
_BYTES_PER_PIXEL = {(_GRAY, 8): 1, (_GRAY, 16): 2, (_PALETTE, 8): 1}
#: Critical chunks that do not change the pixels of these flavours.
_KNOWN_CRITICAL = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}


@njit(cache=True, nogil=True)
def _unfilter_sub(raw, words, start, stride, bpp, cur):  # pragma: no cover - compiled
    """Sub filter: ``cur[x] = line[x] + cur[x - bpp]``; a zero 8-byte word repeats what came before."""
    x = 0
    while x < stride:
        b = start + x
        if x >= bpp and (b & 7) == 0 and x + 8 <= stride and words[b >> 3] == 0:
            n = 8
            while x + n + 8 <= stride and words[(b + n) >> 3] == 0:
                n += 8
            # Copy from the fixed last pixel, not from ``cur[k - bpp]``: a chain of reads of
            # what was just written cannot be vectorised, and was 4x slower on a 24 MP mask.
            if bpp == 1:
                cur[x:x + n] = cur[x - 1]
            else:
                for k in range(x, x + n):
                    cur[k] = cur[x - bpp + (k - x) % bpp]
            x += n
        else:
            if x < bpp:
                cur[x] = raw[b]
            else:
                cur[x] = (raw[b] + cur[x - bpp]) & 0xFF
            x += 1


@njit(cache=True, nogil=True)
def _unfilter_row(raw, words, start, stride, bpp, kind, cur, prior):  # pragma: no cover - compiled
    """Undo one row's filter (PNG spec 9.2) into ``cur``; False on an unknown filter type."""
    # The None and Up loops read a slice of the row and wrap with a uint8 cast (not "& 0xFF" on
    # the promoted sum), so LLVM vectorises them: 25x faster on a 24 MP mask.
    line = raw[start:start + stride]
    if kind == 0:  # None
        for x in range(stride):
            cur[x] = line[x]
    elif kind == 1:  # Sub
        _unfilter_sub(raw, words, start, stride, bpp, cur)
    elif kind == 2:  # Up
        for x in range(stride):
            cur[x] = np.uint8(line[x] + prior[x])
    elif kind == 3:  # Average
        for x in range(stride):
            left = np.int32(cur[x - bpp]) if x >= bpp else np.int32(0)
            cur[x] = (raw[start + x] + ((left + np.int32(prior[x])) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for x in range(stride):
            a = np.int32(cur[x - bpp]) if x >= bpp else np.int32(0)
            b = np.int32(prior[x])
            c = np.int32(prior[x - bpp]) if x >= bpp else np.int32(0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            if pa <= pb and pa <= pc:
                predictor = a
            elif pb <= pc:
                predictor = b
            else:
                predictor = c
            cur[x] = (raw[start + x] + predictor) & 0xFF
    else:
        return False
    return True


@njit(cache=True, nogil=True)
def _unfilter(raw, words, out, bpp):  # pragma: no cover - compiled
    """Undo PNG's per-row filters into ``out``; False on an unknown filter type."""
    height, stride = out.shape
    zero = np.zeros(stride, np.uint8)
    for y in range(height):
        start = y * (stride + 1) + 1
        prior = out[y - 1] if y > 0 else zero
        if not _unfilter_row(raw, words, start, stride, bpp, raw[start - 1], out[y], prior):
            return False
    return True


@njit(cache=True, nogil=True)
def _sample_sub_row(raw, words, start, stride, cols, order, out_row):  # pragma: no cover - compiled
    """Sample a Sub-filtered 1-byte-per-pixel row without unfiltering it.

    A Sub row's pixel ``x`` is the sum of its filtered bytes ``0..x`` (mod 256): one pass
    adds them up to each sampled column (``cols[order]`` ascending), skipping zero 8-byte
    words, and writes nothing but the samples.
    """
    value = 0
    x = 0
    j = 0
    n = len(order)
    while j < n:
        b = start + x
        if (b & 7) == 0 and x + 8 <= stride and words[b >> 3] == 0:
            end = x + 8  # pixels x .. x + 7 all keep the value of pixel x - 1
        else:
            value = (value + raw[b]) & 0xFF
            end = x + 1
        while j < n and cols[order[j]] < end:
            out_row[order[j]] = value != 0
            j += 1
        x = end


@njit(cache=True, nogil=True)
def _unfilter_sampled(raw, words, height, stride, bpp, rows, cols, order, out):  # pragma: no cover - compiled
    """Unfilter only the rows that ``rows`` (sorted) or their successors' filters need; sample ``out``.

    ``out[i, j]`` is True where pixel (``rows[i]``, ``cols[j]``) is non-zero; ``order``
    sorts ``cols``. A row filtered with None or Sub depends on no other row, so of a mask
    written with Sub filters (what libpng's encoder picks for masks) only the sampled rows
    are read at all, and those without unfiltering them (``_sample_sub_row``).
    """
    needed = np.zeros(height, np.bool_)  # unfiltered in full: a row above an Up/Average/Paeth row
    sampled = np.zeros(height, np.bool_)
    for r in rows:
        sampled[r] = True
    for y in range(height - 1, -1, -1):
        kind = raw[y * (stride + 1)]
        if kind > 4:
            return False  # as the full unfilter does, wherever the bad row is
        if y > 0 and (needed[y] or sampled[y]) and kind >= 2:  # Up, Average and Paeth read the row above
            needed[y - 1] = True
    buffers = np.zeros((2, stride), np.uint8)  # this row and the one above; row -1 is zeros
    i = 0
    for y in range(height):
        if not (needed[y] or sampled[y]):
            continue
        start = y * (stride + 1) + 1
        kind = raw[start - 1]
        if bpp == 1 and kind == 1 and not needed[y]:
            _sample_sub_row(raw, words, start, stride, cols, order, out[i])
            i += 1
            while i < len(rows) and rows[i] == y:  # a row sampled twice (upsampling)
                out[i] = out[i - 1]
                i += 1
            continue
        cur = buffers[y & 1]
        if not _unfilter_row(raw, words, start, stride, bpp, kind, cur, buffers[(y + 1) & 1]):
            return False
        while i < len(rows) and rows[i] == y:
            for j in range(len(cols)):
                base = cols[j] * bpp
                hit = False
                for k in range(bpp):
                    if cur[base + k] != 0:
                        hit = True
                out[i, j] = hit
            i += 1
    return True


_ALL_SET = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True)
def _bytes_to_mask(cur, lo, hi, out_row, hist, first, last):  # pragma: no cover - compiled
    """Bytes ``lo:hi`` of a row one by one: ``out_row``, ``hist`` and the row's foreground span."""
    for k in range(lo, hi):
        value = cur[k]
        hist[value] += 1
        out_row[k] = value != 0
        if value != 0:
            if first < 0:
                first = k
            last = k
    return first, last


@njit(cache=True, nogil=True)
def _row_to_mask(cur, cur_words, stride, out_row, hist):  # pragma: no cover - compiled
    """``out_row = cur != 0`` and ``hist += bincount(cur)``; the row's first and last non-zero column.

    Whole 8-byte words of 0 or of 255 (a mask's runs) are handled at once. ``(-1, -1)`` when
    the row has no foreground.
    """
    first = -1
    last = -1
    zeros = 0
    full = 0
    n_words = stride >> 3
    w = 0
    while w < n_words:
        word = cur_words[w]
        if word == 0 or word == _ALL_SET:
            end = w + 1  # a run of such words, filled at once
            while end < n_words and cur_words[end] == word:
                end += 1
            x, x_end = w << 3, end << 3
            if word == 0:
                out_row[x:x_end] = False
                zeros += x_end - x
            else:
                out_row[x:x_end] = True
                full += x_end - x
                if first < 0:
                    first = x
                last = x_end - 1
            w = end
            continue
        first, last = _bytes_to_mask(cur, w << 3, (w << 3) + 8, out_row, hist, first, last)
        w += 1
    first, last = _bytes_to_mask(cur, n_words << 3, stride, out_row, hist, first, last)
    hist[0] += zeros
    hist[255] += full
    return first, last


@njit(cache=True, nogil=True)
def _unfilter_mask(raw, words, rows, row_words, out, hist, box):  # pragma: no cover - compiled
    """Undo the filters of a 1-byte-per-pixel PNG straight into the boolean ``out``.

    Each row is unfiltered into one of the two small buffers ``rows`` (this row and the one
    above, which Up/Average/Paeth read), then written to ``out`` as ``!= 0`` while ``hist``
    counts its values and ``box`` (row0, col0, row1, col1; half-open) grows around its
    foreground: one pass over the image where decoding, counting levels, thresholding and
    finding the bounding box took four. ``box`` stays ``(-1, ...)`` for an empty mask.
    False on an unknown filter type.
    """
    height, stride = out.shape
    for y in range(height):
        start = y * (stride + 1) + 1
        cur = rows[y & 1]
        prior = rows[(y + 1) & 1]  # zeros for row 0: the buffers start zeroed
        if not _unfilter_row(raw, words, start, stride, 1, raw[start - 1], cur, prior):
            return False
        first, last = _row_to_mask(cur, row_words[y & 1], stride, out[y], hist)
        if first >= 0:
            if box[0] < 0:
                box[0] = y
                box[1] = first
                box[3] = last + 1
            box[2] = y + 1
            if first < box[1]:
                box[1] = first
            if last + 1 > box[3]:
                box[3] = last + 1
    return True


def _chunks(data: bytes):
    """``(type, payload)`` of every chunk; raises ``ValueError`` on a bad length or CRC."""
    pos = len(_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ValueError("chunk runs past the end of the file")
        payload = data[pos + 8:end]
        if zlib.crc32(payload, zlib.crc32(kind)) != struct.unpack(">I", data[end:end + 4])[0]:
            raise ValueError(f"bad CRC in {kind!r}")
        yield kind, payload
        if kind == b"IEND":
            return
        pos = end + 4
    raise ValueError("no IEND chunk")


def _inflated(data: bytes, one_byte_only: bool = False):
    """``(raw, words, height, width, bpp)`` of a PNG of a flavour decoded here, else ``None``.

    ``raw`` is the inflated, still filtered image data; ``words`` the same bytes as uint64.
    ``one_byte_only``: ``None`` for 16-bit files too, before inflating anything.
    """
    if not data.startswith(_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height, depth, colour, method, filtering, interlace = struct.unpack(">IIBBBBB", data[16:29])
    bpp = _BYTES_PER_PIXEL.get((colour, depth))
    if bpp is None or method or filtering or interlace or not width or not height:
        return None
    if one_byte_only and bpp != 1:
        return None
    idat = []
    try:
        for kind, payload in _chunks(data):
            if kind == b"IDAT":
                idat.append(payload)
            elif kind == b"tRNS" or (kind[0] < 97 and kind not in _KNOWN_CRITICAL):
                return None  # transparency or a critical chunk we do not know: the full decoder
        size = height * (width * bpp + 1)
        raw = deflate.zlib_decompress(b"".join(idat), size)
    except (ValueError, deflate.DeflateError):
        return None
    if len(raw) != size:
        return None
    # The unfilter tests whole 8-byte words for zero; the last partial word is read byte by byte.
    words = np.frombuffer(raw, np.uint64, count=size // 8)
    return np.frombuffer(raw, np.uint8), words, height, width, bpp


def decode_png(data: bytes) -> np.ndarray | None:
    """The pixels of a grayscale or palette PNG (see the module docstring), or ``None``.

    ``None`` means "not decoded here", never "broken": decode such a file the usual way.
    """
    inflated = _inflated(data)
    if inflated is None:
        return None
    raw_bytes, words, height, width, bpp = inflated
    # numpy allocates the output, not numba: numpy asks for huge pages on large arrays, and the
    # page faults of a fresh 24 MB buffer in 4 KB pages cost as much as the unfiltering.
    pixels = np.empty((height, width * bpp), np.uint8)
    if not _unfilter(raw_bytes, words, pixels, bpp):
        return None
    if bpp == 2:
        return pixels.view(">u2").astype(np.uint16)  # big-endian in the file, native like OpenCV's
    return pixels


def decode_png_mask(data: bytes) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int] | None] | None:
    """``decode_png(data) != 0`` with the pixel values' histogram and the foreground's box, in one pass.

    For the 1-byte-per-pixel flavours (8-bit grayscale; palette indices). Returns
    ``(mask, histogram, box)``: ``mask`` bool ``(H, W)``, ``histogram`` int64 ``(256,)``
    (what ``numpy.bincount(decode_png(data).ravel(), minlength=256)`` gives), ``box`` the
    half-open ``(row0, col0, row1, col1)`` of the non-zero pixels or ``None`` when there
    are none. ``None`` for everything ``decode_png`` leaves to the full decoders, and for
    16-bit files.
    """
    # A 16-bit file is not inflated here only to be inflated again by decode_png.
    inflated = _inflated(data, one_byte_only=True)
    if inflated is None:
        return None
    raw_bytes, words, height, width, _ = inflated
    padded = (width + 7) // 8 * 8
    rows = np.zeros((2, padded), np.uint8)
    mask = np.empty((height, width), np.bool_)
    hist = np.zeros(256, np.int64)
    box = np.full(4, -1, np.int64)
    if not _unfilter_mask(raw_bytes, words, rows, rows.view(np.uint64), mask, hist, box):
        return None
    found = None if box[0] < 0 else (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
    return mask, hist, found


def decode_png_sampled(data: bytes, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
    """``decode_png(data)[rows][:, cols] != 0`` without unfiltering, or keeping, the other pixels.

    For a display-size look at a mask: ``rows`` and ``cols`` (sorted, in range) are the
    source pixels to sample. Non-zero is foreground for every flavour decoded here (for
    palette PNGs, a non-zero *index*), as ``masks.decode_mask`` takes it. ``None`` as for
    ``decode_png`` (and for a sample outside the image).
    """
    inflated = _inflated(data)
    if inflated is None:
        return None
    raw_bytes, words, height, width, bpp = inflated
    rows = np.ascontiguousarray(rows, np.int64)
    cols = np.ascontiguousarray(cols, np.int64)
    if (rows.size and (rows[0] < 0 or rows[-1] >= height or np.any(np.diff(rows) < 0))) or (
            cols.size and (cols.min() < 0 or cols.max() >= width)):
        return None
    out = np.empty((rows.size, cols.size), np.bool_)
    order = np.argsort(cols, kind="stable")
    if not _unfilter_sampled(raw_bytes, words, height, width * bpp, bpp, rows, cols, order, out):
        return None
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the unfilter, so that the first real mask does not wait."""
    raw = np.array([1, 0, 255, 0, 1, 2, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0], np.uint8)  # a Sub row, an Up row
    _unfilter(raw[:10], raw.view(np.uint64), np.empty((2, 4), np.uint8), 1)
    buffers = np.zeros((2, 8), np.uint8)
    _unfilter_mask(raw[:10], raw.view(np.uint64), buffers, buffers.view(np.uint64),
                   np.empty((2, 4), np.bool_), np.zeros(256, np.int64), np.full(4, -1, np.int64))
    one = np.zeros(1, np.int64)
    _unfilter_sampled(raw[:10], raw.view(np.uint64), 2, 4, 1, one, one, one, np.empty((1, 1), np.bool_))
