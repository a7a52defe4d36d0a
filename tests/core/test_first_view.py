"""The first view of a large lesion against the exact display it is replaced by.

Lesions here are small, with ``max_side`` small enough that the display is reduced 4x
(as a 6000 x 4000 image is under the default ``DISPLAY_MAX_SIDE``).
"""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.display.first_view import FirstView, iter_lesion_first_view, sample_indices
from iaa_desktop.core.display.lesion import ImagePreview, iter_lesion_display, to_display
from iaa_desktop.core.progress import run_to_end
from tests.builders import disk, write_image, write_mask

SHAPE = (240, 360)
MAX_SIDE = 100  # 360 / 4 = 90: the display is a quarter of the image, as at 6000 x 4000


def blob(shape, seed):
    """A lobed lesion with a hole and a speck: outlines of every kind."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    angle = np.arctan2(yy - shape[0] / 2, xx - shape[1] / 2)
    radius = 0.3 * min(shape) * (1 + 0.2 * np.cos(3 * angle + rng.uniform(0, 6)) + 0.05 * np.cos(9 * angle))
    mask = (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 < radius**2
    mask &= ~disk(shape, (shape[0] // 2 + 5, shape[1] // 2 - 8), 12)
    mask |= disk(shape, (20, 30), 6)
    return mask


def make_lesion(root, masks, image_name="x.jpg", shape=SHAPE):
    root.mkdir(parents=True, exist_ok=True)
    if image_name.endswith(".jpg"):
        (root / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / image_name), np.full((*shape, 3), 128, np.uint8))
    else:
        write_image(root / "images" / image_name, shape)
    for name, (mask, scale) in masks.items():
        write_mask(root / "masks" / name / "x.png", mask, scale)
    return load_dataset(root).lesion("x")


def stages(lesion, max_side=MAX_SIDE):
    """(steps, first view or None, exact display) of ``iter_lesion_first_view``."""
    steps = []
    exact = run_to_end(iter_lesion_first_view(lesion, max_side), steps.append)
    firsts = [s.display for s in steps if isinstance(s, FirstView)]
    return steps, (firsts[0] if firsts else None), exact


def assert_same_display(a, b, outlines=True):
    for x, y in [*zip(a.masks, b.masks, strict=True), (a.majority, b.majority),
                 (a.vote_fraction, b.vote_fraction), (a.entropy, b.entropy), (a.image, b.image)]:
        np.testing.assert_array_equal(x, y)
    assert a.shape == b.shape and a.display_shape == b.display_shape
    for x, y in zip(a.majority_contours, b.majority_contours, strict=True):
        np.testing.assert_array_equal(x, y)
    if outlines:
        for la, lb in zip(a.layers, b.layers, strict=True):
            assert la.label == lb.label and la.colour == lb.colour and len(la.contours) == len(lb.contours)
            for x, y in zip(la.contours, lb.contours, strict=True):
                np.testing.assert_array_equal(x, y)


def dense(contours, step=0.25):
    """Points every ``step`` pixels along closed outlines (their vertices alone skip long edges)."""
    points = []
    for c in contours:
        for p, q in zip(c[:-1], c[1:], strict=True):
            n = max(1, int(np.ceil(np.hypot(*(q - p)) / step)))
            points.append(p + np.linspace(0, 1, n, endpoint=False)[:, None] * (q - p))
    return np.vstack(points)


@pytest.fixture
def lesion(tmp_path):
    masks = {f"A{k}": (blob(SHAPE, k), 255) for k in range(3)}
    return make_lesion(tmp_path / "ds", masks)


@settings(max_examples=40, deadline=None)
@given(source=st.integers(1, 500), target=st.integers(1, 200))
def test_sample_indices_are_the_pixels_to_display_takes(source, target):
    rng = np.random.default_rng(source * 1000 + target)
    mask = rng.random((source, 7)) < 0.5
    rows = sample_indices(source, target)
    np.testing.assert_array_equal(to_display(mask, (target, 7)), mask[rows])


def test_first_view_comes_before_the_exact_display_it_is_replaced_by(lesion):
    steps, first, exact = stages(lesion)
    kinds = [type(s).__name__ for s in steps]
    assert kinds[0] == "ImagePreview" and kinds.count("FirstView") == 1
    assert kinds.index("FirstView") == 1 + len(lesion.human_segmentations)  # after the image and masks
    assert [s.done for s in steps] == list(range(1, steps[0].total + 1))
    assert not first.exact and exact.exact and first.display_shape == (60, 90)
    # The exact display is exactly what the full-resolution path returns.
    assert_same_display(exact, run_to_end(iter_lesion_display(lesion, MAX_SIDE)))
    # The first view's masks, consensus and disagreement are already the exact ones.
    assert_same_display(first, exact, outlines=False)


def test_first_view_outlines_lie_within_two_display_pixels_of_the_exact_ones(lesion):
    # Sampling the mask at display-pixel centres moves a border by under one display pixel,
    # and each outline is simplified to half a display pixel: at most 2 display pixels
    # apart, under one screen pixel when the image is fitted in a window (6000 px in ~900).
    _, first, exact = stages(lesion)
    factor = SHAPE[1] / first.display_shape[1]
    worst = 0.0
    for reduced, full in zip(first.layers, exact.layers, strict=True):
        assert len(reduced.contours) == len(full.contours)  # the lesion, its hole and the speck
        a, b = dense(reduced.contours), dense(full.contours)
        worst = max(worst, cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())
    assert 0 < worst / factor <= 2.0


def test_refining_adds_the_pixel_checks(tmp_path):
    grey = blob(SHAPE, 0).astype(np.uint8) * 200
    grey[100:110, 100:200] = np.where(grey[100:110, 100:200] > 0, 100, 0)  # a second non-zero value
    masks = {"A0": (blob(SHAPE, 1), 255), "A1": (grey, 1)}
    steps, first, exact = stages(make_lesion(tmp_path / "ds", masks))
    assert [p.kind for p in exact.problems] == ["non_binary_mask"]
    assert first.problems == ()  # known only once every pixel is decoded
    assert_same_display(first, exact, outlines=False)


def test_masks_the_sampler_cannot_read_are_decoded_in_full(tmp_path):
    masks = {"A0": (blob(SHAPE, 1), 255), "A1": (blob(SHAPE, 2), 255)}
    lesion = make_lesion(tmp_path / "ds", masks)
    rgb = np.dstack([blob(SHAPE, 2).astype(np.uint8) * 255] * 3)  # RGB: not a flavour sampled here
    cv2.imwrite(str(tmp_path / "ds" / "masks" / "A1" / "x.png"), rgb)
    (tmp_path / "ds" / "masks" / "A0" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # damaged
    _, first, exact = stages(lesion)
    assert_same_display(first, exact, outlines=False)
    np.testing.assert_array_equal(first.layers[1].contours[0], exact.layers[1].contours[0])  # exact already
    assert first.masks[0] is None and [p.kind for p in first.problems] == [p.kind for p in exact.problems]
    assert first.problems and first.problems[0].path.endswith("x.png")


def test_a_lesion_shown_at_full_resolution_has_no_first_view(lesion):
    steps, first, exact = stages(lesion, max_side=400)
    assert first is None and exact.exact and exact.display_shape == SHAPE
    assert not any(isinstance(s, FirstView) for s in steps) and isinstance(steps[0], ImagePreview)


def test_closing_after_the_first_view_stops_the_refinement(lesion):
    job = iter_lesion_first_view(lesion, MAX_SIDE)
    step = next(job)
    while not isinstance(step, FirstView):
        step = next(job)
    job.close()  # the user switched on: the exact stage is dropped without an error
    assert not step.display.exact and step.display.image_id == "x"
