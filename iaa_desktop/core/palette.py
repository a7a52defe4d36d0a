"""Colours shared by the viewer, the heatmaps and the publication figures.

Infrastructure: imports no domain package, so ``display`` and ``figures`` can both use it
without depending on each other.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import Colormap

#: The Okabe-Ito palette (Okabe & Ito 2008), distinguishable with every common
#: form of colour-blindness.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Colours for annotators' contours, in the order they are handed out. Black is
#: left out (lost on dark lesions). IMA++ has at most 5 masks per image, so the
#: first five matter most: they avoid the close pairs yellow/orange and
#: orange/vermillion, and the darker blue (drawn with a dark halo) shows on skin.
ANNOTATOR_COLOURS: tuple[str, ...] = tuple(
    OKABE_ITO[name]
    for name in ("sky_blue", "yellow", "bluish_green", "reddish_purple", "blue", "orange", "vermillion")
)

#: Sequential colour map for every heatmap.
HEATMAP_CMAP = "cividis"


def annotator_colour(index: int) -> str:
    """The hex colour of the ``index``-th annotator of a lesion (cycles past 7)."""
    return ANNOTATOR_COLOURS[index % len(ANNOTATOR_COLOURS)]


def text_colour_for(cmap: Colormap, value: float) -> str:
    """Black or white, whichever reads better on ``cmap`` at normalised ``value`` (0-1)."""
    r, g, b, _ = cmap(float(np.clip(value, 0.0, 1.0)))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "black" if luminance > 0.45 else "white"
