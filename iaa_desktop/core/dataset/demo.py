"""The synthetic demo dataset: what a new user sees first and the README's quick start.

``write_demo`` (or its progress generator ``iter_write_demo``) writes a small,
dermoscopy-like dataset in the IMA++ release layout, so that it goes through
the same loader as the real data::

    IMAplusplus_seg_metadata.csv   one row per mask (IMA++ columns)
    IMAplusplus_img_metadata.csv   one row per image (ISIC-like columns + split)
    images/DEMO_0000.JPG ...
    segs/DEMO_0000_A03_T1_S2_<objectId>.png ...
    README.txt

Each lesion has 2-5 annotators from a fixed roster (``demo_annotators.ROSTER``),
sometimes with a repeat by the same annotator. Malignant lesions (about 2 in 7)
are drawn with irregular, fuzzy borders, so their masks agree less, as IMA++
found for real lesions. Everything follows from the seed; lesion ``k`` is the
same whatever the number of lesions asked for. ``demo_dataset_dir`` keeps one
copy in the user cache directory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import platformdirs

from iaa_desktop.core.dataset.demo_annotators import ROSTER, annotate
from iaa_desktop.core.dataset.demo_lesions import IMAGE_SIZES, draw_lesion
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress, run_to_end

log = logging.getLogger(__name__)

#: Bump whenever the generated files change, so cached copies are regenerated.
DEMO_VERSION = 1
DEFAULT_N_LESIONS = 60
#: Overrides the cache root (``platformdirs.user_cache_dir("iaa-desktop")``).
CACHE_ENV = "IAA_DESKTOP_CACHE_DIR"
#: Written last: its presence means the folder is a complete demo dataset.
MARKER_NAME = ".iaa-demo.json"
_GENERATOR = "iaa_desktop.core.dataset.demo"

SEG_COLUMNS = (
    "ISIC_id", "img_filename", "seg_filename", "annotator", "tool", "skill_level",
    "mskObjectID", "mask_md5",
)  # fmt: skip
IMG_COLUMNS = (
    "isic_id", "attribution", "copyright_license", "age_approx", "anatom_site_general",
    "benign_malignant", "diagnosis_1", "diagnosis_2", "diagnosis_3", "diagnosis_confirm_type",
    "image_type", "melanocytic", "pixels_x", "pixels_y", "sex", "split",
)  # fmt: skip
SPLITS = (("train", 0.7), ("val", 0.1), ("test", 0.2))


@dataclass(frozen=True)
class Diagnosis:
    """A diagnosis as ISIC's hierarchy writes it, with the painter's ``kind``."""

    kind: str
    benign_malignant: str
    diagnosis_2: str
    diagnosis_3: str
    melanocytic: bool
    weight: float

    @property
    def diagnosis_1(self) -> str:
        return self.benign_malignant.capitalize()


DIAGNOSES = (
    Diagnosis("nevus", "benign", "Benign melanocytic proliferations", "Nevus", True, 0.62),
    Diagnosis("seborrheic_keratosis", "benign", "Benign epidermal proliferations",
              "Seborrheic keratosis", False, 0.24),
    Diagnosis("dermatofibroma", "benign", "Benign soft tissue proliferations - Fibro-histiocytic",
              "Dermatofibroma", False, 0.14),
    Diagnosis("melanoma", "malignant", "Malignant melanocytic proliferations (Melanoma)",
              "Melanoma Invasive", True, 0.4),
    Diagnosis("melanoma", "malignant", "Malignant melanocytic proliferations (Melanoma)",
              "Melanoma in situ", True, 0.3),
    Diagnosis("basal_cell_carcinoma", "malignant",
              "Malignant adnexal epithelial proliferations - Follicular",
              "Basal cell carcinoma", False, 0.3),
)  # fmt: skip
_SITES = ("posterior torso", "lower extremity", "upper extremity", "anterior torso", "head/neck")
_SITE_WEIGHTS = (0.3, 0.22, 0.18, 0.18, 0.12)
_ROSTER_BY_ID = {style.annotator: style for style in ROSTER}
# Some annotators did much more of the work than others, as in IMA++.
_ANNOTATOR_WEIGHTS = np.array([1.6, 1.4, 1.0, 1.0, 1.2, 0.8, 1.0, 0.8])
_N_ANNOTATORS = ((2, 0.35), (3, 0.35), (4, 0.2), (5, 0.1))
_P_REPEAT = 0.12


@dataclass(frozen=True)
class LesionPlan:
    """Everything about one demo lesion except its pixels."""

    index: int
    image_id: str
    diagnosis: Diagnosis
    size: tuple[int, int]
    annotators: tuple[str, ...]  # one entry per mask: a repeat appears twice
    age: int
    sex: str
    site: str


# Random streams: the first two entropy words keep purposes apart, so that, say,
# the malignancy blocks never share a stream with a lesion's drawing.
def _rng(seed: int, purpose: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, *key])


def is_malignant(seed: int, index: int) -> bool:
    """Whether lesion ``index`` is malignant: exactly 2 of every block of 7 are.

    Blocks keep the malignant share near 28 % for any number of lesions without
    making lesion ``k`` depend on how many lesions are generated.
    """
    block, position = divmod(index, 7)
    return bool(position in _rng(seed, 2, block).choice(7, size=2, replace=False))


def plan_lesion(seed: int, index: int) -> LesionPlan:
    """The diagnosis, size, annotators and metadata of lesion ``index``."""
    rng = _rng(seed, 1, index, 0)
    malignant = is_malignant(seed, index)
    choices = [d for d in DIAGNOSES if (d.benign_malignant == "malignant") == malignant]
    weights = np.array([d.weight for d in choices])
    diagnosis = choices[rng.choice(len(choices), p=weights / weights.sum())]
    size = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    counts, probs = zip(*_N_ANNOTATORS, strict=True)
    n = int(rng.choice(counts, p=probs))
    picked = rng.choice(len(ROSTER), size=n, replace=False, p=_ANNOTATOR_WEIGHTS / _ANNOTATOR_WEIGHTS.sum())
    annotators = [ROSTER[i].annotator for i in sorted(picked)]
    if rng.random() < _P_REPEAT:
        annotators.append(annotators[rng.integers(n)])
        annotators.sort()
    age = int(rng.integers(7, 18) if malignant else rng.integers(3, 15)) * 5
    sex = "male" if rng.random() < 0.55 else "female"
    site = _SITES[rng.choice(len(_SITES), p=_SITE_WEIGHTS)]
    return LesionPlan(index, f"DEMO_{index:04d}", diagnosis, size, tuple(annotators), age, sex,
                      site)  # fmt: skip


def assign_splits(seed: int, malignant: list[bool]) -> list[str]:
    """Train/val/test labels, 70/10/20 within the benign and within the malignant lesions."""
    splits = [""] * len(malignant)
    for group in (False, True):
        members = [i for i, m in enumerate(malignant) if m == group]
        order = _rng(seed, 3, int(group)).permutation(len(members))
        n_val = round(SPLITS[1][1] * len(members))
        n_test = round(SPLITS[2][1] * len(members))
        for rank, k in enumerate(order):
            label = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
            splits[members[k]] = label
    return splits


def _object_id(seed: int, image_id: str, annotator: str, repeat: int, index: int) -> str:
    """A 24-hex id shaped like IMA++'s MongoDB ObjectIds (a 2014-ish timestamp first)."""
    stamp = 0x54500000 + index * 0x1000 + repeat * 0x10
    digest = hashlib.md5(f"iaa-demo/{seed}/{image_id}/{annotator}/{repeat}".encode()).hexdigest()
    return f"{stamp:08x}{digest[:16]}"


def _write_lesion(root: Path, seed: int, plan: LesionPlan) -> list[dict[str, str]]:
    """Draw one lesion, write its image and masks, return its segmentation rows."""
    drawing = draw_lesion(_rng(seed, 1, plan.index, 1), plan.diagnosis.kind, plan.size)
    image_name = f"{plan.image_id}.JPG"
    bgr = cv2.cvtColor(drawing.image, cv2.COLOR_RGB2BGR)
    # imencode + write_bytes rather than imwrite: imwrite fails on non-ASCII paths
    # on Windows, and the cache directory sits under the user's home.
    _, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    (root / "images" / image_name).write_bytes(jpeg.tobytes())
    rows, seen = [], {}
    hard = plan.diagnosis.benign_malignant == "malignant"
    for j, annotator in enumerate(plan.annotators):
        style = _ROSTER_BY_ID[annotator]
        repeat = seen[annotator] = seen.get(annotator, -1) + 1
        mask = annotate(_rng(seed, 1, plan.index, 2, j), drawing, style, hard)
        _, png = cv2.imencode(".png", mask)
        data = png.tobytes()
        object_id = _object_id(seed, plan.image_id, annotator, repeat, plan.index)
        seg_name = f"{plan.image_id}_{annotator}_{style.tool}_{style.skill}_{object_id}.png"
        (root / "segs" / seg_name).write_bytes(data)
        rows.append({
            "ISIC_id": plan.image_id, "img_filename": image_name, "seg_filename": seg_name,
            "annotator": annotator, "tool": style.tool, "skill_level": style.skill,
            "mskObjectID": object_id, "mask_md5": hashlib.md5(data).hexdigest(),
        })  # fmt: skip
    return rows


def _image_row(plan: LesionPlan, split: str, seed: int) -> dict[str, object]:
    d = plan.diagnosis
    confirm = "histopathology" if d.benign_malignant == "malignant" or plan.index % 3 == 0 else (
        "single image expert consensus")  # fmt: skip
    return {
        "isic_id": plan.image_id, "attribution": f"Synthetic (IAA Desktop demo, seed {seed})",
        "copyright_license": "CC-0", "age_approx": plan.age, "anatom_site_general": plan.site,
        "benign_malignant": d.benign_malignant, "diagnosis_1": d.diagnosis_1,
        "diagnosis_2": d.diagnosis_2, "diagnosis_3": d.diagnosis_3,
        "diagnosis_confirm_type": confirm, "image_type": "dermoscopic",
        "melanocytic": str(d.melanocytic), "pixels_x": plan.size[0], "pixels_y": plan.size[1],
        "sex": plan.sex, "split": split,
    }  # fmt: skip


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    buffer = io.StringIO()
    # "\n" line ends on every platform, so the files are byte-identical everywhere.
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")


def _readme(seed: int, n_lesions: int, n_masks: int) -> str:
    return (
        "IAA Desktop demo dataset (synthetic)\n"
        "====================================\n\n"
        f"{n_lesions} computer-drawn dermoscopy-like lesions with {n_masks} masks by simulated\n"
        "annotators, written in the IMA++ release layout. No patient, image or annotation\n"
        "here is real: use it to try the software, never to draw clinical conclusions.\n\n"
        f"generator: {_GENERATOR}, demo version {DEMO_VERSION}, seed {seed}\n"
        "Regenerate with iaa_desktop.core.dataset.demo.write_demo(folder, seed).\n\n"
        "IMAplusplus_seg_metadata.csv  one row per mask\n"
        "IMAplusplus_img_metadata.csv  one row per image, with diagnosis and train/val/test split\n"
        "images/                       <id>.JPG\n"
        "segs/                         <id>_<annotator>_<tool>_<skill>_<objectId>.png (0/255)\n"
    )


def read_marker(folder: Path) -> dict | None:
    """The completion marker of a demo folder, or ``None`` when it is not one."""
    try:
        marker = json.loads((Path(folder) / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("generator") == _GENERATOR else None


def _check_target(out_dir: Path) -> None:
    """Refuse to replace anything but nothing, an empty folder or an earlier demo."""
    if out_dir.exists() and not out_dir.is_dir():
        raise IAAError(f"cannot write the demo dataset to {out_dir}: it is a file")
    if out_dir.is_dir() and any(out_dir.iterdir()) and read_marker(out_dir) is None:
        raise IAAError(
            f"cannot write the demo dataset to {out_dir}: the folder is not empty and does "
            "not hold an earlier demo dataset. Choose a new or empty folder."
        )


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished folder onto ``out_dir``, replacing an earlier demo there."""
    _check_target(out_dir)  # again: the folder may have changed while we drew
    old = None
    if out_dir.exists():
        # A directory cannot be renamed onto a non-empty one: move the old one
        # aside first. In between there is no folder, never a half-written one.
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if old is not None:
            os.rename(old, out_dir)
        elif read_marker(out_dir) is not None:
            return  # another process finished the same job first: keep its copy
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def iter_write_demo(
    out_dir: Path, seed: int = 0, n_lesions: int = DEFAULT_N_LESIONS
) -> Generator[Progress, None, Path]:
    """Write the demo dataset to ``out_dir``, yielding progress after each lesion.

    The files go to a temporary sibling folder that is renamed onto ``out_dir``
    at the end, so an interrupted or cancelled run leaves no half-written
    dataset (its temporary folder is removed when the generator is closed).

    Parameters
    ----------
    out_dir
        Where the dataset goes. It may be absent, empty, or an earlier demo
        output (which is replaced).
    seed
        Non-negative seed; the same seed gives byte-identical files on the same
        platform and library versions.
    n_lesions
        How many lesions; lesion ``k`` does not depend on it.

    Yields
    ------
    Progress
        ``Progress(done, total, image_id)`` after each lesion.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    IAAError
        When ``out_dir`` is a file or a non-empty folder that is not a demo
        output, or the arguments are out of range.
    """
    out_dir = Path(out_dir)
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise IAAError(f"the demo seed must be a non-negative integer, got {seed!r}")
    if n_lesions < 1:
        raise IAAError(f"the demo needs at least one lesion, got n_lesions={n_lesions}")
    _check_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        (tmp / "images").mkdir()
        (tmp / "segs").mkdir()
        plans = [plan_lesion(seed, i) for i in range(n_lesions)]
        splits = assign_splits(seed, [p.diagnosis.benign_malignant == "malignant" for p in plans])
        seg_rows: list[dict[str, str]] = []
        for plan in plans:
            seg_rows += _write_lesion(tmp, seed, plan)
            yield Progress(plan.index + 1, n_lesions, plan.image_id)
        img_rows = [_image_row(p, s, seed) for p, s in zip(plans, splits, strict=True)]
        _write_csv(tmp / "IMAplusplus_seg_metadata.csv", SEG_COLUMNS, seg_rows)
        _write_csv(tmp / "IMAplusplus_img_metadata.csv", IMG_COLUMNS, img_rows)
        (tmp / "README.txt").write_text(_readme(seed, n_lesions, len(seg_rows)), encoding="utf-8")
        marker = {"generator": _GENERATOR, "demo_version": DEMO_VERSION, "seed": int(seed),
                  "n_lesions": n_lesions}  # fmt: skip
        (tmp / MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")
        _move_into_place(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def write_demo(out_dir: Path, seed: int = 0, n_lesions: int = DEFAULT_N_LESIONS) -> Path:
    """Write the demo dataset to ``out_dir`` and return it (see ``iter_write_demo``)."""
    return run_to_end(iter_write_demo(out_dir, seed, n_lesions))


def demo_cache_path(seed: int = 0) -> Path:
    """Where ``demo_dataset_dir`` keeps the demo of this seed (which may not exist yet)."""
    root = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("iaa-desktop")
    return Path(root) / f"demo-v{DEMO_VERSION}-seed{seed}"


def is_complete_demo(folder: Path, seed: int = 0, n_lesions: int = DEFAULT_N_LESIONS) -> bool:
    """Whether ``folder`` holds the finished demo of this version, seed and size."""
    marker = read_marker(folder)
    return marker is not None and marker.get("demo_version") == DEMO_VERSION and (
        marker.get("seed") == seed and marker.get("n_lesions") == n_lesions
    )


def demo_dataset_dir(
    seed: int = 0, on_progress: Callable[[Progress], None] | None = None
) -> Path:
    """The demo dataset in the user cache directory, generated on the first call.

    The cache root is ``platformdirs.user_cache_dir("iaa-desktop")`` unless the
    environment variable ``IAA_DESKTOP_CACHE_DIR`` names another. Later calls
    find the completion marker and return at once. The GUI, wanting a progress
    bar and a cancel button, drives ``iter_write_demo(demo_cache_path(seed))``.
    """
    folder = demo_cache_path(seed)
    n_lesions = DEFAULT_N_LESIONS  # read now, not at import, so tests can shrink it
    if not is_complete_demo(folder, seed, n_lesions):
        log.info("generating the demo dataset in %s", folder)
        run_to_end(iter_write_demo(folder, seed, n_lesions), on_progress)
    return folder
