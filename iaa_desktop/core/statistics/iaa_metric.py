"""The malignancy comparison rerun with another metric as the image's IAA.

IMA++'s finding is that malignant lesions get lower IAA (mean pairwise Dice). Does it hold when
agreement is measured by the boundary (NSD, Boundary IoU), by MetricsReloaded's distances, or by
chance-corrected agreement (Fleiss' kappa, Krippendorff's alpha)? :func:`metric_malignancy`
takes the images and groups of a finished :class:`~iaa_desktop.core.statistics.analysis.AnalysisResult`
(same exclusions, same labels), replaces the IAA by the chosen metric's per-image value
(:func:`iaa_desktop.core.agreement.image_metrics.image_metric`) and runs the same two-group tests.
For a distance (lower is better) a *higher* value in malignant lesions is the same finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.conventions import metric_info
from iaa_desktop.core.agreement.image_metrics import image_metric
from iaa_desktop.core.statistics.stats import (
    SpearmanResult,
    TwoGroupComparison,
    compare_groups,
    json_safe,
    spearman,
)


@dataclass(frozen=True)
class MetricMalignancy:
    """Malignant vs benign with ``metric`` as the IAA, and how it ranks images against Dice."""

    metric: str
    label: str
    higher_is_better: bool
    n_images: int
    comparison: TwoGroupComparison
    spearman_with_dice: SpearmanResult
    #: Per-image values of each group (NaN where the metric is undefined), for the figure.
    malignant_values: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    benign_values: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    @property
    def annotation(self) -> str:
        """The malignant vs benign test in one line, for the figure."""
        c = self.comparison
        return (f"Mann-Whitney U p = {c.p_mannwhitney:.2g}, Cohen's d = {c.cohens_d:.2f}, "
                f"AUC = {c.auc:.2f}")

    @property
    def same_direction_as_dice(self) -> bool | None:
        """Whether malignant lesions agree less by this metric too (``None`` if undefined)."""
        diff = self.comparison.mean_difference
        if diff is None or not np.isfinite(diff):
            return None
        return bool(diff < 0) if self.higher_is_better else bool(diff > 0)

    def as_dict(self) -> dict:
        return json_safe({
            "metric": self.metric, "label": self.label, "higher_is_better": self.higher_is_better,
            "n_images": self.n_images, "malignant_vs_benign": self.comparison.as_dict(),
            "spearman_with_dice": self.spearman_with_dice.as_dict(),
            "malignant_agree_less": self.same_direction_as_dice,
        })


def metric_malignancy(result, metric: str, chance: pd.DataFrame | None = None, *,
                      n_boot: int = 10_000, seed: int = 0) -> MetricMalignancy:
    """Rerun the malignant vs benign comparison of ``result`` with ``metric`` as the IAA.

    Raises
    ------
    ImageMetricError
        If the metric is unknown or missing from the tables (see ``image_metric``).
    """
    values = image_metric(result.pairwise, metric, chance)
    images = result.images
    per_image = values.reindex(images["img_id"].astype(str)).to_numpy(dtype=np.float64)
    groups = images["group"].to_numpy()
    info = metric_info(metric)
    malignant, benign = per_image[groups == "malignant"], per_image[groups == "benign"]
    comparison = compare_groups(malignant, benign, labels=("malignant", "benign"), n_boot=n_boot, seed=seed)
    return MetricMalignancy(metric, info.label, info.higher_is_better,
                            int(np.isfinite(per_image).sum()), comparison,
                            spearman(images["iaa"].to_numpy(dtype=np.float64), per_image),
                            malignant, benign)
