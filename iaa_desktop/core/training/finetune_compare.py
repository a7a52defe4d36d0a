"""Cross-dataset comparison: diagnosis-only vs multi-task fine-tuning, the study's table.

For every target dataset, backbone and seed, two fine-tune runs are made with
``iaa-train --finetune-from`` (in subprocesses: the core never imports the
trainer): one from a diagnosis-only (``classification``) source checkpoint and
one from a multi-task source checkpoint of the same backbone. Each run's test
balanced accuracy (``run_finished`` event) goes into the table::

    dataset, backbone, n_seeds, balanced_accuracy_diagnosis_only, balanced_accuracy_multitask,
    difference (multi-task - diagnosis-only), auroc_..., f1_macro_...

with a last row ``mean`` holding the mean difference over the rows (the study
reports +4.2 points on average). Files written to the output folder:
``finetune_runs.csv`` (every run), ``finetune_comparison.csv`` and
``finetune_comparison.md``, plus ``training_sets/`` (datasets exported at
``size``) and ``runs/<dataset>/<backbone>/<kind>/seed<k>/`` (run directories).
A run that already finished is not run again, so an interrupted comparison goes on.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress
from iaa_desktop.core.training.runs import CHECKPOINT_DIR, read_events

#: Source kinds: the run mode of the source checkpoint, and how the table names it.
KINDS = {"classification": "diagnosis_only", "multitask": "multitask"}
METRICS = ("balanced_accuracy", "auroc", "f1_macro")
RUNS_FILE = "finetune_runs.csv"
TABLE_FILE = "finetune_comparison.csv"
MARKDOWN_FILE = "finetune_comparison.md"

#: Runs ``iaa-train`` with these arguments; returns its exit code.
Runner = Callable[[list[str]], int]


class CompareError(IAAError):
    """The comparison cannot start: sources missing, of the wrong mode, or not paired by backbone."""


@dataclass(frozen=True)
class CompareResult:
    runs: pd.DataFrame
    table: pd.DataFrame
    mean_difference: float
    files: tuple[Path, ...] = field(default=())


def source_metadata(source: str | Path) -> tuple[Path, dict]:
    """(checkpoint JSON, its content) of a source run directory, ``checkpoints/`` or ``.safetensors``."""
    source = Path(source)
    for candidate in (source.with_suffix(".json") if source.suffix == ".safetensors" else None,
                      source / "best.json", source / CHECKPOINT_DIR / "best.json"):
        if candidate is not None and candidate.is_file():
            try:
                meta = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CompareError(f"{candidate}: unreadable checkpoint metadata ({exc})") from None
            if not isinstance(meta, dict) or "backbone" not in meta or "mode" not in meta:
                raise CompareError(f"{candidate}: not IAA Desktop checkpoint metadata (no backbone/mode)")
            return candidate, meta
    raise CompareError(f"{source}: no best checkpoint there (checkpoints/best.json)")


def pair_sources(sources: Mapping[str, Sequence[str | Path]],
                 backbones: Sequence[str] = ()) -> dict[str, dict[str, Path]]:
    """backbone -> {kind: source run}, checking each source's mode; only backbones with both kinds.

    ``backbones`` keeps those alone (every paired backbone when empty).
    """
    paired: dict[str, dict[str, Path]] = {}
    for kind in KINDS:
        for source in sources.get(kind, ()):
            path, meta = source_metadata(source)
            if meta["mode"] != kind:
                raise CompareError(f"{path}: a {meta['mode']} checkpoint given as a {kind} source")
            backbone = str(meta["backbone"])
            if kind in paired.get(backbone, {}):
                raise CompareError(f"two {kind} sources for backbone {backbone}: "
                                   f"{paired[backbone][kind]} and {source}")
            paired.setdefault(backbone, {})[kind] = Path(source)
    wanted = list(backbones) or sorted(paired)
    out = {}
    for backbone in wanted:
        have = paired.get(backbone, {})
        missing = [k for k in KINDS if k not in have]
        if missing:
            raise CompareError(f"backbone {backbone}: no {' and no '.join(missing)} source checkpoint")
        out[backbone] = have
    if not out:
        raise CompareError("no source checkpoints: give a diagnosis-only and a multi-task run per backbone")
    return out


def iter_training_sets(datasets: Sequence[str | Path], out_dir: Path,
                       size: int) -> Generator[Progress, None, dict[str, Path]]:
    """name -> training set: ``.h5`` files as they are, dataset folders exported (once) at ``size``."""
    from iaa_desktop.core.dataset.io import load_dataset
    from iaa_desktop.core.training.training_set import iter_export_training_set

    out: dict[str, Path] = {}
    for index, dataset in enumerate(datasets):
        path = Path(dataset)
        name = path.stem if path.suffix == ".h5" else path.name
        name = name if name not in out else f"{name}_{index}"
        if path.suffix == ".h5":
            out[name] = path
        else:
            target = out_dir / "training_sets" / f"{name}_{size}px.h5"
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                job = iter_export_training_set(load_dataset(path), target, size=size, cache=None)
                for step in job:
                    yield Progress(index, len(datasets), f"exporting {name}: {step.done}/{step.total}")
            out[name] = target
        yield Progress(index + 1, len(datasets), f"training set {name}")
    return out


def subprocess_runner(args: list[str]) -> int:
    """``python -m trainer ARGS`` in a child process (its log goes to the run's train.log)."""
    return subprocess.run([sys.executable, "-m", "trainer", *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode


def run_outcome(run_dir: Path) -> dict[str, object]:
    """Test metrics of a finished run, or the error that ended it (``status``)."""
    events, _ = read_events(run_dir)
    finished = [e for e in events if e.get("event") == "run_finished"]
    if finished:
        test = finished[-1].get("test") or {}
        return {"status": "finished",
                **{m: math.nan if test.get(m) is None else float(test[m]) for m in METRICS}}
    errors = [e for e in events if e.get("event") == "error"]
    return {"status": f"failed: {errors[-1].get('message', '')}" if errors else "not run",
            **{m: math.nan for m in METRICS}}


def comparison_table(runs: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Per dataset and backbone: both kinds' mean metrics over seeds, the difference; and its mean."""
    rows = []
    for (dataset, backbone), group in runs.groupby(["dataset", "backbone"], sort=False):
        row: dict[str, object] = {"dataset": dataset, "backbone": backbone,
                                  "n_seeds": int(group["seed"].nunique())}
        for label in KINDS.values():
            part = group[group["kind"] == label]
            for metric in METRICS:
                values = part[metric]
                row[f"{metric}_{label}"] = float(values.mean()) if values.notna().any() else math.nan
        row["difference"] = row["balanced_accuracy_multitask"] - row["balanced_accuracy_diagnosis_only"]
        rows.append(row)
    table = pd.DataFrame(rows)
    mean = float(table["difference"].mean()) if table["difference"].notna().any() else math.nan
    total = {"dataset": "mean", "backbone": "all", "n_seeds": int(runs["seed"].nunique()), "difference": mean}
    for column in table.columns:
        if column.startswith(METRICS):
            total[column] = float(table[column].mean()) if table[column].notna().any() else math.nan
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True), mean


def _percent(value: float, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:+.1f}" if sign else f"{100 * value:.1f}"


def markdown_table(table: pd.DataFrame, mean: float) -> str:
    """The study's table in markdown: balanced accuracy (%) per dataset and backbone, both kinds."""
    lines = ["| dataset | backbone | seeds | diagnosis-only BAcc (%) | multi-task BAcc (%) "
             "| difference (points) |", "|---|---|---|---|---|---|"]
    for row in table.to_dict("records"):
        lines.append(f"| {row['dataset']} | {row['backbone']} | {row['n_seeds']} | "
                     f"{_percent(row['balanced_accuracy_diagnosis_only'])} | "
                     f"{_percent(row['balanced_accuracy_multitask'])} | "
                     f"{_percent(row['difference'], True)} |")
    lines += ["", f"Mean difference (multi-task - diagnosis-only): {_percent(mean, True)} points of balanced "
              "accuracy on the target test splits (the study reports +4.2 on average)."]
    return "\n".join(lines) + "\n"


def iter_finetune_compare(
    datasets: Sequence[str | Path],
    sources: Mapping[str, Sequence[str | Path]],
    out_dir: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    backbones: Sequence[str] = (),
    size: int = 224,
    train_args: Sequence[str] = (),
    runner: Runner | None = None,
) -> Generator[Progress, None, CompareResult]:
    """Fine-tune every source on every dataset and seed, and write the comparison (module docstring).

    Parameters
    ----------
    datasets
        Dataset folders (any layout ``load_dataset`` reads) or exported ``.h5`` training sets.
    sources
        ``{"classification": [run dirs], "multitask": [run dirs]}``: one run per backbone and kind.
    out_dir
        Where the training sets, run directories and tables go.
    seeds, backbones, size
        Seeds of the fine-tune runs; backbones to compare (default every paired one);
        image size of exported datasets.
    train_args
        Further ``iaa-train`` flags for every run (``--epochs 30 --batch-size 32 --device cuda``).
    runner
        Runs ``iaa-train`` with a list of arguments and returns its exit code
        (default: a ``python -m trainer`` subprocess).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paired = pair_sources(sources, backbones)
    sets = yield from iter_training_sets(datasets, out_dir, size)
    runner = runner or subprocess_runner
    grid = [(name, backbone, kind, seed) for name in sets for backbone in paired for kind in KINDS
            for seed in seeds]
    records = []
    for done, (name, backbone, kind, seed) in enumerate(grid):
        run_dir = out_dir / "runs" / name / backbone / KINDS[kind] / f"seed{seed}"
        outcome = run_outcome(run_dir)
        if outcome["status"] != "finished":
            yield Progress(done, len(grid), f"{name} {backbone} {KINDS[kind]} seed {seed}")
            runner(["--finetune-from", str(paired[backbone][kind]), "--data", str(sets[name]),
                    "--out", str(run_dir), "--seed", str(seed), *train_args])
            outcome = run_outcome(run_dir)
        records.append({"dataset": name, "backbone": backbone, "kind": KINDS[kind], "seed": seed,
                        **outcome, "run_dir": str(run_dir), "source": str(paired[backbone][kind])})
    yield Progress(len(grid), len(grid), "writing the table")
    runs = pd.DataFrame(records)
    table, mean = comparison_table(runs)
    files = (out_dir / RUNS_FILE, out_dir / TABLE_FILE, out_dir / MARKDOWN_FILE)
    runs.to_csv(files[0], index=False)
    table.to_csv(files[1], index=False)
    files[2].write_text(markdown_table(table, mean), encoding="utf-8")
    return CompareResult(runs=runs, table=table, mean_difference=mean, files=files)
