"""Column sums of a per-pixel table lookup, added pixel by pixel in raster order.

ITK's STAPLE accumulates its sums one pixel at a time, and on exact ties (two
annotators whose disputed pixels have posterior exactly 0.5) the rounding of
those running sums decides SimpleITK's consensus mask. Reproducing it needs the
same sequential float64 additions, which numpy can only express as a
gather plus ``np.add.accumulate`` per column (memory-bound, about as slow as
SimpleITK). A compiled loop does the same additions in one pass over the codes.
Numba compiles without fastmath, so no addition is reordered or fused: the
result is bit for bit the sequential sum (the tests check it against
``np.add.accumulate``).

Runs of equal codes (a mask's background rows are long runs of one code) add the same
value ``v`` many times. Those additions are taken many at a time, with the very result the
one-by-one additions give: while the running sum ``s`` stays in one binade
``[2**E, 2**(E+1))`` its spacing ``u`` is fixed and ``s`` is a multiple of ``u``, so
round-to-nearest gives ``fl(s + v) = s + d`` with ``d = v`` rounded to a multiple of ``u``
(when ``v / u`` is not halfway between two integers; a tie would round to even, which
depends on ``s``, so ties are added one by one). ``m`` such steps give exactly
``s + m * d`` as long as every intermediate ``s + v`` stays below ``2**(E+1)``; the step
that leaves the binade, and everything unusual (``s <= 0``, ``v <= 0``, ``v >= s``,
non-finite values), is added one by one.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Runs shorter than this are added one by one (the batched step costs a few divisions).
_MIN_BATCH = 8


@njit(cache=True, nogil=True)
def _add_repeated(s: float, v: float, k: int) -> float:  # pragma: no cover - compiled
    """``s`` plus ``v`` added ``k`` times one by one (sequential float64 rounding), batched."""
    if v == 0.0:  # adding a zero again never changes the sum (nor its sign) after once
        return s + v if k > 0 else s
    while k > 0:
        if k < _MIN_BATCH or not (s > 1e-290 and v > 0.0 and v < s and s < 1e300):
            s += v
            k -= 1
            continue
        mantissa, exponent = math.frexp(s)  # s = mantissa * 2**exponent, mantissa in [0.5, 1)
        top = math.ldexp(1.0, exponent)  # 2**(E+1): the binade's end
        unit = math.ldexp(1.0, exponent - 53)  # spacing of doubles in [2**E, 2**(E+1))
        q = v / unit  # exact (a power-of-two division), below 2**53 since v < s < top
        whole = math.floor(q)
        if q - whole == 0.5:  # a tie: rounds to even, which depends on s
            s += v
            k -= 1
            continue
        d = (whole + 1.0 if q - whole > 0.5 else whole) * unit
        if d == 0.0:  # v below half a unit: s never changes in this binade, nor could it grow
            return s
        # Steps j = 0..m-1 need s + j*d + v < top, i.e. (m - 1) * d < top - s - v. ``room``
        # is that bound over d up to rounding: m stays three steps and a relative 2**-40 short.
        room = (top - s - v) / d
        m = int(room * (1.0 - 2.0**-40)) - 2 if room > 4.0 else 0
        if m < 1:
            s += v
            k -= 1
            continue
        if m > k:
            m = k
        s = s + m * d  # a multiple of unit below top: exact
        k -= m
    return s


@njit(cache=True, nogil=True)
def _push_run(run_codes: np.ndarray, run_lengths: np.ndarray, n_runs: int, code,
              length: int):  # pragma: no cover - compiled
    """Append one run, doubling the two arrays when full; returns them (maybe new) and the count."""
    if n_runs + 1 >= run_codes.shape[0]:
        capacity = 2 * run_codes.shape[0]
        grown_codes = np.empty(capacity, run_codes.dtype)
        grown_codes[:n_runs] = run_codes[:n_runs]
        grown_lengths = np.empty(capacity, np.int64)
        grown_lengths[:n_runs] = run_lengths[:n_runs]
        run_codes, run_lengths = grown_codes, grown_lengths
    run_codes[n_runs] = code
    run_lengths[n_runs] = length
    return run_codes, run_lengths, n_runs + 1


@njit(cache=True, nogil=True)
def _code_runs(codes: np.ndarray, words: np.ndarray):  # pragma: no cover - compiled
    """Maximal runs of equal codes: (code of each run, its length), in raster order.

    ``words`` is ``codes``' whole-word prefix read as uint64 (8 byte codes each, or empty):
    inside a long run, 8 equal bytes are skipped per comparison.
    """
    size = codes.size
    capacity = 1024
    run_codes = np.empty(capacity, codes.dtype)
    run_lengths = np.empty(capacity, np.int64)
    n_runs = 0
    n_words = words.size
    i = 0
    while i < size:
        code = codes[i]
        j = i + 1
        if n_words:
            while j < size and j % 8 != 0 and codes[j] == code:
                j += 1
            if j % 8 == 0:
                pattern = np.uint64(code) * np.uint64(0x0101010101010101)
                w = j // 8
                while w < n_words and words[w] == pattern:
                    w += 1
                j = w * 8
        while j < size and codes[j] == code:
            j += 1
        run_codes, run_lengths, n_runs = _push_run(run_codes, run_lengths, n_runs, code, j - i)
        i = j
    return run_codes[:n_runs], run_lengths[:n_runs]


@njit(cache=True, nogil=True)
def _framed_code_runs(crop: np.ndarray, r0: int, c0: int, full_height: int,
                      full_width: int):  # pragma: no cover - compiled
    """Maximal runs of a ``full_height x full_width`` raster that is ``crop`` at ``(r0, c0)``
    and code 0 everywhere else, without building that raster."""
    height, width = crop.shape
    capacity = 1024
    run_codes = np.empty(capacity, crop.dtype)
    run_lengths = np.empty(capacity, np.int64)
    n_runs = 0
    zero = crop.dtype.type(0)
    code = zero
    length = r0 * full_width + c0  # the run being built: zeros above and left of the box
    for r in range(height):
        if r:
            gap = full_width - width  # right margin of row r-1 and left margin of row r
            if gap:
                if code == zero:
                    length += gap
                else:
                    run_codes, run_lengths, n_runs = _push_run(run_codes, run_lengths, n_runs, code, length)
                    code, length = zero, gap
        c = 0
        while c < width:
            value = crop[r, c]
            j = c + 1
            while j < width and crop[r, j] == value:
                j += 1
            if value == code:
                length += j - c
            else:
                if length:
                    run_codes, run_lengths, n_runs = _push_run(run_codes, run_lengths, n_runs, code, length)
                code, length = value, j - c
            c = j
    tail = (full_width - c0 - width) + (full_height - r0 - height) * full_width
    if height == 0:
        tail = full_height * full_width - length
    if code == zero:
        length += tail
    elif tail:
        run_codes, run_lengths, n_runs = _push_run(run_codes, run_lengths, n_runs, code, length)
        code, length = zero, tail
    if length:
        run_codes[n_runs] = code
        run_lengths[n_runs] = length
        n_runs += 1
    return run_codes[:n_runs].copy(), run_lengths[:n_runs].copy()


@njit(cache=True, nogil=True)
def _run_sums(run_codes: np.ndarray, run_lengths: np.ndarray,
              table: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n_cols = table.shape[1]
    total = np.zeros(n_cols)
    for r in range(run_codes.size):
        row = run_codes[r]
        run = run_lengths[r]
        if run < _MIN_BATCH:
            for _ in range(run):
                for c in range(n_cols):
                    total[c] += table[row, c]
        else:
            for c in range(n_cols):
                total[c] = _add_repeated(total[c], table[row, c], run)
    return total


class CodeRuns:
    """A raster of integer codes as maximal runs of equal codes, found once, summed many times.

    STAPLE's pixel-order EM sums a new table over the same codes on every iteration: finding
    the runs once makes each later sum cost the number of runs, not of pixels.
    """

    def __init__(self, codes: np.ndarray) -> None:
        flat = np.ascontiguousarray(codes).reshape(-1)
        if flat.dtype.itemsize == 1 and flat.size >= 8:
            words = flat[: flat.size - flat.size % 8].view(np.uint64)
        else:
            words = np.empty(0, np.uint64)
        self.codes, self.lengths = _code_runs(flat, words)

    @classmethod
    def framed(cls, crop: np.ndarray, box: tuple[int, int, int, int],
               shape: tuple[int, int]) -> CodeRuns:
        """The runs of a ``shape`` raster equal to ``crop`` inside ``box`` and 0 outside it."""
        runs = cls.__new__(cls)
        crop = np.ascontiguousarray(crop).reshape(box[2] - box[0], box[3] - box[1])
        runs.codes, runs.lengths = _framed_code_runs(crop, box[0], box[1], shape[0], shape[1])
        return runs

    def sums(self, table: np.ndarray) -> np.ndarray:
        """``sum over pixels i, in order, of table[codes[i], :]`` (see :func:`raster_sums`)."""
        return _run_sums(self.codes, self.lengths, np.ascontiguousarray(table, dtype=np.float64))


def raster_sums(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``sum over pixels i, in order, of table[codes[i], :]`` with sequential float64 adds.

    Parameters
    ----------
    codes
        Integer codes, one per pixel, in raster order (any shape; read flat).
    table
        float64 ``(n_codes, n_columns)``.
    """
    return CodeRuns(codes).sums(table)
