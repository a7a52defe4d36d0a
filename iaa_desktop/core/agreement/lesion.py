"""Agreement of one lesion: decode its masks once, build consensus, measure every pair.

The pairs follow the published IMA++ pairwise table: every combination of the
lesion's masks (human-human, human-consensus and ST-MV), in the order the
masks are listed, then stably sorted by the first mask's file name. When the
dataset ships consensus masks (IMA++'s ``ST`` and ``MV`` files) they are used,
so results diff cleanly against the published tables; otherwise majority vote
and STAPLE are computed from the human masks. STAPLE's per-annotator
sensitivity and specificity are always computed (the reference discards them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np

from iaa_desktop.core.agreement.boundary import DEFAULT_SPEC, BoundarySpec, boundary_metrics, mask_bands
from iaa_desktop.core.agreement.chance import chance_agreement, chance_from_patterns
from iaa_desktop.core.agreement.consensus import majority_vote_from_patterns, vote_patterns
from iaa_desktop.core.agreement.disagreement import binary_entropy, vote_fraction
from iaa_desktop.core.agreement.metrics import (
    border_index,
    foreground_box,
    mask_surface,
    pair_geometry,
    pair_metrics,
)
from iaa_desktop.core.agreement.staple import staple_from_patterns
from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS
from iaa_desktop.core.dataset.masks import decode_mask
from iaa_desktop.core.dataset.model import Lesion, Problem, Segmentation, make_problem

#: Bump when any computed value could change: cached results of older versions are ignored.
ENGINE_VERSION = "3"

STAPLE_COLUMNS = ("img_id", "mask", "annotator", "tool", "skill_level", "sensitivity",
                  "specificity", "iterations")


@dataclass(frozen=True)
class MaskInfo:
    name: str
    annotator: str
    tool: str
    skill: str


@dataclass(frozen=True)
class LesionAgreement:
    """Every pair of one lesion plus STAPLE's per-annotator estimates and any problems.

    Each pair row holds the IMA++ pairwise columns (``tables.PAIRWISE_COLUMNS``, MedPy's
    convention) and then one value per ``extra_columns`` name (MetricsReloaded's convention,
    ``mr_*``). ``chance`` holds Fleiss' kappa, Krippendorff's alpha and the ROI size of the
    human masks (``chance.CHANCE_COLUMNS``), empty when the lesion has no pairs.
    """

    image_id: str
    pairs: tuple[tuple, ...] = ()
    staple_rows: tuple[tuple, ...] = ()
    problems: tuple[Problem, ...] = ()
    consensus_source: str = ""  # "dataset", "computed" or "" (fewer than two human masks)
    image_file_name: str = ""
    extra: dict = field(default_factory=dict, compare=False)
    extra_columns: tuple[str, ...] = ()
    chance: tuple[float, ...] = ()

    @property
    def pair_columns(self) -> tuple[str, ...]:
        """Names of the values of each row of ``pairs``."""
        return (*PAIRWISE_COLUMNS, *self.extra_columns)


def lesion_fingerprint(lesion: Lesion, options: str = "") -> str:
    """A key that changes when any of the lesion's mask files (content or name) changes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{ENGINE_VERSION}|{options}|{lesion.image_id}".encode())
    for seg in lesion.segmentations:
        digest.update(seg.name.encode() + b"\0" + seg.annotator.encode() + b"\0")
        try:
            digest.update(hashlib.blake2b(seg.mask_path.read_bytes(), digest_size=16).digest())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


def dataset_fingerprint(dataset) -> str:
    """One key for a dataset's masks: changes when any mask's content or name changes."""
    digest = hashlib.blake2b(digest_size=12)
    for lesion in dataset:
        if lesion.segmentations:
            digest.update(lesion_fingerprint(lesion).encode())
    return digest.hexdigest()


def _expected_shape(lesion: Lesion) -> tuple[int, int] | None:
    return (lesion.height, lesion.width) if lesion.height and lesion.width else None


def _decode_all(
    lesion: Lesion, segs: tuple[Segmentation, ...], problems: list[Problem]
) -> list[tuple[Segmentation, np.ndarray, tuple[int, int, int, int] | None]]:
    """Decoded masks that can take part in pairs, with their foreground boxes (found by the
    decoder for the common PNGs, else here, once); the others are reported."""
    shape = _expected_shape(lesion)
    decoded = []
    for seg in segs:
        result = decode_mask(seg.mask_path, image_id=lesion.image_id, expected_shape=shape)
        # A missing file was already reported by the loader.
        problems.extend(p for p in result.problems if p.kind != "missing_mask")
        if result.mask is None:
            continue
        if shape is None:
            shape = result.mask.shape  # the first readable mask sets the size
        if result.mask.shape != shape:
            if not any(p.kind == "size_mismatch" for p in result.problems):
                problems.append(make_problem(
                    "size_mismatch",
                    f"{seg.mask_path}: mask is {result.mask.shape[1]} x {result.mask.shape[0]}, "
                    f"the lesion's other masks {shape[1]} x {shape[0]}; left out of the pairs",
                    seg.mask_path, lesion.image_id))
            continue
        box = result.box if result.box_known else foreground_box(result.mask)
        decoded.append((seg, result.mask, box))
    return decoded


def _box_within(mask: np.ndarray, box: tuple[int, int, int, int] | None):
    """``foreground_box(mask)`` for a mask whose foreground lies inside ``box`` (``None``: the
    whole image is searched)."""
    if box is None:
        return foreground_box(mask)
    r0, c0, r1, c1 = box
    inner = foreground_box(mask[r0:r1, c0:c1]) if r1 > r0 and c1 > c0 else None
    return None if inner is None else (inner[0] + r0, inner[1] + c0, inner[2] + r0, inner[3] + c0)


def _info(seg: Segmentation) -> MaskInfo:
    return MaskInfo(seg.name, seg.annotator, seg.tool or seg.annotator, seg.skill or seg.annotator)


def _pair_rows(image_name: str, masks: list[tuple[MaskInfo, np.ndarray]], empty_policy: str,
               boundary: BoundarySpec | None, boxes: list | None = None) -> list[tuple]:
    # ``boxes``: each mask's foreground box, when the caller has them (else found per mask).
    boxes = [...] * len(masks) if boxes is None else boxes
    surfaces = [mask_surface(mask, box) for (_, mask), box in zip(masks, boxes, strict=True)]
    # One search structure per mask, shared by all its pairs (not one per pair and direction).
    indexes = [border_index(surface) for surface in surfaces]
    bands = ([mask_bands(mask, surface, boundary.biou_ds) for (_, mask), surface in
              zip(masks, surfaces, strict=True)] if boundary is not None else None)
    rows = []
    for i, j in combinations(range(len(masks)), 2):
        (a, mask_a), (b, mask_b) = masks[i], masks[j]
        # One overlap count and one pair of nearest-neighbour queries serve both conventions.
        geometry = pair_geometry(mask_a, mask_b, surfaces[i], surfaces[j], indexes[i], indexes[j])
        values = pair_metrics(mask_a, mask_b, surface_a=surfaces[i], surface_b=surfaces[j],
                              empty_policy=empty_policy, geometry=geometry)
        extra = () if boundary is None else boundary_metrics(
            surfaces[i], surfaces[j], geometry, bands[i], bands[j], boundary)
        rows.append((image_name, a.name, b.name, a.annotator, b.annotator,
                     *values.as_dict().values(), a.tool, a.skill, b.tool, b.skill, *extra))
    # Stable sort by the first mask's name: IMA++'s order. Rows follow PAIRWISE_COLUMNS.
    rows.sort(key=lambda row: row[1])
    return rows


def write_maps(maps_dir: Path, image_id: str, mv: np.ndarray, st_probability: np.ndarray,
               fraction: np.ndarray) -> None:
    """Consensus masks and disagreement maps as PNG (maps quantised to 8 bits)."""
    consensus_dir = maps_dir / "consensus"
    disagreement_dir = maps_dir / "disagreement"
    consensus_dir.mkdir(parents=True, exist_ok=True)
    disagreement_dir.mkdir(parents=True, exist_ok=True)
    to_u8 = lambda x: np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)  # noqa: E731
    cv2.imwrite(str(consensus_dir / f"{image_id}_MV.png"), mv.astype(np.uint8) * 255)
    cv2.imwrite(str(consensus_dir / f"{image_id}_ST.png"), (st_probability > 0.5).astype(np.uint8) * 255)
    cv2.imwrite(str(consensus_dir / f"{image_id}_ST_probability.png"), to_u8(st_probability))
    cv2.imwrite(str(disagreement_dir / f"{image_id}_vote_fraction.png"), to_u8(fraction))
    cv2.imwrite(str(disagreement_dir / f"{image_id}_entropy.png"), to_u8(binary_entropy(fraction)))


def lesion_agreement(
    lesion: Lesion, *, empty_policy: str = "imapp", maps_dir: Path | None = None,
    boundary: BoundarySpec | None = DEFAULT_SPEC,
) -> LesionAgreement:
    """Pairs, consensus and STAPLE estimates of one lesion (see the module docstring).

    Lesions with fewer than two readable human masks give no pairs (IAA is
    undefined for them), only the problems found. ``boundary`` chooses the NSD tolerances
    and Boundary IoU widths of the MetricsReloaded columns (``None``: MedPy's columns only).
    """
    problems: list[Problem] = []
    image_name = lesion.image_path.name if lesion.image_path else f"{lesion.image_id}.JPG"
    humans = _decode_all(lesion, lesion.human_segmentations, problems)
    if len(humans) < 2:
        return LesionAgreement(lesion.image_id, problems=tuple(problems), image_file_name=image_name)
    human_masks = [mask for _, mask, _ in humans]
    human_boxes = [box for _, _, box in humans]
    # One count of the masks' vote patterns serves STAPLE, majority vote and kappa/alpha.
    patterns = vote_patterns(human_masks, human_boxes)
    result = staple_from_patterns(patterns)
    mv = majority_vote_from_patterns(patterns)
    staple_rows = tuple(
        (image_name, seg.name, seg.annotator, seg.tool, seg.skill, sens, spec, result.iterations)
        for (seg, _, _), sens, spec in zip(humans, result.sensitivity, result.specificity, strict=True)
    )
    shipped = _decode_all(lesion, lesion.consensus_segmentations, problems)
    if shipped:
        consensus = [(_info(seg), mask) for seg, mask, _ in shipped]
        consensus_boxes = [box for _, _, box in shipped]
        source = "dataset"
    else:
        stem = lesion.image_id
        consensus = [
            (MaskInfo(f"{stem}_ST_ST_ST_ST.png", "ST", "ST", "ST"), result.mask),
            (MaskInfo(f"{stem}_MV_MV_MV_MV.png", "MV", "MV", "MV"), mv),
        ]
        # Both lie inside the union of the human masks: look for their boxes only there.
        consensus_boxes = [_box_within(mask, patterns.box) for _, mask in consensus]
        source = "computed"
    masks = [(_info(seg), mask) for seg, mask, _ in humans] + consensus
    rows = _pair_rows(image_name, masks, empty_policy, boundary, human_boxes + consensus_boxes)
    chance = (chance_from_patterns(patterns) if patterns.box is not None
              else chance_agreement(human_masks))
    if maps_dir is not None:
        write_maps(Path(maps_dir), lesion.image_id, mv, result.probability, vote_fraction(human_masks))
    return LesionAgreement(lesion.image_id, tuple(rows), staple_rows, tuple(problems), source,
                           image_name, extra_columns=boundary.columns if boundary else (),
                           chance=chance.as_tuple())
