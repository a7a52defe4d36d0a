"""timm backbones with the reference's heads for IAA regression, diagnosis, or both."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from iaa_desktop.core.errors import IAAError
from trainer.pretrained import PretrainedWeightsError, create_imagenet_model

HEAD_HIDDEN = 256
CLASSES = ("benign", "malignant")


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

    ``iaa``: predicted IAA (N,), present for ``regression`` and ``multitask``;
    ``logits``: benign/malignant logits (N, 2), for ``classification`` and ``multitask``.
    """

    def __init__(self, backbone: str, mode: str, pretrained: str = "none",
                 n_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.mode = mode
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

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        out = {}
        if self.reg_head is not None:
            out["iaa"] = self.reg_head(features).squeeze(1)
        if self.cls_head is not None:
            out["logits"] = self.cls_head(features)
        return out


def build_model(backbone: str, mode: str, pretrained: str = "none") -> IAAModel:
    """The model of a run spec (see ``IAAModel``)."""
    return IAAModel(backbone, mode, pretrained)
