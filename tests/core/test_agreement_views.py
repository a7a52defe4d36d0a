"""Dataset-level plot data: image table, malignancy test and histogram, factor cells, scatter."""

import os

import numpy as np
import pandas as pd
import pytest

from iaa_desktop.core.agreement.engine import iter_dataset_agreement
from iaa_desktop.core.agreement.table_io import read_pairwise_csv
from iaa_desktop.core.agreement.tables import factor_table, human_pairs, image_level_table
from iaa_desktop.core.dataset.demo import write_demo
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.display.overlay import lesion_table_frame
from iaa_desktop.core.progress import run_to_end
from iaa_desktop.core.statistics.analysis import image_metadata_from_dataset, run_analysis
from iaa_desktop.core.statistics.factor_views import FACTOR_METRICS, factor_view
from iaa_desktop.core.statistics.stats import compare_groups, spearman
from iaa_desktop.core.statistics.views import (
    GROUPS,
    column_label,
    dataset_views,
    image_table,
    malignancy_view,
    numeric_columns,
    scatter_view,
)
from tests.shared_data import IMAPP_DIR, require_shared


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    dataset = load_dataset(write_demo(tmp_path_factory.mktemp("demo") / "demo", n_lesions=20))
    agreement = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=None))
    return dataset, agreement, lesion_table_frame(dataset)


def test_image_table_has_one_row_per_image_with_its_iaa_group_and_counts(demo):
    dataset, agreement, lesions = demo
    images = image_table(agreement, lesions, image_metadata_from_dataset(dataset))
    level = image_level_table(agreement.pairwise)
    assert list(images["img_id"]) == list(level["img_id"])
    np.testing.assert_array_equal(images["iaa"], level["dice_score_mean"])
    for row in images.itertuples():
        lesion = dataset.lesion(row.image_id)
        expected = lesion.benign_malignant if lesion.benign_malignant in GROUPS else None
        assert row.group == expected
        assert row.annotators == len({s.annotator for s in lesion.human_segmentations})
        assert row.pixels_x == lesion.width and row.image_megapixels == pytest.approx(
            lesion.width * lesion.height / 1e6)
    columns = numeric_columns(images)
    assert {"annotators", "masks", "hd95_score_mean", "n_pairs", "pixels_x", "age_approx"} <= set(columns)
    assert "iaa" not in columns and "group" not in columns and "image_id" not in columns
    assert column_label("hd95_score_mean") == "Mean HD95 (px)"


def test_malignancy_view_runs_the_test_and_every_bar_knows_its_images(demo):
    _, agreement, lesions = demo
    images = image_table(agreement, lesions)
    view = malignancy_view(images, n_boot=200)
    malignant = images.loc[images["group"] == "malignant", "iaa"]
    benign = images.loc[images["group"] == "benign", "iaa"]
    assert len(malignant) and len(benign)
    expected = compare_groups(malignant, benign, labels=("malignant", "benign"), n_boot=200)
    assert view.comparison == expected
    assert f"Cohen's d = {expected.cohens_d:.2f}".replace("-", "\u2212") in view.caption
    assert f"n = {len(malignant)} malignant, {len(benign)} benign" in view.caption
    assert "Mann-Whitney U p = " in view.caption
    histogram = view.histogram
    iaa = dict(zip(images["image_id"], images["iaa"], strict=True))
    for group in GROUPS:
        assert histogram.counts[group].sum() == len(view.values[group])
        seen = []
        for b in range(len(histogram.edges) - 1):
            ids = histogram.bar_ids(group, b)
            assert len(ids) == histogram.counts[group][b]
            for image_id in ids:
                assert histogram.edges[b] <= iaa[image_id] <= histogram.edges[b + 1]
            seen += ids
        assert sorted(seen) == sorted(view.image_ids[group])


def test_caption_says_when_a_group_is_empty(demo):
    _, agreement, lesions = demo
    images = image_table(agreement, lesions)
    view = malignancy_view(images[images["group"] != "malignant"], n_boot=0)
    assert view.comparison is None
    assert view.caption.startswith("No malignant vs benign test: n = 0 malignant")


@pytest.mark.parametrize("factor", ["annotator", "tool", "skill_level"])
@pytest.mark.parametrize("metric", list(FACTOR_METRICS))
def test_factor_cells_hold_the_factor_table_and_the_images_of_their_pairs(demo, factor, metric):
    _, agreement, lesions = demo
    view = factor_view(agreement, factor, metric, known_ids=set(lesions["image_id"]))
    table = factor_table(agreement.pairwise, factor)
    position = {level: i for i, level in enumerate(view.levels)}
    assert set(position) == set(table["level_a"]) | set(table["level_b"])
    for row in table.itertuples():
        i, j = position[row.level_a], position[row.level_b]
        r, c = max(i, j), min(i, j)
        assert view.values[r, c] == getattr(row, metric)
        assert view.n_pairs[r, c] == row.n_pairs
        pairs = agreement.pairwise
        chosen = pairs[((pairs[f"{factor}1"] == row.level_a) & (pairs[f"{factor}2"] == row.level_b))
                       | ((pairs[f"{factor}1"] == row.level_b) & (pairs[f"{factor}2"] == row.level_a))]
        expected = sorted({os.path.splitext(i)[0] for i in chosen["img_id"]})
        assert view.cell_ids(r, c) == expected == view.cell_ids(c, r)
        assert len(expected) == row.n_images
    upper = np.triu(np.ones_like(view.values, dtype=bool), 1)
    assert np.isnan(view.values[upper]).all()
    assert view.colours.rgba.shape == (*view.values.shape, 4)
    assert (view.colours.rgba[upper][:, 3] == 0).all()


def test_scatter_points_pair_the_column_with_iaa_and_carry_image_ids(demo):
    dataset, agreement, lesions = demo
    images = image_table(agreement, lesions, image_metadata_from_dataset(dataset))
    view = scatter_view(images, "hd95_score_mean")
    assert list(view.image_ids) == list(images["image_id"])
    np.testing.assert_array_equal(view.x, images["hd95_score_mean"])
    np.testing.assert_array_equal(view.y, images["iaa"])
    assert view.correlation == spearman(images["hd95_score_mean"], images["iaa"])
    assert view.caption.startswith("Spearman \u03c1 = ")
    assert view.x_label == "Mean HD95 (px)"
    with pytest.raises(ValueError, match="no column"):
        scatter_view(images, "nope")


def test_dataset_views_bundles_every_plot(demo):
    dataset, agreement, lesions = demo
    views = dataset_views(agreement, lesions, image_metadata_from_dataset(dataset), n_boot=100)
    factors = ("annotator", "tool", "skill_level")
    assert set(views.factors) == {(f, m) for f in factors for m in FACTOR_METRICS}
    assert views.numeric_columns == numeric_columns(views.images)
    assert set(views.scatters) == set(views.numeric_columns)
    assert views.malignancy.histogram.counts["benign"].sum() == (views.images["group"] == "benign").sum()
    # The pairwise table alone works too (no DatasetAgreement needed).
    n_images = human_pairs(agreement.pairwise)["img_id"].nunique()
    assert len(image_table(agreement.pairwise, lesions)) == n_images


def test_unknown_factor_metric_is_refused(demo):
    _, agreement, _ = demo
    with pytest.raises(ValueError, match="metric"):
        factor_view(agreement, "tool", "dice_score")


def test_published_imapp_tables_give_the_analysis_malignancy_test():
    pairwise_csv = require_shared(IMAPP_DIR / "IMAplusplus_multiannotator_subset_IAA_metrics.csv")
    metadata = pd.read_csv(require_shared(IMAPP_DIR / "IMAplusplus_img_metadata.csv"))
    pairwise = read_pairwise_csv(pairwise_csv)
    lesions = metadata[["isic_id", "benign_malignant"]].rename(columns={"isic_id": "image_id"})
    views = dataset_views(pairwise, lesions, metadata, n_boot=0)
    reference = run_analysis(pairwise, metadata, n_boot=0).malignancy
    assert views.malignancy.comparison == reference
    assert f"n = {reference.n_a:,} malignant, {reference.n_b:,} benign" in views.malignancy.caption
    annotators = views.factors[("annotator", "dice_score_mean")]
    assert annotators.levels[-2:] == ("ST", "MV")
    assert annotators.n_pairs.sum() == len(pairwise)
