"""``iaa-desktop info [DATASET] [--json]``: what was loaded."""

from __future__ import annotations

import json

from iaa_desktop.cli.common import add_dataset_argument, load_or_explain, run_with_bar
from iaa_desktop.core.dataset.image_checks import iter_image_checks
from iaa_desktop.core.dataset.summary import dataset_summary

_LABELS = {
    "images": "images",
    "images_with_file": "  with an image file",
    "masks": "masks",
    "human_masks": "  human",
    "consensus_masks": "  consensus (ST, MV)",
    "annotators": "annotators",
    "images_with_2plus_human_masks": "images with 2+ human masks",
    "human_masks_in_multi_annotator_images": "  human masks among them",
    "annotators_in_multi_annotator_images": "  annotators among them",
}


def add_parser(sub) -> None:
    parser = sub.add_parser("info", help="print what a dataset holds (counts, labels, problems)")
    add_dataset_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON (keys in the README)")
    parser.add_argument("--no-image-check", action="store_true",
                        help="skip reading each image's header (missing, empty, truncated, unreadable, "
                             "too large, unexpected channels)")
    parser.set_defaults(func=run)


def run(args) -> int:
    dataset, code = load_or_explain(args)
    if dataset is None:
        return code
    image_problems = [] if args.no_image_check else run_with_bar(
        "Checking image headers", iter_image_checks(dataset, decode=False))
    summary = dataset_summary(dataset, image_problems)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['dataset']}  ({summary['layout']} layout)")
    for key, label in _LABELS.items():
        print(f"  {label:<32}{summary[key]:>8,}")
    labels = ", ".join(f"{k} {v:,}" for k, v in summary["benign_malignant"].items())
    print(f"  {'benign/malignant':<32}{labels}")
    splits = ", ".join(f"{k} {v:,}" for k, v in summary["splits"].items())
    print(f"  {'splits':<32}{splits}")
    if summary["problems"]:
        print(f"  problems ({summary['problem_count']:,}):")
        for kind, count in summary["problems"].items():
            print(f"    {kind:<30}{count:>8,}")
        examples = {}
        for problem in (*dataset.problems, *image_problems):
            examples.setdefault(problem.kind, problem.message)
        print("  first of each kind:")
        for kind, message in examples.items():
            print(f"    [{kind}] {message}")
    else:
        print("  no problems found while indexing and reading image headers "
              "(run 'iaa-desktop qa' to decode images and masks)")
    return 0
