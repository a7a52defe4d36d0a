"""House style for publication figures: sizes, fonts, colours, and a Qt-free canvas.

Every figure is built with the object-oriented API (``matplotlib.figure.Figure`` on a
``FigureCanvasAgg``): ``matplotlib.pyplot`` is never imported, so no GUI backend (Qt
included) is ever chosen behind the core's back. The style lives in an rc dictionary
applied with ``matplotlib.rc_context`` while a figure is built and saved; the global
``rcParams`` are never touched.

Colours: Okabe-Ito (readable with every common colour-vision deficiency); benign is blue
``#0072B2`` and malignant vermillion ``#D55E00``, which also differ in lightness, and each
group has its own hatch and line style so the figures survive grayscale printing.
Heatmaps use ``cividis`` (perceptually uniform, colour-blind safe, monotone in lightness).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from iaa_desktop.core.palette import ANNOTATOR_COLOURS, HEATMAP_CMAP, OKABE_ITO, text_colour_for

__all__ = [
    "ANNOTATOR_LINESTYLES",
    "BENIGN",
    "DOUBLE_COLUMN_IN",
    "GROUP_STYLES",
    "HEATMAP_CMAP",
    "MALIGNANT",
    "SINGLE_COLUMN_IN",
    "STYLE_RC",
    "GroupStyle",
    "house_style",
    "new_figure",
    "text_colour_for",
]

#: Widths of a one-column and a two-column journal figure, in inches.
SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.0

BENIGN = OKABE_ITO["blue"]
MALIGNANT = OKABE_ITO["vermillion"]

#: Line styles handed to annotators together with ``overlay.ANNOTATOR_COLOURS`` so that
#: contours stay distinguishable in grayscale.
ANNOTATOR_LINESTYLES: tuple[object, ...] = (
    "-",
    (0, (5, 2)),
    (0, (1, 1.5)),
    (0, (6, 2, 1, 2)),
    (0, (3, 1, 1, 1, 1, 1)),
    (0, (8, 2, 2, 2)),
    (0, (2, 2)),
)

#: The house style, applied through ``matplotlib.rc_context``.
STYLE_RC: dict[str, object] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["Arial", "Helvetica", "Liberation Sans", "DejaVu Sans"],
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "figure.titlesize": 9,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.8,
    "ytick.major.width": 0.8,
    "lines.linewidth": 1.2,
    "hatch.linewidth": 0.6,
    "image.cmap": HEATMAP_CMAP,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    # Deterministic SVG ids, text kept as text, TrueType (Type 42) fonts in PDF.
    "svg.hashsalt": "iaa_desktop",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}


@dataclass(frozen=True)
class GroupStyle:
    """How one malignancy group is drawn: colour, hatch, line style, marker."""

    label: str
    colour: str
    hatch: str
    linestyle: object
    marker: str


#: Benign first, malignant second, everywhere.
GROUP_STYLES: tuple[GroupStyle, GroupStyle] = (
    GroupStyle("Benign", BENIGN, "", "-", "o"),
    GroupStyle("Malignant", MALIGNANT, "////", (0, (4, 1.5)), "s"),
)


@contextmanager
def house_style() -> Iterator[None]:
    """Apply ``STYLE_RC`` for the duration of the block (global rcParams are untouched)."""
    with matplotlib.rc_context(STYLE_RC):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A constrained-layout ``Figure`` with an Agg canvas attached (no pyplot, no GUI).

    Call inside :func:`house_style` so that fonts and line widths follow the house style.
    """
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    # A little more margin than the default 3 pt, so that edge labels never touch the border.
    fig.get_layout_engine().set(w_pad=0.06, h_pad=0.06)
    FigureCanvasAgg(fig)
    return fig


def annotator_style(index: int) -> tuple[str, object]:
    """Colour and line style of the ``index``-th annotator's contour."""
    colour = ANNOTATOR_COLOURS[index % len(ANNOTATOR_COLOURS)]
    linestyle = ANNOTATOR_LINESTYLES[index % len(ANNOTATOR_LINESTYLES)]
    return colour, linestyle


def finite(values: object) -> np.ndarray:
    """``values`` as a 1-D float array with nan and inf dropped."""
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]
