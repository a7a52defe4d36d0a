"""Where the whole agreement table's time goes: per stage, per lesion size, decode floor beside it.

Runs on ``--limit`` IMA++ lesions spread evenly over its sorted image sizes, with masks
drawn as ``bench_dataset.py`` draws them (generated once into ``--data-dir``), and times,
lesion by lesion in this process, every stage of ``lesion.lesion_agreement`` exactly as it runs them:

- ``decode``: ``decode_mask`` of every mask (with its checks), and beside it the floor,
  a bare ``cv2.imread(IMREAD_GRAYSCALE)`` of the same files;
- ``patterns``: the lesion's vote patterns on the union's box (``consensus.vote_patterns``),
  shared by the three next stages;
- ``staple``, ``mv``: STAPLE (``staple_from_patterns``) and majority vote;
- ``surfaces``: ``mask_surface`` and ``border_index`` of every mask (bounding box, border
  pixels, their columns per row);
- ``bands``: ``mask_bands`` (Boundary IoU bands);
- ``overlap``: the overlap counts of every pair;
- ``distances``: the two directed nearest-border queries of every pair;
- ``medpy``, ``mr``: the metric values of both conventions from those;
- ``chance``: Fleiss' kappa / Krippendorff's alpha (``chance.chance_from_patterns``);

then checks that the instrumented rows equal ``lesion_agreement``'s, and times in the same
run: the engine on 1 worker and on ``--workers`` processes (process overhead = the pool's
wall time minus the in-process sum split over the workers), writing the cache (HDF5) and
the CSV tables. Per-size figures are scaled to the full 2,394 IMA++ lesions by how many
lesions of each size class IMA++ has.

    python benchmarks/profile_dataset.py [--limit 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import cv2
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_dataset import IMAPP, IMG_CSV, SEG_CSV, _lesion_masks  # noqa: E402

from iaa_desktop.core.agreement import lesion as lesion_mod  # noqa: E402
from iaa_desktop.core.agreement.boundary import DEFAULT_SPEC, boundary_metrics, mask_bands  # noqa: E402
from iaa_desktop.core.agreement.cache import AgreementCache  # noqa: E402
from iaa_desktop.core.agreement.chance import chance_from_patterns  # noqa: E402
from iaa_desktop.core.agreement.consensus import (  # noqa: E402
    majority_vote_from_patterns,
    vote_patterns,
)
from iaa_desktop.core.agreement.engine import iter_dataset_agreement  # noqa: E402
from iaa_desktop.core.agreement.metrics import (  # noqa: E402
    PairGeometry,
    _directed_distances,
    _intersection_px,
    border_index,
    mask_surface,
    pair_metrics,
)
from iaa_desktop.core.agreement.staple import staple_from_patterns  # noqa: E402
from iaa_desktop.core.agreement.table_io import write_agreement_tables, write_table  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.dataset.masks import decode_mask  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402

STAGES = ("decode", "patterns", "staple", "mv", "surfaces", "bands", "overlap", "distances", "medpy", "mr",
          "chance")
#: Size classes in megapixels (upper bounds).
SIZE_CLASSES = ((2.0, "< 2 MP"), (6.0, "2-6 MP"), (12.0, "6-12 MP"), (float("inf"), ">= 12 MP"))


def size_class(megapixels: float) -> str:
    return next(label for bound, label in SIZE_CLASSES if megapixels < bound)


def profile_lesion(lesion, times: dict[str, float]) -> list[tuple] | None:
    """lesion_agreement's computation with a timer around each stage; the sorted pair rows."""
    clock = time.perf_counter
    t = clock()
    decoded = [(seg, decode_mask(seg.mask_path, image_id=lesion.image_id))
               for seg in lesion.human_segmentations]
    times["decode"] += clock() - t
    humans = [(seg, d.mask) for seg, d in decoded]
    if len(humans) < 2 or any(m is None for _, m in humans):
        return None
    masks_h = [m for _, m in humans]
    # As the engine does: each mask's box comes from the decoder, the consensus masks' from
    # inside the union's box.
    boxes_h = [d.box if d.box_known else lesion_mod.foreground_box(d.mask) for _, d in decoded]
    t = clock()
    patterns = vote_patterns(masks_h, boxes_h)
    times["patterns"] += clock() - t
    t = clock()
    result = staple_from_patterns(patterns)
    times["staple"] += clock() - t
    t = clock()
    mv = majority_vote_from_patterns(patterns)
    times["mv"] += clock() - t
    stem = lesion.image_id
    masks = [(lesion_mod._info(seg), m) for seg, m in humans] + [
        (lesion_mod.MaskInfo(f"{stem}_ST_ST_ST_ST.png", "ST", "ST", "ST"), result.mask),
        (lesion_mod.MaskInfo(f"{stem}_MV_MV_MV_MV.png", "MV", "MV", "MV"), mv)]
    t = clock()
    boxes = boxes_h + [lesion_mod._box_within(m, patterns.box) for m in (result.mask, mv)]
    surfaces = [mask_surface(m, box) for (_, m), box in zip(masks, boxes, strict=True)]
    indexes = [border_index(x) for x in surfaces]
    times["surfaces"] += clock() - t
    t = clock()
    bands = [mask_bands(m, s, DEFAULT_SPEC.biou_ds) for (_, m), s in zip(masks, surfaces, strict=True)]
    times["bands"] += clock() - t
    image_name = lesion.image_path.name if lesion.image_path else f"{stem}.JPG"
    rows = []
    for i, j in combinations(range(len(masks)), 2):
        (a, ma), (b, mb) = masks[i], masks[j]
        sa, sb = surfaces[i], surfaces[j]
        t = clock()
        inter = _intersection_px(ma, mb, sa.bbox, sb.bbox)
        t2 = clock()
        geometry = PairGeometry(inter, _directed_distances(sa.border, sb.border, indexes[j]),
                                _directed_distances(sb.border, sa.border, indexes[i]))
        t3 = clock()
        values = pair_metrics(ma, mb, surface_a=sa, surface_b=sb, geometry=geometry)
        t4 = clock()
        extra = boundary_metrics(sa, sb, geometry, bands[i], bands[j], DEFAULT_SPEC)
        t5 = clock()
        times["overlap"] += t2 - t
        times["distances"] += t3 - t2
        times["medpy"] += t4 - t3
        times["mr"] += t5 - t4
        rows.append((image_name, a.name, b.name, a.annotator, b.annotator,
                     *values.as_dict().values(), a.tool, a.skill, b.tool, b.skill, *extra))
    rows.sort(key=lambda row: row[1])
    t = clock()
    chance_from_patterns(patterns)
    times["chance"] += clock() - t
    return rows


def decode_floor(lesion) -> float:
    start = time.perf_counter()
    for seg in lesion.human_segmentations:
        cv2.imread(str(seg.mask_path), cv2.IMREAD_GRAYSCALE)
    return time.perf_counter() - start


def imapp_size_counts() -> dict[str, int]:
    """How many of IMA++'s multi-annotator lesions fall in each size class."""
    segs = pd.read_csv(IMAPP / SEG_CSV, dtype=str)
    ids = set(segs.loc[~segs["annotator"].isin(["ST", "MV"]), "ISIC_id"])
    images = pd.read_csv(IMAPP / IMG_CSV, dtype=str, usecols=["isic_id", "pixels_x", "pixels_y"])
    images = images[images["isic_id"].isin(ids)]
    mp = images["pixels_x"].astype(float) * images["pixels_y"].astype(float) / 1e6
    counts: dict[str, int] = defaultdict(int)
    for value in mp:
        counts[size_class(value)] += 1
    return dict(counts)


def build_sample(data_dir: Path, limit: int) -> Path:
    """``limit`` IMA++ lesions spread over its sorted sizes, masks drawn as ``bench_dataset.py``."""
    segs = pd.read_csv(IMAPP / SEG_CSV, dtype=str)
    human = segs[~segs["annotator"].isin(["ST", "MV"])]
    images = pd.read_csv(IMAPP / IMG_CSV, dtype=str, usecols=["isic_id", "benign_malignant",
                                                               "pixels_x", "pixels_y"])
    images = images[images["isic_id"].isin(set(human["ISIC_id"]))]
    mp = images["pixels_x"].astype(float) * images["pixels_y"].astype(float)
    images = images.assign(_mp=mp).sort_values(["_mp", "isic_id"])
    step = max(1, len(images) // limit)
    images = images.iloc[step // 2::step].head(limit).drop(columns="_mp")
    human = human[human["ISIC_id"].isin(set(images["isic_id"]))]
    marker = data_dir / f"complete-spread-{len(images)}"
    if marker.exists():
        return data_dir
    (data_dir / "segs").mkdir(parents=True, exist_ok=True)
    human.to_csv(data_dir / "IMAplusplus_seg_metadata.csv", index=False)
    images.to_csv(data_dir / "IMAplusplus_img_metadata.csv", index=False)
    names = human.groupby("ISIC_id")["seg_filename"].apply(list)
    for r in images.itertuples():
        _lesion_masks((r.isic_id, int(r.pixels_y), int(r.pixels_x), names[r.isic_id], str(data_dir)))
    marker.touch()
    return data_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/iaa-prof19-spread"))
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not (IMAPP / SEG_CSV).exists():
        print(f"IMA++ metadata not found in {IMAPP}", file=sys.stderr)
        return 2
    dataset = load_dataset(build_sample(args.data_dir, args.limit))
    lesions = [x for x in dataset if len(x.human_segmentations) >= 2]

    per_class: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    n_class: dict[str, int] = defaultdict(int)
    floor_class: dict[str, float] = defaultdict(float)
    lesion_total = []
    mismatched = 0
    profile_lesion(lesions[0], defaultdict(float))  # warm-up: imports, first-call costs
    for lesion in lesions:
        label = size_class(lesion.width * lesion.height / 1e6)
        floor_class[label] += decode_floor(lesion)
        times: dict[str, float] = defaultdict(float)
        start = time.perf_counter()
        rows = profile_lesion(lesion, times)
        lesion_total.append(time.perf_counter() - start)
        reference = lesion_mod.lesion_agreement(lesion)
        as_text = [tuple(map(str, r)) for r in reference.pairs]
        if rows is None or [tuple(map(str, r)) for r in rows] != as_text:
            mismatched += 1
        n_class[label] += 1
        for stage, value in times.items():
            per_class[label][stage] += value

    # Same run: the engine itself, in process and on the pool, then cache and CSV writing.
    start = time.perf_counter()
    one = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=None))
    engine_1 = time.perf_counter() - start
    start = time.perf_counter()
    pool = run_to_end(iter_dataset_agreement(dataset, workers=args.workers, cache=None))
    engine_n = time.perf_counter() - start
    assert one.pairwise.equals(pool.pairwise)
    results = [lesion_mod.lesion_agreement(x) for x in lesions[:8]]
    pickled = statistics.median(len(pickle.dumps(r)) for r in results)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_to_end(iter_dataset_agreement(dataset, workers=1, cache=AgreementCache(Path(tmp) / "c.h5")))
        engine_cached_write = time.perf_counter() - start - engine_1
        start = time.perf_counter()
        write_table(pool.pairwise, Path(tmp) / "pairwise.csv")
        write_agreement_tables(pool.pairwise, Path(tmp) / "tables")
        csv_s = time.perf_counter() - start

    full_counts = imapp_size_counts()
    n = sum(n_class.values())
    print(f"{n} lesions profiled ({len(one.pairwise)} pairs), rows equal to lesion_agreement's: "
          f"{n - mismatched}/{n}\n")
    header = ["stage", *[f"{label} (n={n_class[label]})" for _, label in SIZE_CLASSES if n_class[label]],
              "all, ms/lesion", "share", "full IMA++, s (1 core)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    labels = [label for _, label in SIZE_CLASSES if n_class[label]]

    def full_seconds(get) -> float:
        # Mean per lesion of each class x IMA++'s count of that class (a class absent from
        # the sample borrows the nearest profiled class's mean).
        total = 0.0
        for _, label in SIZE_CLASSES:
            use = label if n_class[label] else min(labels, key=lambda x: abs(
                [lb for _, lb in SIZE_CLASSES].index(x) - [lb for _, lb in SIZE_CLASSES].index(label)))
            total += get(use) / n_class[use] * full_counts.get(label, 0)
        return total

    all_total = sum(sum(v.values()) for v in per_class.values())
    rows_out = [(stage, lambda lb, s=stage: per_class[lb][s]) for stage in STAGES]
    rows_out.append(("**sum of stages**", lambda lb: sum(per_class[lb].values())))
    rows_out.append(("cv2.imread of the same files", lambda lb: floor_class[lb]))
    for name, get in rows_out:
        cells = [f"{1000 * get(lb) / n_class[lb]:.1f}" for lb in labels]
        total = sum(get(lb) for lb in labels)
        print(f"| {name} | " + " | ".join(cells) + f" | {1000 * total / n:.1f} | "
              f"{100 * total / all_total:.0f}% | {full_seconds(get):.0f} |")
    scale = full_seconds(lambda lb: sum(per_class[lb].values())) / max(all_total, 1e-9)
    print(f"\nmedian lesion (instrumented): {1000 * statistics.median(lesion_total):.0f} ms")
    print(f"engine, 1 worker, no cache: {engine_1:.2f} s ({1000 * engine_1 / n:.0f} ms/lesion); "
          f"sum of stages {all_total:.2f} s")
    print(f"engine, {args.workers} workers, no cache: {engine_n:.2f} s; process overhead "
          f"{engine_n - engine_1 / args.workers:+.2f} s over an ideal split "
          f"({1000 * (engine_n - engine_1 / args.workers) / n:+.0f} ms/lesion); "
          f"pickled result median {pickled / 1024:.1f} KiB")
    print(f"cache (HDF5) writing: {engine_cached_write:+.2f} s for {n} lesions; CSV tables: {csv_s:.2f} s")
    print(f"scaled to the full {sum(full_counts.values())} IMA++ lesions by size class: "
          f"{all_total * scale:.0f} s of one core, {engine_n * scale:.0f} s on {args.workers} workers "
          f"(decode floor, decode_mask: {full_seconds(lambda lb: per_class[lb]['decode']):.0f} s "
          f"of one core; cv2.imread {full_seconds(lambda lb: floor_class[lb]):.0f} s)")
    return 0 if mismatched == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
