"""The lesion view's data: display-size masks, consensus, disagreement, pixel read-out, cache."""

import threading

import numpy as np
import pytest

from iaa_desktop.core.agreement.consensus import majority_vote
from iaa_desktop.core.agreement.disagreement import binary_entropy
from iaa_desktop.core.agreement.staple import staple
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.display.cache import DisplayCache, lesion_cache_key
from iaa_desktop.core.display.lesion import (
    display_shape,
    iter_lesion_display,
    pair_masks,
    to_display,
    with_staple,
)
from iaa_desktop.core.display.pixel_readout import pixel_readout, readout_text
from iaa_desktop.core.palette import ANNOTATOR_COLOURS
from iaa_desktop.core.progress import Progress, run_to_end
from tests.builders import write_image, write_mask

SHAPE = (20, 30)


def rect(shape, rows, cols):
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


#: Three annotators with rectangles whose overlaps are known pixel by pixel.
KNOWN = {
    "R1": rect(SHAPE, (2, 10), (2, 12)),
    "R2": rect(SHAPE, (5, 15), (8, 20)),
    "R3": rect(SHAPE, (5, 10), (2, 20)),
}


def make_known(root, masks=KNOWN, shape=SHAPE, image_name="x.png"):
    """Folder layout, one lesion ``x`` with the masks given."""
    write_image(root / "images" / image_name, shape)
    for annotator, mask in masks.items():
        write_mask(root / "masks" / annotator / "x.png", mask)
    return root


@pytest.fixture
def known(tmp_path):
    dataset = load_dataset(make_known(tmp_path / "ds"))
    return dataset.lesion("x")


def decode(lesion):
    return run_to_end(iter_lesion_display(lesion))


def test_display_data_carries_masks_consensus_and_disagreement(known):
    steps = []
    display = run_to_end(iter_lesion_display(known), steps.append)
    assert [s.done for s in steps] == [1, 2, 3, 4] and all(isinstance(s, Progress) for s in steps)
    assert display.shape == SHAPE and display.display_shape == SHAPE
    assert display.image.shape == (*SHAPE, 3)
    assert [layer.segmentation.annotator for layer in display.layers] == ["R1", "R2", "R3"]
    assert [layer.colour for layer in display.layers] == list(ANNOTATOR_COLOURS[:3])
    for mask, annotator in zip(display.masks, ["R1", "R2", "R3"], strict=True):
        assert mask.dtype == bool and np.array_equal(mask, KNOWN[annotator])
    stack = np.stack(list(KNOWN.values()))
    assert np.allclose(display.vote_fraction, stack.mean(axis=0))
    assert display.vote_fraction.dtype == np.float32
    assert np.array_equal(display.majority, majority_vote(stack))
    assert np.allclose(display.entropy, binary_entropy(stack.mean(axis=0)), atol=1e-6)
    assert display.staple is None  # the second stage
    # Outlines at pixel centres in full-resolution coordinates: R1 spans x 2..11, y 2..9.
    r1 = np.vstack(display.layers[0].contours)
    assert r1[:, 0].min() == 2.5 and r1[:, 0].max() == 11.5 and r1[:, 1].max() == 9.5
    assert display.majority_contours and display.nbytes > stack.size


def test_staple_stage_keeps_sensitivity_and_specificity_per_annotator(known):
    display = decode(known)
    stapled = with_staple(display)
    reference = staple(list(KNOWN.values()))
    assert np.array_equal(stapled.staple.mask, reference.mask)
    assert stapled.staple.sensitivity == pytest.approx(reference.sensitivity)
    assert stapled.staple.specificity == pytest.approx(reference.specificity)
    assert stapled.staple.probability.dtype == np.float32
    assert with_staple(stapled) is stapled
    assert stapled.masks is display.masks  # nothing decoded twice


def test_pair_masks_gives_the_symmetric_difference(known):
    display = with_staple(decode(known))
    pair = pair_masks(display, 0, 1)
    assert pair.label_a == "R1" and pair.label_b == "R2"
    assert np.array_equal(pair.only_a, KNOWN["R1"] & ~KNOWN["R2"])
    assert np.array_equal(pair.only_b, KNOWN["R2"] & ~KNOWN["R1"])
    assert pair.only_a[3, 3] and not pair.only_a[6, 9] and pair.only_b[12, 15]
    mv = pair_masks(display, "MV", "STAPLE")
    assert np.array_equal(mv.mask_a, display.majority) and np.array_equal(mv.mask_b, display.staple.mask)
    with pytest.raises(ValueError, match="no mask 7"):
        pair_masks(display, 0, 7)
    with pytest.raises(ValueError, match="STAPLE has not been computed"):
        pair_masks(decode(known), 0, "STAPLE")


def test_pixel_readout_names_the_annotators_at_a_pixel(known):
    display = with_staple(decode(known))
    # (x 9, y 6): inside R1 (cols 2-11, rows 2-9), R2 (cols 8-19, rows 5-14) and R3.
    readout = pixel_readout(display, 9.7, 6.2)
    assert (readout.x, readout.y) == (9, 6)
    assert readout.annotators == (0, 1, 2) and readout.vote_fraction == 1.0 and readout.majority
    # (x 3, y 3): R1 only; 1 of 3 is not a majority.
    readout = pixel_readout(display, 3, 3)
    assert readout.annotators == (0,) and readout.labels == (display.layers[0].label,)
    assert readout.vote_fraction == pytest.approx(1 / 3) and readout.majority is False
    assert readout.staple_probability is not None
    text = readout_text(readout)
    assert text.startswith("x 3, y 3 · 1/3 masks: R1") and "MV no" in text and "vote 0.33" in text
    assert pixel_readout(display, -1, 3) is None and pixel_readout(display, 30, 3) is None
    assert readout_text(None) == ""


def test_large_images_are_sampled_at_display_pixel_centres(tmp_path):
    shape = (400, 4400)  # longest side / 4 <= 2048: the decoder reduces by 4
    rng = np.random.default_rng(1)
    blobs = {f"R{i}": np.kron(rng.random((10, 110)) > 0.5, np.ones((40, 40), bool)) for i in range(2)}
    lesion = load_dataset(make_known(tmp_path / "big", blobs, shape, "x.jpg")).lesion("x")
    display = decode(lesion)
    assert display.display_shape == display_shape(shape) == (100, 1100) == display.image.shape[:2]
    for mask, full in zip(display.masks, blobs.values(), strict=True):
        assert np.array_equal(mask, full[2::4, 2::4])
        assert np.array_equal(to_display(full, (100, 1100)), full[2::4, 2::4])
    # Outlines stay in full-resolution coordinates.
    assert max(np.vstack(display.layers[0].contours)[:, 0]) > 4000
    readout = pixel_readout(display, 4398, 398)
    assert readout.annotators == tuple(i for i, m in enumerate(blobs.values()) if m[398, 4398])


def test_unreadable_mask_becomes_a_problem_and_the_rest_still_count(tmp_path):
    root = make_known(tmp_path / "ds")
    (root / "masks" / "R2" / "x.png").write_bytes(b"not a png")
    display = decode(load_dataset(root).lesion("x"))
    assert display.masks[1] is None and display.layers[1].contours == ()
    assert display.readable == (0, 2)
    assert [p.kind for p in display.problems] == ["unreadable_mask"]
    assert np.allclose(display.vote_fraction, (KNOWN["R1"].astype(float) + KNOWN["R3"]) / 2)
    stapled = with_staple(display)
    assert stapled.staple.sensitivity[1] is None and stapled.staple.sensitivity[0] is not None
    assert pixel_readout(stapled, 3, 3).readable == 2


def test_closing_the_generator_stops_between_files(known):
    job = iter_lesion_display(known)
    assert next(job).done == 1
    job.close()
    with pytest.raises(StopIteration):
        next(job)


class Blob:
    def __init__(self, nbytes):
        self.nbytes = nbytes


def test_display_cache_is_a_byte_bounded_lru():
    cache = DisplayCache(max_bytes=100)
    cache.put("a", Blob(40))
    cache.put("b", Blob(40))
    assert cache.get("a").nbytes == 40  # a is now the most recent
    cache.put("c", Blob(40))  # evicts b, the least recently used
    assert "b" not in cache and "a" in cache and "c" in cache and cache.nbytes == 80
    cache.put("huge", Blob(101))
    assert "huge" not in cache and len(cache) == 2
    cache.put("a", Blob(10))
    assert cache.nbytes == 50
    assert cache.get("zzz") is None and cache.hits == 1 and cache.misses == 1
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_display_cache_is_thread_safe():
    cache = DisplayCache(max_bytes=10_000)

    def fill(offset):
        for i in range(2000):
            cache.put((offset, i % 50), Blob(7 + i % 5))
            cache.get((offset, (i * 7) % 50))

    threads = [threading.Thread(target=fill, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.nbytes <= 10_000
    assert cache.nbytes == sum(cache.get(key).nbytes for key in list(cache._items))


def test_cache_key_names_the_files_and_changes_with_them(known):
    import os

    key = lesion_cache_key(known)
    assert key[0] == "x" and any("R2" in state[0] for state in key[2])
    mask = known.human_segmentations[0].mask_path
    stat = os.stat(mask)
    os.utime(mask, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the mask was edited
    assert lesion_cache_key(known) != key


def test_first_step_carries_the_image_for_an_early_preview(known):
    from iaa_desktop.core.display.lesion import ImagePreview

    first = next(iter_lesion_display(known))
    assert isinstance(first, ImagePreview) and first.done == 1 and first.total == 4
    assert first.image_id == "x" and first.shape == SHAPE and first.image.shape == (*SHAPE, 3)


def test_pair_labels_tell_repeats_apart(tmp_path):
    from iaa_desktop.core.dataset.io import load_dataset as load
    from tests.builders import make_imapp

    lesion = load(make_imapp(tmp_path / "imapp")).lesion("ISIC_0000002")  # A00 twice, A01, A02
    display = decode(lesion)
    assert [layer.segmentation.annotator for layer in display.layers][:2] == ["A00", "A00"]
    pair = pair_masks(display, 0, 1)
    assert (pair.label_a, pair.label_b) == ("A00 #1", "A00 #2")
    assert pair_masks(display, 2, 3).label_a == "A01"


def test_staple_labels_add_each_annotators_rates(known):
    from iaa_desktop.core.display.lesion import staple_labels

    display = decode(known)
    assert staple_labels(display) == ["R1", "R2", "R3"]  # no STAPLE yet: plain labels
    stapled = with_staple(display)
    sens, spec = stapled.staple.sensitivity[1], stapled.staple.specificity[1]
    assert staple_labels(stapled)[1] == f"R2  sens {sens:.2f} spec {spec:.2f}"
