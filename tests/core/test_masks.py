"""The mask decoding policy: every PNG flavour in, a boolean mask and problem records out."""


import cv2
import numpy as np
import pytest
from PIL import Image

from iaa_desktop.core.dataset.images import load_image, read_header_size
from iaa_desktop.core.dataset.masks import _count_intermediate, decode_mask
from iaa_desktop.core.errors import MaskDecodeError
from tests.builders import disk, png_header_only, write_image, write_mask

SHAPE = (30, 40)
TRUTH = disk(SHAPE, (15, 20), 8)


def _kinds(decoded):
    return [p.kind for p in decoded.problems]


@pytest.mark.parametrize("scale", [1, 255])
def test_8bit_gray_zero_one_and_zero_255(tmp_path, scale):
    path = write_mask(tmp_path / "m.png", TRUTH, scale=scale)
    decoded = decode_mask(path, expected_shape=SHAPE)
    assert decoded.problems == ()
    np.testing.assert_array_equal(decoded.mask, TRUTH)


def test_16bit_mask(tmp_path):
    path = tmp_path / "m16.png"
    cv2.imwrite(str(path), TRUTH.astype(np.uint16) * 65535)
    decoded = decode_mask(path)
    assert decoded.problems == ()
    np.testing.assert_array_equal(decoded.mask, TRUTH)


def test_rgb_mask_nonzero_is_foreground(tmp_path):
    rgb = np.zeros((*SHAPE, 3), np.uint8)
    rgb[TRUTH] = (0, 0, 200)  # a red lesion drawn on black
    path = tmp_path / "rgb.png"
    cv2.imwrite(str(path), rgb)
    decoded = decode_mask(path)
    np.testing.assert_array_equal(decoded.mask, TRUTH)
    assert decoded.problems == ()


def test_rgba_with_mask_in_alpha(tmp_path):
    rgba = np.zeros((*SHAPE, 4), np.uint8)
    rgba[..., 3] = TRUTH * 255
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), rgba)
    np.testing.assert_array_equal(decode_mask(path).mask, TRUTH)


def test_palette_png_uses_indices_not_colours(tmp_path):
    img = Image.fromarray(TRUTH.astype(np.uint8), mode="P")
    # Index 0 is drawn white: a colour-based reading would call the background foreground.
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    path = tmp_path / "pal.png"
    img.save(path)
    decoded = decode_mask(path)
    np.testing.assert_array_equal(decoded.mask, TRUTH)
    assert decoded.problems == ()


def test_non_binary_values_reported_nonzero_kept(tmp_path):
    values = TRUTH.astype(np.uint8) * 255
    values[0, 0] = 128
    path = tmp_path / "soft.png"
    cv2.imwrite(str(path), values)
    decoded = decode_mask(path)
    assert _kinds(decoded) == ["non_binary_mask"]
    assert decoded.mask[0, 0] and decoded.mask.sum() == TRUTH.sum() + 1
    assert "soft.png" in decoded.problems[0].message


def test_size_mismatch_reported_mask_returned(tmp_path):
    path = write_mask(tmp_path / "m.png", TRUTH)
    decoded = decode_mask(path, image_id="X", expected_shape=(31, 40))
    assert _kinds(decoded) == ["size_mismatch"]
    assert decoded.mask is not None
    assert "40 x 30" in decoded.problems[0].message and "40 x 31" in decoded.problems[0].message
    assert decoded.problems[0].image_id == "X"


def test_zero_byte_file(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(b"")
    decoded = decode_mask(path)
    assert decoded.mask is None and _kinds(decoded) == ["empty_file"]
    assert "zero.png" in decoded.problems[0].message


def test_truncated_png(tmp_path):
    path = write_mask(tmp_path / "m.png", TRUTH)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    decoded = decode_mask(path)
    assert decoded.mask is None and _kinds(decoded) == ["truncated_file"]


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image")
    decoded = decode_mask(path)
    assert decoded.mask is None and _kinds(decoded) == ["unreadable_mask"]
    assert "notes.png" in decoded.problems[0].message


def test_missing_file(tmp_path):
    decoded = decode_mask(tmp_path / "gone.png")
    assert decoded.mask is None and _kinds(decoded) == ["missing_mask"]


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "dir.png").mkdir()
    decoded = decode_mask(tmp_path / "dir.png")
    assert decoded.mask is None and _kinds(decoded) == ["unreadable_mask"]


def test_decompression_bomb_20000_square_refused_from_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20_000, 20_000))
    decoded = decode_mask(path)
    assert decoded.mask is None and _kinds(decoded) == ["image_too_large"]
    assert "20000 x 20000" in decoded.problems[0].message
    with pytest.raises(MaskDecodeError, match="above the limit"):
        load_image(path)


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    monkeypatch.setattr("iaa_desktop.core.dataset.images.MAX_IMAGE_PIXELS", 100)
    decoded = decode_mask(write_mask(tmp_path / "m.png", TRUTH))
    assert _kinds(decoded) == ["image_too_large"]


def test_load_image_rgb_and_header_size(tmp_path):
    path = write_image(tmp_path / "i.png", SHAPE)
    assert read_header_size(path) == SHAPE
    bgr = cv2.imread(str(path))
    np.testing.assert_array_equal(load_image(path), bgr[..., ::-1])
    assert load_image(path, reduce=2).shape == (15, 20, 3)


def test_load_image_truncated_jpeg_refused(tmp_path):
    path = write_image(tmp_path / "i.jpg", (64, 64))
    data = path.read_bytes()
    path.write_bytes(data[:-200])
    with pytest.raises(MaskDecodeError, match="truncated") as info:
        load_image(path)
    assert info.value.reason == "truncated"


def test_intermediate_counts_are_exact_beyond_float32():
    # 5000 x 4000 = 20 M pixels: OpenCV's float32 histogram could not count 16,777,217 exactly.
    gray = np.full((4000, 5000), 128, np.uint8)
    gray.reshape(-1)[:3] = 255
    gray.reshape(-1)[3:10] = 0
    assert _count_intermediate(gray) == (4000 * 5000 - 10, 2)
    gray[:] = 0
    assert _count_intermediate(gray) == (0, 0)
    gray[0, :7] = 9
    assert _count_intermediate(gray) == (0, 1)


@pytest.mark.parametrize("levels", [(255,), (1,), (128, 255), (3, 9, 200)])
def test_one_pass_decode_reports_as_the_full_decoder(tmp_path, monkeypatch, levels):
    # decode_mask thresholds, counts levels and boxes 8-bit PNGs while decoding; the same
    # file through the general path (decoded pixels, then a histogram) must read the same.
    from iaa_desktop.core.agreement.metrics import foreground_box
    from iaa_desktop.core.dataset import masks

    rng = np.random.default_rng(len(levels))
    values = np.zeros((37, 53), np.uint8)
    values[5:30, 9:44] = rng.choice(levels, (25, 35)).astype(np.uint8)
    path = tmp_path / "m.png"
    cv2.imwrite(str(path), values)
    fused = decode_mask(path, image_id="X", expected_shape=(37, 50))
    monkeypatch.setattr(masks, "decode_png_mask", lambda data: None)
    general = decode_mask(path, image_id="X", expected_shape=(37, 50))
    assert fused.box_known and not general.box_known
    assert fused.box == foreground_box(values) == (5, 9, 30, 44)
    np.testing.assert_array_equal(fused.mask, general.mask)
    assert fused.problems == general.problems
    assert [p.kind for p in fused.problems] == (
        ["size_mismatch"] if len(levels) == 1 else ["non_binary_mask", "size_mismatch"])
