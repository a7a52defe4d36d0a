"""``iaa-desktop metrics --convention/--nsd-tau/--biou-d``: MedPy's tables unchanged by default,
MetricsReloaded's columns named with their tolerance, the conventions JSON beside them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.agreement.lesion import lesion_agreement
from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS
from iaa_desktop.core.dataset.io import load_dataset
from tests.builders import make_imapp, tree_digest


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_default_convention_writes_imapp_columns_and_the_same_numbers(tmp_path, cache_dir):
    root = make_imapp(tmp_path / "r")
    plain, mr = tmp_path / "plain", tmp_path / "mr"
    assert main(["metrics", str(root), "--out", str(plain), "--workers", "1", "--no-maps"]) == 0
    assert main(["metrics", str(root), "--out", str(mr), "--workers", "1", "--no-maps",
                 "--convention", "metricsreloaded", "--nsd-tau", "1,2.5", "--biou-d", "2"]) == 0
    medpy = pd.read_csv(plain / "pairwise.csv")
    assert list(medpy.columns) == list(PAIRWISE_COLUMNS)
    both = pd.read_csv(mr / "pairwise.csv")
    assert list(both.columns) == [*PAIRWISE_COLUMNS, "mr_dice", "mr_iou", "mr_hd", "mr_hd95",
                                  "mr_assd", "mr_masd", "mr_nsd_1px", "mr_nsd_2.5px",
                                  "mr_boundary_iou_2px"]
    # MedPy's columns and the IMA++ image-level table do not depend on the convention.
    pd.testing.assert_frame_equal(both[list(PAIRWISE_COLUMNS)], medpy)
    assert (plain / "image_level.csv").read_bytes() == (mr / "image_level.csv").read_bytes()
    # Non-empty masks: the two conventions share HD and the pooled mean (ASSD).
    human = both.dropna(subset=["hd_score"])
    assert (human["mr_hd"] == human["hd_score"]).all()
    assert human["mr_assd"].to_numpy() == pytest.approx(human["assd_score"].to_numpy(), rel=1e-12)
    image_mr = pd.read_csv(mr / "image_level_metricsreloaded.csv")
    assert "mr_nsd_2.5px_mean" in image_mr.columns and len(image_mr) == 2
    assert not (plain / "image_level_metricsreloaded.csv").exists()

    doc = json.loads((mr / "metric_conventions.json").read_text())
    assert doc["convention"] == "metricsreloaded"
    assert doc["nsd_tolerances_px"] == [1.0, 2.5]
    assert doc["metrics"]["mr_hd95"]["one_empty"] == "NaN"
    assert doc["metrics"]["mr_nsd_2.5px"]["label"].startswith("NSD, τ = 2.5 px")
    assert doc["metrics"]["hd95_score"]["convention"] == "medpy"
    assert "POOLED" in doc["metrics"]["hd95_score"]["definition"]
    assert "fleiss_kappa" in doc["metrics"]
    chance = pd.read_csv(mr / "chance_agreement.csv")
    assert list(chance.columns) == ["img_id", "fleiss_kappa", "krippendorff_alpha", "chance_roi_px"]
    assert len(chance) == 2 and chance["fleiss_kappa"].between(-1, 1).all()


def test_lesion_rows_carry_the_chance_values_of_the_human_masks(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    result = lesion_agreement(dataset.lesion("ISIC_0000002"))
    assert len(result.chance) == 3 and result.chance[2] > 0
    assert result.pair_columns[len(PAIRWISE_COLUMNS):] == result.extra_columns


@pytest.mark.parametrize("option, value, message", [
    ("--nsd-tau", "1,x", "--nsd-tau: 'x' is not a number"),
    ("--biou-d", "0", "Boundary IoU width must be > 0"),
    ("--nsd-tau", ",", "--nsd-tau: give at least one"),
])
def test_bad_tolerances_fail_with_a_message_and_write_nothing(tmp_path, cache_dir, capsys, option,
                                                            value, message):
    root = make_imapp(tmp_path / "r")
    before = tree_digest(root)
    out = tmp_path / "o"
    assert main(["metrics", str(root), "--out", str(out), option, value]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert tree_digest(root) == before


def test_cache_keeps_the_metricsreloaded_values(tmp_path, cache_dir):
    root = make_imapp(tmp_path / "r")
    first, second = tmp_path / "a", tmp_path / "b"
    args = ["--workers", "1", "--no-maps", "--convention", "metricsreloaded"]
    assert main(["metrics", str(root), "--out", str(first), *args]) == 0
    assert main(["metrics", str(root), "--out", str(second), *args]) == 0  # from the cache
    assert (first / "pairwise.csv").read_bytes() == (second / "pairwise.csv").read_bytes()
    assert (first / "chance_agreement.csv").read_bytes() == (second / "chance_agreement.csv").read_bytes()
