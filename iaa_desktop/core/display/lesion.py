"""Everything the lesion view shows for one lesion, decoded once, at display resolution.

``iter_lesion_display`` decodes the image (downscaled by the JPEG decoder, see
``overlay.display_reduction``) and every human mask, and precomputes what the view
draws and looks up under the cursor: each mask at the image's display size, the
majority vote, the vote fraction and its entropy, and outlines. STAPLE is a second,
optional stage (``with_staple``): the first view never waits for it.

Masks are brought to the display size by nearest-neighbour sampling at the centre of
each display pixel (``cv2.INTER_NEAREST_EXACT``), so they stay binary and a display
pixel ``(r, c)`` takes the full-resolution pixel under its centre. Consensus maps are
computed from these display-size masks. Annotators' outlines are traced on the
full-resolution masks (exact at any zoom); consensus outlines are traced at display
size and scaled to full-resolution coordinates (see ``overlay``'s module docstring).
``first_view`` shows a large lesion before that, with its annotators' outlines traced
at display size, and then this exact display in its place.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from threading import Lock

import cv2
import numpy as np

from iaa_desktop.core.agreement.consensus import count_votes
from iaa_desktop.core.agreement.disagreement import binary_entropy
from iaa_desktop.core.agreement.staple import staple
from iaa_desktop.core.dataset.images import read_header_size
from iaa_desktop.core.dataset.masks import load_segmentation
from iaa_desktop.core.dataset.model import Lesion, Problem, Segmentation
from iaa_desktop.core.dataset.png_fast import warm_up as png_warm_up
from iaa_desktop.core.display.overlay import (
    DISPLAY_MAX_SIDE,
    OverlayLayer,
    annotator_colour,
    display_reduction,
    mask_contours,
    read_display_image,
    segmentation_label,
)
from iaa_desktop.core.errors import MaskDecodeError
from iaa_desktop.core.progress import Progress

__all__ = [
    "CONSENSUS_NAMES", "ImagePreview", "LesionDisplay", "PairMasks", "StapleDisplay", "assemble_display",
    "collect_masks", "decode_mask_for_display", "decode_pool", "display_shape", "display_target",
    "iter_lesion_display", "outline_tolerance", "pair_masks", "prepare_decoding", "scaled_contours",
    "staple_labels", "to_display", "with_staple",
]

#: The consensus overlays a pair can name, with their legend labels.
CONSENSUS_NAMES: dict[str, str] = {"MV": "MV (majority vote)", "STAPLE": "STAPLE (p > 0.5)"}

# Mask files decode in parallel: OpenCV releases the GIL, and at 6000 x 4000 a PNG costs
# ~0.1 s to inflate, so the first view of a 5-mask lesion would wait 0.5 s one at a time.
_DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None
_pool_lock = Lock()


def decode_pool() -> ThreadPoolExecutor:
    """The threads masks decode in (started on first use, shared by every lesion)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_DECODE_THREADS, thread_name_prefix="lesion-decode")
        return _pool


def prepare_decoding() -> Future:
    """Start the decode threads and load the compiled PNG unfilter, ahead of the first lesion.

    Loading it from numba's cache takes a few tenths of a second (compiling it, the first
    time on a machine, about one second): a viewer calls this when a dataset opens.
    """
    return decode_pool().submit(png_warm_up)


@dataclass(frozen=True, eq=False)
class ImagePreview(Progress):
    """The first step of ``iter_lesion_display``: progress, with the image already decoded.

    A viewer can show the image while the masks are still decoding (at 6000 x 4000 they
    take most of the time). ``image`` is ``None`` when it could not be read; ``shape`` is
    the full-resolution (height, width).
    """

    image_id: str = ""
    image: np.ndarray | None = None
    shape: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class StapleDisplay:
    """STAPLE of a lesion's display-size masks, for drawing.

    ``sensitivity``/``specificity`` have one entry per layer of the lesion (``None``
    for a mask that could not be read, ``nan`` where STAPLE leaves the rate undefined).
    """

    mask: np.ndarray
    probability: np.ndarray
    sensitivity: tuple[float | None, ...]
    specificity: tuple[float | None, ...]
    contours: tuple[np.ndarray, ...]

    @property
    def nbytes(self) -> int:
        return int(self.mask.nbytes + self.probability.nbytes + sum(c.nbytes for c in self.contours))


@dataclass(frozen=True)
class LesionDisplay:
    """One lesion as the viewer draws it (the fields of ``overlay.LesionOverlay``, and more).

    Attributes
    ----------
    image_id, image, shape, layers, problems
        As in ``overlay.LesionOverlay``: ``image`` is RGB uint8 at display size (or
        ``None``), ``shape`` the full-resolution (height, width) all coordinates refer to,
        ``layers`` the human masks with colours, labels and full-resolution outlines.
    display_shape
        (height, width) of ``image`` and of every array below.
    masks
        One bool array per layer (``None`` for a mask that could not be read).
    majority, vote_fraction, entropy
        Majority vote (bool), fraction of readable masks marking each pixel and its
        binary entropy (float32); ``None`` when no mask could be read.
    majority_contours
        Outlines of the majority vote in full-resolution coordinates.
    staple
        The second stage (``with_staple``), ``None`` until computed.
    exact
        True (always, from ``iter_lesion_display``) when the annotators' outlines were traced
        on the full-resolution masks and every mask's pixel checks ran. False for the first
        view of ``first_view.iter_lesion_first_view``: outlines traced on the display-size
        masks, problems only those found without decoding every pixel; everything else
        (masks, consensus, disagreement) is already what the exact display holds.
    """

    image_id: str
    image: np.ndarray | None
    shape: tuple[int, int]
    layers: tuple[OverlayLayer, ...]
    problems: tuple[Problem, ...]
    display_shape: tuple[int, int]
    masks: tuple[np.ndarray | None, ...]
    majority: np.ndarray | None
    vote_fraction: np.ndarray | None
    entropy: np.ndarray | None
    majority_contours: tuple[np.ndarray, ...] = ()
    staple: StapleDisplay | None = None
    exact: bool = True

    @property
    def readable(self) -> tuple[int, ...]:
        """Indices of the layers whose mask was read."""
        return tuple(i for i, m in enumerate(self.masks) if m is not None)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays, for the display cache's budget."""
        arrays = [self.image, self.majority, self.vote_fraction, self.entropy, *self.masks]
        total = sum(a.nbytes for a in arrays if a is not None)
        total += sum(c.nbytes for layer in self.layers for c in layer.contours)
        total += sum(c.nbytes for c in self.majority_contours)
        return int(total + (self.staple.nbytes if self.staple is not None else 0))


def display_shape(shape: tuple[int, int], max_side: int = DISPLAY_MAX_SIDE,
                  jpeg: bool = True) -> tuple[int, int]:
    """The (height, width) OpenCV decodes a full-resolution ``shape`` at for display.

    The JPEG decoder rounds the reduced size up; other formats are decoded in full and
    resized, which rounds down.
    """
    factor = display_reduction(shape, max_side)
    if jpeg:
        return math.ceil(shape[0] / factor), math.ceil(shape[1] / factor)
    return max(1, shape[0] // factor), max(1, shape[1] // factor)


def to_display(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask at display ``size`` (height, width), bool, sampled at display-pixel centres."""
    mask = np.asarray(mask)
    binary = mask.view(np.uint8) if mask.dtype == np.bool_ else (mask != 0).view(np.uint8)
    if binary.shape == tuple(size):
        return binary.astype(bool)
    small = cv2.resize(binary, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)
    return small.view(np.bool_)


def simplify_contour(contour: np.ndarray, tolerance: float) -> np.ndarray:
    """A closed outline with fewer vertices, none moved more than ``tolerance`` from it (Douglas-Peucker).

    Pixel outlines are staircases: a diagonal edge has a vertex at every step. Drawing
    them costs time in proportion to the vertices (wide antialiased pens are slow to
    stroke), and at display scale the steps are invisible.
    """
    if len(contour) <= 4 or tolerance <= 0:
        return contour
    simple = cv2.approxPolyDP(contour[:-1].astype(np.float32).reshape(-1, 1, 2), tolerance, True)
    points = simple.reshape(-1, 2).astype(np.float64)
    return np.vstack([points, points[:1]])


def scaled_contours(mask: np.ndarray, shape: tuple[int, int],
                     tolerance: float = 0.0) -> tuple[np.ndarray, ...]:
    """Outlines of ``mask`` in the coordinates of a full-resolution ``shape``, simplified to ``tolerance``."""
    contours = mask_contours(mask)
    sy, sx = shape[0] / mask.shape[0], shape[1] / mask.shape[1]
    if sx != 1.0 or sy != 1.0:
        contours = [c * np.array([sx, sy]) for c in contours]
    return tuple(simplify_contour(c, tolerance) for c in contours)


def outline_tolerance(shape: tuple[int, int], small: tuple[int, int]) -> float:
    """How far (full-resolution pixels) a drawn outline may stray: half a display pixel, at least 0.5."""
    return max(0.5, 0.5 * shape[1] / max(small[1], 1))


def decode_mask_for_display(seg: Segmentation, full: tuple[int, int] | None, small: tuple[int, int] | None):
    """Decode one mask in full: (display mask, full-res outlines, full-res shape, problems)."""
    decoded = load_segmentation(seg, expected_shape=full)
    if decoded.mask is None:
        return None, (), None, decoded.problems
    mask = decoded.mask
    target_full = full or mask.shape
    target_small = small or display_shape(mask.shape)
    contours = scaled_contours(mask, target_full, outline_tolerance(target_full, target_small))
    return to_display(mask, target_small), contours, mask.shape, decoded.problems


def display_target(lesion: Lesion, max_side: int = DISPLAY_MAX_SIDE
                   ) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """The image's full-resolution (height, width) from its header and its display size, or ``None``s."""
    if lesion.image_path is None:
        return None, None
    try:
        full = read_header_size(Path(lesion.image_path))
    except MaskDecodeError:
        return None, None  # read_display_image reports it
    jpeg = Path(lesion.image_path).suffix.lower() in (".jpg", ".jpeg", ".jpe", ".jfif")
    return full, display_shape(full, max_side, jpeg)


def iter_lesion_display(
    lesion: Lesion, max_side: int = DISPLAY_MAX_SIDE
) -> Generator[Progress, None, LesionDisplay]:
    """Decode a lesion for the viewer; yields ``Progress`` per file, returns a ``LesionDisplay``.

    The masks decode in a small thread pool while the image decodes. Bad files become
    problems in the result, never exceptions. Closing the generator stops it between
    files (masks already being decoded finish in the background and are dropped).
    """
    full, small = display_target(lesion, max_side)
    pool = decode_pool()
    futures = [pool.submit(decode_mask_for_display, seg, full, small) for seg in lesion.human_segmentations]
    try:
        image, shape, problems = read_display_image(lesion, max_side)
        preview_shape = tuple(shape) if shape is not None else (lesion.height or 1, lesion.width or 1)
        yield ImagePreview(1, len(futures) + 1, f"{lesion.image_id}: image", lesion.image_id, image,
                           preview_shape)
        results = yield from collect_masks(lesion, futures)
    finally:
        for future in futures:
            future.cancel()
    return assemble_display(lesion, image, shape, problems, results, full, small, max_side)


def collect_masks(lesion: Lesion, futures: list[Future], first_step: int = 2, total: int | None = None
                  ) -> Generator[Progress, None, list]:
    """The results of the masks' decode ``futures`` in order, with a ``Progress`` after each.

    Steps count from ``first_step`` up to ``total`` (by default the last mask's step).
    """
    segs = lesion.human_segmentations
    total = len(segs) + first_step - 1 if total is None else total
    results = []
    for i, (seg, future) in enumerate(zip(segs, futures, strict=True)):
        results.append(future.result())
        yield Progress(i + first_step, total, f"{lesion.image_id}: {seg.name}")
    return results


def assemble_display(lesion: Lesion, image, shape, problems, results, full, small,
                     max_side: int = DISPLAY_MAX_SIDE, exact: bool = True) -> LesionDisplay:
    """A ``LesionDisplay`` from the decoded image and each mask's ``decode_mask_for_display``-shaped result.

    ``results`` hold per mask (display mask, outlines in full-resolution coordinates when
    ``full`` was known, else in the mask's own, the mask's full shape, problems); ``full``
    and ``small`` are ``display_target``'s.
    """
    segs = lesion.human_segmentations
    problems = list(problems)
    if shape is None:
        shapes = [r[2] for r in results if r[2] is not None]
        shape = tuple(shapes[0]) if shapes else (lesion.height or 1, lesion.width or 1)
    if image is not None:
        small = image.shape[:2]  # masks are resampled again below only if the guess was wrong
    elif small is None:
        small = display_shape(shape, max_side)
    masks, layers = [], []
    for i, (seg, (mask, contours, mask_shape, mask_problems)) in enumerate(zip(segs, results, strict=True)):
        problems.extend(mask_problems)
        if mask is not None and mask.shape != tuple(small):
            mask = to_display(mask, small)
        if contours and mask_shape is not None and full is None and tuple(mask_shape) != tuple(shape):
            contours = tuple(c * np.array([shape[1] / mask_shape[1], shape[0] / mask_shape[0]])
                             for c in contours)
        masks.append(mask)
        layers.append(OverlayLayer(seg, annotator_colour(i), segmentation_label(seg), contours))
    display = _with_consensus(lesion.image_id, image, tuple(shape), tuple(small), layers, masks, problems)
    return display if exact else replace(display, exact=False)


def _with_consensus(image_id, image, shape, small, layers, masks, problems) -> LesionDisplay:
    valid = [m for m in masks if m is not None]
    majority = fraction = entropy = None
    majority_contours: tuple[np.ndarray, ...] = ()
    if valid:
        # Votes are counted once; fraction, entropy and majority are look-ups on them (the same
        # values as core.disagreement.vote_fraction / binary_entropy and consensus.majority_vote,
        # which would each count again).
        n = len(valid)
        votes = count_votes(valid)
        levels = (np.arange(n + 1, dtype=np.float64) / n).astype(np.float32)
        fraction = levels[votes]
        entropy = binary_entropy(levels)[votes]
        majority = votes >= (n + 1) // 2  # ties to foreground, as majority_vote
        majority_contours = scaled_contours(majority, shape, outline_tolerance(shape, small))
    return LesionDisplay(image_id, image, shape, tuple(layers), tuple(problems), small, tuple(masks),
                         majority, fraction, entropy, majority_contours)


def lesion_staple(display: LesionDisplay) -> StapleDisplay | None:
    """STAPLE of the display-size masks (``None`` without a readable mask).

    Sensitivity and specificity are mapped back to the lesion's layers.
    """
    readable = display.readable
    if not readable:
        return None
    result = staple([display.masks[i] for i in readable])
    sens: list[float | None] = [None] * len(display.masks)
    spec: list[float | None] = [None] * len(display.masks)
    for k, i in enumerate(readable):
        sens[i], spec[i] = result.sensitivity[k], result.specificity[k]
    return StapleDisplay(result.mask, result.probability.astype(np.float32), tuple(sens), tuple(spec),
                         scaled_contours(result.mask, display.shape,
                                          outline_tolerance(display.shape, display.display_shape)))


def with_staple(display: LesionDisplay) -> LesionDisplay:
    """``display`` with its STAPLE stage computed (the same object when already there)."""
    if display.staple is not None or not display.readable:
        return display
    return replace(display, staple=lesion_staple(display))


def staple_labels(display: LesionDisplay) -> list[str]:
    """Legend labels with STAPLE's rates: ``"A03 · T1 · S2  sens 0.93 spec 0.99"`` (plain without STAPLE)."""
    st = display.staple
    labels = [layer.label for layer in display.layers]
    if st is None:
        return labels
    return [label if st.sensitivity[i] is None else
            f"{label}  sens {st.sensitivity[i]:.2f} spec {st.specificity[i]:.2f}"
            for i, label in enumerate(labels)]


@dataclass(frozen=True)
class PairMasks:
    """Two masks of a lesion side by side: each, and where only one of them marks."""

    label_a: str
    label_b: str
    mask_a: np.ndarray
    mask_b: np.ndarray
    only_a: np.ndarray
    only_b: np.ndarray


def _pair_member(display: LesionDisplay, which: int | str) -> tuple[str, np.ndarray]:
    if which == "MV":
        if display.majority is None:
            raise ValueError(f"{display.image_id}: no readable mask, so no majority vote")
        return "MV", display.majority
    if which == "STAPLE":
        if display.staple is None:
            raise ValueError(f"{display.image_id}: STAPLE has not been computed (see with_staple)")
        return "STAPLE", display.staple.mask
    if isinstance(which, str) or not 0 <= int(which) < len(display.masks):
        raise ValueError(f"{display.image_id}: no mask {which!r} (0..{len(display.masks) - 1}, MV, STAPLE)")
    index = int(which)
    mask = display.masks[index]
    if mask is None:
        raise ValueError(f"{display.image_id}: mask {which} ({display.layers[index].label}) is unreadable")
    annotators = [layer.segmentation.annotator for layer in display.layers]
    name = annotators[index]
    if annotators.count(name) > 1:  # a repeat: "A05 #2", as the pair matrix names it
        name = f"{name} #{annotators[:index + 1].count(name)}"
    return name, mask


def pair_masks(display: LesionDisplay, a: int | str, b: int | str) -> PairMasks:
    """Masks ``a`` and ``b`` (layer indices, ``"MV"`` or ``"STAPLE"``) and their symmetric difference.

    Raises
    ------
    ValueError
        When one of them does not exist or was not read.
    """
    label_a, mask_a = _pair_member(display, a)
    label_b, mask_b = _pair_member(display, b)
    return PairMasks(label_a, label_b, mask_a, mask_b, mask_a & ~mask_b, mask_b & ~mask_a)
