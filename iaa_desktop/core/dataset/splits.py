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


def carve_validation(
    image_ids: Sequence[str],
    splits: Sequence[str],
    strata: Sequence[int],
    seed: int = 0,
    fraction: float = DEFAULT_FRACTIONS[1] / (DEFAULT_FRACTIONS[0] + DEFAULT_FRACTIONS[1]),
) -> list[str]:
    """``splits`` with a seeded, stratified ``fraction`` of ``train`` moved to ``val``.

    For datasets whose official release has a training and a test part but no
    validation part (the official test part is kept as it is). When some image
    is already ``val``, ``splits`` is returned unchanged. Within each stratum the
    training ids are sorted, shuffled with ``numpy.random.default_rng(seed)`` and
    the first ``round(fraction * n)`` become ``val``.
    """
    out = list(splits)
    if len(out) != len(image_ids) or len(out) != len(strata):
        raise ValueError("image_ids, splits and strata differ in length")
    if "val" in out:
        return out
    rng = np.random.default_rng(seed)
    strata_arr = np.asarray(strata)
    train = np.array([s == "train" for s in out])
    for stratum in sorted(set(strata_arr[train].tolist())):
        members = np.flatnonzero(train & (strata_arr == stratum))
        members = members[np.argsort([image_ids[i] for i in members], kind="stable")]
        members = members[rng.permutation(len(members))]
        for index in members[: int(round(fraction * len(members)))]:
            out[index] = "val"
    return out


def grouped_stratified_split(
    image_ids: Sequence[str],
    strata: Sequence[int],
    groups: Sequence[str | None],
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> list[str]:
    """A seeded stratified split that keeps the images of one group (one lesion) together.

    A group's stratum is the highest of its images' (malignant if any image is).
    Within each stratum the groups are sorted by name, shuffled with
    ``numpy.random.default_rng(seed)`` and laid end to end; a group goes to the
    split in which its first image falls at the rounded cumulative ``fractions``
    of the stratum's images. Images without a group are groups of their own (named
    by their id), so with no shared group this is ``seeded_stratified_split``.
    """
    if not len(image_ids) == len(strata) == len(groups):
        raise ValueError("image_ids, strata and groups differ in length")
    bounds = np.cumsum(np.asarray(fractions, dtype=float))
    bounds = bounds / bounds[-1]
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group if group else image_ids[index], []).append(index)
    group_stratum = {name: max(int(strata[i]) for i in rows) for name, rows in members.items()}
    rng = np.random.default_rng(seed)
    out = [""] * len(image_ids)
    for stratum in sorted(set(group_stratum.values())):
        names = sorted(name for name, s in group_stratum.items() if s == stratum)
        names = [names[i] for i in rng.permutation(len(names))]
        cuts = np.rint(bounds * sum(len(members[n]) for n in names)).astype(int)
        start = 0
        for name in names:
            split = SPLITS[int(np.searchsorted(cuts, start, side="right"))]
            for index in members[name]:
                out[index] = split
            start += len(members[name])
    return out
