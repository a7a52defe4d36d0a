"""``iaa-desktop export-training-set [DATASET] --out SET.h5``: images, IAA, labels, splits in HDF5.

The file is what ``iaa-train`` reads (layout: ``iaa_desktop.core.training.training_set``).
IAA comes from the dataset's masks, or with ``--iaa-from`` from a published
IMA++ table (pairwise or image-level CSV) when the masks are not at hand.
"""

from __future__ import annotations

import os
from pathlib import Path

from iaa_desktop.cli.common import (
    add_dataset_argument,
    add_review_exclusion_arguments,
    fail,
    is_inside,
    load_or_explain,
    run_with_bar,
)


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "export-training-set",
        help="write resized images, IAA, benign/malignant labels and splits to an HDF5 training set",
    )
    add_dataset_argument(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="SET.h5", help="the HDF5 file to write")
    parser.add_argument("--size", type=int, default=224,
                        help="side of the square images (default %(default)s)")
    parser.add_argument("--iaa-from", type=Path, metavar="CSV",
                        help="take IAA from an IMA++ pairwise or image-level CSV instead of the masks")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="decoding threads (default: every core, %(default)s)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="seed of the stratified 70/10/20 split when the metadata has none")
    parser.add_argument("--limit", type=int, metavar="N", help="export only the first N images")
    add_review_exclusion_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    # Imported here so that `iaa-desktop --help` and the other commands start fast.
    from iaa_desktop.core.errors import IAAError
    from iaa_desktop.core.training.iaa_labels import read_iaa_table
    from iaa_desktop.core.training.training_set import iter_export_training_set

    if args.size < 1:
        return fail(f"--size must be a positive number of pixels, got {args.size}")
    iaa = None
    if args.iaa_from is not None:
        try:
            iaa = read_iaa_table(args.iaa_from)
        except IAAError as exc:
            return fail(str(exc))
    dataset, code = load_or_explain(args)
    if dataset is None:
        return code
    if not is_inside(args.out, dataset.root):  # the core refuses the dataset's folders itself
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return fail(f"{args.out.parent}: cannot create the output folder ({exc.strerror})")
    excluded: frozenset[str] = frozenset()
    if args.exclude_reviewed:
        from iaa_desktop.core.review.reviews import excluded_ids
        from iaa_desktop.core.review.workspace import Workspace
        from iaa_desktop.core.workspace_paths import workspace_dir_for

        try:
            with Workspace.open(args.workspace or workspace_dir_for(dataset.root), read_only=True) as ws:
                excluded = excluded_ids(ws)
        except IAAError as exc:
            return fail(str(exc))
    job = iter_export_training_set(dataset, args.out, size=args.size, iaa=iaa, split_seed=args.split_seed,
                                  workers=args.workers, limit=args.limit, excluded_ids=excluded)
    try:
        info = run_with_bar("Exporting the training set", job)
    except KeyboardInterrupt:
        return fail("interrupted; no file was written", 130)
    except IAAError as exc:
        return fail(str(exc), 1)
    labels, splits = info.labels, info.splits
    print(f"wrote {info.n_images:,} images of {info.input_size} x {info.input_size} px to {args.out} "
          f"in {info.seconds:.1f} s")
    print(f"  with IAA {info.n_with_iaa:,}; malignant {labels['malignant']:,}, benign {labels['benign']:,}, "
          f"unknown {labels['unknown']:,}")
    print(f"  splits ({info.split_rule}): " + ", ".join(f"{k} {v:,}" for k, v in splits.items()))
    n_review = int(info.attributes.get("n_review_excluded", 0))
    print(f"  excluded by review: {n_review:,} lesions" if args.exclude_reviewed
          else "  excluded by review: none (reviews not applied; --exclude-reviewed applies them)")
    if info.n_without_image:
        print(f"  skipped {info.n_without_image:,} lesions without an image file")
    if info.skipped:
        print(f"  skipped {len(info.skipped):,} unreadable images:")
        for problem in info.skipped[:20]:
            print(f"    {problem.kind}: {problem.message}")
        if len(info.skipped) > 20:
            print(f"    ... and {len(info.skipped) - 20:,} more")
    return 0
