"""Simulated annotators for the synthetic demo: a fixed roster, each with habits.

``annotate`` turns a drawn lesion's presence map into one annotator's binary
mask: tight or generous border, polygon (T1), flood-fill (T2) or pixel (T3)
tool, novice noise, an occasional missed lobe.

Disagreement is not added at random: it comes out of the border. Benign lesions
get a sharp, nearly round border, so wherever an annotator puts the edge the
masks agree; malignant ones get irregular shapes, satellite lobes and a wide,
ragged edge, so the same habits give masks that differ more, as on IMA++.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from iaa_desktop.core.dataset.demo_lesions import (
    REFERENCE_RADIUS,
    LesionDrawing,
    signed_distance,
    smooth_noise,
)


@dataclass(frozen=True)
class AnnotatorStyle:
    """How one simulated annotator segments.

    ``offset_px`` moves the border out (generous, > 0) or in (tight, < 0);
    ``threshold`` is the presence level taken as the edge (a low one includes
    more of a faded border); ``wander_px`` is how far the border drifts slowly
    along its length; ``vertex_spacing_px`` is the polygon tool's typical
    distance between clicks; ``p_miss_lobe`` the chance of leaving a part out.
    """

    annotator: str
    tool: str
    skill: str
    offset_px: float
    threshold: float
    wander_px: float
    vertex_spacing_px: float
    p_miss_lobe: float


#: The fixed roster: ids, tools and skills as IMA++ codes them (T1 manual polygon,
#: T2 semi-automatic flood fill, T3 manual pixel-level; S1 expert, S2 novice).
ROSTER = (
    AnnotatorStyle("A00", "T1", "S1", 2.0, 0.50, 2.0, 14.0, 0.06),
    AnnotatorStyle("A01", "T3", "S1", -3.0, 0.7, 1.5, 0.0, 0.06),
    AnnotatorStyle("A02", "T2", "S1", 0.0, 0.45, 2.0, 0.0, 0.08),
    AnnotatorStyle("A03", "T1", "S2", 6.0, 0.25, 5.0, 30.0, 0.16),
    AnnotatorStyle("A04", "T3", "S1", 4.0, 0.3, 2.0, 0.0, 0.06),
    AnnotatorStyle("A05", "T2", "S2", -1.0, 0.58, 4.5, 0.0, 0.18),
    AnnotatorStyle("A06", "T1", "S1", -4.0, 0.75, 2.0, 18.0, 0.06),
    AnnotatorStyle("A07", "T3", "S2", 3.0, 0.40, 5.5, 0.0, 0.2),
)


# ---------------------------------------------------------------------------
# annotators


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Annotators outline a lesion: whatever the border encloses is lesion."""
    h, w = mask.shape
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flood[1:-1, 1:-1] = mask
    cv2.floodFill(flood, None, (0, 0), 128)
    return np.where(flood[1:-1, 1:-1] == 128, 0, 255).astype(np.uint8)


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label image, area of each label) of the 8-connected parts of ``mask``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return labels, stats[:, cv2.CC_STAT_AREA] if n else np.zeros(0, np.int32)


def _keep_largest(mask: np.ndarray, min_fraction: float = 1.0) -> np.ndarray:
    """The largest part, plus any others of at least ``min_fraction`` of its area."""
    labels, areas = _components(mask)
    if len(areas) <= 1:
        return mask
    fg = areas[1:]
    keep = np.flatnonzero(fg >= min_fraction * fg.max()) + 1
    return np.where(np.isin(labels, keep), 255, 0).astype(np.uint8)


def _polygon(
    rng: np.random.Generator, mask: np.ndarray, style: AnnotatorStyle, zoom: float
) -> np.ndarray:
    """Click vertices along the main outline and fill the polygon (tool T1).

    One polygon per lesion: a detached satellite lobe is left out, and the
    chords between clicks cut off bumps and bridge notches of a ragged border.
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return mask
    outline = max(contours, key=cv2.contourArea)[:, 0, :].astype(np.float64)
    closed = np.vstack([outline, outline[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    spacing = zoom * style.vertex_spacing_px * rng.uniform(0.75, 1.3)
    n = max(8, int(arc[-1] / spacing))
    s = (rng.uniform(0, 1) + np.arange(n)) / n * arc[-1]
    vertices = np.stack([np.interp(s, arc, closed[:, 0]), np.interp(s, arc, closed[:, 1])], 1)
    vertices += rng.normal(0, zoom * (0.6 if style.skill == "S1" else 1.8), vertices.shape)
    out = np.zeros_like(mask)
    cv2.fillPoly(out, [np.round(vertices * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    return out


def _miss_lobe(
    rng: np.random.Generator, mask: np.ndarray, centre: tuple[float, float], r0: float
) -> np.ndarray:
    """Leave out one side of the lesion behind a curved cut (10-25 % of the mask)."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 50:
        return mask
    angle = rng.uniform(0, 2 * np.pi)
    along = (xs - centre[0]) * np.cos(angle) + (ys - centre[1]) * np.sin(angle)
    across = -(xs - centre[0]) * np.sin(angle) + (ys - centre[1]) * np.cos(angle)
    limit = np.quantile(along, rng.uniform(0.75, 0.9)) + rng.uniform(-0.6, 0.6) * across**2 / r0
    out = mask.copy()
    cut = along > limit
    out[ys[cut], xs[cut]] = 0
    return _keep_largest(out)


def annotate(
    rng: np.random.Generator, drawing: LesionDrawing, style: AnnotatorStyle, hard: bool
) -> np.ndarray:
    """One annotator's mask of a drawn lesion: uint8, 0 or 255, the image's size.

    Parameters
    ----------
    rng
        Randomness of this one segmentation (a repeat by the same annotator
        takes a fresh stream and so differs a little, as real repeats do).
    drawing
        The lesion as ``draw_lesion`` painted it.
    style
        The annotator's habits.
    hard
        A malignant lesion: lobes are missed twice as often.
    """
    full = drawing.presence
    # Work in the box around the lesion (plus room for generous borders): the
    # distance transforms and noise then cost a third of the whole image's.
    x, y, bw, bh = cv2.boundingRect(np.where(full > 0.01, 255, 0).astype(np.uint8))
    margin = 24
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(full.shape[1], x + bw + margin), min(full.shape[0], y + bh + margin)
    presence = full[y0:y1, x0:x1]
    centre = (drawing.centre[0] - x0, drawing.centre[1] - y0)
    h, w = presence.shape
    expert = style.skill == "S1"
    threshold = np.clip(style.threshold + rng.normal(0, 0.05 if expert else 0.12), 0.1, 0.9)
    # Flood fill follows the pixels, grain and all; by hand the grain is smoothed over.
    grain = 0.2 if style.tool == "T2" else 0.04
    noise = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), 1.0)
    seen = np.where(presence + grain * 2.0 * noise > threshold, 255, 0).astype(np.uint8)
    # Where the border is drawn: the annotator's usual offset, a per-lesion slip
    # and a slow drift along the outline. Annotators zoom until the lesion fills
    # the screen, so their hand's error in image pixels grows with the lesion.
    zoom = drawing.radius / REFERENCE_RADIUS
    level = style.offset_px + rng.normal(0, 0.8 if expert else 1.8)
    level = level + style.wander_px * smooth_noise(rng, h, w, max(8.0, 0.6 * drawing.radius))
    level = zoom * level
    mask = np.where(signed_distance(seen) > -level, 255, 0).astype(np.uint8)
    if style.tool == "T1":
        mask = _polygon(rng, _keep_largest(mask), style, zoom)
    elif style.tool == "T2":
        mask = _keep_largest(mask)
    else:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
        mask = _keep_largest(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel), 0.01)
    mask = _fill_holes(mask)
    if rng.random() < style.p_miss_lobe * (2.0 if hard else 1.0):
        mask = _miss_lobe(rng, mask, centre, drawing.radius)
    out = np.zeros(full.shape, np.uint8)
    out[y0:y1, x0:x1] = mask
    if not out.any():  # never hand back an empty mask: fall back to the plain reading
        out = np.where(full > 0.5, 255, 0).astype(np.uint8)
    return out
