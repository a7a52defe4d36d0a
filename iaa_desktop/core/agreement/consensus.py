"""Consensus masks from several annotators: majority vote and STAPLE, as IMA++ computes them.

Both follow SimpleITK exactly, because IMA++'s published consensus masks were made with it:

- **Majority vote**: ``LabelVotingImageFilter`` with ``SetLabelForUndecidedPixels(1)``, then
  ``== 1``. Ties go to foreground, so two masks give their union and a 2-2 split of four
  masks gives foreground: ``2 * votes >= N``.
- **STAPLE**: ``STAPLEImageFilter`` with its defaults (foreground value 1, confidence weight 1,
  iterate to convergence), whose probability map IMA++ thresholds with ``> 0.5``.

ITK runs STAPLE's EM over every pixel on every iteration, but both steps depend only on a
pixel's *vote pattern* (which annotators marked it). So the image is reduced once to a
histogram of patterns (at most ``2**N``), EM runs on it with the pixel counts as weights, and
the posteriors go back to the pixels through a lookup table. The per-pattern arithmetic is
ITK's, operation for operation; only its pixel-by-pixel sums become count-weighted ones.

STAPLE's EM lives in :mod:`iaa_desktop.core.agreement.staple`; this module reduces the masks to
vote counts and vote patterns, which both use.

Masks are binary, any non-zero value is foreground (ITK's STAPLE counts only the value 1;
the same for 0/1 masks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from iaa_desktop.core.agreement.metrics import foreground_box
from iaa_desktop.core.errors import IAAError

__all__ = ["ConsensusInputError", "count_votes", "majority_vote", "majority_vote_from_patterns",
           "vote_patterns"]

# Up to this many annotators every vote pattern gets a bin of its own in a small integer code;
# above it the distinct patterns are found with np.unique (slower, but any N works).
_MAX_BINNED_ANNOTATORS = 16
# Pixels per chunk in the packing and counting passes: a few hundred kB per mask, in cache.
_CHUNK = 1 << 18


class ConsensusInputError(IAAError, ValueError):
    """The masks given to a consensus function cannot be combined (none, or shapes differ)."""


def _as_mask_list(masks: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """The masks as a list of equally shaped arrays (no copies), checked."""
    if isinstance(masks, np.ndarray):
        if masks.ndim < 2:
            raise ConsensusInputError(
                f"a stack of masks needs shape (N, H, W), got shape {masks.shape}")
        items = list(masks)
    else:
        items = [np.asarray(m) for m in masks]
    if not items:
        raise ConsensusInputError("no masks to combine")
    shape = items[0].shape
    for i, m in enumerate(items):
        if m.shape != shape:
            raise ConsensusInputError(
                f"mask {i} has shape {m.shape}, mask 0 has shape {shape}: all must match")
    return items


def _byte_chunks(items: list[np.ndarray]):
    """Yield ``(start, stop, segments)``: each mask's pixels start..stop as 0/1 bytes.

    Working through the flattened masks a cache-sized chunk at a time keeps the packing,
    counting and histogram passes in cache and every temporary small (large fresh
    allocations cost page faults that can outweigh the arithmetic). Chunk starts are
    multiples of 8, so the segments split into whole uint64 words (see :func:`_words`).
    """
    flats = [m.reshape(-1) for m in items]
    size = flats[0].size
    scratch = {i: np.empty(min(size, _CHUNK), np.bool_)
               for i, f in enumerate(flats) if f.dtype != np.bool_}
    for start in range(0, size, _CHUNK):
        stop = min(size, start + _CHUNK)
        segments = []
        for i, flat in enumerate(flats):
            if flat.dtype == np.bool_:
                segments.append(flat[start:stop].view(np.uint8))
            else:
                out = scratch[i][:stop - start]
                np.not_equal(flat[start:stop], 0, out=out)
                segments.append(out.view(np.uint8))
        yield start, stop, segments


def _row_blocks(items: list[np.ndarray]):
    """:func:`_byte_chunks` for 2-D masks that may be views (a crop of each mask), by rows.

    Blocks of whole rows (a multiple of 8, so blocks start on whole words of the codes) are
    copied as 0/1 bytes into small buffers that stay in cache: a crop is never copied whole,
    which for a large lesion's union box cost more than packing its votes.
    """
    height, width = items[0].shape
    rows = max(8, _CHUNK // max(width, 1) // 8 * 8)
    buffers = [np.empty((min(height, rows), width), np.uint8) for _ in items]
    for row in range(0, height, rows):
        stop = min(height, row + rows)
        segments = []
        for mask, buffer in zip(items, buffers, strict=True):
            out = buffer[:stop - row]
            block = mask[row:stop]
            if block.dtype == np.bool_:
                np.copyto(out, block.view(np.uint8))
            else:
                np.not_equal(block, 0, out=out.view(np.bool_))
            segments.append(out.reshape(-1))
        yield row * width, stop * width, segments


def _words(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A flat uint8 array as uint64 words (8 pixels each) plus the few bytes left over.

    Shifting a word by i < 8 or adding words whose bytes cannot exceed 255 never carries
    from one byte into the next, so per-pixel byte arithmetic can run 8 pixels at a time.
    """
    whole = flat.size - flat.size % 8
    return flat[:whole].view(np.uint64), flat[whole:]


def count_votes(masks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Number of annotators marking each pixel.

    Parameters
    ----------
    masks : sequence of numpy.ndarray, or numpy.ndarray
        N masks of the same shape ``(H, W)``, or one ``(N, H, W)`` stack. Non-zero is
        foreground.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` counts in 0..N: uint8 below 256 annotators (wider above).

    Raises
    ------
    ConsensusInputError
        When there are no masks or their shapes differ.
    """
    items = _as_mask_list(masks)
    # Up to 255 votes fit a byte: add 8 pixels' counts per uint64 operation.
    votes = np.zeros(items[0].size, np.uint8 if len(items) < 256 else np.int64)
    for start, stop, segments in _byte_chunks(items):
        chunk = votes[start:stop]
        if chunk.dtype != np.uint8:
            for segment in segments:
                chunk += segment
            continue
        chunk_words, chunk_tail = _words(chunk)
        for segment in segments:
            segment_words, segment_tail = _words(segment)
            chunk_words += segment_words
            chunk_tail += segment_tail
    return votes.reshape(items[0].shape)


def majority_vote(masks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Majority vote of N binary masks, ties to foreground (IMA++'s ``MV`` consensus).

    Same result as SimpleITK ``LabelVotingImageFilter`` with
    ``SetLabelForUndecidedPixels(1)`` followed by ``== 1`` on 0/1 masks: two masks give their
    union, a 2-2 split of four masks gives foreground.

    Parameters
    ----------
    masks : sequence of numpy.ndarray, or numpy.ndarray
        N masks of the same shape ``(H, W)``, or one ``(N, H, W)`` stack. Non-zero is
        foreground.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``: pixels marked by at least half of the annotators (``2 * votes >= N``).

    Raises
    ------
    ConsensusInputError
        When there are no masks or their shapes differ.
    """
    masks = masks if isinstance(masks, np.ndarray) else list(masks)
    votes = count_votes(masks)
    n = len(masks)
    # 2 * votes >= n  <=>  votes >= ceil(n / 2); a constant avoids 2 * votes overflowing uint8.
    return votes >= (n + 1) // 2


@dataclass(frozen=True)
class _Patterns:
    """The distinct vote patterns of an image and where each pixel's pattern is.

    ``codes`` covers only ``box``, the bounding box of the union of the masks: every pixel
    outside it has no vote, code 0 (counted in ``counts``). With more than
    ``_MAX_BINNED_ANNOTATORS`` masks the box is the whole image.
    """

    votes: np.ndarray  # bool (K, N): which annotators marked pattern k
    counts: np.ndarray  # int64 (K,): pixels showing pattern k, in the whole image
    codes: np.ndarray  # integer (h, w): per pixel of ``box``, the row of ``lut_rows`` to read
    lut_rows: np.ndarray  # intp (C,): for each code value, its pattern index k (or 0 if absent)
    box: tuple[int, int, int, int] | None  # (row0, col0, row1, col1), half-open; may be empty;
    # None when ``codes`` is the whole image flattened (not 2-D, or many annotators)
    shape: tuple[int, ...]  # the whole image's

    @property
    def covers_image(self) -> bool:
        """Whether ``codes`` holds every pixel (then in the image's own layout, flattened)."""
        return self.codes.size == math.prod(self.shape)

    def expand(self, table: np.ndarray) -> np.ndarray:
        """``table[code]`` for every pixel of the whole image (outside the box: code 0's)."""
        from iaa_desktop.core.agreement.staple import _lookup  # the LUT helper lives there

        if self.covers_image:
            return _lookup(table, self.codes).reshape(self.shape)
        r0, c0, r1, c1 = self.box
        out = (np.zeros if table[0] == 0 else np.empty)(self.shape, table.dtype)
        if table[0] != 0:
            out.fill(table[0])
        if r1 > r0 and c1 > c0:
            out[r0:r1, c0:c1] = _lookup(table, self.codes)
        return out

    def expand_crop(self, table: np.ndarray) -> np.ndarray:
        """``table[code]`` for the pixels of ``box`` only."""
        from iaa_desktop.core.agreement.staple import _lookup

        return _lookup(table, self.codes)

    @property
    def votes_per_pattern(self) -> np.ndarray:
        """int64 (K,): how many annotators marked each pattern."""
        return self.votes.sum(axis=1, dtype=np.int64)


def _union_box(items: list[np.ndarray], boxes: Sequence | None = None) -> tuple[int, int, int, int]:
    """Bounding box of the union of the masks' non-zero pixels; ``(0, 0, 0, 0)`` if none.

    ``boxes``: each mask's :func:`foreground_box` when already known (else found here).
    """
    boxes = [box for box in (map(foreground_box, items) if boxes is None else boxes)
             if box is not None]
    if not boxes:
        return (0, 0, 0, 0)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


@njit(cache=True, nogil=True)
def _count_byte_codes(codes, words, counts):  # pragma: no cover - compiled
    """``counts += bincount(codes)`` for uint8 codes; ``words`` is ``codes`` read as uint64.

    A word of 8 equal codes (outside every mask, or inside all of them: most of a lesion's
    box) is counted at once, the rest code by code: ~7x faster than ``numpy.bincount``,
    which first widens every code to intp.
    """
    spread = np.uint64(0x0101010101010101)
    for i in range(words.size):
        word = words[i]
        code = word & np.uint64(0xFF)
        if word == code * spread:
            counts[code] += 8
        else:
            for k in range(i * 8, i * 8 + 8):
                counts[codes[k]] += 1
    for k in range(words.size * 8, codes.size):
        counts[codes[k]] += 1


def _pack_and_count(items: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the code whose bit i says annotator i marked it; and the codes' histogram.

    Codes are uint8 for up to 8 annotators (packed 8 pixels per uint64 operation with
    in-place shifts and ORs), uint16 up to 16. The histogram has ``2**N`` bins.
    """
    n = len(items)
    codes = np.empty(items[0].size, np.uint8 if n <= 8 else np.uint16)
    counts = np.zeros(256 if n <= 8 else 65536, np.int64)
    chunks = _row_blocks(items) if items[0].ndim == 2 else _byte_chunks(items)
    shifted = np.empty(max(_CHUNK, 8 * items[0].shape[-1]) // 8 + 1, np.uint64)
    for start, stop, segments in chunks:
        chunk = codes[start:stop]
        if n <= 8:
            chunk_words, chunk_tail = _words(chunk)
            np.copyto(chunk, segments[0])
            for i, segment in enumerate(segments[1:], start=1):
                segment_words, segment_tail = _words(segment)
                np.left_shift(segment_words, i, out=shifted[:segment_words.size])
                chunk_words |= shifted[:segment_words.size]
                chunk_tail |= segment_tail << i
            _count_byte_codes(chunk, chunk_words, counts)
        else:
            np.copyto(chunk, segments[0])
            for i, segment in enumerate(segments[1:], start=1):
                chunk |= segment.astype(np.uint16) << i
            counts += np.bincount(chunk, minlength=65536)
    return codes.reshape(items[0].shape), counts[:1 << n]


def _vote_patterns(items: list[np.ndarray], boxes: Sequence | None = None) -> _Patterns:
    """The patterns present in the image (only those: ITK never sees the others).

    Up to ``_MAX_BINNED_ANNOTATORS`` masks, only the union's bounding box is packed: outside
    it every pixel has code 0 (no vote), added to that code's count.
    """
    n = len(items)
    shape = (int(items[0].shape[0]), int(items[0].shape[1])) if items[0].ndim == 2 else None
    if n <= _MAX_BINNED_ANNOTATORS and shape is not None:
        box = _union_box(items, boxes)
        r0, c0, r1, c1 = box
        crops = [m[r0:r1, c0:c1] for m in items]  # views: packed by blocks of rows
        if crops[0].size:
            codes, all_counts = _pack_and_count(crops)
        else:
            codes, all_counts = np.zeros((0, 0), np.uint8), np.zeros(1 << n, np.int64)
        all_counts[0] += items[0].size - crops[0].size
        present = np.flatnonzero(all_counts)
        votes = ((present[:, None] >> np.arange(n)) & 1).astype(bool)
        lut_rows = np.zeros(1 << n, np.intp)
        lut_rows[present] = np.arange(present.size)
        return _Patterns(votes, all_counts[present], codes, lut_rows, box, shape)
    whole = None  # not 2-D, or many annotators: every pixel, flat
    if n <= _MAX_BINNED_ANNOTATORS:
        codes, all_counts = _pack_and_count(items)
        present = np.flatnonzero(all_counts)
        votes = ((present[:, None] >> np.arange(n)) & 1).astype(bool)
        lut_rows = np.zeros(1 << n, np.intp)
        lut_rows[present] = np.arange(present.size)
        return _Patterns(votes, all_counts[present], codes.reshape(1, -1), lut_rows, whole,
                         items[0].shape)
    # Many annotators: a row of packed bits per pixel, distinct rows found by sorting.
    stack = np.stack([m != 0 for m in items], axis=-1).reshape(-1, n)
    packed = np.ascontiguousarray(np.packbits(stack, axis=1))
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    unique, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    unique_bytes = unique.view(np.uint8).reshape(unique.size, packed.shape[1])
    votes = np.unpackbits(unique_bytes, axis=1, count=n).astype(bool)
    return _Patterns(votes, counts.astype(np.int64), inverse.reshape(1, -1), np.arange(unique.size),
                     whole, items[0].shape)


def vote_patterns(masks: Sequence[np.ndarray] | np.ndarray, boxes: Sequence | None = None
                  ) -> _Patterns:
    """The masks' vote patterns, counted once and shared by STAPLE, majority vote and
    chance-corrected agreement (``staple.staple_from_patterns``,
    :func:`majority_vote_from_patterns`, ``chance.chance_from_patterns``).

    ``boxes``: each mask's foreground box (``metrics.foreground_box``'s; ``None`` for an
    empty mask) when the caller has them, as the mask decoder does; found here otherwise.

    Raises
    ------
    ConsensusInputError
        When there are no masks or their shapes differ.
    """
    return _vote_patterns(_as_mask_list(masks), boxes)


def majority_vote_from_patterns(patterns: _Patterns) -> np.ndarray:
    """:func:`majority_vote` of the masks whose :func:`vote_patterns` these are (same array)."""
    n = patterns.votes.shape[1]
    table = patterns.votes_per_pattern >= (n + 1) // 2
    return patterns.expand(table[patterns.lut_rows]).reshape(patterns.shape)
