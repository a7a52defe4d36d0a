"""Saving figures for journals (PNG, SVG, PDF) and drawing the report's set of figures.

Exports are deterministic: SVG and PDF carry no creation date and SVG ids are salted
with a fixed string, so the same data gives byte-identical files (handy for diffs and
for checking a report into version control). SVG keeps text as text (editable in
Inkscape or Illustrator) and PDF embeds TrueType (Type 42) fonts, as most journals ask.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from iaa_desktop.core.figures.distributions import iaa_distribution_figure, iaa_ecdf_figure
from iaa_desktop.core.figures.matrices import factor_heatmap_figure
from iaa_desktop.core.figures.style import STYLE_RC

__all__ = ["EXPORT_FORMATS", "export_figure", "write_report_figures"]

_log = logging.getLogger(__name__)

#: Formats ``export_figure`` writes, with the metadata that removes their timestamps.
EXPORT_FORMATS: dict[str, dict[str, object]] = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None},
}

_EXPORT_RC: dict[str, object] = {
    **STYLE_RC,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "svg.hashsalt": "iaa_desktop",
}


def export_figure(
    fig: Figure,
    path_stem: str | Path,
    formats: Sequence[str] = ("png", "svg", "pdf"),
    dpi: int = 300,
) -> list[Path]:
    """Save ``fig`` once per format, next to each other, as ``<path_stem>.<format>``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (its size in inches is kept: a PNG is width x dpi by height x dpi pixels).
    path_stem : str or pathlib.Path
        File path without extension; the parent folder is created if needed. Dots in the
        stem are kept (``"fig.v2"`` gives ``"fig.v2.png"``).
    formats : sequence of {"png", "svg", "pdf"}
        Which files to write.
    dpi : int
        Resolution of the PNG (and of images embedded in the SVG and PDF).

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of ``formats``.

    Raises
    ------
    ValueError
        For an unknown format.
    """
    unknown = [fmt for fmt in formats if fmt.lower() not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown figure format(s) {unknown}; choose from {sorted(EXPORT_FORMATS)}")
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(_EXPORT_RC):
        engine = _freeze_layout(fig)
        try:
            for fmt in formats:
                fmt = fmt.lower()
                path = stem.with_name(f"{stem.name}.{fmt}")
                # No bbox_inches="tight": the constrained layout already fits the labels, and
                # the file keeps the exact journal width asked for.
                fig.savefig(path, format=fmt, dpi=dpi, metadata=EXPORT_FORMATS[fmt], facecolor="white")
                written.append(path)
        finally:
            if engine is not None:
                fig.set_layout_engine(engine)
    return written


def _freeze_layout(fig: Figure, draws: int = 4) -> object | None:
    """Let the layout settle, then fix it; returns the engine to restore afterwards.

    Constrained layout moves axes a little on each draw when equal-aspect axes share the
    figure with a colour bar (it converges within a few draws). Settling it first and
    switching the engine off while saving gives every format the same layout and makes
    saving the same figure twice give identical files.
    """
    engine = fig.get_layout_engine()
    if engine is None:
        return None
    for _ in range(draws):
        fig.draw_without_rendering()
    fig.set_layout_engine("none")
    return engine


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "figure"


def _factor_entry(name: str, entry: object) -> tuple[object, object, str, str] | None:
    """``(matrix, counts, value_label, title)`` from a tuple of 2 to 4, else None."""
    if not isinstance(entry, tuple | list) or len(entry) not in (2, 3, 4):
        return None
    matrix, counts = entry[0], entry[1]
    label = str(entry[2]) if len(entry) >= 3 else "Mean Dice (unitless)"
    default_title = str(name).replace("_", " ")
    title = str(entry[3]) if len(entry) == 4 else default_title[:1].upper() + default_title[1:]
    return matrix, counts, label, title


def _auto_fmt(matrix: object) -> str:
    """Enough decimals for the values' magnitude: 0.034 needs three, 0.81 two, 12.3 one."""
    values = np.asarray(matrix, dtype=np.float64)
    values = np.abs(values[np.isfinite(values)])
    if values.size == 0:
        return ".2f"
    largest = float(values.max())
    if largest >= 100:
        return ".0f"
    if largest >= 10:
        return ".1f"
    return ".3f" if largest < 0.3 else ".2f"


def write_report_figures(
    result: object,
    out_dir: str | Path,
    formats: Sequence[str] = ("png", "svg", "pdf"),
    dpi: int = 200,
) -> dict[str, list[Path]]:
    """Draw and save every figure the data in ``result`` allows.

    ``result`` is duck-typed so that this module does not depend on the statistics code.
    Every attribute is optional; a missing or ``None`` attribute skips its figures:

    - ``iaa_benign``, ``iaa_malignant``: array-likes of per-image IAA (mean pairwise
      Dice). When at least one has a finite value, ``iaa_distribution`` (histogram and
      box plot) and ``iaa_ecdf`` are drawn.
    - ``malignancy_annotation``: str, the test result printed on those two figures
      (e.g. ``"Mann-Whitney U p = 1.7e-07, Cohen's d = 0.21"``); empty if absent.
    - ``factor_matrices``: dict ``name -> (matrix, counts, value_label[, title])`` of
      ``pandas.DataFrame`` lower-triangle matrices, their pair counts, the colour-bar
      label (a 2-tuple uses ``"Mean Dice (unitless)"``) and optionally the title (by
      default the name, ``"skill_level"`` -> ``"Skill level"``). Each gives a figure
      ``factor_<name>``; the cells get 3 decimals when every value is below 0.3 (e.g.
      HD95 / diagonal), else 2 (fewer for values of 10 and more).

    A figure whose data cannot be drawn (e.g. an empty matrix) is skipped with a logged
    warning rather than failing the whole report.

    Parameters
    ----------
    result : object
        Any object with (some of) the attributes above.
    out_dir : str or pathlib.Path
        Folder for the files (created if needed).
    formats : sequence of str
        Passed to :func:`export_figure`.
    dpi : int
        PNG resolution.

    Returns
    -------
    dict of str to list of pathlib.Path
        Figure name (the file stem) -> written files, in drawing order.
    """
    out_dir = Path(out_dir)
    written: dict[str, list[Path]] = {}

    def save(name: str, draw) -> None:
        try:
            fig = draw()
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            _log.warning("figure %s skipped: %s", name, exc)
            return
        written[name] = export_figure(fig, out_dir / name, formats=formats, dpi=dpi)

    benign = getattr(result, "iaa_benign", None)
    malignant = getattr(result, "iaa_malignant", None)
    benign = np.empty(0) if benign is None else np.asarray(benign, dtype=np.float64)
    malignant = np.empty(0) if malignant is None else np.asarray(malignant, dtype=np.float64)
    annotation = str(getattr(result, "malignancy_annotation", "") or "")
    if np.isfinite(benign).any() or np.isfinite(malignant).any():
        save("iaa_distribution", lambda: iaa_distribution_figure(benign, malignant, annotation=annotation))
        save("iaa_ecdf", lambda: iaa_ecdf_figure(benign, malignant, annotation=annotation))

    factor_matrices = getattr(result, "factor_matrices", None) or {}
    for name, entry in dict(factor_matrices).items():
        parsed = _factor_entry(name, entry)
        if parsed is None:
            _log.warning("factor matrix %s skipped: expected (matrix, counts, value_label)", name)
            continue
        matrix, counts, label, title = parsed
        if getattr(matrix, "empty", True):
            _log.warning("factor matrix %s skipped: empty", name)
            continue
        save(
            f"factor_{_safe_name(name)}",
            lambda m=matrix, c=counts, t=title, v=label: factor_heatmap_figure(
                m, c, title=t, value_label=v, fmt=_auto_fmt(m)
            ),
        )
    return written
