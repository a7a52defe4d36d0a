"""Two-group comparisons and rank correlation for agreement scores.

:func:`compare_groups` gives everything the IMA++ paper reports for malignant
vs benign lesions (and that we report for intra vs inter factor pairs):
sizes, means, SDs, medians, Mann-Whitney U (two-sided and both one-sided
p-values), the two-sample Kolmogorov-Smirnov test, Cohen's d, the AUC / common
language effect size with its rank-biserial correlation, and a seeded
percentile bootstrap CI of the difference of means. :func:`spearman` gives a
rank correlation with its p-value and the number of complete pairs.

Keys of :meth:`TwoGroupComparison.as_dict` (JSON-safe: NaN becomes ``None``):

=====================  ==============================================================
key                    meaning
=====================  ==============================================================
label_a, label_b       names of the groups (``a`` is the first argument)
n_a, n_b               values used (NaN dropped)
n_nan_a, n_nan_b       NaN values dropped
mean_a, mean_b         means
sd_a, sd_b             sample standard deviations (ddof=1)
median_a, median_b     medians
mean_difference        mean_a - mean_b
ci_low, ci_high        percentile bootstrap CI of mean_a - mean_b
ci_level               0.95
n_boot, seed           bootstrap resamples and the seed of the generator
mannwhitney_u          U statistic of ``a`` (scipy.stats.mannwhitneyu(a, b))
p_mannwhitney          two-sided p-value
p_a_less               one-sided p for the alternative "a < b" (stochastically)
p_a_greater            one-sided p for the alternative "a > b"
ks_statistic, p_ks     two-sample Kolmogorov-Smirnov statistic and two-sided p
cohens_d               (mean_a - mean_b) / pooled SD
auc                    U / (n_a n_b): P(random a > random b), ties count one half
rank_biserial          2 auc - 1
=====================  ==============================================================
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

# _scipy_stats_note: scipy.stats is imported inside the functions, not at module
# level. Importing it builds docstrings with array-API checks that fail when
# sys.modules["torch"] is None (how the boundary test blocks torch; scipy 1.17),
# and it keeps `import iaa_desktop.core.statistics.stats` cheap.

#: Bootstrap resamples drawn per chunk: bounds memory to ~chunk x n integers.
_BOOT_CHUNK = 500


def _finite(values) -> tuple[np.ndarray, int]:
    """The non-NaN values as float64 and the number of NaNs dropped."""
    array = np.asarray(values, dtype=np.float64).ravel()
    nan = np.isnan(array)
    return array[~nan], int(nan.sum())


def json_safe(value):
    """``value`` with NaN/inf floats as ``None`` and numpy scalars as Python ones (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


@dataclass(frozen=True)
class TwoGroupComparison:
    """Descriptive statistics, tests and effect sizes of group ``a`` against group ``b``.

    See the module docstring for the meaning of each field; NaN marks a value
    that cannot be computed (e.g. a test on an empty group).
    """

    label_a: str
    label_b: str
    n_a: int
    n_b: int
    n_nan_a: int
    n_nan_b: int
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    median_a: float
    median_b: float
    mean_difference: float
    ci_low: float
    ci_high: float
    ci_level: float
    n_boot: int
    seed: int
    mannwhitney_u: float
    p_mannwhitney: float
    p_a_less: float
    p_a_greater: float
    ks_statistic: float
    p_ks: float
    cohens_d: float
    auc: float
    rank_biserial: float

    def as_dict(self) -> dict:
        """The fields as a JSON-safe dict (NaN as ``None``), keys as in the module docstring."""
        return json_safe(asdict(self))


@dataclass(frozen=True)
class SpearmanResult:
    """Spearman's rank correlation ``rho``, its two-sided ``p`` and the complete pairs ``n``."""

    rho: float
    p: float
    n: int

    def as_dict(self) -> dict:
        return json_safe(asdict(self))


def _describe(x: np.ndarray) -> tuple[float, float, float]:
    """Mean, sample SD (ddof=1) and median; NaN where undefined."""
    mean = float(np.mean(x)) if len(x) else math.nan
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
    median = float(np.median(x)) if len(x) else math.nan
    return mean, sd, median


def pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    """sqrt(((n1 - 1) s1² + (n2 - 1) s2²) / (n1 + n2 - 2)), the SD pooled over two groups."""
    n1, n2 = len(a), len(b)
    if n1 + n2 <= 2:
        return math.nan
    v1 = float(np.var(a, ddof=1)) if n1 > 1 else 0.0
    v2 = float(np.var(b, ddof=1)) if n2 > 1 else 0.0
    return math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))


def cohens_d(a, b) -> float:
    """Cohen's d: difference of means over the pooled standard deviation.

    The pooled SD weighs each group's *variance* s² by its degrees of freedom.
    The IMA++ reference code squared the variances (``np.var(x) ** 2``) before
    pooling, which does not give a standard deviation; we pool the variances.
    NaN values are dropped; NaN when a group is empty or the pooled SD is 0.
    """
    a, _ = _finite(a)
    b, _ = _finite(b)
    if not len(a) or not len(b):
        return math.nan
    sd = pooled_sd(a, b)
    if not sd > 0:
        return math.nan
    return (float(np.mean(a)) - float(np.mean(b))) / sd


def bootstrap_mean_difference(
    a, b, *, n_boot: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(a) - mean(b), resampling each group with replacement.

    Deterministic for a seed (a ``numpy.random.default_rng(seed)`` draws the
    indices, ``a`` first then ``b``, in chunks of a fixed size). NaN values are
    dropped; ``(nan, nan)`` when a group is empty or ``n_boot < 1``.
    """
    a, _ = _finite(a)
    b, _ = _finite(b)
    if not len(a) or not len(b) or n_boot < 1:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for start in range(0, n_boot, _BOOT_CHUNK):
        size = min(_BOOT_CHUNK, n_boot - start)
        mean_a = a[rng.integers(0, len(a), size=(size, len(a)))].mean(axis=1)
        mean_b = b[rng.integers(0, len(b), size=(size, len(b)))].mean(axis=1)
        diffs[start : start + size] = mean_a - mean_b
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(low), float(high)


def compare_groups(
    a, b, *, labels: tuple[str, str] = ("a", "b"), n_boot: int = 10_000, seed: int = 0
) -> TwoGroupComparison:
    """Compare two samples of scores (e.g. IAA of malignant vs benign lesions).

    Parameters
    ----------
    a, b
        The two samples (array-likes of numbers); NaN values are dropped and counted.
    labels
        Names of ``a`` and ``b``, carried into the result.
    n_boot
        Bootstrap resamples for the CI of mean(a) - mean(b) (0 skips it).
    seed
        Seed of the bootstrap's random generator: the same seed, the same CI.

    Returns
    -------
    TwoGroupComparison
        Mann-Whitney U is ``scipy.stats.mannwhitneyu(a, b)`` (default method),
        so ``U`` counts the pairs where ``a`` exceeds ``b`` (ties one half),
        ``auc = U / (n_a n_b)`` and ``rank_biserial = 2 auc - 1``. ``p_a_less``
        tests "a is stochastically smaller than b". Cohen's d uses the pooled
        variance (see :func:`cohens_d`; the reference code squared it by
        mistake). Tests need at least one value per group; SDs two.
    """
    from scipy import stats as sps  # lazily: see _scipy_stats_note

    x, nan_a = _finite(a)
    y, nan_b = _finite(b)
    mean_a, sd_a, median_a = _describe(x)
    mean_b, sd_b, median_b = _describe(y)
    u = p_two = p_less = p_greater = ks = p_ks = auc = math.nan
    if len(x) and len(y):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # All values tied: scipy's normal approximation divides 0 by 0 (p = NaN).
            warnings.simplefilter("ignore", RuntimeWarning)
            test = sps.mannwhitneyu(x, y, alternative="two-sided")
            p_less = float(sps.mannwhitneyu(x, y, alternative="less").pvalue)
            p_greater = float(sps.mannwhitneyu(x, y, alternative="greater").pvalue)
            u, p_two = float(test.statistic), float(test.pvalue)
            ks_test = sps.ks_2samp(x, y)
            ks, p_ks = float(ks_test.statistic), float(ks_test.pvalue)
        auc = u / (len(x) * len(y))
    low, high = bootstrap_mean_difference(x, y, n_boot=n_boot, seed=seed)
    return TwoGroupComparison(
        label_a=str(labels[0]),
        label_b=str(labels[1]),
        n_a=len(x),
        n_b=len(y),
        n_nan_a=nan_a,
        n_nan_b=nan_b,
        mean_a=mean_a,
        mean_b=mean_b,
        sd_a=sd_a,
        sd_b=sd_b,
        median_a=median_a,
        median_b=median_b,
        mean_difference=mean_a - mean_b,
        ci_low=low,
        ci_high=high,
        ci_level=0.95,
        n_boot=int(n_boot),
        seed=int(seed),
        mannwhitney_u=u,
        p_mannwhitney=p_two,
        p_a_less=p_less,
        p_a_greater=p_greater,
        ks_statistic=ks,
        p_ks=p_ks,
        cohens_d=cohens_d(x, y),
        auc=auc,
        rank_biserial=2 * auc - 1,
    )


def spearman(x, y) -> SpearmanResult:
    """Spearman's rho of two paired samples, dropping pairs with a NaN on either side.

    ``rho`` and ``p`` are NaN with fewer than 3 complete pairs or when either
    side is constant (no ranks to correlate).
    """
    from scipy import stats as sps  # lazily: see _scipy_stats_note

    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"spearman needs paired samples, got {len(x)} and {len(y)} values")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return SpearmanResult(math.nan, math.nan, n)
    result = sps.spearmanr(x, y)
    return SpearmanResult(float(result.statistic), float(result.pvalue), n)
