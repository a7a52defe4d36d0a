"""Training-set export: a dataset's images, IAA, labels and splits in one HDF5 file.

The file is what the trainer reads (it never opens the dataset itself). Layout
(``FORMAT_VERSION`` 1), N images of ``size`` x ``size`` pixels:

===============  ======================  =============================================
dataset          dtype, shape            meaning
===============  ======================  =============================================
``images``       uint8 (N, S, S, 3)      RGB, resized with ``cv2.INTER_AREA`` (aspect
                                         ratio not kept); one chunk per image, no
                                         compression (fast reads by index)
``iaa``          float32 (N,)            mean human-human Dice; NaN where unknown
``malignant``    int8 (N,)               1 malignant, 0 benign, -1 unknown
``diagnosis``    UTF-8 string (N,)       the dataset's diagnosis ("" when unknown)
``split``        UTF-8 string (N,)       ``train`` / ``val`` / ``test``
``image_id``     UTF-8 string (N,)       the dataset's image id
===============  ======================  =============================================

Attributes: ``format_version``, ``source`` (dataset path), ``layout``,
``source_fingerprint`` (see :func:`source_fingerprint`), ``fingerprint_rule``,
``resize_method``, ``input_size``, ``channel_order``, ``normalization_mean`` /
``normalization_std`` (ImageNet's, what timm backbones expect), ``created`` (UTC
ISO 8601), ``n_images``, ``split_rule`` (``metadata`` or ``seeded_stratified``),
``split_seed``, ``split_fractions``, ``iaa_source``, ``n_skipped``,
``n_without_image``, and ``n_review_excluded`` / ``review_excluded`` (how many and
which lesions were left out because a reviewer marked them ``exclude``; a JSON
list of image ids, ``[]`` when the reviews were not applied).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from iaa_desktop.core.dataset.model import Dataset, Lesion, Problem, make_problem
from iaa_desktop.core.dataset.splits import (
    DEFAULT_FRACTIONS,
    SPLIT_RULE_METADATA,
    SPLIT_RULE_SEEDED,
    SPLITS,
    metadata_splits,
    seeded_stratified_split,
)
from iaa_desktop.core.progress import Progress
from iaa_desktop.core.training.iaa_labels import (
    TrainingSetError,
    _iter_dataset_iaa,
    _lookup_iaa,
)
from iaa_desktop.core.training.image_prep import _iter_prepared

FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_METHOD = ("cv2.INTER_AREA to a square (aspect ratio not kept); JPEGs at least twice the "
                 "target size are first decoded at 1/2, 1/4 or 1/8 scale")
FINGERPRINT_RULE = ("blake2b-128 over each exported image in order: image id, file size in bytes, "
                    "file mtime in ns, IAA as float32 (NaN for unknown)")
DATASETS = ("images", "iaa", "malignant", "diagnosis", "split", "image_id")



@dataclass(frozen=True)
class TrainingSetInfo:
    """What a training-set file holds (from the export, or read back from the file)."""

    path: Path
    n_images: int
    input_size: int
    n_with_iaa: int
    labels: Mapping[str, int]
    splits: Mapping[str, int]
    split_rule: str
    attributes: Mapping[str, object]
    skipped: tuple[Problem, ...] = ()
    n_without_image: int = 0
    seconds: float = 0.0
    chunks: tuple[int, ...] | None = field(default=None)


# --- fingerprint, safety -------------------------------------------------------------------------

def source_fingerprint(lesions: Sequence[Lesion], iaa: np.ndarray) -> str:
    """Hash of what the exported file was made from (see ``FINGERPRINT_RULE``).

    It changes when an image is added, removed, replaced or touched, or when an
    IAA value changes, so the trainer can tell a stale training set.
    """
    digest = hashlib.blake2b(digest_size=16)
    for lesion, value in zip(lesions, np.asarray(iaa, dtype=np.float32), strict=True):
        stat = lesion.image_path.stat() if lesion.image_path else None
        size, mtime = (stat.st_size, stat.st_mtime_ns) if stat else (-1, -1)
        digest.update(f"{lesion.image_id}\0{size}\0{mtime}\0".encode())
        digest.update(np.float32(value).tobytes() if not np.isnan(value) else b"nan")
    return digest.hexdigest()


def _is_inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _check_destination(dataset: Dataset, out_path: Path) -> None:
    folders = {dataset.root, *(lesion.image_path.parent for lesion in dataset if lesion.image_path)}
    for folder in sorted(folders, key=str):
        if _is_inside(out_path, folder):
            raise TrainingSetError(
                f"{out_path}: refusing to write the training set into the dataset directory {folder}")
    if not out_path.parent.is_dir():
        raise TrainingSetError(f"{out_path}: the folder {out_path.parent} does not exist")


# --- export --------------------------------------------------------------------------------------

def _malignant_code(lesion: Lesion) -> int:
    flag = lesion.is_malignant
    return -1 if flag is None else int(flag)


def iter_export_training_set(
    dataset: Dataset,
    out_path: str | Path,
    *,
    size: int = 224,
    iaa: pd.Series | None = None,
    split_seed: int = 0,
    workers: int | None = None,
    limit: int | None = None,
    parallel: str = "threads",
    cache="default",
    excluded_ids: Iterable[str] = (),
) -> Generator[Progress, None, TrainingSetInfo]:
    """Write ``dataset`` as an HDF5 training set (layout in the module docstring).

    Parameters
    ----------
    dataset
        An indexed dataset. Lesions without an image file are skipped and counted;
        images that cannot be decoded are skipped and listed (``info.skipped``).
    out_path
        The ``.h5`` file. Written to a temporary file next to it and renamed at
        the end, so an interrupted or failed export leaves no partial file.
    size
        Side of the square images, in pixels.
    iaa
        IAA per image id (a Series; "ISIC_x.JPG" style ids are accepted too).
        Default: computed from the dataset's masks (mean human-human Dice; NaN
        for lesions with fewer than two human masks).
    split_seed
        Seed of the stratified 70/10/20 split used when the metadata does not
        give every exported image a train/val/test split.
    workers
        Threads (or processes) decoding images; default every core.
    limit
        Export only the first ``limit`` lesions that have an image file.
    parallel
        ``"threads"`` (default: cv2 releases the GIL, and it measured faster) or
        ``"processes"`` (spawned).
    cache
        Agreement cache passed to ``iter_dataset_agreement`` (``"default"``: the
        user cache; ``None``: no cache).
    excluded_ids
        Image ids to leave out (the lesions reviewers marked ``exclude``); the
        ones found are recorded in the ``review_excluded`` attribute.

    Raises
    ------
    TrainingSetError
        When ``out_path`` lies inside the dataset, its folder is missing, or no
        image could be exported.
    """
    started = time.perf_counter()
    out_path = Path(out_path)
    if size < 1:
        raise TrainingSetError(f"image size must be a positive number of pixels, got {size}")
    _check_destination(dataset, out_path)
    workers = max(1, workers or os.cpu_count() or 1)
    excluded = set(excluded_ids)
    review_excluded = sorted(lesion.image_id for lesion in dataset if lesion.image_id in excluded)
    kept = [lesion for lesion in dataset if lesion.image_id not in excluded]
    candidates = [lesion for lesion in kept if lesion.image_path is not None]
    n_without_image = len(kept) - len(candidates)
    if limit is not None:
        candidates = candidates[: max(0, limit)]

    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        written: list[Lesion] = []
        skipped: list[Problem] = []
        with h5py.File(tmp, "w") as h5:
            images = h5.create_dataset(
                "images", shape=(len(candidates), size, size, 3), maxshape=(None, size, size, 3),
                dtype=np.uint8, chunks=(1, size, size, 3))
            paths = [str(lesion.image_path) for lesion in candidates]
            for index, image, kind, message in _iter_prepared(paths, size, workers, parallel):
                lesion = candidates[index]
                if image is None:
                    skipped.append(make_problem(kind, message, paths[index], lesion.image_id))
                else:
                    images[len(written)] = image
                    written.append(lesion)
                yield Progress(index + 1, len(candidates), lesion.image_id)
            if not written:
                raise TrainingSetError(
                    f"{dataset.root}: nothing to export: {len(candidates):,} images tried, "
                    f"{len(skipped):,} unreadable, {n_without_image:,} lesions without an image file")
            images.resize(len(written), axis=0)
            if iaa is not None:
                iaa_values, iaa_source = _lookup_iaa(iaa, written), "table"
            else:
                iaa_values = yield from _iter_dataset_iaa(dataset, written, workers, cache)
                iaa_source = "masks: mean Dice over human-human mask pairs"
            malignant = np.array([_malignant_code(lesion) for lesion in written], dtype=np.int8)
            splits = metadata_splits([lesion.split for lesion in written])
            split_rule = SPLIT_RULE_METADATA
            if splits is None:
                split_rule = SPLIT_RULE_SEEDED
                splits = seeded_stratified_split([lesion.image_id for lesion in written], malignant,
                                                 split_seed)
            text = h5py.string_dtype("utf-8")
            h5.create_dataset("iaa", data=iaa_values.astype(np.float32))
            h5.create_dataset("malignant", data=malignant)
            h5.create_dataset("diagnosis", data=[lesion.diagnosis or "" for lesion in written], dtype=text)
            h5.create_dataset("split", data=splits, dtype=text)
            h5.create_dataset("image_id", data=[lesion.image_id for lesion in written], dtype=text)
            attributes = {
                "format_version": FORMAT_VERSION,
                "source": str(dataset.root.resolve()),
                "layout": dataset.layout,
                "source_fingerprint": source_fingerprint(written, iaa_values),
                "fingerprint_rule": FINGERPRINT_RULE,
                "resize_method": RESIZE_METHOD,
                "input_size": size,
                "channel_order": "RGB",
                "normalization_mean": np.array(IMAGENET_MEAN),
                "normalization_std": np.array(IMAGENET_STD),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "n_images": len(written),
                "split_rule": split_rule,
                "split_seed": split_seed,
                "split_fractions": np.array(DEFAULT_FRACTIONS),
                "iaa_source": iaa_source,
                "n_skipped": len(skipped),
                "n_without_image": n_without_image,
                "n_review_excluded": len(review_excluded),
                "review_excluded": json.dumps(review_excluded),
            }
            h5.attrs.update(attributes)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    info = read_training_set_info(out_path)
    return replace(info, skipped=tuple(skipped), n_without_image=n_without_image,
                   seconds=time.perf_counter() - started)


# --- reading back --------------------------------------------------------------------------------

def _plain(value):
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def read_training_set_info(path: str | Path) -> TrainingSetInfo:
    """The attributes and counts of a training-set file, checking it is one we can read.

    Raises
    ------
    TrainingSetError
        For a missing, truncated or non-HDF5 file, an older or newer format, or
        missing / inconsistent datasets.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingSetError(f"{path}: training set file does not exist")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise TrainingSetError(
            f"{path}: not a readable HDF5 training set (truncated or not HDF5: {exc})") from None
    with h5:
        version = h5.attrs.get("format_version")
        if version is None:
            raise TrainingSetError(f"{path}: not an IAA Desktop training set (no format_version attribute)")
        if int(version) != FORMAT_VERSION:
            age = "an older" if int(version) < FORMAT_VERSION else "a newer"
            raise TrainingSetError(
                f"{path}: training set is in {age} format (version {int(version)}; this version reads "
                f"{FORMAT_VERSION}): export it again")
        missing = [name for name in DATASETS if name not in h5]
        if missing:
            raise TrainingSetError(f"{path}: training set lacks dataset(s) {', '.join(missing)}")
        try:
            lengths = {name: h5[name].shape[0] for name in DATASETS}
            attributes = {key: _plain(value) for key, value in h5.attrs.items()}
            iaa = h5["iaa"][()]
            malignant = h5["malignant"][()]
            splits = [s.decode() if isinstance(s, bytes) else s for s in h5["split"][()]]
            chunks = h5["images"].chunks
            input_size = int(h5["images"].shape[1])
        except (OSError, KeyError, ValueError) as exc:
            raise TrainingSetError(f"{path}: training set cannot be read (truncated? {exc})") from None
    if len(set(lengths.values())) != 1:
        raise TrainingSetError(f"{path}: training set datasets differ in length ({lengths})")
    codes = Counter(malignant.tolist())
    counts = Counter(splits)
    return TrainingSetInfo(
        path=path,
        n_images=lengths["images"],
        input_size=input_size,
        n_with_iaa=int(np.count_nonzero(~np.isnan(iaa))),
        labels={"malignant": codes.get(1, 0), "benign": codes.get(0, 0), "unknown": codes.get(-1, 0)},
        splits={name: counts.get(name, 0) for name in SPLITS},
        split_rule=str(attributes.get("split_rule", "")),
        attributes=attributes,
        n_without_image=int(attributes.get("n_without_image", 0)),
        chunks=chunks,
    )


def read_split_ids(path: str | Path) -> dict[str, frozenset[str]]:
    """The image ids of each split of a training-set file (``train``, ``val``, ``test``, as stored).

    Raises
    ------
    TrainingSetError
        For a file that is not a readable training set (named in the message).
    """
    path = Path(path)
    read_training_set_info(path)  # the same checks and messages as everywhere else
    with h5py.File(path, "r") as h5:
        ids = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["image_id"][()]]
        splits = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["split"][()]]
    out: dict[str, set[str]] = {}
    for image_id, split in zip(ids, splits, strict=True):
        out.setdefault(split, set()).add(image_id)
    return {split: frozenset(members) for split, members in out.items()}
