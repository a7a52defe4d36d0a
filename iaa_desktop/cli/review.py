"""``iaa-desktop review export|import|summary [DATASET]``: reviewers' decisions as CSV.

Reviews live in the dataset's workspace (``--workspace DIR``, default: the
folder :func:`iaa_desktop.core.workspace_paths.workspace_dir_for` names).
``export --out CSV`` writes one row per lesion of the dataset;
``import --in CSV`` checks every row against the dataset (ids, statuses, references)
and imports all or nothing; ``summary`` counts lesions per status.
"""

from __future__ import annotations

from pathlib import Path

from iaa_desktop.cli.common import add_dataset_argument, fail, is_inside, load_or_explain


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "review",
        help="export, import or count the reviewers' decisions (status, note, reference) of a dataset",
    )
    parser.add_argument("action", choices=("export", "import", "summary"),
                        help="export: reviews to CSV; import: a CSV back; summary: lesions per status")
    add_dataset_argument(parser)
    parser.add_argument("--workspace", type=Path, metavar="DIR",
                        help="the workspace folder (default: the dataset's, in the user data directory)")
    parser.add_argument("--out", type=Path, metavar="CSV", help="export: the CSV to write")
    parser.add_argument("--in", dest="csv", type=Path, metavar="CSV", help="import: the CSV to read")
    parser.set_defaults(func=run)


def run(args) -> int:
    from iaa_desktop.core.errors import IAAError
    from iaa_desktop.core.review.reviews import (
        STATUS_LABELS,
        export_reviews_csv,
        import_reviews_csv,
        review_summary,
    )
    from iaa_desktop.core.review.workspace import Workspace
    from iaa_desktop.core.workspace_paths import workspace_dir_for

    if args.action == "import" and args.csv is None:
        return fail("review import: give --in CSV")
    if args.action == "export" and args.out is None:
        return fail("review export: give --out CSV")
    dataset, code = load_or_explain(args)
    if dataset is None:
        return code
    if args.out is not None and is_inside(args.out, dataset.root):
        return fail(f"{args.out}: refusing to write into the dataset directory {dataset.root}")
    folder = args.workspace or workspace_dir_for(dataset.root)
    ids = [lesion.image_id for lesion in dataset]
    try:
        # Opened for writing: a fresh workspace is created; one held by the app opens read-only.
        with Workspace.open(folder, dataset_root=dataset.root) as workspace:
            if args.action == "export":
                n = export_reviews_csv(workspace, args.out, ids)
                print(f"wrote {n:,} reviews to {args.out}")
            elif args.action == "import":
                annotators = {lesion.image_id: [s.annotator for s in lesion.segmentations]
                              for lesion in dataset}
                if workspace.read_only:
                    return fail(workspace.read_only_reason)
                n = import_reviews_csv(workspace, args.csv, known_ids=ids, annotators_by_id=annotators)
                print(f"imported {n:,} reviews from {args.csv} into {workspace.path}")
            else:
                counts = review_summary(workspace, ids)
                print(f"reviews of {len(ids):,} lesions in {workspace.path}:")
                for status, n in counts.items():
                    print(f"  {STATUS_LABELS[status]:<24} {n:,}")
    except IAAError as exc:
        return fail(str(exc), 1)
    return 0
