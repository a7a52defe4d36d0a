"""Per-pixel disagreement maps: vote fraction and binary entropy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iaa_desktop.core.agreement.consensus import ConsensusInputError, majority_vote
from iaa_desktop.core.agreement.disagreement import binary_entropy, vote_fraction
from tests.shared_data import TESTDATA_DIR, require_shared


def test_vote_fraction_values() -> None:
    a = np.array([[1, 1, 0, 0]], bool)
    b = np.array([[1, 0, 1, 0]], np.uint8) * 255
    c = np.array([[1, 1, 1, 0]], np.int32)
    fraction = vote_fraction([a, b, c])
    assert fraction.dtype == np.float32 and fraction.shape == (1, 4)
    assert fraction.tolist() == [[1.0, np.float32(2 / 3), np.float32(2 / 3), 0.0]]
    assert np.array_equal(vote_fraction(np.stack([a, a])), a.astype(np.float32))


def test_vote_fraction_of_four_has_exact_halves() -> None:
    masks = np.zeros((4, 1, 5), bool)
    for k in range(5):
        masks[:k, 0, k] = True
    assert vote_fraction(masks).tolist() == [[0.0, 0.25, 0.5, 0.75, 1.0]]


def test_vote_fraction_checks_inputs() -> None:
    with pytest.raises(ConsensusInputError):
        vote_fraction([])
    with pytest.raises(ConsensusInputError):
        vote_fraction([np.zeros((2, 2)), np.zeros((3, 2))])


def test_binary_entropy_values() -> None:
    f = np.array([0.0, 1.0, 0.5, 0.25, 0.75, 1 / 3], np.float32)
    h = binary_entropy(f)
    assert h.dtype == np.float32
    assert h[:3].tolist() == [0.0, 0.0, 1.0]
    expected = [-(p * np.log2(p) + (1 - p) * np.log2(1 - p)) for p in (0.25, 0.75, 1 / 3)]
    np.testing.assert_allclose(h[3:], expected, rtol=1e-6)
    assert h[3] == h[4]


def test_binary_entropy_takes_float64_and_keeps_shape() -> None:
    f = np.linspace(0.0, 1.0, 101).reshape(101, 1)
    h = binary_entropy(f)
    assert h.shape == (101, 1) and h.dtype == np.float32
    assert h[0, 0] == 0.0 and h[-1, 0] == 0.0 and h[50, 0] == 1.0
    assert np.all(h <= 1.0)


@pytest.mark.parametrize("bad", [[-0.1], [1.5], [np.nan]])
def test_binary_entropy_refuses_values_outside_unit_interval(bad) -> None:
    with pytest.raises(ConsensusInputError):
        binary_entropy(np.array(bad))


@given(arrays(np.float32, st.integers(1, 50), elements=st.floats(0.0, 1.0, width=32)))
def test_binary_entropy_is_a_bounded_symmetric_bit(f: np.ndarray) -> None:
    h = binary_entropy(f)
    assert np.all((h >= 0.0) & (h <= 1.0))
    # H(f) = H(1 - f), up to float32 rounding of 1 - f.
    np.testing.assert_allclose(binary_entropy(np.float32(1.0) - f), h, atol=2e-6)


def test_entropy_of_unanimous_votes_is_zero() -> None:
    masks = np.zeros((3, 4, 4), bool)
    masks[:, 1:3, 1:3] = True
    assert not binary_entropy(vote_fraction(masks)).any()


def test_shared_vectors_fraction_agrees_with_majority_vote() -> None:
    path = require_shared(TESTDATA_DIR / "metric_vectors.npz")
    with np.load(path) as npz:
        for case in ("two", "three", "four", "five"):
            inputs = npz[f"consensus__{case}__inputs"]
            fraction = vote_fraction(inputs)
            assert np.array_equal(fraction >= 0.5, majority_vote(inputs))
            assert np.array_equal(fraction >= 0.5, npz[f"consensus__{case}__mv"].astype(bool))
            entropy = binary_entropy(fraction)
            assert np.array_equal(entropy > 0, (fraction > 0) & (fraction < 1))
