"""``iaa-desktop qa [DATASET] [--out CSV]``: image and mask quality checks.

Exit code 0 when only low/medium findings, 1 with high-severity ones, 2 when
the dataset cannot be read at all.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

from iaa_desktop.cli.common import add_dataset_argument, fail, is_inside, load_or_explain, run_with_bar
from iaa_desktop.core.dataset.qa import iter_qa, qa_exit_code, qa_summary


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "qa", help="check every image and mask (unreadable, truncated, empty, full, disconnected, ...)"
    )
    add_dataset_argument(parser)
    parser.add_argument("--out", type=Path, help="write the findings table to this CSV file")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="processes decoding images and masks in parallel (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=20, help="findings to list (default 20)")
    parser.set_defaults(func=run)


def run(args) -> int:
    dataset, code = load_or_explain(args)
    if dataset is None:
        return code
    if args.out is not None and is_inside(args.out, dataset.root):
        return fail(f"{args.out}: refusing to write into the dataset directory {dataset.root}")
    table = run_with_bar("Checking images and masks", iter_qa(dataset, workers=args.workers))
    n_masks = sum(len(lesion.segmentations) for lesion in dataset)
    print(f"QA of {dataset.root}: {len(dataset):,} images, {n_masks:,} masks, "
          f"{len(table):,} findings")
    for severity, kinds in qa_summary(table).items():
        for kind, count in kinds.items():
            print(f"  {severity:<7}{kind:<26}{count:>8,}")
    if len(table):
        shown = table.head(args.limit)
        print()
        print("\n".join(findings_lines(shown, dataset.root, shutil.get_terminal_size((100, 24)).columns)))
        if len(table) > len(shown):
            print(f"... and {len(table) - len(shown):,} more" +
                  ("" if args.out else " (use --out CSV for all)"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"\nwrote {args.out}")
    return qa_exit_code(table)



def shorten_paths(message: str, root: Path) -> str:
    """``message`` with paths under the dataset ``root`` written relative to it."""
    prefix = str(root).rstrip(os.sep) + os.sep
    return message.replace(prefix, "")


def findings_lines(table, root: Path, width: int) -> list[str]:
    """The findings as text for a terminal ``width`` columns wide: a row per finding (severity,
    image, annotator, kind), then its message, paths relative to ``root``, wrapped and indented."""
    width = max(width, 40)
    image_w = min(max([len("image"), *map(len, table["image_id"].astype(str))]), 28) + 2
    annot_w = min(max([len("annotator"), *map(len, table["annotator"].astype(str))]), 14) + 2
    lines = [f"files relative to {root}", f"{'severity':<9}{'image':<{image_w}}{'annotator':<{annot_w}}kind"]
    for row in table.itertuples(index=False):
        lines.append(f"{row.severity:<9}{str(row.image_id):<{image_w}}{str(row.annotator):<{annot_w}}{row.kind}")
        lines.extend(textwrap.wrap(shorten_paths(str(row.message), root), width=width,
                                   initial_indent="    ", subsequent_indent="      ",
                                   break_on_hyphens=False))
    return lines
