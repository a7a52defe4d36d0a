"""Two-group comparisons and Spearman: hand-computed cases and scipy computed directly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from iaa_desktop.core.statistics.stats import (
    TwoGroupComparison,
    bootstrap_mean_difference,
    cohens_d,
    compare_groups,
    spearman,
)

KEYS = {
    "label_a", "label_b", "n_a", "n_b", "n_nan_a", "n_nan_b", "mean_a", "mean_b", "sd_a", "sd_b",
    "median_a", "median_b", "mean_difference", "ci_low", "ci_high", "ci_level", "n_boot", "seed",
    "mannwhitney_u", "p_mannwhitney", "p_a_less", "p_a_greater", "ks_statistic", "p_ks", "cohens_d",
    "auc", "rank_biserial",
}


def test_hand_computed_u_auc_and_rank_biserial():
    # a > b pairs: 3 beats 1 and 2 and ties 3 (2.5), 4 and 5 beat all three (6): U = 8.5 of 9.
    result = compare_groups([3, 4, 5], [1, 2, 3], labels=("x", "y"), n_boot=0)
    assert result.mannwhitney_u == 8.5
    assert result.auc == pytest.approx(8.5 / 9)
    assert result.rank_biserial == pytest.approx(2 * 8.5 / 9 - 1)
    assert (result.label_a, result.label_b, result.n_a, result.n_b) == ("x", "y", 3, 3)
    # Complete separation the other way.
    low = compare_groups([1, 2, 3], [4, 5], n_boot=0)
    assert (low.mannwhitney_u, low.auc, low.rank_biserial) == (0.0, 0.0, -1.0)


def test_hand_computed_cohens_d_pools_variances_not_their_squares():
    a, b = [1, 2, 3], [4, 5, 6, 7, 8]  # means 2 and 6, variances 1 and 2.5
    pooled = math.sqrt((2 * 1 + 4 * 2.5) / 6)  # sqrt(2)
    assert cohens_d(a, b) == pytest.approx(-4 / pooled)
    assert cohens_d(a, b) == pytest.approx(-2 * math.sqrt(2))
    squared = math.sqrt((2 * 1**2 + 4 * 2.5**2) / 6)  # the reference code's slip
    assert cohens_d(a, b) != pytest.approx(-4 / squared)
    result = compare_groups(a, b, n_boot=0)
    assert result.cohens_d == pytest.approx(-2 * math.sqrt(2))
    assert (result.mean_a, result.mean_b, result.sd_a, result.sd_b) == pytest.approx(
        (2, 6, 1, math.sqrt(2.5)))
    assert (result.median_a, result.median_b, result.mean_difference) == (2, 6, -4)


def test_tests_match_scipy_computed_directly():
    rng = np.random.default_rng(3)
    a = rng.beta(5, 2, 120)
    b = np.round(rng.beta(6, 2, 90), 2)  # ties across and within groups
    result = compare_groups(a, b, n_boot=100)
    two = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert result.mannwhitney_u == two.statistic
    assert result.p_mannwhitney == two.pvalue
    assert result.p_a_less == sps.mannwhitneyu(a, b, alternative="less").pvalue
    assert result.p_a_greater == sps.mannwhitneyu(a, b, alternative="greater").pvalue
    ks = sps.ks_2samp(a, b)
    assert (result.ks_statistic, result.p_ks) == (ks.statistic, ks.pvalue)
    assert result.auc == two.statistic / (120 * 90)
    assert result.sd_a == pytest.approx(np.std(a, ddof=1))
    assert result.median_b == np.median(b)


def test_nans_are_dropped_and_counted():
    result = compare_groups([1.0, np.nan, 2.0, 3.0], [np.nan, np.nan, 5.0, 6.0], n_boot=50)
    assert (result.n_a, result.n_b, result.n_nan_a, result.n_nan_b) == (3, 2, 1, 2)
    assert result.mean_a == 2.0 and result.mean_b == 5.5
    clean = compare_groups([1.0, 2.0, 3.0], [5.0, 6.0], n_boot=50)
    assert result.p_mannwhitney == clean.p_mannwhitney
    assert (result.ci_low, result.ci_high) == (clean.ci_low, clean.ci_high)


def test_bootstrap_is_deterministic_for_a_seed_and_sensible():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.8, 0.2, 400), rng.normal(0.75, 0.2, 300)
    first = bootstrap_mean_difference(a, b, n_boot=2000, seed=7)
    assert first == bootstrap_mean_difference(a, b, n_boot=2000, seed=7)
    assert first != bootstrap_mean_difference(a, b, n_boot=2000, seed=8)
    low, high = first
    diff = a.mean() - b.mean()
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert low < diff < high
    assert low == pytest.approx(diff - 1.96 * se, abs=0.2 * se)
    assert high == pytest.approx(diff + 1.96 * se, abs=0.2 * se)
    result = compare_groups(a, b, n_boot=2000, seed=7)
    assert (result.ci_low, result.ci_high) == first
    assert (result.n_boot, result.seed, result.ci_level) == (2000, 7, 0.95)


def test_degenerate_groups_give_nan_without_warnings():
    empty = compare_groups([], [1.0, 2.0])
    assert empty.n_a == 0 and math.isnan(empty.p_mannwhitney) and math.isnan(empty.ci_low)
    assert math.isnan(empty.cohens_d) and math.isnan(empty.auc)
    tied = compare_groups([1.0, 1.0, 1.0], [1.0, 1.0], n_boot=20)
    assert tied.auc == 0.5 and math.isnan(tied.cohens_d) and tied.sd_a == 0.0
    single = compare_groups([0.5], [0.7], n_boot=20)
    assert math.isnan(single.sd_a) and math.isnan(single.cohens_d)
    assert single.ci_low == single.ci_high == pytest.approx(-0.2)


def test_as_dict_is_json_safe_with_documented_keys():
    result = compare_groups([], [1.0])
    record = result.as_dict()
    assert set(record) == KEYS
    assert record["mean_a"] is None
    json.dumps(record, allow_nan=False)
    assert isinstance(result, TwoGroupComparison)
    with pytest.raises(AttributeError):
        result.n_a = 3  # frozen


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=12),
    st.lists(st.integers(0, 5), min_size=1, max_size=12),
)
def test_auc_counts_pairs_with_ties_as_half(a, b):
    result = compare_groups(a, b, n_boot=0)
    wins = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    assert result.auc == pytest.approx(wins / (len(a) * len(b)))
    assert result.rank_biserial == pytest.approx(2 * result.auc - 1)
    assert 0.0 <= result.auc <= 1.0


def test_spearman_matches_scipy_and_drops_incomplete_pairs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    expected = sps.spearmanr(x, y)
    result = spearman(x, y)
    assert (result.rho, result.p, result.n) == (expected.statistic, expected.pvalue, 50)
    x_nan, y_nan = x.copy(), y.copy()
    x_nan[0], y_nan[1] = np.nan, np.nan
    partial = spearman(x_nan, y_nan)
    assert partial.n == 48
    assert partial.rho == sps.spearmanr(x[2:], y[2:]).statistic
    assert set(partial.as_dict()) == {"rho", "p", "n"}


def test_spearman_degenerate_cases():
    assert math.isnan(spearman([1, 2], [2, 1]).rho)
    constant = spearman([1, 1, 1, 1], [1, 2, 3, 4])
    assert math.isnan(constant.rho) and constant.n == 4
    assert json.loads(json.dumps(constant.as_dict())) == {"rho": None, "p": None, "n": 4}
    with pytest.raises(ValueError, match="paired"):
        spearman([1, 2, 3], [1, 2])
