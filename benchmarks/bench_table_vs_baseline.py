"""The whole agreement table, today's code against a named commit's, in the same run.

The baseline commit's tree is exported (``git archive``) to a temporary folder; each round
runs both engines, one after the other, in fresh subprocesses on the profile sample
(``profile_dataset.py``'s lesions spread over IMA++'s sizes), no cache. Prints the median
wall time of each, the ratio, and whether the two pairwise tables are identical.

    python benchmarks/bench_table_vs_baseline.py [--baseline 86bb279] [--rounds 2] [--workers 1]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from profile_dataset import build_sample  # noqa: E402

_RUN = """
import sys, time, hashlib
sys.path.insert(0, {root!r})
from pathlib import Path
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.agreement.engine import iter_dataset_agreement
from iaa_desktop.core.progress import run_to_end
dataset = load_dataset(Path({data!r}))
start = time.perf_counter()
result = run_to_end(iter_dataset_agreement(dataset, workers={workers}, cache=None))
elapsed = time.perf_counter() - start
digest = hashlib.blake2b(result.pairwise.to_csv(index=False).encode()
                         + result.chance.to_csv(index=False).encode()
                         + result.staple.to_csv(index=False).encode()).hexdigest()
print(elapsed, digest)
"""


def run(root: Path, data: Path, workers: int) -> tuple[float, str]:
    out = subprocess.check_output([sys.executable, "-c", _RUN.format(root=str(root), data=str(data),
                                                                     workers=workers)], text=True)
    elapsed, digest = out.split()
    return float(elapsed), digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="86bb279")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/iaa-prof19-spread"))
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    data = build_sample(args.data_dir, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.check_output(["git", "-C", str(REPO), "archive", args.baseline])
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        times: dict[str, list[float]] = {"baseline": [], "now": []}
        digests: dict[str, set[str]] = {"baseline": set(), "now": set()}
        for _ in range(args.rounds):
            for name, root in (("baseline", Path(tmp)), ("now", REPO)):
                elapsed, digest = run(root, data, args.workers)
                times[name].append(elapsed)
                digests[name].add(digest)
    before, after = statistics.median(times["baseline"]), statistics.median(times["now"])
    same = digests["baseline"] == digests["now"] and len(digests["now"]) == 1
    print(f"{args.limit} lesions, {args.workers} worker(s), median of {args.rounds} rounds: "
          f"baseline {args.baseline} {before:.2f} s, now {after:.2f} s, {before / after:.2f}x; "
          f"pairwise, chance and STAPLE tables identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
