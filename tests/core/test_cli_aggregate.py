"""``iaa-desktop aggregate PAIRWISE_CSV --out DIR``."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS
from tests.core.test_agreement_tables import (
    IMAGE_LEVEL_CSV,
    PAIRWISE_CSV,
    small_pairwise,
    write_csv,
)
from tests.shared_data import require_shared

TABLES = {
    "image_level.csv",
    "factor_annotator.csv",
    "factor_tool.csv",
    "factor_skill_level.csv",
    "intra_inter_annotator.csv",
    "intra_inter_tool.csv",
    "intra_inter_skill_level.csv",
}


def test_aggregate_small_table(tmp_path, capsys):
    source = write_csv(small_pairwise(), tmp_path / "pairs.csv")
    out = tmp_path / "out"
    assert main(["aggregate", str(source), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == TABLES
    assert "9  (5 human-human)" in printed
    assert "3  (2 with an IAA)" in printed
    # IAA: mean over ISIC_1 (0.7875) and ISIC_2 (0.8), 0.79375 give or take rounding.
    assert "mean IAA   0.793" in printed
    # Tool, human-human: same tool 0.95 and 0.9; different tools 0.8, 0.6, 0.7.
    assert re.search(r"same tool +0\.9250 +over 2 pairs", printed)
    assert re.search(r"different tools +0\.7000 +over 3 pairs", printed)
    assert f"wrote 7 tables to {out}" in printed
    image = pd.read_csv(out / "image_level.csv")
    assert image["img_id"].tolist() == ["ISIC_1.JPG", "ISIC_2.JPG"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "pairwise table is empty"),
        (",".join(PAIRWISE_COLUMNS) + "\n", "has no pairs"),
        (";".join(PAIRWISE_COLUMNS) + "\n", "separated by semicolons"),
        ("img_id,mask1\nx,y\n", "lacks column(s) mask2, annotator1"),
    ],
)
def test_aggregate_bad_csv_exits_2_with_a_message(tmp_path, capsys, content, message):
    source = tmp_path / "pairs.csv"
    if content is not None:
        source.write_text(content)
    out = tmp_path / "out"
    assert main(["aggregate", str(source), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("iaa-desktop: error: ")
    assert str(source) in captured.err and message in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_aggregate_needs_out(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["aggregate", str(tmp_path / "pairs.csv")])
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_aggregate_real_table(tmp_path, capsys):
    require_shared(PAIRWISE_CSV)
    require_shared(IMAGE_LEVEL_CSV)
    out = tmp_path / "out"
    assert main(["aggregate", str(PAIRWISE_CSV), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "15,719  (3,103 human-human)" in printed
    assert "2,394  (2,394 with an IAA)" in printed
    assert "over 924 pairs" in printed and "over 2,179 pairs" in printed
    assert {p.name for p in out.iterdir()} == TABLES
    assert (out / "image_level.csv").read_bytes() == IMAGE_LEVEL_CSV.read_bytes()
