"""``iaa-desktop qa [DATASET] [--out CSV]``: mask quality checks.

Exit code 0 when only low/medium findings, 1 with high-severity ones, 2 when
the dataset cannot be read at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from iaa_desktop.cli.common import add_dataset_argument, fail, is_inside, load_or_explain, run_with_bar
from iaa_desktop.core.dataset.qa import iter_qa, qa_exit_code, qa_summary


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "qa", help="check every mask (empty, full, disconnected, border, unreadable, ...)"
    )
    add_dataset_argument(parser)
    parser.add_argument("--out", type=Path, help="write the findings table to this CSV file")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="processes decoding masks in parallel (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=20, help="findings to list (default 20)")
    parser.set_defaults(func=run)


def run(args) -> int:
    dataset, code = load_or_explain(args)
    if dataset is None:
        return code
    if args.out is not None and is_inside(args.out, dataset.root):
        return fail(f"{args.out}: refusing to write into the dataset directory {dataset.root}")
    table = run_with_bar("Checking masks", iter_qa(dataset, workers=args.workers))
    n_masks = sum(len(lesion.segmentations) for lesion in dataset)
    print(f"QA of {dataset.root}: {len(dataset):,} images, {n_masks:,} masks, "
          f"{len(table):,} findings")
    for severity, kinds in qa_summary(table).items():
        for kind, count in kinds.items():
            print(f"  {severity:<7}{kind:<26}{count:>8,}")
    if len(table):
        shown = table.head(args.limit)
        print(f"\n{'severity':<9}{'image':<16}{'annotator':<10}{'kind':<24}")
        for row in shown.itertuples(index=False):
            print(f"{row.severity:<9}{row.image_id:<16}{row.annotator:<10}{row.kind:<24}")
        if len(table) > len(shown):
            print(f"... and {len(table) - len(shown):,} more" +
                  ("" if args.out else " (use --out CSV for all)"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"\nwrote {args.out}")
    return qa_exit_code(table)

