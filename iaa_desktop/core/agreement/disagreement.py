"""Where annotators disagree, pixel by pixel: vote fraction and its binary entropy.

Both maps are float32: they are for display and per-lesion summaries, and at IMA++'s largest
images (about 31 MP) float64 would double the memory for no visible gain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from iaa_desktop.core.agreement.consensus import ConsensusInputError, count_votes

__all__ = ["binary_entropy", "vote_fraction"]


def vote_fraction(masks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Fraction of the annotators marking each pixel.

    Parameters
    ----------
    masks : sequence of numpy.ndarray, or numpy.ndarray
        N masks of the same shape ``(H, W)``, or one ``(N, H, W)`` stack. Non-zero is
        foreground.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)`` in [0, 1]: ``votes / N``, the float32 nearest to each fraction.

    Raises
    ------
    ConsensusInputError
        When there are no masks or their shapes differ.
    """
    masks = masks if isinstance(masks, np.ndarray) else list(masks)
    votes = count_votes(masks)
    n = len(masks)
    # At most N + 1 distinct values: dividing N + 1 numbers and gathering is cheaper than
    # converting and dividing every pixel.
    table = (np.arange(n + 1, dtype=np.float64) / n).astype(np.float32)
    return table[votes]


def binary_entropy(fraction: np.ndarray) -> np.ndarray:
    """Binary entropy of a per-pixel fraction, in bits: 0 where all agree, 1 at a 50/50 split.

    ``H(f) = -f log2 f - (1 - f) log2 (1 - f)``, taken as 0 at ``f = 0`` and ``f = 1`` (its
    limit), computed without dividing by or taking the log of zero.

    Parameters
    ----------
    fraction : numpy.ndarray
        Values in [0, 1], e.g. from :func:`vote_fraction` or a STAPLE probability map.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``fraction``, in [0, 1].

    Raises
    ------
    ConsensusInputError
        When a value lies outside [0, 1] or is nan.
    """
    f = np.asarray(fraction, dtype=np.float32)
    # The comparison is false for nan too, so nan is refused with the out-of-range values.
    if not np.all((f >= 0.0) & (f <= 1.0)):
        raise ConsensusInputError("fractions must lie in [0, 1] (and not be nan)")
    h = np.zeros(f.shape, np.float32)
    inside = (f > 0.0) & (f < 1.0)
    fi = f[inside]
    gi = np.float32(1.0) - fi
    h[inside] = -(fi * np.log2(fi) + gi * np.log2(gi))
    # Rounding can leave 1.0000001 next to 0.5; the entropy of a coin is at most one bit.
    np.minimum(h, np.float32(1.0), out=h)
    return h
