"""Pairwise metrics: ours vs MedPy (as IMA++ calls it) vs DeepMind's surface-distance.

Run ``python benchmarks/bench_metrics.py [--out table.csv]``. For each image size one
synthetic lesion pair (benchmarks/_masks.py: smooth blob covering 20-40 % of the image, two
annotators with slightly different borders) is scored by

- ours, from raw masks: ``pair_metrics(a, b)`` (both mask surfaces extracted in the call);
- ours, surfaces precomputed: ``pair_metrics(a, b, surface_a=..., surface_b=...)``, the
  per-lesion case where each mask's surface is extracted once and reused for every pair;
- MedPy as IMA++ calls it: ``dc, jc, hd, hd95, assd`` separately (each distance metric
  runs its own two full-image distance transforms);
- surface-distance: ``compute_surface_distances`` once, then HD, HD95, ASD and Dice.

Our values are asserted equal to MedPy's (Dice/Jaccard to 1e-9, distances to 1e-6 relative).
Times are medians. The contenders run round robin (ours ``--inner`` times, then MedPy, then
surface-distance, ``--rounds`` times) so that load from other processes hits all alike;
MedPy is repeated only while it stays within a time budget (at 6000x4000 one call takes
tens of seconds, so it runs once there).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import surface_distance as sd
from medpy.metric import binary as medpy_binary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _masks import lesion_pair  # noqa: E402

from iaa_desktop.core.agreement.metrics import mask_surface, pair_metrics  # noqa: E402

SIZES = ((767, 1022), (2000, 3008), (4000, 6000))  # (H, W): ISIC-small, ~6 MP, 24 MP


def _run(fn: Callable[[], object], times: list[float], n: int = 1) -> object:
    result = None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result


def _ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def _medpy(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {"dice": medpy_binary.dc(a, b), "jaccard": medpy_binary.jc(a, b),
            "hd": medpy_binary.hd(a, b), "hd95": medpy_binary.hd95(a, b),
            "assd": medpy_binary.assd(a, b)}


def _surface_distance(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    dists = sd.compute_surface_distances(a, b, (1.0, 1.0))
    dice = sd.compute_dice_coefficient(a, b)
    return {"dice": dice, "jaccard": dice / (2.0 - dice),
            "hd": sd.compute_robust_hausdorff(dists, 100),
            "hd95": sd.compute_robust_hausdorff(dists, 95),
            "assd": float(np.mean(sd.compute_average_surface_distance(dists)))}


def _check_equal(ours, medpy: dict[str, float]) -> None:
    for name, want in medpy.items():
        got = getattr(ours, name)
        tol = 1e-9 if name in ("dice", "jaccard") else 1e-6 * abs(want)
        if abs(got - want) > tol:
            raise AssertionError(f"{name}: ours {got!r} != MedPy {want!r}")


def bench_size(height: int, width: int, *, rounds: int, inner: int, medpy_repeats: int,
               medpy_budget_s: float, seed: int) -> dict[str, object]:
    mask_a, mask_b = lesion_pair(height, width, seed=seed)
    a, b = mask_a > 0, mask_b > 0  # bool masks for everyone (surface-distance requires bool)
    surf_a, surf_b = mask_surface(a), mask_surface(b)

    # Round robin, so that load from other processes hits every contender alike.
    t_pre: list[float] = []
    t_raw: list[float] = []
    t_surf: list[float] = []
    t_medpy: list[float] = []
    t_sd: list[float] = []
    for _ in range(rounds):
        ours = _run(lambda: pair_metrics(a, b, surface_a=surf_a, surface_b=surf_b), t_pre, inner)
        ours_raw = _run(lambda: pair_metrics(a, b), t_raw, inner)
        _run(lambda: mask_surface(a), t_surf, inner)
        if len(t_medpy) < medpy_repeats and sum(t_medpy) < medpy_budget_s:
            medpy = _run(lambda: _medpy(a, b), t_medpy)
        sd_values = _run(lambda: _surface_distance(a, b), t_sd)
    pre_ms, raw_ms, surf_ms, medpy_ms, sd_ms = map(_ms, (t_pre, t_raw, t_surf, t_medpy, t_sd))
    medpy_runs = len(t_medpy)
    assert ours == ours_raw
    _check_equal(ours, medpy)  # type: ignore[arg-type]
    return {
        "size": f"{width}x{height}",
        "coverage_a": round(float(a.mean()), 3),
        "dice": round(ours.dice, 4),
        "border_px": len(surf_a.border) + len(surf_b.border),
        "mask_surface_ms": round(surf_ms, 3),
        "ours_precomputed_ms": round(pre_ms, 3),
        "ours_raw_ms": round(raw_ms, 3),
        "medpy_ms": round(medpy_ms, 1),
        "medpy_runs": medpy_runs,
        "surface_distance_ms": round(sd_ms, 2),
        "x_medpy_raw": round(medpy_ms / raw_ms, 1),
        "x_medpy_precomputed": round(medpy_ms / pre_ms, 1),
        "x_sd_raw": round(sd_ms / raw_ms, 1),
        "x_sd_precomputed": round(sd_ms / pre_ms, 1),
        "hd95_medpy_vs_sd": f"{medpy['hd95']:.3f} / {sd_values['hd95']:.3f}",  # type: ignore[index]
    }


def _print_table(rows: list[dict[str, object]]) -> None:
    header = ["size", "border_px", "ours_precomputed_ms", "ours_raw_ms", "medpy_ms",
              "surface_distance_ms", "x_medpy_raw", "x_medpy_precomputed", "x_sd_raw",
              "x_sd_precomputed"]
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in header]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[h]).rjust(w) for h, w in zip(header, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table as CSV here")
    parser.add_argument("--rounds", type=int, default=5,
                        help="round-robin rounds; surface-distance runs once a round")
    parser.add_argument("--inner", type=int, default=5, help="runs of ours per round")
    parser.add_argument("--medpy-repeats", type=int, default=3, help="at most, per size")
    parser.add_argument("--medpy-budget", type=float, default=12.0,
                        help="no new MedPy run at a size once MedPy has taken this many s")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for h, w in SIZES),
                        help="comma-separated WxH list")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    rows = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        row = bench_size(height, width, rounds=args.rounds, inner=args.inner,
                         medpy_repeats=args.medpy_repeats, medpy_budget_s=args.medpy_budget,
                         seed=args.seed)
        print(f"{row['size']}: coverage {row['coverage_a']}, dice {row['dice']}, "
              f"mask_surface {row['mask_surface_ms']} ms/mask, MedPy runs {row['medpy_runs']}, "
              f"hd95 MedPy/surface-distance {row['hd95_medpy_vs_sd']}; values equal MedPy",
              flush=True)
        rows.append(row)
    print()
    _print_table(rows)
    if args.out:
        with args.out.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
