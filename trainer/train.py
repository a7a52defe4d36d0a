"""The training loop: one process (CPU, CUDA or MPS) writing events, summary and checkpoints to a run dir."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.backbones import is_imagenet
from iaa_desktop.core.training.runs import RUN_SPEC_FILE, SUMMARY_FILE, RunSpec, append_event, save_spec
from trainer import checkpoints as ckpt
from trainer import recipe
from trainer.data import H5ImageDataset, TrainingTable, normalize, read_table, select_indices
from trainer.losses import TaskLoss, class_weights
from trainer.metrics import is_better, mode_metrics, selection_metric, training_median
from trainer.models import CLASSES, IAAModel, build_model

log = logging.getLogger(__name__)

#: ``baseline_mae``: MAE of predicting the training median for every image; ``mae_ratio``: mae / that.
REGRESSION_METRICS = ("mae", "baseline_mae", "mae_ratio", "mse", "pearson", "spearman", "ks_stat", "ks_p",
                      "mwu_p")
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "auroc")


class TrainingError(IAAError):
    """A run that cannot go on: no data, a non-finite loss, out of memory."""


def metric_names(mode: str) -> tuple[str, ...]:
    names = ("loss",)
    if mode in ("regression", "multitask"):
        names += REGRESSION_METRICS
    if mode in ("classification", "multitask"):
        names += CLASSIFICATION_METRICS
    return names


def summary_columns(mode: str) -> list[str]:
    return ["epoch", "lr", "train_loss", *(f"val_{name}" for name in metric_names(mode))]


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else Apple MPS, else CPU; anything else is taken as asked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} asked for, but CUDA is not available here")
    if name == "mps" and not torch.backends.mps.is_available():
        raise TrainingError("device 'mps' asked for, but Apple MPS is not available here")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_loader(dataset: H5ImageDataset, spec: RunSpec, device: torch.device, train: bool,
                sampler: DistributedSampler | None = None) -> DataLoader:
    # drop_last keeps a lone last image out of BatchNorm (which cannot train on one sample).
    share = len(sampler) if sampler is not None else len(dataset)
    return DataLoader(dataset, batch_size=spec.batch_size, shuffle=train and sampler is None, sampler=sampler,
                      num_workers=spec.num_workers, pin_memory=device.type == "cuda",
                      drop_last=train and share >= spec.batch_size, persistent_workers=spec.num_workers > 0)


def _autocast(device: torch.device, amp: bool):
    return torch.autocast("cuda", dtype=torch.float16) if amp and device.type == "cuda" \
        else contextlib.nullcontext()


def _to_device(batch: dict, device: torch.device, loader: DataLoader) -> dict:
    """The batch on ``device``, images normalised there (they travel as uint8)."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    dataset = loader.dataset
    out["image"] = normalize(out["image"], dataset.mean.to(device), dataset.std.to(device))
    if device.type == "cuda":
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out


def train_one_epoch(model: IAAModel, loader: DataLoader, optimizer: torch.optim.Optimizer, loss_fn: TaskLoss,
                    device: torch.device, *, scaler: torch.amp.GradScaler | None = None, max_steps: int = 0,
                    on_progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """One pass over ``loader`` (at most ``max_steps`` batches when > 0); returns ``{"loss": mean}``.

    Raises ``TrainingError`` as soon as a loss is NaN or infinite.
    """
    model.train()
    total = len(loader) if max_steps <= 0 else min(len(loader), max_steps)
    losses = []
    amp = scaler is not None and scaler.is_enabled()
    for step, batch in enumerate(loader, start=1):
        if step > total:
            break
        batch = _to_device(batch, device, loader)
        with _autocast(device, amp):
            outputs = model(batch["image"])
            loss = loss_fn(outputs, batch["iaa"], batch["malignant"])
        if not bool(torch.isfinite(loss.detach())):
            raise TrainingError(f"the training loss became {loss.item()} at batch {step}/{total}: "
                                "the run diverged (try a lower learning rate)")
        optimizer.zero_grad(set_to_none=True)
        if amp:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        losses.append(float(loss.detach()))
        if on_progress is not None:
            on_progress(step, total)
    return {"loss": float(np.mean(losses)) if losses else math.nan}


@torch.no_grad()
def predict(model: IAAModel, loader: DataLoader, device: torch.device,
            amp: bool = False, tta: str = "none") -> dict[str, np.ndarray]:
    """Outputs over ``loader`` in order: ``row``, ``iaa_true``, ``malignant_true``, ``iaa_pred``, ``prob``.

    ``tta``: test-time augmentation averaged over (``trainer.recipe.tta_forward``).
    """
    model.eval()
    parts: dict[str, list] = {"row": [], "iaa_true": [], "malignant_true": [], "iaa_pred": [], "prob": []}
    for batch in loader:
        batch = _to_device(batch, device, loader)
        with _autocast(device, amp):
            outputs = recipe.tta_forward(model, batch["image"], tta)
        parts["row"].append(batch["row"].cpu().numpy())
        parts["iaa_true"].append(batch["iaa"].cpu().numpy())
        parts["malignant_true"].append(batch["malignant"].cpu().numpy())
        if "iaa" in outputs:
            parts["iaa_pred"].append(outputs["iaa"].float().cpu().numpy())
        if "logits" in outputs:
            parts["prob"].append(torch.softmax(outputs["logits"].float(), dim=1)[:, 1].cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def validate(model: IAAModel, loader: DataLoader, loss_fn: TaskLoss, device: torch.device,
             amp: bool = False, iaa_baseline: float | None = None, tta: str = "none") -> dict[str, float]:
    """Loss and the mode's metrics (see ``trainer.metrics``) over ``loader``; NaN where undefined.

    ``iaa_baseline``: the training median IAA, whose MAE is reported beside the model's.
    ``tta``: test-time augmentation of the predictions (``trainer.recipe``).
    """
    if len(loader.dataset) == 0:
        return {name: math.nan for name in metric_names(model.mode)
                if iaa_baseline is not None or name not in ("baseline_mae", "mae_ratio")}
    out = predict(model, loader, device, amp, tta)
    outputs = {}
    if out["iaa_pred"].size:
        outputs["iaa"] = torch.from_numpy(out["iaa_pred"])
    if out["prob"].size:
        prob = np.clip(out["prob"], 1e-7, 1 - 1e-7)
        outputs["logits"] = torch.from_numpy(np.stack([np.log1p(-prob), np.log(prob)], axis=1))
    # FocalLoss moves its class weights to the outputs' device: the loss is computed on the CPU here.
    loss = float(loss_fn(outputs, torch.from_numpy(out["iaa_true"]), torch.from_numpy(out["malignant_true"])))
    metrics = mode_metrics(model.mode, iaa_pred=out["iaa_pred"], iaa_true=out["iaa_true"],
                           prob=out["prob"], labels=out["malignant_true"], iaa_baseline=iaa_baseline)
    return {"loss": loss, **metrics}


# --- distributed (torchrun) ------------------------------------------------------------------------

@dataclass(frozen=True)
class Dist:
    """This process's place under ``torchrun`` (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and device_name != "cpu"
        dist.init_process_group("nccl" if cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _weights_checksum(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum().item() for p in model.parameters()))


def _ranks_agree(ddp: Dist, model: torch.nn.Module, device: torch.device) -> bool:
    """Whether every rank ended with the same weights (all_gather of a checksum)."""
    if ddp.world == 1:
        return True
    mine = torch.tensor([_weights_checksum(model)], dtype=torch.float64, device=device)
    every = [torch.zeros_like(mine) for _ in range(ddp.world)]
    dist.all_gather(every, mine)
    return all(torch.equal(every[0], other) for other in every)


def _mean_over_ranks(ddp: Dist, value: float, device: torch.device) -> float:
    if ddp.world == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total.item()) / ddp.world


# --- the run -------------------------------------------------------------------------------------

@dataclass
class Run:
    spec: RunSpec
    run_dir: Path
    device: torch.device
    table: TrainingTable
    net: IAAModel  # the model itself; ``model`` may be its DDP wrapper
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: TaskLoss
    scaler: torch.amp.GradScaler
    loaders: dict[str, DataLoader]
    ddp: Dist
    #: Median IAA of the training split: the constant every regression figure is compared with.
    iaa_median: float = math.nan

    @property
    def amp(self) -> bool:
        return self.scaler.is_enabled()

    def event(self, kind: str, **fields) -> None:
        if self.ddp.main:  # only rank 0 writes to the run directory
            append_event(self.run_dir, kind, **fields)

    def metadata(self, epoch: int, metrics: dict) -> dict:
        return {"backbone": self.spec.backbone, "mode": self.spec.mode, "classes": list(CLASSES),
                "input_size": self.table.input_size,
                "normalization": {"mean": list(self.table.mean), "std": list(self.table.std)},
                "iaa_head": self.net.iaa_head, "iaa_training_median": self.iaa_median,
                "training_set_fingerprint": self.table.fingerprint, "epoch": epoch,
                "metrics": metrics, "spec": self.spec.to_dict()}


def setup(spec: RunSpec, run_dir: Path, ddp: Dist | None = None) -> Run:
    """Device, data, model, loss, optimizer and schedule (``trainer.recipe``) of a spec; DDP (torchrun)."""
    ddp = ddp or Dist()
    device = resolve_device(spec.device)
    if ddp.world > 1 and device.type == "cuda":
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    table = _with_model_normalization(read_table(spec.data), spec)
    seed_everything(spec.seed)
    # A fine-tune run trains the classifier alone (trainer.finetune), whatever the source's mode.
    task = "classification" if spec.finetune_from else spec.mode
    datasets = {split: H5ImageDataset(table, select_indices(table, split, task),
                                      augment=spec.augment and split == "train")
                for split in ("train", "val", "test")}
    if len(datasets["train"]) < 2:
        raise TrainingError(f"{table.path}: {len(datasets['train'])} training image(s) with the labels "
                            f"{task} needs; at least 2 are required")
    weights = class_weights(table.malignant[datasets["train"].indices])
    loss_fn = TaskLoss(task, reg_loss=spec.reg_loss, cls_loss=spec.cls_loss,
                       focal_gamma=spec.focal_gamma, alpha=spec.alpha, weight=weights).to(device)
    if spec.finetune_from:
        from trainer.finetune import build_finetune_model

        net = build_finetune_model(spec).to(device)
    else:
        net = build_model(spec.backbone, spec.mode, spec.pretrained).to(device)
    iaa_median = training_median(table.iaa[datasets["train"].indices])
    if not spec.finetune_from:
        net.set_iaa_prior(iaa_median)  # the bounded head starts at the constant baseline
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    model: torch.nn.Module = net
    sampler = None
    if ddp.world > 1:
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        sampler = DistributedSampler(datasets["train"], num_replicas=ddp.world, rank=ddp.rank, shuffle=True,
                                     seed=spec.seed, drop_last=True)
    # Groups from the unwrapped model (DDP prefixes names); a fine-tune run's frozen IAA head is left out.
    optimizer = recipe.build_optimizer(net, optimizer=spec.optimizer, lr=spec.lr,
                                       backbone_lr_mult=spec.backbone_lr_mult, weight_decay=spec.weight_decay,
                                       momentum=spec.momentum, nesterov=spec.nesterov)
    scheduler = recipe.build_scheduler(optimizer, schedule=spec.schedule, epochs=spec.epochs,
                                       lr_step=spec.lr_step, lr_gamma=spec.lr_gamma)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    loaders = {split: make_loader(ds, spec, device, split == "train", sampler if split == "train" else None)
               for split, ds in datasets.items()}
    return Run(spec, run_dir, device, table, net, model, optimizer, scheduler, loss_fn, scaler, loaders, ddp,
               iaa_median if task != "classification" else math.nan)


def _with_model_normalization(table: TrainingTable, spec: RunSpec) -> TrainingTable:
    """The table with the mean/std the model expects: the source checkpoint's for a fine-tune,
    the backbone's pretrained configuration for ImageNet weights, else the training set's own."""
    norm = None
    if spec.finetune_from:
        from trainer.finetune import source_checkpoint

        norm = source_checkpoint(spec.finetune_from)[1].get("normalization")
        norm = (norm["mean"], norm["std"]) if norm else None
    elif is_imagenet(spec.pretrained):
        from trainer.pretrained import normalization_for

        norm = normalization_for(spec.backbone, pretrained=True)
    if norm is None:
        return table
    mean, std = (tuple(float(v) for v in values) for values in norm)
    return dataclasses.replace(table, mean=mean, std=std)


def _pretrained(spec: RunSpec) -> bool:
    """Whether the backbone starts from learned weights (the frozen warm-up only makes sense then)."""
    return spec.pretrained not in ("", "none") or bool(spec.finetune_from)


def _read_summary(path: Path, up_to_epoch: int) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if int(row["epoch"]) <= up_to_epoch]


def _write_summary(path: Path, columns: list[str], rows: list[dict]) -> None:
    def write(temp: str) -> None:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    ckpt._atomic(path, write)


def _resume(run: Run) -> tuple[int, dict]:
    """Load last weights and state; returns (epochs done, best record)."""
    last = ckpt.resolve_checkpoint(run.run_dir, "last")
    ckpt.load_weights(run.net, last, backbone=run.spec.backbone, mode=run.spec.mode)
    state = ckpt.load_state(run.run_dir)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    # The rate saved is the one after the last epoch of *that* run's schedule; a resumed run may
    # train longer (more --epochs), and a cosine schedule depends on the length: recompute it.
    factor = recipe.lr_factor(run.scheduler.last_epoch, schedule=run.spec.schedule, epochs=run.spec.epochs,
                              lr_step=run.spec.lr_step, lr_gamma=run.spec.lr_gamma)
    for group, base in zip(run.optimizer.param_groups, run.scheduler.base_lrs, strict=True):
        group["lr"] = base * factor
    ckpt.set_rng_state(state["rng"])
    return int(state["epoch"]), dict(state["best"])


def _save_epoch(run: Run, epoch: int, val: dict, best: dict, rows: list[dict]) -> dict:
    """Summary row, best/last checkpoints and resume state of an epoch (rank 0); returns the best record."""
    spec, run_dir = run.spec, run.run_dir
    _write_summary(run_dir / SUMMARY_FILE, summary_columns(spec.mode), rows)
    key, higher = selection_metric(spec.mode)
    if is_better(val.get(key, math.nan), best["value"], higher):
        best = {"epoch": epoch, "value": val.get(key, math.nan), "metrics": val}
        path = ckpt.save_weights(run.net, run_dir, "best", run.metadata(epoch, val) | {"best": best})
        run.event("checkpoint_saved", which="best", epoch=epoch, path=str(path), metric=key,
                  value=ckpt.jsonable(best["value"]))
    path = ckpt.save_weights(run.net, run_dir, "last", run.metadata(epoch, val) | {"best": best})
    ckpt.save_state(run_dir, epoch=epoch, optimizer=run.optimizer, scheduler=run.scheduler, best=best,
                    extra={"rows": len(rows)})
    run.event("checkpoint_saved", which="last", epoch=epoch, path=str(path))
    return best


def _run_epochs(run: Run, done: int, best: dict, resume: bool) -> dict:
    spec, run_dir = run.spec, run.run_dir
    rows = _read_summary(run_dir / SUMMARY_FILE, done) if resume else []
    sizes = {split: len(loader.dataset) for split, loader in run.loaders.items()}
    run.event("run_started", spec=spec.to_dict(), device=str(run.device), n_images=sizes,
              world_size=run.ddp.world, resumed_from_epoch=done if resume else None,
              iaa_training_median=ckpt.jsonable(run.iaa_median),
              normalization={"mean": list(run.table.mean), "std": list(run.table.std)})
    log.info("run %s: %s %s on %s, images %s%s", run_dir, spec.mode, spec.backbone, run.device, sizes,
             f", resuming after epoch {done}" if resume else "")
    for epoch in range(done + 1, spec.epochs + 1):
        # Seeding each epoch makes shuffling, augmentation and dropout of epoch e the same
        # whether the run went straight through or was resumed before it.
        seed_everything(spec.seed * 100_003 + epoch * 1_000 + run.ddp.rank)
        sampler = run.loaders["train"].sampler
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        freeze = epoch <= spec.freeze_epochs and _pretrained(spec) and run.ddp.world == 1
        recipe.set_backbone_frozen(run.net, freeze)
        lr = max(group["lr"] for group in run.optimizer.param_groups)  # the heads' rate
        n_batches = len(run.loaders["train"]) if spec.max_steps_per_epoch <= 0 \
            else min(len(run.loaders["train"]), spec.max_steps_per_epoch)
        every = max(1, n_batches // 10)

        def progress(step: int, total: int, epoch: int = epoch, every: int = every) -> None:
            if step % every == 0 or step == total:
                run.event("epoch_progress", epoch=epoch, epochs=spec.epochs, batch=step, batches=total)

        train = train_one_epoch(run.model, run.loaders["train"], run.optimizer, run.loss_fn, run.device,
                                scaler=run.scaler, max_steps=spec.max_steps_per_epoch, on_progress=progress)
        run.scheduler.step()
        train["loss"] = _mean_over_ranks(run.ddp, train["loss"], run.device)
        if not run.ddp.main:
            continue  # validation and checkpoints are rank 0's; the others go on training
        val = validate(run.net, run.loaders["val"], run.loss_fn, run.device, run.amp, _baseline(run),
                       spec.tta)
        rows.append({"epoch": epoch, "lr": repr(lr), "train_loss": repr(train["loss"]),
                     **{f"val_{k}": repr(float(v)) for k, v in val.items()}})
        run.event("epoch_end", epoch=epoch, epochs=spec.epochs, lr=lr, train_loss=train["loss"],
                  val=ckpt.jsonable(val))
        log.info("epoch %d/%d lr %.3g train loss %.4f val %s", epoch, spec.epochs, lr, train["loss"],
                 {k: round(v, 4) for k, v in val.items()})
        best = _save_epoch(run, epoch, val, best, rows)
    return best


def _test(run: Run) -> dict[str, float]:
    """Metrics of the best checkpoint on the test split (empty when there is no test image)."""
    if len(run.loaders["test"].dataset) == 0:
        return {}
    best_path = ckpt.resolve_checkpoint(run.run_dir, "best")
    ckpt.load_weights(run.net, best_path, backbone=run.spec.backbone, mode=run.spec.mode)
    return validate(run.net, run.loaders["test"], run.loss_fn, run.device, run.amp, _baseline(run),
                    run.spec.tta)


def _baseline(run: Run) -> float | None:
    """The training median IAA for runs with an IAA head (``None`` for diagnosis only)."""
    return None if math.isnan(run.iaa_median) else run.iaa_median


def _error(run_dir: Path, message: str, ddp: Dist) -> int:
    log.error("%s", message)
    if ddp.main:
        append_event(run_dir, "error", message=message)
    return 1


def run_training(spec: RunSpec, run_dir: str | Path, *, resume: bool = False) -> int:
    """Train ``spec`` into ``run_dir``; returns the exit code (0 only on success).

    Every failure ends with an ``error`` event carrying a plain message. Under
    ``torchrun`` every rank trains its share and rank 0 alone writes the run directory.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ddp = Dist()
    try:
        spec.validate()
        if spec.fast and resume:
            raise TrainingError("a fast-mode run takes seconds: start it again instead of --resume")
        ddp = init_distributed(spec.device)
        run = setup(spec, run_dir, ddp)
        try:
            # Resume before saving the spec: a refused resume leaves the run directory as it was.
            done, best = _resume(run) if resume else (0, {"epoch": None, "value": None, "metrics": {}})
            if ddp.main:
                save_spec(spec, run_dir / RUN_SPEC_FILE)
            if spec.fast:
                from trainer.fast import run_fast

                best = run_fast(run, _save_epoch)
            else:
                best = _run_epochs(run, done, best, resume)
            agree = _ranks_agree(ddp, run.net, run.device)
            test = _test(run) if ddp.main else {}
        finally:
            for loader in run.loaders.values():
                loader.dataset.close()
    except torch.cuda.OutOfMemoryError:
        return _error(run_dir, f"out of GPU memory with batch size {spec.batch_size}: lower --batch-size "
                               "or use a smaller backbone", ddp)
    except IAAError as exc:
        return _error(run_dir, str(exc), ddp)
    except KeyboardInterrupt:
        _error(run_dir, "training interrupted; --resume continues from the last epoch saved", ddp)
        raise
    except Exception as exc:  # noqa: BLE001 - the GUI needs an event whatever went wrong
        log.exception("unexpected failure")
        return _error(run_dir, f"training failed: {type(exc).__name__}: {exc}", ddp)
    finally:
        if ddp.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    run.event("run_finished", best_epoch=best["epoch"], best_metric=selection_metric(spec.mode)[0],
              best=ckpt.jsonable(best["metrics"]), test=ckpt.jsonable(test), world_size=ddp.world,
              ranks_agree=agree, seconds=round(time.perf_counter() - started, 3),
              iaa_training_median=ckpt.jsonable(run.iaa_median))
    log.info("finished: best epoch %s, test %s", best["epoch"], test)
    return 0
