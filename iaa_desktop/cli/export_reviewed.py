"""``iaa-desktop export-reviewed [DATASET] --out DIR``: the adjudicated dataset.

A folder-layout dataset with, per lesion, the reference the reviewer chose (an
annotator, MV or STAPLE; ``--default-reference`` where none was chosen),
optionally every annotator's mask (``--with-annotators``), lesions marked
"exclude" left out, and ``metadata.csv`` carrying each review (see
``iaa_desktop.core.curation.reviewed_export``). Never written in place.
"""

from __future__ import annotations

from pathlib import Path

from iaa_desktop.cli.common import add_dataset_argument, fail, load_or_explain, run_with_bar

#: Lesions left out that are listed by name; the manifest lists all.
_SKIPPED_SHOWN = 10


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "export-reviewed",
        help="write what reviewers decided as a clean folder-layout dataset (reference mask per lesion)",
    )
    add_dataset_argument(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="a new or empty folder outside the dataset")
    parser.add_argument("--workspace", type=Path, metavar="DIR",
                        help="the workspace holding the reviews (default: the dataset's)")
    parser.add_argument("--with-annotators", action="store_true",
                        help="also write every human annotator's mask (masks/<annotator>/)")
    parser.add_argument("--default-reference", choices=("STAPLE", "MV"), default="STAPLE",
                        help="reference of lesions whose review chose none (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from iaa_desktop.core.curation.reviewed_export import REFERENCE_FOLDER, iter_export_reviewed
    from iaa_desktop.core.errors import IAAError
    from iaa_desktop.core.review.reviews import all_reviews
    from iaa_desktop.core.review.workspace import Workspace
    from iaa_desktop.core.workspace_paths import DATABASE_NAME, workspace_dir_for

    dataset, code = load_or_explain(args)
    if dataset is None:
        return code
    folder = args.workspace or workspace_dir_for(dataset.root)
    try:
        if (folder / DATABASE_NAME).exists() or args.workspace is not None:
            with Workspace.open(folder, dataset_root=dataset.root, read_only=True) as workspace:
                reviews = all_reviews(workspace)
        else:
            reviews = {}  # never reviewed: every lesion unreviewed
        summary = run_with_bar("Exporting", iter_export_reviewed(
            dataset, reviews, args.out, include_annotators=args.with_annotators,
            default_reference=args.default_reference))
    except IAAError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{args.out}: cannot write the export ({exc.strerror or exc})")
    print(f"Reviewed dataset of {dataset.root} ({len(reviews):,} reviews in {folder}):")
    print(f"  lesions exported        {summary.n_exported:>8,}")
    print(f"  excluded by review      {summary.n_excluded_by_review:>8,}")
    print(f"  left out (unreadable)   {len(summary.skipped):>8,}")
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in summary.references.items()) or "none"
    print(f"  references              {kinds}")
    if summary.n_default_reference:
        print(f"  {summary.n_default_reference:,} lesion(s) had no chosen reference: "
              f"{args.default_reference} was used (reference_source 'default' in metadata.csv)")
    if summary.n_annotator_masks:
        print(f"  annotators' masks       {summary.n_annotator_masks:>8,}")
    for image_id, reason in list(summary.skipped.items())[:_SKIPPED_SHOWN]:
        print(f"  left out {image_id}: {reason}")
    if len(summary.skipped) > _SKIPPED_SHOWN:
        print(f"  ... and {len(summary.skipped) - _SKIPPED_SHOWN:,} more (manifest.json lists all)")
    print(f"wrote {args.out} (masks/{REFERENCE_FOLDER}/, images/, metadata.csv, manifest.json)")
    return 0
