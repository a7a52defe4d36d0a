"""Cost of MetricsReloaded's metrics on top of MedPy's, per pair, measured in the same run.

Run ``python benchmarks/bench_boundary_metrics.py [--sizes 767x1022,2000x3008] [--rounds 15]``.

For each image size one synthetic lesion pair (benchmarks/_masks.py) is scored by

- baseline, today's set: both mask surfaces, then MedPy's Dice, Jaccard, HD, HD95, ASSD
  (``mask_surface`` x2 + ``pair_metrics``), what the engine did per pair before issue 15;
- full set: the same plus MetricsReloaded's columns at the engine's default tolerances
  (both masks' bands, one shared ``pair_geometry``, ``pair_metrics`` + ``boundary_metrics``:
  Dice, IoU, HD, HD95 max-directed, ASSD, MASD, NSD at 1/2/5 px, Boundary IoU at 1/2 px);
- per lesion, the engine's own loop (``lesion._pair_rows``) over 4 masks (6 pairs), where each
  mask's surface and bands are built once and reused by its pairs: ``boundary=None`` (today's
  set) against the default ``BoundarySpec``;
- for scale, the per-lesion chance-corrected agreement (Fleiss' kappa + Krippendorff's alpha
  of the two masks, ROI included), computed once per lesion, not per pair.

The two per-pair variants alternate within each round (baseline, full, chance, repeated
``--rounds`` times) so load from other processes hits them alike; medians are reported with
the ratio full / baseline. The issue's budget is 1.5x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _masks import lesion_pair  # noqa: E402

from iaa_desktop.core.agreement.boundary import DEFAULT_SPEC, boundary_metrics, mask_bands  # noqa: E402
from iaa_desktop.core.agreement.chance import chance_agreement  # noqa: E402
from iaa_desktop.core.agreement.lesion import MaskInfo, _pair_rows  # noqa: E402
from iaa_desktop.core.agreement.metrics import mask_surface, pair_geometry, pair_metrics  # noqa: E402


def baseline(a, b):
    sa, sb = mask_surface(a), mask_surface(b)
    return pair_metrics(a, b, surface_a=sa, surface_b=sb)


def full(a, b):
    sa, sb = mask_surface(a), mask_surface(b)
    geometry = pair_geometry(a, b, sa, sb)
    medpy = pair_metrics(a, b, surface_a=sa, surface_b=sb, geometry=geometry)
    mr = boundary_metrics(sa, sb, geometry, mask_bands(a, sa, DEFAULT_SPEC.biou_ds),
                          mask_bands(b, sb, DEFAULT_SPEC.biou_ds), DEFAULT_SPEC)
    return medpy, mr


def _time(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="767x1022,2000x3008", help="HxW list (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    print(f"{'size':>11} {'border px':>10} | per pair: {'today ms':>9} {'full ms':>8} {'ratio':>6} "
          f"| per lesion (4 masks): {'today ms':>9} {'full ms':>8} {'ratio':>6} | {'kappa+alpha ms':>15}")
    for text in args.sizes.split(","):
        h, w = (int(v) for v in text.lower().split("x"))
        a, b = lesion_pair(h, w, seed=1)
        c, d = lesion_pair(h, w, seed=2)
        lesion = [(MaskInfo(f"m{i}", f"A{i}", "T", "S"), m) for i, m in enumerate((a, b, c, d))]
        # Same MedPy numbers with and without the extra convention.
        assert full(a, b)[0] == baseline(a, b)
        assert [r[:17] for r in _pair_rows("x", lesion, "imapp", DEFAULT_SPEC)] == \
            _pair_rows("x", lesion, "imapp", None)
        jobs = {
            "pair_today": (baseline, a, b),
            "pair_full": (full, a, b),
            "lesion_today": (_pair_rows, "x", lesion, "imapp", None),
            "lesion_full": (_pair_rows, "x", lesion, "imapp", DEFAULT_SPEC),
            "chance": (chance_agreement, [a, b, c, d]),
        }
        times = {k: [] for k in jobs}
        for fn, *fn_args in jobs.values():  # warm-up
            fn(*fn_args)
        for _ in range(args.rounds):
            for key, (fn, *fn_args) in jobs.items():
                times[key].append(_time(fn, *fn_args))
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        border = mask_surface(a).border.shape[0] + mask_surface(b).border.shape[0]
        print(f"{text:>11} {border:>10,} | {'':>9} {med['pair_today']:>9.2f} {med['pair_full']:>8.2f} "
              f"{med['pair_full'] / med['pair_today']:>6.2f} | {'':>21} {med['lesion_today']:>9.2f} "
              f"{med['lesion_full']:>8.2f} {med['lesion_full'] / med['lesion_today']:>6.2f} | "
              f"{med['chance']:>15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
