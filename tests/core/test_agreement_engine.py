"""The dataset agreement engine: pairs like IMA++'s table, consensus, cache, parallelism, CLI."""

import numpy as np
import pandas as pd
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.agreement.boundary import BoundarySpec
from iaa_desktop.core.agreement.cache import AgreementCache
from iaa_desktop.core.agreement.consensus import majority_vote
from iaa_desktop.core.agreement.engine import iter_dataset_agreement
from iaa_desktop.core.agreement.lesion import lesion_agreement
from iaa_desktop.core.agreement.metrics import pair_metrics
from iaa_desktop.core.agreement.staple import staple
from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.dataset.masks import decode_mask
from iaa_desktop.core.progress import run_to_end
from tests.builders import disk, make_folder, make_imapp, tree_digest, write_mask


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(path))
    return path


def _run(dataset, **options):
    return run_to_end(iter_dataset_agreement(dataset, workers=options.pop("workers", 1), **options))


def test_pairs_follow_the_imapp_table(tmp_path, cache_dir):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    result = _run(dataset)
    table = result.pairwise
    # IMA++'s columns first, in order; then MetricsReloaded's (BoundarySpec's default columns).
    assert list(table.columns) == [*PAIRWISE_COLUMNS, *BoundarySpec().columns]
    assert _run(dataset, boundary=None, cache=None).pairwise.columns.tolist() == list(PAIRWISE_COLUMNS)
    per_image = table.groupby("img_id").size().to_dict()
    # IMG_1: A00, A01 + the shipped ST, MV -> 6 pairs; IMG_2: four human masks (one a
    # repeat) + computed ST, MV -> 15 pairs; IMG_3: one human mask -> no pair.
    assert per_image == {"ISIC_0000001.JPG": 6, "ISIC_0000002.JPG": 15}
    assert result.consensus_source == {"ISIC_0000001": "dataset", "ISIC_0000002": "computed"}
    first = table[table["img_id"] == "ISIC_0000001.JPG"]
    assert list(zip(first["annotator1"], first["annotator2"], strict=True)) == [
        ("A00", "A01"), ("A00", "ST"), ("A00", "MV"), ("A01", "ST"), ("A01", "MV"), ("ST", "MV")]
    assert set(first["tool2"]) == {"T2", "ST", "MV"}


def test_values_equal_direct_metrics_and_consensus(tmp_path, cache_dir):
    root = make_imapp(tmp_path / "r")
    dataset = load_dataset(root)
    lesion = dataset.lesion("ISIC_0000002")
    result = lesion_agreement(lesion)
    masks = [decode_mask(s.mask_path).mask for s in lesion.human_segmentations]
    table = pd.DataFrame(result.pairs, columns=[*PAIRWISE_COLUMNS, *result.extra_columns])
    row = table[(table["mask1"] == lesion.segmentations[0].name)
                & (table["mask2"] == lesion.segmentations[2].name)].iloc[0]
    expected = pair_metrics(masks[0], masks[2]).as_dict()
    for column, value in expected.items():
        assert row[column] == value
    mv_row = table[(table["mask1"] == lesion.segmentations[0].name) & (table["annotator2"] == "MV")]
    assert mv_row["dice_score"].iloc[0] == pair_metrics(masks[0], majority_vote(masks)).dice
    st = staple(masks)
    assert [r[5] for r in result.staple_rows] == list(st.sensitivity)
    assert [r[6] for r in result.staple_rows] == list(st.specificity)


def test_cache_reuses_and_recomputes_changed_masks(tmp_path, cache_dir):
    root = make_imapp(tmp_path / "r")
    first = _run(load_dataset(root))
    assert (first.computed, first.from_cache) == (3, 0)
    again = _run(load_dataset(root))
    assert (again.computed, again.from_cache) == (0, 3)
    pd.testing.assert_frame_equal(first.pairwise, again.pairwise)
    pd.testing.assert_frame_equal(first.staple, again.staple)
    changed = next((root / "segs").glob("ISIC_0000002_A01_*"))
    write_mask(changed, disk((48, 64), (20, 20), 6))
    third = _run(load_dataset(root))
    assert (third.computed, third.from_cache) == (1, 2)
    diff = third.pairwise.compare(first.pairwise)
    assert set(third.pairwise.loc[diff.index, "img_id"]) == {"ISIC_0000002.JPG"}


def test_corrupt_or_truncated_cache_is_rebuilt(tmp_path, cache_dir):
    root = make_imapp(tmp_path / "r")
    _run(load_dataset(root))
    (cache_file,) = cache_dir.rglob("*.h5")
    data = cache_file.read_bytes()
    cache_file.write_bytes(data[: len(data) // 3])
    result = _run(load_dataset(root))
    assert (result.computed, result.from_cache) == (3, 0)
    assert len(AgreementCache(cache_file)) == 3
    cache_file.write_bytes(b"not hdf5 at all")
    assert _run(load_dataset(root)).computed == 3


def test_parallel_equals_serial_and_progress(tmp_path, cache_dir):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    serial = _run(dataset, cache=None)
    steps = []
    parallel = run_to_end(iter_dataset_agreement(dataset, workers=2, cache=None), steps.append)
    pd.testing.assert_frame_equal(serial.pairwise, parallel.pairwise)
    assert steps[-1].done == steps[-1].total == 3


def test_closing_the_generator_cancels(tmp_path, cache_dir):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    job = iter_dataset_agreement(dataset, workers=1)
    next(job)
    job.close()  # what the GUI's Cancel does; the lesion computed so far is cached
    assert _run(dataset).from_cache == 1


def test_bad_masks_are_left_out_and_reported(tmp_path, cache_dir):
    root = make_folder(tmp_path / "f")
    (root / "masks" / "R2" / "b.png").write_bytes(b"")
    write_mask(root / "masks" / "R2" / "a.png", disk((30, 50), (15, 25), 8))  # wrong size
    result = _run(load_dataset(root))
    kinds = {(p.image_id, p.kind) for p in result.problems}
    assert ("b", "empty_file") in kinds and ("a", "size_mismatch") in kinds
    assert result.pairwise.empty  # no lesion kept two usable human masks


def test_metrics_cli_writes_tables_and_maps_outside_the_dataset(tmp_path, cache_dir, capsys):
    root = make_imapp(tmp_path / "r")
    before = tree_digest(root)
    out = tmp_path / "results"
    assert main(["metrics", str(root), "--out", str(out), "--workers", "1"]) == 0
    for name in ("pairwise", "image_level", "factor_tool", "intra_inter_skill_level",
                 "staple_annotators", "problems"):
        assert (out / f"{name}.csv").is_file(), name
    pairwise = pd.read_csv(out / "pairwise.csv")
    assert list(pairwise.columns) == list(PAIRWISE_COLUMNS) and len(pairwise) == 21
    image_level = pd.read_csv(out / "image_level.csv")
    assert len(image_level) == 2
    vote = decode_mask(out / "disagreement" / "ISIC_0000002_vote_fraction.png").mask
    assert vote is not None and vote.shape == (48, 64)
    assert (out / "consensus" / "ISIC_0000002_ST.png").is_file()
    assert "mean IAA" in capsys.readouterr().out
    assert tree_digest(root) == before
    assert main(["metrics", str(root), "--out", str(root / "inside")]) == 2


def test_metrics_cli_fails_clearly_when_nothing_can_be_computed(tmp_path, cache_dir, capsys):
    root = make_folder(tmp_path / "f")
    for mask in (root / "masks" / "R2").iterdir():
        mask.unlink()
    assert main(["metrics", str(root), "--out", str(tmp_path / "o"), "--workers", "1"]) == 1
    assert "no lesion has two readable human masks" in capsys.readouterr().err


def test_empty_mask_pairs_follow_the_published_convention(tmp_path, cache_dir):
    root = make_folder(tmp_path / "f")
    write_mask(root / "masks" / "R2" / "a.png", np.zeros((40, 50), bool))
    table = _run(load_dataset(root)).pairwise
    row = table[(table["img_id"] == "a.png") & (table["annotator1"] == "R1")
                & (table["annotator2"] == "R2")].iloc[0]
    assert row["dice_score"] == 0 and row["jaccard_score"] == 0
    assert np.isnan(row["hd_score"]) and row["hd95_score_normalized"] == 1.0


def test_metrics_cli_says_where_to_point_when_no_mask_file_exists(tmp_path, cache_dir, capsys):
    root = make_imapp(tmp_path / "r", masks_dir="segs")
    moved = tmp_path / "elsewhere"
    (root / "segs").rename(moved)
    out = tmp_path / "o"
    assert main(["metrics", str(root), "--out", str(out), "--workers", "1", "--no-maps"]) == 1
    assert "none of the 9 mask files was found; point at their folder with --masks-dir" in (
        capsys.readouterr().err)
    problems = pd.read_csv(out / "problems.csv")
    assert (problems["kind"] == "missing_mask").sum() == 9  # reported once, by the loader
    assert main(["metrics", str(root), "--masks-dir", str(moved), "--out", str(out),
                 "--workers", "1", "--no-maps"]) == 0


def test_a_cache_of_another_engine_version_is_rebuilt(tmp_path, cache_dir, monkeypatch):
    root = make_imapp(tmp_path / "r")
    _run(load_dataset(root))
    monkeypatch.setattr("iaa_desktop.core.agreement.cache.ENGINE_VERSION", "0-older")
    (cache_file,) = cache_dir.rglob("*.h5")
    assert len(AgreementCache(cache_file)) == 0


def test_small_datasets_run_in_this_process_large_ones_on_every_core(tmp_path, monkeypatch):
    # Starting worker processes costs ~1.5 s each: the demo-sized work is faster in-process.
    from dataclasses import replace

    from iaa_desktop.core.agreement import engine

    dataset = load_dataset(make_imapp(tmp_path / "r"))  # 3 lesions of 48 x 64 px
    assert engine.suggested_workers(dataset, cores=8) == 1
    big = [replace(lesion, width=6000, height=4000) for lesion in dataset.lesions]  # 24 MP each
    many = replace(dataset, lesions=tuple(big) * 4)  # 12 lesions, 40 masks, ~960 mask-MP
    assert engine.suggested_workers(many, cores=8) == 1
    more = replace(dataset, lesions=tuple(big) * 5)
    assert engine.suggested_workers(more, cores=8) == 8
    unknown = replace(dataset, lesions=tuple(replace(x, width=None, height=None) for x in big) * 20)
    assert engine.suggested_workers(unknown, cores=3) == 3  # unknown sizes count as 6.1 MP

    seen = []
    real = engine.iter_dataset_agreement
    monkeypatch.setattr(engine, "iter_dataset_agreement",
                        lambda ds, **options: seen.append(options["workers"]) or real(ds, **options))
    assert main(["metrics", str(tmp_path / "r"), "--out", str(tmp_path / "out"), "--no-cache"]) == 0
    assert seen == [1]  # no --workers: this small dataset in this process
    assert main(["metrics", str(tmp_path / "r"), "--out", str(tmp_path / "out2"), "--no-cache",
                 "--workers", "2"]) == 0
    assert seen == [1, 2]


@pytest.mark.parametrize("flavour", ["16-bit", "RGB"])
def test_masks_the_one_pass_decoder_leaves_out_give_the_same_rows(tmp_path, flavour):
    # 8-bit masks come with their boxes from the decoder; 16-bit and RGB ones take the general
    # decoder, and their boxes are found once in the engine: the rows must not differ.
    import cv2

    root = make_imapp(tmp_path / "r")
    lesion = load_dataset(root).lesion("ISIC_0000002")
    assert all(decode_mask(s.mask_path).box_known for s in lesion.segmentations)
    reference = lesion_agreement(lesion)
    for seg in lesion.segmentations:
        mask = decode_mask(seg.mask_path).mask
        pixels = (mask.astype(np.uint16) * 65535 if flavour == "16-bit"
                  else np.dstack([mask.astype(np.uint8) * 255] * 3))
        cv2.imwrite(str(seg.mask_path), pixels)
        assert not decode_mask(seg.mask_path).box_known
    again = lesion_agreement(load_dataset(root).lesion("ISIC_0000002"))
    assert again.pairs == reference.pairs and again.problems == reference.problems
    assert again.staple_rows == reference.staple_rows and again.chance == reference.chance
