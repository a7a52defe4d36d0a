"""MetricsReloaded's pairwise metrics, exact, from the per-mask surfaces MedPy's metrics use.

The definitions are those of ``BinaryPairwiseMeasures`` in Project-MONAI/MetricsReloaded
(``MetricsReloaded/metrics/pairwise_measures.py``), pixel spacing 1, 4-connected borders
(mask minus its erosion by SciPy's cross; the image frame counts as background, as MedPy):

- ``hd``: max border-to-border distance (equal to MedPy's);
- ``hd95``: the **larger of the two directed 95th percentiles** (MedPy pools both
  directions before taking the percentile, so the two HD95s differ);
- ``assd``: mean of the pooled distances of both directions (as MedPy 0.5);
- ``masd``: mean of the two directed means (weighs both borders equally);
- ``nsd`` at tolerance tau (px): border pixels within distance <= tau of the other border,
  both directions, over all border pixels (Nikolov et al. 2021);
- ``boundary_iou`` at width d (px): IoU of the two bands of foreground pixels strictly
  closer than d to their own mask's border (Cheng et al. 2021). d = 1 is the border itself.

Empty masks, as MetricsReloaded: both empty gives dice, NSD and Boundary IoU 1, distances
0 and IoU NaN (0/0); one empty gives dice, IoU, NSD and Boundary IoU 0 and distances NaN.

Nothing here runs a distance transform: NSD, HD95 and MASD read the directed border
distances of :func:`~iaa_desktop.core.agreement.metrics.pair_geometry` (shared with MedPy's
metrics), and a band is the border pixels shifted by every offset shorter than d, kept where
the mask is foreground (:func:`mask_bands`, once per mask): its cost follows the border
length times d squared, not the image size.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from iaa_desktop.core.agreement.metrics import MaskSurface, PairGeometry

#: Default tolerances (px) of NSD and widths (px) of Boundary IoU.
DEFAULT_NSD_TAUS: tuple[float, ...] = (1.0, 2.0, 5.0)
DEFAULT_BIOU_DS: tuple[float, ...] = (1.0, 2.0)

#: Column prefix of the MetricsReloaded convention in the pairwise table.
PREFIX = "mr_"


def px_label(value: float) -> str:
    """``2.0`` -> ``"2px"``, ``1.5`` -> ``"1.5px"``: the tolerance part of a column name."""
    return f"{value:g}px"


@dataclass(frozen=True)
class BoundarySpec:
    """Which tolerances to compute: NSD at each ``nsd_taus``, Boundary IoU at each ``biou_ds``."""

    nsd_taus: tuple[float, ...] = DEFAULT_NSD_TAUS
    biou_ds: tuple[float, ...] = DEFAULT_BIOU_DS

    def __post_init__(self) -> None:
        for name, values in (("NSD tolerance", self.nsd_taus), ("Boundary IoU width", self.biou_ds)):
            for value in values:
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"{name} must be a finite number of pixels >= 0, got {value!r}")
        if any(d <= 0 for d in self.biou_ds):
            raise ValueError(f"Boundary IoU width must be > 0 px (a band closer than 0 px is "
                             f"empty), got {self.biou_ds!r}")

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, in the order :func:`boundary_metrics` returns the values."""
        return (*(PREFIX + name for name in ("dice", "iou", "hd", "hd95", "assd", "masd")),
                *(f"{PREFIX}nsd_{px_label(t)}" for t in self.nsd_taus),
                *(f"{PREFIX}boundary_iou_{px_label(d)}" for d in self.biou_ds))

    def key(self) -> str:
        """A short text that changes with the spec (part of the cache key)."""
        return "nsd=" + ",".join(map(repr, self.nsd_taus)) + ";biou=" + ",".join(map(repr, self.biou_ds))


#: The engine's default spec (NSD at 1, 2, 5 px; Boundary IoU at 1, 2 px).
DEFAULT_SPEC = BoundarySpec()


def spec_including(columns, base: BoundarySpec = DEFAULT_SPEC) -> BoundarySpec:
    """``base`` plus the tolerances that MetricsReloaded column names such as ``mr_nsd_3px`` need."""
    taus, widths = list(base.nsd_taus), list(base.biou_ds)
    for column in columns:
        for prefix, values in ((f"{PREFIX}nsd_", taus), (f"{PREFIX}boundary_iou_", widths)):
            if column.startswith(prefix) and column.endswith("px"):
                try:
                    value = float(column[len(prefix):-2])
                except ValueError:
                    continue
                if value not in values:
                    values.append(value)
    return BoundarySpec(tuple(taus), tuple(widths))


@functools.lru_cache(maxsize=32)
def _disk_offsets(d: float) -> np.ndarray:
    """(K, 2) int offsets (dr, dc) with dr^2 + dc^2 < d^2: the pixels strictly closer than d."""
    r = max(0, math.ceil(d) - 1)
    dr, dc = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dr * dr + dc * dc < d * d
    offsets = np.column_stack((dr[keep], dc[keep])).astype(np.int64)
    offsets.setflags(write=False)  # shared by every call
    return offsets


def mask_bands(mask: np.ndarray, surface: MaskSurface, widths: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Per width d, the sorted linear indices of the pixels of ``mask`` closer than d to its border.

    A foreground pixel is closer than d to the border exactly when some border pixel lies at
    an offset shorter than d from it, so the band is the border shifted by every such offset,
    clipped to the image and kept where the mask is foreground. Returns one int64 array per
    width (empty for an empty mask). Cost: border length x offsets, no pass over the image.
    """
    height, width = surface.shape
    if surface.is_empty:
        return tuple(np.empty(0, np.int64) for _ in widths)
    points = surface.border.astype(np.int64)
    border_index = points[:, 0] * width + points[:, 1]  # sorted: the border is row-major
    r0, c0, r1, c1 = surface.bbox
    flat_mask = mask.reshape(-1)  # a view for the C-contiguous masks decoders return
    index_type = np.int32 if height * width < 2**31 else np.int64
    bands = []
    for d in widths:
        offsets = _disk_offsets(d)
        if len(offsets) == 1:  # d <= 1: the band is the border itself
            bands.append(border_index)
            continue
        rows = (points[:, 0:1] + offsets[:, 0]).ravel()
        cols = (points[:, 1:2] + offsets[:, 1]).ravel()
        # Band pixels are foreground, so inside the bounding box.
        inside = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
        index = rows[inside] * width + cols[inside]
        index = index[flat_mask[index] != 0]
        # Sort and drop repeats; int32 indices sort about 2.5x faster than np.unique's int64.
        if index_type is np.int32:
            index = index.astype(np.int32)
        index.sort()
        band = index[np.concatenate(([True], index[1:] != index[:-1]))].astype(np.int64)
        bands.append(band)
    return tuple(bands)


def _band_iou(band_a: np.ndarray, band_b: np.ndarray) -> float:
    if band_a.size == 0 and band_b.size == 0:
        return 1.0
    # Both sorted and unique: the common count is a searchsorted membership test.
    pos = np.searchsorted(band_b, band_a)
    pos[pos == band_b.size] = 0
    inter = int(np.count_nonzero(band_b[pos] == band_a)) if band_b.size else 0
    return inter / float(band_a.size + band_b.size - inter)


def boundary_metrics(
    surface_a: MaskSurface,
    surface_b: MaskSurface,
    geometry: PairGeometry | None,
    bands_a: tuple[np.ndarray, ...],
    bands_b: tuple[np.ndarray, ...],
    spec: BoundarySpec,
) -> tuple[float, ...]:
    """MetricsReloaded's values of one pair, in the order of ``spec.columns``.

    Parameters
    ----------
    surface_a, surface_b
        :func:`~iaa_desktop.core.agreement.metrics.mask_surface` of each mask.
    geometry
        :func:`~iaa_desktop.core.agreement.metrics.pair_geometry` of the pair (``None``
        when a mask is empty).
    bands_a, bands_b
        :func:`mask_bands` of each mask at ``spec.biou_ds``.
    spec
        The tolerances.
    """
    nan = math.nan
    n_nsd, n_biou = len(spec.nsd_taus), len(spec.biou_ds)
    if geometry is None:
        if surface_a.is_empty and surface_b.is_empty:
            return (1.0, nan, 0.0, 0.0, 0.0, 0.0, *([1.0] * n_nsd), *([1.0] * n_biou))
        return (0.0, 0.0, nan, nan, nan, nan, *([0.0] * n_nsd), *([0.0] * n_biou))
    inter = geometry.intersection_px
    n_a, n_b = surface_a.foreground_px, surface_b.foreground_px
    d_ab, d_ba = geometry.d_ab, geometry.d_ba
    total = d_ab.size + d_ba.size
    sum_ab, sum_ba = float(d_ab.sum()), float(d_ba.sum())
    values = [
        2.0 * inter / float(n_a + n_b),
        inter / float(n_a + n_b - inter),
        float(max(d_ab.max(), d_ba.max())),
        float(max(np.percentile(d_ab, 95), np.percentile(d_ba, 95))),
        (sum_ab + sum_ba) / total,
        0.5 * (sum_ab / d_ab.size + sum_ba / d_ba.size),
    ]
    for tau in spec.nsd_taus:
        values.append((np.count_nonzero(d_ab <= tau) + np.count_nonzero(d_ba <= tau)) / total)
    values.extend(_band_iou(a, b) for a, b in zip(bands_a, bands_b, strict=True))
    return tuple(values)
