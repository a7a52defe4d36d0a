"""Fast mode (``iaa-train --fast``): backbone frozen, features computed once, heads trained in seconds.

The run folder is the same as a full run's: ``run_started``/``epoch_end``/``checkpoint_saved``/
``run_finished`` events, ``summary.csv`` and ``checkpoints/{best,last}.safetensors`` holding the
whole model (the frozen backbone and the trained heads), so ``iaa-predict`` and the GUI use it
like any other run. Training features are flip-averaged (image and mirror). Validation
features are computed once too (flip-averaged when ``spec.tta`` is not ``none``), so an epoch
costs no backbone pass; the test split goes through the full model (``spec.tta`` applies)
exactly as ``iaa-predict`` will.

Its accuracy cost against full fine-tuning is measured by ``experiments/cv_study.py``
(``fast_mode_heads`` rows; README "Fine-tuning recipe").
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch.utils.data import DataLoader

from trainer import checkpoints as ckpt
from trainer import recipe
from trainer.data import H5ImageDataset, normalize
from trainer.features import head_outputs, train_heads
from trainer.metrics import mode_metrics
from trainer.models import BOUNDED_HEAD

log = logging.getLogger(__name__)


@torch.no_grad()
def loader_features(backbone: torch.nn.Module, loader: DataLoader, device: torch.device,
                    flip: bool = True) -> dict[str, torch.Tensor]:
    """Backbone features (flip-averaged) of every image of ``loader``, with its labels, on the CPU."""
    backbone.eval()
    dataset = loader.dataset
    mean, std = dataset.mean.to(device), dataset.std.to(device)
    parts: dict[str, list[torch.Tensor]] = {"features": [], "iaa": [], "malignant": []}
    for batch in loader:
        images = normalize(batch["image"].to(device), mean, std)
        feats = backbone(images).float()
        if flip:
            feats = 0.5 * (feats + backbone(images.flip(3)).float())
        parts["features"].append(feats.cpu())
        parts["iaa"].append(batch["iaa"])
        parts["malignant"].append(batch["malignant"])
    if not parts["features"]:
        return {"features": torch.zeros(0, 0), "iaa": torch.zeros(0),
                "malignant": torch.zeros(0, dtype=torch.long)}
    return {k: torch.cat(v) for k, v in parts.items()}


def run_fast(run, save_epoch) -> dict:
    """Train ``run``'s heads on frozen features for ``spec.epochs`` epochs; returns the best record.

    ``run`` is a ``trainer.train.Run``; ``save_epoch(run, epoch, val, best, rows)`` writes the
    summary row and checkpoints of an epoch (``trainer.train._save_epoch``).
    """
    from trainer.train import TrainingError  # train imports this module lazily

    spec, net = run.spec, run.net
    if run.ddp.world > 1:
        raise TrainingError("fast mode trains in seconds on one process: run it without torchrun")
    recipe.set_backbone_frozen(net, True)
    data = _split_features(run, "train", flip=True)
    val_data = _split_features(run, "val", flip=spec.tta != "none")
    log.info("fast mode: features %s of the training images, %s of the validation images",
             tuple(data["features"].shape), tuple(val_data["features"].shape))
    net.to("cpu")
    rows: list[dict] = []
    best = {"epoch": None, "value": None, "metrics": {}}
    run.event("run_started", spec=spec.to_dict(), device=str(run.device),
              n_images={split: len(loader.dataset) for split, loader in run.loaders.items()},
              world_size=1, resumed_from_epoch=None)

    def on_epoch(epoch: int, loss: float) -> None:
        nonlocal best
        val = _validate_features(net, val_data, loss_fn)
        lr = spec.lr * recipe.lr_factor(epoch - 1, schedule="cosine", epochs=spec.epochs)
        rows.append({"epoch": epoch, "lr": repr(lr), "train_loss": repr(loss),
                     **{f"val_{k}": repr(float(v)) for k, v in val.items()}})
        run.event("epoch_end", epoch=epoch, epochs=spec.epochs, lr=lr, train_loss=loss,
                  val=ckpt.jsonable(val))
        best = save_epoch(run, epoch, val, best, rows)

    loss_fn = run.loss_fn.to("cpu")
    median = float(np.nanmedian(data["iaa"].numpy())) if net.reg_head is not None and \
        bool(torch.isfinite(data["iaa"]).any()) else math.nan
    reg_lr_mult = recipe.fast_iaa_lr_mult(median) if getattr(net, "iaa_head", "") == BOUNDED_HEAD else 1.0
    train_heads(net, data["features"], data["iaa"], data["malignant"], loss_fn, epochs=spec.epochs,
                lr=spec.lr, weight_decay=spec.weight_decay, batch_size=spec.batch_size, seed=spec.seed,
                reg_lr_mult=reg_lr_mult, on_epoch=on_epoch)
    net.to(run.device)
    run.loss_fn.to(run.device)
    return best


def _split_features(run, split: str, flip: bool) -> dict[str, torch.Tensor]:
    """Features of a split's images as they are (no augmentation)."""
    dataset = run.loaders[split].dataset
    plain = H5ImageDataset(run.table, dataset.indices, augment=False)
    loader = DataLoader(plain, batch_size=max(run.spec.batch_size, 64), shuffle=False)
    try:
        return loader_features(run.net.backbone, loader, run.device, flip=flip)
    finally:
        plain.close()


@torch.no_grad()
def _validate_features(net: torch.nn.Module, data: dict[str, torch.Tensor], loss_fn) -> dict[str, float]:
    """``trainer.train.validate``'s numbers, from precomputed features (heads in eval mode)."""
    if len(data["features"]) == 0:
        from trainer.train import metric_names

        return {name: float("nan") for name in metric_names(net.mode)}
    for head in (net.reg_head, net.cls_head):
        if head is not None:
            head.eval()
    out = head_outputs(net, data["features"])
    loss = float(loss_fn(out, data["iaa"], data["malignant"]))
    iaa = out["iaa"].numpy() if "iaa" in out else np.zeros(0)
    prob = torch.softmax(out["logits"].float(), 1)[:, 1].numpy() if "logits" in out else np.zeros(0)
    metrics = mode_metrics(net.mode, iaa_pred=iaa, iaa_true=data["iaa"].numpy(), prob=prob,
                           labels=data["malignant"].numpy())
    return {"loss": loss, **metrics}
