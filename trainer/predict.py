"""``iaa-predict --checkpoint RUN_DIR --data SET.h5 --out predictions.csv``: a model over a training set.

``--cam regression|classification`` also writes Grad-CAM heatmaps of that head
(the multi-task model has both) to ``--cam-dir``. Grad-CAM is computed here (a
dozen lines on timm's ``forward_features``/``forward_head``) rather than with the
``grad-cam`` package, which requires the full ``opencv-python`` wheel (its bundled
Qt plugins clash with PySide6's) and scikit-learn.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from iaa_desktop.core.errors import IAAError

log = logging.getLogger(__name__)

CAM_HEADS = ("regression", "classification")


def grad_cam(model, images, head: str):
    """Grad-CAM maps (N, H, W) in [0, 1] of one head over the backbone's last feature map.

    ``head``: ``regression`` (the predicted IAA) or ``classification`` (the malignant
    logit). Needs a backbone whose ``forward_features`` returns (N, C, h, w) (CNNs).
    """
    import torch
    import torch.nn.functional as F

    from trainer.models import ModelError

    layer = model.reg_head if head == "regression" else model.cls_head
    if layer is None:
        raise ModelError(f"a {model.mode} model has no {head} head for Grad-CAM")
    model.eval()
    with torch.enable_grad():
        features = model.backbone.forward_features(images)
        if features.ndim != 4:
            raise ModelError(f"Grad-CAM needs a convolutional feature map; {model.backbone_name} gives "
                             f"shape {tuple(features.shape)}")
        out = layer(model.backbone.forward_head(features))
        # The regression score is the head's value before the bounding sigmoid: the same ranking,
        # without the sigmoid's vanishing gradient for IAA near 0 or 1.
        score = out[:, 0] if head == "regression" else out[:, 1]
        (grads,) = torch.autograd.grad(score.sum(), features)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * features).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]
    return cam / peak


def write_cams(model, dataset, table, head: str, out_dir: Path, device) -> int:
    """Write ``<image_id>_<head>_cam.png`` (gray) and ``_overlay.png`` per image; returns the count."""
    import cv2

    from trainer.data import normalize

    out_dir.mkdir(parents=True, exist_ok=True)
    mean, std = dataset.mean.to(device), dataset.std.to(device)
    for item in range(len(dataset)):
        sample = dataset[item]
        cam = grad_cam(model, normalize(sample["image"][None].to(device), mean, std), head)[0].cpu().numpy()
        rgb = np.ascontiguousarray(sample["image"].numpy().transpose(1, 2, 0))  # uint8 RGB as stored
        heat = (cam * 255).astype(np.uint8)
        overlay = cv2.addWeighted(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 0.5,
                                  cv2.applyColorMap(heat, cv2.COLORMAP_JET), 0.5, 0)
        image_id = re.sub(r"[^\w.-]", "_", str(table.image_id[int(sample["row"])]))  # a file name, safely
        name = f"{image_id}_{head}"
        cv2.imwrite(str(out_dir / f"{name}_cam.png"), heat)
        cv2.imwrite(str(out_dir / f"{name}_overlay.png"), overlay)
    return len(dataset)


def predict_training_set(checkpoint: str | Path, data: str | Path, *, device: str = "auto",
                         batch_size: int = 32, which: str = "best", cam: str | None = None,
                         cam_dir: str | Path | None = None) -> pd.DataFrame:
    """Predictions of a checkpoint for every image of a training set, in file order.

    Columns: ``image_id``, ``split``, ``iaa_true`` (NaN unknown), ``malignant_true``
    (-1 unknown), and ``iaa_pred`` and/or ``malignant_prob`` as the model's mode gives.
    With an IAA head also ``iaa_baseline`` (the training split's median IAA, the constant
    the model must beat; absent for checkpoints that did not record it) and ``iaa_clipped``:
    ``iaa_pred`` always lies in [0, 1]; a checkpoint from before the bounded head
    (``trainer.models``) is clipped there, and ``iaa_clipped`` marks the images it moved.
    Images are normalised with the checkpoint's mean/std (the backbone's pretrained
    configuration for ImageNet weights). With ``cam`` (a head), Grad-CAM heatmaps go to
    ``cam_dir`` (see ``write_cams``).
    """
    from torch.utils.data import DataLoader

    from trainer import checkpoints as ckpt
    from trainer.data import H5ImageDataset, read_table
    from trainer.models import build_model
    from trainer.train import predict, resolve_device

    path = ckpt.resolve_checkpoint(checkpoint, which)
    meta = ckpt.read_metadata(path)
    model = build_model(meta["backbone"], meta["mode"], iaa_head=ckpt.iaa_head_of(meta))
    ckpt.load_weights(model, path, backbone=meta["backbone"], mode=meta["mode"])
    table = read_table(data)
    norm = meta.get("normalization") or {}
    if norm:
        table = dataclasses.replace(table, mean=tuple(norm["mean"]), std=tuple(norm["std"]))
    if meta.get("input_size") not in (None, table.input_size):
        log.warning("%s: images are %d px, the model was trained on %s px", data, table.input_size,
                    meta.get("input_size"))
    target = resolve_device(device)
    dataset = H5ImageDataset(table, np.arange(len(table.image_id)))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=target.type == "cuda")
    model.to(target)
    try:
        out = predict(model, loader, target, amp=target.type == "cuda")
        if cam is not None:
            write_cams(model, dataset, table, cam, Path(cam_dir or "cams"), target)
    finally:
        dataset.close()
    rows = out["row"]
    frame = pd.DataFrame({"image_id": table.image_id[rows], "split": table.split[rows],
                          "iaa_true": table.iaa[rows], "malignant_true": table.malignant[rows]})
    if out["iaa_pred"].size:
        pred = out["iaa_pred"].astype(np.float64)
        outside = (pred < 0.0) | (pred > 1.0)
        if outside.any():
            log.warning("%s: %d of %d IAA predictions fell outside [0, 1] (a checkpoint with the old "
                        "unbounded head); clipped and flagged in iaa_clipped", path, int(outside.sum()),
                        outside.size)
        frame["iaa_pred"] = np.clip(pred, 0.0, 1.0)
        frame["iaa_clipped"] = outside
        median = meta.get("iaa_training_median")
        if median is not None:
            frame["iaa_baseline"] = float(median)
    if out["prob"].size:
        frame["malignant_prob"] = out["prob"]
    return frame


def baseline_summary(frame: pd.DataFrame) -> dict:
    """MAE of the model and of the training-median constant per split (and ``all``) where IAA is known.

    Empty when the frame has no predicted IAA, no baseline or no known IAA.
    """
    from trainer.metrics import regression_metrics

    if not {"iaa_pred", "iaa_baseline"} <= set(frame.columns):
        return {}
    known = frame[frame["iaa_true"].notna()]
    if known.empty:
        return {}
    baseline = float(known["iaa_baseline"].iloc[0])
    groups = {"all": known, **{str(k): g for k, g in known.groupby("split") if str(k)}}
    out = {}
    for name, group in groups.items():
        metrics = regression_metrics(group["iaa_pred"].to_numpy(), group["iaa_true"].to_numpy(),
                                     baseline=baseline)
        out[name] = {"n": len(group), "mae": metrics["mae"], "baseline_mae": metrics["baseline_mae"],
                     "mae_ratio": metrics["mae_ratio"], "pearson": metrics["pearson"]}
    return {"iaa_training_median": baseline, "splits": out}


def image_folder_training_set(folder: Path, size: int, out_path: Path) -> Path:
    """A training set (unknown labels and IAA) of every image in ``folder``, for prediction.

    Written with the same export as ``iaa-desktop export-training-set`` (same
    decoding and resizing), to ``out_path``, which must lie outside ``folder``.
    """
    from iaa_desktop.core.dataset.io.discover import IMAGE_EXTENSIONS, index_images, list_files
    from iaa_desktop.core.dataset.model import Dataset, Lesion
    from iaa_desktop.core.progress import run_to_end
    from iaa_desktop.core.training.training_set import iter_export_training_set

    by_id, _ = index_images(folder, list_files(folder))
    if not by_id:
        raise IAAError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) to predict on")
    lesions = tuple(Lesion(image_id=path.stem, image_path=path) for path in by_id.values())
    dataset = Dataset(root=folder, layout="images", lesions=lesions, name=folder.name)
    run_to_end(iter_export_training_set(dataset, out_path, size=size, cache=None))
    return out_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iaa-predict",
                                     description="Predict IAA and/or malignancy with a trained checkpoint.")
    parser.add_argument("--checkpoint", required=True,
                        help="run directory, its checkpoints/ or a .safetensors")
    parser.add_argument("--which", default="best", choices=("best", "last"))
    parser.add_argument("--data", required=True,
                        help="training set .h5, or a folder of images (resized as the checkpoint expects)")
    parser.add_argument("--out", required=True, help="predictions CSV")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32, dest="batch_size")
    parser.add_argument("--cam", choices=CAM_HEADS, help="also write Grad-CAM heatmaps of this head")
    parser.add_argument("--cam-dir", dest="cam_dir",
                        help="folder of the heatmaps (default: cams/ beside --out)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(args.data)
            if data.is_dir():
                from trainer import checkpoints as ckpt

                meta = ckpt.read_metadata(ckpt.resolve_checkpoint(args.checkpoint, args.which))
                data = image_folder_training_set(data, int(meta.get("input_size") or 224),
                                                 Path(tmp) / "images.h5")
            frame = predict_training_set(args.checkpoint, data, device=args.device,
                                         batch_size=args.batch_size, which=args.which, cam=args.cam,
                                         cam_dir=args.cam_dir or Path(args.out).parent / "cams")
            if Path(args.data).is_dir():
                frame["split"] = ""  # a folder of images has no split
        from trainer.checkpoints import _atomic, write_json

        _atomic(Path(args.out), lambda temp: frame.to_csv(temp, index=False))
        summary = baseline_summary(frame)
        if summary:
            write_json(summary_path(args.out), summary)
    except IAAError as exc:
        print(f"iaa-predict: {exc}", file=sys.stderr)
        return 1
    print(f"iaa-predict: {len(frame)} predictions written to {args.out}")
    for name, row in (summary.get("splits") or {}).items():
        print(f"iaa-predict: {name}: IAA MAE {row['mae']:.4f} vs {row['baseline_mae']:.4f} for the training "
              f"median {summary['iaa_training_median']:.3f} (ratio {row['mae_ratio']:.3f}, n={row['n']})")
    return 0


def summary_path(out: str | Path) -> Path:
    """``predictions.summary.json`` beside ``predictions.csv``: the model's and the baseline's MAE."""
    out = Path(out)
    return out.with_name(out.stem + ".summary.json")


if __name__ == "__main__":
    raise SystemExit(main())
