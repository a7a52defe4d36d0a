"""The dataset model: ``Dataset`` -> ``Lesion`` -> ``Segmentation``, plus ``Problem``.

Indexing a dataset only reads metadata and lists directories; pixels are decoded
on demand (``iaa_desktop.core.dataset.masks`` and ``iaa_desktop.core.dataset.images``), one file
at a time, so a dataset the size of IMA++ (15k images, 22k masks) indexes in
about a second and a few tens of MB.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

#: Annotator codes of masks that are not a human annotator's own: IMA++'s consensus masks
#: (STAPLE, majority vote) and ``reference``, the adjudicated reference a reviewed export
#: writes (``core.curation.reviewed_export.REFERENCE_FOLDER``). They are left out of the
#: human-human agreement (the IAA) and of MV/STAPLE's inputs; their pairs with the
#: annotators are still computed.
CONSENSUS_ANNOTATORS = ("ST", "MV", "reference")

SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class Problem:
    """Something wrong with an input, recorded instead of stopping the load.

    ``kind`` is a stable snake_case identifier (``missing_mask``,
    ``unreadable_mask``, ...; see ``PROBLEM_KINDS``) that the CLI's JSON output,
    QA tables and the GUI's problems panel share. ``message`` is a sentence a
    user can act on and always names the file.
    """

    kind: str
    severity: str
    message: str
    path: str = ""
    image_id: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")


#: Every problem kind the loaders and the mask decoder report, with its severity.
PROBLEM_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "missing_image": "medium",
        "missing_mask": "high",
        "empty_file": "high",
        "unreadable_image": "high",
        "unreadable_mask": "high",
        "truncated_file": "high",
        "size_mismatch": "high",
        "non_binary_mask": "medium",
        "duplicate_mask": "medium",
        "duplicate_image": "medium",
        "image_too_large": "high",
        "unexpected_channels": "medium",
        "unknown_image": "medium",
        "bad_metadata": "medium",
        "unknown_label": "low",
        "ambiguous_label": "medium",
        "missing_label": "medium",
    }
)


def make_problem(kind: str, message: str, path: str | Path = "", image_id: str = "") -> Problem:
    """A ``Problem`` of a known kind with its default severity."""
    return Problem(kind, PROBLEM_KINDS[kind], message, str(path), image_id)


@dataclass(frozen=True)
class Segmentation:
    """One mask of one lesion by one annotator (or a consensus mask).

    The same annotator may segment an image more than once (IMA++ has such
    repeats, which give intra-annotator agreement); each repeat is its own
    ``Segmentation``, told apart by ``mask_path``.
    """

    image_id: str
    annotator: str
    tool: str
    skill: str
    mask_path: Path
    object_id: str = ""

    @property
    def name(self) -> str:
        """The mask's file name, unique within a dataset."""
        return self.mask_path.name

    @property
    def is_consensus(self) -> bool:
        return self.annotator in CONSENSUS_ANNOTATORS


@dataclass(frozen=True)
class Lesion:
    """One image with its labels, metadata and every segmentation of it.

    ``benign_malignant`` is the label as the source gives it, lower-cased
    (``benign``, ``malignant``, ``indeterminate``, ...), or ``None`` when unknown.
    ``width``/``height`` come from metadata when it has them, else ``None``
    (they are then read from the image header when needed).
    """

    image_id: str
    image_path: Path | None
    segmentations: tuple[Segmentation, ...] = ()
    diagnosis: str | None = None
    benign_malignant: str | None = None
    split: str | None = None
    width: int | None = None
    height: int | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)

    @property
    def human_segmentations(self) -> tuple[Segmentation, ...]:
        return tuple(s for s in self.segmentations if not s.is_consensus)

    @property
    def consensus_segmentations(self) -> tuple[Segmentation, ...]:
        return tuple(s for s in self.segmentations if s.is_consensus)

    @property
    def is_malignant(self) -> bool | None:
        """True/False for malignant/benign, None for anything else."""
        if self.benign_malignant == "malignant":
            return True
        if self.benign_malignant == "benign":
            return False
        return None


@dataclass(frozen=True)
class Dataset:
    """An indexed, read-only dataset. Nothing here holds pixels."""

    root: Path
    layout: str
    lesions: tuple[Lesion, ...]
    problems: tuple[Problem, ...] = ()
    name: str = ""

    def __len__(self) -> int:
        return len(self.lesions)

    def __iter__(self) -> Iterator[Lesion]:
        return iter(self.lesions)

    @cached_property
    def _by_id(self) -> dict[str, Lesion]:
        return {lesion.image_id: lesion for lesion in self.lesions}

    def lesion(self, image_id: str) -> Lesion:
        """The lesion with this image id (``KeyError`` naming it if absent)."""
        try:
            return self._by_id[image_id]
        except KeyError:
            raise KeyError(f"no lesion with image id {image_id!r} in {self.root}") from None

    def segmentations(self) -> Iterator[Segmentation]:
        for lesion in self.lesions:
            yield from lesion.segmentations

    def problems_by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(p.kind for p in self.problems).items()))
