"""timm backbones with the reference's heads for IAA regression, diagnosis, or both.

The IAA head is bounded: a sigmoid after the reference's last Linear keeps every
predicted IAA in [0, 1] (a Dice mean cannot leave it). Checkpoints written before the
bound (no ``iaa_head`` in their metadata) had an unbounded Linear output; they still load
as ``iaa_head="linear"`` and ``trainer.predict`` clips and flags their predictions.
"""

from __future__ import annotations

import math
from pathlib import Path

import timm
import torch
from torch import nn

from iaa_desktop.core.errors import IAAError
from trainer.pretrained import PretrainedWeightsError, create_imagenet_model

HEAD_HIDDEN = 256
CLASSES = ("benign", "malignant")
#: IAA head output: ``sigmoid`` (bounded to [0, 1], the default) or ``linear`` (checkpoints
#: written before the bound; their predictions are clipped when read, see ``trainer.predict``).
BOUNDED_HEAD, LEGACY_HEAD = "sigmoid", "linear"
IAA_HEADS = (BOUNDED_HEAD, LEGACY_HEAD)


class ModelError(IAAError):
    """A model cannot be built: unknown backbone, or pretrained weights that cannot be had."""


def make_head(in_features: int, out_features: int, hidden: int = HEAD_HIDDEN) -> nn.Sequential:
    """Linear -> BatchNorm1d -> ReLU -> Dropout(0.5) -> Linear, as the IMA++ reference code."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(hidden, out_features),
    )


def _create_backbone(name: str, pretrained: str) -> nn.Module:
    if not timm.is_model(name):
        raise ModelError(f"unknown timm backbone {name!r}")
    if pretrained in ("imagenet", "timm"):
        # "timm" is the older name of the same choice: the hub when reachable, else the
        # packaged offline weights (trainer.pretrained).
        try:
            return create_imagenet_model(name, num_classes=0)
        except PretrainedWeightsError as exc:
            raise ModelError(str(exc)) from None
    backbone = timm.create_model(name, pretrained=False, num_classes=0)
    if pretrained not in ("", "none"):
        load_backbone_weights(backbone, pretrained)
    return backbone


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError(f"{path}: pretrained weights file does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - safetensors and torch raise assorted errors
        raise ModelError(f"{path}: cannot read the weights ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a state dict of tensors")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a local weights file (safetensors, or a torch file read with ``weights_only``).

    Keys may carry a ``backbone.`` or ``module.`` prefix; tensors of other shapes
    (a classifier for another number of classes) are left out.
    """
    path = Path(path)
    own = backbone.state_dict()
    matched = {}
    for key, value in _read_weights(path).items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        if key in own and own[key].shape == value.shape:
            matched[key] = value
    if not matched:
        raise ModelError(f"{path}: no tensor of these weights fits the backbone")
    backbone.load_state_dict(matched, strict=False)


class IAAModel(nn.Module):
    """A timm feature extractor and one or two heads; ``forward`` returns a dict.

    ``iaa``: predicted IAA (N,), present for ``regression`` and ``multitask``, in [0, 1]
    with the default ``iaa_head="sigmoid"`` (Grad-CAM uses the head's value before the sigmoid);
    ``logits``: benign/malignant logits (N, 2), for ``classification`` and ``multitask``.
    """

    def __init__(self, backbone: str, mode: str, pretrained: str = "none",
                 n_classes: int = len(CLASSES), iaa_head: str = BOUNDED_HEAD) -> None:
        super().__init__()
        if iaa_head not in IAA_HEADS:
            raise ModelError(f"unknown IAA head {iaa_head!r}; expected one of {', '.join(IAA_HEADS)}")
        self.backbone_name = backbone
        self.mode = mode
        self.iaa_head = iaa_head
        self.backbone = _create_backbone(backbone, pretrained)
        features = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        self.reg_head = make_head(features, 1) if mode in ("regression", "multitask") else None
        self.cls_head = make_head(features, n_classes) if mode in ("classification", "multitask") else None
        #: Heads kept in eval mode by ``train()`` (fine-tuning freezes the IAA head, BatchNorm included).
        self.frozen_heads: tuple[str, ...] = ()

    def train(self, mode: bool = True) -> IAAModel:
        super().train(mode)
        for name in self.frozen_heads:
            getattr(self, name).eval()
        return self

    def set_iaa_prior(self, value: float) -> None:
        """Start the IAA head at ``value`` (e.g. the training median): its last bias, zero weights.

        A bounded head that starts at the constant baseline only has to learn what beats it.
        """
        if self.reg_head is None or not math.isfinite(value):
            return
        last = self.reg_head[-1]
        p = min(max(float(value), 0.01), 0.99)
        with torch.no_grad():
            last.bias.fill_(math.log(p / (1 - p)) if self.iaa_head == BOUNDED_HEAD else p)
            last.weight.mul_(0.1)  # small, not zero: the features still reach the output

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        out = {}
        if self.reg_head is not None:
            raw = self.reg_head(features).squeeze(1)
            out["iaa"] = torch.sigmoid(raw) if self.iaa_head == BOUNDED_HEAD else raw
        if self.cls_head is not None:
            out["logits"] = self.cls_head(features)
        return out


def build_model(backbone: str, mode: str, pretrained: str = "none",
                iaa_head: str = BOUNDED_HEAD) -> IAAModel:
    """The model of a run spec (see ``IAAModel``)."""
    return IAAModel(backbone, mode, pretrained, iaa_head=iaa_head)
