"""Loader for the folder layout.

::

    DATASET/
      images/<image_id>.<jpg|png|...>
      masks/<annotator>/<image_id>.png      one folder per annotator
      metadata.csv      optional: image_id, diagnosis, benign_malignant, split, ...
      annotators.csv    optional: annotator, tool, skill_level

Annotator folders named ``ST`` or ``MV`` hold consensus masks, and ``reference`` the adjudicated
reference of a reviewed export: none of them counts as an annotator in the IAA.
"""

from __future__ import annotations

import os
from pathlib import Path

from iaa_desktop.core.dataset.io.assemble import ID_COLUMNS, MetadataIndex, build_lesion
from iaa_desktop.core.dataset.io.discover import IMAGE_EXTENSIONS, clash_problems, index_images, list_files
from iaa_desktop.core.dataset.io.tables import clean, first_present, read_table
from iaa_desktop.core.dataset.model import CONSENSUS_ANNOTATORS, Dataset, Problem, Segmentation, make_problem
from iaa_desktop.core.errors import DatasetFormatError


def looks_like_folder_layout(root: Path) -> bool:
    return (Path(root) / "images").is_dir() and (Path(root) / "masks").is_dir()


def _annotator_roster(path: Path) -> dict[str, tuple[str, str]]:
    if not path.is_file():
        return {}
    frame = read_table(path, ("annotator",), "annotator table")
    roster = {}
    for row in frame.to_dict("records"):
        name = clean(row.get("annotator"))
        if name:
            roster[name] = (clean(row.get("tool")) or "", clean(row.get("skill_level")) or "")
    return roster


def load_folder(root: Path) -> Dataset:
    """Index a dataset in the folder layout (see the module docstring)."""
    root = Path(root)
    if not looks_like_folder_layout(root):
        raise DatasetFormatError(f"{root}: expected 'images' and 'masks' folders")
    problems: list[Problem] = []
    images_dir = root / "images"
    masks_root = root / "masks"
    image_index, clashes = index_images(images_dir, list_files(images_dir))
    problems.extend(clash_problems(clashes))

    metadata_csv = root / "metadata.csv"
    frame = None
    if metadata_csv.is_file():
        frame = read_table(metadata_csv, (), "image metadata")
        if first_present(frame, ID_COLUMNS) is None:
            problems.append(make_problem(
                "bad_metadata",
                f"{metadata_csv}: no image id column ({', '.join(ID_COLUMNS)}); metadata ignored",
                metadata_csv))
            frame = None
    metadata = MetadataIndex(frame, metadata_csv if frame is not None else None)
    roster = _annotator_roster(root / "annotators.csv")

    # Image ids as the images folder spells them; metadata ids matched case-insensitively.
    canonical = {p.stem.lower(): p.stem for p in image_index.values()}
    per_image: dict[str, list[Segmentation]] = {}
    annotator_dirs = [p for p in masks_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    # Human annotators first, consensus masks last, as in IMA++'s tables.
    for annotator_dir in sorted(annotator_dirs, key=lambda p: (p.name in CONSENSUS_ANNOTATORS, p.name)):
        annotator = annotator_dir.name
        tool, skill = roster.get(annotator, ("", ""))
        if annotator in CONSENSUS_ANNOTATORS:
            tool = skill = annotator
        for name in sorted(list_files(annotator_dir)):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in IMAGE_EXTENSIONS:
                continue
            image_id = canonical.get(stem.lower(), stem)
            if stem.lower() not in canonical and stem not in metadata:
                problems.append(make_problem(
                    "unknown_image",
                    f"{annotator_dir / name}: mask for image {stem}, which has no image file",
                    annotator_dir / name, stem))
            segs = per_image.setdefault(image_id, [])
            if any(s.annotator == annotator for s in segs):
                problems.append(make_problem(
                    "duplicate_mask",
                    f"{annotator_dir / name}: a second mask of {image_id} by {annotator} "
                    "(same id, other extension or case); kept the first",
                    annotator_dir / name, image_id))
                continue
            segs.append(Segmentation(image_id, annotator, tool, skill, annotator_dir / name))

    ids = list(dict.fromkeys(
        [canonical.get(i.lower(), i) for i in metadata.ids()]
        + sorted(canonical.values()) + sorted(per_image)))
    lesions = []
    for image_id in ids:
        image_path = image_index.get(image_id.lower())
        if image_path is None:
            problems.append(make_problem(
                "missing_image", f"{images_dir}: no image file for {image_id}",
                images_dir / image_id, image_id))
        row = metadata.get_any_case(image_id)
        lesions.append(build_lesion(image_id, row, image_path, per_image.get(image_id, ()),
                                    problems, metadata.source))
    return Dataset(root=root, layout="folder", lesions=tuple(lesions), problems=tuple(problems),
                   name=root.name)

