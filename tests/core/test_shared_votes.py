"""One count of a lesion's vote patterns gives the very STAPLE, majority vote and kappa/alpha
that each function computes from the masks on its own."""

import numpy as np
import pytest

from iaa_desktop.core.agreement.chance import chance_agreement, chance_from_patterns
from iaa_desktop.core.agreement.consensus import (
    _pack_and_count,
    _Patterns,
    majority_vote,
    majority_vote_from_patterns,
    vote_patterns,
)
from iaa_desktop.core.agreement.staple import staple, staple_from_patterns


def _disc_masks(rng, shape, n, *, at_edge=False):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    cy, cx = (0, 0) if at_edge else (shape[0] / 2, shape[1] / 2)
    masks = []
    for _ in range(n):
        r = rng.uniform(0.2, 0.4) * min(shape)
        dy, dx = rng.normal(0, 2, 2)
        masks.append((rows - cy - dy) ** 2 + (cols - cx - dx) ** 2 < r * r)
    return masks


CASES = {
    "two discs": lambda rng: _disc_masks(rng, (61, 83), 2),
    "five discs": lambda rng: _disc_masks(rng, (70, 50), 5),
    "touching the frame": lambda rng: _disc_masks(rng, (40, 40), 3, at_edge=True),
    "one empty": lambda rng: [*_disc_masks(rng, (30, 45), 2), np.zeros((30, 45), bool)],
    "all empty": lambda rng: [np.zeros((20, 30), np.uint8)] * 3,
    "all full": lambda rng: [np.full((20, 30), 255, np.uint8)] * 2,
    "nested, 0/255": lambda rng: [m.astype(np.uint8) * 255 for m in _disc_masks(rng, (50, 50), 2)],
}


def _whole_image_patterns(masks) -> _Patterns:
    """The patterns as counted before cropping to the union's box: every pixel packed."""
    n = len(masks)
    codes, counts = _pack_and_count([np.ascontiguousarray(m) for m in masks])
    present = np.flatnonzero(counts)
    lut_rows = np.zeros(1 << n, np.intp)
    lut_rows[present] = np.arange(present.size)
    votes = ((present[:, None] >> np.arange(n)) & 1).astype(bool)
    return _Patterns(votes, counts[present], codes.reshape(1, -1), lut_rows, None, masks[0].shape)


@pytest.mark.parametrize("case", CASES)
def test_shared_patterns_give_the_standalone_results(case):
    masks = CASES[case](np.random.default_rng(len(case)))
    patterns = vote_patterns(masks)
    np.testing.assert_array_equal(majority_vote_from_patterns(patterns), majority_vote(masks))
    whole = _whole_image_patterns(masks)
    assert whole.covers_image and not patterns.covers_image or case == "all full"
    for bit_exact in (False, True):  # histogram sums, and ITK's pixel-order sums (framed runs)
        shared = staple_from_patterns(patterns, bit_exact=bit_exact)
        alone = staple_from_patterns(whole, bit_exact=bit_exact)
        np.testing.assert_array_equal(shared.mask, alone.mask)
        np.testing.assert_array_equal(shared.probability, alone.probability)
        assert shared.iterations == alone.iterations
        assert np.array_equal(shared.sensitivity, alone.sensitivity, equal_nan=True)
        assert np.array_equal(shared.specificity, alone.specificity, equal_nan=True)
    np.testing.assert_array_equal(staple(masks).mask, staple_from_patterns(whole).mask)
    ours, reference = chance_from_patterns(patterns), chance_agreement(masks)
    assert ours.roi_px == reference.roi_px and ours.margin_px == reference.margin_px
    np.testing.assert_array_equal(ours.as_tuple(), reference.as_tuple())


def test_patterns_cover_only_the_union_box():
    masks = _disc_masks(np.random.default_rng(0), (80, 120), 3)
    patterns = vote_patterns(masks)
    union = np.logical_or.reduce(masks)
    rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
    assert patterns.box == (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    assert patterns.codes.shape == (rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0])
    assert patterns.counts.sum() == union.size


@pytest.mark.parametrize("case", CASES)
def test_known_boxes_give_the_same_patterns_and_surfaces(case):
    # The engine passes the decoder's foreground boxes on instead of scanning each mask again.
    from iaa_desktop.core.agreement.lesion import _box_within
    from iaa_desktop.core.agreement.metrics import foreground_box, mask_surface

    masks = CASES[case](np.random.default_rng(len(case)))
    boxes = [foreground_box(m) for m in masks]
    found, given_boxes = vote_patterns(masks), vote_patterns(masks, boxes)
    assert found.box == given_boxes.box
    np.testing.assert_array_equal(found.codes, given_boxes.codes)
    np.testing.assert_array_equal(found.counts, given_boxes.counts)
    for mask, box in zip(masks, boxes, strict=True):
        scanned, told = mask_surface(mask), mask_surface(mask, box)
        assert (scanned.bbox, scanned.foreground_px) == (told.bbox, told.foreground_px)
        np.testing.assert_array_equal(scanned.border, told.border)
    mv = majority_vote_from_patterns(found)
    st = staple_from_patterns(found).mask
    for consensus in (mv, st):  # looked for inside the union's box only
        assert _box_within(consensus, found.box) == foreground_box(consensus)


@pytest.mark.parametrize("chunk", [64, 1 << 18])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "fortran", "uint8 0/255"])
@pytest.mark.parametrize("n", [2, 5, 9])
def test_patterns_packed_by_row_blocks_match_plain_numpy(monkeypatch, chunk, layout, n):
    # Crops are packed by blocks of rows (never copied whole), in blocks of a multiple of 8
    # rows; a small chunk makes many blocks, rows wider than a chunk and a short last block.
    from iaa_desktop.core.agreement import consensus

    monkeypatch.setattr(consensus, "_CHUNK", chunk)
    rng = np.random.default_rng(n)
    base = rng.random((n, 45, 131)) < np.linspace(0.2, 0.9, 131)  # runs and mixed words
    base[:, :3] = False
    masks = [m for m in base]
    if layout == "strided":
        big = rng.random((n, 90, 262)) < 0.5
        big[:, ::2, ::2] = base
        masks = [m[::2, ::2] for m in big]
    elif layout == "fortran":
        masks = [np.asfortranarray(m) for m in base]
    elif layout == "uint8 0/255":
        masks = [m.astype(np.uint8) * 255 for m in base]
    patterns = vote_patterns(masks)
    r0, c0, r1, c1 = patterns.box
    expected_codes = sum((base[i].astype(np.int64) << i) for i in range(n))
    expected_counts = np.bincount(expected_codes.ravel(), minlength=1 << n)
    np.testing.assert_array_equal(patterns.codes, expected_codes[r0:r1, c0:c1])
    present = np.flatnonzero(expected_counts)
    np.testing.assert_array_equal(patterns.counts, expected_counts[present])
