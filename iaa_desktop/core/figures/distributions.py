"""IAA by malignancy: histogram with box plot, and empirical CDFs.

IAA is the mean pairwise Dice of an image's human annotators: unitless, in [0, 1]. The
functions take plain arrays and a ready-made annotation string (the test result), so they
do not depend on how the statistics were computed.
"""

from __future__ import annotations

import re

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from iaa_desktop.core.figures.style import (
    DOUBLE_COLUMN_IN,
    GROUP_STYLES,
    SINGLE_COLUMN_IN,
    GroupStyle,
    finite,
    house_style,
    new_figure,
)

__all__ = ["IAA_AXIS_LABEL", "iaa_distribution_figure", "iaa_ecdf_figure", "wrap_annotation"]

IAA_AXIS_LABEL = "IAA (mean pairwise Dice, unitless)"


def _group_label(name: str, n: int) -> str:
    return f"{name} (n = {n:,})"


def _common_bins(groups: list[np.ndarray], n_bins: int, up_to_one: bool = True) -> np.ndarray:
    """Bin edges shared by every group, from a round lower limit up to Dice's maximum of 1.

    ``up_to_one=False`` (a metric other than Dice: a distance, kappa) ends the bins at the
    data's own rounded maximum instead.
    """
    pooled = np.concatenate(groups) if groups else np.empty(0)
    if pooled.size == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    if not up_to_one:
        step = 10.0 ** np.floor(np.log10(max(float(np.ptp(pooled)), 1e-12))) / 2.0
        low = float(np.floor(pooled.min() / step) * step)
        high = float(np.ceil(pooled.max() / step) * step)
        return np.linspace(low, max(high, low + step), n_bins + 1)
    low = np.floor(min(pooled.min(), 1.0) * 20.0) / 20.0
    high = max(1.0, float(np.ceil(pooled.max() * 20.0) / 20.0))
    if high - low < 0.05:
        low = high - 0.05
    return np.linspace(low, high, n_bins + 1)


def wrap_annotation(annotation: str, max_chars: int) -> str:
    """Break a test summary at its commas and semicolons into lines of at most ``max_chars``.

    ``"Mann-Whitney U p = 1.7e-07, Cohen's d = -0.23, AUC = 0.42"`` at 40 characters gives
    two lines; a single part longer than ``max_chars`` stays whole on its own line.
    """
    parts = re.split(r"(?<=[,;])\s+", annotation.strip())
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 1 + len(part) <= max_chars:
            lines[-1] = f"{lines[-1]} {part}"
        else:
            lines.append(part)
    return "\n".join(lines)


def _annotate(ax: Axes, annotation: str, max_chars: int) -> None:
    """The test result in the upper left corner, on a white box so that bars never hide it."""
    if annotation:
        text = ax.text(
            0.02,
            0.98,
            wrap_annotation(annotation, max_chars),
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=7.5,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.7", "linewidth": 0.6},
            zorder=5,
        )
        # Kept out of the layout: wrapped to fit the axes, it must not shrink them.
        text.set_in_layout(False)


def _panel_letter(ax: Axes, letter: str) -> None:
    ax.set_title(letter, loc="left", fontweight="bold", fontsize=10)


def _draw_box(ax: Axes, position: float, values: np.ndarray, style: GroupStyle, width: float = 0.55) -> None:
    """A Tukey box plot (box: quartiles, line: median, whiskers: 1.5 IQR, dots: beyond).

    Drawn by hand because ``Axes.boxplot`` reads every rcParam, which resolves the backend
    and so imports ``matplotlib.pyplot``, which the core must never do.
    """
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    low = values[values >= q1 - 1.5 * iqr].min()
    high = values[values <= q3 + 1.5 * iqr].max()
    left = position - width / 2
    ax.add_patch(Rectangle((left, q1), width, q3 - q1, facecolor=(style.colour, 0.3), edgecolor=style.colour,
                           hatch=style.hatch, linewidth=1.0, zorder=2))
    ax.plot([left, left + width], [median, median], color="black", linewidth=1.6, zorder=3,
            solid_capstyle="butt")
    for end, edge in ((low, q1), (high, q3)):
        ax.plot([position, position], [end, edge], color=style.colour, linewidth=1.0, zorder=2)
        ax.plot([position - width / 4, position + width / 4], [end, end], color=style.colour, linewidth=1.0,
                zorder=2)
    outliers = values[(values < low) | (values > high)]
    if outliers.size:
        ax.plot(np.full(outliers.size, position), outliers, linestyle="none", marker=style.marker,
                markersize=2.0, markerfacecolor=style.colour, markeredgewidth=0, alpha=0.5, zorder=2)
    ax.update_datalim([(left, values.min()), (left + width, values.max())])
    ax.autoscale_view()


def iaa_distribution_figure(iaa_benign: object, iaa_malignant: object, *, annotation: str = "",
                            value_label: str = IAA_AXIS_LABEL) -> Figure:
    """Histogram (density, shared bins) and box plot of IAA, benign vs malignant.

    Parameters
    ----------
    iaa_benign, iaa_malignant : array_like
        Per-image IAA of each group; nan and inf are dropped. Either may be empty.
    annotation : str
        The test result to print on the figure, e.g.
        ``"Mann-Whitney U p = 1.7e-07, Cohen's d = 0.21"``.
    value_label : str
        The axis label of the values: another per-image agreement metric (e.g.
        ``"NSD, τ = 2 px (unitless, MetricsReloaded)"``) is drawn the same way.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, 7 in x 2.8 in: (a) histograms, (b) box plots with the n of each group.
    """
    groups = [finite(iaa_benign), finite(iaa_malignant)]
    with house_style():
        fig = new_figure(DOUBLE_COLUMN_IN, 2.8)
        hist_ax, box_ax = fig.subplots(1, 2, width_ratios=[2.2, 1.0])
        bins = _common_bins(groups, 30, up_to_one=value_label == IAA_AXIS_LABEL)
        for values, style in zip(groups, GROUP_STYLES, strict=True):
            label = _group_label(style.label, values.size)
            if values.size == 0:
                # Keep the group in the legend so that a missing group is visible.
                hist_ax.plot([], [], color=style.colour, label=label)
                continue
            hist_ax.hist(
                values,
                bins=bins,
                density=True,
                histtype="stepfilled",
                facecolor=(style.colour, 0.25),
                edgecolor=style.colour,
                hatch=style.hatch,
                linewidth=1.2,
                label=label,
            )
        hist_ax.set_xlim(bins[0], bins[-1])
        hist_ax.set_xlabel(value_label)
        hist_ax.set_ylabel("Density (per unit IAA)" if value_label == IAA_AXIS_LABEL else "Density")
        # Above the axes, right of the panel letter: no bar can run under it, whatever the data.
        hist_ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False,
                       borderaxespad=0.2, handlelength=1.6, columnspacing=1.0)
        _annotate(hist_ax, annotation, max_chars=70)
        n_lines = wrap_annotation(annotation, 70).count("\n") + 1 if annotation else 0
        # Headroom for the annotation, so that it does not sit on the bars.
        hist_ax.set_ylim(0, hist_ax.get_ylim()[1] * (1.05 + 0.12 * n_lines))
        _panel_letter(hist_ax, "a")

        present = [(values, style) for values, style in zip(groups, GROUP_STYLES, strict=True) if values.size]
        for position, (values, style) in enumerate(present, start=1):
            _draw_box(box_ax, position, values, style)
        box_ax.set_xticks(
            np.arange(1, len(present) + 1),
            [f"{style.label}\nn = {values.size:,}" for values, style in present],
        )
        box_ax.set_xlim(0.4, max(len(present), 1) + 0.6)
        box_ax.set_ylabel(value_label)
        box_ax.set_ylim(*hist_ax.get_xlim())
        box_ax.set_xlabel("Malignancy")
        _panel_letter(box_ax, "b")
    return fig


def _ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step coordinates of the empirical CDF, starting at 0 and ending at 1."""
    x = np.sort(values)
    y = np.arange(1, x.size + 1) / x.size
    return np.concatenate([[x[0]], x]), np.concatenate([[0.0], y])


def iaa_ecdf_figure(iaa_benign: object, iaa_malignant: object, *, annotation: str = "") -> Figure:
    """Empirical cumulative distribution functions of IAA, benign vs malignant.

    Parameters
    ----------
    iaa_benign, iaa_malignant : array_like
        Per-image IAA of each group; nan and inf are dropped. Either may be empty.
    annotation : str
        The test result to print on the figure (e.g. the Kolmogorov-Smirnov D and p).

    Returns
    -------
    matplotlib.figure.Figure
        One panel, 3.5 in x 2.8 in; groups differ in colour and line style.
    """
    groups = [finite(iaa_benign), finite(iaa_malignant)]
    with house_style():
        fig = new_figure(SINGLE_COLUMN_IN, 2.8)
        ax = fig.subplots()
        for values, style in zip(groups, GROUP_STYLES, strict=True):
            label = _group_label(style.label, values.size)
            if values.size == 0:
                ax.plot([], [], color=style.colour, linestyle=style.linestyle, label=label)
                continue
            x, y = _ecdf(values)
            ax.step(x, y, where="post", color=style.colour, linestyle=style.linestyle, linewidth=1.4,
                    label=label)
        bins = _common_bins(groups, 1)
        ax.set_xlim(bins[0], bins[-1])
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel(IAA_AXIS_LABEL)
        ax.set_ylabel("Cumulative fraction of lesions")
        ax.grid(True, linewidth=0.4, color="0.88")
        ax.set_axisbelow(True)
        # ECDFs run from lower left to upper right and leave the upper left corner free for
        # the text; the legend goes above the axes, where no curve can run under it.
        _annotate(ax, annotation, max_chars=38)
        fig.legend(loc="outside upper center", ncols=2, handlelength=2.4, columnspacing=1.2)
    return fig
