"""Chance-corrected pixel agreement of a lesion: Fleiss' kappa and Krippendorff's alpha.

Every pixel of a region of interest (ROI) is an item that each of the lesion's ``n`` human
annotators labels foreground or background. Both coefficients depend only on how many
pixels got each number ``k`` of foreground votes, so they are computed from the histogram
of the vote counts (``np.bincount``), never per pixel in Python:

- Fleiss' kappa (Fleiss 1971): ``P_i = (k(k-1) + (n-k)(n-k-1)) / (n(n-1))``,
  ``P_e = p_0^2 + p_1^2`` with ``p_1`` the share of foreground votes;
  ``kappa = (mean(P_i) - P_e) / (1 - P_e)``. Equal to
  ``statsmodels.stats.inter_rater.fleiss_kappa`` on the (pixels, 2) count table.
- Krippendorff's alpha, nominal, no missing values: with ``N = n * pixels`` votes,
  ``n_1`` foreground votes and ``o_01 = sum_i k(n-k) / (n-1)`` the disagreeing coincidences,
  ``alpha = 1 - (N-1) o_01 / (n_0 n_1)``. Equal to ``krippendorff.alpha(...,
  level_of_measurement="nominal")``.

ROI: the background far from the lesion is agreed on by everyone and would push both
coefficients towards 1 whatever the annotators did at the border. The ROI is therefore the
union of the masks dilated by a margin proportional to the lesion's size:
``margin = max(1, round(ROI_MARGIN_FRACTION * r))`` pixels, ``r = sqrt(union_px / pi)``
the radius of a disc of the union's area (a round lesion of radius 100 px gets a 25 px
margin), clipped to the image. Either coefficient is NaN when undefined (no foreground
or no background vote in the ROI, fewer than two annotators).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit

#: ROI margin as a fraction of the union's equivalent-disc radius.
ROI_MARGIN_FRACTION = 0.25

#: Column names of the per-lesion values.
CHANCE_COLUMNS = ("fleiss_kappa", "krippendorff_alpha", "chance_roi_px")


@dataclass(frozen=True)
class ChanceAgreement:
    """Fleiss' kappa, Krippendorff's alpha and the ROI they were computed in."""

    fleiss_kappa: float
    krippendorff_alpha: float
    roi_px: int
    margin_px: int

    def as_tuple(self) -> tuple[float, float, float]:
        """Values in :data:`CHANCE_COLUMNS` order."""
        return (self.fleiss_kappa, self.krippendorff_alpha, float(self.roi_px))


def kappa_alpha_from_counts(vote_histogram: np.ndarray, n_raters: int) -> tuple[float, float]:
    """Fleiss' kappa and nominal Krippendorff's alpha from ``vote_histogram[k]`` = items with k votes.

    Parameters
    ----------
    vote_histogram
        Length ``n_raters + 1``: how many items got 0, 1, ..., n foreground votes.
    n_raters
        Raters per item (every rater labels every item).
    """
    n = int(n_raters)
    hist = np.asarray(vote_histogram, dtype=np.float64)
    if n < 2 or hist.shape != (n + 1,):
        return math.nan, math.nan
    items = hist.sum()
    if items == 0:
        return math.nan, math.nan
    k = np.arange(n + 1, dtype=np.float64)
    votes_1 = float((hist * k).sum())
    votes = n * items
    votes_0 = votes - votes_1
    # Fleiss: mean per-item agreement against the agreement expected from the vote shares.
    p_i = (k * (k - 1) + (n - k) * (n - k - 1)) / (n * (n - 1))
    p_bar = float((hist * p_i).sum() / items)
    p1 = votes_1 / votes
    p_e = p1 * p1 + (1.0 - p1) * (1.0 - p1)
    kappa = (p_bar - p_e) / (1.0 - p_e) if p_e < 1.0 else math.nan
    # Krippendorff: disagreeing coincidences against those expected from the vote totals.
    o_01 = float((hist * k * (n - k)).sum() / (n - 1))
    alpha = 1.0 - (votes - 1.0) * o_01 / (votes_0 * votes_1) if votes_0 and votes_1 else math.nan
    return kappa, alpha


def roi_margin(union_px: int) -> int:
    """The ROI margin in pixels for a union of ``union_px`` pixels (see the module docstring)."""
    return max(1, round(ROI_MARGIN_FRACTION * math.sqrt(union_px / math.pi)))


def chance_agreement(masks: Sequence[np.ndarray]) -> ChanceAgreement:
    """Fleiss' kappa and Krippendorff's alpha of ``masks`` (one per annotator) inside the ROI.

    Works on the union's bounding box grown by the margin, never the whole image.

    Raises
    ------
    ValueError
        If the masks differ in shape.
    """
    n = len(masks)
    if n < 2:
        return ChanceAgreement(math.nan, math.nan, 0, 0)
    shape = masks[0].shape
    boxes = []
    for mask in masks:
        if mask.shape != shape:
            raise ValueError(f"masks differ in shape: {mask.shape} vs {shape}")
        if mask.dtype == np.uint8:
            u8 = mask
        elif mask.dtype == np.bool_:
            u8 = mask.view(np.uint8)  # same bytes, no copy
        else:
            u8 = (mask != 0).view(np.uint8)
        x, y, w, h = cv2.boundingRect(u8)
        if w:
            boxes.append((y, x, y + h, x + w))
    if not boxes:
        return ChanceAgreement(math.nan, math.nan, 0, 0)
    r0, c0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    r1, c1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return _chance_in_box(masks, shape, (r0, c0, r1, c1))


def _chance_in_box(masks: Sequence[np.ndarray], shape: tuple[int, ...],
                   box: tuple[int, int, int, int]) -> ChanceAgreement:
    """Vote histogram of the ROI around the union, whose bounding box is ``box``.

    Every pixel of the union is in the ROI (distance 0), so the histogram's bins 1..n are
    the union's vote counts, read straight from the votes, and bin 0 is the ROI's size
    minus the union's: only the ROI's size needs the distance transform.
    """
    n = len(masks)
    r0, c0, r1, c1 = box
    crop_votes = np.zeros((r1 - r0, c1 - c0), np.uint8)
    for mask in masks:
        # 0/1 votes: a bool mask's bytes are 0/1 already; other dtypes are compared to 0.
        part = mask[r0:r1, c0:c1]
        vote = part.view(np.uint8) if part.dtype == np.bool_ else (part != 0).view(np.uint8)
        if n < 256:
            cv2.add(crop_votes, vote, dst=crop_votes)  # saturating, but n < 256 never saturates
        else:
            np.add(crop_votes, vote, out=crop_votes)  # wraps at 256, as before
    union_px = int(cv2.countNonZero(crop_votes))
    margin = roi_margin(union_px)
    histogram = np.zeros(n + 1, np.int64)
    for k in range(1, n + 1):
        histogram[k] = cv2.countNonZero(cv2.compare(crop_votes, k, cv2.CMP_EQ))
    histogram[0] = _roi_px(cv2.compare(crop_votes, 0, cv2.CMP_EQ), box, shape, margin) - union_px
    kappa, alpha = kappa_alpha_from_counts(histogram, n)
    return ChanceAgreement(kappa, alpha, int(histogram.sum()), margin)


@njit(cache=True, nogil=True)
def _disc_dilation_px(first: np.ndarray, last: np.ndarray, r0: int, margin: int,
                      height: int, width: int) -> int:  # pragma: no cover - compiled
    """Pixels within ``margin`` of a union that is one run ``first[i]..last[i]`` on each row
    ``r0 + i``, the runs of neighbouring rows touching, clipped to the image.

    A pixel (y, x) is within the margin exactly when some union pixel lies at a row offset
    dr, |dr| <= margin, and a column offset of at most ``half[|dr|] = isqrt(margin^2 - dr^2)``.
    Row y's candidates are the runs of rows y + dr widened by ``half[|dr|]``: touching runs
    widen into a chain of touching intervals, so their union is one interval from the least
    left end to the greatest right end. Integer arithmetic only.
    """
    half = np.empty(margin + 1, np.int64)
    for d in range(margin + 1):
        h = int(math.sqrt(margin * margin - d * d))
        while h * h > margin * margin - d * d:
            h -= 1
        while (h + 1) * (h + 1) <= margin * margin - d * d:
            h += 1
        half[d] = h
    n_rows = first.size
    total = 0
    for y in range(max(0, r0 - margin), min(height, r0 + n_rows + margin)):
        left = width
        right = -1
        for i in range(max(0, y - margin - r0), min(n_rows, y + margin - r0 + 1)):
            d = abs(r0 + i - y)
            if first[i] - half[d] < left:
                left = first[i] - half[d]
            if last[i] + half[d] > right:
                right = last[i] + half[d]
        total += min(right, width - 1) - max(left, 0) + 1
    return total


def _single_runs(no_vote: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """First and last union column of each row when every row of the box is one run of union
    pixels touching the runs of the rows beside it; ``None`` otherwise."""
    width = no_vote.shape[1]
    outside = cv2.reduce(no_vote, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() // 255
    count = width - outside
    if count.size == 0 or count.min() == 0:
        return None
    first = np.argmin(no_vote, axis=1).astype(np.int64)  # the first 0 (union pixel) in a row
    last = width - 1 - np.argmin(no_vote[:, ::-1], axis=1).astype(np.int64)
    if np.any(last - first + 1 != count):
        return None
    if np.any(np.maximum(first[1:], first[:-1]) > np.minimum(last[1:], last[:-1]) + 1):
        return None
    return first, last


def _roi_px(no_vote: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, ...],
            margin: int) -> int:
    """Pixels of the image within ``margin`` (Euclidean) of the union, whose bounding box is
    ``box`` and which is 0 in ``no_vote`` (uint8, non-zero where no annotator voted).

    Most lesions are one run of pixels per row, each touching the next: then the count is
    integer arithmetic on the runs (:func:`_disc_dilation_px`); otherwise an exact distance
    transform of the box grown by the margin. Both count the same pixels.
    """
    r0, c0, r1, c1 = box
    runs = _single_runs(no_vote)
    if runs is not None:
        first, last = runs
        return int(_disc_dilation_px(first + c0, last + c0, r0, margin, shape[0], shape[1]))
    return _roi_px_by_distance(no_vote, box, shape, margin)


def _roi_px_by_distance(no_vote: np.ndarray, box: tuple[int, int, int, int],
                        shape: tuple[int, ...], margin: int) -> int:
    r0, c0, r1, c1 = box
    # Grow the box by the margin (clipped to the image) and measure distances inside it.
    g0, h0 = max(0, r0 - margin), max(0, c0 - margin)
    g1, h1 = min(shape[0], r1 + margin), min(shape[1], c1 + margin)
    outside = np.full((g1 - g0, h1 - h0), 255, np.uint8)
    outside[r0 - g0 : r1 - g0, c0 - h0 : c1 - h0] = no_vote
    # Exact Euclidean distance to the union (a dilation by a disc this large would cost
    # kernel area x crop area); the ROI is every pixel within the margin.
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return int(cv2.countNonZero(cv2.compare(distance, float(margin), cv2.CMP_LE)))


def chance_from_patterns(patterns) -> ChanceAgreement:
    """:func:`chance_agreement` of the masks whose ``consensus.vote_patterns`` these are.

    The vote histogram inside the union is the pattern counts grouped by vote count; only
    the ROI's size reads pixels. Patterns without a box (many annotators) are not accepted.
    """
    n = patterns.votes.shape[1]
    if n < 2:
        return ChanceAgreement(math.nan, math.nan, 0, 0)
    if patterns.box is None:
        raise ValueError("chance_from_patterns needs patterns cropped to the union's box")
    per_pattern = patterns.votes_per_pattern
    histogram = np.zeros(n + 1, np.int64)
    np.add.at(histogram, per_pattern, patterns.counts)
    union_px = int(histogram[1:].sum())
    if union_px == 0:
        return ChanceAgreement(math.nan, math.nan, 0, 0)
    margin = roi_margin(union_px)
    no_vote = patterns.expand_crop(((per_pattern == 0) * np.uint8(255)).astype(np.uint8)[patterns.lut_rows])
    histogram[0] = _roi_px(no_vote, patterns.box, patterns.shape, margin) - union_px
    kappa, alpha = kappa_alpha_from_counts(histogram, n)
    return ChanceAgreement(kappa, alpha, int(histogram.sum()), margin)
