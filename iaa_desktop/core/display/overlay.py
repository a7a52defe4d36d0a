"""What the lesion viewer draws, computed without Qt: contours, colours, the lesion table.

Widgets only draw what these functions return (see STYLE.md, "widgets draw,
never compute"), so everything here is testable without a display.

Coordinates: a mask pixel at (row ``r``, column ``c``) covers ``[c, c + 1) x
[r, r + 1)`` in image space, and contour vertices are pixel centres, so a
vertex is ``(c + 0.5, r + 0.5)`` as ``(x, y)``. Contours are always in the
coordinates of the full-resolution image, even when the image is decoded
downscaled for display.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from iaa_desktop.core.dataset.images import load_image, read_header_size
from iaa_desktop.core.dataset.masks import load_segmentation
from iaa_desktop.core.dataset.model import Dataset, Lesion, Problem, Segmentation, make_problem
from iaa_desktop.core.errors import MaskDecodeError
from iaa_desktop.core.palette import annotator_colour
from iaa_desktop.core.progress import Progress

#: Columns of ``lesion_table_frame``, with the header the GUI shows for each.
LESION_TABLE_COLUMNS: dict[str, str] = {
    "image_id": "Image",
    "diagnosis": "Diagnosis",
    "benign_malignant": "Malignancy",
    "split": "Split",
    "annotators": "Annotators",
    "masks": "Masks",
}

#: Longest side, in pixels, of the image decoded for display (the JPEG decoder
#: downscales by 2, 4 or 8 while decoding to stay near this).
DISPLAY_MAX_SIDE = 2048


def mask_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines of every foreground region and hole of a mask.

    Parameters
    ----------
    mask
        (H, W) array; non-zero is foreground.

    Returns
    -------
    list of numpy.ndarray
        One float64 (N, 2) array of (x, y) vertices per outline, at pixel
        centres, with the first vertex repeated at the end. Empty for an
        empty mask.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if mask.dtype == np.bool_ and mask.flags.c_contiguous:
        binary = mask.view(np.uint8)  # no copy: at 6000 x 4000 the conversion costs more than tracing
    else:
        binary = np.ascontiguousarray(mask != 0, dtype=np.uint8)
    found, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    contours = []
    for contour in found:
        points = contour.reshape(-1, 2).astype(np.float64) + 0.5
        contours.append(np.vstack([points, points[:1]]))
    return contours


def join_contours(contours: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All outlines as one polyline, with where to lift the pen.

    Returns
    -------
    points : numpy.ndarray
        (M, 2) float64, the outlines one after the other.
    connect : numpy.ndarray
        (M,) bool, True where vertex ``i`` joins vertex ``i + 1`` (False at
        the last vertex of each outline), as pyqtgraph's ``connect`` argument
        takes it. No NaN separators, so no NaN warnings when plotting.
    """
    if not contours:
        return np.empty((0, 2)), np.empty(0, dtype=bool)
    points = np.vstack([np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in contours])
    connect = np.ones(len(points), dtype=bool)
    ends = np.cumsum([len(c) for c in contours]) - 1
    connect[ends] = False
    return points, connect


def segmentation_label(seg: Segmentation) -> str:
    """``"A00 · T1 · S1"``: the annotator with the tool and skill codes that are known."""
    parts = [seg.annotator] + [code for code in (seg.tool, seg.skill) if code and code != seg.annotator]
    return " · ".join(parts)


def lesion_table_frame(dataset: Dataset) -> pd.DataFrame:
    """One row per lesion with the columns of ``LESION_TABLE_COLUMNS``.

    ``annotators`` counts the distinct human annotators (consensus masks
    excluded); ``masks`` counts every mask file, consensus included.
    """
    rows = [
        (
            lesion.image_id,
            lesion.diagnosis,
            lesion.benign_malignant,
            lesion.split,
            len({s.annotator for s in lesion.human_segmentations}),
            len(lesion.segmentations),
        )
        for lesion in dataset
    ]
    frame = pd.DataFrame(rows, columns=list(LESION_TABLE_COLUMNS))
    return frame.astype({"annotators": "int64", "masks": "int64"})


@dataclass(frozen=True)
class OverlayLayer:
    """One human segmentation as drawn: its colour, legend label and outlines."""

    segmentation: Segmentation
    colour: str
    label: str
    contours: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class LesionOverlay:
    """Everything the lesion viewer shows for one lesion.

    ``image`` is RGB uint8, possibly downscaled for display (``None`` when it
    could not be read); ``shape`` is the full-resolution (height, width) that
    the contours' coordinates refer to. ``layers`` hold the human
    segmentations in the dataset's order, one colour each.
    """

    image_id: str
    image: np.ndarray | None
    shape: tuple[int, int]
    layers: tuple[OverlayLayer, ...]
    problems: tuple[Problem, ...] = ()


def display_reduction(shape: tuple[int, int], max_side: int = DISPLAY_MAX_SIDE) -> int:
    """The JPEG decoder's downscale factor (1, 2, 4 or 8) that brings ``shape`` near ``max_side``."""
    longest = max(shape)
    for factor in (1, 2, 4):
        if longest / factor <= max_side:
            return factor
    return 8


def read_display_image(lesion: Lesion, max_side: int = DISPLAY_MAX_SIDE
                       ) -> tuple[np.ndarray | None, tuple[int, int] | None, list]:
    """A lesion's image decoded near ``max_side`` (JPEG downscaled while decoding), its full
    (height, width), and the problem when it cannot be read (``None``, ``None``, [problem]).
    """
    if lesion.image_path is None:
        return None, None, []
    path = Path(lesion.image_path)
    try:
        shape = read_header_size(path)
        image = load_image(path, reduce=display_reduction(shape, max_side))
    except MaskDecodeError as exc:
        kind = "image_too_large" if exc.reason == "too_large" else "unreadable_image"
        return None, None, [make_problem(kind, str(exc), path, lesion.image_id)]
    return image, shape, []


def iter_lesion_overlay(
    lesion: Lesion, max_side: int = DISPLAY_MAX_SIDE
) -> Generator[Progress, None, LesionOverlay]:
    """Decode a lesion's image and human masks and trace their outlines.

    Yields a ``Progress`` after the image and after each mask (a worker can
    stop between them) and returns the ``LesionOverlay``. Bad files become
    problems in the result, never exceptions.

    Parameters
    ----------
    lesion
        The lesion to draw.
    max_side
        Longest side to aim for when decoding the image for display.
    """
    segs = lesion.human_segmentations
    total = len(segs) + 1
    image, shape, problems = read_display_image(lesion, max_side)
    yield Progress(1, total, f"{lesion.image_id}: image")
    layers = []
    for i, seg in enumerate(segs):
        decoded = load_segmentation(seg, expected_shape=shape)
        problems.extend(decoded.problems)
        if decoded.mask is not None:
            if shape is None:
                shape = decoded.mask.shape
            contours = tuple(mask_contours(decoded.mask))
        else:
            contours = ()
        layers.append(OverlayLayer(seg, annotator_colour(i), segmentation_label(seg), contours))
        yield Progress(i + 2, total, f"{lesion.image_id}: {seg.name}")
    if shape is None:
        shape = (lesion.height or 1, lesion.width or 1)
    return LesionOverlay(lesion.image_id, image, tuple(shape), tuple(layers), tuple(problems))

