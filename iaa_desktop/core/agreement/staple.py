"""STAPLE's EM on the histogram of vote patterns, exactly as SimpleITK's ``STAPLEImageFilter``.

ITK runs STAPLE's EM over every pixel on every iteration, but both steps depend only on a
pixel's *vote pattern* (which annotators marked it). So the image is reduced once to a
histogram of patterns (at most ``2**N``; :func:`~iaa_desktop.core.agreement.consensus._vote_patterns`),
EM runs on it with the pixel counts as weights, and the posteriors go back to the pixels
through a lookup table. The per-pattern arithmetic is ITK's, operation for operation; only
its pixel-by-pixel sums become count-weighted ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from iaa_desktop.core.agreement.consensus import (
    ConsensusInputError,
    _as_mask_list,
    _Patterns,
    _vote_patterns,
)
from iaa_desktop.core.agreement.raster_sums import CodeRuns

__all__ = ["StapleResult", "staple", "staple_from_patterns"]

# ITK's STAPLE stops when every annotator's sensitivity and specificity moved by no more than
# sqrt(1e-14) = 1e-7 since the previous iteration ("min_rms_error" in itkSTAPLEImageFilter.hxx).
_ITK_CONVERGENCE = 1.0e-14
# SimpleITK's default MaximumIterations: the largest unsigned 32-bit int, i.e. "until converged".
_ITK_MAX_ITERATIONS = 2**32 - 1
# A posterior this close to 0.5 might fall on the other side of it in SimpleITK, whose sums
# round differently: recompute with ITK's own summation order (see staple()).
_TIE_MARGIN = 1.0e-6
# Relative nudge of the sums in the probe run that tests whether the result hangs on rounding.
# ITK's pixel-by-pixel sums differ from exact ones by ~1e-13 (relative) at a few megapixels.
_PROBE_NUDGE = 1.0e-10


@dataclass(frozen=True)
class StapleResult:
    """STAPLE consensus of several masks, as SimpleITK's ``STAPLEImageFilter`` computes it.

    Attributes
    ----------
    mask : numpy.ndarray
        bool ``(H, W)``: ``probability > 0.5``, IMA++'s STAPLE consensus mask.
    probability : numpy.ndarray
        float64 ``(H, W)``: posterior probability that each pixel is lesion (computed
        when first read).
    sensitivity, specificity : tuple of float
        Per annotator, in input order, as estimated at the last iteration. ``nan`` where the
        rate is undefined (no estimated lesion, or no estimated background, anywhere).
    iterations : int
        SimpleITK's ``GetElapsedIterations()``: the zero-based index of the iteration at which
        the estimates converged (``max_iterations`` when they never did).

    ``probability`` is looked up from the per-pattern posteriors on first access and then
    kept: the agreement table needs only ``mask``, and writing a float64 image costs more
    than STAPLE's EM (about half of ``staple()`` at 30 MP).
    """

    mask: np.ndarray
    sensitivity: tuple[float, ...]
    specificity: tuple[float, ...]
    iterations: int
    _probability_lut: np.ndarray = field(repr=False, compare=False)
    _patterns: _Patterns = field(repr=False, compare=False)

    @cached_property
    def probability(self) -> np.ndarray:
        """float64 ``(H, W)``: posterior probability that each pixel is lesion."""
        return self._patterns.expand(self._probability_lut)


class _HistogramSums:
    """Column sums over the image from the pattern histogram: sum_k counts[k] * values[k]."""

    def __init__(self, counts: np.ndarray) -> None:
        self._counts = counts.astype(np.float64)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        # fsum of the count-weighted products: an accurate total is the best stand-in for
        # ITK's pixel-by-pixel running sum, whose own rounding depends on the pixel order.
        products = self._counts[:, None] * values
        return np.array([math.fsum(col) for col in products.T.tolist()])


class _PerturbedSums(_HistogramSums):
    """Histogram sums nudged by a relative ``_PROBE_NUDGE`` of random sign, for the probe.

    If EM on these stops at another iteration or thresholds a pattern differently, the
    result hangs on rounding, and ITK's rounding of its own sums might tip it too.
    """

    def __init__(self, counts: np.ndarray) -> None:
        super().__init__(counts)
        self._rng = np.random.default_rng(0)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        sign = self._rng.choice([-1.0, 1.0], size=values.shape[1])
        return super().__call__(values) * (1.0 + sign * _PROBE_NUDGE)


class _PixelOrderSums:
    """Column sums exactly as ITK accumulates them: pixel by pixel, in raster order.

    The running total of each column is bit for bit ITK's ``p_num += ...``
    (see :mod:`iaa_desktop.core.agreement.raster_sums`).
    """

    def __init__(self, patterns: _Patterns) -> None:
        # Found once, summed on every iteration; the pixels outside the codes' box are code 0.
        self._runs = (CodeRuns(patterns.codes) if patterns.covers_image
                      else CodeRuns.framed(patterns.codes, patterns.box, patterns.shape))
        self._lut_rows = patterns.lut_rows

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self._runs.sums(values[self._lut_rows])  # per code value, not per pattern


def _staple_em(votes: np.ndarray, n_pixels: int, sums: _HistogramSums | _PixelOrderSums,
               confidence_weight: float,
               max_iterations: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """ITK's STAPLE EM on vote patterns: (posterior per pattern, p, q, iterations).

    Mirrors ``STAPLEImageFilter::GenerateData`` step by step. ``sums`` turns per-pattern
    values into sums over the image's pixels. 0/0 gives nan as in ITK (the caller turns it
    into something usable).
    """
    n_patterns, n = votes.shape
    # Initial W: ITK adds 1.0 per vote and divides by the number of annotators.
    w = votes.sum(axis=1).astype(np.float64) / float(n)
    # The prior g_t is the mean of that initial W over the WHOLE image and stays fixed.
    g = (sums(w[:, None])[0] / float(n_pixels)) * confidence_weight
    last_p = np.full(n, -10.0)
    last_q = np.full(n, -10.0)
    columns = np.empty((n_patterns, 2 * n + 2))
    iteration = 0
    while iteration < max_iterations:
        # M step: sensitivity p_i = sum(W where i marked) / sum(W) and specificity
        # q_i = sum(1 - W where i did not mark) / sum(1 - W), all sums in one pass.
        not_w = 1.0 - w
        columns[:, :n] = np.where(votes, w[:, None], 0.0)
        columns[:, n:2 * n] = np.where(votes, 0.0, not_w[:, None])
        columns[:, 2 * n] = w
        columns[:, 2 * n + 1] = not_w
        totals = sums(columns)
        p = totals[:n] / totals[2 * n]
        q = totals[n:2 * n] / totals[2 * n + 1]
        # E step: in ITK's order of multiplications, so each pattern's posterior is
        # bit for bit what ITK computes for its pixels from the same p and q.
        alpha = np.ones(n_patterns)
        beta = np.ones(n_patterns)
        for i in range(n):
            marked = votes[:, i]
            alpha *= np.where(marked, p[i], 1.0 - p[i])
            beta *= np.where(marked, 1.0 - q[i], q[i])
        w = g * alpha / (g * alpha + (1.0 - g) * beta)
        # Converged unless some p or q moved by more than the tolerance (squared). A nan
        # difference compares false, so ITK stops there too. Never on the first iteration.
        moved = ((p - last_p) ** 2 > _ITK_CONVERGENCE) | ((q - last_q) ** 2 > _ITK_CONVERGENCE)
        last_p, last_q = p, q
        if iteration != 0 and not moved.any():
            break
        iteration += 1
    return w, last_p, last_q, iteration


def _hangs_on_rounding(votes: np.ndarray, n_pixels: int, counts: np.ndarray,
                       confidence_weight: float, max_iterations: int, w: np.ndarray,
                       iterations: int) -> bool:
    """Whether ITK's rounding could give another mask or iteration count than ours."""
    # A posterior at 0.5 in exact arithmetic (symmetric inputs) lands on a side of it by
    # rounding alone.
    if np.any(np.abs(w - 0.5) <= _TIE_MARGIN):
        return True
    # A stop just at the tolerance, or EM that amplifies rounding (slow, near-degenerate
    # convergence), shows up as a different outcome when the sums are nudged.
    probe_w, _, _, probe_iterations = _staple_em(
        votes, n_pixels, _PerturbedSums(counts), confidence_weight, max_iterations)
    return probe_iterations != iterations or bool(np.any((probe_w > 0.5) != (w > 0.5)))


def _lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[codes]``; through OpenCV's vectorised LUT when the codes are bytes."""
    if codes.dtype != np.uint8 or codes.size == 0 or codes.size >= 2**31:
        return table[codes]
    full = np.zeros(256, np.uint8 if table.dtype == np.bool_ else table.dtype)
    full[:table.size] = table
    looked_up = cv2.LUT(codes.reshape(1, -1) if codes.ndim != 2 else codes, full)
    return looked_up.reshape(codes.shape).view(table.dtype)


def _unanimous(full: bool, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """STAPLE's answer when all masks are empty (``full=False``) or all cover the image."""
    # SimpleITK stops after iteration 1 with nan everywhere; report the same count.
    rate_defined = np.ones(n)
    rate_undefined = np.full(n, np.nan)
    if full:
        return np.ones(1), rate_defined, rate_undefined, 1
    return np.zeros(1), rate_undefined, rate_defined, 1


def staple(masks: Sequence[np.ndarray] | np.ndarray, *, confidence_weight: float = 1.0,
           max_iterations: int = _ITK_MAX_ITERATIONS, bit_exact: bool = False) -> StapleResult:
    """STAPLE consensus, matching SimpleITK's ``STAPLEImageFilter`` (IMA++'s ``ST`` masks).

    Parameters
    ----------
    masks : sequence of numpy.ndarray, or numpy.ndarray
        N masks of the same shape ``(H, W)``, or one ``(N, H, W)`` stack. Non-zero is
        foreground. The prior is the foreground fraction of the whole image, so pass
        uncropped masks to reproduce IMA++.
    confidence_weight : float
        ITK's ``ConfidenceWeight``, scaling the prior (1 in IMA++).
    max_iterations : int
        ITK's ``MaximumIterations``; the default, 2**32 - 1, means "until converged".
        Values below 1 count as 1, as in ITK.
    bit_exact : bool
        Always sum pixel by pixel in ITK's order, reproducing SimpleITK's floating-point
        results bit for bit (much slower on large images; see Notes).

    Returns
    -------
    StapleResult
        Mask, probability map, per-annotator sensitivity and specificity, iterations.

    Raises
    ------
    ConsensusInputError
        When there are no masks, their shapes differ, or they have no pixels.

    Notes
    -----
    Exactness: the iterations and every per-pattern operation are ITK's; only the sums over
    pixels differ. ITK adds pixel by pixel and accumulates rounding error (1e-13 to 1e-12,
    relative), which factors like 1/(1 - sensitivity) amplify: on lesion masks its
    probabilities are off an 80-bit extended-precision run by 1e-11 to 1e-8 (5e-8 at 24 MP).
    The fast path sums count-weighted products with ``math.fsum`` and stays within ~4e-12
    of that run, so its difference from SimpleITK is SimpleITK's own error. Where rounding
    could change a discrete outcome, EM is rerun with ITK's pixel-order sums, which gives
    SimpleITK's result bit for bit (as ``bit_exact=True`` always does, at roughly
    SimpleITK's own speed):

    - a posterior within 1e-6 of 0.5. Symmetric inputs give exactly 0.5 in exact arithmetic
      (two nested masks: the ring between them; two masks, one empty), and SimpleITK's
      rounding, which depends on the image size, decides whether those pixels are lesion;
    - a run whose iteration count or mask changes when the sums are nudged by 1e-10: a stop
      right at the convergence tolerance, or near-degenerate EM that amplifies rounding.

    Degenerate input, where SimpleITK returns nan: when every mask is empty, or every mask
    covers the whole image, SimpleITK's probability map is nan everywhere (0/0 in its
    estimates), so IMA++'s ``> 0.5`` mask is empty even when all masks are full. Here the
    probability is then 0 (all empty) or 1 (all full), the mask agrees, the undefined rate
    (sensitivity when all are empty, specificity when all are full) is nan, the other 1, and
    ``iterations`` is SimpleITK's 1. A posterior that still comes out 0/0 (both likelihoods
    underflowing, possible with very many annotators; SimpleITK then returns nan everywhere)
    is replaced by the pattern's vote fraction.
    """
    items = _as_mask_list(masks)
    if items[0].size == 0:
        raise ConsensusInputError("the masks have no pixels")
    return staple_from_patterns(_vote_patterns(items), confidence_weight=confidence_weight,
                                max_iterations=max_iterations, bit_exact=bit_exact)


def staple_from_patterns(patterns: _Patterns, *, confidence_weight: float = 1.0,
                         max_iterations: int = _ITK_MAX_ITERATIONS,
                         bit_exact: bool = False) -> StapleResult:
    """:func:`staple` of the masks whose ``consensus.vote_patterns`` these are (same result).

    The patterns are shared with majority vote and chance-corrected agreement, so a lesion's
    masks are counted once.
    """
    max_iterations = max(1, int(max_iterations))
    n = patterns.votes.shape[1]
    votes, counts = patterns.votes, patterns.counts
    n_pixels = math.prod(patterns.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        if votes.shape[0] == 1 and (not votes.any() or votes.all()):
            # All empty or all full: nothing for EM to estimate (and ITK's answer is nan).
            w, p, q, iterations = _unanimous(bool(votes.all()), n)
        else:
            sums = _PixelOrderSums(patterns) if bit_exact else _HistogramSums(counts)
            w, p, q, iterations = _staple_em(votes, n_pixels, sums, confidence_weight,
                                             max_iterations)
            if not bit_exact and _hangs_on_rounding(votes, n_pixels, counts, confidence_weight,
                                                    max_iterations, w, iterations):
                w, p, q, iterations = _staple_em(votes, n_pixels, _PixelOrderSums(patterns),
                                                 confidence_weight, max_iterations)
    undefined = np.isnan(w)
    if undefined.any():
        w = np.where(undefined, votes.mean(axis=1), w)
    prob_lut = w[patterns.lut_rows]
    # Threshold the small table rather than the float image: same result, less memory traffic.
    mask = patterns.expand(prob_lut > 0.5)
    return StapleResult(
        mask=mask,
        sensitivity=tuple(float(x) for x in p),
        specificity=tuple(float(x) for x in q),
        iterations=iterations,
        _probability_lut=prob_lut,
        _patterns=patterns,
    )
