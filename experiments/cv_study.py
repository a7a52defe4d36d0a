"""The study's table on real images: seeded 5-fold CV of the IAA regressor and diagnosis only vs multi-task.

    python experiments/cv_study.py --out results/          # the whole study (a GPU: ~8 minutes)
    python experiments/cv_study.py --out results/ --report  # tables + figures from results/ again

Data: ``../shared/data/isic2017_256`` (train + val, 256 px) joined to IMA++: malignancy from
``IMAplusplus_img_metadata.csv`` (benign/malignant only: 2,032 images), IAA =
``dice_score_mean`` of the multi-annotator image-level table (612 of them). Folds are
stratified by malignancy x has-IAA, so both the diagnosis and the IAA subsets are stratified.
Every model is evaluated on the fold it never saw, after a fixed number of epochs (no
selection on the test fold).

Stages, in order (each run appends to ``results.csv`` and ``predictions.csv`` at once, so a
run stopped by its time budget keeps what it finished):

1. ``probe``: frozen ImageNet EfficientNet-Lite0 features (flip-averaged) -> ridge (intercept at
   the residuals' median) and class-balanced logistic regression; and the fast mode (the
   model's own heads trained on the same features, ``trainer.features.train_heads``);
2. ``recipe``: IAA regression, fine-tuning alternatives (today's SGD defaults, AdamW, lower
   backbone lr, frozen warm-up), each evaluated without and with flip / flip+rot90 TTA;
3. ``diagnosis``: diagnosis only vs multi-task, the best recipe of stage 2, seeds x folds;
4. ``scratch``: the same from random initialisation;
5. ``curve``: IAA MAE against the number of training images (probe and fine-tuning).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
COLUMNS = [
    "stage",
    "config",
    "backbone",
    "pretrained",
    "mode",
    "tta",
    "fold",
    "seed",
    "n_train",
    "n_test",
    "mae",
    "baseline_mae",
    "pearson",
    "spearman",
    "balanced_accuracy",
    "auroc",
    "seconds",
]


def load_labels(shared: Path) -> tuple[list[Path], np.ndarray, np.ndarray, list[str]]:
    """(image paths, IAA with NaN, malignant 0/1, ids) of the shared images with a benign/malignant label."""
    import pandas as pd

    meta = pd.read_csv(
        shared / "imapp" / "IMAplusplus_img_metadata.csv", usecols=["isic_id", "benign_malignant"]
    )
    label = dict(zip(meta.isic_id, meta.benign_malignant, strict=True))
    table = pd.read_csv(
        shared / "imapp" / "IMAplusplus_multiannotator_subset_image_level_metrics.csv",
        usecols=["img_id", "dice_score_mean"],
    )
    iaa = {Path(name).stem: float(v) for name, v in zip(table.img_id, table.dice_score_mean, strict=True)}
    paths, ids = [], []
    for split in ("train", "val"):
        for path in sorted((shared / "isic2017_256" / split).glob("*.jpg")):
            if label.get(path.stem) in ("benign", "malignant"):
                paths.append(path)
                ids.append(path.stem)
    malignant = np.array([label[i] == "malignant" for i in ids], dtype=np.int64)
    values = np.array([iaa.get(i, np.nan) for i in ids], dtype=np.float32)
    return paths, values, malignant, ids


def read_images(paths: list[Path]) -> np.ndarray:
    """uint8 (N, 3, H, W) RGB images, decoded in threads."""
    import cv2

    def one(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{path}: cannot decode the image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)

    with ThreadPoolExecutor(8) as pool:
        return np.stack(list(pool.map(one, paths)))


def stratified_folds(strata: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number of each row: every stratum dealt round-robin over the folds after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(strata), dtype=np.int64)
    offset = 0
    for value in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == value))
        fold[rows] = (np.arange(len(rows)) + offset) % k
        offset += len(rows)
    return fold


class Recorder:
    """Appends result rows and per-image predictions to CSVs as they come."""

    def __init__(self, out: Path, ids: list[str], iaa: np.ndarray, malignant: np.ndarray) -> None:
        self.out, self.ids, self.iaa, self.malignant = out, ids, iaa, malignant
        self.results = out / "results.csv"
        self.predictions = out / "predictions.csv"
        for path, columns in (
            (self.results, COLUMNS),
            (
                self.predictions,
                [
                    "stage",
                    "config",
                    "mode",
                    "tta",
                    "fold",
                    "seed",
                    "image_id",
                    "iaa_true",
                    "iaa_pred",
                    "train_median",
                    "malignant",
                    "prob",
                ],
            ),
        ):
            with open(path, "w", newline="") as handle:
                csv.writer(handle).writerow(columns)

    def add(
        self,
        *,
        stage: str,
        config: str,
        backbone: str,
        pretrained: str,
        mode: str,
        tta: str,
        fold: int,
        seed: int,
        train_rows: np.ndarray,
        test_rows: np.ndarray,
        iaa_pred: np.ndarray,
        prob: np.ndarray,
        seconds: float,
        n_train: int | None = None,
    ) -> dict:
        from trainer.metrics import classification_metrics, regression_metrics

        row = {
            "stage": stage,
            "config": config,
            "backbone": backbone,
            "pretrained": pretrained,
            "mode": mode,
            "tta": tta,
            "fold": fold,
            "seed": seed,
            "n_test": len(test_rows),
            "seconds": round(seconds, 2),
            "n_train": n_train if n_train is not None else len(train_rows),
        }
        true = self.iaa[test_rows]
        median = (
            float(np.nanmedian(self.iaa[train_rows])) if np.any(~np.isnan(self.iaa[train_rows])) else np.nan
        )
        if not np.all(np.isnan(iaa_pred)):
            known = ~np.isnan(true)
            reg = regression_metrics(iaa_pred[known], true[known])
            row |= {
                "mae": reg["mae"],
                "pearson": reg["pearson"],
                "spearman": reg["spearman"],
                "baseline_mae": float(np.mean(np.abs(true[known] - median))),
            }
        if not np.all(np.isnan(prob)):
            cls = classification_metrics(prob, self.malignant[test_rows])
            row |= {"balanced_accuracy": cls["balanced_accuracy"], "auroc": cls["auroc"]}
        with open(self.results, "a", newline="") as handle:
            csv.DictWriter(handle, COLUMNS).writerow(row)
        with open(self.predictions, "a", newline="") as handle:
            writer = csv.writer(handle)
            for i, r in enumerate(test_rows):
                writer.writerow(
                    [
                        stage,
                        config,
                        mode,
                        tta,
                        fold,
                        seed,
                        self.ids[r],
                        f"{true[i]:.5f}",
                        f"{iaa_pred[i]:.5f}",
                        f"{median:.5f}",
                        int(self.malignant[r]),
                        f"{prob[i]:.5f}",
                    ]
                )
        print(
            json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True
        )
        return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder holding imapp/ and isic2017_256/")
    parser.add_argument("--report", action="store_true", help="only rebuild tables and figures from --out")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs-reg", type=int, default=25)
    parser.add_argument("--epochs-cls", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting runs after this long")
    parser.add_argument("--limit", type=int, default=0, help="use only this many images (a smoke test)")
    parser.add_argument("--stages", default="probe,recipe,diagnosis,scratch,curve")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default; 1 on a shared CPU)"
    )
    parser.add_argument(
        "--recipes",
        default="",
        help="comma-separated recipe names of stage 'recipe' to run (default all: "
        "sgd_defaults, adamw_l1_cosine, adamw_bb0.1, adamw_bb0.1_freeze2)",
    )
    parser.add_argument(
        "--tta",
        default="none,flip,flip_rot",
        help="TTA kinds the 'recipe' stage evaluates (comma-separated; none is always included)",
    )
    parser.add_argument("--no-report", action="store_true", help="leave tables and figures to --report")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from experiments import cv_report

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    if args.report:
        cv_report.write_report(args.out)
        return 0
    args = replace_stages(args)
    if not (args.shared / "isic2017_256").is_dir():
        print(f"real data not found under {args.shared}", file=sys.stderr)
        return 2
    from experiments.cv_stages import run_stages

    started = time.perf_counter()
    paths, iaa, malignant, ids = load_labels(args.shared)
    if args.limit:
        keep = np.sort(np.random.default_rng(0).permutation(len(paths))[: args.limit])
        paths, iaa, malignant, ids = (
            [paths[i] for i in keep],
            iaa[keep],
            malignant[keep],
            [ids[i] for i in keep],
        )
    pixels = read_images(paths)
    print(
        f"{len(paths)} images ({int(malignant.sum())} malignant, {int((~np.isnan(iaa)).sum())} with IAA) "
        f"read in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    folds = stratified_folds(malignant * 2 + (~np.isnan(iaa)), args.folds, seed=0)
    recorder = Recorder(args.out, ids, iaa, malignant)
    run_stages(args, pixels, iaa, malignant, folds, recorder, started)
    if not args.no_report:
        cv_report.write_report(args.out)
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def replace_stages(args: argparse.Namespace) -> argparse.Namespace:
    """Comma-separated options as tuples, checked against what the stages know."""
    from experiments.cv_stages import STAGES, TTA_KINDS, recipe_alternatives

    args.stages = _names(args.stages)
    args.recipes = _names(args.recipes)
    args.tta = ("none",) + tuple(kind for kind in _names(args.tta) if kind != "none")
    known = {c.name for c in recipe_alternatives(1)}
    for option, values, allowed in (
        ("--stages", args.stages, STAGES),
        ("--recipes", args.recipes, known),
        ("--tta", args.tta, TTA_KINDS),
    ):
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise SystemExit(
                f"{option}: unknown {', '.join(unknown)}; expected some of {', '.join(sorted(allowed))}"
            )
    return args


if __name__ == "__main__":
    raise SystemExit(main())
