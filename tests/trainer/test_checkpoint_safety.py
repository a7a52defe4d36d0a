"""Safe loading of checkpoints and weights: no pickle runs, wrong models are refused, no network.

Part of the bad-input corpus: a checkpoint of another backbone or mode, a
pickle-based checkpoint file (including one that would run code), weights that
do not fit, and an audit that every ``torch.load`` in the code asks for
``weights_only=True``.
"""

import ast
import pickle
import socket
from pathlib import Path

import pytest
import torch

from tests.shared_data import REPO_ROOT
from trainer import checkpoints as ckpt
from trainer import models

MARKER_ENV = "IAA_TEST_PICKLE_MARKER"


class _RunsCode:
    """Unpickling this creates a file: proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _save(tmp_path, backbone="resnet10t", mode="regression") -> Path:
    torch.manual_seed(0)
    return ckpt.save_weights(models.build_model(backbone, mode), tmp_path, "best",
                             {"backbone": backbone, "mode": mode})


def test_a_checkpoint_of_another_backbone_is_refused(tmp_path):
    path = _save(tmp_path)
    with pytest.raises(ckpt.CheckpointError,
                       match=r"best\.safetensors: checkpoint was trained as backbone=resnet10t, "
                             r"mode=regression; this run is backbone=resnet18, mode=regression"):
        ckpt.load_weights(models.build_model("resnet18", "regression"), path, backbone="resnet18",
                          mode="regression")


def test_a_checkpoint_of_another_mode_is_refused(tmp_path):
    path = _save(tmp_path)
    with pytest.raises(ckpt.CheckpointError, match="this run is backbone=resnet10t, mode=multitask"):
        ckpt.load_weights(models.build_model("resnet10t", "multitask"), path, backbone="resnet10t",
                          mode="multitask")


def test_weights_that_do_not_fit_their_metadata_are_refused(tmp_path):
    path = _save(tmp_path, mode="classification")
    ckpt.write_json(path.with_suffix(".json"), {"format_version": 1, "backbone": "resnet10t",
                                                "mode": "regression"})
    with pytest.raises(ckpt.CheckpointError, match=r"best\.safetensors: weights do not fit the model"):
        ckpt.load_weights(models.build_model("resnet10t", "regression"), path, backbone="resnet10t",
                          mode="regression")


def test_a_pickle_checkpoint_is_not_picked_up_and_never_unpickled(tmp_path):
    marker = tmp_path / "pickle-ran"
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    with open(folder / "best.pt", "wb") as handle:
        pickle.dump({"model": _RunsCode(marker)}, handle)
    with pytest.raises(ckpt.CheckpointError, match="no best.safetensors checkpoint there"):
        ckpt.resolve_checkpoint(tmp_path)
    # The same pickle renamed to .safetensors: refused as unreadable, not executed.
    renamed = folder / "best.safetensors"
    (folder / "best.pt").rename(renamed)
    ckpt.write_json(renamed.with_suffix(".json"), {"backbone": "resnet10t", "mode": "regression"})
    with pytest.raises(ckpt.CheckpointError, match=r"best\.safetensors: unreadable weights"):
        ckpt.load_weights(models.build_model("resnet10t", "regression"), renamed, backbone="resnet10t",
                          mode="regression")
    assert not marker.exists()


def test_a_pickled_resume_state_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pickle-ran"
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save({"epoch": 1, "evil": _RunsCode(marker)}, folder / ckpt.STATE_FILE)
    with pytest.raises(ckpt.CheckpointError, match=r"last_state\.pt: unreadable resume state"):
        ckpt.load_state(tmp_path)
    assert not marker.exists()


def test_pickled_pretrained_weights_are_refused(tmp_path):
    marker = tmp_path / "pickle-ran"
    weights = tmp_path / "weights.pth"
    torch.save({"state_dict": {"conv.weight": _RunsCode(marker)}}, weights)
    with pytest.raises(models.ModelError, match=r"weights\.pth: cannot read the weights"):
        models.build_model("resnet10t", "regression", pretrained=str(weights))
    assert not marker.exists()


def _torch_load_calls(path: Path) -> list[tuple[int, bool]]:
    """(line, has weights_only=True) for every ``torch.load(...)`` call in a file."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            calls.append((node.lineno, safe))
    return calls


def test_every_torch_load_asks_for_weights_only():
    found = {}
    for package in ("iaa_desktop", "trainer", "experiments", "benchmarks"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for line, safe in _torch_load_calls(path):
                found[f"{path.relative_to(REPO_ROOT)}:{line}"] = safe
    assert found, "the audit found no torch.load at all"
    assert all(found.values()), {k: v for k, v in found.items() if not v}
    assert not any("pickle.load" in p.read_text(encoding="utf-8")
                   for package in ("iaa_desktop", "trainer") for p in (REPO_ROOT / package).rglob("*.py"))


def test_building_a_model_without_pretrained_weights_uses_no_network(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = models.build_model("resnet10t", "multitask")
    assert sum(p.numel() for p in model.parameters()) > 0
