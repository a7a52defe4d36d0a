"""Drawing the synthetic demo: dermoscopy-like lesion images.

Pure functions of a ``numpy.random.Generator``: ``draw_lesion`` paints one RGB
image and returns, with it, the *presence* map (how much lesion an observer sees
at each pixel, 1 inside, 0 on skin, soft across the border), which
``demo_annotators.annotate`` turns into each annotator's mask.

Disagreement is not added at random: it comes out of the border. Benign lesions
get a sharp, nearly round border, so wherever an annotator puts the edge the
masks agree; malignant ones get irregular shapes, satellite lobes and a wide,
ragged edge, so the same habits give masks that differ more, as on IMA++.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: (width, height) of the demo images: small, so the whole set draws in seconds.
IMAGE_SIZES = ((480, 360), (512, 384), (448, 336))

#: Lesion kinds the painter knows, each with (border width range in px, raggedness in px).
EDGE_STYLES = {
    "nevus": ((1.0, 2.5), 0.4),
    "seborrheic_keratosis": ((1.0, 2.5), 0.8),
    "dermatofibroma": ((2.5, 5.0), 0.8),
    "melanoma": ((4.0, 11.0), 2.0),
    "basal_cell_carcinoma": ((5.0, 11.0), 2.0),
}
MALIGNANT_KINDS = ("melanoma", "basal_cell_carcinoma")
#: The lesion radius (px) at which ``EDGE_STYLES`` widths apply as they are.
REFERENCE_RADIUS = 75.0

# Optical density of melanin per RGB channel: it absorbs blue most and red least,
# which is what makes pigment brown on skin and near black where it is dense.
_MELANIN = np.array([0.8, 1.3, 1.65], np.float32)

_SKIN_TONES = np.array(
    [[0.93, 0.74, 0.66], [0.88, 0.66, 0.56], [0.80, 0.58, 0.46], [0.92, 0.70, 0.66]], np.float32
)


@dataclass(frozen=True)
class LesionDrawing:
    """One painted lesion: the RGB image and what annotators see of it.

    ``presence`` is float32 in [0, 1], same height and width as ``image``
    (uint8, RGB). ``centre`` is (x, y) and ``radius`` the mean radius in pixels.
    """

    image: np.ndarray
    presence: np.ndarray
    centre: tuple[float, float]
    radius: float


# ---------------------------------------------------------------------------
# noise fields


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Zero-mean, unit-std float32 noise with features about ``scale`` px wide.

    Drawn on a coarse grid and upsampled: a blur of full-size noise would cost
    far more for large scales and look the same.
    """
    gh, gw = int(h / scale) + 4, int(w / scale) + 4
    coarse = rng.standard_normal((gh, gw), dtype=np.float32)
    field = cv2.resize(coarse, (int(gw * scale), int(gh * scale)), interpolation=cv2.INTER_CUBIC)
    field = np.ascontiguousarray(field[:h, :w])
    return (field - field.mean()) / (field.std() + 1e-6)


def _network(
    rng: np.random.Generator, h: int, w: int, cell: float, width: float, mesh: bool = False
) -> np.ndarray:
    """A reticular pattern in [0, 1]: the zero lines of a smooth random field.

    The zero set of band-limited noise is a web of closed loops about ``cell``
    px across, which reads as a pigment network (or, coarser, as skin furrows).
    """
    first = np.exp(-((smooth_noise(rng, h, w, cell) / width) ** 2))
    if not mesh:
        return first
    # Two crossing webs close each other's open ends into holes: a honeycomb.
    return np.maximum(first, np.exp(-((smooth_noise(rng, h, w, cell) / width) ** 2)))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the mask's border in px, positive inside, negative outside."""
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(np.where(mask > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    return np.where(mask > 0, inside - 0.5, 0.5 - outside).astype(np.float32)


def _blobs(h: int, w: int, centres: np.ndarray, radii: np.ndarray, blur: float) -> np.ndarray:
    """Soft discs in [0, 1], drawn once and blurred once (cheaper than one Gaussian each)."""
    layer = np.zeros((h, w), np.uint8)
    for (x, y), r in zip(centres, radii, strict=True):
        cv2.circle(layer, (int(x * 16), int(y * 16)), max(1, int(r * 16)), 255, -1, cv2.LINE_AA, 4)
    out = layer.astype(np.float32) / 255.0
    return cv2.GaussianBlur(out, (0, 0), blur) if blur > 0 else out


def _mix(img: np.ndarray, colour, weight: np.ndarray) -> np.ndarray:
    weight = weight[..., None]
    return img * (1.0 - weight) + np.asarray(colour, np.float32) * weight


# ---------------------------------------------------------------------------
# the lesion's true shape


def _lesion_shape(
    rng: np.random.Generator, h: int, w: int, malignant: bool
) -> tuple[np.ndarray, tuple[float, float], float]:
    """The true lesion mask (uint8 0/255), its centre (x, y) and mean radius.

    The outline is a circle deformed by a few harmonics: low ones (elongation,
    a gentle bulge) for benign lesions; up to the 10th, stronger, for malignant
    ones, which also get satellite lobes (some detached) - the asymmetry and
    border irregularity of the ABCD rule.
    """
    size = min(h, w)
    r0 = size * (rng.uniform(0.14, 0.32) if malignant else rng.uniform(0.11, 0.3))
    cx = w / 2 + rng.uniform(-0.1, 0.1) * w
    cy = h / 2 + rng.uniform(-0.08, 0.08) * h
    theta = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
    radius = 1.0 + rng.uniform(0.0, 0.18) * np.cos(2 * (theta - rng.uniform(0, np.pi)))
    harmonics = range(3, 11) if malignant else range(3, 6)
    for k in harmonics:
        amplitude = (rng.uniform(0.05, 0.3) / k**0.7) if malignant else rng.uniform(0.0, 0.035)
        radius += amplitude * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    radius = r0 * np.maximum(radius, 0.4)
    points = np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    if malignant:
        for _ in range(rng.integers(0, 4)):
            angle = rng.uniform(0, 2 * np.pi)
            # Some lobes overlap the body, some sit just off it: polygon and
            # flood-fill annotators then leave the detached ones out.
            dist = radius[int(angle / (2 * np.pi) * 720) % 720] * rng.uniform(0.9, 1.35)
            axes = (r0 * rng.uniform(0.12, 0.3), r0 * rng.uniform(0.08, 0.2))
            centre = (cx + dist * np.cos(angle), cy + dist * np.sin(angle))
            tilt = float(np.degrees(angle)) + rng.uniform(-30, 30)
            cv2.ellipse(mask, (int(centre[0] * 16), int(centre[1] * 16)),
                        (int(axes[0] * 16), int(axes[1] * 16)), tilt, 0, 360, 255, -1,
                        cv2.LINE_8, 4)  # fmt: skip
    return mask, (float(cx), float(cy)), float(r0)


# ---------------------------------------------------------------------------
# painting


def _skin(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Skin under the dermatoscope's gel: uneven tone, redness, furrows, grain."""
    tone = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] + rng.normal(0, 0.025, 3).astype(np.float32)
    skin = np.empty((h, w, 3), np.float32)
    skin[:] = tone
    skin *= (1.0 + 0.05 * smooth_noise(rng, h, w, 60))[..., None]
    redness = _smoothstep(0.5 * smooth_noise(rng, h, w, 90)) * rng.uniform(0.0, 0.05)
    skin[..., 1] -= redness
    skin[..., 2] -= 0.8 * redness
    furrows = cv2.GaussianBlur(_network(rng, h, w, rng.uniform(9, 14), 0.2), (0, 0), 0.8)
    skin *= (1.0 - rng.uniform(0.015, 0.045) * furrows)[..., None]
    grain = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), 1.2)
    skin *= (1.0 + 0.03 * grain)[..., None]
    return skin


def _presence(rng: np.random.Generator, sd: np.ndarray, kind: str, r0: float) -> np.ndarray:
    """How much lesion is seen at each pixel, from the signed distance to the true border.

    The border's width varies along it and, for malignant kinds, the edge is
    ragged (pigment streaming out in fingers), which is where annotators part.
    Both scale with the lesion, as a zoomed-in photo blurs the edge over more
    pixels: agreement then depends on the border more than on the lesion's size.
    """
    h, w = sd.shape
    (lo, hi), ragged = EDGE_STYLES[kind]
    if kind not in MALIGNANT_KINDS and rng.random() < 0.2:
        lo, hi = 2 * lo + 1, 2 * hi + 1  # a faint benign lesion: its edge is hard to place too
    scale = r0 / REFERENCE_RADIUS
    width = scale * rng.uniform(lo, hi) * np.exp(0.45 * smooth_noise(rng, h, w, 40))
    jitter = scale * ragged * rng.uniform(0.6, 1.4) * smooth_noise(rng, h, w, 6 * scale)
    return _smoothstep(0.5 + (sd + jitter) / (2.0 * width))


def _pigment(
    rng: np.random.Generator,
    skin: np.ndarray,
    presence: np.ndarray,
    sd: np.ndarray,
    kind: str,
    r0: float,
) -> np.ndarray:
    """Paint the lesion of ``kind`` onto ``skin`` (float RGB in [0, 1])."""
    h, w = presence.shape
    depth = np.clip(sd / r0, 0.0, 1.0)  # 0 at the border, 1 deep inside
    inside = np.argwhere(sd > 0.15 * r0)[:, ::-1].astype(np.float32)  # (x, y) points

    def spots(n: int, rmin: float, rmax: float, blur: float) -> np.ndarray:
        if len(inside) == 0 or n == 0:
            return np.zeros((h, w), np.float32)
        pick = inside[rng.integers(len(inside), size=n)]
        return _blobs(h, w, pick, rng.uniform(rmin, rmax, n), blur)

    if kind == "nevus":
        density = rng.uniform(0.35, 1.0) * (0.7 + 0.4 * depth**0.6)
        density *= 1.0 + 0.12 * smooth_noise(rng, h, w, 25)
        net = cv2.GaussianBlur(_network(rng, h, w, rng.uniform(9, 13), 0.4, True), (0, 0), 0.8)
        density *= 0.75 + rng.uniform(0.2, 0.5) * net
        if rng.random() < 0.35:  # globular nevus: brown clods
            density += 0.5 * spots(int(rng.integers(10, 40)), 2.0, 4.0, 1.0)
        img = skin * np.exp(-(density * presence)[..., None] * _MELANIN)
    elif kind == "seborrheic_keratosis":
        density = rng.uniform(0.35, 0.9) * (1.0 + 0.25 * smooth_noise(rng, h, w, 15))
        ridges = _network(rng, h, w, rng.uniform(11, 16), 0.5)
        density *= 0.8 + 0.4 * cv2.GaussianBlur(ridges, (0, 0), 1.2)  # cerebriform
        density += 0.9 * spots(int(rng.integers(2, 10)), 1.5, 3.5, 0.8)  # comedo-like openings
        img = skin * np.exp(-(density * presence)[..., None] * _MELANIN)
        img *= np.where(presence[..., None] > 0, [1.03, 1.0, 0.9], 1.0).astype(np.float32)
        milia = spots(int(rng.integers(2, 9)), 1.5, 3.5, 1.0) * presence
        img = _mix(img, (0.97, 0.94, 0.8), 0.85 * milia)
    elif kind == "dermatofibroma":
        density = rng.uniform(0.3, 0.55) * (1.0 + 0.2 * smooth_noise(rng, h, w, 20))
        density *= 0.75 + 0.35 * _network(rng, h, w, 8, 0.35, True)
        img = skin * np.exp(-(density * presence)[..., None] * _MELANIN)
        scar = _smoothstep((depth - rng.uniform(0.3, 0.5)) * 3.0)
        scar *= 1.0 + 0.3 * smooth_noise(rng, h, w, 10)
        img = _mix(img, (0.92, 0.84, 0.82), np.clip(0.65 * scar, 0, 1))
    elif kind == "melanoma":
        density = rng.uniform(0.5, 1.0) * (1.0 + 0.45 * smooth_noise(rng, h, w, 30))
        density += 0.3 * smooth_noise(rng, h, w, 12)
        blotch = _smoothstep(smooth_noise(rng, h, w, r0 * 0.5) - rng.uniform(0.3, 1.0))
        density += rng.uniform(0.8, 1.8) * blotch
        net = cv2.GaussianBlur(_network(rng, h, w, rng.uniform(7, 11), 0.6), (0, 0), 1.0)
        density *= 0.75 + 0.5 * net  # atypical network: thick, uneven lines
        rim = np.argwhere(np.abs(sd + 3.0) < 4.0)[:, ::-1].astype(np.float32)
        if len(rim):  # irregular dots and globules at the periphery
            pick = rim[rng.integers(len(rim), size=40)]
            density += 1.2 * _blobs(h, w, pick, rng.uniform(1.0, 2.5, 40), 0.8)
        img = skin * np.exp(-(np.maximum(density, 0.1) * presence)[..., None] * _MELANIN)
        if rng.random() < 0.6:  # blue-white veil: melanin deep in the dermis
            veil = _smoothstep(smooth_noise(rng, h, w, 20) - 0.4) * presence
            img = _mix(img, (0.36, 0.41, 0.52), rng.uniform(0.4, 0.75) * veil)
        if rng.random() < 0.5:  # regression: scar-like white areas
            white = _smoothstep(smooth_noise(rng, h, w, 25) - 0.5) * _smoothstep(3 * depth)
            img = _mix(img, (0.84, 0.76, 0.78), rng.uniform(0.3, 0.6) * white)
        red = np.maximum(smooth_noise(rng, h, w, 25), 0) * presence * rng.uniform(0, 0.25)
        img[..., 1] *= 1.0 - red
        img[..., 2] *= 1.0 - 0.7 * red
    elif kind == "basal_cell_carcinoma":
        pink = presence * np.clip(0.55 + 0.2 * smooth_noise(rng, h, w, 20), 0.2, 0.9)
        img = _mix(skin, (0.95, 0.66, 0.67), pink)  # pink, translucent
        shiny = _smoothstep(smooth_noise(rng, h, w, 18) - 0.6)  # shiny white areas
        img = _mix(img, (0.98, 0.92, 0.9), 0.35 * presence * shiny)
        img *= np.exp(-(0.15 * presence)[..., None] * _MELANIN)
        if len(inside):  # blue-grey ovoid nests: clusters of small round cells
            n = int(rng.integers(3, 9))
            nests = np.repeat(inside[rng.integers(len(inside), size=n)], 6, axis=0)
            nests += rng.normal(0, 1, nests.shape) * rng.uniform(2, 6)
            cover = _blobs(h, w, nests, rng.uniform(1.5, 4.0, len(nests)), 1.5)
            img = _mix(img, (0.36, 0.4, 0.52), 0.8 * cover)
        img = _vessels(rng, img, inside, r0, presence)
    else:
        raise ValueError(f"unknown lesion kind {kind!r}")
    return img


def _vessels(
    rng: np.random.Generator,
    img: np.ndarray,
    inside: np.ndarray,
    r0: float,
    presence: np.ndarray,
) -> np.ndarray:
    """Arborizing vessels: branching red lines, thick trunks thinning out."""
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.uint8)
    if len(inside) == 0:
        return img
    for _ in range(int(rng.integers(2, 6))):
        stack = [(inside[rng.integers(len(inside))], rng.uniform(0, 2 * np.pi), 3)]
        while stack:
            start, angle, level = stack.pop()
            points = [start]
            for _ in range(int(rng.integers(4, 9))):
                angle += rng.normal(0, 0.35)
                step = r0 * 0.06
                points.append(points[-1] + step * np.array([np.cos(angle), np.sin(angle)]))
            pts = np.round(np.array(points) * 16).astype(np.int32)
            cv2.polylines(layer, [pts], False, 255, max(1, level - 1), cv2.LINE_AA, 4)
            if level > 1:
                for turn in (-0.6, 0.6):
                    stack.append((points[-1], angle + turn + rng.normal(0, 0.2), level - 1))
    cover = layer.astype(np.float32) / 255.0 * 0.8 * np.clip(1.5 * presence, 0, 1)
    return _mix(img, (0.72, 0.12, 0.16), cover)


def _hairs(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Dark curved hairs over half the images, from a few to many."""
    if rng.random() < 0.5:
        return img
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.uint8)
    t = np.linspace(0, 1, 24)[:, None]
    for _ in range(int(rng.integers(2, 30))):
        p0 = rng.uniform([-0.1 * w, -0.1 * h], [1.1 * w, 1.1 * h])
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.15, 0.6) * w
        p2 = p0 + length * np.array([np.cos(angle), np.sin(angle)])
        bend = rng.uniform(-0.3, 0.3) * length * np.array([-np.sin(angle), np.cos(angle)])
        p1 = (p0 + p2) / 2 + bend
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2  # quadratic Bezier
        thickness = int(rng.choice([1, 1, 2, 2, 3]))
        cv2.polylines(layer, [np.round(curve * 16).astype(np.int32)], False, 255, thickness,
                      cv2.LINE_AA, 4)
    colour = np.array([0.16, 0.1, 0.07], np.float32) * rng.uniform(0.4, 1.3)
    return _mix(img, colour, layer.astype(np.float32) / 255.0 * rng.uniform(0.75, 0.95))


def _optics(
    rng: np.random.Generator, img: np.ndarray, centre: tuple[float, float], r0: float
) -> np.ndarray:
    """Uneven lighting and, on most images, the dermatoscope's round dark field edge."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ox, oy = w / 2 + rng.uniform(-0.04, 0.04) * w, h / 2 + rng.uniform(-0.04, 0.04) * h
    r = np.sqrt((xx - ox) ** 2 + (yy - oy) ** 2)
    diag = float(np.hypot(w, h))
    img = img * (1.06 - rng.uniform(0.1, 0.3) * (r / (diag / 2)) ** 2)[..., None]
    if rng.random() < 0.8:
        # Keep the lesion inside the lit field, as a dermatologist frames it.
        reach = float(np.hypot(centre[0] - ox, centre[1] - oy)) + 1.45 * r0
        field = max(rng.uniform(0.34, 0.56) * diag, reach)
        edge = rng.uniform(3.0, 10.0)
        lit = _smoothstep((field - r) / edge)
        dark = rng.uniform(0.01, 0.07)
        img = _mix(img, (dark * 1.1, dark, dark), 1.0 - lit)
    return img


def draw_lesion(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> LesionDrawing:
    """Paint one dermoscopy-like lesion of ``kind`` on an image of ``size`` (width, height).

    Parameters
    ----------
    rng
        The source of every random choice: the same state gives the same drawing.
    kind
        One of ``EDGE_STYLES`` (``nevus``, ``melanoma``, ...).
    size
        (width, height) in pixels.

    Returns
    -------
    LesionDrawing
        The uint8 RGB image and the presence map the annotators work from.
    """
    w, h = size
    malignant = kind in MALIGNANT_KINDS
    truth, centre, r0 = _lesion_shape(rng, h, w, malignant)
    sd = signed_distance(truth)
    presence = _presence(rng, sd, kind, r0)
    img = _pigment(rng, _skin(rng, h, w), presence, sd, kind, r0)
    img = _hairs(rng, img)
    img = _optics(rng, img, centre, r0)
    img = cv2.GaussianBlur(img, (0, 0), 0.7)  # the optics' softness; also hides aliasing
    img += rng.standard_normal(img.shape, dtype=np.float32) * 0.01
    image = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return LesionDrawing(image, presence.astype(np.float32), centre, r0)
