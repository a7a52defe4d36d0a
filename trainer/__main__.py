"""``iaa-train [RUN_SPEC] --data SET.h5 --out RUN_DIR [flags]`` / ``python -m trainer ...``.

Flags override the spec file. ``--resume`` continues ``RUN_DIR`` from its last
checkpoint with the spec saved there (flags still override, e.g. ``--epochs``).
Exit codes: 0 success, 1 the run failed (see the ``error`` event), 2 bad arguments,
130 interrupted (Ctrl-C, SIGTERM, or SIGUSR2 before a Slurm time limit; an ``error`` event
says so and ``--resume`` goes on).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from iaa_desktop.core.training.run_records import remove_pid_file, write_pid_file
from iaa_desktop.core.training.runs import (
    LOG_FILE,
    REG_LOSSES,
    RUN_SPEC_FILE,
    RunSpec,
    RunSpecError,
    append_event,
    load_spec,
)

# flag -> RunSpec field
OVERRIDES = {"data": "data", "mode": "mode", "backbone": "backbone", "pretrained": "pretrained",
             "epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "alpha": "alpha", "seed": "seed",
             "device": "device", "max_steps": "max_steps_per_epoch", "num_workers": "num_workers",
             "finetune_from": "finetune_from", "reg_loss": "reg_loss", "optimizer": "optimizer",
             "schedule": "schedule", "backbone_lr_mult": "backbone_lr_mult", "freeze_epochs": "freeze_epochs",
             "tta": "tta", "weight_decay": "weight_decay", "fast": "fast"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iaa-train", description="Train the IAA regressor or the multi-task diagnosis + IAA classifier.")
    parser.add_argument("spec", nargs="?", help="run spec JSON (a core.runs.RunSpec); flags override it")
    parser.add_argument("--data", help="training set .h5 (iaa-desktop export-training-set)")
    parser.add_argument("--out", required=True,
                        help="run directory (events.jsonl, summary.csv, checkpoints/)")
    parser.add_argument("--mode", choices=("regression", "classification", "multitask"))
    parser.add_argument("--backbone", help="timm model name, e.g. resnet18, efficientnet_b1, mobilenetv2_100")
    parser.add_argument("--pretrained", metavar="none|imagenet|FILE",
                        help="none (random initialisation); imagenet: ImageNet weights from timm's hub "
                             "when reachable, else offline from the 'pretrained' extra "
                             "(tf_efficientnet_lite0/1/2; inputs normalised as the weights expect); "
                             "timm: the same as imagenet; "
                             "or a local weights file (.safetensors/.pth)")
    parser.add_argument("--reg-loss", dest="reg_loss", choices=REG_LOSSES,
                        help="IAA loss on the bounded [0, 1] output (default l1: the best epoch is the one "
                             "with the lowest validation MAE)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, dest="batch_size")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--alpha", type=float, help="multitask weight of the classification loss")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="auto | cpu | cuda[:N] | mps")
    parser.add_argument("--max-steps", type=int, dest="max_steps", help="batches per epoch (0: all)")
    parser.add_argument("--num-workers", type=int, dest="num_workers")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 when sharing cores with a GUI)")
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    recipe = parser.add_argument_group("recipe (README: Fine-tuning recipe)")
    recipe.add_argument("--optimizer", choices=("adamw", "sgd"))
    recipe.add_argument("--schedule", choices=("cosine", "step"),
                        help="cosine to 0, or step (lr_step/lr_gamma)")
    recipe.add_argument("--weight-decay", type=float, dest="weight_decay")
    recipe.add_argument("--backbone-lr-mult", type=float, dest="backbone_lr_mult",
                        help="the backbone learns at lr x this, the heads at lr")
    recipe.add_argument("--freeze-epochs", type=int, dest="freeze_epochs",
                        help="first epochs train the heads alone (pretrained backbone frozen)")
    recipe.add_argument("--tta", choices=("none", "flip", "flip_rot"),
                        help="test-time augmentation at evaluation")
    recipe.add_argument("--fast", action="store_const", const=True, default=None,
                        help="fast mode: backbone frozen, features computed once, heads trained in seconds")
    parser.add_argument("--finetune-from", dest="finetune_from", metavar="SOURCE_RUN",
                        help="fine-tune from that run's best checkpoint (its backbone and mode; IAA head "
                             "frozen, classifier trained with focal loss)")
    return parser


def resolve_spec(args: argparse.Namespace) -> RunSpec:
    """The spec file (or the run's saved spec on --resume, or the defaults), overridden by flags."""
    saved = Path(args.out) / RUN_SPEC_FILE
    if args.spec:
        spec = load_spec(args.spec)
    elif args.resume and saved.is_file():
        spec = load_spec(saved)
    else:
        spec = RunSpec()
    overrides = {field: getattr(args, flag) for flag, field in OVERRIDES.items()
                 if getattr(args, flag) is not None}
    spec = spec.replace(**overrides)
    if not spec.data:
        raise RunSpecError("no training set: give --data SET.h5 or a spec with \"data\"")
    spec = spec.replace(data=str(Path(spec.data).resolve()))
    spec.validate()
    if spec.finetune_from:
        from trainer.finetune import resolve_finetune_spec  # imports torch: only for fine-tune runs

        in_file = _spec_file_keys(args.spec)
        spec = resolve_finetune_spec(
            spec, explicit_backbone=args.backbone is not None or "backbone" in in_file,
            explicit_mode=args.mode is not None or "mode" in in_file)
    return spec


def _spec_file_keys(path: str | None) -> set[str]:
    """The fields a spec file sets itself (to tell a chosen backbone from the default)."""
    if not path:
        return set()
    return set(json.loads(Path(path).read_text(encoding="utf-8")))


def configure_logging(run_dir: Path) -> list[logging.Handler]:
    """Log to ``RUN_DIR/train.log`` and stderr; returns the handlers (removed when the run ends).

    Under torchrun only rank 0 writes the log file; the other ranks print warnings and errors.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    formatter = logging.Formatter(f"%(asctime)s %(levelname)s {'' if rank == 0 else f'rank{rank} '}"
                                  "%(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if rank == 0:
        handlers.append(logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8"))
    else:
        handlers[0].setLevel(logging.WARNING)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return handlers


#: Signals that stop a run gracefully (SIGUSR2: Slurm's warning before a time limit or preemption).
_STOP_SIGNALS = (signal.SIGTERM,) + ((signal.SIGUSR2,) if hasattr(signal, "SIGUSR2") else ())


def _interrupt(signum, frame) -> None:
    # SIGTERM (the GUI's stop button) ends the run like Ctrl-C: with an error event. Later stop
    # signals are ignored from here on: under Slurm the trainer gets SIGUSR2 and, a moment later,
    # SIGTERM from the job that stops it, and a second interrupt would cut the error event short.
    for stop in _STOP_SIGNALS:
        signal.signal(stop, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_dir = Path(args.out)
    try:
        spec = resolve_spec(args)
    except RunSpecError as exc:
        print(f"iaa-train: {exc}", file=sys.stderr)
        append_event(run_dir, "error", message=str(exc))
        return 2
    handlers = configure_logging(run_dir)
    # Rank 0 only (torchrun starts one process a GPU): the runs panel then sees a run started from
    # the command line as running, and can cancel it.
    own_pid = int(os.environ.get("RANK", "0")) == 0
    if own_pid:
        write_pid_file(run_dir)
    try:
        import torch  # after argument checks: importing torch takes seconds

        from trainer.train import run_training

        if args.threads:
            torch.set_num_threads(args.threads)
        # SIGUSR2 is Slurm's warning before a time limit or preemption (submitit's --signal): stop
        # like SIGTERM, with every finished epoch saved, so the requeued job resumes from it.
        previous = {signum: signal.signal(signum, _interrupt) for signum in _STOP_SIGNALS}
        try:
            return run_training(spec, run_dir, resume=args.resume)
        except KeyboardInterrupt:
            return 130
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    finally:
        if own_pid:
            remove_pid_file(run_dir)
        for handler in handlers:
            logging.getLogger().removeHandler(handler)
            handler.close()


if __name__ == "__main__":
    raise SystemExit(main())
