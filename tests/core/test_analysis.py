"""The agreement analysis: hand-computed small tables and the published IMA++ tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from iaa_desktop.core.agreement.table_io import read_pairwise_csv
from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.statistics.analysis import (
    IMAGE_COLUMNS,
    AnalysisError,
    image_metadata_from_dataset,
    run_analysis,
)
from iaa_desktop.core.statistics.analysis_output import analysis_tables, stats_json
from iaa_desktop.core.statistics.factors import PER_ANNOTATOR_COLUMNS
from tests.builders import make_imapp
from tests.core.test_agreement_tables import pair, small_pairwise
from tests.shared_data import IMAPP_DIR, require_shared

PAIRWISE_CSV = IMAPP_DIR / "IMAplusplus_multiannotator_subset_IAA_metrics.csv"
METADATA_CSV = IMAPP_DIR / "IMAplusplus_img_metadata.csv"

STATS_KEYS = {"format", "parameters", "n_images", "n_human_pairs", "mean_iaa", "median_iaa",
              "malignant_vs_benign", "intra_inter", "per_annotator", "correlations", "factor_matrices",
              "excluded_by_review"}


def pairwise_with_labels() -> tuple[pd.DataFrame, pd.DataFrame]:
    """small_pairwise (ISIC_1 IAA 0.7875 malignant, ISIC_2 0.8 benign) plus three excluded images."""
    extra = [
        pair("ISIC_5", "A01", "A02", 0.5, "T1", "S1", "T2", "S2"),  # indeterminate/benign
        pair("ISIC_6", "A01", "A03", 0.4),  # not in the metadata
        pair("ISIC_7", "A02", "A03", 0.3),  # no label
    ]
    pairwise = pd.concat([small_pairwise(), pd.DataFrame(extra, columns=list(PAIRWISE_COLUMNS))],
                         ignore_index=True)
    metadata = pd.DataFrame({
        "isic_id": ["ISIC_1", "ISIC_2", "ISIC_3", "ISIC_5", "ISIC_7"],
        "benign_malignant": ["Malignant", "benign", "indeterminate", "indeterminate/benign", None],
        "pixels_x": [100, 200, 300, 400, 500],
        "pixels_y": [10, 10, 10, 10, 10],
        "age_approx": [30.0, 50.0, None, 70.0, 40.0],
    })
    return pairwise, metadata


def test_malignant_vs_benign_join_and_exclusions():
    pairwise, metadata = pairwise_with_labels()
    result = run_analysis(pairwise, metadata, n_boot=100)
    c = result.malignancy
    assert (c.label_a, c.label_b, c.n_a, c.n_b) == ("malignant", "benign", 1, 1)
    assert c.mean_a == pytest.approx(0.7875) and c.mean_b == pytest.approx(0.8)
    assert result.excluded == {"indeterminate/benign": 1, "not in metadata": 1, "unknown": 1}
    assert list(result.images.columns) == list(IMAGE_COLUMNS)
    images = result.images.set_index("img_id")
    assert images.loc["ISIC_1.JPG", "image_pixels"] == 1000
    assert math.isnan(images.loc["ISIC_6.JPG", "image_pixels"])
    assert images.loc["ISIC_2.JPG", "n_annotators"] == 2
    assert pd.isna(images.loc["ISIC_5.JPG", "group"])
    np.testing.assert_allclose(result.iaa_malignant, [0.7875])

    included = run_analysis(pairwise, metadata, include_indeterminate=True, n_boot=100)
    assert included.malignancy.n_b == 2
    assert included.malignancy.mean_b == pytest.approx(0.65)
    assert included.excluded == {"not in metadata": 1, "unknown": 1}
    assert included.parameters == {"include_indeterminate": True, "seed": 0, "n_boot": 100}


def test_intra_inter_and_per_annotator_hand_computed():
    result = run_analysis(*pairwise_with_labels(), n_boot=100)
    tool = result.intra_inter["tool"]
    # Human pairs of small_pairwise, same tool: 0.9 (T2-T2), 0.95 (T1-T1); plus ISIC_6 (0.4)
    # and ISIC_7 (0.3), both T1-T1. Different tools: 0.8, 0.6, 0.7, 0.5.
    assert (tool.n_a, tool.n_b) == (4, 4)
    assert tool.mean_a == pytest.approx((0.9 + 0.95 + 0.4 + 0.3) / 4)
    assert tool.mean_b == pytest.approx((0.8 + 0.6 + 0.7 + 0.5) / 4)
    annotator = result.intra_inter["annotator"]
    assert (annotator.n_a, annotator.mean_a) == (1, 0.95)

    per = result.per_annotator.set_index("annotator")
    assert list(result.per_annotator.columns) == list(PER_ANNOTATOR_COLUMNS)
    # A01 with others (its repeat pair left out): 0.8, 0.6, 0.7, 0.5, 0.4.
    assert per.loc["A01", "n_pairs"] == 5 and per.loc["A01", "n_images"] == 4
    assert per.loc["A01", "dice_mean"] == pytest.approx(0.6)
    assert per.loc["A01", "dice_median"] == pytest.approx(0.6)
    assert per.loc["A03", "dice_mean"] == pytest.approx((0.6 + 0.9 + 0.4 + 0.3) / 4)
    assert "ST" not in per.index and "A04" not in per.index


def test_factor_matrices_are_lower_triangular_with_consensus_last():
    result = run_analysis(*pairwise_with_labels(), n_boot=0)
    matrices = result.matrices["annotator"]
    dice, counts = matrices["dice_score_mean"], matrices["n_pairs"]
    assert list(dice.index) == ["A01", "A02", "A03", "A04", "ST", "MV"]
    assert list(dice.columns) == list(dice.index)
    assert dice.loc["A02", "A01"] == pytest.approx((0.8 + 0.7 + 0.5) / 3)
    assert counts.loc["A02", "A01"] == 3
    assert dice.loc["A01", "A01"] == pytest.approx(0.95)
    assert dice.loc["MV", "ST"] == pytest.approx(0.99)
    assert dice.loc["ST", "A01"] == pytest.approx(0.9)
    upper = np.triu(np.ones(dice.shape, dtype=bool), k=1)
    assert np.isnan(dice.to_numpy()[upper]).all()
    assert counts.isna().to_numpy()[upper].all() and counts.notna().to_numpy()[~upper].all()
    assert counts.loc["A04", "A01"] == 0 and math.isnan(dice.loc["A04", "A01"])
    tool = result.matrices["tool"]["n_pairs"]
    assert list(tool.index) == ["T1", "T2", "ST", "MV"]
    # The figures' view: counts missing where no pair exists.
    figure_dice, figure_counts, label = result.factor_matrices["annotator"]
    assert figure_dice is dice and pd.isna(figure_counts.loc["A04", "A01"]) and "Dice" in label
    assert "annotator_hd95" in result.factor_matrices


def test_stats_json_is_json_safe_and_documented():
    result = run_analysis(*pairwise_with_labels(), n_boot=100)
    stats = stats_json(result)
    assert set(stats) == STATS_KEYS
    text = json.dumps(stats, allow_nan=False)
    assert json.loads(text) == stats
    assert stats["format"] == "iaa-desktop-stats/1"
    assert stats["malignant_vs_benign"]["n_excluded"] == 3
    assert stats["malignant_vs_benign"]["excluded"]["unknown"] == 1
    assert set(stats["intra_inter"]) == {"annotator", "tool", "skill_level"}
    assert set(stats["correlations"]) == {"image_pixels", "n_human_masks", "n_annotators", "age_approx"}
    tool = stats["factor_matrices"]["tool"]
    assert tool["levels"] == ["T1", "T2", "ST", "MV"]
    assert tool["n_pairs"][0][1] is None and isinstance(tool["n_pairs"][1][0], int)
    assert stats["per_annotator"][0]["annotator"] == "A01"
    assert {"image_level", "images", "per_annotator", "intra_inter_tool", "factor_tool",
            "factor_matrix_tool_dice_score_mean"} <= set(analysis_tables(result))


def test_no_human_pair_or_no_id_column_is_an_error():
    only_consensus = small_pairwise().iloc[[1, 2, 3, 8]]
    with pytest.raises(AnalysisError, match="no human-human pair"):
        run_analysis(only_consensus, pd.DataFrame({"isic_id": [], "benign_malignant": []}))
    with pytest.raises(AnalysisError, match="no id column"):
        run_analysis(small_pairwise(), pd.DataFrame({"name": ["ISIC_1"], "benign_malignant": ["benign"]}))


def test_image_metadata_from_a_loaded_dataset(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "data"))
    metadata = image_metadata_from_dataset(dataset).set_index("isic_id")
    assert metadata.loc["ISIC_0000002.JPG", "benign_malignant"] == "malignant"
    assert metadata.loc["ISIC_0000001.JPG", "pixels_x"] == 64
    assert metadata.loc["ISIC_0000002.JPG", "age_approx"] == 65.0
    assert math.isnan(metadata.loc["ISIC_0000003.JPG", "age_approx"])


# --- the published IMA++ tables ------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    require_shared(PAIRWISE_CSV)
    require_shared(METADATA_CSV)
    pairwise = read_pairwise_csv(PAIRWISE_CSV)
    metadata = pd.read_csv(METADATA_CSV, dtype=str)
    return pairwise, metadata, run_analysis(pairwise, metadata, n_boot=2000)


def test_real_malignant_vs_benign_matches_scipy(real):
    pairwise, metadata, result = real
    c = result.malignancy
    assert (c.n_a, c.n_b) == (505, 1880)
    assert c.mean_a == pytest.approx(0.756, abs=5e-4) and c.mean_b == pytest.approx(0.802, abs=5e-4)
    assert c.p_mannwhitney < 1e-3 and c.p_a_less < 1e-3 and c.p_ks < 1e-3
    assert result.excluded == {"indeterminate": 7, "indeterminate/benign": 2}
    # Computed directly: mean Dice of the human pairs per image, joined on the image id.
    humans = pairwise[~pairwise["annotator1"].isin(["ST", "MV"]) & ~pairwise["annotator2"].isin(["ST", "MV"])]
    iaa = humans.groupby("img_id")["dice_score"].mean().rename("iaa").reset_index()
    iaa["isic_id"] = iaa["img_id"].str.removesuffix(".JPG")
    joined = iaa.merge(metadata[["isic_id", "benign_malignant"]], on="isic_id", how="left")
    malignant = joined.loc[joined["benign_malignant"] == "malignant", "iaa"].to_numpy()
    benign = joined.loc[joined["benign_malignant"] == "benign", "iaa"].to_numpy()
    test = sps.mannwhitneyu(malignant, benign, alternative="two-sided")
    assert c.mannwhitney_u == test.statistic
    assert c.p_mannwhitney == pytest.approx(test.pvalue, rel=1e-9)
    assert c.p_mannwhitney == pytest.approx(1.7e-7, rel=0.05)  # as the paper reports
    assert c.p_ks == pytest.approx(sps.ks_2samp(malignant, benign).pvalue, rel=1e-9)
    assert c.sd_a == pytest.approx(np.std(malignant, ddof=1))
    pooled = math.sqrt(((504) * malignant.var(ddof=1) + 1879 * benign.var(ddof=1)) / 2383)
    assert c.cohens_d == pytest.approx((malignant.mean() - benign.mean()) / pooled)
    assert c.auc == pytest.approx(test.statistic / (505 * 1880))
    assert c.ci_low < c.mean_difference < c.ci_high < 0


def test_real_tool_effect_intra_above_inter(real):
    pairwise, _, result = real
    tool = result.intra_inter["tool"]
    assert tool.mean_a > tool.mean_b and tool.p_a_greater < 1e-3 and tool.ci_low > 0
    humans = pairwise[~pairwise["annotator1"].isin(["ST", "MV"]) & ~pairwise["annotator2"].isin(["ST", "MV"])]
    same = humans["tool1"] == humans["tool2"]
    intra, inter = humans.loc[same, "dice_score"], humans.loc[~same, "dice_score"]
    assert (tool.n_a, tool.n_b) == (len(intra), len(inter))
    assert tool.mean_a == pytest.approx(intra.mean()) and tool.mean_b == pytest.approx(inter.mean())
    assert tool.p_mannwhitney == pytest.approx(sps.mannwhitneyu(intra, inter).pvalue, rel=1e-9)
    table = result.intra_inter_tables["tool"].set_index("relation")
    assert table.loc["intra", "dice_score_mean"] == pytest.approx(tool.mean_a)


def test_real_matrices_and_correlations(real):
    _, _, result = real
    tool = result.matrices["tool"]
    assert list(tool["n_pairs"].index) == ["T1", "T2", "T3", "ST", "MV"]
    assert int(tool["n_pairs"].loc["MV", "ST"]) == 2394
    annotator = result.matrices["annotator"]["n_pairs"]
    assert int(annotator.to_numpy(dtype=float, na_value=0).sum()) == len(result.pairwise)
    assert result.correlations["n_annotators"].n == 2394
    assert result.correlations["age_approx"].n < 2394
    assert len(result.per_annotator) == 15
    json.dumps(stats_json(result), allow_nan=False)
