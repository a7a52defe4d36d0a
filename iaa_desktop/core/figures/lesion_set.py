"""The three per-lesion figures of a report: overlay, pairwise Dice matrix, disagreement map."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.disagreement import vote_fraction
from iaa_desktop.core.dataset.images import load_image
from iaa_desktop.core.dataset.masks import decode_mask
from iaa_desktop.core.dataset.model import Lesion
from iaa_desktop.core.display.overlay import display_reduction, segmentation_label
from iaa_desktop.core.errors import MaskDecodeError
from iaa_desktop.core.figures.export import export_figure
from iaa_desktop.core.figures.lesion import disagreement_map_figure, lesion_overlay_figure
from iaa_desktop.core.figures.matrices import pairwise_matrix_figure

log = logging.getLogger(__name__)


def pairwise_dice_matrix(pairwise: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Symmetric Dice matrix of the masks ``names`` from their rows of a pairwise table.

    The diagonal is 1; pairs absent from the table are NaN.
    """
    index = {name: i for i, name in enumerate(names)}
    values = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(values, 1.0)
    for a, b, dice in zip(pairwise["mask1"], pairwise["mask2"], pairwise["dice_score"], strict=True):
        if a in index and b in index:
            values[index[a], index[b]] = values[index[b], index[a]] = dice
    return values


def write_lesion_figures(
    lesion: Lesion,
    pairwise: pd.DataFrame,
    out_dir: Path,
    *,
    formats: tuple[str, ...] = ("png", "svg", "pdf"),
    dpi: int = 200,
) -> list[Path]:
    """Overlay, pairwise Dice matrix and vote-fraction map of one lesion, exported.

    Parameters
    ----------
    lesion
        A lesion with an image file and at least two readable human masks.
    pairwise
        The pairwise table (IMA++ schema); only the rows of this lesion are used.
    out_dir
        Where ``<image_id>_overlay``, ``_pairwise_dice`` and ``_disagreement``
        files go (created if needed).

    Returns
    -------
    list of Path
        The files written; empty when the lesion's image or masks cannot be read.
    """
    try:
        image = load_image(lesion.image_path, reduce=display_reduction((lesion.height or 0,
                                                                         lesion.width or 0)))
    except (MaskDecodeError, TypeError) as exc:
        log.warning("no figures for %s: %s", lesion.image_id, exc)
        return []
    size = (image.shape[1], image.shape[0])
    masks, labels, names = [], [], []
    for seg in lesion.human_segmentations:
        decoded = decode_mask(seg.mask_path)
        if decoded.mask is None:
            continue
        # Nearest neighbour keeps the mask binary at the display size of the image.
        masks.append(cv2.resize(decoded.mask.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0)
        labels.append(segmentation_label(seg))
        names.append(seg.name)
    if len(masks) < 2:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{lesion.image_id} · {lesion.diagnosis or 'diagnosis unknown'}"
    rows = pairwise[pairwise["mask1"].isin(names) & pairwise["mask2"].isin(names)]
    written = []
    figures = {
        "overlay": lesion_overlay_figure(image, masks, labels, title=title),
        "pairwise_dice": pairwise_matrix_figure(pairwise_dice_matrix(rows, names), labels, title=title),
        "disagreement": disagreement_map_figure(image, vote_fraction(masks), title=title),
    }
    for name, fig in figures.items():
        written += export_figure(fig, out_dir / f"{lesion.image_id}_{name}", formats=formats, dpi=dpi)
    return written
