"""The compiled raster-order sums equal numpy's strictly sequential accumulate, bit for bit."""

import numpy as np

from iaa_desktop.core.agreement.raster_sums import raster_sums


def _sequential(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    gathered = table[codes.reshape(-1)]
    return np.add.accumulate(gathered, axis=0)[-1]


def test_bit_identical_to_sequential_accumulate():
    rng = np.random.default_rng(7)
    for n_codes, n_cols, size in ((4, 6, 100_003), (32, 12, 20_000), (256, 3, 50_000)):
        # Values of wildly different magnitudes make the rounding order visible.
        table = rng.standard_normal((n_codes, n_cols)) * 10.0 ** rng.integers(-12, 12, (n_codes, 1))
        codes = rng.integers(0, n_codes, size).astype(np.uint8 if n_codes <= 256 else np.uint16)
        ours = raster_sums(codes.reshape(-1, 1), table)
        np.testing.assert_array_equal(ours, _sequential(codes, table))


def test_order_of_addition_is_the_raster_order():
    table = np.array([[1e16], [1.0], [-1e16]])
    # 1e16 + 1 rounds back to 1e16, so the ones vanish when they come after it...
    assert raster_sums(np.array([[0, 1], [1, 2]], np.uint8), table)[0] == 0.0
    # ...and survive when they come first: row by row, left to right.
    assert raster_sums(np.array([[1, 1], [0, 2]], np.uint8), table)[0] == 2.0
    assert raster_sums(np.array([[1, 0], [1, 2]], np.uint8).T.copy(), table)[0] == 2.0
