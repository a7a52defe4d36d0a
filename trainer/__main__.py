"""``iaa-train RUN_DIR`` / ``python -m trainer RUN_DIR``.

Only the entry point exists so far: the training loop, models and data
pipeline are the subject of issue 6. Until then this says so and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="iaa-train", description="Train the IAA regressor or the multi-task classifier."
    )
    parser.add_argument("run_dir", help="run directory holding run.json")
    parser.parse_args(argv)
    print("iaa-train: the training backend is not built yet in this version "
          "(IAA Desktop 0.1 ships the analysis core first).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
