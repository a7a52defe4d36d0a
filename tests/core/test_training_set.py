"""Training-set export to HDF5: layout, IAA, labels, splits, skipped images, safety, CLI, real data."""

import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.agreement.engine import iter_dataset_agreement
from iaa_desktop.core.agreement.table_io import write_table
from iaa_desktop.core.agreement.tables import image_level_table
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.dataset.splits import seeded_stratified_split
from iaa_desktop.core.progress import Progress, run_to_end
from iaa_desktop.core.training import training_set
from iaa_desktop.core.training.iaa_labels import read_iaa_table
from iaa_desktop.core.training.training_set import (
    FORMAT_VERSION,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TrainingSetError,
    iter_export_training_set,
    read_split_ids,
    read_training_set_info,
)
from tests.builders import make_folder, make_imapp, tree_digest
from tests.shared_data import IMAPP_DIR, ISIC256_DIR, require_shared

IMAGE_LEVEL_CSV = "IMAplusplus_multiannotator_subset_image_level_metrics.csv"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(path))
    return path


def _export(dataset, out, **options):
    options.setdefault("workers", 1)
    return run_to_end(iter_export_training_set(dataset, out, **options))


def _read(path):
    with h5py.File(path, "r") as h5:
        return {name: h5[name][()] for name in h5}, dict(h5.attrs), h5["images"].chunks, \
            h5["images"].compression


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _mask(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0


def test_imapp_export_layout_iaa_labels_and_seeded_split(tmp_path):
    root = make_imapp(tmp_path / "r")
    before = tree_digest(root)
    dataset = load_dataset(root)
    out = tmp_path / "out" / "set.h5"
    out.parent.mkdir()
    steps = []
    info = run_to_end(iter_export_training_set(dataset, out, size=16, workers=2), steps.append)
    assert all(isinstance(s, Progress) for s in steps) and steps
    data, attrs, chunks, compression = _read(out)
    assert data["images"].shape == (3, 16, 16, 3) and data["images"].dtype == np.uint8
    assert chunks == (1, 16, 16, 3) and compression is None
    assert data["iaa"].dtype == np.float32 and data["malignant"].dtype == np.int8
    assert [s.decode() for s in data["image_id"]] == ["ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]
    assert data["malignant"].tolist() == [0, 1, -1]
    assert [s.decode() for s in data["diagnosis"]] == ["Nevus", "Melanoma, NOS", "Indeterminate"]
    # IAA = mean human-human Dice; the single-annotator lesion has none.
    result = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=None))
    level = image_level_table(result.pairwise).set_index("img_id")["dice_score_mean"]
    assert data["iaa"][0] == pytest.approx(level["ISIC_0000001.JPG"], abs=1e-6)
    assert data["iaa"][1] == pytest.approx(level["ISIC_0000002.JPG"], abs=1e-6)
    assert np.isnan(data["iaa"][2])
    a00, a01 = sorted((root / "segs").glob("ISIC_0000001_A0*"))
    assert data["iaa"][0] == pytest.approx(_dice(_mask(a00), _mask(a01)), abs=1e-6)
    # No split in the IMA++ metadata: a seeded stratified split.
    assert attrs["split_rule"] == "seeded_stratified" == info.split_rule
    expected = seeded_stratified_split([s.decode() for s in data["image_id"]], data["malignant"], 0)
    assert [s.decode() for s in data["split"]] == expected
    assert attrs["format_version"] == FORMAT_VERSION
    assert attrs["input_size"] == 16 and attrs["n_images"] == 3
    assert tuple(attrs["normalization_mean"]) == IMAGENET_MEAN
    assert tuple(attrs["normalization_std"]) == IMAGENET_STD
    assert attrs["source"] == str(root.resolve())
    assert attrs["created"].endswith("+00:00")
    assert len(attrs["source_fingerprint"]) == 32 and attrs["fingerprint_rule"]
    assert "INTER_AREA" in attrs["resize_method"]
    assert info.n_images == 3 and info.n_with_iaa == 2
    assert info.labels == {"malignant": 1, "benign": 1, "unknown": 1}
    assert tree_digest(root) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["set.h5"]


def test_pixels_are_the_inter_area_resize(tmp_path):
    root = make_folder(tmp_path / "f")
    dataset = load_dataset(root)
    _export(dataset, tmp_path / "set.h5", size=20)
    data, *_ = _read(tmp_path / "set.h5")
    bgr = cv2.imread(str(root / "images" / "a.png"))
    expected = cv2.cvtColor(cv2.resize(bgr, (20, 20), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(data["images"][0], expected)


def test_folder_export_uses_metadata_splits(tmp_path):
    dataset = load_dataset(make_folder(tmp_path / "f"))
    info = _export(dataset, tmp_path / "set.h5", size=8)
    data, attrs, *_ = _read(tmp_path / "set.h5")
    assert [s.decode() for s in data["split"]] == ["train", "test", "val"]
    assert attrs["split_rule"] == "metadata" and info.splits == {"train": 1, "val": 1, "test": 1}
    assert data["malignant"].tolist() == [0, 1, 0]
    assert not np.isnan(data["iaa"][:2]).any() and np.isnan(data["iaa"][2])  # c has one annotator


def test_seeded_split_is_deterministic_and_stratified():
    ids = [f"img{i:03d}" for i in range(200)]
    strata = [1 if i % 4 == 0 else 0 for i in range(200)]
    first = seeded_stratified_split(ids, strata, seed=3)
    assert first == seeded_stratified_split(ids[::-1], strata[::-1], seed=3)[::-1]
    assert first != seeded_stratified_split(ids, strata, seed=4)
    malignant = [s for s, m in zip(first, strata, strict=True) if m]
    assert (malignant.count("train"), malignant.count("val"), malignant.count("test")) == (35, 5, 10)
    assert (first.count("train"), first.count("val"), first.count("test")) == (140, 20, 40)


def test_same_seed_same_file_content(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    _export(dataset, tmp_path / "a.h5", size=8, split_seed=5)
    _export(dataset, tmp_path / "b.h5", size=8, split_seed=5)
    a, attrs_a, *_ = _read(tmp_path / "a.h5")
    b, attrs_b, *_ = _read(tmp_path / "b.h5")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert attrs_a["source_fingerprint"] == attrs_b["source_fingerprint"]


def test_diagnosis_only_dataset_exports_with_nan_iaa(tmp_path):
    root = make_folder(tmp_path / "f")
    shutil.rmtree(root / "masks")
    (root / "masks").mkdir()
    info = _export(load_dataset(root), tmp_path / "set.h5", size=8)
    data, *_ = _read(tmp_path / "set.h5")
    assert info.n_images == 3 and info.n_with_iaa == 0
    assert np.isnan(data["iaa"]).all()


def test_iaa_from_a_series_with_file_name_ids(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    iaa = pd.Series({"ISIC_0000001.JPG": 0.5, "ISIC_0000003": 0.25})
    info = _export(dataset, tmp_path / "set.h5", size=8, iaa=iaa)
    data, attrs, *_ = _read(tmp_path / "set.h5")
    np.testing.assert_array_equal(data["iaa"], np.array([0.5, np.nan, 0.25], np.float32))
    assert attrs["iaa_source"] == "table" and info.n_with_iaa == 2


def test_unreadable_image_is_skipped_and_missing_image_counted(tmp_path):
    root = make_imapp(tmp_path / "r")
    (root / "ISIC_images" / "ISIC_0000002.JPG").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "ISIC_images" / "ISIC_0000003.JPG").unlink()
    info = _export(load_dataset(root), tmp_path / "set.h5", size=8, workers=2)
    data, attrs, *_ = _read(tmp_path / "set.h5")
    assert [s.decode() for s in data["image_id"]] == ["ISIC_0000001"]
    assert info.n_images == 1 and info.n_without_image == 1
    assert [(p.kind, p.image_id) for p in info.skipped] == [("truncated_file", "ISIC_0000002")]
    assert "ISIC_0000002.JPG" in info.skipped[0].message
    assert attrs["n_skipped"] == 1 and attrs["n_without_image"] == 1


def test_nothing_exportable_raises_and_leaves_no_file(tmp_path):
    root = make_folder(tmp_path / "f")
    for image in (root / "images").iterdir():
        image.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(TrainingSetError, match="nothing to export"):
        _export(load_dataset(root), out / "set.h5", size=8)
    assert list(out.iterdir()) == []


def test_refuses_to_write_into_the_dataset(tmp_path):
    root = make_imapp(tmp_path / "r")
    before = tree_digest(root)
    dataset = load_dataset(root)
    for target in (root / "set.h5", root / "ISIC_images" / "set.h5"):
        with pytest.raises(TrainingSetError, match="refusing") as excinfo:
            _export(dataset, target, size=8)
        assert str(target) in str(excinfo.value) and str(root) in str(excinfo.value)
    assert tree_digest(root) == before


def test_error_or_interruption_leaves_no_temporary_file(tmp_path, monkeypatch):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    out = tmp_path / "out"
    out.mkdir()
    job = iter_export_training_set(dataset, out / "set.h5", size=8, workers=1)
    next(job)
    assert len(list(out.iterdir())) == 1  # the temporary file, hidden, next to the target
    job.close()
    assert list(out.iterdir()) == []

    def boom(*args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(training_set, "seeded_stratified_split", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _export(dataset, out / "set.h5", size=8)
    assert list(out.iterdir()) == []


def test_split_ids_read_back_what_was_exported(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    path = tmp_path / "set.h5"
    _export(dataset, path, size=8)
    arrays, *_ = _read(path)
    expected: dict[str, set[str]] = {}
    for image_id, split in zip(arrays["image_id"], arrays["split"], strict=True):
        expected.setdefault(split.decode(), set()).add(image_id.decode())
    assert read_split_ids(path) == expected and sum(map(len, expected.values())) == 3
    with pytest.raises(TrainingSetError, match="absent.h5"):
        read_split_ids(tmp_path / "absent.h5")


def test_read_info_round_trip_and_bad_files(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    path = tmp_path / "set.h5"
    _export(dataset, path, size=8)
    info = read_training_set_info(path)
    assert info.n_images == 3 and info.input_size == 8 and info.chunks == (1, 8, 8, 3)
    assert info.attributes["format_version"] == FORMAT_VERSION
    assert sum(info.splits.values()) == 3

    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TrainingSetError, match="truncated"):
        read_training_set_info(truncated)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(TrainingSetError, match="not a readable HDF5"):
        read_training_set_info(text)
    old = tmp_path / "old.h5"
    shutil.copy(path, old)
    with h5py.File(old, "a") as h5:
        h5.attrs["format_version"] = 0
    with pytest.raises(TrainingSetError, match="older format"):
        read_training_set_info(old)
    with pytest.raises(TrainingSetError, match="does not exist"):
        read_training_set_info(tmp_path / "absent.h5")


def test_read_iaa_table_detects_pairwise_and_image_level(tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    pairwise = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=None)).pairwise
    write_table(pairwise, tmp_path / "pairwise.csv")
    write_table(image_level_table(pairwise), tmp_path / "image_level.csv")
    from_pairs = read_iaa_table(tmp_path / "pairwise.csv")
    from_level = read_iaa_table(tmp_path / "image_level.csv")
    assert list(from_pairs.index) == ["ISIC_0000001", "ISIC_0000002"]
    np.testing.assert_allclose(from_pairs.to_numpy(), from_level.to_numpy())
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TrainingSetError, match="not an IMA\\+\\+ pairwise table"):
        read_iaa_table(tmp_path / "other.csv")


def test_cli_end_to_end(tmp_path, capsys):
    root = make_imapp(tmp_path / "r")
    out = tmp_path / "new" / "set.h5"
    assert main(["export-training-set", str(root), "--out", str(out), "--size", "8", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "wrote 3 images of 8 x 8 px" in text and "with IAA 2" in text
    assert "malignant 1, benign 1, unknown 1" in text and "seeded_stratified" in text
    assert read_training_set_info(out).n_images == 3

    pairwise = run_to_end(iter_dataset_agreement(load_dataset(root), workers=1, cache=None)).pairwise
    write_table(pairwise, tmp_path / "pairwise.csv")
    assert main(["export-training-set", str(root), "--out", str(out), "--size", "8",
                 "--iaa-from", str(tmp_path / "pairwise.csv"), "--limit", "2"]) == 0
    assert "wrote 2 images" in capsys.readouterr().out
    assert read_training_set_info(out).attributes["iaa_source"] == "table"

    assert main(["export-training-set", str(root), "--out", str(root / "x.h5")]) == 1
    assert "refusing" in capsys.readouterr().err
    for image in (root / "ISIC_images").iterdir():
        image.write_bytes(b"\xff\xd8garbage")
    assert main(["export-training-set", str(root), "--out", str(tmp_path / "none.h5")]) == 1
    assert "nothing to export" in capsys.readouterr().err
    assert not (tmp_path / "none.h5").exists()


def test_real_imapp_images_with_published_iaa(tmp_path, capsys):
    imapp = require_shared(IMAPP_DIR)
    train = require_shared(ISIC256_DIR / "train")
    table = imapp / IMAGE_LEVEL_CSV
    out = tmp_path / "real.h5"
    assert main(["export-training-set", str(imapp), "--images-dir", str(train), "--iaa-from", str(table),
                 "--size", "32", "--out", str(out), "--limit", "600"]) == 0
    assert "wrote 600 images of 32 x 32 px" in capsys.readouterr().out
    published = pd.read_csv(table)
    published = published.set_index(published["img_id"].str.removesuffix(".JPG"))["dice_score_mean"]
    data, attrs, chunks, _ = _read(out)
    ids = [s.decode() for s in data["image_id"]]
    known = pd.Series(data["iaa"], index=ids).dropna()
    assert len(known) > 100
    np.testing.assert_allclose(known.to_numpy(), published[known.index].to_numpy().astype(np.float32))
    assert np.isnan(data["iaa"][[i not in published.index for i in ids]]).all()
    assert data["images"].shape == (600, 32, 32, 3) and chunks == (1, 32, 32, 3)
    assert attrs["layout"] == "imapp" and set(data["malignant"].tolist()) <= {-1, 0, 1}
