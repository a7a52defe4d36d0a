"""``iaa-desktop report``: from published tables, from a dataset, refusals and optional figures."""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import pandas as pd
import pytest

from iaa_desktop.cli import main
from tests.builders import make_imapp, tree_digest
from tests.core.test_analysis import METADATA_CSV, PAIRWISE_CSV, STATS_KEYS, pairwise_with_labels
from tests.shared_data import require_shared

TABLES = {"image_level.csv", "images.csv", "per_annotator.csv"} | {
    f"{kind}_{factor}.csv" for kind in ("factor", "intra_inter")
    for factor in ("annotator", "tool", "skill_level")
} | {
    f"factor_matrix_{factor}_{name}.csv" for factor in ("annotator", "tool", "skill_level")
    for name in ("dice_score_mean", "hd95_score_normalized_mean", "n_pairs")
}


@pytest.fixture
def small_tables(tmp_path):
    pairwise, metadata = pairwise_with_labels()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    pairwise.to_csv(inputs / "pairs.csv", index=False)
    metadata.to_csv(inputs / "meta.csv", index=False)
    return inputs / "pairs.csv", inputs / "meta.csv"


def report(*args: str) -> int:
    return main(["report", *map(str, args)])


def test_report_from_the_published_tables(tmp_path, capsys):
    require_shared(PAIRWISE_CSV)
    require_shared(METADATA_CSV)
    out = tmp_path / "out"
    code = report("--pairwise-metrics", PAIRWISE_CSV, "--image-metadata", METADATA_CSV,
                  "--out", out, "--n-boot", "500", "--no-figures")
    printed = capsys.readouterr().out
    assert code == 0
    assert re.search(r"malignant +n=505 +mean 0\.756\d +SD 0\.2097", printed)
    assert re.search(r"benign +n=1,880 +mean 0\.802\d +SD 0\.1998", printed)
    assert "Mann-Whitney U=402824.0 p=1.68e-07" in printed
    assert "excluded: indeterminate 7, indeterminate/benign 2" in printed
    assert "Intra vs inter tool" in printed
    assert {p.name for p in out.iterdir()} == TABLES | {"stats.json"}
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats) == STATS_KEYS | {"inputs"}
    assert stats["inputs"]["pairwise_metrics"] == str(PAIRWISE_CSV)
    assert stats["malignant_vs_benign"]["n_a"] == 505 and stats["malignant_vs_benign"]["n_b"] == 1880
    assert stats["parameters"]["n_boot"] == 500
    assert len(pd.read_csv(out / "image_level.csv")) == 2394


def test_report_from_a_dataset_writes_nothing_into_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    root = make_imapp(tmp_path / "data")
    before = tree_digest(root)
    out = tmp_path / "out"
    code = report(root, "--out", out, "--workers", "1", "--n-boot", "100", "--no-figures")
    printed = capsys.readouterr().out
    assert code == 0
    assert tree_digest(root) == before
    assert "2 images, 7 human pairs" in printed
    assert re.search(r"malignant +n=1 ", printed) and re.search(r"benign +n=1 ", printed)
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats) == STATS_KEYS | {"inputs"}
    assert stats["inputs"]["dataset"] == str(root)
    assert stats["inputs"]["dataset_fingerprint"].startswith("masks:")
    assert stats["factor_matrices"]["annotator"]["levels"] == ["A00", "A01", "A02", "ST", "MV"]
    images = pd.read_csv(out / "images.csv").set_index("image_id")
    assert images.loc["ISIC_0000002", "n_human_masks"] == 4
    assert images.loc["ISIC_0000002", "image_pixels"] == 48 * 64


def test_report_refuses_to_write_into_the_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    root = make_imapp(tmp_path / "data")
    before = tree_digest(root)
    assert report(root, "--out", root / "report", "--no-figures") == 2
    assert "refusing to write into the dataset" in capsys.readouterr().err
    assert tree_digest(root) == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pairwise-metrics", "{pairs}"], "go together"),
        (["{data}", "--pairwise-metrics", "{pairs}", "--image-metadata", "{meta}"], "not both"),
        (["--pairwise-metrics", "{pairs}", "--image-metadata", "{missing}"], "missing.csv"),
        (["--pairwise-metrics", "{pairs}", "--image-metadata", "{meta}", "--n-boot", "-1"], "--n-boot"),
        (["--pairwise-metrics", "{pairs}", "--image-metadata", "{meta}", "--figure-formats", "gif"],
         "--figure-formats"),
    ],
)
def test_report_usage_errors(tmp_path, capsys, small_tables, extra, message):
    pairs, meta = small_tables
    values = {"pairs": pairs, "meta": meta, "data": tmp_path, "missing": tmp_path / "missing.csv"}
    args = [a.format(**values) for a in extra]
    out = tmp_path / "out"
    assert report(*args, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.startswith("iaa-desktop: error: ") and message in err
    assert not out.exists()


def test_report_refuses_an_out_folder_holding_the_inputs(small_tables, capsys):
    pairs, meta = small_tables
    assert report("--pairwise-metrics", pairs, "--image-metadata", meta, "--out", pairs.parent) == 2
    assert "refusing" in capsys.readouterr().err
    assert {p.name for p in pairs.parent.iterdir()} == {"pairs.csv", "meta.csv"}


def test_report_skips_absent_figure_modules_with_a_note(tmp_path, capsys, small_tables, monkeypatch):
    # None in sys.modules makes the import fail, as if the modules were not installed.
    monkeypatch.setitem(sys.modules, "iaa_desktop.core.figures", None)
    monkeypatch.setitem(sys.modules, "iaa_desktop.core.statistics.html_report", None)
    pairs, meta = small_tables
    out = tmp_path / "out"
    assert report("--pairwise-metrics", pairs, "--image-metadata", meta, "--out", out, "--n-boot", "50") == 0
    printed = capsys.readouterr().out
    assert "note: figures skipped" in printed and "note: HTML report skipped" in printed
    assert {p.name for p in out.iterdir()} == TABLES | {"stats.json"}


@pytest.mark.skipif(
    importlib.util.find_spec("iaa_desktop.core.figures") is None
    or importlib.util.find_spec("iaa_desktop.core.statistics.html_report") is None
    or importlib.util.find_spec("matplotlib") is None,
    reason="figure / HTML report modules not installed",
)
def test_report_writes_figures_and_html_when_available(tmp_path, capsys, small_tables):
    pairs, meta = small_tables
    out = tmp_path / "out"
    assert report("--pairwise-metrics", pairs, "--image-metadata", meta, "--out", out, "--n-boot", "50",
                  "--figure-formats", "png", "--dpi", "60") == 0
    assert "note:" not in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "iaa_distribution.png", "factor_tool.png"} <= names
    assert not any(name.endswith((".svg", ".pdf")) for name in names)
