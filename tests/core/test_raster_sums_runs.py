"""Runs of equal codes, summed many additions at a time, still equal the one-by-one sums bit for bit."""

import numpy as np
import pytest

from iaa_desktop.core.agreement.raster_sums import raster_sums


def _sequential(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    gathered = table[codes.reshape(-1)]
    return np.add.accumulate(gathered, axis=0)[-1]


def _runs(rng, n_codes: int, size: int, mean_run: int) -> np.ndarray:
    lengths = rng.geometric(1.0 / mean_run, size // mean_run + 2)
    return np.repeat(rng.integers(0, n_codes, lengths.size), lengths)[:size].astype(np.uint8)


@pytest.mark.parametrize("mean_run", [3, 50, 4000])
def test_long_runs_bit_identical(mean_run):
    rng = np.random.default_rng(mean_run)
    tables = [
        rng.random((4, 6)),  # STAPLE-like weights in [0, 1)
        rng.standard_normal((4, 3)) * 10.0 ** rng.integers(-12, 12, (4, 1)),
        # Multiples of powers of two: many additions land exactly halfway (round to even).
        rng.integers(0, 4, (4, 5)) * 0.5 ** rng.integers(0, 60, (4, 5)).astype(float),
        np.where(rng.random((4, 4)) < 0.4, 0.0, rng.random((4, 4)) * 1e-9),
    ]
    for table in tables:
        codes = _runs(rng, table.shape[0], 300_000, mean_run)
        np.testing.assert_array_equal(raster_sums(codes, table), _sequential(codes, table))


def test_unusual_values_in_runs():
    table = np.array([[0.0, -0.0, 2.0**-53, 1.5 * 2.0**-53],
                      [1.0, np.nan, 1e-300, 0.1],
                      [np.inf, 1.0, -1.0, 1e300]])
    rng = np.random.default_rng(3)
    codes = _runs(rng, 3, 100_000, 500)
    ours, reference = raster_sums(codes, table), _sequential(codes, table)
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(reference))
    # A long run of one value: the batched additions stop exactly where one-by-one rounding does.
    codes = np.zeros(5_000_000, np.uint8)
    np.testing.assert_array_equal(raster_sums(codes, np.array([[0.1, 1.0 / 3.0]])),
                                  _sequential(codes, np.array([[0.1, 1.0 / 3.0]])))


def _numpy_runs(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
    return flat[starts], np.diff(np.append(starts, flat.size))


@pytest.mark.parametrize("size", [1, 7, 8, 9, 64, 100_003])
def test_code_runs_are_the_maximal_runs(size):
    """The word-at-a-time run finder gives numpy's maximal runs, at every alignment."""
    from iaa_desktop.core.agreement.raster_sums import CodeRuns

    rng = np.random.default_rng(size)
    for mean_run in (1, 5, 9, 300):
        lengths = rng.geometric(1.0 / mean_run, size + 2)
        flat = np.repeat(rng.integers(0, 3, lengths.size), lengths)[:size].astype(np.uint8)
        runs = CodeRuns(flat)
        codes, run_lengths = _numpy_runs(flat)
        np.testing.assert_array_equal(runs.codes, codes)
        np.testing.assert_array_equal(runs.lengths, run_lengths)
        assert runs.lengths.sum() == size
    wide = rng.integers(0, 2, size).astype(np.uint16) * 300  # two-byte codes: no word skipping
    np.testing.assert_array_equal(CodeRuns(wide).codes, _numpy_runs(wide)[0])


def test_framed_runs_equal_the_whole_raster_runs():
    """Runs of a box of codes framed by code 0 equal the runs of the whole raster built."""
    from iaa_desktop.core.agreement.raster_sums import CodeRuns

    rng = np.random.default_rng(7)
    for _ in range(2000):
        height, width = (int(x) for x in rng.integers(1, 12, 2))
        r0, c0 = int(rng.integers(0, height + 1)), int(rng.integers(0, width + 1))
        r1, c1 = int(rng.integers(r0, height + 1)), int(rng.integers(c0, width + 1))
        if r1 == r0 or c1 == c0:
            r1, c1 = r0, c0  # an empty box
        crop = (rng.integers(0, 3, (r1 - r0, c1 - c0)) * (rng.random((r1 - r0, c1 - c0)) < 0.7))
        crop = crop.astype(np.uint8)
        full = np.zeros((height, width), np.uint8)
        full[r0:r1, c0:c1] = crop
        whole, framed = CodeRuns(full), CodeRuns.framed(crop, (r0, c0, r1, c1), (height, width))
        np.testing.assert_array_equal(framed.codes, whole.codes)
        np.testing.assert_array_equal(framed.lengths, whole.lengths)
