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
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _raster_sums(codes: np.ndarray, table: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n_cols = table.shape[1]
    total = np.zeros(n_cols)
    for i in range(codes.size):
        row = codes[i]
        for c in range(n_cols):
            total[c] += table[row, c]
    return total


def raster_sums(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``sum over pixels i, in order, of table[codes[i], :]`` with sequential float64 adds.

    Parameters
    ----------
    codes
        Integer codes, one per pixel, in raster order (any shape; read flat).
    table
        float64 ``(n_codes, n_columns)``.
    """
    flat = np.ascontiguousarray(codes).reshape(-1)
    return _raster_sums(flat, np.ascontiguousarray(table, dtype=np.float64))
