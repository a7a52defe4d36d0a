"""Train/val/test splits for a training set: from metadata, or seeded and stratified."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val", "test")

#: IMA++'s ratio, used when the metadata does not give every image a split.
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)

# Spellings of the split names that metadata files use, mapped to ours.
_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
            "validation": "val", "test": "test", "testing": "test"}

SPLIT_RULE_METADATA = "metadata"
SPLIT_RULE_SEEDED = "seeded_stratified"


def metadata_splits(splits: Sequence[str | None]) -> list[str] | None:
    """The metadata's splits normalised to ``train``/``val``/``test``, or ``None``.

    ``None`` when any image lacks a split or has one we do not recognise: a
    partial split is not used, so that no image silently lands in training.
    """
    normalised = [_ALIASES.get((s or "").strip().lower()) for s in splits]
    if not normalised or any(s is None for s in normalised):
        return None
    return normalised  # type: ignore[return-value]


def seeded_stratified_split(
    image_ids: Sequence[str],
    strata: Sequence[int],
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> list[str]:
    """A reproducible split, stratified by ``strata`` (e.g. malignant 1/0/-1).

    Within each stratum the ids are sorted (so the dataset's order does not
    matter), shuffled with ``numpy.random.default_rng(seed)``, and cut at the
    rounded cumulative ``fractions``: the first ~70 % train, then ~10 % val, the
    rest test. The same ids, strata and seed always give the same split.
    """
    if len(image_ids) != len(strata):
        raise ValueError("image_ids and strata differ in length")
    bounds = np.cumsum(np.asarray(fractions, dtype=float))
    bounds = bounds / bounds[-1]
    rng = np.random.default_rng(seed)
    out = [""] * len(image_ids)
    strata_arr = np.asarray(strata)
    for stratum in sorted(set(strata_arr.tolist())):
        members = np.flatnonzero(strata_arr == stratum)
        members = members[np.argsort([image_ids[i] for i in members], kind="stable")]
        members = members[rng.permutation(len(members))]
        cuts = np.rint(bounds * len(members)).astype(int)
        for position, index in enumerate(members):
            out[index] = SPLITS[int(np.searchsorted(cuts, position, side="right"))]
    return out
