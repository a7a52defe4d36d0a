"""One cross-validation training run on images held on the device: the trainer's model, loss and recipe.

The images (uint8, 256 px) are loaded once and kept on the device; each batch is augmented
there (random rotation by any angle, flips, zoom 0.8-1, +-10 % brightness/contrast; the
reference's rot90 + flips, generalised) and resized to the run's size. Model
(``trainer.models.build_model``), loss (``trainer.losses.TaskLoss`` with class weights from the
training fold), optimiser, warm-up freeze, schedule and TTA (``trainer.recipe``) are the ones
``iaa-train`` uses; only the data pipeline differs (the H5 loader would feed a GPU at a few
hundred images/s). Mixed precision is bf16 on CUDA, channels_last.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trainer import recipe
from trainer.losses import TaskLoss, class_weights
from trainer.models import build_model
from trainer.pretrained import normalization_for


@dataclass(frozen=True)
class Config:
    """A recipe as the study runs it (names mirror ``RunSpec`` fields)."""

    name: str
    backbone: str = "tf_efficientnet_lite0"
    pretrained: str = "imagenet"
    optimizer: str = "adamw"
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1
    freeze_epochs: int = 2
    schedule: str = "cosine"
    lr_step: int = 10
    weight_decay: float = 0.05
    reg_loss: str = "l1"
    cls_loss: str = "focal"
    alpha: float = 0.5
    epochs: int = 30
    batch_size: int = 64
    #: Start the IAA output at the training median (last layer's bias; weights scaled by 0.1).
    median_init: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Images:
    """All images of the study on one device: uint8 (N, 3, H, W), IAA (NaN unknown), labels."""

    pixels: torch.Tensor
    iaa: torch.Tensor
    malignant: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.pixels.device


def _normalise(batch: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (batch - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def augment(pixels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, size, size) in [0, 1], randomly rotated, flipped, zoomed."""
    n, device = pixels.shape[0], pixels.device
    rand = torch.rand(n, 5, generator=generator, device=device)
    angle = rand[:, 0] * 2 * math.pi
    flip = torch.where(rand[:, 1] < 0.5, -1.0, 1.0)
    scale = 0.8 + 0.2 * rand[:, 2]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, torch.zeros_like(cos)], 1),
            torch.stack([sin * flip, cos, torch.zeros_like(cos)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, (n, 3, size, size), align_corners=False)
    out = F.grid_sample(
        pixels.float().div_(255.0), grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    brightness = (0.9 + 0.2 * rand[:, 3]).view(n, 1, 1, 1)
    contrast = (0.9 + 0.2 * rand[:, 4]).view(n, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * contrast + mean * brightness).clamp_(0.0, 1.0)


def resize(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, size, size) in [0, 1] (bilinear, antialiased)."""
    out = pixels.float().div_(255.0)
    if out.shape[-1] != size:
        out = F.interpolate(out, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def train_and_predict(
    config: Config,
    mode: str,
    images: Images,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    *,
    seed: int,
    size: int,
    tta_kinds: tuple[str, ...] = ("none",),
) -> dict:
    """Train ``config`` in ``mode`` on ``train_rows`` and predict ``test_rows`` with each TTA kind.

    Returns ``{"seconds", "train_images", "predictions": {kind: {"iaa": ..., "prob": ...}}}``
    (IAA predictions clipped to [0, 1], as a bounded head gives; NaN arrays where the mode has
    no such output).
    """
    started = time.perf_counter()
    device = images.device
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    iaa_all = images.iaa
    if mode == "regression":
        train_rows = train_rows[
            ~torch.isnan(iaa_all[torch.as_tensor(train_rows, device=device)]).cpu().numpy()
        ]
    pretrained = config.pretrained not in ("", "none")
    mean, std = (torch.tensor(v, device=device) for v in normalization_for(config.backbone, pretrained))
    model = build_model(config.backbone, mode, config.pretrained).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    train_t = torch.as_tensor(train_rows, device=device)
    iaa_train = iaa_all[train_t]
    if config.median_init and model.reg_head is not None:
        recipe.init_iaa_output(model, float(torch.nanmedian(iaa_train)))
    weights = class_weights(images.malignant[train_t].cpu().numpy())
    loss_fn = TaskLoss(
        mode, reg_loss=config.reg_loss, cls_loss=config.cls_loss, alpha=config.alpha, weight=weights
    ).to(device)
    optimizer = recipe.build_optimizer(
        model,
        optimizer=config.optimizer,
        lr=config.lr,
        backbone_lr_mult=config.backbone_lr_mult,
        weight_decay=config.weight_decay,
    )
    scheduler = recipe.build_scheduler(
        optimizer, schedule=config.schedule, epochs=config.epochs, lr_step=config.lr_step
    )
    n = len(train_rows)
    batch = min(config.batch_size, n)
    for epoch in range(config.epochs):
        recipe.set_backbone_frozen(model, pretrained and epoch < config.freeze_epochs)
        model.train()
        order = train_t[torch.randperm(n, generator=generator, device=device)]
        for start in range(0, n - batch + 1, batch):  # drop_last: BatchNorm needs > 1 sample
            rows = order[start : start + batch]
            x = _normalise(augment(images.pixels[rows], size, generator), mean, std)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device):
                loss = loss_fn(model(x), iaa_all[rows], images.malignant[rows])
            if not bool(torch.isfinite(loss.detach())):
                raise RuntimeError(f"{config.name} {mode}: loss {loss.item()} in epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    model.eval()
    predictions = {}
    test_t = torch.as_tensor(test_rows, device=device)
    with torch.no_grad():
        for kind in tta_kinds:
            iaa_parts, prob_parts = [], []
            for start in range(0, len(test_rows), 256):
                x = _normalise(resize(images.pixels[test_t[start : start + 256]], size), mean, std)
                if device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with _autocast(device):
                    out = recipe.tta_forward(model, x, kind)
                if "iaa" in out:
                    iaa_parts.append(out["iaa"].float().clamp(0.0, 1.0).cpu())
                if "logits" in out:
                    prob_parts.append(torch.softmax(out["logits"].float(), 1)[:, 1].cpu())
            nan = np.full(len(test_rows), np.nan)
            predictions[kind] = {
                "iaa": torch.cat(iaa_parts).numpy() if iaa_parts else nan,
                "prob": torch.cat(prob_parts).numpy() if prob_parts else nan,
            }
    return {"seconds": time.perf_counter() - started, "train_images": n, "predictions": predictions}
