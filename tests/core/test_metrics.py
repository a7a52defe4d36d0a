"""Pairwise metrics: equal to MedPy on the shared vectors, to a full-image reference on
random masks, and to the documented empty-mask policies."""

from __future__ import annotations

import json
import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from iaa_desktop.core.agreement.metrics import (
    METRIC_COLUMNS,
    MaskSurface,
    PairMetrics,
    mask_surface,
    pair_metrics,
)
from tests.shared_data import TESTDATA_DIR, require_shared

VECTORS_JSON = TESTDATA_DIR / "metric_vectors.json"
VECTORS_NPZ = TESTDATA_DIR / "metric_vectors.npz"
FIELDS = ("dice", "jaccard", "hd", "hd95", "assd", "hd_normalized", "hd95_normalized",
          "assd_normalized")
OVERLAP = ("dice", "jaccard")
DISTANCES = FIELDS[2:5]
NORMALIZED = FIELDS[5:]


# --- reference: MedPy's algorithm over the full image, no cropping --------------------------

def reference_metrics(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """MedPy 0.5's dc, jc, hd, hd95 and assd, written out with scipy.ndimage (non-empty masks)."""
    a, b = a.astype(bool), b.astype(bool)
    cross = ndimage.generate_binary_structure(2, 1)
    border_a = a ^ ndimage.binary_erosion(a, structure=cross, iterations=1)
    border_b = b ^ ndimage.binary_erosion(b, structure=cross, iterations=1)
    d_ab = ndimage.distance_transform_edt(~border_b)[border_a]
    d_ba = ndimage.distance_transform_edt(~border_a)[border_b]
    inter = np.count_nonzero(a & b)
    pooled = np.hstack((d_ab, d_ba))
    diag = math.hypot(*a.shape)
    out = {
        "dice": 2.0 * inter / float(a.sum() + b.sum()),
        "jaccard": inter / float(np.count_nonzero(a | b)),
        "hd": max(d_ab.max(), d_ba.max()),
        "hd95": float(np.percentile(pooled, 95)),
        "assd": float(pooled.mean()),
    }
    out.update({f"{k}_normalized": out[k] / diag for k in DISTANCES})
    return out


def assert_matches(got: PairMetrics, want: dict, *, rel: float = 1e-6) -> None:
    for name in FIELDS:
        value, expected = getattr(got, name), float(want[name])
        if name in OVERLAP:
            assert value == pytest.approx(expected, abs=1e-9, rel=0), name
        else:
            assert value == pytest.approx(expected, rel=rel, abs=1e-12), name


# --- shared MedPy vectors --------------------------------------------------------------------

@cache
def _vectors() -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(VECTORS_NPZ) as npz:
        arrays_ = {k: npz[k] for k in npz.files}
    return json.loads(VECTORS_JSON.read_text()), arrays_


def _pair_ids() -> list[str]:
    if not VECTORS_JSON.exists():
        return ["shared-data-missing"]
    return [p["id"] for p in json.loads(VECTORS_JSON.read_text())["pairs"]]


def _pair(pair_id: str) -> tuple[dict, np.ndarray, np.ndarray]:
    require_shared(VECTORS_JSON)
    require_shared(VECTORS_NPZ)
    data, npz = _vectors()
    entry = next(p for p in data["pairs"] if p["id"] == pair_id)
    return entry, npz[f"mask__{entry['a']}"], npz[f"mask__{entry['b']}"]


def _is_error(value: object) -> bool:
    return isinstance(value, dict) and "error" in value


@pytest.mark.parametrize("pair_id", _pair_ids())
def test_medpy_vectors(pair_id: str) -> None:
    entry, a, b = _pair(pair_id)
    medpy = entry["medpy"]
    got = pair_metrics(a, b)
    if _is_error(medpy["hd"]):
        # MedPy raised: a mask is empty, so the IMA++ policy applies.
        assert not (a.any() and b.any())
        assert got.dice == got.jaccard == 0.0
        assert all(math.isnan(getattr(got, k)) for k in DISTANCES)
        assert all(getattr(got, k) == 1.0 for k in NORMALIZED)
        return
    assert_matches(got, medpy)
    assert len(mask_surface(a).border) == medpy["n_border_px_a"]
    assert len(mask_surface(b).border) == medpy["n_border_px_b"]


@pytest.mark.parametrize("pair_id", _pair_ids())
def test_medpy_vectors_nan_policy_overlaps(pair_id: str) -> None:
    entry, a, b = _pair(pair_id)
    medpy = entry["medpy"]
    got = pair_metrics(a, b, empty_policy="nan")
    if not _is_error(medpy["hd"]):
        assert_matches(got, medpy)
        return
    assert all(math.isnan(getattr(got, k)) for k in DISTANCES + NORMALIZED)
    # MedPy's jc gives 1 for two empty masks; its dc does too with numpy <= 2.2 (the
    # vectors, made with numpy 2.4, record nan: see the README key).
    assert got.jaccard == float(medpy["jaccard"])
    assert got.dice == (1.0 if medpy["dice"] == "nan" else float(medpy["dice"]))


def test_medpy_vectors_with_precomputed_surfaces() -> None:
    require_shared(VECTORS_NPZ)
    _, npz = _vectors()
    names = ["mask__blob_a", "mask__blob_b", "mask__blob_c", "mask__disk60_hole"]
    surfaces = {n: mask_surface(npz[n]) for n in names}
    for x in names:
        for y in names:
            raw = pair_metrics(npz[x], npz[y])
            cached = pair_metrics(npz[x], npz[y], surface_a=surfaces[x], surface_b=surfaces[y])
            assert raw == cached


# --- empty-mask policy -----------------------------------------------------------------------

def _disk(shape=(32, 40), center=(15, 20), radius=8.0) -> np.ndarray:
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2


@pytest.mark.parametrize("which", ["first", "second", "both"])
def test_empty_imapp_policy(which: str) -> None:
    full, empty = _disk(), np.zeros((32, 40), bool)
    a = empty if which in ("first", "both") else full
    b = empty if which in ("second", "both") else full
    for got in (pair_metrics(a, b), pair_metrics(a, b, empty_policy="imapp")):
        assert got.dice == 0.0 and got.jaccard == 0.0
        assert all(math.isnan(getattr(got, k)) for k in DISTANCES)
        assert all(getattr(got, k) == 1.0 for k in NORMALIZED)


@pytest.mark.parametrize("which", ["first", "second", "both"])
def test_empty_nan_policy(which: str) -> None:
    full, empty = _disk(), np.zeros((32, 40), np.uint8)
    a = empty if which in ("first", "both") else full
    b = empty if which in ("second", "both") else full
    got = pair_metrics(a, b, empty_policy="nan")
    expected_overlap = 1.0 if which == "both" else 0.0
    assert got.dice == got.jaccard == expected_overlap
    assert all(math.isnan(getattr(got, k)) for k in DISTANCES + NORMALIZED)


def test_empty_surface() -> None:
    s = mask_surface(np.zeros((5, 7), np.uint8))
    assert s.is_empty and s.bbox is None and s.foreground_px == 0 and s.shape == (5, 7)
    assert s.border.shape == (0, 2) and s.border.dtype == np.int32
    assert mask_surface(np.zeros((0, 4), bool)).is_empty


def test_bad_arguments() -> None:
    a = _disk()
    with pytest.raises(ValueError, match="empty_policy"):
        pair_metrics(a, a, empty_policy="medpy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        pair_metrics(a, a[:-1])
    with pytest.raises(ValueError, match="surface_b"):
        pair_metrics(a, a, surface_b=mask_surface(a[:-1]))
    with pytest.raises(ValueError, match="2-D"):
        mask_surface(np.zeros((2, 3, 4), bool))
    with pytest.raises(ValueError, match="2-D"):
        pair_metrics(a.tolist(), a)  # type: ignore[arg-type]


# --- hand-checked cases ----------------------------------------------------------------------

def test_identical() -> None:
    a = _disk()
    got = pair_metrics(a, a.copy())
    assert got == PairMetrics(1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_disjoint_single_pixels() -> None:
    a = np.zeros((20, 30), bool)
    b = a.copy()
    a[2, 3] = True
    b[10, 7] = True
    got = pair_metrics(a, b)
    d = math.hypot(8, 4)
    assert got.dice == 0.0 and got.jaccard == 0.0
    assert got.hd == got.hd95 == got.assd == pytest.approx(d, rel=1e-12)
    assert got.hd_normalized == pytest.approx(d / math.hypot(20, 30), rel=1e-12)


def test_nested_squares() -> None:
    outer = np.zeros((30, 30), bool)
    outer[5:25, 5:25] = True  # 20 x 20
    inner = np.zeros_like(outer)
    inner[10:20, 10:20] = True  # 10 x 10, 5 px inside on every side
    got = pair_metrics(outer, inner)
    assert got.dice == pytest.approx(2 * 100 / 500, abs=1e-12)
    assert got.jaccard == pytest.approx(100 / 400, abs=1e-12)
    # Outer corner to inner corner is the farthest any border pixel is from the other border.
    assert got.hd == pytest.approx(5 * math.sqrt(2), rel=1e-12)
    assert_matches(got, reference_metrics(outer, inner), rel=1e-12)


def test_one_pixel_and_corner() -> None:
    a = np.zeros((9, 11), np.uint8)
    a[0, 0] = 255
    s = mask_surface(a)
    assert s.foreground_px == 1 and s.bbox == (0, 0, 1, 1)
    assert s.border.tolist() == [[0, 0]]
    b = np.zeros_like(a)
    b[8, 10] = 1
    got = pair_metrics(a, b)
    assert got.hd == got.hd95 == got.assd == pytest.approx(math.hypot(8, 10), rel=1e-12)
    assert got.hd_normalized == pytest.approx(math.hypot(8, 10) / math.hypot(9, 11), rel=1e-12)
    assert pair_metrics(a, a) == PairMetrics(1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_full_image_border_is_the_frame() -> None:
    s = mask_surface(np.ones((6, 5), bool))
    assert s.foreground_px == 30 and s.bbox == (0, 0, 6, 5)
    frame = {(r, c) for r in range(6) for c in range(5) if r in (0, 5) or c in (0, 4)}
    assert {tuple(p) for p in s.border.tolist()} == frame
    # Row-major order, as MedPy's dt[border] reads the distances.
    assert s.border.tolist() == sorted(s.border.tolist())
    assert not s.border.flags.writeable


@pytest.mark.parametrize(
    "convert",
    [
        lambda m: m,
        lambda m: m.astype(np.uint8),
        lambda m: m.astype(np.uint8) * 255,
        lambda m: m.astype(np.int64) * 7,
        lambda m: m.astype(np.float32),
        lambda m: np.asfortranarray(m),
        lambda m: np.ascontiguousarray(m.T).T,
        lambda m: np.where(m, np.uint8(3), np.uint8(0)) | np.uint8(0),
        lambda m: m.astype(np.int8) * -1,
    ],
    ids=["bool", "u8_01", "u8_0255", "int64", "float32", "fortran", "transposed_view", "u8_3",
         "int8_neg"],
)
def test_input_dtypes_and_layouts(convert) -> None:
    a, b = _disk(), _disk(center=(18, 17), radius=10.5)
    want = pair_metrics(a, b)
    assert pair_metrics(convert(a), convert(b)) == want
    assert mask_surface(convert(a)).border.tolist() == mask_surface(a).border.tolist()


def test_as_dict_uses_imapp_columns() -> None:
    got = pair_metrics(_disk(), _disk(center=(16, 22)))
    d = got.as_dict()
    assert tuple(d) == METRIC_COLUMNS
    assert list(d.values()) == [getattr(got, f) for f in FIELDS]


def test_surface_is_frozen() -> None:
    s = mask_surface(_disk())
    assert isinstance(s, MaskSurface)
    with pytest.raises(AttributeError):
        s.foreground_px = 3  # type: ignore[misc]


# --- property: cropping and the k-d tree change nothing --------------------------------------

@st.composite
def mask_pairs(draw) -> tuple[np.ndarray, np.ndarray]:
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))

    def one() -> np.ndarray:
        # Foreground confined to a random sub-rectangle, so crops differ from the image.
        r0, c0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        r1, c1 = draw(st.integers(r0 + 1, h)), draw(st.integers(c0 + 1, w))
        block = draw(arrays(np.bool_, (r1 - r0, c1 - c0), elements=st.booleans(),
                            fill=st.sampled_from([True, False])))
        mask = np.zeros((h, w), bool)
        mask[r0:r1, c0:c1] = block
        return mask

    return one(), one()


def medpy_border(mask: np.ndarray) -> np.ndarray:
    mask = mask.astype(bool)
    cross = ndimage.generate_binary_structure(2, 1)
    return np.argwhere(mask ^ ndimage.binary_erosion(mask, structure=cross, iterations=1))


def assert_surface_is_medpys(mask: np.ndarray) -> None:
    s = mask_surface(mask)
    assert s.border.dtype == np.int32
    assert s.border.tolist() == medpy_border(mask).tolist()  # same pixels, row-major
    assert s.foreground_px == np.count_nonzero(mask)
    if s.foreground_px:
        rows, cols = np.nonzero(mask)
        assert s.bbox == (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)


@pytest.mark.parametrize(
    "mask",
    [
        np.indices((7, 9)).sum(axis=0) % 2 == 0,  # checkerboard: diagonal-only neighbours
        np.pad(np.ones((3, 3), bool), 2) ^ np.pad([[True]], 3),  # 1-px hole
        np.eye(12, dtype=bool) | np.eye(12, dtype=bool)[::-1],  # 1-px diagonal lines
        np.pad(np.ones((1, 8), bool), ((4, 4), (0, 0))),  # 1-px line touching the frame
        ndimage.binary_dilation(np.pad([[True]], 10), iterations=8)
        ^ ndimage.binary_dilation(np.pad([[True]], 10), iterations=3),  # ring
    ],
    ids=["checkerboard", "pixel_hole", "diagonals", "line_on_frame", "ring"],
)
def test_border_is_medpys_on_thin_shapes(mask: np.ndarray) -> None:
    assert_surface_is_medpys(mask)


@settings(max_examples=150, deadline=None)
@given(pair=mask_pairs())
def test_border_is_medpys(pair) -> None:
    for mask in pair:
        assert_surface_is_medpys(mask)


@settings(max_examples=150, deadline=None)
@given(pair=mask_pairs(), as_uint8=st.booleans())
def test_matches_full_image_reference(pair, as_uint8: bool) -> None:
    a, b = pair
    if as_uint8:
        a, b = a.astype(np.uint8) * 255, b.astype(np.uint8)
    got = pair_metrics(a, b)
    if not (a.any() and b.any()):
        assert got.dice == 0.0 and math.isnan(got.hd) and got.hd_normalized == 1.0
        return
    assert_matches(got, reference_metrics(a, b), rel=1e-9)


def test_reference_is_medpy() -> None:
    """The full-image reference above is MedPy itself, on masks with islands and holes."""
    medpy = pytest.importorskip("medpy.metric.binary")
    rng = np.random.default_rng(7)
    for _ in range(5):
        a = ndimage.binary_opening(rng.random((37, 29)) < 0.55)
        b = ndimage.binary_closing(rng.random((37, 29)) < 0.45)
        want = reference_metrics(a, b)
        got = {"dice": medpy.dc(a, b), "jaccard": medpy.jc(a, b), "hd": medpy.hd(a, b),
               "hd95": medpy.hd95(a, b), "assd": medpy.assd(a, b)}
        for k, v in got.items():
            assert v == pytest.approx(want[k], rel=1e-12), k
        assert_matches(pair_metrics(a, b), want, rel=1e-12)


def test_row_search_distances_equal_a_kd_tree():
    """The row-by-row nearest-border search gives a k-d tree's exact distances bit for bit:
    scattered, clustered and far-apart point sets, single rows and single points."""
    from scipy.spatial import cKDTree

    from iaa_desktop.core.agreement.metrics import MaskSurface, _directed_distances, border_index

    rng = np.random.default_rng(19)
    for trial in range(300):
        spread = int(rng.choice([3, 50, 2000]))
        source = rng.integers(0, spread, (int(rng.integers(1, 300)), 2)).astype(np.int32)
        target = rng.integers(0, spread, (int(rng.integers(1, 300)), 2))
        if trial % 7 == 0:
            target[:, 0] = target[0, 0]  # one row
        if trial % 11 == 0:
            target = target + 5 * spread  # far from every source point
        key = np.unique(target[:, 0].astype(np.int64) * 100_000 + target[:, 1])
        target = np.stack([key // 100_000, key % 100_000], 1).astype(np.int32)  # row-major
        reference = cKDTree(target.astype(np.float64)).query(source.astype(np.float64), k=1)[0]
        index = border_index(MaskSurface((0, 0), 1, None, target))
        np.testing.assert_array_equal(_directed_distances(source, target, index), reference)
