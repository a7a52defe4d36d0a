"""Frozen-backbone features and what trains on them in seconds: the fast mode and the linear probe.

- :func:`extract_features`: global-pooled backbone features of uint8 images, computed once,
  optionally averaged with the horizontally flipped image's (flip-averaged features);
- :func:`train_heads` (the fast mode): the model's own heads (``trainer.models.make_head``)
  trained on those features with the run's loss, so the result is an ordinary ``IAAModel``
  that ``iaa-predict`` can load;
- :func:`fit_ridge` / :func:`fit_logistic` (the linear probe, the floor a fine-tuning recipe
  must beat): ridge regression with the intercept shifted to the training residuals' median
  (IAA has a long low tail, so the median minimises absolute error), and class-balanced
  L2-regularised logistic regression. numpy/torch only, no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from trainer.losses import TaskLoss


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    images: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    size: int | None = None,
    flip: bool = True,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    amp: bool = False,
) -> torch.Tensor:
    """(N, F) float32 features (on the CPU) of uint8 (N, 3, H, W) ``images``.

    Images are resized to ``size`` (bilinear, antialiased) when given and normalised with
    ``mean``/``std``; with ``flip`` the features of the image and of its mirror are averaged.
    """
    backbone.eval()
    device = torch.device(device)
    mean, std = mean.to(device).view(1, 3, 1, 1), std.to(device).view(1, 3, 1, 1)
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device).float().div_(255.0)
        if size is not None and batch.shape[-1] != size:
            batch = nn.functional.interpolate(
                batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        batch = (batch - mean) / std
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            feats = backbone(batch).float()
            if flip:
                feats = 0.5 * (feats + backbone(batch.flip(3)).float())
        parts.append(feats.cpu())
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def train_heads(
    model: nn.Module,
    features: torch.Tensor,
    iaa: torch.Tensor,
    malignant: torch.Tensor,
    loss_fn: TaskLoss,
    *,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
    feature_noise: float = 0.0,
    reg_lr_mult: float = 1.0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train the heads of an ``IAAModel`` (AdamW, cosine) on precomputed backbone features.

    The backbone is not touched. ``feature_noise`` adds Gaussian noise of that many feature
    standard deviations while training (a cheap stand-in for image augmentation). Returns
    the mean training loss of each epoch; ``on_epoch(epoch, loss)`` is called after each.
    """
    heads = [h for h in (model.reg_head, model.cls_head) if h is not None]
    groups = [{"params": [p for p in h.parameters() if p.requires_grad],
               "lr": lr * (reg_lr_mult if h is model.reg_head else 1.0)} for h in heads]
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    generator = torch.Generator().manual_seed(seed)
    scale = features.std(0, keepdim=True) if feature_noise > 0 else None
    n = len(features)
    drop_last = n > batch_size  # BatchNorm1d cannot train on a lone sample
    losses = []
    for epoch in range(1, epochs + 1):
        for head in heads:
            head.train()
        order = torch.randperm(n, generator=generator)
        epoch_losses = []
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            if len(rows) < 2 or (drop_last and len(rows) < batch_size):
                continue
            x = features[rows]
            if scale is not None:
                x = x + feature_noise * scale * torch.randn(x.shape, generator=generator)
            out = head_outputs(model, x)
            loss = loss_fn(out, iaa[rows], malignant[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
        scheduler.step()
        losses.append(float(np.mean(epoch_losses)) if epoch_losses else float("nan"))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    for head in heads:
        head.eval()
    return losses


def head_outputs(model: nn.Module, features: torch.Tensor) -> dict[str, torch.Tensor]:
    """What ``IAAModel.forward`` returns, from backbone features instead of images."""
    out = {}
    if model.reg_head is not None:
        out["iaa"] = model.reg_head(features).squeeze(1)
    if model.cls_head is not None:
        out["logits"] = model.cls_head(features)
    return out


def _standardise(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(0)
    std = train.std(0)
    return mean, np.where(std > 0, std, 1.0)


def fit_ridge(x: np.ndarray, y: np.ndarray, l2: float = 1000.0) -> Callable[[np.ndarray], np.ndarray]:
    """Ridge regression on standardised features; the intercept is the residuals' median.

    Returns a predictor ``f(x_new) -> y_hat``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean, std = _standardise(x)
    z = (x - mean) / std
    centre = y.mean()
    weights = np.linalg.solve(z.T @ z + l2 * np.eye(z.shape[1]), z.T @ (y - centre))
    intercept = float(np.median(y - z @ weights))

    def predict(x_new: np.ndarray) -> np.ndarray:
        return ((np.asarray(x_new, dtype=np.float64) - mean) / std) @ weights + intercept

    return predict


def fit_logistic(
    x: np.ndarray, labels: np.ndarray, l2: float = 1.0, steps: int = 200
) -> Callable[[np.ndarray], np.ndarray]:
    """Class-balanced L2 logistic regression (L-BFGS) on standardised features.

    ``l2`` multiplies half the squared weight norm, added to the mean weighted log loss.
    Returns ``f(x_new) -> P(label 1)``.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    mean, std = _standardise(x)
    z = torch.from_numpy((x - mean) / std)
    y = torch.from_numpy(labels.astype(np.float64))
    counts = np.bincount(labels.astype(int), minlength=2).astype(np.float64)
    class_weight = len(labels) / (2.0 * np.maximum(counts, 1.0))
    w_sample = torch.from_numpy(class_weight[labels.astype(int)])
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = z @ w + b
        loss = (w_sample * nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")).sum()
        loss = loss / w_sample.sum() + 0.5 * l2 * (w @ w) / len(y)
        loss.backward()
        return loss

    optimizer.step(closure)
    weights, bias = w.detach().numpy(), float(b.detach())

    def predict(x_new: np.ndarray) -> np.ndarray:
        logits = ((np.asarray(x_new, dtype=np.float64) - mean) / std) @ weights + bias
        return 1.0 / (1.0 + np.exp(-logits))

    return predict
