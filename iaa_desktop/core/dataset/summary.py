"""What a loaded dataset holds, as counts (``iaa-desktop info``, status bars, reports).

The keys of ``dataset_summary`` are a stable, documented interface (README,
"info --json keys"): add new keys, never rename or remove one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from iaa_desktop.core.dataset.model import Dataset, Problem


def dataset_summary(dataset: Dataset, extra_problems: Iterable[Problem] = ()) -> dict[str, object]:
    """Counts describing ``dataset`` (see the README for each key).

    ``extra_problems`` (say, from the image header checks) are counted with the loader's.
    """
    masks = human = consensus = 0
    annotators: set[str] = set()
    multi_images = multi_masks = 0
    multi_annotators: set[str] = set()
    for lesion in dataset:
        people = [s for s in lesion.segmentations if not s.is_consensus]
        masks += len(lesion.segmentations)
        human += len(people)
        consensus += len(lesion.segmentations) - len(people)
        annotators.update(s.annotator for s in people)
        if len(people) >= 2:
            multi_images += 1
            multi_masks += len(people)
            multi_annotators.update(s.annotator for s in people)
    labels = Counter(lesion.benign_malignant or "unknown" for lesion in dataset)
    splits = Counter(lesion.split or "none" for lesion in dataset)
    problems = dict(sorted(Counter(p.kind for p in (*dataset.problems, *extra_problems)).items()))
    return {
        "dataset": str(dataset.root),
        "layout": dataset.layout,
        "images": len(dataset),
        "images_with_file": sum(lesion.image_path is not None for lesion in dataset),
        "masks": masks,
        "human_masks": human,
        "consensus_masks": consensus,
        "annotators": len(annotators),
        "annotator_ids": sorted(annotators),
        "images_with_2plus_human_masks": multi_images,
        "human_masks_in_multi_annotator_images": multi_masks,
        "annotators_in_multi_annotator_images": len(multi_annotators),
        "benign_malignant": dict(sorted(labels.items())),
        "splits": dict(sorted(splits.items())),
        "problems": problems,
        "problem_count": sum(problems.values()),
    }
