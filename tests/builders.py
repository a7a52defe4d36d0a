"""Small hand-made datasets for tests, written into a temporary directory."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

SEG_COLUMNS = ["ISIC_id", "img_filename", "seg_filename", "annotator", "tool", "skill_level",
               "mskObjectID", "mask_md5"]


def disk(shape: tuple[int, int], center: tuple[int, int], radius: int) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def write_image(path: Path, shape=(48, 64), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def write_mask(path: Path, mask: np.ndarray, scale: int = 255) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), (mask.astype(np.uint8) * scale))
    return path


def make_imapp(root: Path, shape=(48, 64), images_dir="ISIC_images", masks_dir="segs") -> Path:
    """Three images in the IMA++ layout: two with 2-3 annotators, one with one.

    IMG_1: A00 (T1,S1), A01 (T2,S2) + ST, MV consensus; IMG_2: A00, A01, A02
    with A00 twice (a repeat); IMG_3: A02 only.
    """
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    specs = {
        "ISIC_0000001": [("A00", "T1", "S1", 14), ("A01", "T2", "S2", 12),
                         ("ST", "ST", "ST", 13), ("MV", "MV", "MV", 14)],
        "ISIC_0000002": [("A00", "T1", "S1", 10), ("A00", "T1", "S1", 11),
                         ("A01", "T2", "S2", 9), ("A02", "T3", "S1", 12)],
        "ISIC_0000003": [("A02", "T3", "S1", 8)],
    }
    for k, (image_id, marks) in enumerate(specs.items()):
        write_image(root / images_dir / f"{image_id}.JPG", shape, seed=k)
        for j, (annotator, tool, skill, radius) in enumerate(marks):
            if annotator in ("ST", "MV"):
                name = f"{image_id}_{annotator}_{annotator}_{annotator}_{annotator}.png"
                object_id = annotator
            else:
                object_id = f"{k:02d}{j:02d}" + "a" * 20
                name = f"{image_id}_{annotator}_{tool}_{skill}_{object_id}.png"
            write_mask(root / masks_dir / name, disk(shape, (24, 30 + j), radius))
            rows.append([image_id, f"{image_id}.JPG", name, annotator, tool, skill, object_id, ""])
    pd.DataFrame(rows, columns=SEG_COLUMNS).to_csv(root / "IMAplusplus_seg_metadata.csv", index=False)
    pd.DataFrame({
        "isic_id": list(specs),
        "benign_malignant": ["benign", "malignant", "indeterminate"],
        "diagnosis_1": ["Benign", "Malignant", "Indeterminate"],
        "diagnosis_3": ["Nevus", "Melanoma, NOS", None],
        "pixels_x": [shape[1]] * 3,
        "pixels_y": [shape[0]] * 3,
        "age_approx": ["40.0", "65.0", None],
    }).to_csv(root / "IMAplusplus_img_metadata.csv", index=False)
    return root


def make_folder(root: Path, shape=(40, 50)) -> Path:
    """Folder layout: images a, b, c; annotators R1, R2 (+ MV) with annotators.csv."""
    for k, image_id in enumerate(["a", "b", "c"]):
        write_image(root / "images" / f"{image_id}.png", shape, seed=k)
        write_mask(root / "masks" / "R1" / f"{image_id}.png", disk(shape, (20, 25), 10))
        if image_id != "c":
            write_mask(root / "masks" / "R2" / f"{image_id}.png", disk(shape, (20, 26), 9))
    write_mask(root / "masks" / "MV" / "a.png", disk(shape, (20, 25), 10))
    pd.DataFrame({"image_id": ["a", "b", "c"], "diagnosis": ["nevus", "melanoma", "nevus"],
                  "benign_malignant": ["benign", "malignant", "benign"],
                  "split": ["train", "test", "val"]}).to_csv(root / "metadata.csv", index=False)
    pd.DataFrame({"annotator": ["R1", "R2"], "tool": ["T1", "T3"],
                  "skill_level": ["S1", "S2"]}).to_csv(root / "annotators.csv", index=False)
    return root


def tree_digest(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: compare before/after to prove no writes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload and the CRC of type + payload."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A small valid-looking PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def make_many_annotators(root: Path, counts=(2, 5, 8), shape=(300, 400), repeat: str = "A03") -> Path:
    """IMA++ layout: a lesion ``ISIC_n<N>`` per N in ``counts`` with N annotators' masks; where
    N > 3, annotator ``repeat`` drew a second mask too (labels "A03 #1", "A03 #2", as in IMA++)."""
    rng = np.random.default_rng(3)
    rows = []
    for n in counts:
        image_id = f"ISIC_n{n}"
        write_image(root / "images" / f"{image_id}.JPG", shape, seed=n)
        annotators = [f"A{k:02d}" for k in range(n)] + ([repeat] if n > 3 else [])
        for j, annotator in enumerate(annotators):
            centre = (shape[0] // 2 + int(rng.integers(-12, 12)), shape[1] // 2 + int(rng.integers(-15, 15)))
            tool, skill, object_id = f"T{j % 3 + 1}", f"S{j % 2 + 1}", f"{j:02d}" + "a" * 22
            name = f"{image_id}_{annotator}_{tool}_{skill}_{object_id}.png"
            radius = min(shape) // 4 + int(rng.integers(-20, 20))
            write_mask(root / "segs" / name, disk(shape, centre, radius))
            rows.append([image_id, f"{image_id}.JPG", name, annotator, tool, skill, object_id, ""])
    pd.DataFrame(rows, columns=SEG_COLUMNS).to_csv(root / "IMAplusplus_seg_metadata.csv", index=False)
    pd.DataFrame({"isic_id": [f"ISIC_n{n}" for n in counts], "benign_malignant": "benign",
                  "pixels_x": shape[1], "pixels_y": shape[0]}).to_csv(
        root / "IMAplusplus_img_metadata.csv", index=False)
    return root
