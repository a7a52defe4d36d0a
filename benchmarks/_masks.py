"""Realistic synthetic lesion masks for benchmarks: smooth blobs, two annotators per lesion.

A lesion is a star-shaped blob ``r(theta) = R * (1 + sum_k a_k cos(k theta + phi_k))`` with
amplitudes decaying with ``k`` (dermoscopic lesions are mostly convex with a few lobes).
A second annotator traces the same lesion with a slightly different border: a small
low-frequency re-interpretation plus fine tracing jitter, as between human annotators
(pairwise Dice around 0.9-0.95). Polygons are filled with OpenCV at full resolution, so a
6000x4000 pair takes a fraction of a second.
"""

from __future__ import annotations

import cv2
import numpy as np

_N_VERTICES = 4096


def _radial_profile(rng: np.random.Generator, theta: np.ndarray, k_max: int,
                    scale: float) -> np.ndarray:
    k = np.arange(2, k_max + 1)
    amplitude = scale * rng.uniform(0.3, 1.0, k.size) / k**1.5
    phase = rng.uniform(0.0, 2.0 * np.pi, k.size)
    return (amplitude[None, :] * np.cos(np.outer(theta, k) + phase[None, :])).sum(axis=1)


def _fill(shape: tuple[int, int], cx: float, cy: float, radius: np.ndarray,
          theta: np.ndarray) -> np.ndarray:
    # Sub-pixel vertices (shift=4 bits) keep the border smooth at any size.
    xs = cx + radius * np.cos(theta)
    ys = cy + radius * np.sin(theta)
    pts = np.round(np.stack([xs, ys], axis=1) * 16).astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_8, shift=4)
    return mask


def lesion_pair(height: int, width: int, seed: int = 0,
                coverage: tuple[float, float] = (0.2, 0.4)) -> tuple[np.ndarray, np.ndarray]:
    """Two annotators' masks (uint8, 0/255) of one synthetic lesion.

    Parameters
    ----------
    height, width : int
        Image shape.
    seed : int
        Random seed; the same seed gives the same pair.
    coverage : (float, float)
        Range of the fraction of the image the first annotator's mask covers.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Masks of shape ``(height, width)``, 0 background and 255 lesion.
    """
    rng = np.random.default_rng(seed)
    theta = np.linspace(0.0, 2.0 * np.pi, _N_VERTICES, endpoint=False)
    target_area = rng.uniform(*coverage) * height * width
    base = 1.0 + _radial_profile(rng, theta, k_max=8, scale=0.25)
    # Scale so the polygon's area (mean of r^2 / 2 over the circle) hits the target.
    r0 = np.sqrt(2.0 * target_area / (np.mean(base**2) * 2.0 * np.pi))
    cx = width / 2 + rng.uniform(-0.05, 0.05) * width
    cy = height / 2 + rng.uniform(-0.05, 0.05) * height
    first = r0 * base
    # Annotator 2: draws a little outside, re-interprets the border at low frequency
    # (a few percent of the radius) and traces with pixel-scale jitter.
    outset = rng.uniform(0.0, 0.06)
    second = r0 * (base * (1.0 + outset) + _radial_profile(rng, theta, k_max=6, scale=0.3))
    jitter = max(1.0, r0 / 400.0)
    second = second + np.convolve(rng.normal(0.0, jitter, theta.size), np.ones(9) / 3.0, "same")
    first = first + rng.normal(0.0, 0.3 * jitter, theta.size)
    return _fill((height, width), cx, cy, first, theta), _fill((height, width), cx, cy, second, theta)
