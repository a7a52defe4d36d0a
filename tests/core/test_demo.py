"""The synthetic demo dataset: layout, determinism, caching, and the IAA effect it is built to show."""

from __future__ import annotations

import csv
import hashlib
import itertools
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import platformdirs
import pytest
from scipy.stats import mannwhitneyu

from iaa_desktop.core.dataset import demo
from iaa_desktop.core.dataset.demo_annotators import ROSTER
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress

SEG_CSV = "IMAplusplus_seg_metadata.csv"
IMG_CSV = "IMAplusplus_img_metadata.csv"
SMALL = 6


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default demo (seed 0, 60 lesions), generated once for the module."""
    return demo.write_demo(tmp_path_factory.mktemp("full") / "demo", seed=0)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.write_demo(tmp_path_factory.mktemp("small") / "demo", seed=0, n_lesions=SMALL)


def read_masks(root: Path) -> dict[str, np.ndarray]:
    return {
        p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((root / "segs").iterdir())
    }


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


# --- layout and schema ---------------------------------------------------------


def test_csv_columns_and_counts(full_demo: Path) -> None:
    with open(full_demo / SEG_CSV, newline="") as f:
        assert next(csv.reader(f)) == [
            "ISIC_id", "img_filename", "seg_filename", "annotator", "tool", "skill_level",
            "mskObjectID", "mask_md5",
        ]  # fmt: skip
    img = pd.read_csv(full_demo / IMG_CSV)
    required = {
        "isic_id", "benign_malignant", "diagnosis_1", "diagnosis_2", "diagnosis_3", "pixels_x",
        "pixels_y", "age_approx", "sex", "anatom_site_general", "split",
    }  # fmt: skip
    assert required <= set(img.columns)
    assert list(img.isic_id) == [f"DEMO_{i:04d}" for i in range(60)]
    assert set(img.benign_malignant) == {"benign", "malignant"}
    assert (img.diagnosis_1 == img.benign_malignant.str.capitalize()).all()
    assert set(img.diagnosis_3) <= {d.diagnosis_3 for d in demo.DIAGNOSES}
    assert 0.25 <= (img.benign_malignant == "malignant").mean() <= 0.3
    assert {(w, h) for w, h in zip(img.pixels_x, img.pixels_y, strict=True)} <= set(
        demo.IMAGE_SIZES
    )
    assert "synthetic" in (full_demo / "README.txt").read_text().lower()


def test_segmentation_rows_match_files(full_demo: Path) -> None:
    seg = pd.read_csv(full_demo / SEG_CSV, dtype=str)
    roster = {s.annotator: (s.tool, s.skill) for s in ROSTER}
    assert sorted(p.name for p in (full_demo / "segs").iterdir()) == sorted(seg.seg_filename)
    assert seg.mskObjectID.str.fullmatch(r"[0-9a-f]{24}").all()
    assert seg.mskObjectID.is_unique
    for row in seg.itertuples():
        assert row.img_filename == f"{row.ISIC_id}.JPG"
        assert (row.tool, row.skill_level) == roster[row.annotator]
        expected = f"{row.ISIC_id}_{row.annotator}_{row.tool}_{row.skill_level}_{row.mskObjectID}"
        assert row.seg_filename == expected + ".png"
        data = (full_demo / "segs" / row.seg_filename).read_bytes()
        assert hashlib.md5(data).hexdigest() == row.mask_md5


def test_annotators_per_lesion_and_repeats(full_demo: Path) -> None:
    seg = pd.read_csv(full_demo / SEG_CSV)
    distinct = seg.groupby("ISIC_id").annotator.nunique()
    assert distinct.between(2, 5).all()
    assert set(distinct) == {2, 3, 4, 5}
    masks = seg.groupby("ISIC_id").size()
    assert (masks >= distinct).all()
    assert (masks > distinct).any(), "no annotator segmented any image twice"
    assert set(seg.annotator) <= {s.annotator for s in ROSTER}


def test_every_mask_is_binary_and_the_image_size(full_demo: Path) -> None:
    seg = pd.read_csv(full_demo / SEG_CSV)
    img = pd.read_csv(full_demo / IMG_CSV).set_index("isic_id")
    images = {}
    for row in seg.itertuples():
        if row.ISIC_id not in images:
            image = cv2.imread(str(full_demo / "images" / row.img_filename), cv2.IMREAD_COLOR)
            assert image is not None and image.ndim == 3
            meta = img.loc[row.ISIC_id]
            assert image.shape[:2] == (meta.pixels_y, meta.pixels_x)
            images[row.ISIC_id] = image.shape[:2]
        mask = cv2.imread(str(full_demo / "segs" / row.seg_filename), cv2.IMREAD_UNCHANGED)
        assert mask is not None, row.seg_filename
        assert mask.dtype == np.uint8 and mask.shape == images[row.ISIC_id]
        assert set(np.unique(mask)) == {0, 255}
    assert len(images) == 60


def test_split_is_stratified_70_10_20(full_demo: Path) -> None:
    img = pd.read_csv(full_demo / IMG_CSV)
    for _, group in img.groupby("benign_malignant"):
        counts = group.split.value_counts()
        n = len(group)
        assert counts.get("val", 0) == round(0.1 * n)
        assert counts.get("test", 0) == round(0.2 * n)
        assert counts["train"] == n - round(0.1 * n) - round(0.2 * n)


# --- the property the demo exists to show ------------------------------------


def test_malignant_lesions_have_lower_agreement(full_demo: Path) -> None:
    seg = pd.read_csv(full_demo / SEG_CSV)
    img = pd.read_csv(full_demo / IMG_CSV).set_index("isic_id")
    iaa = {}
    for image_id, rows in seg.groupby("ISIC_id"):
        masks = [
            cv2.imread(str(full_demo / "segs" / name), cv2.IMREAD_UNCHANGED)
            for name in rows.seg_filename
        ]
        iaa[image_id] = np.mean([dice(a, b) for a, b in itertools.combinations(masks, 2)])
    label = img.benign_malignant
    benign = [v for k, v in iaa.items() if label[k] == "benign"]
    malignant = [v for k, v in iaa.items() if label[k] == "malignant"]
    assert np.mean(benign) - np.mean(malignant) > 0.03
    assert mannwhitneyu(malignant, benign, alternative="less").pvalue < 0.05
    # Plausible agreement, not near-identical masks nor noise.
    assert 0.75 < np.mean(malignant) < np.mean(benign) < 0.97


# --- determinism -----------------------------------------------------------------


def test_same_seed_gives_identical_files(small_demo: Path, tmp_path: Path) -> None:
    again = demo.write_demo(tmp_path / "again", seed=0, n_lesions=SMALL)
    for name in (SEG_CSV, IMG_CSV):
        assert (small_demo / name).read_bytes() == (again / name).read_bytes()
    first, second = read_masks(small_demo), read_masks(again)
    assert first.keys() == second.keys()
    for name, mask in first.items():
        np.testing.assert_array_equal(mask, second[name])


def test_lesion_does_not_depend_on_the_number_of_lesions(small_demo: Path, full_demo: Path):
    small = pd.read_csv(small_demo / SEG_CSV)
    full = pd.read_csv(full_demo / SEG_CSV)
    pd.testing.assert_frame_equal(small, full[full.ISIC_id.isin(small.ISIC_id)])
    for name in small.seg_filename[:4]:
        assert (small_demo / "segs" / name).read_bytes() == (full_demo / "segs" / name).read_bytes()
    image = "images/DEMO_0003.JPG"
    assert (small_demo / image).read_bytes() == (full_demo / image).read_bytes()


def test_another_seed_differs(small_demo: Path, tmp_path: Path) -> None:
    other = demo.write_demo(tmp_path / "other", seed=1, n_lesions=SMALL)
    assert (small_demo / SEG_CSV).read_bytes() != (other / SEG_CSV).read_bytes()
    image = "images/DEMO_0000.JPG"
    assert (small_demo / image).read_bytes() != (other / image).read_bytes()


# --- writing ---------------------------------------------------------------------


def test_progress_per_lesion_and_return_value(tmp_path: Path) -> None:
    job = demo.iter_write_demo(tmp_path / "d", seed=3, n_lesions=3)
    steps = []
    with pytest.raises(StopIteration) as stop:
        while True:
            steps.append(next(job))
    assert steps == [Progress(i + 1, 3, f"DEMO_{i:04d}") for i in range(3)]
    assert stop.value.value == tmp_path / "d"
    assert demo.is_complete_demo(tmp_path / "d", seed=3, n_lesions=3)


def test_cancelled_run_leaves_nothing(tmp_path: Path) -> None:
    job = demo.iter_write_demo(tmp_path / "d", n_lesions=4)
    next(job)
    job.close()
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(IAAError, match="not empty"):
        demo.write_demo(target, n_lesions=1)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary left
    (tmp_path / "file").write_text("x")
    with pytest.raises(IAAError, match="is a file"):
        demo.write_demo(tmp_path / "file", n_lesions=1)


def test_replaces_an_earlier_demo_and_accepts_an_empty_folder(tmp_path: Path) -> None:
    target = tmp_path / "d"
    target.mkdir()
    demo.write_demo(target, seed=0, n_lesions=2)
    demo.write_demo(target, seed=1, n_lesions=1)
    assert demo.read_marker(target)["seed"] == 1
    assert len(pd.read_csv(target / IMG_CSV)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.parametrize("kwargs", [{"seed": -1}, {"n_lesions": 0}])
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(IAAError):
        demo.write_demo(tmp_path / "d", **kwargs)


# --- the cached copy -------------------------------------------------------------


def test_cache_dir_from_env_generated_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(demo.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(demo, "DEFAULT_N_LESIONS", 2)
    steps = []
    folder = demo.demo_dataset_dir(seed=5, on_progress=steps.append)
    assert folder == tmp_path / f"demo-v{demo.DEMO_VERSION}-seed5"
    assert len(steps) == 2 and demo.is_complete_demo(folder, seed=5, n_lesions=2)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cached demo was generated again")

    monkeypatch.setattr(demo, "iter_write_demo", must_not_run)
    assert demo.demo_dataset_dir(seed=5) == folder


def test_cache_dir_defaults_to_platformdirs(monkeypatch) -> None:
    monkeypatch.delenv(demo.CACHE_ENV, raising=False)
    expected = Path(platformdirs.user_cache_dir("iaa-desktop"))
    assert demo.demo_cache_path(2) == expected / f"demo-v{demo.DEMO_VERSION}-seed2"

