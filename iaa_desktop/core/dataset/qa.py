"""Mask quality checks: the IMA++ categories plus decoding problems.

IMA++ categories and severities (its ``seg_metadata_qa_results.csv``):
empty mask (high), mask covers the entire image (high), mask touches the image
border (low); and disconnected regions, which we rate medium. Ours on top:
every decoding problem of masks and images (unreadable, empty or truncated file,
size mismatch, non-binary values, unexpected image channels) and the loader's
problems (missing files, duplicates, ...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np
import pandas as pd

from iaa_desktop.core.dataset.image_checks import lesion_image_problems
from iaa_desktop.core.dataset.images import read_header_size
from iaa_desktop.core.dataset.masks import load_segmentation
from iaa_desktop.core.dataset.model import SEVERITIES, Dataset, Lesion, Problem
from iaa_desktop.core.errors import MaskDecodeError
from iaa_desktop.core.parallel import process_pool
from iaa_desktop.core.progress import Progress

#: QA finding kinds computed from mask pixels, with severity and IMA++'s wording.
MASK_CHECKS = {
    "empty_mask": ("high", "Empty mask"),
    "full_image_mask": ("high", "Mask covers entire image"),
    "disconnected_regions": ("medium", "Mask has disconnected regions"),
    "touches_border": ("low", "Mask touches image border"),
}
QA_COLUMNS = ("image_id", "mask", "annotator", "kind", "severity", "message", "path")


@dataclass(frozen=True)
class Finding:
    image_id: str
    mask: str
    annotator: str
    kind: str
    severity: str
    message: str
    path: str = ""


def mask_findings(mask: np.ndarray) -> list[tuple[str, str]]:
    """(kind, detail) pairs of the IMA++ checks for one decoded boolean mask."""
    count = int(np.count_nonzero(mask))
    if count == 0:
        return [("empty_mask", "no foreground pixel")]
    if count == mask.size:
        return [("full_image_mask", "every pixel is foreground")]
    found = []
    n_labels, _ = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    if n_labels - 1 > 1:
        found.append(("disconnected_regions", f"{n_labels - 1} separate regions"))
    if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
        found.append(("touches_border", "foreground on the outermost row or column"))
    return found


def _image_shape(lesion: Lesion) -> tuple[int, int] | None:
    if lesion.height and lesion.width:
        return lesion.height, lesion.width
    if lesion.image_path is None:
        return None
    try:
        return read_header_size(lesion.image_path)
    except MaskDecodeError:
        return None  # reported by the image checks, not here


def lesion_findings(lesion: Lesion, decode_images: bool = True) -> list[Finding]:
    """Every QA finding for one lesion: its image (decoded, or only its header and last bytes
    with ``decode_images=False``) and its masks (each decoded once)."""
    findings = [_problem_finding(p) for p in lesion_image_problems(lesion, decode=decode_images)]
    shape = _image_shape(lesion)
    for seg in lesion.segmentations:
        if not seg.mask_path.exists():
            continue  # the loader already reported it as missing_mask
        decoded = load_segmentation(seg, shape)
        for problem in decoded.problems:
            findings.append(Finding(lesion.image_id, seg.name, seg.annotator, problem.kind,
                                    problem.severity, problem.message, problem.path))
        if decoded.mask is None:
            continue
        for kind, detail in mask_findings(decoded.mask):
            severity, wording = MASK_CHECKS[kind]
            findings.append(Finding(lesion.image_id, seg.name, seg.annotator, kind, severity,
                                    f"{seg.mask_path}: {wording} ({detail})", str(seg.mask_path)))
    return findings


def _problem_finding(problem: Problem) -> Finding:
    mask = problem.path.rsplit("/", 1)[-1] if "mask" in problem.kind else ""
    return Finding(problem.image_id, mask, "", problem.kind, problem.severity, problem.message,
                   problem.path)


def iter_qa(dataset: Dataset, workers: int = 1,
            decode_images: bool = True) -> Generator[Progress, None, pd.DataFrame]:
    """Check every image and mask of ``dataset``; yields progress per lesion, returns the findings
    table.

    ``decode_images=False`` checks each image's header and last bytes only (missing, empty,
    truncated, unreadable header, too large, channels): the desktop app's background QA uses
    it, since decoding every full-size image of a large dataset costs minutes of CPU while the
    user browses; a lesion whose image then fails to decode says so in the lesion view.

    The table has the columns ``QA_COLUMNS`` and is sorted by severity (high
    first), then image and mask. Loader problems are included.
    """
    lesions = [lesion for lesion in dataset if lesion.segmentations or lesion.image_path is not None]
    findings = [_problem_finding(p) for p in dataset.problems]
    if workers > 1 and len(lesions) > 1:
        with process_pool(workers) as pool:
            results = pool.map(partial(lesion_findings, decode_images=decode_images), lesions,
                               chunksize=8)
            for i, (lesion, found) in enumerate(zip(lesions, results, strict=True)):
                findings.extend(found)
                yield Progress(i + 1, len(lesions), lesion.image_id)
    else:
        for i, lesion in enumerate(lesions):
            findings.extend(lesion_findings(lesion, decode_images))
            yield Progress(i + 1, len(lesions), lesion.image_id)
    return findings_table(findings)


def findings_table(findings: Iterable[Finding]) -> pd.DataFrame:
    frame = pd.DataFrame([f.__dict__ for f in findings], columns=list(QA_COLUMNS))
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    frame = frame.assign(_rank=frame["severity"].map(order))
    frame = frame.sort_values(["_rank", "image_id", "mask", "kind"], kind="stable")
    return frame.drop(columns="_rank").reset_index(drop=True)


def qa_summary(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{severity: {kind: count}} for the severities present, high first."""
    summary: dict[str, dict[str, int]] = {}
    for severity in reversed(SEVERITIES):
        kinds = Counter(table.loc[table["severity"] == severity, "kind"])
        if kinds:
            summary[severity] = dict(sorted(kinds.items()))
    return summary


def qa_exit_code(table: pd.DataFrame) -> int:
    """0 when only low/medium findings (or none), 1 when any is high."""
    return 1 if (table["severity"] == "high").any() else 0
