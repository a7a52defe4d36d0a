"""``report --iaa-metric NAME``: the malignancy comparison rerun with another metric as IAA."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.agreement.image_metrics import ImageMetricError, image_metric
from iaa_desktop.core.agreement.tables import image_level_table
from iaa_desktop.core.statistics.analysis import run_analysis
from iaa_desktop.core.statistics.iaa_metric import metric_malignancy
from iaa_desktop.core.statistics.stats import compare_groups
from tests.builders import make_imapp, tree_digest
from tests.core.test_analysis import METADATA_CSV, PAIRWISE_CSV, pairwise_with_labels
from tests.shared_data import require_shared


def test_dice_as_iaa_metric_reproduces_the_main_comparison():
    pairwise, metadata = pairwise_with_labels()
    result = run_analysis(pairwise, metadata, n_boot=200)
    again = metric_malignancy(result, "dice_score", n_boot=200)
    assert again.comparison == result.malignancy
    assert again.spearman_with_dice.rho == pytest.approx(1.0)


def test_image_metric_is_the_mean_over_human_pairs_like_the_image_level_table():
    pairwise, _ = pairwise_with_labels()
    values = image_metric(pairwise, "dice_score")
    table = image_level_table(pairwise).set_index("img_id")
    # Dice gives the IMA++ image-level IAA exactly (same arithmetic).
    np.testing.assert_array_equal(values.to_numpy(), table.loc[values.index, "dice_score_mean"].to_numpy())
    values = image_metric(pairwise, "hd95_score")
    # A column the image-level table leaves out: against plain pandas on the human pairs.
    humans = pairwise[~pairwise["annotator1"].isin(["ST", "MV"]) & ~pairwise["annotator2"].isin(["ST", "MV"])]
    want = humans.groupby("img_id")["hd95_score"].mean()
    np.testing.assert_allclose(values.to_numpy(), want.loc[values.index].to_numpy(), rtol=1e-12)


def test_missing_metrics_are_explained():
    pairwise, _ = pairwise_with_labels()
    with pytest.raises(ImageMetricError, match="run from a dataset"):
        image_metric(pairwise, "fleiss_kappa")
    with pytest.raises(ImageMetricError, match="no column mr_nsd_2px"):
        image_metric(pairwise, "mr_nsd_2px")


def test_published_tables_with_hd95_as_iaa(tmp_path, capsys):
    """On IMA++'s published tables: does the malignancy association hold with HD95 too?"""
    require_shared(PAIRWISE_CSV)
    require_shared(METADATA_CSV)
    out = tmp_path / "out"
    assert main(["report", "--pairwise-metrics", str(PAIRWISE_CSV), "--image-metadata",
                 str(METADATA_CSV), "--out", str(out), "--n-boot", "0", "--no-figures",
                 "--iaa-metric", "hd95_score_normalized"]) == 0
    printed = capsys.readouterr().out
    assert "IAA = HD95 / image diagonal (unitless, MedPy)" in printed
    entry = json.loads((out / "stats.json").read_text())["iaa_metrics"][0]
    assert entry["metric"] == "hd95_score_normalized" and entry["higher_is_better"] is False
    # Cross-check with a direct computation on the table.
    table = pd.read_csv(PAIRWISE_CSV)
    meta = pd.read_csv(METADATA_CSV).set_index("isic_id")["benign_malignant"]
    humans = table[~table["annotator1"].isin(["ST", "MV"]) & ~table["annotator2"].isin(["ST", "MV"])]
    per_image = humans.groupby("img_id")["hd95_score_normalized"].mean()
    label = per_image.index.str.replace(".JPG", "", regex=False).map(meta)
    want = compare_groups(per_image[label == "malignant"], per_image[label == "benign"], n_boot=0)
    assert entry["malignant_vs_benign"]["n_a"] == want.n_a
    assert entry["malignant_vs_benign"]["mean_a"] == pytest.approx(want.mean_a, rel=1e-12)
    assert entry["malignant_vs_benign"]["p_mannwhitney"] == pytest.approx(want.p_mannwhitney, rel=1e-9)
    assert entry["malignant_agree_less"] == (want.mean_a > want.mean_b)


def test_report_from_a_dataset_with_nsd_and_alpha(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    root = make_imapp(tmp_path / "data")
    before = tree_digest(root)
    out = tmp_path / "out"
    assert main(["report", str(root), "--out", str(out), "--workers", "1", "--n-boot", "50",
                 "--no-figures", "--iaa-metric", "mr_nsd_3px", "--iaa-metric",
                 "krippendorff_alpha"]) == 0
    printed = capsys.readouterr().out
    assert "IAA = NSD, τ = 3 px (unitless, MetricsReloaded)" in printed
    assert "IAA = Krippendorff α (unitless, chance-corrected)" in printed
    entries = json.loads((out / "stats.json").read_text())["iaa_metrics"]
    assert [e["metric"] for e in entries] == ["mr_nsd_3px", "krippendorff_alpha"]
    for entry in entries:
        comparison = entry["malignant_vs_benign"]
        assert comparison["n_a"] == 1 and comparison["n_b"] == 1
        assert 0.0 <= comparison["mean_a"] <= 1.0 or math.isnan(comparison["mean_a"])
    assert tree_digest(root) == before


def test_each_iaa_metric_gets_its_distribution_figure_in_the_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    root = make_imapp(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["report", str(root), "--out", str(out), "--workers", "1", "--n-boot", "0",
                 "--figure-formats", "png", "--iaa-metric", "mr_nsd_3px"]) == 0
    capsys.readouterr()
    figure = out / "iaa_distribution_mr_nsd_3px.png"
    assert figure.is_file() and (out / "iaa_distribution.png").is_file()
    assert figure.read_bytes() != (out / "iaa_distribution.png").read_bytes()
    assert "iaa_distribution_mr_nsd_3px" in (out / "report.html").read_text(encoding="utf-8")


def test_the_distribution_figure_names_the_metric_it_draws():
    from iaa_desktop.core.figures import iaa_distribution_figure
    from iaa_desktop.core.figures.distributions import IAA_AXIS_LABEL

    label = "HD95 (px, MetricsReloaded)"
    fig = iaa_distribution_figure([1.0, 4.0, 2.5], [6.0, 12.0], value_label=label)
    hist_ax, box_ax = fig.axes
    assert hist_ax.get_xlabel() == label and box_ax.get_ylabel() == label
    assert hist_ax.get_ylabel() == "Density" and 12.0 <= hist_ax.get_xlim()[1] <= 15.0
    assert hist_ax.get_xlim()[0] <= 1.0
    default = iaa_distribution_figure([0.9], [0.7])
    assert default.axes[0].get_xlabel() == IAA_AXIS_LABEL


@pytest.mark.parametrize("extra, message", [
    (["--iaa-metric", "nonsense"], "--iaa-metric: unknown metric nonsense"),
    (["--iaa-metric", "fleiss_kappa"], "fleiss_kappa is computed per lesion from the masks"),
])
def test_bad_metric_choices_fail_clearly(tmp_path, capsys, extra, message):
    pairwise, metadata = pairwise_with_labels()
    pairwise.to_csv(tmp_path / "p.csv", index=False)
    metadata.to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "out"
    assert main(["report", "--pairwise-metrics", str(tmp_path / "p.csv"), "--image-metadata",
                 str(tmp_path / "m.csv"), "--out", str(out), "--no-figures", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_dataset_views_offer_every_computed_metric_as_iaa(tmp_path):
    from iaa_desktop.core.agreement.engine import iter_dataset_agreement
    from iaa_desktop.core.dataset.io import load_dataset
    from iaa_desktop.core.display.overlay import lesion_table_frame
    from iaa_desktop.core.progress import run_to_end
    from iaa_desktop.core.statistics.views import dataset_views, iaa_label

    dataset = load_dataset(make_imapp(tmp_path / "r"))
    agreement = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=None))
    views = dataset_views(agreement, lesion_table_frame(dataset), n_boot=0)
    assert views.iaa_metrics[0] == "dice_score"
    assert {"mr_nsd_5px", "mr_boundary_iou_2px", "mr_masd", "fleiss_kappa"} <= set(views.iaa_metrics)
    alpha = views.malignancy_for("krippendorff_alpha")
    chance = agreement.chance.set_index("img_id")["krippendorff_alpha"]
    got = sorted(float(v) for group in alpha.values.values() for v in group)
    assert got == pytest.approx(sorted(chance.to_numpy()))
    assert iaa_label("mr_hd95") == "IAA: mean HD95 (px, MetricsReloaded) over human pairs"
    # The scatter can also plot the new per-image columns against the IAA.
    assert "mr_nsd_2px_mean" in views.numeric_columns and "fleiss_kappa" in views.numeric_columns
