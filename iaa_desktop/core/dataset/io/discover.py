"""Finding the folders of a dataset whose folder names vary between downloads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from iaa_desktop.core.dataset.model import Problem, make_problem
from iaa_desktop.core.errors import DatasetFormatError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def walk_dirs(root: Path, max_depth: int = 3) -> Iterator[tuple[Path, list[str]]]:
    """(directory, file names) for ``root`` and its subdirectories up to ``max_depth``.

    Hidden directories are skipped and symlinked directories are not followed
    (a symlink loop cannot trap us). Unreadable directories are skipped.
    """
    stack = [(Path(root), 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        files = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth < max_depth and not entry.name.startswith("."):
                        stack.append((Path(entry.path), depth + 1))
                elif entry.is_file():
                    files.append(entry.name)
            except OSError:
                continue
        yield folder, files


def best_folder(
    root: Path, score: Callable[[list[str]], int], max_depth: int = 3
) -> tuple[Path | None, list[str]]:
    """The folder under ``root`` whose file list scores highest (ties: the shallowest)."""
    best: tuple[int, int, str] | None = None
    best_entry: tuple[Path | None, list[str]] = (None, [])
    for folder, files in walk_dirs(root, max_depth):
        value = score(files)
        if value <= 0:
            continue
        key = (value, -len(folder.parts), str(folder))
        if best is None or key[:2] > best[:2]:
            best = key
            best_entry = (folder, files)
    return best_entry


def index_images(folder: Path, names: list[str]) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """Map lower-cased image id (file stem) to path; also the ids several files share.

    ``ISIC_1.JPG`` and ``ISIC_1.jpg`` are the same id, and so are ids that differ
    only in case, since a case-insensitive file system cannot tell them apart:
    look ids up with ``image_id.lower()``. The first file in sorted order wins.
    """
    by_id: dict[str, Path] = {}
    clashes: dict[str, list[Path]] = {}
    for name in sorted(names):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        key = stem.lower()
        if key in by_id:
            clashes.setdefault(key, [by_id[key]]).append(folder / name)
            continue
        by_id[key] = folder / name
    return by_id, clashes


def list_files(folder: Path) -> list[str]:
    """Names of the plain files in ``folder`` (clear error naming it if unreadable)."""
    try:
        return [e.name for e in os.scandir(folder) if e.is_file()]
    except OSError as exc:
        raise DatasetFormatError(f"{folder}: cannot list the folder ({exc.strerror})") from None


def clash_problems(clashes: dict[str, list[Path]]) -> list[Problem]:
    """One ``duplicate_image`` problem per image id that several files share."""
    return [
        make_problem(
            "duplicate_image",
            f"{paths[0].parent}: several image files share the id {stem!r} "
            f"({', '.join(p.name for p in paths)}); using {paths[0].name}",
            paths[1],
            stem,
        )
        for stem, paths in clashes.items()
    ]
