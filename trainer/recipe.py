"""The fine-tuning recipe: optimiser, per-part learning rates, frozen warm-up, schedule and TTA.

A run spec (``core.training.runs.RunSpec``) chooses:

- ``optimizer``: ``sgd`` (Nesterov momentum, the IMA++ reference) or ``adamw``;
- ``backbone_lr_mult``: the backbone learns at ``lr * backbone_lr_mult`` while the freshly
  initialised heads learn at ``lr`` (a pretrained backbone is already close to what it
  should be; a large step there destroys what ImageNet taught it);
- ``freeze_epochs``: the first epochs train the heads alone, the backbone frozen (no
  gradients, BatchNorm statistics kept), so random heads do not push noise into it;
- ``schedule``: ``step`` (``lr_step``/``lr_gamma``) or ``cosine`` (from ``lr`` to 0 over
  the run, per epoch);
- ``tta``: ``none``, ``flip`` (identity + horizontal + vertical flip) or ``flip_rot``
  (the 8 symmetries of the square) averaged at evaluation.

``experiments/cv_study.py`` measures the alternatives on real images; README says which
defaults that chose and why.
"""

from __future__ import annotations

import math

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine")
TTA_KINDS = ("none", "flip", "flip_rot")
#: Attribute of ``IAAModel`` kept in eval mode (BatchNorm statistics fixed) while frozen.
BACKBONE = "backbone"


def param_groups(model: nn.Module, lr: float, backbone_lr_mult: float, weight_decay: float) -> list[dict]:
    """Backbone and head parameters in separate groups; no weight decay on biases and norms.

    Each group carries ``base_lr`` so a schedule can scale it; parameters that do not
    require gradients (a fine-tune run's frozen IAA head) are left out.
    """
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        part = "backbone" if name.startswith(BACKBONE + ".") else "heads"
        decay = parameter.ndim > 1  # weights of convolutions and linear layers, not biases or norms
        groups.setdefault((part, decay), []).append(parameter)
    out = []
    for (part, decay), params in sorted(groups.items()):
        group_lr = lr * (backbone_lr_mult if part == "backbone" else 1.0)
        out.append(
            {
                "params": params,
                "lr": group_lr,
                "base_lr": group_lr,
                "name": part,
                "weight_decay": weight_decay if decay else 0.0,
            }
        )
    return out


def build_optimizer(
    model: nn.Module,
    *,
    optimizer: str,
    lr: float,
    backbone_lr_mult: float = 1.0,
    weight_decay: float = 1e-4,
    momentum: float = 0.9,
    nesterov: bool = True,
) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW over :func:`param_groups`."""
    groups = param_groups(model, lr, backbone_lr_mult, weight_decay)
    if optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {optimizer!r}")


def lr_factor(epoch: int, *, schedule: str, epochs: int, lr_step: int = 10, lr_gamma: float = 0.1) -> float:
    """The multiplier of the base learning rate in epoch ``epoch`` (0-based).

    ``cosine`` decays from 1 in the first epoch towards 0 after the last (never exactly 0
    inside the run: the last epoch still learns a little).
    """
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, epochs)))
    if schedule == "step":
        return lr_gamma ** (epoch // max(1, lr_step))
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, schedule: str, epochs: int, lr_step: int = 10, lr_gamma: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-epoch scheduler (``step()`` once an epoch) applying :func:`lr_factor` to every group."""
    lr_factor(0, schedule=schedule, epochs=epochs, lr_step=lr_step, lr_gamma=lr_gamma)  # validates
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda epoch: lr_factor(epoch, schedule=schedule, epochs=epochs, lr_step=lr_step, lr_gamma=lr_gamma),
    )


def init_iaa_output(model: nn.Module, value: float) -> None:
    """Make the IAA head start near ``value`` (the training median): last Linear's weights x 0.1, bias set.

    A fresh head otherwise starts at an arbitrary offset and spends its first epochs (and, with
    a low learning rate, much of the run) walking to the centre of the labels. When a
    ``nn.Sigmoid`` follows the last Linear (a head bounded to [0, 1]) the bias is logit(value).
    """
    if hasattr(model, "set_iaa_prior"):  # an IAAModel knows whether its head is bounded
        model.set_iaa_prior(value)
        return
    modules = list(model.reg_head.modules())
    linear_at = max(i for i, m in enumerate(modules) if isinstance(m, nn.Linear))
    last = modules[linear_at]
    bias = value
    if any(isinstance(m, nn.Sigmoid) for m in modules[linear_at + 1:]):
        clipped = min(max(value, 1e-4), 1 - 1e-4)
        bias = math.log(clipped / (1 - clipped))
    with torch.no_grad():
        last.weight.mul_(0.1)
        last.bias.fill_(bias)


#: The fast mode's IAA head learns at ``lr * FAST_IAA_LR_GAIN / (m (1 - m))`` (``m``: training
#: median). Measured on the shared images (Lite0 128-px frozen features, 5 folds x seeds 0 1 2,
#: the CV study's folds; README "Fast mode"): gain 0 (plain lr) 0.91x the constant, 1 0.88x,
#: 2 0.83x, 4 0.82x, 8 0.82x; 4 matches a Linear head clipped to [0, 1] (0.82x).
FAST_IAA_LR_GAIN = 4.0


def fast_iaa_lr_mult(median: float) -> float:
    """How much faster than the other heads the fast mode's bounded IAA head learns.

    The sigmoid scales the output's gradient by m (1 - m) (about 0.12 at IMA++'s median of
    0.86), and AdamW's steps are lr-sized whatever the gradient: at the shared lr the head
    needs ~8x more steps to move the output as far as a linear head would, which the fast
    mode's few epochs on frozen features do not give it. Fine-tuning is not affected (its
    backbone moves the features too), so only the fast mode uses this.
    """
    if not math.isfinite(median):
        return 1.0
    m = min(max(median, 0.02), 0.98)
    return FAST_IAA_LR_GAIN / (m * (1 - m))


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    """Freeze (no gradients, eval-mode BatchNorm) or release the backbone of an ``IAAModel``.

    Uses ``IAAModel.frozen_heads``, the tuple of submodules its ``train()`` keeps in eval
    mode, so a fine-tune run's frozen IAA head stays frozen either way.
    """
    backbone = getattr(model, BACKBONE)
    for parameter in backbone.parameters():
        parameter.requires_grad_(not frozen)
    others = tuple(name for name in getattr(model, "frozen_heads", ()) if name != BACKBONE)
    model.frozen_heads = (*others, BACKBONE) if frozen else others
    if frozen:
        backbone.eval()
    elif model.training:
        backbone.train()


def tta_views(images: torch.Tensor, kind: str) -> list[torch.Tensor]:
    """The augmented copies of an (N, C, H, W) batch that :func:`tta_forward` averages over."""
    if kind == "none":
        return [images]
    if kind == "flip":
        return [images, images.flip(3), images.flip(2)]
    if kind == "flip_rot":
        turns = [torch.rot90(images, k, dims=(2, 3)) for k in range(4)]
        return turns + [view.flip(3) for view in turns]
    raise ValueError(f"tta must be one of {', '.join(TTA_KINDS)}, not {kind!r}")


def tta_forward(model: nn.Module, images: torch.Tensor, kind: str = "none") -> dict[str, torch.Tensor]:
    """``model(images)`` averaged over :func:`tta_views`.

    IAA predictions are averaged; class probabilities are averaged and returned as their
    logarithm under ``logits`` (softmax of it gives the averaged probabilities back).
    """
    views = tta_views(images, kind)
    if len(views) == 1:
        return model(images)
    outputs = [model(view) for view in views]
    out = {}
    if "iaa" in outputs[0]:
        out["iaa"] = torch.stack([o["iaa"].float() for o in outputs]).mean(0)
    if "logits" in outputs[0]:
        prob = torch.stack([torch.softmax(o["logits"].float(), dim=1) for o in outputs]).mean(0)
        out["logits"] = prob.clamp_min(1e-12).log()
    return out
