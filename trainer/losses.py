"""Losses: masked IAA regression, focal loss with class weights, and their multi-task blend."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_REGRESSION = {"smooth_l1": F.smooth_l1_loss, "mse": F.mse_loss, "l1": F.l1_loss}


def class_weights(labels: np.ndarray, n_classes: int = 2) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k * count)`` of known labels (-1 ignored).

    ``k`` counts the classes present; an absent class gets 1 (it never enters the loss).
    """
    labels = np.asarray(labels)
    labels = labels[labels >= 0]
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.ones(n_classes)
    present = counts > 0
    if labels.size:
        weights[present] = labels.size / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def masked_regression_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "smooth_l1") -> torch.Tensor:
    """Mean regression loss over the targets that are known (NaN = unknown); 0 when none is."""
    known = ~torch.isnan(target)
    if not bool(known.any()):
        return pred.sum() * 0.0
    return _REGRESSION[kind](pred[known].float(), target[known].float())


class FocalLoss(nn.Module):
    """Focal loss (Lin et al.) with per-class weights; labels -1 are masked out.

    The focal loss is the plain mean over known labels of ``-w[y] (1 - p_y)^gamma log p_y``;
    ``gamma = 0`` is torch's weighted cross-entropy (the mean weighted by ``w[y]``).
    """

    def __init__(self, weight: torch.Tensor | None = None, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else torch.ones(2))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        known = labels >= 0
        if not bool(known.any()):
            return logits.sum() * 0.0
        logits, labels = logits[known].float(), labels[known]
        weight = self.weight.to(logits.device)
        if self.gamma == 0:
            return F.cross_entropy(logits, labels, weight=weight)
        log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
        focal = (1.0 - log_p.exp()).clamp(min=0.0) ** self.gamma
        return (-weight[labels] * focal * log_p).mean()


class TaskLoss(nn.Module):
    """The loss of a mode: regression, classification, or ``alpha * L_cls + (1 - alpha) * L_reg``."""

    def __init__(self, mode: str, *, reg_loss: str = "smooth_l1", cls_loss: str = "focal",
                 focal_gamma: float = 2.0, alpha: float = 0.5, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.mode = mode
        self.reg_loss = reg_loss
        self.alpha = alpha
        self.cls = FocalLoss(weight, focal_gamma if cls_loss == "focal" else 0.0)

    def forward(self, outputs: dict[str, torch.Tensor], iaa: torch.Tensor,
                malignant: torch.Tensor) -> torch.Tensor:
        if self.mode == "regression":
            return masked_regression_loss(outputs["iaa"], iaa, self.reg_loss)
        if self.mode == "classification":
            return self.cls(outputs["logits"], malignant)
        return (self.alpha * self.cls(outputs["logits"], malignant)
                + (1.0 - self.alpha) * masked_regression_loss(outputs["iaa"], iaa, self.reg_loss))
