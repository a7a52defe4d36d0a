"""Decoding mask PNGs: ``core.masks.decode_mask`` with ``core.png_fast`` against OpenCV's libpng.

Both sides run the whole of ``decode_mask`` (read, header, decode, non-binary count,
boolean mask) on the same files, interleaved, in this process; the baseline has the
fast decoder switched off, which is the code path before ``png_fast``. Files:

- synthetic lesion masks (``_masks.lesion_pair``) at 1022 x 767, 3008 x 2000 and
  6000 x 4000, written by OpenCV (its default Sub filter) and by Pillow with
  ``optimize=True`` (libpng's adaptive filters: None, Sub, Up and Paeth rows);
- with ``--imapp-dir``, a sample of the masks ``bench_dataset.py`` wrote for the
  IMA++-shaped dataset (real IMA++ image sizes).

    python benchmarks/bench_mask_decode.py [--repeats 5] [--imapp-dir /tmp/iaa-bench-imapp] [--sample 60]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _masks import lesion_pair  # noqa: E402

from iaa_desktop.core.dataset import masks as masks_module  # noqa: E402
from iaa_desktop.core.dataset.images import read_header_size  # noqa: E402
from iaa_desktop.core.dataset.masks import decode_mask  # noqa: E402
from iaa_desktop.core.dataset.png_fast import warm_up  # noqa: E402

SIZES = {"1022x767": (767, 1022), "3008x2000": (2000, 3008), "6000x4000": (4000, 6000)}


def write_masks(folder: Path, per_size: int) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for label, shape in SIZES.items():
        for k in range(per_size):
            mask = lesion_pair(*shape, seed=k)[k % 2]
            path = folder / f"{label}_{k}_opencv.png"
            cv2.imwrite(str(path), mask)
            groups.setdefault(f"{label} OpenCV-written", []).append(path)
            buffer = io.BytesIO()
            Image.fromarray(mask).save(buffer, "PNG", optimize=True)
            path = folder / f"{label}_{k}_pillow.png"
            path.write_bytes(buffer.getvalue())
            groups.setdefault(f"{label} Pillow-written", []).append(path)
    return groups


def time_decode(path: Path, fast: bool) -> float:
    saved = masks_module.decode_png, masks_module.decode_png_mask
    if not fast:  # both fast paths off: the one-pass mask decode and the plain one
        masks_module.decode_png = masks_module.decode_png_mask = lambda data: None
    try:
        start = time.perf_counter()
        decoded = decode_mask(path)
        elapsed = time.perf_counter() - start
    finally:
        masks_module.decode_png, masks_module.decode_png_mask = saved
    if decoded.mask is None:
        raise SystemExit(f"{path}: {decoded.problems}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="decodes of each file on each side")
    parser.add_argument("--per-size", type=int, default=3, help="synthetic masks per size and writer")
    parser.add_argument("--imapp-dir", type=Path, help="bench_dataset.py's data directory")
    parser.add_argument("--sample", type=int, default=60, help="IMA++-shaped masks to sample")
    args = parser.parse_args()
    warm_up()
    with tempfile.TemporaryDirectory(prefix="bench-mask-decode-") as tmp:
        groups = write_masks(Path(tmp), args.per_size)
        if args.imapp_dir is not None:
            files = sorted((args.imapp_dir / "segs").glob("*.png"))
            if not files:
                raise SystemExit(f"{args.imapp_dir / 'segs'}: no masks (run bench_dataset.py first)")
            groups["IMA++-shaped (real sizes)"] = random.Random(0).sample(files, min(args.sample, len(files)))
        for paths in groups.values():  # file cache warm, first-use costs paid
            for path in paths:
                time_decode(path, True)
                time_decode(path, False)
        print(f"median time per mask, {args.repeats} decodes of each file per side, interleaved")
        header = ("masks", "files", "megapixels", "OpenCV", "png_fast", "speed-up")
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, (28, 6, 11, 10, 10, 9), strict=True)))
        for label, paths in groups.items():
            slow, fast = [], []
            for _ in range(args.repeats):
                for path in paths:
                    slow.append(time_decode(path, False))
                    fast.append(time_decode(path, True))
            megapixels = statistics.median(np.prod(read_header_size(p)) / 1e6 for p in paths)
            a, b = statistics.median(slow), statistics.median(fast)
            print(f"{label:>28} {len(paths):>6} {megapixels:>11.1f} {1000 * a:>8.1f} ms "
                  f"{1000 * b:>7.1f} ms {a / b:>8.1f}x")


if __name__ == "__main__":
    main()
