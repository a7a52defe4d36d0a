"""MetricsReloaded's metrics: equal to the reference vectors made with MetricsReloaded itself,
to a full-image distance-transform reference on random masks, and MedPy's values untouched."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from iaa_desktop.core.agreement.boundary import (
    BoundarySpec,
    boundary_metrics,
    mask_bands,
)
from iaa_desktop.core.agreement.metrics import mask_surface, pair_geometry, pair_metrics
from tests.shared_data import TESTDATA_DIR, require_shared

MR_JSON = TESTDATA_DIR / "metricsreloaded_vectors.json"
VECTORS_NPZ = TESTDATA_DIR / "metric_vectors.npz"
SPEC = BoundarySpec(nsd_taus=(1, 2, 5), biou_ds=(1, 2, 3))
# The reference file's keys, in SPEC.columns order.
REFERENCE_KEYS = ("dice", "iou", "hd", "hd95", "assd", "masd", "nsd_tau1", "nsd_tau2",
                  "nsd_tau5", "boundary_iou_d1", "boundary_iou_d2", "boundary_iou_d3")
OVERLAP_KEYS = {"dice", "iou", "nsd_tau1", "nsd_tau2", "nsd_tau5", "boundary_iou_d1",
                "boundary_iou_d2", "boundary_iou_d3"}


def compute(a: np.ndarray, b: np.ndarray, spec: BoundarySpec = SPEC) -> dict[str, float]:
    sa, sb = mask_surface(a), mask_surface(b)
    values = boundary_metrics(sa, sb, pair_geometry(a, b, sa, sb), mask_bands(a, sa, spec.biou_ds),
                              mask_bands(b, sb, spec.biou_ds), spec)
    return dict(zip(spec.columns, values, strict=True))


def reference_pairs():
    require_shared(MR_JSON)
    data = json.loads(MR_JSON.read_text())
    masks = np.load(require_shared(VECTORS_NPZ))
    return data["pairs"], masks


def test_metricsreloaded_vectors_match():
    pairs, masks = reference_pairs()
    assert len(pairs) >= 20
    for pair in pairs:
        got = compute(masks[f"mask__{pair['a']}"], masks[f"mask__{pair['b']}"])
        for key, column in zip(REFERENCE_KEYS, SPEC.columns, strict=True):
            want = pair["metricsreloaded"][key]
            assert not isinstance(want, dict), f"{pair['id']}: reference raised for {key}"
            want = math.nan if want == "nan" else float(want)
            value = got[column]
            if math.isnan(want):
                assert math.isnan(value), (pair["id"], key, value)
            elif key in OVERLAP_KEYS:
                assert value == pytest.approx(want, abs=1e-9), (pair["id"], key)
            else:
                assert value == pytest.approx(want, rel=1e-6, abs=1e-12), (pair["id"], key)


def test_hd95_conventions_differ_on_the_reference_masks():
    """MedPy pools both directions, MetricsReloaded takes the larger directed percentile."""
    pairs, masks = reference_pairs()
    pair = next(p for p in pairs if p["id"] == "blob_a_vs_b")
    a, b = masks[f"mask__{pair['a']}"], masks[f"mask__{pair['b']}"]
    medpy = pair_metrics(a, b)
    mr = compute(a, b)
    assert mr["mr_hd95"] == pytest.approx(pair["metricsreloaded"]["hd95"], rel=1e-6)
    assert mr["mr_hd95"] > medpy.hd95
    assert mr["mr_hd"] == medpy.hd


def full_image_reference(a: np.ndarray, b: np.ndarray, tau: float, d: float) -> tuple[float, float]:
    """NSD and Boundary IoU written as MetricsReloaded does: distance transforms of the image."""
    cross = ndimage.generate_binary_structure(2, 1)
    border_a = a ^ ndimage.binary_erosion(a, cross)
    border_b = b ^ ndimage.binary_erosion(b, cross)
    dt_a = ndimage.distance_transform_edt(~border_a)
    dt_b = ndimage.distance_transform_edt(~border_b)
    nsd = ((dt_b[border_a] <= tau).sum() + (dt_a[border_b] <= tau).sum()) / (
        border_a.sum() + border_b.sum())
    band_a, band_b = (dt_a < d) & a, (dt_b < d) & b
    biou = (band_a & band_b).sum() / (band_a | band_b).sum()
    return float(nsd), float(biou)


@pytest.mark.parametrize("seed", range(6))
def test_random_masks_match_a_full_image_reference(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 70)), int(rng.integers(20, 70)))
    # Smoothed noise: blobs with holes, islands and pieces on the image frame.
    a = ndimage.gaussian_filter(rng.random(shape), 2.0) > 0.5
    b = ndimage.gaussian_filter(rng.random(shape), 2.0) > 0.5
    if not a.any() or not b.any():
        pytest.skip("a random mask came out empty")  # pragma: no cover - seeds chosen non-empty
    spec = BoundarySpec(nsd_taus=(0.5, 1.5, 3.0), biou_ds=(1.0, 2.5, 4.0))
    got = compute(a, b, spec)
    for tau, d in zip(spec.nsd_taus, spec.biou_ds, strict=True):
        nsd, biou = full_image_reference(a, b, tau, d)
        assert got[f"mr_nsd_{tau:g}px"] == pytest.approx(nsd, abs=1e-12)
        assert got[f"mr_boundary_iou_{d:g}px"] == pytest.approx(biou, abs=1e-12)


def test_column_names_carry_convention_and_tolerance():
    spec = BoundarySpec(nsd_taus=(2.0,), biou_ds=(1.0, 1.5))
    assert spec.columns == ("mr_dice", "mr_iou", "mr_hd", "mr_hd95", "mr_assd", "mr_masd",
                            "mr_nsd_2px", "mr_boundary_iou_1px", "mr_boundary_iou_1.5px")


@pytest.mark.parametrize("bad", [{"nsd_taus": (-1.0,)}, {"biou_ds": (0.0,)},
                                 {"nsd_taus": (math.nan,)}])
def test_bad_tolerances_are_refused_with_a_message(bad):
    with pytest.raises(ValueError, match="px|pixels"):
        BoundarySpec(**bad)


def test_empty_mask_policy():
    empty = np.zeros((10, 12), bool)
    blob = empty.copy()
    blob[3:6, 4:8] = True
    both = compute(empty, empty)
    assert both["mr_dice"] == 1.0 and math.isnan(both["mr_iou"])
    assert both["mr_hd"] == 0.0 and both["mr_nsd_1px"] == 1.0 and both["mr_boundary_iou_2px"] == 1.0
    one = compute(blob, empty)
    assert one["mr_dice"] == 0.0 and math.isnan(one["mr_hd95"]) and math.isnan(one["mr_masd"])
    assert one["mr_nsd_5px"] == 0.0 and one["mr_boundary_iou_1px"] == 0.0
