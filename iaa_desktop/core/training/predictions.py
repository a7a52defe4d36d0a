"""A model's predictions on a dataset (``iaa-predict``'s CSV and Grad-CAM maps), read for the browser.

``iaa-predict`` writes one row per image (``image_id``, ``split``, ``iaa_true``,
``malignant_true``, and ``iaa_pred`` and/or ``malignant_prob``) and, with
``--cam``, ``<image_id>_<head>_cam.png`` (gray, 0-255) per image. The browser
gets the columns ``predicted_iaa`` and ``p_malignant`` per image id; the
predictions panel gets the scatter of predicted vs true IAA with MAE and Pearson.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.training_set import read_split_ids

#: Columns the browser gets, with their headers.
PREDICTION_COLUMNS = {"predicted_iaa": "Predicted IAA", "p_malignant": "P(malignant)"}
CAM_HEADS = ("regression", "classification")
#: The image subsets a scatter can be drawn over (see ``iaa_scatter``).
SUBSETS = ("unseen", "all", "seen")
PREDICTIONS_DIR = "predictions"


class PredictionsError(IAAError):
    """A predictions file that cannot be read."""


@dataclass(frozen=True)
class PredictionPaths:
    """Where a run's predictions on one training set go: ``<run>/predictions/<set>.csv`` and ``cams/``."""

    csv: Path
    cam_dir: Path


def prediction_paths(run_dir: str | Path, training_set: str | Path) -> PredictionPaths:
    folder = Path(run_dir) / PREDICTIONS_DIR
    stem = Path(training_set).stem
    return PredictionPaths(folder / f"{stem}.csv", folder / f"{stem}-cams")


def read_predictions(path: str | Path) -> pd.DataFrame:
    """The predictions CSV as a frame indexed by ``image_id`` with ``predicted_iaa`` / ``p_malignant``.

    Also keeps ``split``, ``iaa_true`` (NaN unknown) and ``malignant_true`` (-1 unknown).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"image_id": str, "split": str})
    except FileNotFoundError:
        raise PredictionsError(f"{path}: predictions file not found") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PredictionsError(f"{path}: not a readable predictions CSV ({exc})") from None
    if "image_id" not in frame.columns or not {"iaa_pred", "malignant_prob"} & set(frame.columns):
        raise PredictionsError(f"{path}: not an iaa-predict CSV (needs image_id and iaa_pred or "
                               "malignant_prob)")
    frame = frame.rename(columns={"iaa_pred": "predicted_iaa", "malignant_prob": "p_malignant"})
    frame = frame.drop_duplicates("image_id", keep="last").set_index("image_id")
    for column in ("predicted_iaa", "p_malignant", "iaa_true"):
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def browser_columns(predictions: pd.DataFrame) -> pd.DataFrame:
    """Only the per-image prediction columns (``predicted_iaa`` and/or ``p_malignant``), by image id."""
    return predictions[[c for c in PREDICTION_COLUMNS if c in predictions.columns]].copy()


@dataclass(frozen=True)
class ScatterData:
    """Predicted vs true IAA over the images that have both, with the paper's regression metrics."""

    image_ids: tuple[str, ...]
    true: np.ndarray
    predicted: np.ndarray
    mae: float
    pearson: float
    pearson_p: float
    #: 1 malignant, 0 benign, -1 unknown, per point (from the predictions' ``malignant_true``).
    malignant: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    #: The training split's median IAA (``iaa-predict``'s ``iaa_baseline``), NaN when not recorded,
    #: and the MAE of predicting it for every point: the constant the model must beat.
    baseline: float = math.nan
    baseline_mae: float = math.nan
    #: Which images the figures are over: ``unseen`` (the run neither trained nor chose its
    #: epoch on them), ``seen`` (its train and validation images), or ``all``.
    subset: str = "all"
    #: Images with both values that the subset left out.
    n_left_out: int = 0

    @property
    def mae_ratio(self) -> float:
        """The model's MAE over the constant's (below 1: the model beats the training median)."""
        ok = math.isfinite(self.baseline_mae) and self.baseline_mae > 0
        return self.mae / self.baseline_mae if ok else math.nan

    @property
    def n(self) -> int:
        return len(self.image_ids)


def iaa_scatter(predictions: pd.DataFrame, true_iaa: pd.Series | None = None, *,
                seen: Collection[str] | None = None, subset: str = "unseen") -> ScatterData:
    """Scatter data of ``predicted_iaa`` against the true IAA, with the training-median constant's MAE.

    ``true_iaa``: image id -> IAA (the dataset's image-level agreement); the
    predictions' own ``iaa_true`` column (the training set's) when ``None``.
    Images without either value are left out; Pearson is NaN below 3 points or
    for a constant series.

    ``seen``: the image ids the run trained on or chose its best epoch by
    (``seen_in_training``); a figure over them flatters the model, so by default
    (``subset="unseen"``) they are left out. ``subset="seen"`` keeps only them,
    ``"all"`` every image; with ``seen=None`` (not known) every image is used and
    the result says ``subset="all"``.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {', '.join(SUBSETS)}, not {subset!r}")
    if "predicted_iaa" not in predictions.columns:
        raise PredictionsError("these predictions have no predicted IAA (a diagnosis-only model)")
    truth = true_iaa if true_iaa is not None else predictions.get("iaa_true")
    if truth is None:
        raise PredictionsError("no true IAA to compare the predictions with")
    truth = pd.to_numeric(pd.Series(truth), errors="coerce").astype(float)
    truth = truth[~truth.index.duplicated()]
    joined = pd.DataFrame({"predicted": predictions["predicted_iaa"],
                           "true": truth.reindex(predictions.index)}).dropna()
    n_both = len(joined)
    if seen is None:
        subset = "all"
    elif subset != "all":
        is_seen = joined.index.isin(pd.Index(list(seen)))
        joined = joined[~is_seen if subset == "unseen" else is_seen]
    predicted, true = joined["predicted"].to_numpy(), joined["true"].to_numpy()
    mae = float(np.mean(np.abs(predicted - true))) if len(joined) else math.nan
    pearson, p = math.nan, math.nan
    if len(joined) >= 3 and np.ptp(predicted) > 0 and np.ptp(true) > 0:
        from scipy import stats  # lazily, as core.stats does (see its _scipy_stats_note)

        result = stats.pearsonr(predicted, true)
        pearson, p = float(result.statistic), float(result.pvalue)
    if "malignant_true" in predictions.columns:
        labels = pd.to_numeric(predictions["malignant_true"], errors="coerce").reindex(joined.index)
        malignant = labels.fillna(-1).to_numpy(dtype=int)
    else:
        malignant = np.full(len(joined), -1, dtype=int)
    baseline = math.nan
    if "iaa_baseline" in predictions.columns:
        values = pd.to_numeric(predictions["iaa_baseline"], errors="coerce").dropna()
        baseline = float(values.iloc[0]) if len(values) else math.nan
    baseline_mae = float(np.mean(np.abs(true - baseline))) if len(joined) and math.isfinite(baseline) \
        else math.nan
    return ScatterData(tuple(str(i) for i in joined.index), true, predicted, mae, pearson, p, malignant,
                       baseline, baseline_mae, subset, n_both - len(joined))


def seen_in_training(training_set: str | Path) -> frozenset[str]:
    """The image ids a run trained on or chose its best epoch by: its training set's train and val splits.

    Raises ``TrainingSetError`` (naming the file) when the training set cannot be read.
    """
    splits = read_split_ids(training_set)
    return splits.get("train", frozenset()) | splits.get("val", frozenset())


def cam_path(cam_dir: str | Path, image_id: str, head: str) -> Path:
    """The gray Grad-CAM file ``iaa-predict`` writes for an image and a head."""
    safe = re.sub(r"[^\w.-]", "_", str(image_id))
    return Path(cam_dir) / f"{safe}_{head}_cam.png"


def available_cam_heads(cam_dir: str | Path) -> list[str]:
    """The heads that have Grad-CAM maps in ``cam_dir``."""
    folder = Path(cam_dir)
    return [head for head in CAM_HEADS if folder.is_dir() and any(folder.glob(f"*_{head}_cam.png"))]


def read_cam(cam_dir: str | Path, image_id: str, head: str | None = None,
             shape: tuple[int, int] | None = None) -> np.ndarray | None:
    """The Grad-CAM map of one image as float32 in [0, 1], or ``None`` when there is none.

    ``head``: which head's map (the first available when ``None``). ``shape``:
    (height, width) to resize to (bilinear), e.g. the image shown in the lesion view.
    """
    heads = [head] if head else list(CAM_HEADS)
    for name in heads:
        path = cam_path(cam_dir, image_id, name)
        if not path.is_file():
            continue
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise PredictionsError(f"{path}: not a readable Grad-CAM image")
        cam = gray.astype(np.float32) / 255.0
        if shape is not None and cam.shape != tuple(shape):
            cam = cv2.resize(cam, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)
        return np.clip(cam, 0.0, 1.0)
    return None


def checkpoint_input_size(run_dir: str | Path, which: str = "best", default: int = 224) -> int:
    """The image size a run's checkpoint was trained on (its ``checkpoints/<which>.json``)."""
    import json

    path = Path(run_dir) / "checkpoints" / f"{which}.json"
    try:
        return int(json.loads(path.read_text(encoding="utf-8")).get("input_size") or default)
    except (OSError, ValueError, TypeError, AttributeError):
        return default


def default_cam_head(mode: str) -> str:
    """The head whose Grad-CAM is drawn: the IAA head when the model has one (as the study's figures)."""
    return "classification" if mode == "classification" else "regression"
