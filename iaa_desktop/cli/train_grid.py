"""``iaa-train-grid GRID.json --slurm PARTITION --workspace DIR`` (also ``iaa-desktop train-grid``).

Submits a training grid (a run spec with ``seeds``/``backbones``/``alphas`` lists,
see ``core.training.slurm_grid``) to Slurm as one job array and prints the job
ids; ``--status GRID`` and ``--cancel GRID`` follow or stop it (GRID: the grid
folder printed at submission, or its ``grid.json``; ``--cancel --run NAME`` stops
one run of it). ``--json`` prints the grid record, the status rows or the
cancelled job ids as one JSON object instead: the GUI reads that when it submits
through a login node over SSH (``core.training.slurm_login``).

Exit codes: 0 submitted / all runs finished / cancelled; 1 Slurm refused or a run
failed (the message says what Slurm or the trainer said); 2 bad arguments or grid
file; 3 (``--status``) runs still queued or running.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from iaa_desktop.core.training.runs import RunSpecError
from iaa_desktop.core.training.slurm import (
    SlurmError,
    SlurmOptions,
    cancel_runs,
    grid_status,
    load_grid_record,
    submit_grid,
)
from iaa_desktop.core.training.slurm_grid import load_grid

STILL_GOING = ("queued", "running", "pending")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", type=Path, metavar="GRID",
                        help="grid file to submit (JSON run spec + seeds/backbones/alphas lists), or with "
                             "--status/--cancel a submitted grid's folder or grid.json")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--status", action="store_true", help="print the state of every run of the grid")
    what.add_argument("--cancel", action="store_true", help="cancel the grid's queued and running jobs")
    parser.add_argument("--slurm", metavar="PARTITION", default=None,
                        help="submit to this partition ('' for the cluster's default)")
    parser.add_argument("--workspace", type=Path, metavar="DIR",
                        help="where run folders (runs/) and the grid record (grids/) are written")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per node and job (2+: torchrun DDP)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs per job (default %(default)s)")
    parser.add_argument("--mem-gb", type=float, default=0.0, help="memory per job, GB (0: partition default)")
    parser.add_argument("--time", type=int, default=60, metavar="MIN",
                        help="time limit per job in minutes; a job that reaches it is requeued and resumes "
                             "from its last epoch (default %(default)s)")
    parser.add_argument("--account", default="", help="Slurm account to charge")
    parser.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                        help="extra sbatch option, e.g. --sbatch=--qos=high (repeatable)")
    parser.add_argument("--max-requeues", type=int, default=3, help="requeues after time limits (default 3)")
    parser.add_argument("--stage-dir", type=Path, metavar="DIR",
                        help="copy the training set here once for the whole grid (e.g. cluster scratch)")
    parser.add_argument("--python", default="", help="the compute nodes' Python (default: this one)")
    parser.add_argument("--run", action="append", default=[], metavar="RUN",
                        help="with --cancel: only this run of the grid (its folder name; repeatable)")
    parser.add_argument("--json", action="store_true",
                        help="print the grid record, the status rows or the cancelled job ids as JSON "
                             "(what the GUI reads when it submits through a login node over SSH)")


def add_parser(sub) -> None:
    parser = sub.add_parser("train-grid", help="submit a training grid to Slurm, follow or cancel it")
    _arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.status:
            return _status(args.grid, as_json=args.json)
        if args.cancel:
            return _cancel(args.grid, args.run, as_json=args.json)
        if args.run:
            print("iaa-train-grid: --run goes with --cancel", file=sys.stderr)
            return 2
        if args.slurm is None or args.workspace is None:
            print("iaa-train-grid: submitting needs --slurm PARTITION and --workspace DIR", file=sys.stderr)
            return 2
        return _submit(args)
    except RunSpecError as exc:
        print(f"iaa-train-grid: {exc}", file=sys.stderr)
        return 2
    except SlurmError as exc:
        print(f"iaa-train-grid: {exc}", file=sys.stderr)
        return 1


def _submit(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid)
    options = SlurmOptions(partition=args.slurm, gpus_per_node=args.gpus, cpus_per_task=args.cpus,
                           mem_gb=args.mem_gb, time_min=args.time, account=args.account,
                           extra_sbatch=tuple(args.sbatch), max_requeues=args.max_requeues,
                           python=args.python)
    # Absolute: the compute nodes do not start in this shell's folder.
    record = submit_grid(grid, args.workspace.expanduser().resolve(), options, stage_dir=args.stage_dir)
    if args.json:
        print(json.dumps(record))
        return 0
    array = record["job_ids"][0].split("_")[0]
    print(f"submitted {len(record['runs'])} run(s) as Slurm job array {array}; "
          f"grid: {Path(record['path']).parent}")
    for job_id, run_dir in zip(record["job_ids"], record["runs"], strict=True):
        print(f"{job_id}\t{run_dir}")
    return 0


def _cancel(path: Path, runs: Sequence[str], *, as_json: bool) -> int:
    grid = load_grid_record(path)
    run_dirs = [Path(d) for d in grid["runs"]]
    if runs:
        unknown = sorted(set(runs) - {d.name for d in run_dirs})
        if unknown:
            raise SlurmError(f"{grid['path']}: the grid has no run {', '.join(unknown)}")
        run_dirs = [d for d in run_dirs if d.name in runs]
    ids = cancel_runs(run_dirs)
    if as_json:
        print(json.dumps({"cancelled": ids}))
    else:
        print(f"cancelled {len(ids)} job(s): {' '.join(ids)}" if ids else "nothing to cancel")
    return 0


def _status(path: Path, *, as_json: bool = False) -> int:
    grid = load_grid_record(path)
    rows = grid_status(grid)
    if as_json:
        print(json.dumps({"grid": str(Path(grid["path"]).parent), "runs": rows}))
    for row in ([] if as_json else rows):
        line = f"{row['job_id']}\t{row['status']}\t{row['epochs']} epoch(s)\t{row['run']}"
        print(line + (f"\n    {row['message'].replace(chr(10), chr(10) + '    ')}" if row["message"] else ""))
    statuses = [r["status"] for r in rows]
    if any(s in STILL_GOING for s in statuses):
        return 3
    return 1 if any(s in ("failed", "interrupted") for s in statuses) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="iaa-train-grid",
        description="Submit a training grid to Slurm as one job array (submitit), follow it or cancel it.")
    _arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
