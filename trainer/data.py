"""The HDF5 training set as torch datasets: one index read at a time, lazily opened per worker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from iaa_desktop.core.training.training_set import TrainingSetError, read_training_set_info


@dataclass(frozen=True)
class TrainingTable:
    """The small per-image columns of a training set (everything but the pixels)."""

    path: Path
    image_id: np.ndarray
    split: np.ndarray
    iaa: np.ndarray
    malignant: np.ndarray
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    fingerprint: str


def _strings(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def read_table(path: str | Path) -> TrainingTable:
    """Read (and check, via ``read_training_set_info``) the columns and attributes of a training set."""
    info = read_training_set_info(path)
    with h5py.File(info.path, "r") as h5:
        table = TrainingTable(
            path=info.path,
            image_id=_strings(h5["image_id"][()]),
            split=_strings(h5["split"][()]),
            iaa=h5["iaa"][()].astype(np.float32),
            malignant=h5["malignant"][()].astype(np.int64),
            input_size=info.input_size,
            mean=tuple(float(v) for v in info.attributes["normalization_mean"]),
            std=tuple(float(v) for v in info.attributes["normalization_std"]),
            fingerprint=str(info.attributes.get("source_fingerprint", "")),
        )
    return table


def select_indices(table: TrainingTable, split: str | None, mode: str) -> np.ndarray:
    """Rows of ``split`` (all rows for ``None``) that carry the labels ``mode`` trains on.

    Regression drops unknown IAA (NaN), classification drops unknown labels (-1),
    multitask keeps rows with at least one of the two (the losses mask the other).
    """
    rows = np.ones(len(table.image_id), dtype=bool) if split is None else table.split == split
    has_iaa = ~np.isnan(table.iaa)
    has_label = table.malignant >= 0
    if mode == "regression":
        rows &= has_iaa
    elif mode == "classification":
        rows &= has_label
    else:
        rows &= has_iaa | has_label
    return np.flatnonzero(rows)


class RandomRot90(torch.nn.Module):
    """Rotate by 0, 90, 180 or 270 degrees, drawn from torch's generator."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        k = int(torch.randint(0, 4, ()).item())
        return torch.rot90(image, k, dims=(-2, -1)) if k else image


def train_augmentation() -> v2.Compose:
    """The reference's augmentation on uint8 CHW tensors: rotations, flips, autocontrast, blur, sharpness."""
    return v2.Compose([
        RandomRot90(),
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.RandomAutocontrast(p=0.3),
        v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.0))], p=0.2),
        v2.RandomAdjustSharpness(sharpness_factor=1.5, p=0.2),
    ])


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) batch -> float, scaled to [0, 1] and standardised channel-wise.

    Done on the whole batch after it reached the device (see ``trainer.train``):
    the loader ships uint8, a quarter of the bytes of float32, and the GPU does
    the arithmetic instead of the loader's CPU.
    """
    return (images.float().div_(255.0) - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


class H5ImageDataset(Dataset):
    """Images of a training set by row, as uint8 (3, H, W) tensors (normalise with ``normalize``).

    The HDF5 file is opened lazily on first access in each process (h5py handles
    must not cross a fork), and read one index at a time: fancy indexing with a
    random index list is ~100x slower.
    """

    def __init__(self, table: TrainingTable, indices: np.ndarray, augment: bool = False) -> None:
        self.table = table
        self.indices = np.asarray(indices, dtype=np.int64)
        self.augment = train_augmentation() if augment else None
        self.mean = torch.tensor(table.mean, dtype=torch.float32)
        self.std = torch.tensor(table.std, dtype=torch.float32)
        self._h5: h5py.File | None = None
        self._dataset: h5py.Dataset | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def _images(self) -> h5py.Dataset:
        if self._h5 is None or self._pid != os.getpid():
            try:
                self._h5 = h5py.File(self.table.path, "r")
            except OSError as exc:
                raise TrainingSetError(f"{self.table.path}: cannot open the training set ({exc})") from None
            self._pid = os.getpid()
            # Looking a dataset up by name costs ~0.1 ms in h5py: do it once per handle.
            self._dataset = self._h5["images"]
        return self._dataset

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        row = int(self.indices[item])
        image = torch.from_numpy(self._images()[row]).permute(2, 0, 1).contiguous()
        if self.augment is not None:
            image = self.augment(image)
        return {
            "image": image,
            "iaa": torch.tensor(self.table.iaa[row], dtype=torch.float32),
            "malignant": torch.tensor(self.table.malignant[row], dtype=torch.int64),
            "row": torch.tensor(row, dtype=torch.int64),
        }

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = self._dataset = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_h5"] = state["_dataset"] = None  # workers open their own handle
        return state
