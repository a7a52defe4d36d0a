"""The stages of ``cv_study.py``: probe and fast mode, recipe alternatives, diagnosis, scratch, curve."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from experiments.cv_train import Config, Images, train_and_predict
from trainer.features import extract_features, fit_logistic, fit_ridge, head_outputs, train_heads
from trainer.losses import TaskLoss, class_weights
from trainer.models import build_model
from trainer.pretrained import create_imagenet_model, normalization_for
from trainer.recipe import fast_iaa_lr_mult, init_iaa_output

BACKBONE = "tf_efficientnet_lite0"
TTA_KINDS = ("none", "flip", "flip_rot")
STAGES = ("probe", "recipe", "diagnosis", "scratch", "curve")
RIDGE_L2 = (300.0, 1000.0, 3000.0)
LOGISTIC_L2 = (30.0, 300.0, 3000.0)
CURVE_FRACTIONS = (0.125, 0.25, 0.5, 1.0)


def recipe_alternatives(epochs: int) -> list[Config]:
    """Today's defaults and the recipe's parts added one at a time (IAA regression)."""
    return [
        Config(
            "sgd_defaults",
            optimizer="sgd",
            lr=0.01,
            backbone_lr_mult=1.0,
            freeze_epochs=0,
            schedule="step",
            lr_step=10,
            weight_decay=1e-4,
            reg_loss="smooth_l1",
            epochs=15,
            median_init=False,
        ),
        Config("adamw_l1_cosine", backbone_lr_mult=1.0, freeze_epochs=0, epochs=epochs),
        Config("adamw_bb0.1", backbone_lr_mult=0.1, freeze_epochs=0, epochs=epochs),
        Config("adamw_bb0.1_freeze2", backbone_lr_mult=0.1, freeze_epochs=2, epochs=epochs),
    ]


class Clock:
    def __init__(self, started: float, budget: float) -> None:
        self.started, self.budget = started, budget

    def left(self) -> bool:
        spent = time.perf_counter() - self.started
        if spent > self.budget:
            print(f"time budget of {self.budget:.0f} s spent ({spent:.0f} s): skipping the rest", flush=True)
            return False
        return True


def _split(folds: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray]:
    return np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def stage_probe(ctx, features: np.ndarray, seeds: tuple[int, ...] = (0,)) -> None:
    """Ridge / logistic probes and the fast mode (heads on frozen features) on every fold.

    The probes are deterministic (seed 0); the fast mode's heads run once per seed in ``seeds``
    (head initialisation, batch order and feature noise differ; folds stay the same), so
    diagnosis only vs multi-task can be paired by (fold, seed).
    """
    iaa, malignant, folds, rec = ctx["iaa"], ctx["malignant"], ctx["folds"], ctx["rec"]
    common = {"backbone": BACKBONE, "pretrained": "imagenet", "tta": "flip_features", "seed": 0}
    for fold in range(ctx["k"]):
        train, test = _split(folds, fold)
        reg_train = train[~np.isnan(iaa[train])]
        for l2 in RIDGE_L2:
            start = time.perf_counter()
            predict = fit_ridge(features[reg_train], iaa[reg_train], l2)
            rec.add(
                stage="probe",
                config=f"ridge_l2={l2:g}",
                mode="regression",
                fold=fold,
                train_rows=reg_train,
                test_rows=test,
                iaa_pred=np.clip(predict(features[test]), 0, 1),
                prob=_nan(len(test)),
                seconds=time.perf_counter() - start,
                **common,
            )
        for l2 in LOGISTIC_L2:
            start = time.perf_counter()
            predict = fit_logistic(features[train], malignant[train], l2)
            rec.add(
                stage="probe",
                config=f"logistic_l2={l2:g}",
                mode="classification",
                fold=fold,
                train_rows=train,
                test_rows=test,
                iaa_pred=_nan(len(test)),
                prob=predict(features[test]),
                seconds=time.perf_counter() - start,
                **common,
            )
        for fraction in CURVE_FRACTIONS[:-1]:
            subset = curve_subset(reg_train, fraction, fold)
            predict = fit_ridge(features[subset], iaa[subset], 1000.0)
            rec.add(
                stage=f"curve_{fraction:g}",
                config="ridge_l2=1000",
                mode="regression",
                fold=fold,
                train_rows=subset,
                test_rows=test,
                iaa_pred=np.clip(predict(features[test]), 0, 1),
                prob=_nan(len(test)),
                seconds=0.0,
                **common,
            )
        for seed in seeds:
            for mode in ("regression", "classification", "multitask"):
                start = time.perf_counter()
                rows = reg_train if mode == "regression" else train
                out = fast_mode(mode, features, iaa, malignant, rows, test, seed=seed)
                rec.add(
                    stage="probe",
                    config="fast_mode_heads",
                    mode=mode,
                    fold=fold,
                    train_rows=rows,
                    test_rows=test,
                    iaa_pred=out["iaa"],
                    prob=out["prob"],
                    seconds=time.perf_counter() - start,
                    **(common | {"seed": seed}),
                )


def fast_mode(
    mode: str,
    features: np.ndarray,
    iaa: np.ndarray,
    malignant: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    epochs: int = 60,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The fast mode on one fold: the model's heads trained on frozen features (CPU, seconds)."""
    torch.manual_seed(seed)
    model = build_model(BACKBONE, mode, "none")
    median = float(np.nanmedian(iaa[train]))
    if model.reg_head is not None:
        init_iaa_output(model, median)
    loss_fn = TaskLoss(mode, reg_loss="l1", cls_loss="focal", weight=class_weights(malignant[train]))
    x = torch.from_numpy(features).float()
    train_heads(
        model,
        x[train],
        torch.from_numpy(iaa[train]),
        torch.from_numpy(malignant[train]),
        loss_fn,
        epochs=epochs,
        lr=1e-3,
        weight_decay=0.05,
        seed=seed,
        feature_noise=0.1,
        reg_lr_mult=fast_iaa_lr_mult(median) if model.reg_head is not None else 1.0,
    )
    with torch.no_grad():
        out = head_outputs(model, x[test])
    n = len(test)
    return {
        "iaa": out["iaa"].clamp(0, 1).numpy() if "iaa" in out else _nan(n),
        "prob": torch.softmax(out["logits"], 1)[:, 1].numpy() if "logits" in out else _nan(n),
    }


def _finetune(
    ctx,
    stage: str,
    config: Config,
    mode: str,
    fold: int,
    seed: int,
    tta=("none",),
    train: np.ndarray | None = None,
) -> list[dict]:
    folds, rec = ctx["folds"], ctx["rec"]
    default_train, test = _split(folds, fold)
    train = default_train if train is None else train
    result = train_and_predict(
        config, mode, ctx["images"], train, test, seed=seed, size=ctx["size"], tta_kinds=tta
    )
    rows = []
    for kind, pred in result["predictions"].items():
        rows.append(
            rec.add(
                stage=stage,
                config=config.name,
                backbone=config.backbone,
                pretrained=config.pretrained,
                mode=mode,
                tta=kind,
                fold=fold,
                seed=seed,
                train_rows=train,
                test_rows=test,
                iaa_pred=pred["iaa"],
                prob=pred["prob"],
                seconds=result["seconds"],
                n_train=result["train_images"],
            )
        )
    return rows


def run_stages(
    args, pixels: np.ndarray, iaa: np.ndarray, malignant: np.ndarray, folds: np.ndarray, rec, started: float
) -> None:
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    torch.backends.cudnn.benchmark = True
    images = Images(
        torch.from_numpy(pixels).to(device),
        torch.from_numpy(iaa).to(device),
        torch.from_numpy(malignant).to(device),
    )
    clock = Clock(started, args.budget_s)
    ctx = {
        "iaa": iaa,
        "malignant": malignant,
        "folds": folds,
        "rec": rec,
        "k": args.folds,
        "images": images,
        "size": args.size,
    }
    if "probe" in args.stages:
        start = time.perf_counter()
        backbone = create_imagenet_model(BACKBONE, num_classes=0).to(device)
        mean, std = (torch.tensor(v) for v in normalization_for(BACKBONE, True))
        features = extract_features(
            backbone,
            images.pixels,
            mean,
            std,
            size=args.size,
            flip=True,
            batch_size=256,
            device=device,
            amp=device.type == "cuda",
        ).numpy()
        print(f"features {features.shape} in {time.perf_counter() - start:.1f} s", flush=True)
        stage_probe(ctx, features.astype(np.float64), tuple(args.seeds))
    best = Config("adamw_bb0.1_freeze2", epochs=args.epochs_reg)
    if "recipe" in args.stages:
        maes: dict[str, list[float]] = {}
        chosen = getattr(args, "recipes", ()) or ()
        for config in recipe_alternatives(args.epochs_reg):
            if chosen and config.name not in chosen:
                continue
            for fold in range(args.folds):
                if not clock.left():
                    break
                tta = tuple(getattr(args, "tta", TTA_KINDS))
                for row in _finetune(ctx, "recipe", config, "regression", fold, 0, tta):
                    if row["tta"] == "none":
                        maes.setdefault(config.name, []).append(row["mae"])
        complete = {name: np.mean(v) for name, v in maes.items() if len(v) == args.folds}
        if complete:
            name = min(complete, key=complete.get)
            best = next(c for c in recipe_alternatives(args.epochs_reg) if c.name == name)
            print(f"best recipe by CV MAE: {name} ({complete[name]:.4f})", flush=True)
    cls_config = replace(best, epochs=args.epochs_cls)
    scratch = Config("scratch_adamw", pretrained="none", backbone_lr_mult=1.0, freeze_epochs=0)
    plan = []
    for i, seed in enumerate(args.seeds):
        if "diagnosis" in args.stages:
            plan += [
                ("diagnosis", cls_config, mode, fold, seed)
                for fold in range(args.folds)
                for mode in ("classification", "multitask")
            ]
        if i == 0 and "scratch" in args.stages:
            plan += [
                (
                    "scratch",
                    replace(scratch, epochs=args.epochs_reg if mode == "regression" else args.epochs_cls),
                    mode,
                    fold,
                    seed,
                )
                for fold in range(args.folds)
                for mode in ("regression", "classification", "multitask")
            ]
        if i == 0 and "curve" in args.stages:
            plan += [
                ("curve", best, fraction, fold, seed)
                for fold in range(args.folds)
                for fraction in CURVE_FRACTIONS[:-1]
            ]
    for stage, config, mode, fold, seed in plan:
        if not clock.left():
            break
        if stage == "curve":
            _curve_point(ctx, config, mode, fold, seed)
        else:
            _finetune(ctx, stage, config, mode, fold, seed, ("none", "flip"))


def curve_subset(rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded subset of ``fraction`` of ``rows`` (at least 8)."""
    count = max(8, int(round(fraction * len(rows))))
    return np.sort(np.random.default_rng(seed).permutation(rows)[:count])


def _curve_point(ctx, config: Config, fraction: float, fold: int, seed: int) -> None:
    """Fine-tuning and the probe on a seeded subset of the fold's IAA training images."""
    iaa = ctx["iaa"]
    train, test = _split(ctx["folds"], fold)
    reg_train = train[~np.isnan(iaa[train])]
    subset = curve_subset(reg_train, fraction, fold + seed)
    _finetune(ctx, f"curve_{fraction:g}", config, "regression", fold, seed, ("none",), train=subset)
