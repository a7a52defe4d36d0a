"""One lesion's pair matrix: values from the pairwise rows, identities, repeats, consensus, colours."""

import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps

from iaa_desktop.core.agreement.engine import iter_dataset_agreement
from iaa_desktop.core.agreement.lesion import lesion_agreement
from iaa_desktop.core.agreement.metrics import pair_metrics
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.dataset.masks import decode_mask
from iaa_desktop.core.display.pair_matrix import (
    NEUTRAL_RGBA,
    OVERLAP_METRICS,
    PAIR_METRICS,
    format_value,
    heatmap_colours,
    lesion_agreement_from_table,
    pair_matrices,
    pair_matrix,
)
from iaa_desktop.core.figures.style import HEATMAP_CMAP
from iaa_desktop.core.progress import run_to_end
from tests.builders import make_folder, make_imapp


@pytest.fixture(scope="module")
def imapp(tmp_path_factory):
    return load_dataset(make_imapp(tmp_path_factory.mktemp("imapp") / "r"))


def _rows(agreement):
    return pd.DataFrame(agreement.pairs, columns=list(agreement.pair_columns))


@pytest.mark.parametrize("metric", list(PAIR_METRICS))
def test_cells_hold_the_pairwise_values_and_the_diagonal_the_identity(imapp, metric):
    lesion = imapp.lesion("ISIC_0000002")
    agreement = lesion_agreement(lesion)
    matrix = pair_matrix(agreement, lesion, metric)
    n = len(lesion.human_segmentations)
    assert matrix.values.shape == (n, n)
    np.testing.assert_array_equal(matrix.values, matrix.values.T)
    identity = 1.0 if metric in OVERLAP_METRICS else 0.0
    assert np.all(np.diag(matrix.values) == identity)
    rows = _rows(agreement)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            pair = matrix.cell_masks(i, j)
            names = {pair.first.name, pair.second.name}
            hit = rows[rows["mask1"].isin(names) & rows["mask2"].isin(names)]
            assert len(hit) == 1
            assert pair.value == hit[metric].iloc[0]


def test_a_repeated_annotator_keeps_two_rows_that_map_back_to_their_masks(imapp):
    lesion = imapp.lesion("ISIC_0000002")
    matrix = pair_matrix(lesion_agreement(lesion), lesion, "dice_score")
    segs = lesion.human_segmentations
    assert [m.key for m in matrix.masks] == list(range(len(segs)))
    assert [m.name for m in matrix.masks] == [s.name for s in segs]
    repeats = [m.label for m in matrix.masks if m.annotator == "A00"]
    assert len(repeats) == 2 and repeats[0] != repeats[1]
    assert [m.short_label for m in matrix.masks if m.annotator == "A00"] == ["A00 #1", "A00 #2"]
    # The two repeats are measured against each other, straight from their masks.
    pair = matrix.cell_masks(0, 1)
    a, b = (decode_mask(segs[k].mask_path).mask for k in pair.keys)
    assert pair.value == pair_metrics(a, b).dice


def test_consensus_rows_are_optional_and_keyed_staple_and_mv(imapp):
    lesion = imapp.lesion("ISIC_0000001")  # ships ST and MV masks
    agreement = lesion_agreement(lesion)
    without = pair_matrix(agreement, lesion, "dice_score")
    with_consensus = pair_matrix(agreement, lesion, "dice_score", include_consensus=True)
    assert all(not m.is_consensus for m in without.masks)
    assert [m.key for m in with_consensus.masks][-2:] == ["STAPLE", "MV"]
    st = lesion.consensus_segmentations[0]
    assert with_consensus.masks[-2].name == st.name
    rows = _rows(agreement)
    expected = rows[(rows["annotator1"] == "ST") & (rows["annotator2"] == "MV")]["dice_score"].iloc[0]
    n = len(with_consensus.masks)
    assert with_consensus.cell_masks(n - 1, n - 2).value == expected
    # Same human block either way.
    np.testing.assert_array_equal(with_consensus.values[:2, :2], without.values)


def test_folder_masks_with_one_file_name_are_told_apart_by_annotator(tmp_path):
    dataset = load_dataset(make_folder(tmp_path / "ds"))
    lesion = dataset.lesion("a")
    matrix = pair_matrix(lesion_agreement(lesion), lesion, "hd95_score", include_consensus=True)
    assert [m.key for m in matrix.masks] == [0, 1, "MV"]
    assert [m.annotator for m in matrix.masks] == ["R1", "R2", "MV"]
    masks = [decode_mask(s.mask_path).mask for s in lesion.human_segmentations]
    assert matrix.values[0, 1] == pair_metrics(masks[0], masks[1]).hd95


def test_a_lesion_without_pairs_gives_an_empty_matrix(imapp):
    lesion = imapp.lesion("ISIC_0000003")
    matrix = pair_matrix(lesion_agreement(lesion), lesion)
    assert matrix.values.shape == (0, 0)
    with pytest.raises(IndexError):
        matrix.cell_masks(0, 0)


def test_bad_metric_and_cells_outside_are_refused(imapp):
    lesion = imapp.lesion("ISIC_0000002")
    agreement = lesion_agreement(lesion)
    with pytest.raises(ValueError, match="metric"):
        pair_matrix(agreement, lesion, "img_id")
    with pytest.raises(IndexError):
        pair_matrix(agreement, lesion).cell_masks(0, 9)


def test_pairs_from_the_dataset_table_give_the_same_matrices(imapp):
    result = run_to_end(iter_dataset_agreement(imapp, workers=1, cache=None))
    for image_id in ("ISIC_0000001", "ISIC_0000002"):
        lesion = imapp.lesion(image_id)
        direct = pair_matrices(lesion_agreement(lesion), lesion)
        from_table = pair_matrices(lesion_agreement_from_table(result.pairwise, lesion), lesion)
        assert direct.keys() == from_table.keys() == {(m, c) for m in PAIR_METRICS for c in (False, True)}
        for key, matrix in direct.items():
            np.testing.assert_array_equal(matrix.values, from_table[key].values)
            assert matrix.masks == from_table[key].masks


def test_to_frame_labels_rows_and_columns(imapp):
    lesion = imapp.lesion("ISIC_0000002")
    matrix = pair_matrix(lesion_agreement(lesion), lesion, "assd_score")
    frame = matrix.to_frame()
    assert list(frame["mask"]) == matrix.labels
    assert list(frame.columns[1:]) == matrix.labels
    np.testing.assert_array_equal(frame.iloc[:, 1:].to_numpy(), matrix.values)


def test_good_agreement_looks_the_same_for_overlaps_and_distances():
    dice = np.array([[1.0, 0.6], [0.6, 1.0]])
    distance = np.array([[0.0, 12.0], [12.0, 0.0]])
    overlap_colours = heatmap_colours(dice, True, (0.6, 1.0))
    distance_colours = heatmap_colours(distance, False, (0.0, 12.0))
    # Dice 1 and distance 0 share a colour; so do the worst ends of both ranges.
    np.testing.assert_array_equal(overlap_colours.rgba[0, 0], distance_colours.rgba[0, 0])
    np.testing.assert_array_equal(overlap_colours.rgba[0, 1], distance_colours.rgba[0, 1])
    np.testing.assert_array_equal(overlap_colours.bar_rgba, distance_colours.bar_rgba[::-1])
    best = (np.asarray(colormaps[HEATMAP_CMAP](1.0)) * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(overlap_colours.rgba[0, 0], best)


def test_text_colour_contrasts_nan_cells_are_clear_and_the_diagonal_neutral():
    values = np.array([[1.0, 0.2, np.nan], [0.2, 1.0, 0.99], [np.nan, 0.99, 1.0]])
    colours = heatmap_colours(values, True, (0.2, 1.0), neutral_diagonal=True)
    assert colours.text[0][1] == "white"  # cividis is dark blue at its low end
    assert colours.text[1][2] == "black"  # and light yellow at its high end
    assert colours.rgba[0, 2, 3] == 0
    assert tuple(colours.rgba[1, 1]) == NEUTRAL_RGBA
    assert colours.limits == (0.2, 1.0)


def test_default_limits_skip_the_diagonal():
    values = np.array([[1.0, 0.7], [0.7, 1.0]])
    assert heatmap_colours(values, True).limits == (0.7, 1.0)
    assert heatmap_colours(np.array([[0.0, 4.0], [4.0, 0.0]]), False).limits == (0.0, 4.0)


def test_cell_text_format():
    assert format_value(0.84219, "dice_score") == "0.842"
    assert format_value(17.14, "hd95_score") == "17.1"
    assert format_value(0.01234, "hd95_score_normalized") == "0.012"
    assert format_value(float("nan"), "dice_score") == "–"
