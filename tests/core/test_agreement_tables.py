"""Agreement tables: reading pairwise CSVs, image-level IAA, factor and intra/inter tables."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iaa_desktop.core.agreement.table_io import read_pairwise_csv, write_agreement_tables
from iaa_desktop.core.agreement.tables import (
    FACTOR_TABLE_COLUMNS,
    IMAGE_LEVEL_COLUMNS,
    INTRA_INTER_COLUMNS,
    METRIC_COLUMNS,
    PAIRWISE_COLUMNS,
    PairwiseTableError,
    agreement_tables,
    factor_table,
    human_pairs,
    image_level_table,
    intra_inter_table,
)
from iaa_desktop.core.errors import IAAError
from tests.shared_data import IMAPP_DIR, require_shared

PAIRWISE_CSV = IMAPP_DIR / "IMAplusplus_multiannotator_subset_IAA_metrics.csv"
IMAGE_LEVEL_CSV = IMAPP_DIR / "IMAplusplus_multiannotator_subset_image_level_metrics.csv"

# Each metric of a hand-made pair is dice times its factor, so every column is
# checked with one hand-computed number (and a swapped column would show).
SCALE = dict(zip(METRIC_COLUMNS, (1.0, 0.5, 100.0, 90.0, 10.0, 0.1, 0.09, 0.01), strict=True))


def pair(img, a1, a2, dice, t1="T1", s1="S1", t2="T1", s2="S1"):
    """One pairwise row; consensus annotators get their code as tool and skill too."""
    if a1 in ("ST", "MV"):
        t1 = s1 = a1
    if a2 in ("ST", "MV"):
        t2 = s2 = a2
    row = {
        "img_id": f"{img}.JPG",
        "mask1": f"{img}_{a1}_{t1}_{s1}.png",
        "mask2": f"{img}_{a2}_{t2}_{s2}.png",
        "annotator1": a1,
        "annotator2": a2,
        "tool1": t1,
        "skill_level1": s1,
        "tool2": t2,
        "skill_level2": s2,
    }
    row.update({m: dice * k for m, k in SCALE.items()})
    return row


def small_pairwise() -> pd.DataFrame:
    """Three images, out of order; ISIC_3 has consensus pairs only.

    ISIC_2: A01-A02 (T1/S1 vs T2/S2) 0.8, plus consensus pairs.
    ISIC_1: A03-A01 0.6 (T2/S1, T1/S1), A01-A02 0.7 (T1/S1, T2/S2),
            A03-A02 0.9 (T2/S1, T2/S2), A01-A01 0.95 (an annotator's repeat, T1/S1 twice).
    """
    rows = [
        pair("ISIC_2", "A01", "A02", 0.8, "T1", "S1", "T2", "S2"),
        pair("ISIC_2", "A01", "ST", 0.9),
        pair("ISIC_2", "A02", "MV", 0.85, "T2", "S2"),
        pair("ISIC_2", "ST", "MV", 0.99),
        pair("ISIC_1", "A03", "A01", 0.6, "T2", "S1", "T1", "S1"),
        pair("ISIC_1", "A01", "A02", 0.7, "T1", "S1", "T2", "S2"),
        pair("ISIC_1", "A03", "A02", 0.9, "T2", "S1", "T2", "S2"),
        pair("ISIC_1", "A01", "A01", 0.95, "T1", "S1", "T1", "S1"),
        pair("ISIC_3", "A04", "ST", 0.5),
    ]
    return pd.DataFrame(rows, columns=list(PAIRWISE_COLUMNS))


def write_csv(frame: pd.DataFrame, path, **kwargs):
    frame.to_csv(path, index=False, **kwargs)
    return path


# --- constants ---------------------------------------------------------------------------


def test_column_constants_match_the_published_headers():
    assert PAIRWISE_COLUMNS[:5] == ("img_id", "mask1", "mask2", "annotator1", "annotator2")
    assert len(PAIRWISE_COLUMNS) == 17
    assert IMAGE_LEVEL_COLUMNS == (
        "img_id",
        "dice_score_mean",
        "dice_score_std",
        "jaccard_score_mean",
        "jaccard_score_std",
        "hd_score_mean",
        "hd_score_std",
        "hd95_score_mean",
        "hd95_score_std",
        "assd_score_mean",
        "assd_score_std",
        "hd_score_normalized_mean",
        "hd_score_normalized_std",
    )
    require_shared(PAIRWISE_CSV)
    require_shared(IMAGE_LEVEL_CSV)
    assert PAIRWISE_CSV.read_text().splitlines()[0].split(",") == list(PAIRWISE_COLUMNS)
    assert IMAGE_LEVEL_CSV.read_text().splitlines()[0].split(",") == list(IMAGE_LEVEL_COLUMNS)


# --- reading ------------------------------------------------------------------------------


def test_read_round_trips_and_types_columns(tmp_path):
    frame = small_pairwise()
    table = read_pairwise_csv(write_csv(frame, tmp_path / "p.csv"))
    assert tuple(table.columns) == PAIRWISE_COLUMNS
    for name in METRIC_COLUMNS:
        assert table[name].dtype == np.float64
        np.testing.assert_array_equal(table[name].to_numpy(), frame[name].to_numpy())
    for name in ("img_id", "annotator1", "tool2"):
        assert pd.api.types.is_string_dtype(table[name])
    assert table["annotator1"].tolist() == frame["annotator1"].tolist()


def test_read_tolerates_bom_extra_columns_and_any_column_order(tmp_path):
    frame = small_pairwise()
    frame.insert(0, "note", "x")
    frame = frame[list(reversed(frame.columns))]
    path = write_csv(frame, tmp_path / "p.csv", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    table = read_pairwise_csv(path)
    assert tuple(table.columns) == (*PAIRWISE_COLUMNS, "note")
    assert table["img_id"].iloc[0] == "ISIC_2.JPG"


def test_read_keeps_ids_as_written(tmp_path):
    # "NA" and "001" are ids, not a missing value and a number.
    frame = small_pairwise()
    frame.loc[0, "annotator1"] = "NA"
    frame.loc[0, "tool1"] = "001"
    table = read_pairwise_csv(write_csv(frame, tmp_path / "p.csv"))
    assert table.loc[0, "annotator1"] == "NA"
    assert table.loc[0, "tool1"] == "001"


def test_missing_column_names_the_file_and_column(tmp_path):
    path = write_csv(small_pairwise().drop(columns=["hd95_score", "tool2"]), tmp_path / "p.csv")
    with pytest.raises(PairwiseTableError, match="lacks column") as info:
        read_pairwise_csv(path)
    message = str(info.value)
    assert str(path) in message and "hd95_score" in message and "tool2" in message


@pytest.mark.parametrize(("sep", "word"), [(";", "semicolons"), ("\t", "tabs")])
def test_other_delimiters_are_rejected_clearly(tmp_path, sep, word):
    path = write_csv(small_pairwise(), tmp_path / "p.csv", sep=sep)
    with pytest.raises(PairwiseTableError, match=f"separated by {word}.*comma-separated"):
        read_pairwise_csv(path)


def test_empty_file_missing_file_and_directory(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(PairwiseTableError, match="empty.csv: pairwise table is empty"):
        read_pairwise_csv(empty)
    with pytest.raises(PairwiseTableError, match="does not exist"):
        read_pairwise_csv(tmp_path / "nope.csv")
    with pytest.raises(PairwiseTableError, match="is a directory"):
        read_pairwise_csv(tmp_path)
    assert issubclass(PairwiseTableError, IAAError)


def test_not_utf8_is_reported(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((",".join(PAIRWISE_COLUMNS) + "\n").encode() + "é,".encode("latin-1") * 17)
    with pytest.raises(PairwiseTableError, match="not UTF-8"):
        read_pairwise_csv(path)


def test_header_only_gives_empty_typed_tables(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(",".join(PAIRWISE_COLUMNS) + "\n")
    table = read_pairwise_csv(path)
    assert len(table) == 0 and table["dice_score"].dtype == np.float64
    image = image_level_table(table)
    assert tuple(image.columns) == IMAGE_LEVEL_COLUMNS and len(image) == 0
    assert len(factor_table(table, "tool")) == 0
    summary = intra_inter_table(table, "tool")
    assert summary["relation"].tolist() == ["intra", "inter"]
    assert summary["n_pairs"].tolist() == [0, 0]
    assert summary["dice_score_mean"].isna().all()


def test_nan_metrics_read_as_nan(tmp_path):
    # IMA++ leaves HD/ASSD empty when a mask is empty; "nan" is what numpy writes.
    path = write_csv(small_pairwise(), tmp_path / "p.csv")
    lines = path.read_text().splitlines()
    cells = lines[1].split(",")
    hd, hd95 = PAIRWISE_COLUMNS.index("hd_score"), PAIRWISE_COLUMNS.index("hd95_score")
    cells[hd], cells[hd95] = "", "nan"
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    table = read_pairwise_csv(path)
    assert np.isnan(table.loc[0, "hd_score"]) and np.isnan(table.loc[0, "hd95_score"])
    assert not np.isnan(table.loc[1, "hd_score"])


def test_non_numeric_metric_names_column_and_line(tmp_path):
    frame = small_pairwise().astype({"dice_score": object})
    frame.loc[2, "dice_score"] = "0,85"
    path = write_csv(frame, tmp_path / "p.csv")
    with pytest.raises(PairwiseTableError, match=r"column dice_score .*'0,85'.*line 4"):
        read_pairwise_csv(path)


def test_missing_image_id_names_the_line(tmp_path):
    frame = small_pairwise()
    frame.loc[1, "img_id"] = ""
    path = write_csv(frame, tmp_path / "p.csv")
    with pytest.raises(PairwiseTableError, match="column img_id is empty on line 3"):
        read_pairwise_csv(path)


def test_ragged_rows_are_reported(tmp_path):
    path = write_csv(small_pairwise(), tmp_path / "p.csv")
    path.write_text(path.read_text() + "a,b,c," * 10 + "\n")
    with pytest.raises(PairwiseTableError, match="cannot read pairwise table"):
        read_pairwise_csv(path)


# --- image level --------------------------------------------------------------------------


def test_image_level_hand_computed():
    table = image_level_table(small_pairwise())
    assert tuple(table.columns) == IMAGE_LEVEL_COLUMNS
    # Sorted by image; ISIC_3 has no human-human pair, so no IAA.
    assert table["img_id"].tolist() == ["ISIC_1.JPG", "ISIC_2.JPG"]
    dice = [0.6, 0.7, 0.9, 0.95]
    assert table.loc[0, "dice_score_mean"] == pytest.approx(0.7875, abs=1e-15)
    assert table.loc[0, "dice_score_std"] == pytest.approx(statistics.stdev(dice), abs=1e-15)
    assert table.loc[0, "dice_score_std"] == pytest.approx(0.16520189667999174, abs=1e-15)
    # One pair: the mean is that pair's value, the sample std is undefined.
    assert table.loc[1, "dice_score_mean"] == 0.8
    assert table.loc[1, IMAGE_LEVEL_COLUMNS[2::2]].isna().all()
    for metric, k in list(SCALE.items())[:6]:
        assert table.loc[0, f"{metric}_mean"] == pytest.approx(0.7875 * k, rel=1e-14)


def test_image_level_skips_nan_metrics():
    frame = small_pairwise()
    frame.loc[4, "hd_score"] = np.nan  # ISIC_1's A03-A01 pair
    table = image_level_table(frame)
    assert table.loc[0, "hd_score_mean"] == pytest.approx(100 * (0.7 + 0.9 + 0.95) / 3)
    assert table.loc[0, "dice_score_mean"] == pytest.approx(0.7875)


def test_image_level_ignores_input_order_of_images_but_not_extra_columns():
    frame = small_pairwise()
    frame["note"] = "x"
    shuffled = frame.sample(frac=1.0, random_state=3)
    a, b = image_level_table(frame), image_level_table(shuffled)
    assert a["img_id"].tolist() == b["img_id"].tolist()
    np.testing.assert_allclose(a["dice_score_mean"], b["dice_score_mean"], rtol=1e-15)


def test_image_level_rejects_frames_without_ids_or_metrics():
    with pytest.raises(PairwiseTableError, match="lacks column.*dice_score"):
        image_level_table(small_pairwise().drop(columns=["dice_score"]))
    frame = small_pairwise()
    frame.loc[3, "img_id"] = None
    with pytest.raises(PairwiseTableError, match="no img_id in row"):
        image_level_table(frame)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.floats(0, 1000, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_image_level_mean_and_std_match_exact_arithmetic(rows):
    frame = pd.DataFrame(
        [pair(f"ISIC_{img}", "A01", "A02", value) for img, value in rows],
        columns=list(PAIRWISE_COLUMNS),
    )
    table = image_level_table(frame).set_index("img_id")
    for img, group in frame.groupby("img_id"):
        values = group["dice_score"].tolist()
        exact = math.fsum(values) / len(values)
        assert table.loc[img, "dice_score_mean"] == pytest.approx(exact, rel=1e-14, abs=1e-300)
        if len(values) > 1:
            expected = statistics.stdev(values)
            got = table.loc[img, "dice_score_std"]
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
        else:
            assert np.isnan(table.loc[img, "dice_score_std"])


# --- factors ------------------------------------------------------------------------------


def test_factor_table_annotator_pools_unordered_pairs():
    table = factor_table(small_pairwise(), "annotator")
    assert tuple(table.columns) == FACTOR_TABLE_COLUMNS
    got = {
        (a, b): (rel, n, ni, d)
        for a, b, rel, n, ni, d in table[
            ["level_a", "level_b", "relation", "n_pairs", "n_images", "dice_score_mean"]
        ].itertuples(index=False)
    }
    assert list(got) == sorted(got)
    expected = {
        ("A01", "A01"): ("intra", 1, 1, 0.95),
        ("A01", "A02"): ("inter", 2, 2, 0.75),
        ("A01", "A03"): ("inter", 1, 1, 0.6),
        ("A01", "ST"): ("inter", 1, 1, 0.9),
        ("A02", "A03"): ("inter", 1, 1, 0.9),
        ("A02", "MV"): ("inter", 1, 1, 0.85),
        ("A04", "ST"): ("inter", 1, 1, 0.5),
        ("MV", "ST"): ("inter", 1, 1, 0.99),
    }
    assert got.keys() == expected.keys()
    for key, (rel, n, ni, dice) in expected.items():
        assert got[key][:3] == (rel, n, ni)
        assert got[key][3] == pytest.approx(dice, abs=1e-15)
    row = table[(table["level_a"] == "A01") & (table["level_b"] == "A02")].iloc[0]
    assert row["hd_score_mean"] == pytest.approx(75.0)
    assert row["assd_score_normalized_mean"] == pytest.approx(0.0075)


def test_factor_table_tool_and_skill_human_only():
    frame = small_pairwise()
    tool = factor_table(frame, "tool", include_consensus=False).set_index(["level_a", "level_b"])
    # T1-T2: 0.8 (ISIC_2), 0.6 and 0.7 (ISIC_1); T1-T1: 0.95; T2-T2: 0.9.
    assert tool.index.tolist() == [("T1", "T1"), ("T1", "T2"), ("T2", "T2")]
    assert tool["n_pairs"].tolist() == [1, 3, 1]
    assert tool["n_images"].tolist() == [1, 2, 1]
    assert tool["relation"].tolist() == ["intra", "inter", "intra"]
    assert tool.loc[("T1", "T2"), "dice_score_mean"] == pytest.approx(0.7)
    skill = factor_table(frame, "skill_level", include_consensus=False)
    skill = skill.set_index(["level_a", "level_b"])
    assert skill.index.tolist() == [("S1", "S1"), ("S1", "S2")]
    assert skill.loc[("S1", "S1"), "dice_score_mean"] == pytest.approx((0.6 + 0.95) / 2)
    assert skill.loc[("S1", "S2"), "dice_score_mean"] == pytest.approx((0.8 + 0.7 + 0.9) / 3)


def test_factor_table_consensus_levels_and_missing_levels():
    frame = small_pairwise()
    frame.loc[5, "tool1"] = None  # ISIC_1 A01-A02: no tool recorded, so left out
    tool = factor_table(frame, "tool").set_index(["level_a", "level_b"])
    assert ("MV", "ST") in tool.index and ("ST", "T1") in tool.index
    assert tool.loc[("ST", "T1"), "n_pairs"] == 2  # A01-ST (ISIC_2), A04-ST (ISIC_3)
    assert tool.loc[("T1", "T2"), "n_pairs"] == 2
    assert tool["n_pairs"].sum() == len(frame) - 1


def test_intra_inter_hand_computed():
    frame = small_pairwise()
    annotator = intra_inter_table(frame, "annotator")
    assert tuple(annotator.columns) == INTRA_INTER_COLUMNS
    assert annotator["relation"].tolist() == ["intra", "inter"]
    assert annotator["n_pairs"].tolist() == [1, 4]
    assert annotator["n_images"].tolist() == [1, 2]
    assert annotator["dice_score_mean"].tolist() == pytest.approx([0.95, 0.75])
    tool = intra_inter_table(frame, "tool")
    assert tool["n_pairs"].tolist() == [2, 3]
    assert tool["dice_score_mean"].tolist() == pytest.approx([0.925, 0.7])
    with_consensus = intra_inter_table(frame, "tool", include_consensus=True)
    assert with_consensus["n_pairs"].tolist() == [2, 3 + 4]


def test_unknown_factor_and_missing_factor_columns():
    with pytest.raises(ValueError, match="annotator, tool, skill_level"):
        factor_table(small_pairwise(), "site")
    with pytest.raises(PairwiseTableError, match="skill_level2"):
        intra_inter_table(small_pairwise().drop(columns=["skill_level2"]), "skill_level")


def test_human_pairs_drops_every_consensus_pair():
    humans = human_pairs(small_pairwise())
    assert len(humans) == 5
    assert not humans[["annotator1", "annotator2"]].isin(["ST", "MV"]).any().any()


# --- writing ------------------------------------------------------------------------------


def test_write_round_trips_exactly_and_only_in_out_dir(tmp_path):
    frame = small_pairwise()
    frame.loc[0, "hd_score"] = np.nan
    frame["dice_score"] = frame["dice_score"] / 3  # digits that need 17 significant figures
    out = tmp_path / "nested" / "tables"
    paths = write_agreement_tables(frame, out)
    assert set(paths) == {
        "image_level",
        "factor_annotator",
        "factor_tool",
        "factor_skill_level",
        "intra_inter_annotator",
        "intra_inter_tool",
        "intra_inter_skill_level",
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.csv" for n in paths)
    assert [p.name for p in tmp_path.iterdir()] == ["nested"]
    tables = agreement_tables(frame)
    for name, path in paths.items():
        assert path == out / f"{name}.csv"
        back = pd.read_csv(path)
        pd.testing.assert_frame_equal(back, tables[name], check_exact=True)
    # A single-pair image's std is an empty cell, as in the published table.
    assert paths["image_level"].read_text().splitlines()[2].endswith(",")


def test_write_into_a_file_path_fails_clearly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PairwiseTableError, match="cannot write agreement tables"):
        write_agreement_tables(small_pairwise(), blocker)


# --- the published IMA++ tables -------------------------------------------------------------


@pytest.fixture(scope="module")
def real_pairwise() -> pd.DataFrame:
    require_shared(PAIRWISE_CSV)
    return read_pairwise_csv(PAIRWISE_CSV)


def test_reproduces_the_published_image_level_table(real_pairwise, tmp_path):
    require_shared(IMAGE_LEVEL_CSV)
    published = pd.read_csv(IMAGE_LEVEL_CSV)
    ours = image_level_table(real_pairwise)
    assert tuple(published.columns) == IMAGE_LEVEL_COLUMNS
    assert ours["img_id"].tolist() == published["img_id"].tolist()  # ids and row order
    assert len(ours) == 2394
    for name in IMAGE_LEVEL_COLUMNS[1:]:
        a, b = ours[name].to_numpy(), published[name].to_numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, equal_nan=True, err_msg=name)
    # Same summation order and algorithm as the publishers: equal bit for bit,
    # and the written file is the published file byte for byte.
    path = write_agreement_tables(real_pairwise, tmp_path)["image_level"]
    assert path.read_bytes() == IMAGE_LEVEL_CSV.read_bytes()


def test_real_factor_tables_account_for_every_pair(real_pairwise):
    n_human = int((~real_pairwise[["annotator1", "annotator2"]].isin(["ST", "MV"]).any(axis=1)).sum())
    assert n_human == 3103
    for factor in ("annotator", "tool", "skill_level"):
        assert factor_table(real_pairwise, factor)["n_pairs"].sum() == len(real_pairwise)
        assert intra_inter_table(real_pairwise, factor)["n_pairs"].sum() == n_human
    tool = intra_inter_table(real_pairwise, "tool").set_index("relation")
    assert tool.loc["intra", "n_pairs"] == 924 and tool.loc["inter", "n_pairs"] == 2179
    # Same-tool pairs agree better than cross-tool pairs.
    assert tool.loc["intra", "dice_score_mean"] > tool.loc["inter", "dice_score_mean"]
    annotator = factor_table(real_pairwise, "annotator").set_index(["level_a", "level_b"])
    assert annotator.loc[("MV", "ST"), "n_pairs"] == 2394
    assert (annotator["relation"] == "intra").sum() > 0  # annotators' repeats exist
