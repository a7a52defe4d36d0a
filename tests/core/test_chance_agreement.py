"""Fleiss' kappa and Krippendorff's alpha from vote counts, cross-checked against statsmodels
and the krippendorff package on random data, and the lesion ROI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iaa_desktop.core.agreement.chance import (
    chance_agreement,
    kappa_alpha_from_counts,
    roi_margin,
)

fleiss = pytest.importorskip("statsmodels.stats.inter_rater", reason="statsmodels (bench extra)")
krippendorff = pytest.importorskip("krippendorff", reason="krippendorff (bench extra)")


def reference(labels: np.ndarray) -> tuple[float, float]:
    """labels: (raters, items) of 0/1."""
    n = labels.shape[0]
    k = labels.sum(axis=0)
    table = np.column_stack((n - k, k))
    kappa = fleiss.fleiss_kappa(table, method="fleiss")
    alpha = krippendorff.alpha(reliability_data=labels.astype(float), level_of_measurement="nominal")
    return float(kappa), float(alpha)


@pytest.mark.parametrize("seed", range(8))
def test_kappa_and_alpha_agree_with_statsmodels_and_krippendorff(seed):
    rng = np.random.default_rng(seed)
    n_raters = int(rng.integers(2, 7))
    n_items = int(rng.integers(20, 400))
    # Correlated raters: a latent truth flipped with a rater-specific error rate.
    truth = rng.random(n_items) < rng.uniform(0.1, 0.9)
    flip = rng.random((n_raters, n_items)) < rng.uniform(0.02, 0.4, size=(n_raters, 1))
    labels = (truth ^ flip).astype(np.int64)
    histogram = np.bincount(labels.sum(axis=0), minlength=n_raters + 1)
    kappa, alpha = kappa_alpha_from_counts(histogram, n_raters)
    want_kappa, want_alpha = reference(labels)
    assert kappa == pytest.approx(want_kappa, abs=1e-10)
    assert alpha == pytest.approx(want_alpha, abs=1e-10)


def test_lesion_masks_agree_with_the_references_inside_the_roi():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:120, :150]
    masks = []
    for _ in range(4):
        cy, cx, r = 60 + rng.normal(0, 2), 70 + rng.normal(0, 2), 30 + rng.normal(0, 3)
        masks.append(((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8) * 255)
    result = chance_agreement(masks)
    union = np.any(np.stack(masks) > 0, axis=0)
    margin = roi_margin(int(union.sum()))
    assert result.margin_px == margin
    # The ROI written out by hand: pixels within the margin (disc) of the union.
    from scipy import ndimage
    dist = ndimage.distance_transform_edt(~union)
    roi = dist <= margin
    labels = np.stack([m[roi] > 0 for m in masks]).astype(int)
    want_kappa, want_alpha = reference(labels)
    assert result.roi_px == int(roi.sum())
    assert result.fleiss_kappa == pytest.approx(want_kappa, abs=1e-10)
    assert result.krippendorff_alpha == pytest.approx(want_alpha, abs=1e-10)
    assert 0.5 < result.fleiss_kappa < 1.0


def test_roi_margin_keeps_background_from_inflating_agreement():
    """The same disagreement scores the same whatever the image size around the lesion."""
    small = np.zeros((80, 80), np.uint8)
    big = np.zeros((800, 800), np.uint8)
    for canvas in (small, big):
        canvas[30:50, 30:50] = 1
    other_small, other_big = small.copy(), big.copy()
    other_small[30:50, 50:54] = 1
    other_big[30:50, 50:54] = 1
    a = chance_agreement([small, other_small])
    b = chance_agreement([big, other_big])
    assert a.fleiss_kappa == pytest.approx(b.fleiss_kappa)
    assert a.roi_px == b.roi_px


def test_undefined_cases_give_nan():
    empty = np.zeros((10, 10), np.uint8)
    assert math.isnan(chance_agreement([empty, empty]).fleiss_kappa)
    assert math.isnan(chance_agreement([empty]).krippendorff_alpha)
    full = np.ones((10, 10), np.uint8)
    # Everyone votes foreground everywhere: no background vote, so no chance baseline.
    result = chance_agreement([full, full, full])
    assert math.isnan(result.fleiss_kappa) and math.isnan(result.krippendorff_alpha)


def test_roi_by_runs_equals_the_distance_transform():
    """The integer count on row runs and the exact distance transform give the same ROI,
    including unions cut by the image frame, several blobs and scattered pixels (which
    take the distance-transform path), at small and large margins."""
    import cv2

    from iaa_desktop.core.agreement import chance

    rng = np.random.default_rng(1)
    by_runs = 0
    for _ in range(150):
        height, width = (int(x) for x in rng.integers(5, 120, 2))
        image = np.zeros((height, width), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            centre = (int(rng.integers(-10, width + 10)), int(rng.integers(-10, height + 10)))
            axes = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        if rng.random() < 0.2:
            image[rng.random(image.shape) < 0.01] = 1
        rows, cols = np.nonzero(image)
        if rows.size == 0:
            continue
        box = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
        no_vote = np.where(image[box[0]:box[2], box[1]:box[3]] > 0, 0, 255).astype(np.uint8)
        by_runs += chance._single_runs(no_vote) is not None
        for margin in (1, 2, 7, int(rng.integers(1, 200))):
            assert chance._roi_px(no_vote, box, (height, width), margin) == \
                chance._roi_px_by_distance(no_vote, box, (height, width), margin)
    assert by_runs > 30  # both paths were exercised
