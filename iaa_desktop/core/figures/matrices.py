"""Annotated matrices: agreement between factor levels, and one lesion's annotator pairs.

Cells hold their value as text (and, for factor matrices, the number of pairs), so a
reader in grayscale or with a colour-vision deficiency loses nothing. Missing cells (nan,
e.g. the upper triangle of a lower-triangle matrix) are left blank, not coloured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from iaa_desktop.core.figures.style import (
    DOUBLE_COLUMN_IN,
    HEATMAP_CMAP,
    SINGLE_COLUMN_IN,
    house_style,
    new_figure,
    text_colour_for,
)

__all__ = ["factor_heatmap_figure", "pairwise_matrix_figure"]


def _limits(values: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    """Colour limits: the given ones, else the range of the finite values (never empty)."""
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if vmin is None and finite.size else (0.0 if vmin is None else vmin)
    high = float(finite.max()) if vmax is None and finite.size else (1.0 if vmax is None else vmax)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return low, high


def _compact_count(n: int) -> str:
    """``308``, ``8.6k``, ``114k``, ``2.3M``: short enough to fit a heatmap cell."""
    if n < 1000:
        return str(n)
    if n < 100_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def _draw_matrix(
    fig: Figure,
    ax: Axes,
    values: np.ndarray,
    texts: list[list[str]],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    value_label: str,
    limits: tuple[float, float],
    fontsize: float,
) -> None:
    cmap = colormaps[HEATMAP_CMAP]
    norm = Normalize(*limits)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="equal",
                      interpolation="nearest")
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            if texts[r][c]:
                colour = text_colour_for(cmap, norm(values[r, c])) if np.isfinite(values[r, c]) else "black"
                ax.text(c, r, texts[r][c], ha="center", va="center", fontsize=fontsize, color=colour)
    ax.set_xticks(np.arange(len(col_labels)), [str(label) for label in col_labels])
    ax.set_yticks(np.arange(len(row_labels)), [str(label) for label in row_labels])
    if max((len(str(label)) for label in col_labels), default=0) > 4:
        for tick in ax.get_xticklabels():
            tick.set_rotation(40)
            tick.set_horizontalalignment("right")
            tick.set_rotation_mode("anchor")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    colorbar = fig.colorbar(image, ax=ax, shrink=0.85, pad=0.03)
    colorbar.set_label(value_label)
    colorbar.outline.set_linewidth(0.6)


def factor_heatmap_figure(
    matrix: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    title: str,
    value_label: str,
    fmt: str = ".2f",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """Annotated heatmap of agreement between the levels of a factor (tool, skill, annotator).

    Parameters
    ----------
    matrix : pandas.DataFrame
        Square, levels as index and columns, usually lower-triangular: nan cells (the upper
        triangle) are not drawn. Values are e.g. mean Dice of the pairs with one mask from
        the row's level and one from the column's.
    counts : pandas.DataFrame
        Number of pairs behind each cell, same labels (reindexed to ``matrix``; missing
        counts are simply not printed). Printed as ``n=308``, ``n=8.6k``, ``n=114k``.
    title : str
        Axes title, e.g. ``"Dice by annotation tool"``.
    value_label : str
        Colour-bar label with units, e.g. ``"Mean Dice (unitless)"``.
    fmt : str
        Format spec of the values printed in the cells.
    vmin, vmax : float, optional
        Colour limits; by default the range of the finite values.

    Returns
    -------
    matplotlib.figure.Figure
        3.5 in wide up to 5 levels, 7 in wide beyond.
    """
    values = matrix.to_numpy(dtype=np.float64, na_value=np.nan)
    n_rows, n_cols = values.shape
    aligned = counts.reindex(index=matrix.index, columns=matrix.columns)
    count_values = aligned.to_numpy(dtype=np.float64, na_value=np.nan)
    texts = []
    for r in range(n_rows):
        row = []
        for c in range(n_cols):
            if not np.isfinite(values[r, c]):
                row.append("")
                continue
            text = format(values[r, c], fmt)
            if np.isfinite(count_values[r, c]):
                text += f"\nn={_compact_count(int(count_values[r, c]))}"
            row.append(text)
        texts.append(row)
    n = max(n_rows, n_cols, 1)
    width = SINGLE_COLUMN_IN if n <= 5 else DOUBLE_COLUMN_IN
    fontsize = 6.5 if n <= 5 else 6.0 if n <= 10 else 5.5 if n <= 14 else 5.0
    with house_style():
        fig = new_figure(width, width * 0.9)
        ax = fig.subplots()
        _draw_matrix(
            fig,
            ax,
            values,
            texts,
            row_labels=list(matrix.index),
            col_labels=list(matrix.columns),
            value_label=value_label,
            limits=_limits(values, vmin, vmax),
            fontsize=fontsize,
        )
        ax.set_title(title)
        if matrix.index.name:
            ax.set_ylabel(str(matrix.index.name))
        if matrix.columns.name:
            ax.set_xlabel(str(matrix.columns.name))
    return fig


def pairwise_matrix_figure(
    values: np.ndarray,
    labels: Sequence[str],
    *,
    metric_label: str = "Dice",
    title: str = "",
    fmt: str = ".3f",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """One lesion's annotator-by-annotator matrix of a pairwise metric, values in the cells.

    Parameters
    ----------
    values : numpy.ndarray
        (N, N) metric of each pair of masks; nan cells are left blank.
    labels : sequence of str
        N labels, e.g. ``"A00 · T1 · S1"``.
    metric_label : str
        Name of the metric (with its unit, e.g. ``"HD95 (px)"``), used for the colour bar.
    title : str
        Axes title (e.g. the image id).
    fmt : str
        Format spec of the cell values.
    vmin, vmax : float, optional
        Colour limits; by default the range of the off-diagonal finite values, so that the
        diagonal (1 for Dice, 0 for distances) does not flatten the contrast.

    Returns
    -------
    matplotlib.figure.Figure
        3.5 in wide.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"values must be a square (N, N) array, got shape {values.shape}")
    if len(labels) != values.shape[0]:
        raise ValueError(f"{len(labels)} labels for a {values.shape[0]}x{values.shape[0]} matrix")
    n = values.shape[0]
    off_diagonal = values[~np.eye(n, dtype=bool)]
    limits = _limits(off_diagonal if np.isfinite(off_diagonal).any() else values, vmin, vmax)
    texts = [[format(v, fmt) if np.isfinite(v) else "" for v in row] for row in values]
    with house_style():
        fig = new_figure(SINGLE_COLUMN_IN, 3.2)
        ax = fig.subplots()
        _draw_matrix(
            fig,
            ax,
            values,
            texts,
            row_labels=labels,
            col_labels=labels,
            value_label=metric_label,
            limits=limits,
            fontsize=7.0 if n <= 6 else 5.5,
        )
        if title:
            ax.set_title(title)
    return fig
