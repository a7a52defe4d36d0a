"""One lesion: the image with every annotator's outline, and the map of their disagreement.

Outlines come from ``overlay.mask_contours`` (vertices at pixel centres, in the image's
coordinates), so the figure shows exactly what the lesion viewer shows. Each annotator
has an Okabe-Ito colour and a line style, drawn over a thin dark halo that keeps light
colours visible on pale skin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib import patheffects as pe
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from iaa_desktop.core.display.overlay import mask_contours
from iaa_desktop.core.figures.style import (
    SINGLE_COLUMN_IN,
    annotator_style,
    house_style,
    new_figure,
)

__all__ = ["DISAGREEMENT_KINDS", "disagreement_map_figure", "lesion_overlay_figure"]

#: Colour-bar label and colour map of each kind of disagreement map.
DISAGREEMENT_KINDS: dict[str, tuple[str, str]] = {
    "vote fraction": ("Vote fraction (share of annotators)", "viridis"),
    "entropy": ("Binary entropy of the votes (bits)", "viridis"),
}


def _as_rgb(image_rgb: np.ndarray) -> np.ndarray:
    image = np.asarray(image_rgb)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    return image


def _figure_height(shape: tuple[int, int], width_in: float, extra_in: float) -> float:
    """Height that gives the image its aspect ratio at ``width_in``, plus room for labels."""
    height, width = shape
    return float(np.clip(width_in * height / max(width, 1) + extra_in, 2.0, 6.0))


def _image_axes(ax: Axes, image: np.ndarray, title: str) -> None:
    ax.imshow(image, interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)


def lesion_overlay_figure(
    image_rgb: np.ndarray,
    masks: Sequence[np.ndarray],
    labels: Sequence[str],
    *,
    title: str = "",
    width_in: float = SINGLE_COLUMN_IN,
) -> Figure:
    """The lesion image with each annotator's outline in its own colour and line style.

    Parameters
    ----------
    image_rgb : numpy.ndarray
        (H, W, 3) uint8 RGB (grayscale (H, W) is accepted too). A display-size image
        (longest side up to ~2,000 px) keeps the PDF and SVG small.
    masks : sequence of numpy.ndarray
        One (H, W) mask per annotator, non-zero is foreground, same shape as the image.
    labels : sequence of str
        One legend label per mask, e.g. ``"A00 · T1 · S1"`` (``overlay.segmentation_label``).
    title : str
        Axes title, e.g. ``"ISIC_0000000 (melanoma), IAA = 0.81"``.
    width_in : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        The image, the outlines, and a legend below the image.
    """
    image = _as_rgb(image_rgb)
    if len(masks) != len(labels):
        raise ValueError(f"{len(masks)} masks but {len(labels)} labels")
    for mask in masks:
        if np.shape(mask) != image.shape[:2]:
            raise ValueError(f"mask shape {np.shape(mask)} differs from image shape {image.shape[:2]}")
    legend_rows = int(np.ceil(len(labels) / 2))
    # Line widths scale with the figure, not the image, so outlines look alike on any image.
    with house_style():
        fig = new_figure(width_in, _figure_height(image.shape[:2], width_in, 0.3 + 0.15 * legend_rows))
        ax = fig.subplots()
        _image_axes(ax, image, title)
        handles = []
        halo = [pe.Stroke(linewidth=2.6, foreground="black", alpha=0.55), pe.Normal()]
        for i, (mask, label) in enumerate(zip(masks, labels, strict=True)):
            colour, linestyle = annotator_style(i)
            for contour in mask_contours(mask):
                ax.plot(contour[:, 0] - 0.5, contour[:, 1] - 0.5, color=colour, linestyle=linestyle,
                        linewidth=1.3, path_effects=halo)
            handles.append(Line2D([], [], color=colour, linestyle=linestyle, linewidth=1.3,
                                  path_effects=halo, label=str(label)))
        # imshow puts pixel centres at integers, contour vertices are at pixel centres + 0.5.
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
        if handles:
            fig.legend(handles=handles, loc="outside lower center", ncols=min(2, len(handles)),
                       handlelength=3.2, title="Annotator · tool · skill", title_fontsize=7.5)
    return fig


def disagreement_map_figure(
    image_rgb: np.ndarray,
    fraction: np.ndarray,
    *,
    title: str = "",
    kind: str = "vote fraction",
    alpha: float = 0.65,
    width_in: float = SINGLE_COLUMN_IN,
) -> Figure:
    """The lesion image under a heat overlay of where annotators disagree.

    Parameters
    ----------
    image_rgb : numpy.ndarray
        (H, W, 3) uint8 RGB (grayscale accepted).
    fraction : numpy.ndarray
        (H, W) map in [0, 1]: ``disagreement.vote_fraction`` or ``binary_entropy``. Pixels
        at exactly 0 are left transparent, so the skin shows through.
    title : str
        Axes title.
    kind : {"vote fraction", "entropy"}
        Chooses the colour-bar label (and unit).
    alpha : float
        Opacity of the overlay; the colour bar is drawn opaque.
    width_in : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        The image with the overlay and a labelled colour bar (0 to 1).
    """
    if kind not in DISAGREEMENT_KINDS:
        raise ValueError(f"kind must be one of {sorted(DISAGREEMENT_KINDS)}, got {kind!r}")
    image = _as_rgb(image_rgb)
    fraction = np.asarray(fraction, dtype=np.float64)
    if fraction.shape != image.shape[:2]:
        raise ValueError(f"map shape {fraction.shape} differs from image shape {image.shape[:2]}")
    label, cmap_name = DISAGREEMENT_KINDS[kind]
    cmap = colormaps[cmap_name]
    overlay = np.ma.masked_where(~np.isfinite(fraction) | (fraction <= 0.0), fraction)
    with house_style():
        fig = new_figure(width_in, _figure_height(image.shape[:2], width_in * 0.8, 0.35))
        ax = fig.subplots()
        _image_axes(ax, image, title)
        ax.imshow(overlay, cmap=cmap, vmin=0.0, vmax=1.0, alpha=alpha, interpolation="nearest")
        # A colour bar from a separate opaque mappable: the overlay's alpha would wash it out.
        colorbar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=ax, shrink=0.9, pad=0.03)
        colorbar.set_label(label)
        colorbar.outline.set_linewidth(0.6)
    return fig
