"""The run dialog's inputs to run specs, devices, and the training-set step (re-use or export, cancel)."""

import os
import subprocess

import h5py
import pytest

from iaa_desktop.core.dataset import demo
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.progress import run_to_end
from iaa_desktop.core.training import plan as plan
from iaa_desktop.core.training.plan import (
    BACKBONES,
    PAPER_BACKBONES,
    PlanError,
    RunRequest,
    iter_prepare_training_set,
    new_run_dir,
    parse_nvidia_smi,
    parse_seeds,
    plan_specs,
    request_problems,
    training_set_path,
)
from iaa_desktop.core.training.runs import RunSpec, load_spec

SIZE = 32


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    return demo.write_demo(root / "demo", n_lesions=8)


def test_the_paper_backbones_come_first():
    assert BACKBONES[:3] == PAPER_BACKBONES == ("efficientnet_b1", "mobilenetv2_100", "resnet18")
    assert len(set(BACKBONES)) == len(BACKBONES)


@pytest.mark.parametrize(("text", "seeds"), [("0", (0,)), ("0,1,2", (0, 1, 2)), (" 3 1 ", (3, 1)),
                                             ("0-3", (0, 1, 2, 3)), ("1,1,2", (1, 2)), ("2; 0-1", (2, 0, 1))])
def test_seeds_are_parsed(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(("text", "message"), [("", "at least one"), ("a", "not a whole number"),
                                               ("3-1", "backwards"), ("0-500", "more than 100")])
def test_bad_seeds_are_named(text, message):
    with pytest.raises(PlanError, match=message):
        parse_seeds(text)


def test_every_problem_is_listed_in_plain_words(tmp_path):
    request = RunRequest(mode="multitask", backbone="res net", alpha=1.0, epochs=0, lr=0.0, batch_size=0,
                         input_size=8, seeds="x", device="gpu", pretrained=str(tmp_path / "missing.pt"),
                         split_source="random")
    problems = request_problems(request)
    assert len(problems) == 10
    joined = "\n".join(problems)
    for words in ("Backbone", "α must lie strictly between 0 and 1", "Epochs", "Learning rate", "Batch size",
                  "Input size", "Seeds", "Device must be auto, cpu or cuda:N", "missing.pt is not a file",
                  "Split source"):
        assert words in joined
    with pytest.raises(PlanError) as info:
        plan_specs(request, tmp_path / "set.h5")
    assert str(info.value).count("\n") == 9


def test_a_valid_request_gives_one_spec_per_seed(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    request = RunRequest(mode="classification", backbone=" resnet18 ", epochs=3, lr=0.02, batch_size=8,
                         seeds="0-2", device="cuda:1", pretrained=str(weights), max_steps_per_epoch=5)
    assert request_problems(request) == []
    specs = plan_specs(request, tmp_path / "set.h5")
    assert [s.seed for s in specs] == [0, 1, 2]
    assert {(s.mode, s.backbone, s.epochs, s.lr, s.batch_size, s.device, s.max_steps_per_epoch)
            for s in specs} == {("classification", "resnet18", 3, 0.02, 8, "cuda:1", 5)}
    assert specs[0].pretrained == str(weights.resolve())
    assert specs[0].data == str((tmp_path / "set.h5").resolve())
    assert request_problems(RunRequest(mode="regression", alpha=1.0)) == []  # α only matters for multitask


def test_new_run_dirs_are_unique_and_hold_the_spec(tmp_path):
    spec = plan_specs(RunRequest(seeds="4"), tmp_path / "set.h5")[0]
    first, second = new_run_dir(tmp_path / "ws", spec), new_run_dir(tmp_path / "ws", spec)
    assert first != second and first.parent == second.parent == tmp_path / "ws" / "runs"
    assert first.name.endswith("-multitask-resnet18-s4")
    assert load_spec(first / "run.json") == spec


def test_gpus_are_read_from_nvidia_smi():
    text = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\n"
            "GPU 1: NVIDIA RTX A6000 (UUID: GPU-5678)\n")
    assert parse_nvidia_smi(text) == [("cuda:0", "cuda:0 - NVIDIA H100 80GB HBM3"),
                                      ("cuda:1", "cuda:1 - NVIDIA RTX A6000")]
    assert parse_nvidia_smi("No devices were found") == []


def test_no_nvidia_smi_means_cpu_only(monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError("nvidia-smi")

    monkeypatch.setattr(subprocess, "run", missing)
    assert [value for value, _ in plan.detect_devices()] == ["auto", "cpu"]


def _prepare(dataset, ws, **kwargs):
    return run_to_end(iter_prepare_training_set(dataset, ws, size=SIZE, workers=1, cache=None, **kwargs))


def test_an_unchanged_dataset_reuses_its_export_and_a_change_exports_again(demo_root, tmp_path):
    dataset = load_dataset(demo_root)
    ws = tmp_path / "ws"
    first = _prepare(dataset, ws)
    assert not first.reused and first.path == training_set_path(ws, dataset, SIZE)
    assert first.info.n_images == len(dataset)
    stamp = first.path.stat().st_mtime_ns
    again = _prepare(load_dataset(demo_root), ws)
    assert again.reused and again.path == first.path and first.path.stat().st_mtime_ns == stamp

    other_size = run_to_end(iter_prepare_training_set(dataset, ws, size=SIZE + 8, workers=1, cache=None))
    assert not other_size.reused and other_size.path != first.path

    mask = next(iter(dataset)).segmentations[0].mask_path
    os.utime(mask, ns=(mask.stat().st_atime_ns, mask.stat().st_mtime_ns + 10_000_000_000))
    assert not _prepare(load_dataset(demo_root), ws).reused  # IAA may have changed
    image = next(iter(dataset)).image_path
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10_000_000_000))
    assert not _prepare(load_dataset(demo_root), ws).reused
    assert _prepare(load_dataset(demo_root), ws).reused


def test_a_seeded_split_ignores_the_metadata(demo_root, tmp_path):
    dataset = load_dataset(demo_root)
    prepared = _prepare(dataset, tmp_path / "ws", split_source="seeded", split_seed=3)
    assert prepared.info.split_rule == "seeded_stratified"
    assert prepared.path.name.endswith("-seeded3.h5")
    with h5py.File(prepared.path) as h5:
        assert int(h5.attrs["split_seed"]) == 3
    with pytest.raises(PlanError, match="split source"):
        _prepare(dataset, tmp_path / "ws", split_source="random")


def test_closing_the_export_midway_leaves_no_file(demo_root, tmp_path):
    dataset = load_dataset(demo_root)
    ws = tmp_path / "ws"
    job = iter_prepare_training_set(dataset, ws, size=SIZE, workers=1, cache=None)
    steps = [next(job) for _ in range(3)]
    assert steps[0].message == "checking for an earlier export"
    job.close()  # what the GUI's Cancel does, between two images
    folder = training_set_path(ws, dataset, SIZE).parent
    assert sorted(p.name for p in folder.iterdir()) == []


def test_lesions_a_reviewer_excluded_are_left_out_and_a_changed_exclusion_exports_again(demo_root, tmp_path):
    import h5py

    dataset = load_dataset(demo_root)
    ws = tmp_path / "ws"
    excluded = frozenset({dataset.lesions[0].image_id, dataset.lesions[1].image_id})
    first = _prepare(dataset, ws, excluded_ids=excluded)
    assert first.info.n_images == len(dataset) - 2
    with h5py.File(first.path, "r") as h5:
        ids = {v.decode() if isinstance(v, bytes) else str(v) for v in h5["image_id"][()]}
        assert not ids & excluded
        assert int(h5.attrs["n_review_excluded"]) == 2
    assert _prepare(dataset, ws, excluded_ids=excluded).reused
    assert not _prepare(dataset, ws).reused  # the reviewer restored them: export again
    assert _prepare(dataset, ws).reused


def test_fast_mode_reaches_the_spec_and_needs_pretrained_weights(tmp_path):
    assert RunRequest().lr == RunSpec().lr  # the dialog starts from the trainer's measured default
    refused = request_problems(RunRequest(fast=True, pretrained="none"))
    assert refused == ["Fast mode trains only the heads on a frozen backbone: choose pretrained weights."]
    specs = plan_specs(RunRequest(fast=True, pretrained="timm", seeds="0,1"), tmp_path / "set.h5")
    assert [s.fast for s in specs] == [True, True]
    assert not plan_specs(RunRequest(pretrained="timm"), tmp_path / "set.h5")[0].fast
