"""Training-set export and read speed on the 2,000 real 256-px ISIC 2017 images.

Export (``iter_export_training_set``) at ``--size`` px with workers=1 and
workers=2, threads and spawned processes (images/s, IAA given as a table so
only decoding, resizing and writing are timed). Then reading the result one
index at a time in random order (what a shuffling data loader does) from the
HDF5 file versus a plain ``.npy`` memmap of the same array, first pass and
second pass. The files were just written, so both are in the page cache:
"first" is h5py's / numpy's cold-handle cost, not a cold disk.

    python benchmarks/bench_training_set.py [--size 224] [--out-dir /tmp/iaa-bench-training-set]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from iaa_desktop.core.dataset.model import Dataset, Lesion  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.core.training.training_set import iter_export_training_set  # noqa: E402

IMAGES = REPO.parent / "shared" / "data" / "isic2017_256" / "train"


def image_dataset(folder: Path, limit: int | None) -> Dataset:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    lesions = tuple(Lesion(image_id=p.stem, image_path=p) for p in paths)
    return Dataset(root=folder, layout="folder", lesions=lesions)


def time_export(dataset: Dataset, out: Path, size: int, workers: int, parallel: str) -> float:
    iaa = pd.Series(dtype=float)  # no masks: time decoding, resizing and writing only
    start = time.perf_counter()
    run_to_end(iter_export_training_set(dataset, out, size=size, iaa=iaa, workers=workers,
                                        parallel=parallel))
    return len(dataset) / (time.perf_counter() - start)


def time_reads(read, order: np.ndarray) -> float:
    start = time.perf_counter()
    total = 0
    for index in order:
        total += int(read(int(index))[0, 0, 0])
    return len(order) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/iaa-bench-training-set"))
    args = parser.parse_args()
    if not IMAGES.is_dir():
        print(f"skipped: {IMAGES} not found")
        return 0
    dataset = image_dataset(IMAGES, args.limit)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / "set.h5"
    print(f"export of {len(dataset):,} images ({IMAGES}) at {args.size} px")
    time_export(dataset, out, args.size, 1, "threads")  # warm the page cache for the JPEG files
    for workers, parallel in ((1, "threads"), (2, "threads"), (2, "processes")):
        rate = time_export(dataset, out, args.size, workers, parallel)
        print(f"  workers={workers} {parallel:<9} {rate:8.0f} images/s")

    with h5py.File(out, "r") as h5:
        array = h5["images"][()]
    npy = args.out_dir / "images.npy"
    np.save(npy, array)
    order = np.random.default_rng(0).permutation(len(array))
    print(f"read one image at a time, random order ({len(order):,} images of {array.shape[1:]})")
    print(f"  {'':<22}{'first pass':>12}{'second pass':>13}")
    with h5py.File(out, "r") as h5:
        images = h5["images"]
        rates = [time_reads(lambda i: images[i], order) for _ in range(2)]
    print(f"  {'HDF5 (1 chunk/image)':<22}{rates[0]:9.0f} /s{rates[1]:10.0f} /s")
    memmap = np.load(npy, mmap_mode="r")
    # np.array copies the image out of the map, as h5py returns a fresh array.
    rates = [time_reads(lambda i: np.array(memmap[i]), order) for _ in range(2)]
    print(f"  {'.npy memmap':<22}{rates[0]:9.0f} /s{rates[1]:10.0f} /s")
    shutil.rmtree(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
