"""``iaa-desktop demo [--out DIR]``: write the synthetic demo dataset."""

from __future__ import annotations

from pathlib import Path

from iaa_desktop.cli.common import fail, run_with_bar
from iaa_desktop.core.errors import IAAError


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "demo",
        help="write the synthetic demo dataset (IMA++ layout) to DIR, or print where it is cached",
    )
    parser.add_argument("--out", type=Path, help="directory to write it to (must not exist or be empty)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--lesions", type=int, default=60, help="number of lesions (default 60)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from iaa_desktop.core.dataset.demo import demo_dataset_dir, iter_write_demo

    try:
        if args.out is None:
            if args.lesions != 60:
                return fail("--lesions needs --out (the cached demo always has 60 lesions)")
            path = demo_dataset_dir(seed=args.seed)
        else:
            path = run_with_bar("Writing demo", iter_write_demo(args.out, args.seed, args.lesions))
    except IAAError as exc:
        return fail(str(exc))
    print(path)
    return 0
