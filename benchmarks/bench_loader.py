"""Images per second the trainer's HDF5 loader delivers vs decoding the original JPEGs.

Issue 6, item 10. Baseline (the reference code's approach): decode each
original JPEG and resize it to 224 px every epoch. The originals here are the
real ISIC images of ../shared/data/isic2017_256 brought back to a typical
ISIC size, 1024 x 768, and written once as JPEG (quality 95) into a temporary
folder, so the baseline decodes realistic files. Ours: ``trainer.data.H5ImageDataset``
(one HDF5 chunk per image, read per index, normalised tensors out) over a
training set exported from the same images. Both run in one process on one
core, random order, one pass each, same images; the ratio is what counts.

    python benchmarks/bench_loader.py [--n 400]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.core.training.training_set import iter_export_training_set  # noqa: E402
from trainer.data import H5ImageDataset, read_table  # noqa: E402

SOURCE = REPO.parent / "shared" / "data" / "isic2017_256" / "train"


def decode_resize(path: Path, size: int = 224) -> torch.Tensor:
    """The baseline: what a loader without a prepared set does for every image, every epoch.

    It ships the same uint8 (3, H, W) tensor as ours (both normalise per batch on the device).
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="images (default 400)")
    args = parser.parse_args()
    if not SOURCE.is_dir():
        print(f"real images not found in {SOURCE}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    sources = sorted(SOURCE.glob("ISIC_*.jpg"))[: args.n]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "originals"
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        for path in sources:
            big = cv2.resize(cv2.imread(str(path)), (1024, 768), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(root / "images" / path.name), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
        originals = sorted((root / "images").glob("*.jpg"))
        out = Path(tmp) / "set.h5"
        run_to_end(iter_export_training_set(load_dataset(root), out, size=224, cache=None))
        table = read_table(out)
        dataset = H5ImageDataset(table, np.arange(len(table.image_id)))
        order = list(range(len(originals)))
        random.Random(0).shuffle(order)

        start = time.perf_counter()
        for i in order:
            decode_resize(originals[i])
        baseline = len(order) / (time.perf_counter() - start)
        dataset[0]  # open the file outside the timing, as a worker does once
        start = time.perf_counter()
        for i in order:
            dataset[i]
        ours = len(order) / (time.perf_counter() - start)
        dataset.close()
    print(f"{len(order)} images, 224 px, one core, random order")
    print(f"  decode 1024x768 JPEG + resize (baseline)              {baseline:8.0f} images/s")
    print(f"  H5ImageDataset (one chunk per image, per-index reads) {ours:8.0f} images/s")
    print(f"  ratio {ours / baseline:.0f}x (target >= 30x)")
    return 0 if ours / baseline >= 30 else 1


if __name__ == "__main__":
    raise SystemExit(main())
