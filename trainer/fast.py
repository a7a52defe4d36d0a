"""Fast mode (``iaa-train --fast``): backbone frozen, features computed once, heads trained in seconds.

The run folder is the same as a full run's: ``run_started``/``epoch_end``/``checkpoint_saved``/
``run_finished`` events, ``summary.csv`` and ``checkpoints/{best,last}.safetensors`` holding the
whole model (the frozen backbone and the trained heads), so ``iaa-predict`` and the GUI use it
like any other run. Training features are flip-averaged (image and mirror); validation and
test go through the full model (``spec.tta`` applies) exactly as ``iaa-predict`` will.

Its accuracy cost against full fine-tuning is measured by ``experiments/cv_study.py``
(``fast_mode_heads`` rows; README "Fine-tuning recipe").
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import DataLoader

from trainer import recipe
from trainer.data import H5ImageDataset, normalize
from trainer.features import train_heads

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
    return {k: torch.cat(v) for k, v in parts.items()}


def run_fast(run, save_epoch) -> dict:
    """Train ``run``'s heads on frozen features for ``spec.epochs`` epochs; returns the best record.

    ``run`` is a ``trainer.train.Run``; ``save_epoch(run, epoch, val, best, rows)`` writes the
    summary row and checkpoints of an epoch (``trainer.train._save_epoch``).
    """
    from trainer.train import TrainingError, validate  # train imports this module lazily

    spec, net = run.spec, run.net
    if run.ddp.world > 1:
        raise TrainingError("fast mode trains in seconds on one process: run it without torchrun")
    recipe.set_backbone_frozen(net, True)
    train_set = run.loaders["train"].dataset
    plain = H5ImageDataset(run.table, train_set.indices, augment=False)  # features of the images as they are
    loader = DataLoader(plain, batch_size=max(spec.batch_size, 64), shuffle=False)
    try:
        data = loader_features(net.backbone, loader, run.device)
    finally:
        plain.close()
    log.info("fast mode: features %s of %d training images", tuple(data["features"].shape), len(plain))
    net.to("cpu")
    rows: list[dict] = []
    best = {"epoch": None, "value": None, "metrics": {}}
    run.event("run_started", spec=spec.to_dict(), device=str(run.device),
              n_images={split: len(loader.dataset) for split, loader in run.loaders.items()},
              world_size=1, resumed_from_epoch=None)

    def on_epoch(epoch: int, loss: float) -> None:
        nonlocal best
        net.to(run.device)
        val = validate(net, run.loaders["val"], run.loss_fn, run.device, run.amp, spec.tta)
        lr = spec.lr * recipe.lr_factor(epoch - 1, schedule="cosine", epochs=spec.epochs)
        rows.append({"epoch": epoch, "lr": repr(lr), "train_loss": repr(loss),
                     **{f"val_{k}": repr(float(v)) for k, v in val.items()}})
        run.event("epoch_end", epoch=epoch, epochs=spec.epochs, lr=lr, train_loss=loss,
                  val={k: (None if not np.isfinite(v) else float(v)) for k, v in val.items()})
        best = save_epoch(run, epoch, val, best, rows)
        net.to("cpu")

    loss_fn = run.loss_fn.to("cpu")
    train_heads(net, data["features"], data["iaa"], data["malignant"], loss_fn, epochs=spec.epochs,
                lr=spec.lr, weight_decay=spec.weight_decay, batch_size=spec.batch_size, seed=spec.seed,
                on_epoch=on_epoch)
    net.to(run.device)
    run.loss_fn.to(run.device)
    return best

