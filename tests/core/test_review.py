"""Reviews: saving, statuses, CSV round trip and import checks, CLI, and "exclude" in stats and export."""

import json

import h5py
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.review.reviews import (
    REVIEW_COLUMNS,
    STATUSES,
    Review,
    ReviewError,
    ReviewImportError,
    all_reviews,
    excluded_ids,
    export_reviews_csv,
    get_review,
    import_reviews_csv,
    next_unreviewed,
    read_reviews_csv,
    review_summary,
    reviews_frame,
    save_review,
    statuses,
)
from iaa_desktop.core.review.workspace import Workspace
from iaa_desktop.core.statistics.analysis import run_analysis
from iaa_desktop.core.statistics.analysis_output import stats_json
from iaa_desktop.core.workspace_paths import WORKSPACES_ENV, workspace_dir_for
from tests.builders import make_imapp, tree_digest
from tests.core.test_analysis import pairwise_with_labels


@pytest.fixture
def ws(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        yield workspace


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(WORKSPACES_ENV, str(tmp_path / "workspaces"))


def test_save_and_read_back_with_history_ids(ws):
    first = save_review(ws, Review("a", "needs_reannotation", "border unclear", "A1", "Dr. Ö"),
                        annotators=["A1", "A2"], now="2026-01-02T03:04:05+00:00")
    second = save_review(ws, Review("a", "consensus_acceptable", reviewer="Dr. Ö"))
    assert second > first
    assert get_review(ws, "a").status == "consensus_acceptable"
    assert get_review(ws, "zz") == Review("zz")  # never reviewed
    history = ws.connection.execute("SELECT edit_id, status FROM review_history ORDER BY edit_id").fetchall()
    assert history == [(first, "needs_reannotation"), (second, "consensus_acceptable")]
    save_review(ws, Review("b", "exclude"))
    assert statuses(ws) == {"a": "consensus_acceptable", "b": "exclude"}
    assert excluded_ids(ws) == {"b"}
    assert review_summary(ws, ["a", "b", "c"]) == {"unreviewed": 1, "consensus_acceptable": 1,
                                                  "needs_reannotation": 0, "exclude": 1}
    frame = reviews_frame(ws, ["c", "b"])
    assert list(frame.columns) == list(REVIEW_COLUMNS)
    assert frame["status"].tolist() == ["unreviewed", "exclude"]


@pytest.mark.parametrize(("review", "message"), [
    (Review("a", "maybe"), "status 'maybe' is not one of"),
    (Review("", "exclude"), "image_id is empty"),
    (Review("a", "exclude", reference="A9"), "reference 'A9' is not one of A1, A2, MV, STAPLE"),
    (Review("a", "exclude", note="x" * 20_001), "note is longer"),
])
def test_invalid_reviews_are_refused_and_nothing_is_saved(ws, review, message):
    with pytest.raises(ReviewError, match=message):
        save_review(ws, review, annotators=["A2", "A1"])
    assert all_reviews(ws) == {}


def test_next_unreviewed_wraps_and_skips_reviewed():
    ids = ["a", "b", "c", "d"]
    done = {"b": "exclude", "c": "consensus_acceptable"}
    assert next_unreviewed(ids, done, "a") == "d"
    assert next_unreviewed(ids, done, "d") == "a"
    assert next_unreviewed(ids, done, None) == "a"
    assert next_unreviewed(ids, {i: "exclude" for i in ids}, "a") is None
    assert next_unreviewed([], {}, None) is None


def test_csv_round_trip_keeps_unicode_commas_and_newlines(ws, tmp_path):
    note = 'Bord flou, "irrégulier"\nsecond line; ünïcödé'
    save_review(ws, Review("ISIC 1", "needs_reannotation", note, "STAPLE", "Dr. Å, MD"),
                now="2026-05-06T07:08:09+00:00")
    path = tmp_path / "reviews.csv"
    assert export_reviews_csv(ws, path, ["ISIC 1", "ISIC 2"]) == 2
    with Workspace.open(tmp_path / "other") as other:
        assert import_reviews_csv(other, path, known_ids=["ISIC 1", "ISIC 2"]) == 2
        assert get_review(other, "ISIC 1") == get_review(ws, "ISIC 1")
        assert get_review(other, "ISIC 2").status == "unreviewed"


def test_bom_and_semicolons_are_read(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffimage_id;status;note\na;exclude;ok\n".encode())
    assert read_reviews_csv(path) == [Review("a", "exclude", "ok")]


@pytest.mark.parametrize(("text", "message"), [
    ("id,status\na,exclude\n", "row 1: missing column(s) image_id"),
    ("image_id,status\na,excluded\n", "row 2: status 'excluded' is not one of"),
    ("image_id,status\na,exclude\nzz,exclude\n", "row 3: image 'zz' is not in the dataset"),
    ("image_id,status\na,exclude\na,exclude\n", "row 3: image 'a' appears more than once"),
    ("image_id,status,reference\na,exclude,A7\n", "row 2: reference 'A7' is not one of A1, MV, STAPLE"),
    ("image_id,status\na,exclude,extra\n", "row 2: 3 fields, the header has 2"),
    ("image_id,status,updated\na,exclude,yesterday\n", "row 2: updated 'yesterday' is not an ISO"),
    ("", "file is empty"),
])
def test_import_names_the_file_and_row_and_imports_nothing(ws, tmp_path, text, message):
    path = tmp_path / "bad reviews.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReviewImportError) as info:
        import_reviews_csv(ws, path, known_ids=["a", "b"], annotators_by_id={"a": ["A1"]})
    assert str(path) in str(info.value) and message in str(info.value)
    assert all_reviews(ws) == {}


def test_run_analysis_leaves_out_excluded_images():
    pairwise, metadata = pairwise_with_labels()
    full = run_analysis(pairwise, metadata, n_boot=50)
    some = sorted(full.images["image_id"])[:3]
    result = run_analysis(pairwise, metadata, n_boot=50, excluded_ids=[*some, "not-there"])
    assert result.review_excluded == tuple(some)
    assert len(result.images) == len(full.images) - 3
    assert not set(result.images["image_id"]) & set(some)
    stats = stats_json(result)
    assert stats["excluded_by_review"] == {"n_images": 3, "image_ids": some}
    assert stats_json(full)["excluded_by_review"] == {"n_images": 0, "image_ids": []}


def test_cli_review_export_import_summary_and_exclude_in_report_and_training_set(
        tmp_path, isolated, capsys):
    root = make_imapp(tmp_path / "data")
    before = tree_digest(root)
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("image_id,status,note,reference\nISIC_0000001,exclude,bad image,A00\n"
                        "ISIC_0000002,consensus_acceptable,,MV\n", encoding="utf-8")
    assert main(["review", "import", str(root), "--in", str(csv_path)]) == 0
    assert "imported 2 reviews" in capsys.readouterr().out
    assert main(["review", "summary", str(root)]) == 0
    printed = capsys.readouterr().out
    assert "Exclude from analysis    1" in printed and "Unreviewed               1" in printed
    out_csv = tmp_path / "out.csv"
    assert main(["review", "export", str(root), "--out", str(out_csv)]) == 0
    first_row = out_csv.read_text(encoding="utf-8").splitlines()[1]
    assert first_row.startswith("ISIC_0000001,exclude,bad image,A00,")
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,status\nISIC_0000009,exclude\n", encoding="utf-8")
    assert main(["review", "import", str(root), "--in", str(bad)]) == 1
    assert f"{bad}, row 2: image 'ISIC_0000009' is not in the dataset" in capsys.readouterr().err

    report_dir = tmp_path / "report"
    assert main(["report", str(root), "--out", str(report_dir), "--workers", "1", "--n-boot", "50",
                 "--no-figures", "--exclude-reviewed"]) == 0
    printed = capsys.readouterr().out
    assert "Excluded by review ('exclude' in" in printed and "1 lesions: ISIC_0000001" in printed
    assert "1 images," in printed
    stats = json.loads((report_dir / "stats.json").read_text())
    assert stats["excluded_by_review"] == {"n_images": 1, "image_ids": ["ISIC_0000001"]}
    assert stats["inputs"]["review_workspace"] == str(workspace_dir_for(root))

    out = tmp_path / "set.h5"
    assert main(["export-training-set", str(root), "--out", str(out), "--size", "16", "--workers", "1",
                 "--exclude-reviewed"]) == 0
    assert "excluded by review: 1 lesions" in capsys.readouterr().out
    with h5py.File(out, "r") as h5:
        assert h5.attrs["n_review_excluded"] == 1
        assert json.loads(h5.attrs["review_excluded"]) == ["ISIC_0000001"]
        assert [s.decode() for s in h5["image_id"][()]] == ["ISIC_0000002", "ISIC_0000003"]
    plain = tmp_path / "plain.h5"
    assert main(["export-training-set", str(root), "--out", str(plain), "--size", "16",
                 "--workers", "1"]) == 0
    assert "excluded by review: none (reviews not applied" in capsys.readouterr().out
    with h5py.File(plain, "r") as h5:
        assert h5.attrs["n_review_excluded"] == 0 and len(h5["image_id"]) == 3
    assert tree_digest(root) == before


def test_statuses_match_the_browser_vocabulary():
    from iaa_desktop.core.display.browser_table import REVIEW_STATUSES

    assert tuple(REVIEW_STATUSES) == STATUSES
