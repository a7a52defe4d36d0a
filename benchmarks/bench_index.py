"""Indexing speed and memory on the real IMA++ metadata (14,967 images, 22,472 masks).

Target (issue 2): under 2 s and under 300 MB. Baseline, in the same run: the
floor of just reading the two metadata CSVs with pandas. Each measurement runs
in a fresh subprocess so peak RSS is the loader's own, not the benchmark's.

    python benchmarks/bench_index.py [--imapp ../shared/data/imapp] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
root, mode = sys.argv[1], sys.argv[2]
import pandas as pd
from iaa_desktop.core.dataset.io import load_dataset
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if mode == "pandas":
    a = pd.read_csv(root + "/IMAplusplus_seg_metadata.csv", dtype=str)
    b = pd.read_csv(root + "/IMAplusplus_img_metadata.csv", dtype=str)
    counts = [len(b), len(a)]
else:
    d = load_dataset(root)
    counts = [len(d), sum(len(l.segmentations) for l in d)]
elapsed = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "rss_mb": after / 1024, "delta_mb": (after - before) / 1024,
                  "counts": counts}))
"""


def measure(root: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(root), mode], check=True,
                         capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imapp", type=Path, default=REPO.parent / "shared" / "data" / "imapp")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (args.imapp / "IMAplusplus_seg_metadata.csv").exists():
        print(f"IMA++ metadata not found in {args.imapp}", file=sys.stderr)
        return 2
    rows = {}
    for mode in ("pandas", "iaa_desktop"):
        runs = [measure(args.imapp, mode) for _ in range(args.repeats)]
        rows[mode] = {
            "median_s": statistics.median(r["seconds"] for r in runs),
            "peak_rss_mb": max(r["rss_mb"] for r in runs),
            "loader_rss_mb": statistics.median(r["delta_mb"] for r in runs),
            "counts": runs[0]["counts"],
        }
    print(f"{'what':<28}{'median s':>10}{'peak RSS MB':>13}{'added MB':>10}  images/masks")
    for mode, row in rows.items():
        label = "pandas.read_csv x2 (floor)" if mode == "pandas" else "load_dataset (IMA++)"
        print(f"{label:<28}{row['median_s']:>10.3f}{row['peak_rss_mb']:>13.0f}"
              f"{row['loader_rss_mb']:>10.0f}  {row['counts'][0]}/{row['counts'][1]}")
    ratio = rows["iaa_desktop"]["median_s"] / rows["pandas"]["median_s"]
    print(f"loader / floor time ratio: {ratio:.1f}x; target: < 2 s and < 300 MB peak RSS")
    ok = rows["iaa_desktop"]["median_s"] < 2 and rows["iaa_desktop"]["peak_rss_mb"] < 300
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
