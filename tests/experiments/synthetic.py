"""A tiny stand-in for ``../shared/data``: the layout ``experiments/cv_study.py`` reads, synthetic content."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_PX = 48


def write_shared(root: Path, *, per_stratum: int = 8, seed: int = 0) -> dict[str, object]:
    """Write ``imapp/`` tables and ``isic2017_256/{train,val}`` JPEGs under ``root``.

    ``per_stratum`` images in each of benign/malignant x with/without IAA, split between
    train/ and val/, plus two images the study must leave out (an ``indeterminate`` label, and
    one missing from the metadata). Malignant images are redder and their IAA lower, so a
    model has something to learn. Returns the expected counts and per-image IAA.
    """
    import cv2
    import pandas as pd

    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        (root / "isic2017_256" / split).mkdir(parents=True, exist_ok=True)
    (root / "imapp").mkdir(parents=True, exist_ok=True)
    meta, table, iaa = [], [], {}
    index = 0
    for malignant in (0, 1):
        for has_iaa in (0, 1):
            for _ in range(per_stratum):
                image_id = f"ISIC_{index:07d}"
                split = "train" if index % 3 else "val"
                index += 1
                colour = np.array([60, 90, 200 if malignant else 120], dtype=np.float64)  # BGR
                pixels = colour + rng.normal(0, 25, (IMAGE_PX, IMAGE_PX, 3))
                cv2.imwrite(str(root / "isic2017_256" / split / f"{image_id}.jpg"),
                            np.clip(pixels, 0, 255).astype(np.uint8))
                meta.append((image_id, "malignant" if malignant else "benign"))
                if has_iaa:
                    value = float(np.clip(rng.normal(0.6 if malignant else 0.85, 0.08), 0.05, 0.99))
                    iaa[image_id] = value
                    table.append((f"{image_id}.jpg", value))
    blank = np.full((IMAGE_PX, IMAGE_PX, 3), 128, np.uint8)
    for image_id, label in (("ISIC_9000000", "indeterminate"), ("ISIC_9000001", None)):
        cv2.imwrite(str(root / "isic2017_256" / "train" / f"{image_id}.jpg"), blank)
        if label is not None:
            meta.append((image_id, label))
    pd.DataFrame(meta, columns=["isic_id", "benign_malignant"]).to_csv(
        root / "imapp" / "IMAplusplus_img_metadata.csv", index=False)
    pd.DataFrame(table, columns=["img_id", "dice_score_mean"]).to_csv(
        root / "imapp" / "IMAplusplus_multiannotator_subset_image_level_metrics.csv", index=False)
    return {"n_images": 4 * per_stratum, "n_malignant": 2 * per_stratum, "n_iaa": 2 * per_stratum,
            "iaa": iaa}
