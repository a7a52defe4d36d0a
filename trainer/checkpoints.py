"""Checkpoints without pickle: safetensors weights, JSON metadata, and a tensors-only resume state.

``checkpoints/``::

    best.safetensors  best.json     weights and metadata of the best epoch
    last.safetensors  last.json     the latest epoch
    last_state.pt                   optimizer, scheduler and RNG state for ``--resume``
                                    (tensors and primitives only: ``torch.load(weights_only=True)``)

Every file is written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.training.runs import CHECKPOINT_DIR

FORMAT_VERSION = 1
STATE_FILE = "last_state.pt"


class CheckpointError(IAAError):
    """A checkpoint is missing, unreadable, or does not fit the model asked for."""


def jsonable(value):
    """``value`` with NaN/inf floats as ``None`` and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(temp)
        os.chmod(temp, 0o644)  # mkstemp makes the file private; checkpoints are ordinary files
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_json(path: Path, values: dict) -> None:
    text = json.dumps(jsonable(values), indent=2, allow_nan=False) + "\n"
    _atomic(path, lambda temp: Path(temp).write_text(text, encoding="utf-8"))


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def save_weights(model: torch.nn.Module, run_dir: str | Path, name: str, metadata: dict) -> Path:
    """Write ``<name>.safetensors`` then ``<name>.json`` (metadata); returns the weights path."""
    folder = checkpoint_dir(run_dir)
    if getattr(model, "reg_head", None) is not None:
        metadata = {"iaa_head": model.iaa_head, **metadata}  # tells bounded from legacy heads apart
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    header = {"backbone": str(metadata.get("backbone", "")), "mode": str(metadata.get("mode", ""))}
    weights = folder / f"{name}.safetensors"
    _atomic(weights, lambda temp: save_file(tensors, temp, metadata=header))
    write_json(folder / f"{name}.json", {"format_version": FORMAT_VERSION, **metadata})
    return weights


def read_metadata(path: str | Path) -> dict:
    """The JSON metadata next to a checkpoint (``best.json`` for ``best.safetensors``)."""
    path = Path(path).with_suffix(".json")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint metadata not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint metadata ({exc})") from None
    if not isinstance(values, dict) or "backbone" not in values or "mode" not in values:
        raise CheckpointError(f"{path}: not IAA Desktop checkpoint metadata (no backbone/mode)")
    return values


def iaa_head_of(meta: dict) -> str:
    """The IAA head a checkpoint was trained with: ``sigmoid`` (bounded to [0, 1]), or ``linear``
    for checkpoints written before the bound (their metadata has no ``iaa_head``)."""
    head = meta.get("iaa_head", "linear")
    if head not in ("sigmoid", "linear"):
        raise CheckpointError(f"checkpoint metadata names an unknown IAA head {head!r} "
                              "(written by a newer IAA Desktop?)")
    return head


def resolve_checkpoint(where: str | Path, name: str = "best") -> Path:
    """A ``.safetensors`` file from a run directory, its ``checkpoints/`` folder, or the file itself."""
    where = Path(where)
    for candidate in (where, where / f"{name}.safetensors", checkpoint_dir(where) / f"{name}.safetensors"):
        if candidate.is_file() and candidate.suffix == ".safetensors":
            return candidate
    raise CheckpointError(f"{where}: no {name}.safetensors checkpoint there")


def load_weights(model: torch.nn.Module, path: str | Path, *, backbone: str, mode: str) -> dict:
    """Load weights into ``model`` after checking the metadata names the same backbone and mode.

    The model's IAA head (bounded ``sigmoid`` or legacy ``linear``) must be the checkpoint's:
    the two have the same tensors, so a mix-up would load silently and predict nonsense.
    Returns the metadata. Raises ``CheckpointError`` with a plain message otherwise.
    """
    path = Path(path)
    meta = read_metadata(path)
    if meta["backbone"] != backbone or meta["mode"] != mode:
        raise CheckpointError(
            f"{path}: checkpoint was trained as backbone={meta['backbone']}, mode={meta['mode']}; "
            f"this run is backbone={backbone}, mode={mode}")
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{path}: unreadable weights ({type(exc).__name__}: {exc})") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model ({exc})") from None
    # The bounded and the legacy head have the same tensors: only the metadata tells them apart.
    wanted = getattr(model, "iaa_head", None)
    if wanted is not None and getattr(model, "reg_head", None) is not None and iaa_head_of(meta) != wanted:
        raise CheckpointError(
            f"{path}: checkpoint has a {iaa_head_of(meta)} IAA head, the model a {wanted} one; build the "
            "model with the checkpoint's head (trainer.checkpoints.iaa_head_of)")
    return meta


# --- resume state --------------------------------------------------------------------------------

def rng_state() -> dict:
    """torch, numpy and Python RNG states as tensors and primitives."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["gauss"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))


def save_state(run_dir: str | Path, *, epoch: int, optimizer, scheduler, best: dict, extra: dict) -> Path:
    """Write ``last_state.pt``: what ``--resume`` needs beyond the weights (no pickled objects)."""
    state = {"format_version": FORMAT_VERSION, "epoch": epoch, "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "rng": rng_state(), "best": jsonable(best),
             "extra": jsonable(extra)}
    path = checkpoint_dir(run_dir) / STATE_FILE
    _atomic(path, lambda temp: torch.save(state, temp))
    return path


def load_state(run_dir: str | Path) -> dict:
    """Read ``last_state.pt`` with ``weights_only=True`` (arbitrary objects are refused)."""
    path = checkpoint_dir(run_dir) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: nothing to resume (no saved state)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise CheckpointError(f"{path}: unreadable resume state ({type(exc).__name__}: {exc})") from None
