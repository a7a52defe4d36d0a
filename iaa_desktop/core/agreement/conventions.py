"""What each agreement column means: convention, unit, tolerance, empty-mask policy.

One catalogue for every place a number is shown or written: the CLI's
``metric_conventions.json`` beside the tables, the heatmap's metric list, plot axis labels
and ``report --iaa-metric``. Columns:

- MedPy's (IMA++'s names, e.g. ``hd95_score``): ``medpy.metric.binary`` as IMA++ called it;
- MetricsReloaded's (``mr_*``; NSD and Boundary IoU name their tolerance, ``mr_nsd_2px``);
- chance-corrected per lesion (``fleiss_kappa``, ``krippendorff_alpha``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from iaa_desktop.core.agreement.chance import ROI_MARGIN_FRACTION

CONVENTIONS = ("medpy", "metricsreloaded")

@dataclass(frozen=True)
class MetricInfo:
    """How to name and read one column."""

    column: str
    name: str  # short, for a menu: "NSD 2 px"
    label: str  # for an axis: "NSD, τ = 2 px (unitless)"
    convention: str  # "medpy", "metricsreloaded" or "chance-corrected"
    unit: str  # "unitless" or "px"
    higher_is_better: bool
    definition: str
    both_empty: str
    one_empty: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


_MEDPY_OVERLAP_EMPTY = ("0 (IMA++ tables)", "0 (IMA++ tables)")
_MEDPY_DISTANCE_EMPTY = ("NaN (MedPy raises; IMA++ tables)", "NaN (MedPy raises; IMA++ tables)")
_MEDPY_NORMALIZED_EMPTY = ("1.0 (IMA++ tables)", "1.0 (IMA++ tables)")

_MEDPY = {
    "dice_score": ("Dice", "unitless", True, "2|A∩B| / (|A|+|B|)", _MEDPY_OVERLAP_EMPTY),
    "jaccard_score": ("Jaccard", "unitless", True, "|A∩B| / |A∪B|", _MEDPY_OVERLAP_EMPTY),
    "hd_score": ("HD", "px", False, "max border-to-border distance, both directions",
                 _MEDPY_DISTANCE_EMPTY),
    "hd95_score": ("HD95", "px", False,
                   "95th percentile of the POOLED border distances of both directions",
                   _MEDPY_DISTANCE_EMPTY),
    "assd_score": ("ASSD", "px", False, "mean of the pooled border distances (MedPy 0.5)",
                   _MEDPY_DISTANCE_EMPTY),
}

_MR_FIXED = {
    "mr_dice": ("Dice (MR)", "unitless", True, "2|A∩B| / (|A|+|B|)", ("1", "0")),
    "mr_iou": ("IoU (MR)", "unitless", True, "|A∩B| / |A∪B|", ("NaN (0/0)", "0")),
    "mr_hd": ("HD (MR)", "px", False, "max border-to-border distance, both directions",
              ("0", "NaN")),
    "mr_hd95": ("HD95 (MR)", "px", False,
                "MAX of the two directed 95th percentiles of the border distances", ("0", "NaN")),
    "mr_assd": ("ASSD (MR)", "px", False, "mean of the pooled border distances", ("0", "NaN")),
    "mr_masd": ("MASD (MR)", "px", False, "mean of the two directed mean border distances",
                ("0", "NaN")),
}

_TOLERANCE = re.compile(r"^mr_(nsd|boundary_iou)_(\d+(?:\.\d+)?)px$")

_CHANCE = {
    "fleiss_kappa": ("Fleiss κ", "Fleiss' kappa, pixel-wise over the lesion's annotators"),
    "krippendorff_alpha": ("Krippendorff α",
                           "Krippendorff's alpha (nominal), pixel-wise over the lesion's annotators"),
}


def metric_info(column: str) -> MetricInfo:
    """The :class:`MetricInfo` of a pairwise or per-lesion column (``KeyError`` if unknown).

    Image-level columns (``<metric>_mean`` / ``_std``) are described by their metric.
    """
    if column in _MEDPY:
        name, unit, higher, definition, (both, one) = _MEDPY[column]
        return MetricInfo(column, name, f"{name} ({unit}, MedPy)", "medpy", unit, higher,
                          definition, both, one)
    if column.endswith("_normalized") and column[: -len("_normalized")] in _MEDPY:
        base = _MEDPY[column[: -len("_normalized")]]
        both, one = _MEDPY_NORMALIZED_EMPTY
        return MetricInfo(column, f"{base[0]} / diagonal", f"{base[0]} / image diagonal (unitless, MedPy)",
                          "medpy", "unitless", False, f"({base[3]}) / hypot(H, W)", both, one)
    if column in _MR_FIXED:
        name, unit, higher, definition, (both, one) = _MR_FIXED[column]
        return MetricInfo(column, name, f"{name[:-5]} ({unit}, MetricsReloaded)", "metricsreloaded",
                          unit, higher, definition, both, one)
    match = _TOLERANCE.match(column)
    if match:
        kind, value = match.groups()
        if kind == "nsd":
            return MetricInfo(
                column, f"NSD {value} px", f"NSD, τ = {value} px (unitless, MetricsReloaded)",
                "metricsreloaded", "unitless", True,
                f"border pixels within <= {value} px of the other border, both directions, over "
                "all border pixels", "1", "0")
        return MetricInfo(
            column, f"Boundary IoU {value} px",
            f"Boundary IoU, d = {value} px (unitless, MetricsReloaded)", "metricsreloaded",
            "unitless", True,
            f"IoU of the bands of pixels closer than {value} px (strictly) to their own mask's "
            "border", "1", "0")
    if column in _CHANCE:
        name, definition = _CHANCE[column]
        return MetricInfo(
            column, name, f"{name} (unitless, chance-corrected)", "chance-corrected", "unitless",
            True, f"{definition}, in the union of the masks dilated by "
            f"{ROI_MARGIN_FRACTION:g} x the union's equivalent-disc radius",
            "NaN (no foreground vote)", "computed (the empty mask votes background)")
    for suffix in ("_mean", "_std"):
        if column.endswith(suffix):
            base = metric_info(column[: -len(suffix)])
            return MetricInfo(column, base.name, base.label, base.convention, base.unit,
                              base.higher_is_better, base.definition, base.both_empty,
                              base.one_empty)
    raise KeyError(column)


def is_known_metric(column: str) -> bool:
    try:
        metric_info(column)
    except KeyError:
        return False
    return True


def conventions_document(columns, *, convention: str, nsd_taus, biou_ds) -> dict:
    """The JSON written beside the tables: what every metric column is, and its empty policy."""
    metrics = {c: metric_info(c).as_dict() for c in columns if is_known_metric(c)}
    return {
        "convention": convention,
        "nsd_tolerances_px": list(nsd_taus),
        "boundary_iou_widths_px": list(biou_ds),
        "pixel_spacing": 1.0,
        "border": "mask minus its 4-connected erosion; the image frame counts as background",
        "chance_roi": (f"union of the lesion's human masks dilated by {ROI_MARGIN_FRACTION:g} x "
                       "sqrt(union_px / pi) pixels (at least 1)"),
        "metrics": metrics,
    }
