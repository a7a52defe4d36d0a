"""Train on real dermoscopic images with real IAA: the study's two questions, on this CPU.

Data: the 2,000 real ISIC 2017 images of ../shared/data/isic2017_256/train
joined to the IMA++ metadata (malignancy) and the published image-level table
(IAA = ``dice_score_mean``, known for the images in the multi-annotator
subset). The training set is exported at ``--size`` px with a seeded split
stratified by malignancy (70/10/20).

1. IAA regressor, from scratch: best validation MAE next to the baseline of
   predicting the training split's median IAA for every validation image.
2. Diagnosis only vs multi-task (diagnosis + IAA, alpha 0.5) balanced accuracy
   on the test split (best checkpoint by validation balanced accuracy), over
   several seeds.

CPU budgets are tiny (small inputs, a small backbone, few epochs): the numbers
say what this bounded run gives, not what the paper's GPU training gives.

    python experiments/real_images.py [--size 64] [--backbone resnet10t] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.core.training.iaa_labels import read_iaa_table  # noqa: E402
from iaa_desktop.core.training.training_set import iter_export_training_set  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
IMAGE_LEVEL = SHARED / "imapp" / "IMAplusplus_multiannotator_subset_image_level_metrics.csv"


def train(data: Path, out: Path, mode: str, seed: int, args) -> dict:
    """One ``iaa-train`` run in its own process; its run_finished event."""
    command = [sys.executable, "-m", "trainer", "--data", str(data), "--out", str(out), "--mode", mode,
               "--backbone", args.backbone, "--epochs", str(args.epochs_reg if mode == "regression"
                                                              else args.epochs_cls),
               "--batch-size", "32", "--lr", str(args.lr), "--seed", str(seed), "--device", "cpu",
               "--threads", "2"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return next(e for e in events if e["event"] == "run_finished")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs-reg", type=int, default=15)
    parser.add_argument("--epochs-cls", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW, iaa-train's default optimizer")
    args = parser.parse_args()
    if not IMAGE_LEVEL.exists():
        print(f"real data not found under {SHARED}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "real.h5"
        dataset = load_dataset(SHARED / "imapp", "imapp", images_dir=SHARED / "isic2017_256" / "train")
        info = run_to_end(iter_export_training_set(dataset, data, size=args.size,
                                                   iaa=read_iaa_table(IMAGE_LEVEL), cache=None))
        with h5py.File(data, "r") as h5:
            iaa = h5["iaa"][()]
            split = np.array([s.decode() if isinstance(s, bytes) else s for s in h5["split"][()]])
        known = ~np.isnan(iaa)
        train_median = float(np.median(iaa[known & (split == "train")]))
        val = iaa[known & (split == "val")]
        baseline_mae = float(np.mean(np.abs(val - train_median)))
        print(f"training set: {info.n_images} images at {args.size} px, {info.n_with_iaa} with IAA "
              f"(train {int((known & (split == 'train')).sum())}, val {val.size}, "
              f"test {int((known & (split == 'test')).sum())}); labels {info.labels}")

        start = time.perf_counter()
        reg = train(data, Path(tmp) / "reg", "regression", args.seeds[0], args)
        print(f"\nIAA regressor ({args.backbone}, from scratch, {args.epochs_reg} epochs, "
              f"{time.perf_counter() - start:.0f} s):")
        print(f"  best validation MAE {reg['best']['mae']:.4f} (epoch {reg['best_epoch']}); test MAE "
              f"{reg['test']['mae']:.4f}, Pearson {reg['test']['pearson']:.3f}")
        print(f"  baseline, training median {train_median:.4f} for every image: validation MAE "
              f"{baseline_mae:.4f}")

        rows = []
        for seed in args.seeds:
            for mode in ("classification", "multitask"):
                start = time.perf_counter()
                result = train(data, Path(tmp) / f"{mode}-{seed}", mode, seed, args)
                rows.append((seed, mode, result["test"]["balanced_accuracy"], result["test"]["auroc"],
                             time.perf_counter() - start))
        print(f"\nDiagnosis only vs multi-task ({args.backbone}, {args.epochs_cls} epochs, test split):")
        print(f"  {'seed':<6}{'mode':<16}{'balanced acc':>13}{'AUROC':>8}{'s':>6}")
        for seed, mode, bacc, auroc, seconds in rows:
            print(f"  {seed:<6}{mode:<16}{bacc:>13.4f}{auroc:>8.4f}{seconds:>6.0f}")
        for mode in ("classification", "multitask"):
            values = [r[2] for r in rows if r[1] == mode]
            spread = statistics.stdev(values) if len(values) > 1 else float("nan")
            print(f"  mean {mode:<16} balanced accuracy {statistics.mean(values):.4f} (SD {spread:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
