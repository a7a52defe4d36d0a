"""What the lesion viewer draws, computed without Qt (iaa_desktop.core.display.overlay)."""

import re
from dataclasses import replace

import numpy as np
import pytest

from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.display.overlay import (
    LESION_TABLE_COLUMNS,
    display_reduction,
    iter_lesion_overlay,
    join_contours,
    lesion_table_frame,
    mask_contours,
    segmentation_label,
)
from iaa_desktop.core.palette import ANNOTATOR_COLOURS, OKABE_ITO, annotator_colour
from iaa_desktop.core.progress import run_to_end
from tests.builders import disk, make_folder, make_imapp


def test_okabe_ito_palette_is_exact_and_annotators_skip_black():
    assert OKABE_ITO == {
        "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
        "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
    }
    assert len(ANNOTATOR_COLOURS) == 7 == len(set(ANNOTATOR_COLOURS))
    assert set(ANNOTATOR_COLOURS) == set(OKABE_ITO.values()) - {"#000000"}
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in ANNOTATOR_COLOURS)
    assert annotator_colour(0) == ANNOTATOR_COLOURS[0]
    assert annotator_colour(7) == ANNOTATOR_COLOURS[0]


def test_empty_mask_has_no_contours():
    assert mask_contours(np.zeros((10, 12), bool)) == []


def test_rectangle_contour_runs_through_pixel_centres_and_is_closed():
    mask = np.zeros((10, 12), np.uint8)
    mask[2:6, 3:9] = 255
    (contour,) = mask_contours(mask)
    assert contour.dtype == np.float64 and contour.shape[1] == 2
    np.testing.assert_array_equal(contour[0], contour[-1])
    assert (contour[:, 0].min(), contour[:, 0].max()) == (3.5, 8.5)  # x: columns 3..8
    assert (contour[:, 1].min(), contour[:, 1].max()) == (2.5, 5.5)  # y: rows 2..5


def test_two_regions_and_a_hole_give_one_contour_each():
    mask = np.zeros((40, 60), bool)
    mask |= disk(mask.shape, (20, 15), 10)
    mask &= ~disk(mask.shape, (20, 15), 4)  # a hole
    mask |= disk(mask.shape, (20, 45), 6)
    assert len(mask_contours(mask)) == 3


def test_mask_contours_refuses_non_2d():
    with pytest.raises(ValueError, match="2-D"):
        mask_contours(np.zeros((4, 4, 3)))


def test_join_contours_lifts_the_pen_between_outlines():
    a, b = np.zeros((5, 2)), np.ones((4, 2))
    points, connect = join_contours([a, b])
    assert points.shape == (9, 2)
    assert connect.dtype == bool
    assert not connect[4] and not connect[8]
    assert connect.sum() == 7
    points, connect = join_contours([])
    assert points.shape == (0, 2) and connect.shape == (0,)


def test_lesion_table_frame_on_the_folder_layout(tmp_path):
    dataset = load_dataset(make_folder(tmp_path / "ds"))
    frame = lesion_table_frame(dataset)
    assert list(frame.columns) == list(LESION_TABLE_COLUMNS)
    assert frame["image_id"].tolist() == ["a", "b", "c"]
    assert frame["diagnosis"].tolist() == ["nevus", "melanoma", "nevus"]
    assert frame["split"].tolist() == ["train", "test", "val"]
    assert frame["annotators"].tolist() == [2, 2, 1]  # R1 and R2; MV is consensus
    assert frame["masks"].tolist() == [3, 2, 1]  # a: R1, R2 and the MV mask
    assert str(frame["annotators"].dtype) == "int64"


def test_lesion_table_frame_counts_repeats_once_as_annotators(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "imapp"))
    frame = lesion_table_frame(dataset).set_index("image_id")
    # ISIC_0000001: A00, A01 + ST, MV; ISIC_0000002: A00 twice, A01, A02.
    assert frame.loc["ISIC_0000001", ["annotators", "masks"]].tolist() == [2, 4]
    assert frame.loc["ISIC_0000002", ["annotators", "masks"]].tolist() == [3, 4]
    assert frame.loc["ISIC_0000002", "benign_malignant"] == "malignant"


def test_display_reduction():
    assert display_reduction((768, 1024)) == 1
    assert display_reduction((2048, 2048)) == 1
    assert display_reduction((3000, 4000)) == 2
    assert display_reduction((4500, 6800)) == 4
    assert display_reduction((30000, 30000)) == 8
    assert display_reduction((60, 80), max_side=32) == 4


def test_lesion_overlay_has_one_coloured_layer_per_human_mask(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "imapp", shape=(48, 64)))
    lesion = dataset.lesion("ISIC_0000002")
    steps = []
    overlay = run_to_end(iter_lesion_overlay(lesion), steps.append)
    assert len(steps) == 5 and steps[-1].done == steps[-1].total == 5  # image + 4 masks
    assert overlay.image_id == "ISIC_0000002"
    assert overlay.image.shape == (48, 64, 3) and overlay.image.dtype == np.uint8
    assert overlay.shape == (48, 64)
    assert [layer.segmentation.annotator for layer in overlay.layers] == ["A00", "A00", "A01", "A02"]
    assert [layer.colour for layer in overlay.layers] == list(ANNOTATOR_COLOURS[:4])
    assert overlay.layers[0].label == "A00 · T1 · S1"
    assert all(len(layer.contours) == 1 for layer in overlay.layers)
    assert overlay.problems == ()


def test_consensus_masks_are_not_layers(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "imapp"))
    overlay = run_to_end(iter_lesion_overlay(dataset.lesion("ISIC_0000001")))
    assert [layer.segmentation.annotator for layer in overlay.layers] == ["A00", "A01"]


def test_downscaled_image_keeps_full_resolution_contours(tmp_path):
    dataset = load_dataset(make_folder(tmp_path / "ds", shape=(60, 80)))
    overlay = run_to_end(iter_lesion_overlay(dataset.lesion("a"), max_side=32))
    assert overlay.image.shape == (15, 20, 3)
    assert overlay.shape == (60, 80)
    (contour,) = overlay.layers[0].contours  # R1: a disk of radius 10 at row 20, column 25
    assert contour[:, 0].min() == pytest.approx(15.5) and contour[:, 0].max() == pytest.approx(35.5)


def test_unreadable_mask_and_missing_image_become_problems(tmp_path):
    root = make_folder(tmp_path / "ds", shape=(40, 50))
    (root / "masks" / "R2" / "a.png").write_bytes(b"not a png")
    (root / "images" / "a.png").unlink()
    dataset = load_dataset(root)
    overlay = run_to_end(iter_lesion_overlay(dataset.lesion("a")))
    assert overlay.image is None
    assert overlay.shape == (40, 50)  # from the readable mask
    r1, r2 = overlay.layers
    assert len(r1.contours) == 1 and r2.contours == ()
    assert [p.kind for p in overlay.problems] == ["unreadable_mask"]


def test_segmentation_label_leaves_out_unknown_codes(tmp_path):
    dataset = load_dataset(make_folder(tmp_path / "ds"))
    r1 = dataset.lesion("a").segmentations[0]
    assert segmentation_label(r1) == "R1 · T1 · S1"
    assert segmentation_label(replace(r1, tool="", skill="")) == "R1"
