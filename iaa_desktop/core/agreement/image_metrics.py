"""Any metric as an image's "IAA": per-image means of a pairwise column, or a per-lesion value.

IMA++'s IAA is the mean Dice of an image's human-human pairs. The same summary applies to any
pairwise column (MedPy's or MetricsReloaded's, e.g. ``mr_nsd_2px``): mean over the human pairs,
NaN skipped. Fleiss' kappa and Krippendorff's alpha are already one value per lesion (over all
its annotators at once) and are taken from the engine's ``chance`` table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.chance import CHANCE_COLUMNS
from iaa_desktop.core.agreement.conventions import is_known_metric
from iaa_desktop.core.agreement.tables import (
    _grouped_mean_std,
    _metrics,
    _require,
    human_pairs,
)
from iaa_desktop.core.errors import IAAError

#: Per-lesion (not pairwise) metrics, taken from the chance table.
LESION_METRICS = CHANCE_COLUMNS[:2]


class ImageMetricError(IAAError):
    """The metric asked for is unknown or absent from the tables given."""


def image_metric_columns(pairwise: pd.DataFrame, chance: pd.DataFrame | None = None) -> list[str]:
    """The metrics :func:`image_metric` can summarise from these tables, pairwise ones first."""
    columns = [c for c in pairwise.columns if is_known_metric(c) and c not in LESION_METRICS]
    if chance is not None and len(chance):
        columns += [c for c in LESION_METRICS if c in chance.columns]
    return columns


def image_means(pairwise: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``img_id`` then ``<column>_mean`` and ``<column>_std`` over each image's human pairs.

    Same arithmetic as the IMA++ image-level table (compensated means, sample std), one row
    per image with a human-human pair, sorted by ``img_id``.
    """
    _require(pairwise, ("img_id", "annotator1", "annotator2", *columns))
    humans = human_pairs(pairwise)
    codes, images = pd.factorize(humans["img_id"], sort=True)
    _, mean, std = _grouped_mean_std(_metrics(humans, columns), np.asarray(codes), len(images))
    table = {"img_id": pd.Series(np.asarray(images), dtype=humans["img_id"].dtype)}
    for j, column in enumerate(columns):
        table[f"{column}_mean"] = mean[:, j]
        table[f"{column}_std"] = std[:, j]
    return pd.DataFrame(table)


def image_metric(pairwise: pd.DataFrame, metric: str, chance: pd.DataFrame | None = None) -> pd.Series:
    """One value per image (index ``img_id``): the mean of ``metric`` over its human pairs,
    or the lesion's ``fleiss_kappa`` / ``krippendorff_alpha`` from ``chance``.

    Raises
    ------
    ImageMetricError
        If ``metric`` is unknown, or the tables given do not hold it (the message says which
        table or run would).
    """
    if not is_known_metric(metric):
        raise ImageMetricError(f"unknown metric {metric!r}; choose among "
                               f"{', '.join(image_metric_columns(pairwise, chance))}")
    if metric in LESION_METRICS:
        if chance is None or metric not in chance.columns:
            raise ImageMetricError(
                f"{metric} is computed per lesion from the masks: run from a dataset, not from a "
                "published pairwise table")
        return pd.Series(chance[metric].to_numpy(dtype=np.float64),
                         index=chance["img_id"].astype(str), name=metric)
    if metric not in pairwise.columns:
        raise ImageMetricError(
            f"the pairwise table has no column {metric} (MetricsReloaded's columns come from "
            "`iaa-desktop metrics --convention metricsreloaded` or a dataset's masks)")
    table = image_means(pairwise, [metric])
    return pd.Series(table[f"{metric}_mean"].to_numpy(), index=table["img_id"].astype(str), name=metric)
