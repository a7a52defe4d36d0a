"""Loader for the IMA++ release layout.

A release holds metadata CSVs (``IMAplusplus_seg_metadata.csv``: one row per
mask; ``IMAplusplus_img_metadata.csv``: one row per image), a folder of masks
named ``<ISIC_id>_<annotator>_<tool>_<skill>_<objectId>.png`` (consensus masks
``<ISIC_id>_ST_ST_ST_ST.png`` / ``_MV_MV_MV_MV.png``) and, separately from the
ISIC Archive, the images ``<ISIC_id>.JPG``. Folder names vary between
downloads, so the masks and images folders are found by their contents unless
given. Only the metadata is read here; pixels are decoded on demand.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from iaa_desktop.core.dataset.io.assemble import MetadataIndex, build_lesion
from iaa_desktop.core.dataset.io.discover import (
    best_folder,
    clash_problems,
    index_images,
    list_files,
    walk_dirs,
)
from iaa_desktop.core.dataset.io.tables import clean, read_table
from iaa_desktop.core.dataset.model import Dataset, Problem, Segmentation, make_problem
from iaa_desktop.core.errors import DatasetFormatError, DatasetReadError

SEG_REQUIRED = ("ISIC_id", "seg_filename", "annotator")
#: Preferred first: the full release table, then the multi-annotator subset.
SEG_METADATA_NAMES = (
    "IMAplusplus_seg_metadata.csv",
    "IMAplusplus_multiannotator_subset_seg_metadata.csv",
)
IMG_METADATA_NAMES = ("IMAplusplus_img_metadata.csv",)


def find_metadata(root: Path) -> tuple[Path | None, Path | None]:
    """(segmentation metadata CSV, image metadata CSV) under ``root``, or None each."""
    found: dict[str, Path] = {}
    for folder, files in walk_dirs(root, max_depth=2):
        for name in files:
            found.setdefault(name, folder / name)
    seg = next((found[n] for n in SEG_METADATA_NAMES if n in found), None)
    if seg is None:
        seg = next(
            (p for n, p in sorted(found.items()) if n.endswith("seg_metadata.csv")), None
        )
    img = next((found[n] for n in IMG_METADATA_NAMES if n in found), None)
    if img is None:
        img = next((p for n, p in sorted(found.items()) if n.endswith("img_metadata.csv")), None)
    return seg, img


def looks_like_imapp(root: Path) -> bool:
    return find_metadata(root)[0] is not None


def load_imapp(
    root: Path,
    *,
    masks_dir: Path | None = None,
    images_dir: Path | None = None,
) -> Dataset:
    """Index an IMA++ release (or a dataset written in its layout).

    Parameters
    ----------
    root
        The release folder holding the metadata CSVs (searched two levels deep).
    masks_dir, images_dir
        Where the masks and the images are, when not under ``root`` or when the
        automatic search picks the wrong folder.

    Missing, duplicated or unknown files become ``Problem`` records; only a
    missing or unreadable segmentation table raises.
    """
    root = Path(root)
    seg_csv, img_csv = find_metadata(root)
    if seg_csv is None:
        raise DatasetFormatError(
            f"{root}: no IMA++ segmentation metadata (IMAplusplus_seg_metadata.csv) found"
        )
    segs = read_table(seg_csv, SEG_REQUIRED, "segmentation metadata")
    problems: list[Problem] = []
    img_frame = None
    if img_csv is not None:
        try:
            img_frame = read_table(img_csv, ("isic_id",), "image metadata")
        except DatasetReadError as exc:  # the masks are still usable without labels
            problems.append(make_problem("bad_metadata", f"{exc}; labels and sizes ignored", img_csv))
            img_csv = None
    metadata = MetadataIndex(img_frame, img_csv)

    wanted_masks = set(segs["seg_filename"].dropna().map(str.strip))
    if masks_dir is None:
        masks_dir, mask_files = best_folder(root, lambda files: len(wanted_masks.intersection(files)))
    else:
        mask_files = list_files(masks_dir)
    present_masks = set(mask_files)

    seg_ids = {str(i).strip() for i in segs["ISIC_id"].dropna()}
    ids = metadata.ids() + sorted(seg_ids.difference(metadata.ids()))
    wanted_stems = {i.lower() for i in ids}
    if images_dir is None:
        images_dir, image_files = best_folder(
            root,
            lambda files: sum(os.path.splitext(f)[0].lower() in wanted_stems for f in files),
        )
    else:
        image_files = list_files(images_dir)
    image_index, clashes = index_images(images_dir, image_files) if images_dir else ({}, {})
    problems.extend(clash_problems(clashes))

    per_image = _segmentations(segs, seg_csv, masks_dir or root, present_masks, problems)
    for image_id in sorted(seg_ids.difference(metadata.ids())):
        if img_csv is not None:
            problems.append(
                make_problem(
                    "unknown_image",
                    f"{img_csv}: no metadata row for image {image_id}, which has masks",
                    img_csv,
                    image_id,
                )
            )
    for image_id in metadata.duplicates:
        problems.append(
            make_problem(
                "bad_metadata",
                f"{img_csv}: image {image_id} is listed more than once; the first row is used",
                img_csv or "",
                image_id,
            )
        )

    lesions = []
    for image_id in ids:
        image_path = image_index.get(image_id.lower())
        if image_path is None:
            problems.append(
                make_problem(
                    "missing_image",
                    f"{images_dir or root}: no image file for {image_id}",
                    (images_dir or root) / f"{image_id}.JPG",
                    image_id,
                )
            )
        lesions.append(
            build_lesion(
                image_id, metadata.get(image_id), image_path, per_image.get(image_id, ()),
                problems, img_csv,
            )
        )
    return Dataset(root=root, layout="imapp", lesions=tuple(lesions), problems=tuple(problems),
                   name=root.name)


def _segmentations(
    segs, seg_csv: Path, masks_dir: Path, present: set[str], problems: list[Problem]
) -> dict[str, list[Segmentation]]:
    """Segmentations per image id, with missing and duplicated mask files reported."""
    per_image: dict[str, list[Segmentation]] = defaultdict(list)
    seen: set[str] = set()
    columns = {c: segs[c].to_numpy(object) if c in segs else None
               for c in ("ISIC_id", "seg_filename", "annotator", "tool", "skill_level", "mskObjectID")}
    empty = [None] * len(segs)
    for image_id, name, annotator, tool, skill, object_id in zip(
        *(columns[c] if columns[c] is not None else empty for c in columns), strict=True
    ):
        image_id, name = clean(image_id), clean(name)
        if image_id is None or name is None:
            problems.append(make_problem(
                "bad_metadata", f"{seg_csv}: a row lacks its image id or mask file name; skipped",
                seg_csv, image_id or ""))
            continue
        if os.path.basename(name.replace("\\", "/")) != name or name in (".", ".."):
            problems.append(make_problem(
                "bad_metadata", f"{seg_csv}: mask file name {name!r} is a path, not a file name "
                "(it could point outside the masks folder); skipped", seg_csv, image_id))
            continue
        if name in seen:
            problems.append(make_problem(
                "duplicate_mask", f"{seg_csv}: mask {name} is listed more than once; kept once",
                masks_dir / name, image_id))
            continue
        seen.add(name)
        if name not in present:
            problems.append(make_problem(
                "missing_mask", f"{masks_dir}: mask file {name} not found", masks_dir / name, image_id))
        per_image[image_id].append(
            Segmentation(
                image_id=image_id,
                annotator=clean(annotator) or "?",
                tool=clean(tool) or "",
                skill=clean(skill) or "",
                mask_path=masks_dir / name,
                object_id=clean(object_id) or "",
            )
        )
    return per_image
