"""The study's fine-tune protocol: from an IMA++-trained checkpoint to a diagnosis dataset.

``iaa-train --finetune-from RUN_DIR --data TARGET.h5 --out NEW_RUN``:

1. the source run's best checkpoint (``checkpoints/best.safetensors`` + ``best.json``)
   is loaded into a model of its backbone and mode (``classification``, i.e.
   diagnosis-only, or ``multitask``); a different ``--backbone`` is refused;
2. the classification head is replaced (freshly initialised) when the target's
   classes differ from the source's;
3. the IAA (regression) head is frozen: its parameters stop requiring gradients
   and it stays in eval mode, so its BatchNorm statistics do not move either;
4. the classifier is trained with focal loss and class weights from the target's
   training split (``trainer.train.setup``: the loss of a fine-tune run is the
   classification loss whatever the source's mode), and the best epoch's
   checkpoint is evaluated on the target's test split: balanced accuracy, AUROC
   and macro F1 in the ``run_finished`` event's ``test``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from iaa_desktop.core.training.runs import RunSpec, RunSpecError
from trainer import checkpoints as ckpt
from trainer.models import CLASSES, IAAModel, make_head

log = logging.getLogger(__name__)

#: Source modes the protocol starts from (a regression checkpoint has no classifier to fine-tune).
SOURCE_MODES = ("classification", "multitask")
FROZEN_HEAD = "reg_head"


def source_checkpoint(source: str | Path) -> tuple[Path, dict]:
    """(best checkpoint path, its metadata) of a run directory, its ``checkpoints/`` or a file."""
    path = ckpt.resolve_checkpoint(source, "best")
    return path, ckpt.read_metadata(path)


def resolve_finetune_spec(spec: RunSpec, *, explicit_backbone: bool, explicit_mode: bool) -> RunSpec:
    """``spec`` with the source checkpoint's backbone and mode (raises ``RunSpecError``).

    A backbone or mode given explicitly must match the checkpoint's: fine-tuning keeps both.
    """
    try:
        path, meta = source_checkpoint(spec.finetune_from)
    except ckpt.CheckpointError as exc:
        raise RunSpecError(f"--finetune-from: {exc}") from None
    if meta["mode"] not in SOURCE_MODES:
        raise RunSpecError(f"--finetune-from: {path} is a {meta['mode']} checkpoint; fine-tuning trains the "
                           f"classifier, so start from a {' or '.join(SOURCE_MODES)} run")
    if explicit_backbone and spec.backbone != meta["backbone"]:
        raise RunSpecError(f"--finetune-from: {path} was trained with backbone {meta['backbone']}, not "
                           f"{spec.backbone}; fine-tuning keeps the checkpoint's backbone "
                           "(leave out --backbone)")
    if explicit_mode and spec.mode != meta["mode"]:
        raise RunSpecError(f"--finetune-from: {path} is a {meta['mode']} checkpoint, not {spec.mode}; "
                           "fine-tuning keeps the checkpoint's mode (leave out --mode)")
    return spec.replace(backbone=meta["backbone"], mode=meta["mode"], pretrained="none",
                        finetune_from=str(Path(spec.finetune_from).resolve()))


def freeze_iaa_head(model: IAAModel) -> int:
    """Freeze the regression head (no gradients, eval mode); returns the number of frozen tensors."""
    head = getattr(model, FROZEN_HEAD)
    if head is None:
        return 0
    for parameter in head.parameters():
        parameter.requires_grad_(False)
    model.frozen_heads = (FROZEN_HEAD,)
    head.eval()
    return sum(1 for _ in head.parameters())


def replace_classifier(model: IAAModel, n_classes: int) -> nn.Module:
    """A freshly initialised classification head of ``n_classes`` outputs (same hidden layout)."""
    first = model.cls_head[0]
    model.cls_head = make_head(first.in_features, n_classes, first.out_features)
    return model.cls_head


def build_finetune_model(spec: RunSpec, n_classes: int = len(CLASSES)) -> IAAModel:
    """The model a fine-tune run starts from: source weights, new head if needed, IAA head frozen.

    Raises ``CheckpointError`` for a missing or unreadable checkpoint and for one of
    another backbone or mode than ``spec`` (plain messages naming the file).
    """
    path, meta = source_checkpoint(spec.finetune_from)
    if meta["backbone"] != spec.backbone or meta["mode"] != spec.mode:
        raise ckpt.CheckpointError(
            f"{path}: cannot fine-tune from this checkpoint: it was trained as backbone={meta['backbone']}, "
            f"mode={meta['mode']}; this run is backbone={spec.backbone}, mode={spec.mode}")
    source_classes = list(meta.get("classes") or CLASSES)
    model = IAAModel(meta["backbone"], meta["mode"], "none", n_classes=len(source_classes),
                     iaa_head=ckpt.iaa_head_of(meta))
    ckpt.load_weights(model, path, backbone=meta["backbone"], mode=meta["mode"])
    replaced = len(source_classes) != n_classes
    if replaced:
        replace_classifier(model, n_classes)
    frozen = freeze_iaa_head(model)
    log.info("fine-tuning from %s (%s %s, epoch %s): classifier head %s, IAA head %s", path, meta["backbone"],
             meta["mode"], meta.get("epoch"), f"replaced ({len(source_classes)} -> {n_classes} classes)"
             if replaced else "kept", f"frozen ({frozen} tensors)" if frozen else "absent")
    return model
