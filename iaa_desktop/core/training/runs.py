"""Training runs: the run spec and the event schema, shared by the trainer and the GUI.

The trainer (``iaa-train``) and the desktop app never import each other: they
meet in a run directory. The app writes ``run.json`` (a ``RunSpec``) and starts
the trainer; the trainer appends events to ``events.jsonl`` (one JSON object a
line, flushed at once) and the app reads them back with ``read_events`` from
the byte offset where it stopped, so a run can be followed live, replayed after
a restart, or read from a remote machine.

Run directory::

    run.json         the resolved RunSpec
    events.jsonl     run_started, epoch_progress, epoch_end, checkpoint_saved,
                     run_finished, error
    summary.csv      one row per epoch
    train.log        the trainer's log
    checkpoints/     best/last weights (safetensors) with JSON metadata
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from iaa_desktop.core.errors import IAAError

RUN_SPEC_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.csv"
LOG_FILE = "train.log"
CHECKPOINT_DIR = "checkpoints"

MODES = ("regression", "classification", "multitask")
REG_LOSSES = ("smooth_l1", "mse", "l1")
CLS_LOSSES = ("focal", "ce")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step")
TTA_KINDS = ("none", "flip", "flip_rot")
EVENT_KINDS = ("run_started", "epoch_progress", "epoch_end", "checkpoint_saved", "run_finished", "error")


class RunSpecError(IAAError):
    """A run spec that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a training run; defaults follow the IMA++ reference code.

    ``mode``: ``regression`` (IAA), ``classification`` (benign/malignant) or
    ``multitask`` (both; loss = alpha * L_cls + (1 - alpha) * L_reg).
    ``pretrained``: ``none``, ``imagenet`` (timm's hub when reachable, else the offline
    weights of the ``pretrained`` extra, see ``core.training.backbones``; ``timm`` is the older
    name of the same) or a weights file.
    ``reg_loss``: the IAA loss on the bounded [0, 1] output; ``l1`` by default because the
    figure that matters is the MAE (IAA has a long low tail: L1 aims at the conditional median,
    MSE/SmoothL1 at the mean, which the median beats on MAE).
    ``max_steps_per_epoch``: 0 for whole epochs (tests use 1-2 steps).
    ``finetune_from``: the study's fine-tune protocol from that run's best checkpoint.

    The recipe (``trainer.recipe``; README "Fine-tuning recipe" has the measurements behind
    the defaults): ``optimizer`` ``adamw`` or ``sgd`` (``momentum``/``nesterov`` apply to SGD),
    ``schedule`` ``cosine`` or ``step`` (``lr_step``/``lr_gamma``), ``backbone_lr_mult`` (the
    backbone learns at ``lr * backbone_lr_mult``, the heads at ``lr``), ``freeze_epochs``
    (first epochs with a frozen pretrained backbone), ``tta`` at evaluation (``none``,
    ``flip``, ``flip_rot``), ``fast`` (backbone frozen throughout, features computed once,
    heads trained on them: ``trainer.fast``).
    """

    data: str = ""
    mode: str = "regression"
    backbone: str = "resnet18"
    pretrained: str = "none"
    alpha: float = 0.5
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adamw"
    schedule: str = "cosine"
    backbone_lr_mult: float = 1.0
    freeze_epochs: int = 0
    tta: str = "none"
    fast: bool = False
    lr_step: int = 10
    lr_gamma: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.05
    reg_loss: str = "l1"
    cls_loss: str = "focal"
    focal_gamma: float = 2.0
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    max_steps_per_epoch: int = 0
    #: A run directory (or checkpoint) to fine-tune from: its best weights, IAA head frozen,
    #: the classifier trained on this run's data (``trainer.finetune``); "" trains from scratch.
    finetune_from: str = ""

    def validate(self) -> None:
        """Raise ``RunSpecError`` naming the first field that is out of range."""
        checks = [
            (self.mode in MODES, f"mode must be one of {', '.join(MODES)}, not {self.mode!r}"),
            (bool(self.backbone.strip()), "backbone must name a timm model"),
            (0.0 <= self.alpha <= 1.0, f"alpha must lie in [0, 1], not {self.alpha}"),
            (self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, not {self.batch_size}"),
            (self.lr > 0, f"lr must be positive, not {self.lr}"),
            (self.lr_step >= 1, f"lr_step must be at least 1, not {self.lr_step}"),
            (0 < self.lr_gamma <= 1, f"lr_gamma must lie in (0, 1], not {self.lr_gamma}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                                           f"not {self.optimizer!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, "
                                         f"not {self.schedule!r}"),
            (self.backbone_lr_mult > 0, f"backbone_lr_mult must be positive, not {self.backbone_lr_mult}"),
            (self.freeze_epochs >= 0, f"freeze_epochs must be 0 or more, not {self.freeze_epochs}"),
            (self.tta in TTA_KINDS, f"tta must be one of {', '.join(TTA_KINDS)}, not {self.tta!r}"),
            (0 <= self.momentum < 1, f"momentum must lie in [0, 1), not {self.momentum}"),
            (self.weight_decay >= 0, f"weight_decay must be 0 or more, not {self.weight_decay}"),
            (self.reg_loss in REG_LOSSES, f"reg_loss must be one of {', '.join(REG_LOSSES)}"),
            (self.cls_loss in CLS_LOSSES, f"cls_loss must be one of {', '.join(CLS_LOSSES)}"),
            (self.focal_gamma >= 0, f"focal_gamma must be 0 or more, not {self.focal_gamma}"),
            (self.num_workers >= 0, f"num_workers must be 0 or more, not {self.num_workers}"),
            (self.max_steps_per_epoch >= 0, "max_steps_per_epoch must be 0 (whole epochs) or more"),
            (self.device == "auto" or self.device == "cpu" or self.device == "mps"
             or self.device.startswith("cuda"), f"device must be auto, cpu, mps or cuda[:N], "
                                                f"not {self.device!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise RunSpecError(message)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RunSpec:
        """A spec from a mapping; unknown keys and wrong types are refused by name."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise RunSpecError(f"unknown run spec field(s): {', '.join(unknown)}")
        converted = {}
        for name, value in values.items():
            kind = type(getattr(cls(), name))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise RunSpecError(f"run spec field {name!r} must be {kind.__name__}, not {value!r}")
            converted[name] = value
        return cls(**converted)

    def replace(self, **overrides) -> RunSpec:
        return self.from_dict({**self.to_dict(), **overrides})


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_spec(spec: RunSpec, path: str | Path) -> None:
    """Write the spec as JSON, atomically (a crash never leaves half a file)."""
    _write_atomic(Path(path), json.dumps(spec.to_dict(), indent=2) + "\n")


def read_json_object(path: Path, what: str, shape: str) -> dict:
    """The JSON object in ``path``; a ``RunSpecError`` naming the file (and ``what`` it should
    be, ``shape`` saying what kind of object) when it is missing, unreadable or not an object."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunSpecError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunSpecError(f"{path}: not a readable JSON {what} ({exc})") from None
    if not isinstance(values, dict):
        raise RunSpecError(f"{path}: a {what} is {shape}")
    return values


def load_spec(path: str | Path) -> RunSpec:
    """Read and validate a spec file; every failure is a ``RunSpecError`` naming the file."""
    path = Path(path)
    values = read_json_object(path, "run spec", "a JSON object")
    try:
        spec = RunSpec.from_dict(values)
        spec.validate()
    except RunSpecError as exc:
        raise RunSpecError(f"{path}: {exc}") from None
    return spec


def append_event(run_dir: str | Path, kind: str, **fields) -> dict:
    """Append one event to ``events.jsonl`` and flush it to disk; returns the event."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
    event = {"event": kind, "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **fields}
    line = json.dumps(event, allow_nan=False, default=str) + "\n"
    path = Path(run_dir) / EVENTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return event


def read_events(run_dir: str | Path, offset: int = 0) -> tuple[list[dict], int]:
    """Events written after byte ``offset``, and the offset to read from next time.

    A last line without its newline (the writer is mid-write) is left for the
    next call; a malformed complete line is skipped, so a damaged file never
    stops a reader.
    """
    path = Path(run_dir) / EVENTS_FILE
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].splitlines():
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events, offset + end
