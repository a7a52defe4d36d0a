"""Publication figures, drawn headless with matplotlib's object-oriented API.

Nothing here imports ``matplotlib.pyplot`` (it could pick a Qt backend): figures are
``matplotlib.figure.Figure`` objects on an Agg canvas, styled inside an ``rc_context``.
Every function takes plain data (numpy arrays, pandas DataFrames, strings) and returns a
``Figure``; :func:`export_figure` saves it as PNG, SVG and PDF.
"""

from iaa_desktop.core.figures.distributions import iaa_distribution_figure, iaa_ecdf_figure
from iaa_desktop.core.figures.export import export_figure, write_report_figures
from iaa_desktop.core.figures.lesion import disagreement_map_figure, lesion_overlay_figure
from iaa_desktop.core.figures.matrices import factor_heatmap_figure, pairwise_matrix_figure

__all__ = [
    "disagreement_map_figure",
    "export_figure",
    "factor_heatmap_figure",
    "iaa_distribution_figure",
    "iaa_ecdf_figure",
    "lesion_overlay_figure",
    "pairwise_matrix_figure",
    "write_report_figures",
]
