"""What the lesion view says about the pixel under the cursor: who marked it, and the consensus.

Coordinates are full-resolution image pixels (x right, y down); the look-up goes to the
display-size arrays of a ``LesionDisplay`` (the pixel under the display pixel's centre,
as the masks were sampled), so the read-out always matches what is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from iaa_desktop.core.display.lesion import LesionDisplay

__all__ = ["PixelReadout", "pixel_readout", "readout_text"]


@dataclass(frozen=True)
class PixelReadout:
    """The masks and consensus values at one full-resolution pixel.

    ``annotators`` are the layer indices whose mask includes the pixel, ``labels`` their
    legend labels. ``staple``/``staple_probability`` are ``None`` until STAPLE is computed.
    """

    x: int
    y: int
    annotators: tuple[int, ...]
    labels: tuple[str, ...]
    readable: int
    vote_fraction: float | None
    entropy: float | None
    majority: bool | None
    staple: bool | None = None
    staple_probability: float | None = None


def pixel_readout(display: LesionDisplay, x: float, y: float) -> PixelReadout | None:
    """The read-out at full-resolution position ``(x, y)``; ``None`` outside the image."""
    height, width = display.shape
    if not (math.isfinite(x) and math.isfinite(y)) or not (0 <= x < width and 0 <= y < height):
        return None
    col, row = int(x), int(y)
    small_h, small_w = display.display_shape
    r = min(small_h - 1, int((row + 0.5) * small_h / height))
    c = min(small_w - 1, int((col + 0.5) * small_w / width))
    inside = tuple(i for i, m in enumerate(display.masks) if m is not None and m[r, c])
    labels = tuple(display.layers[i].label for i in inside)
    fraction = None if display.vote_fraction is None else float(display.vote_fraction[r, c])
    entropy = None if display.entropy is None else float(display.entropy[r, c])
    majority = None if display.majority is None else bool(display.majority[r, c])
    st = display.staple
    return PixelReadout(col, row, inside, labels, len(display.readable), fraction, entropy, majority,
                        None if st is None else bool(st.mask[r, c]),
                        None if st is None else float(st.probability[r, c]))


def readout_text(readout: PixelReadout | None) -> str:
    """One status line: ``"x 120, y 48 · 2/3 masks: A00, A02 · MV yes · vote 0.67 · STAPLE 0.91"``."""
    if readout is None:
        return ""
    parts = [f"x {readout.x}, y {readout.y}"]
    names = ", ".join(label.split(" · ")[0] for label in readout.labels) or "none"
    parts.append(f"{len(readout.annotators)}/{readout.readable} masks: {names}")
    if readout.majority is not None:
        parts.append(f"MV {'yes' if readout.majority else 'no'}")
    if readout.vote_fraction is not None:
        parts.append(f"vote {readout.vote_fraction:.2f}")
    if readout.entropy is not None:
        parts.append(f"entropy {readout.entropy:.2f} bit")
    if readout.staple_probability is not None:
        parts.append(f"STAPLE p {readout.staple_probability:.2f} ({'in' if readout.staple else 'out'})")
    return " · ".join(parts)
