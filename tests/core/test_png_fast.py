"""The fast mask PNG decoder against libpng (OpenCV) and Pillow on the same bytes.

PNGs are built here row by row with every filter type PNG has, so each branch of the
unfilter is checked against libpng's, not against our own reading of the spec.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from iaa_desktop.core.agreement.metrics import foreground_box
from iaa_desktop.core.dataset.masks import decode_mask
from iaa_desktop.core.dataset.png_fast import decode_png, decode_png_mask, decode_png_sampled, warm_up
from tests.builders import png_chunk


def _filter_row(kind: int, row: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filter ``kind`` of one row (bytes), the encoder side of the spec's section 9.2."""
    x = row.astype(np.int32)
    b = prior.astype(np.int32)
    a = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])
    c = np.concatenate([np.zeros(bpp, np.int32), b[:-bpp]])
    if kind == 0:
        pred = np.zeros_like(x)
    elif kind == 1:
        pred = a
    elif kind == 2:
        pred = b
    elif kind == 3:
        pred = (a + b) >> 1
    else:
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return ((x - pred) & 0xFF).astype(np.uint8)


def make_png(pixels: np.ndarray, filters, *, colour: int = 0, depth: int = 8, interlace: int = 0,
             extra: tuple[tuple[bytes, bytes], ...] = (), level: int = 6) -> bytes:
    """A PNG of ``pixels`` (uint8, or uint16 for depth 16) with the given filter type per row."""
    height, width = pixels.shape
    rows = pixels.astype(">u2").view(np.uint8).reshape(height, -1) if depth == 16 else pixels
    bpp = 2 if depth == 16 else 1
    raw = bytearray()
    prior = np.zeros(rows.shape[1], np.uint8)
    for y in range(height):
        kind = filters[y % len(filters)]
        raw.append(kind)
        raw += _filter_row(kind, rows[y], prior, bpp).tobytes()
        prior = rows[y]
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    body = [png_chunk(b"IHDR", ihdr)]
    if colour == 3:
        body.append(png_chunk(b"PLTE", bytes(range(256)) * 3))
    body += [png_chunk(kind, payload) for kind, payload in extra]
    body += [png_chunk(b"IDAT", zlib.compress(bytes(raw), level)), png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(body)


def opencv(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def blob_mask(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A lesion-like mask: long runs of 0 and 255, with ragged edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    radius = 0.3 * min(height, width) * (1 + 0.1 * rng.standard_normal((height, width)))
    inside = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < radius**2
    return np.where(inside, 255, 0).astype(np.uint8)


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (17, 8), (40, 61), (64, 200)])
def test_every_filter_type_matches_libpng(kind, shape):
    rng = np.random.default_rng(kind)
    for pixels in (rng.integers(0, 256, shape, dtype=np.uint8), blob_mask(*shape)):
        data = make_png(pixels, [kind])
        ours = decode_png(data)
        assert ours is not None and ours.dtype == np.uint8
        np.testing.assert_array_equal(ours, opencv(data))
        np.testing.assert_array_equal(ours, pixels)


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 90), seed=st.integers(0, 10_000),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=6), sparse=st.booleans())
def test_random_images_and_filters_match_libpng(height, width, seed, filters, sparse):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
    if sparse:  # mostly zero, as masks are: exercises the skipping of zero words
        pixels[rng.random((height, width)) < 0.95] = 0
    data = make_png(pixels, filters)
    np.testing.assert_array_equal(decode_png(data), opencv(data))


def _fused_matches_libpng(data: bytes) -> None:
    pixels = opencv(data)
    mask, hist, box = decode_png_mask(data)
    assert mask.dtype == np.bool_ and mask.flags.c_contiguous
    np.testing.assert_array_equal(mask, pixels != 0)
    np.testing.assert_array_equal(hist, np.bincount(pixels.ravel(), minlength=256))
    assert box == foreground_box(pixels)


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (17, 8), (40, 61), (64, 200)])
def test_fused_mask_decode_matches_libpng_for_every_filter(kind, shape):
    rng = np.random.default_rng(kind)
    for pixels in (rng.integers(0, 256, shape, dtype=np.uint8), blob_mask(*shape),
                   np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)):
        _fused_matches_libpng(make_png(pixels, [kind]))


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 90), seed=st.integers(0, 10_000),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=6),
       values=st.sampled_from(["any", "mask", "sparse"]))
def test_fused_mask_decode_random_images_match_libpng(height, width, seed, filters, values):
    # Whole words of 0 and of 255 take the fast branches; anything else the byte loop.
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
    if values == "mask":
        pixels = np.where(rng.random((height, width)) < 0.5, 255, 0).astype(np.uint8)
        pixels[:, : width // 3] = 255
    elif values == "sparse":
        pixels[rng.random((height, width)) < 0.95] = 0
    _fused_matches_libpng(make_png(pixels, filters))


def test_fused_mask_decode_of_a_small_lesion_far_from_the_corner():
    pixels = np.zeros((50, 90), np.uint8)
    pixels[20:31, 33:71] = 255
    pixels[25, 17] = 7  # one stray level, left of the rest
    mask, hist, box = decode_png_mask(make_png(pixels, [1, 2, 4]))
    assert box == (20, 17, 31, 71)
    assert hist[7] == 1 and hist[255] == 11 * 38 and hist[0] == 50 * 90 - 11 * 38 - 1
    assert decode_png_mask(make_png(np.zeros((3, 4), np.uint16), [1], depth=16)) is None  # 16-bit: not here


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
def test_sixteen_bit_gray_matches_opencv(kind):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 65536, (23, 37), dtype=np.uint16)
    pixels[:, 10:30] = 0
    data = make_png(pixels, [kind, 1], depth=16)
    ours = decode_png(data)
    assert ours.dtype == np.uint16
    np.testing.assert_array_equal(ours, opencv(data))
    np.testing.assert_array_equal(ours, pixels)


def test_palette_gives_the_indices_as_pillow_does():
    indices = (blob_mask(50, 70) // 255 * 3).astype(np.uint8)  # index 3, whatever its colour
    data = make_png(indices, [0, 1, 2, 4], colour=3)
    with Image.open(io.BytesIO(data)) as img:
        expected = np.asarray(img)
    np.testing.assert_array_equal(decode_png(data), expected)


@pytest.mark.parametrize("writer", ["opencv", "opencv-9", "pillow", "pillow-optimize"])
def test_files_written_by_common_tools(writer, tmp_path):
    mask = blob_mask(301, 403, seed=1)
    if writer.startswith("opencv"):
        params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if writer.endswith("9") else []
        data = cv2.imencode(".png", mask, params)[1].tobytes()
    else:
        buffer = io.BytesIO()
        Image.fromarray(mask).save(buffer, "PNG", optimize=writer.endswith("optimize"))
        data = buffer.getvalue()
    np.testing.assert_array_equal(decode_png(data), mask)
    path = tmp_path / "mask.png"
    path.write_bytes(data)
    decoded = decode_mask(path)
    assert decoded.problems == ()
    np.testing.assert_array_equal(decoded.mask, mask != 0)
    assert decoded.box_known and decoded.box == foreground_box(mask)


def _with_ihdr_byte(data: bytes, offset: int, value: int) -> bytes:
    """``data`` with byte ``offset`` of the IHDR payload changed and its CRC fixed."""
    ihdr = bytearray(data[16:29])
    ihdr[offset] = value
    return data[:8] + png_chunk(b"IHDR", bytes(ihdr)) + data[33:]


@pytest.mark.parametrize("case", ["rgb", "one-bit", "interlaced", "trns", "bad-crc", "short-stream",
                                  "long-stream", "filter-5", "unknown-critical", "not-png", "no-iend"])
def test_other_files_are_left_to_the_full_decoders(case):
    mask = blob_mask(20, 30)
    data = make_png(mask, [1])
    if case == "rgb":
        data = cv2.imencode(".png", cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR))[1].tobytes()
    elif case == "one-bit":
        buffer = io.BytesIO()
        Image.fromarray(mask > 0).save(buffer, "PNG")
        data = buffer.getvalue()
    elif case == "interlaced":
        data = _with_ihdr_byte(data, 12, 1)
    elif case == "trns":
        data = make_png(mask, [1], extra=((b"tRNS", b"\x00\x00"),))
    elif case == "bad-crc":
        data = data[:-20] + bytes([data[-20] ^ 1]) + data[-19:]  # a byte of the IDAT payload or CRC
    elif case == "short-stream":
        data = make_png(mask[:-1], [1])
        data = _with_ihdr_byte(data, 7, 20)  # claims 20 rows, holds 19
    elif case == "long-stream":
        data = _with_ihdr_byte(make_png(mask, [1]), 7, 19)  # claims 19 rows, holds 20
    elif case == "filter-5":
        raw = bytearray(zlib.decompress(make_png(mask, [1])[41:-16]))
        raw[0] = 5
        data = make_png(mask, [1])
        idat = zlib.compress(bytes(raw))
        data = data[:33] + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    elif case == "unknown-critical":
        data = make_png(mask, [1], extra=((b"ABCD", b"x"),))
    elif case == "not-png":
        data = cv2.imencode(".jpg", mask)[1].tobytes()
    elif case == "no-iend":
        data = data[:-12]
    assert decode_png(data) is None
    assert decode_png_mask(data) is None


def test_filter_5_fixture_really_has_one_idat():
    # The "filter-5" case above slices the IDAT payload out by offset; this guards that.
    data = make_png(blob_mask(20, 30), [1])
    length, kind = struct.unpack(">I4s", data[33:41])
    assert kind == b"IDAT" and 41 + length + 4 == len(data) - 12


def test_damaged_mask_keeps_its_message(tmp_path):
    data = make_png(blob_mask(20, 30), [1])
    idat_start = 41
    damaged = data[:idat_start + 4] + bytes(8) + data[idat_start + 12:]  # CRC now wrong, stream garbled
    path = tmp_path / "damaged.png"
    path.write_bytes(damaged)
    decoded = decode_mask(path)
    assert decoded.mask is None
    assert "not a readable image" in decoded.problems[0].message


def test_warm_up_runs():
    warm_up()
    assert decode_png(make_png(np.zeros((2, 9), np.uint8), [1])).shape == (2, 9)


# -- decode_png_sampled: the first view's display-size look at a mask -------------------------


def _sorted_indices(rng, size: int, count: int) -> np.ndarray:
    return np.sort(rng.integers(0, size, count))


@settings(max_examples=80, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 90), seed=st.integers(0, 10_000),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=6), sparse=st.booleans(),
       depth=st.sampled_from([8, 16]))
def test_sampled_pixels_are_those_of_the_full_decode(height, width, seed, filters, sparse, depth):
    # Rows are sampled sparsely, so rows whose filter reads the row above depend on rows
    # that are unfiltered only for them: every filter mix must give the full decode's pixels.
    rng = np.random.default_rng(seed)
    top = 65536 if depth == 16 else 256
    pixels = rng.integers(0, top, (height, width)).astype(np.uint16 if depth == 16 else np.uint8)
    if sparse:
        pixels[rng.random((height, width)) < 0.8] = 0
    data = make_png(pixels, filters, depth=depth)
    rows = _sorted_indices(rng, height, rng.integers(1, 12))  # repeats allowed, as when upsampling
    cols = rng.integers(0, width, rng.integers(1, 20))  # any order
    sampled = decode_png_sampled(data, rows, cols)
    assert sampled is not None and sampled.dtype == np.bool_
    np.testing.assert_array_equal(sampled, decode_png(data)[np.ix_(rows, cols)] != 0)


def test_sampling_a_palette_png_takes_non_zero_indices():
    indices = (blob_mask(50, 70) // 255 * 3).astype(np.uint8)
    indices[:5] = 0
    data = make_png(indices, [0, 1, 2, 4], colour=3)
    rows, cols = np.arange(0, 50, 3), np.arange(1, 70, 4)
    np.testing.assert_array_equal(decode_png_sampled(data, rows, cols), indices[np.ix_(rows, cols)] != 0)


def test_sampling_declines_what_the_full_decoder_declines():
    pixels = blob_mask(20, 30)
    good = make_png(pixels, [1])
    rows, cols = np.arange(20), np.arange(30)
    assert decode_png_sampled(make_png(pixels, [1], interlace=1), rows, cols) is None
    assert decode_png_sampled(make_png(pixels, [1], extra=((b"tRNS", b"\x00"),)), rows, cols) is None
    assert decode_png_sampled(good[:-20], rows, cols) is None  # truncated
    assert decode_png_sampled(good, np.array([20]), cols) is None  # a row outside the image
    assert decode_png_sampled(good, np.array([3, 1]), cols) is None  # rows must be sorted
    assert decode_png_sampled(good, rows, np.array([-1])) is None
    # A bad filter type in a row that is not sampled still makes the file undecodable here.
    raw = bytearray(zlib.decompress(good[good.index(b"IDAT") + 4:-16]))
    raw[19 * 31] = 5
    ihdr = struct.pack(">IIBBBBB", 30, 20, 8, 0, 0, 0, 0)
    bad = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(raw)))
           + png_chunk(b"IEND", b""))
    assert decode_png(bad) is None and decode_png_sampled(bad, np.array([0]), np.array([0])) is None
