"""Helpers shared by the subcommands: dataset argument, progress bar, error exit."""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import TextIO, TypeVar

from iaa_desktop.core.progress import Progress, run_to_end

T = TypeVar("T")

DEMO_HELP = "dataset directory (default: the embedded demo dataset, generated on first use)"


def add_dataset_argument(parser) -> None:
    parser.add_argument("dataset", nargs="?", type=Path, default=None, help=DEMO_HELP)
    parser.add_argument("--masks-dir", type=Path, help="IMA++ layout: the folder of mask PNGs "
                        "(default: found under DATASET)")
    parser.add_argument("--images-dir", type=Path, help="IMA++ layout: the folder of images "
                        "(default: found under DATASET)")
    parser.add_argument("--derm7pt-images", choices=("derm", "clinic"), default=None,
                        help="derm7pt: dermoscopic (default) or clinical images")


def add_review_exclusion_arguments(parser) -> None:
    """``--exclude-reviewed`` and ``--workspace DIR`` of the commands that can leave out excluded lesions."""
    parser.add_argument("--exclude-reviewed", action="store_true",
                        help="leave out the lesions reviewers marked 'exclude' (workspace: --workspace, "
                             "else the dataset's)")
    parser.add_argument("--workspace", type=Path, metavar="DIR",
                        help="the workspace holding the reviews (default: the dataset's)")


class ProgressBar:
    """A one-line text progress bar on stderr (silent when stderr is not a terminal)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self._label = label
        self._stream = stream or sys.stderr
        self._width = width
        self._tty = self._stream.isatty()
        self._last = -1

    def __call__(self, step: Progress) -> None:
        percent = int(100 * step.fraction)
        if not self._tty:
            return
        if percent == self._last and step.done != step.total:
            return
        self._last = percent
        filled = int(self._width * step.fraction)
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {step.done}/{step.total} {step.message[:30]:30}")
        if step.done >= step.total:
            self._stream.write("\n")
        self._stream.flush()


def run_with_bar(label: str, job: Generator[Progress, None, T]) -> T:
    return run_to_end(job, ProgressBar(label))


def fail(message: str, code: int = 2) -> int:
    print(f"iaa-desktop: error: {message}", file=sys.stderr)
    return code


def resolve_dataset_path(path: Path | None) -> Path:
    """The dataset directory to use: ``path``, or the demo dataset (generated if needed)."""
    if path is not None:
        return path
    from iaa_desktop.core.dataset.demo import demo_dataset_dir

    print("Using the embedded demo dataset (synthetic; generated on first use).",
          file=sys.stderr, flush=True)
    return demo_dataset_dir(on_progress=ProgressBar("Generating the demo dataset"))


def load_or_explain(args):
    """(dataset, None) or (None, exit code 2) after printing a clear message."""
    from iaa_desktop.core.dataset.io import load_dataset
    from iaa_desktop.core.errors import IAAError

    options = {k: v for k, v in (("masks_dir", args.masks_dir), ("images_dir", args.images_dir))
               if v is not None}
    try:
        root = resolve_dataset_path(args.dataset)
        if options:
            return load_dataset(root, "imapp", **options), None
        modality = getattr(args, "derm7pt_images", None)
        if modality is not None:
            return load_dataset(root, "derm7pt", modality=modality), None
        return load_dataset(root), None
    except IAAError as exc:
        return None, fail(str(exc))


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or lies under it (symlinks resolved)."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def measure_agreement(dataset, args, maps_dir: Path | None = None, boundary=None):
    """Run the agreement engine with a progress bar: the ``DatasetAgreement``, or an exit code.

    Reads ``args.workers`` (``None``: ``suggested_workers`` for this dataset, written back
    to ``args`` for the command's later stages) and ``args.no_cache``. Ctrl+C stops at the
    next lesion; what was computed stays in the cache. ``boundary`` (a ``BoundarySpec``)
    sets the MetricsReloaded tolerances (default: the engine's).
    """
    from iaa_desktop.core.agreement.engine import iter_dataset_agreement, suggested_workers

    if args.workers is None:
        args.workers = suggested_workers(dataset)
    options = {"workers": args.workers, "maps_dir": maps_dir}
    if boundary is not None:
        options["boundary"] = boundary
    if args.no_cache:
        options["cache"] = None
    try:
        return run_with_bar("Measuring agreement", iter_dataset_agreement(dataset, **options))
    except KeyboardInterrupt:
        return fail("interrupted; the lesions computed so far are cached", 130)
