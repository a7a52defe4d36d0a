"""From review to a clean dataset: what reviewers decided, written as a folder-layout dataset.

``iter_export_reviewed`` writes, for every lesion not marked ``exclude``:

- ``images/<id>.<ext>``: the image file, byte for byte;
- ``masks/reference/<id>.png``: the reference the reviewer chose (one of the lesion's
  annotators, ``MV`` or ``STAPLE``; where none was chosen, ``default_reference``,
  and ``metadata.csv`` says so in ``reference_source``), 8-bit 0/255;
- with ``include_annotators``, ``masks/<annotator>/<id>.png``: every human annotator's mask,
  8-bit 0/255 (an annotator's repeated masks of one lesion: the first);
- ``metadata.csv``: the dataset's metadata, plus ``review_status``, ``review_note``,
  ``reviewer``, ``reviewed_at``, ``reference``, ``reference_source``, ``n_annotators``;
- ``annotators.csv``: tool and skill of each annotator folder (``reference``: tool
  ``reference``, skill ``adjudicated``);
- ``manifest.json`` (:data:`MANIFEST_FORMAT`): the source and its mask fingerprint, the
  options and the counts, and every lesion left out with the reason.

MV and STAPLE are computed from the lesion's readable human masks, as the lesion view
shows them to the reviewer. The output is written to a temporary sibling folder and renamed
at the end, so an interrupted export leaves no half-written dataset; nothing is ever
written inside the source dataset.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from iaa_desktop._version import __version__
from iaa_desktop.core.agreement.consensus import majority_vote
from iaa_desktop.core.agreement.lesion import dataset_fingerprint
from iaa_desktop.core.agreement.staple import staple
from iaa_desktop.core.dataset.image_checks import lesion_image_problems
from iaa_desktop.core.dataset.masks import load_segmentation
from iaa_desktop.core.dataset.model import Dataset, Lesion
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress
from iaa_desktop.core.review.reviews import CONSENSUS_REFERENCES, Review

MANIFEST_FORMAT = "iaa-desktop-reviewed-export/1"
#: The mask folder holding each lesion's adjudicated reference.
REFERENCE_FOLDER = "reference"
METADATA_COLUMNS = ("image_id", "diagnosis", "benign_malignant", "split", "review_status", "review_note",
                    "reviewer", "reviewed_at", "reference", "reference_source", "n_annotators")


class ReviewedExportError(IAAError):
    """The export cannot start or finish (the message names the folder and the reason)."""


@dataclass(frozen=True)
class ReviewedExportSummary:
    """What an export wrote: counts and the lesions left out, with reasons."""

    out_dir: Path
    n_exported: int
    n_excluded_by_review: int
    references: dict[str, int]  # "annotator" / "MV" / "STAPLE" -> lesions
    n_default_reference: int
    n_annotator_masks: int
    skipped: dict[str, str] = field(default_factory=dict)  # image id -> why


def _check_out_dir(dataset: Dataset, out_dir: Path) -> None:
    root, out = Path(dataset.root).resolve(), Path(out_dir).resolve()
    if out == root or root in out.parents:
        raise ReviewedExportError(f"{out_dir}: refusing to write into the dataset directory {dataset.root}")
    if out in root.parents:
        raise ReviewedExportError(f"{out_dir}: holds the dataset {dataset.root}; choose a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReviewedExportError(f"{out_dir}: exists and is not an empty folder; choose a new one")


def _human_masks(lesion: Lesion) -> tuple[dict[str, np.ndarray], list[str]]:
    """The first readable mask of each human annotator, and why any other was left out."""
    masks: dict[str, np.ndarray] = {}
    notes: list[str] = []
    shape = (lesion.height, lesion.width) if lesion.height and lesion.width else None
    for seg in lesion.human_segmentations:
        if seg.annotator in masks:
            continue
        decoded = load_segmentation(seg, shape)
        if decoded.mask is None:
            notes.extend(p.message for p in decoded.problems)
            continue
        if masks and decoded.mask.shape != next(iter(masks.values())).shape:
            notes.append(f"{seg.mask_path}: size differs from the lesion's other masks; left out")
            continue
        masks[seg.annotator] = decoded.mask
    return masks, notes


def _reference(masks: dict[str, np.ndarray], review: Review, default: str) -> tuple[np.ndarray, str, str]:
    """(mask, reference name, source): source ``chosen``, ``default`` or ``only annotator``."""
    chosen = review.reference
    if chosen and chosen not in CONSENSUS_REFERENCES and chosen not in masks:
        raise ReviewedExportError(f"the chosen reference {chosen} has no readable mask")
    if len(masks) == 1 and not chosen:
        (name, mask), = masks.items()
        return mask, name, "only annotator"
    name, source = (chosen, "chosen") if chosen else (default, "default")
    if name == "MV":
        return majority_vote(list(masks.values())), name, source
    if name == "STAPLE":
        return (staple(list(masks.values())).mask if len(masks) > 1 else next(iter(masks.values())),
                name, source)
    return masks[name], name, source


def _write_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:
        raise ReviewedExportError(f"{path}: could not encode the mask")
    path.write_bytes(encoded.tobytes())


def _metadata_row(lesion: Lesion, review: Review, reference: str, source: str, n_annotators: int) -> dict:
    row = {key: value for key, value in lesion.metadata.items() if key not in METADATA_COLUMNS}
    row.update({
        "image_id": lesion.image_id, "diagnosis": lesion.diagnosis or "",
        "benign_malignant": lesion.benign_malignant or "", "split": lesion.split or "",
        "review_status": review.status, "review_note": review.note, "reviewer": review.reviewer,
        "reviewed_at": review.updated, "reference": reference, "reference_source": source,
        "n_annotators": n_annotators,
    })
    return row


def _write_tables(work: Path, rows: list[dict], annotators: dict[str, tuple[str, str]]) -> None:
    extra = sorted({key for row in rows for key in row} - set(METADATA_COLUMNS))
    with open(work / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*METADATA_COLUMNS, *extra], restval="")
        writer.writeheader()
        writer.writerows(rows)
    with open(work / "annotators.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["annotator", "tool", "skill_level"])
        writer.writerows([name, tool, skill] for name, (tool, skill) in sorted(annotators.items()))


def iter_export_reviewed(
    dataset: Dataset,
    reviews: Mapping[str, Review],
    out_dir: str | Path,
    *,
    include_annotators: bool = False,
    default_reference: str = "STAPLE",
) -> Generator[Progress, None, ReviewedExportSummary]:
    """Write the reviewed dataset to ``out_dir`` (see the module docstring).

    Parameters
    ----------
    dataset
        The source dataset (never written to).
    reviews
        Image id -> ``Review`` (``core.review.reviews.all_reviews``); lesions absent are unreviewed.
    out_dir
        A new or empty folder outside the dataset.
    include_annotators
        Also write every human annotator's mask.
    default_reference
        ``"STAPLE"`` or ``"MV"``: the reference of lesions whose review chose none.

    Yields ``Progress`` per lesion; returns a ``ReviewedExportSummary``. Lesions whose image
    or masks cannot be read are left out and listed (``skipped``), never fatal.
    """
    if default_reference not in CONSENSUS_REFERENCES:
        raise ReviewedExportError(f"default reference must be one of {', '.join(CONSENSUS_REFERENCES)}, "
                                  f"not {default_reference!r}")
    out_dir = Path(out_dir)
    _check_out_dir(dataset, out_dir)
    if REFERENCE_FOLDER in {s.annotator for lesion in dataset for s in lesion.segmentations}:
        raise ReviewedExportError(f"{dataset.root}: an annotator is named '{REFERENCE_FOLDER}', the folder "
                                  "the export keeps the references in")
    work = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    (work / "images").mkdir(parents=True)
    (work / "masks" / REFERENCE_FOLDER).mkdir(parents=True)
    try:
        summary = yield from _export(dataset, reviews, out_dir, work, include_annotators, default_reference)
        if out_dir.exists():
            out_dir.rmdir()  # checked empty above
        work.rename(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


def _export(dataset, reviews, out_dir, work, include_annotators, default_reference):
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    references: Counter[str] = Counter()
    annotators: dict[str, tuple[str, str]] = {REFERENCE_FOLDER: ("reference", "adjudicated")}
    n_excluded = n_default = n_annotator_masks = 0
    lesions = list(dataset)
    for i, lesion in enumerate(lesions):
        yield Progress(i, len(lesions), lesion.image_id)
        review = reviews.get(lesion.image_id) or Review(lesion.image_id)
        if review.status == "exclude":
            n_excluded += 1
            continue
        # An image with extra channels is still an image; any other image problem leaves the lesion out.
        image_problems = ([f"{lesion.image_id}: no image file"] if lesion.image_path is None else
                          [p.message for p in lesion_image_problems(lesion)
                           if p.kind != "unexpected_channels"])
        masks, notes = _human_masks(lesion)
        if image_problems or not masks:
            skipped[lesion.image_id] = "; ".join(image_problems + notes) or "no readable human mask"
            continue
        try:
            mask, reference, source = _reference(masks, review, default_reference)
        except ReviewedExportError as exc:
            skipped[lesion.image_id] = f"{exc}; " + "; ".join(notes) if notes else str(exc)
            continue
        shutil.copyfile(lesion.image_path, work / "images" / f"{lesion.image_id}{lesion.image_path.suffix}")
        _write_png(work / "masks" / REFERENCE_FOLDER / f"{lesion.image_id}.png", mask)
        references["annotator" if reference in masks and reference not in CONSENSUS_REFERENCES
                   else reference] += 1
        n_default += source == "default"
        if include_annotators:
            for seg in lesion.human_segmentations:
                if seg.annotator in masks and seg.annotator not in annotators:
                    annotators[seg.annotator] = (seg.tool, seg.skill)
            for annotator, annotator_mask in masks.items():
                _write_png(work / "masks" / annotator / f"{lesion.image_id}.png", annotator_mask)
                n_annotator_masks += 1
        rows.append(_metadata_row(lesion, review, reference, source, len(masks)))
    _write_tables(work, rows, annotators)
    summary = ReviewedExportSummary(out_dir, len(rows), n_excluded, dict(sorted(references.items())),
                                    n_default, n_annotator_masks, skipped)
    manifest = {
        "format": MANIFEST_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "iaa_desktop_version": __version__,
        "source": {"root": str(dataset.root), "layout": dataset.layout,
                   "dataset_fingerprint": f"masks:{dataset_fingerprint(dataset)}", "lesions": len(lesions)},
        "options": {"include_annotators": include_annotators, "default_reference": default_reference},
        "counts": {"lesions_exported": len(rows), "excluded_by_review": n_excluded,
                   "skipped": len(skipped), "references": summary.references,
                   "default_reference_used": n_default, "reference_masks": len(rows),
                   "annotator_masks": n_annotator_masks},
        "skipped": skipped,
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    yield Progress(len(lesions), len(lesions), "done")
    return summary
