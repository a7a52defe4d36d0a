"""Fold assignment, label loading and option checking of ``experiments/cv_study.py``."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from experiments.cv_study import load_labels, replace_stages, stratified_folds
from tests.experiments.synthetic import write_shared
from tests.shared_data import IMAPP_DIR, ISIC256_DIR, require_shared


def _strata(sizes: dict[int, int]) -> np.ndarray:
    strata = np.concatenate([np.full(n, value) for value, n in sizes.items()])
    return np.random.default_rng(7).permutation(strata)  # strata interleaved, as real rows are


def test_every_row_in_exactly_one_fold_and_folds_balanced():
    strata = _strata({0: 23, 1: 9, 2: 5, 3: 14})
    folds = stratified_folds(strata, 5, seed=0)
    assert folds.shape == strata.shape
    assert set(folds.tolist()) == set(range(5))
    test_sets = [set(np.flatnonzero(folds == f).tolist()) for f in range(5)]
    assert sum(len(s) for s in test_sets) == len(strata)  # disjoint ...
    assert set().union(*test_sets) == set(range(len(strata)))  # ... and covering every row
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize("k", [2, 3, 5])
def test_each_stratum_spread_evenly_over_the_folds(k):
    strata = _strata({0: 23, 1: 9, 2: 5, 3: 14})
    folds = stratified_folds(strata, k, seed=3)
    for value in np.unique(strata):
        counts = np.bincount(folds[strata == value], minlength=k)
        assert counts.max() - counts.min() <= 1, (value, counts)


def test_folds_are_seeded_and_reproducible():
    strata = _strata({0: 40, 1: 40})
    first = stratified_folds(strata, 5, seed=0)
    assert np.array_equal(first, stratified_folds(strata, 5, seed=0))
    assert not np.array_equal(first, stratified_folds(strata, 5, seed=1))


def test_load_labels_joins_malignancy_and_iaa_and_drops_the_rest(tmp_path):
    expected = write_shared(tmp_path)
    paths, iaa, malignant, ids = load_labels(tmp_path)
    assert len(paths) == len(ids) == expected["n_images"]  # indeterminate and unlisted left out
    assert "ISIC_9000000" not in ids and "ISIC_9000001" not in ids
    assert int(malignant.sum()) == expected["n_malignant"]
    assert int((~np.isnan(iaa)).sum()) == expected["n_iaa"]
    for image_id, value in zip(ids, iaa, strict=True):
        if image_id in expected["iaa"]:
            assert value == pytest.approx(expected["iaa"][image_id], abs=1e-6)
        else:
            assert np.isnan(value)
    assert {p.parent.name for p in paths} == {"train", "val"}


def test_real_shared_images_give_the_study_counts():
    require_shared(IMAPP_DIR / "IMAplusplus_img_metadata.csv")
    require_shared(ISIC256_DIR / "train")
    paths, iaa, malignant, _ = load_labels(IMAPP_DIR.parent)
    # The README's table is computed on these: 2,032 labelled images, 404 malignant, 611 with IAA.
    assert (len(paths), int(malignant.sum()), int((~np.isnan(iaa)).sum())) == (2032, 404, 611)
    folds = stratified_folds(malignant * 2 + (~np.isnan(iaa)), 5, seed=0)
    for subset in (malignant == 1, ~np.isnan(iaa)):
        counts = np.bincount(folds[subset], minlength=5)
        assert counts.max() - counts.min() <= 2  # each is two strata, each spread within one


def _args(**overrides) -> argparse.Namespace:
    values = {"stages": "probe,recipe", "recipes": "", "tta": "flip"} | overrides
    return argparse.Namespace(**values)


def test_options_become_tuples_and_none_tta_is_always_kept():
    args = replace_stages(_args(stages=" recipe , probe", recipes="adamw_l1_cosine", tta="flip,flip_rot"))
    assert args.stages == ("recipe", "probe")
    assert args.recipes == ("adamw_l1_cosine",)
    assert args.tta == ("none", "flip", "flip_rot")


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [("stages", "probe,recipes", "--stages"), ("recipes", "adamw", "--recipes"), ("tta", "rot", "--tta")],
)
def test_unknown_option_values_are_refused_by_name(field, value, option):
    with pytest.raises(SystemExit, match=f"{option}: unknown"):
        replace_stages(_args(**{field: value}))
