"""What checking images costs: ``core.dataset.image_checks.check_image`` against decoding the
image in full with OpenCV (the baseline: what a viewer or the training export does anyway).

- header check (``decode=False``, what ``iaa-desktop info`` runs on every image);
- decode check (``decode=True``, what ``qa``, ``metrics`` and the application's QA run: the
  header check plus a JPEG decoded at a quarter of its size, which still entropy-decodes
  every block);
- baseline: ``cv2.imread`` at full size.

Synthetic dermoscopy-like JPEGs (smooth colour field plus noise, quality 92) at 1022 x 767,
3008 x 2000 and 6000 x 4000, in a temporary folder; each case timed ``--repeats`` times,
interleaved, medians reported.

    python benchmarks/bench_image_checks.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from iaa_desktop.core.dataset.image_checks import check_image  # noqa: E402

SIZES = ((767, 1022), (2000, 3008), (4000, 6000))


def write_jpeg(path: Path, shape: tuple[int, int]) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    base = np.stack([150 + 60 * np.sin(xx / 300), 110 + 40 * np.cos(yy / 250),
                     90 + 30 * np.sin((xx + yy) / 400)], axis=2)
    image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'image':<14}{'header check':>14}{'decode check':>14}{'cv2.imread (baseline)':>24}"
              f"{'decode check / baseline':>26}")
        for shape in SIZES:
            path = write_jpeg(Path(folder) / f"{shape[1]}x{shape[0]}.jpg", shape)
            assert check_image(path, decode=True) == []
            cases = {"header": lambda p=path: check_image(p),
                     "decode": lambda p=path: check_image(p, decode=True),
                     "baseline": lambda p=path: cv2.imread(str(p), cv2.IMREAD_COLOR)}
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.repeats):
                for name, function in cases.items():
                    times[name].append(timed(function))
            median = {name: statistics.median(values) for name, values in times.items()}
            print(f"{path.stem:<14}{median['header']:>11.2f} ms{median['decode']:>11.1f} ms"
                  f"{median['baseline']:>21.1f} ms{median['decode'] / median['baseline']:>25.2f}x")


if __name__ == "__main__":
    main()
