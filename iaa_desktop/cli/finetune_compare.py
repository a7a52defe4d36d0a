"""``iaa-desktop finetune-compare DATASET... --diagnosis-only RUN... --multitask RUN... --out DIR``.

Fine-tunes each diagnosis-only and multi-task source checkpoint (one of each per
backbone) on each dataset and seed with ``iaa-train --finetune-from``, and writes
the study's table: test balanced accuracy per dataset and backbone for both, the
difference and the mean difference (``iaa_desktop.core.training.finetune_compare``).
"""

from __future__ import annotations

from pathlib import Path

from iaa_desktop.cli.common import fail, run_with_bar

#: iaa-train flags passed through to every fine-tune run (flag, type).
TRAIN_FLAGS = (("--epochs", int), ("--batch-size", int), ("--lr", float), ("--max-steps", int),
               ("--device", str), ("--threads", int), ("--num-workers", int))


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "finetune-compare",
        help="fine-tune diagnosis-only vs multi-task checkpoints on several datasets and tabulate "
             "balanced accuracy")
    parser.add_argument("datasets", nargs="+", type=Path, metavar="DATASET",
                        help="dataset folders (ISIC 2018/2019, derm7pt, PH2, ...) or exported .h5 "
                             "training sets")
    parser.add_argument("--diagnosis-only", nargs="+", type=Path, required=True, metavar="RUN",
                        help="classification (diagnosis-only) source runs, one per backbone")
    parser.add_argument("--multitask", nargs="+", type=Path, required=True, metavar="RUN",
                        help="multi-task source runs, one per backbone")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="tables, runs, training sets")
    parser.add_argument("--backbones", nargs="+", default=(), metavar="NAME",
                        help="compare these backbones only (default: every backbone with both sources)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="N", help="seeds (default 0)")
    parser.add_argument("--size", type=int, default=224,
                        help="image size when exporting dataset folders (default %(default)s)")
    for flag, kind in TRAIN_FLAGS:
        parser.add_argument(flag, type=kind, help=f"passed to iaa-train {flag}")
    parser.set_defaults(func=run)


def run(args) -> int:
    from iaa_desktop.core.errors import IAAError
    from iaa_desktop.core.training.finetune_compare import iter_finetune_compare

    train_args: list[str] = []
    for flag, _ in TRAIN_FLAGS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            train_args += [flag, str(value)]
    job = iter_finetune_compare(
        args.datasets, {"classification": args.diagnosis_only, "multitask": args.multitask}, args.out,
        seeds=args.seeds, backbones=args.backbones, size=args.size, train_args=train_args)
    try:
        result = run_with_bar("Fine-tuning", job)
    except KeyboardInterrupt:
        return fail("interrupted; finished runs are kept and reused by the next call", 130)
    except IAAError as exc:
        return fail(str(exc), 1)
    failed = result.runs[result.runs["status"] != "finished"]
    print((result.files[2]).read_text(encoding="utf-8"), end="")
    print(f"wrote {', '.join(str(p) for p in result.files)}")
    for row in failed.to_dict("records"):
        print(f"  {row['dataset']} {row['backbone']} {row['kind']} seed {row['seed']}: {row['status']} "
              f"(see {row['run_dir']}/train.log)")
    return 1 if len(failed) == len(result.runs) else 0
