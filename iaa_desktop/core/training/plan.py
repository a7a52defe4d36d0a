"""From the run dialog's inputs to run specs and a training set: validation, seeds, devices, export.

The GUI (which imports no torch or timm) asks this module what it may offer
(backbones, devices), turns the user's choices into ``RunSpec`` s (one per
seed, run one after another) with every problem named in a plain sentence, and
prepares the training set: an earlier export in ``<workspace>/training-sets/``
is re-used when the dataset's images, masks and IAA have not changed, else the
dataset is exported again with ``iter_export_training_set`` (a generator the GUI
drives in a worker: progress, and cancel between images).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import subprocess
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from iaa_desktop.core.dataset.model import Dataset
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import Progress
from iaa_desktop.core.training.backbones import (
    DEFAULT_PRETRAINED_BACKBONE,
    IMAGENET_CHOICES,
    OFFLINE_WEIGHTS,
    offline_weights_installed,
)
from iaa_desktop.core.training.remote import RemoteError, RemoteTarget
from iaa_desktop.core.training.runs import RUN_SPEC_FILE, RunSpec, RunSpecError, save_spec
from iaa_desktop.core.training.slurm_plan import SlurmRequest, cross_grid, slurm_request_problems
from iaa_desktop.core.training.training_set import (
    TrainingSetError,
    TrainingSetInfo,
    iter_export_training_set,
    read_training_set_info,
    source_fingerprint,
)
from iaa_desktop.core.workspace_paths import runs_dir, training_sets_dir

#: Backbones offered first: the paper's three best (EfficientNet-B1, MobileNetV2, ResNet-18), then
#: other timm CNNs (any timm name may be typed; Grad-CAM needs a convolutional feature map).
PAPER_BACKBONES = ("efficientnet_b1", "mobilenetv2_100", "resnet18")
BACKBONES = PAPER_BACKBONES + tuple(OFFLINE_WEIGHTS) + (
    "resnet10t", "resnet18d", "resnet26d", "resnet34", "resnet50", "resnext50_32x4d", "seresnext50_32x4d",
    "wide_resnet50_2", "efficientnet_b0", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "tf_efficientnetv2_s", "mobilenetv3_small_100", "mobilenetv3_large_100", "mnasnet_100", "lcnet_050",
    "ghostnet_100", "densenet121", "densenet169", "regnety_008", "regnety_016", "convnext_nano",
    "convnext_tiny", "inception_v3", "vgg16", "vgg16_bn",
)
#: Dialog task -> trainer mode.
TASKS = {"IAA regressor": "regression", "Diagnosis only": "classification", "Multi-task": "multitask"}
SPLIT_SOURCES = ("metadata", "seeded")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
SIDECAR_SUFFIX = ".source.json"


class PlanError(IAAError):
    """The run dialog's inputs cannot make a run; the message lists every problem, one a line."""


@dataclass(frozen=True)
class RunRequest:
    """What the run dialog asks for (before validation)."""

    mode: str = "multitask"
    backbone: str = "resnet18"
    alpha: float = 0.5
    epochs: int = 30
    lr: float = 1e-3  # AdamW's (RunSpec's default optimizer): README "Models on real images"
    batch_size: int = 32
    input_size: int = 224
    seeds: str = "0"
    device: str = "auto"
    pretrained: str = "none"
    split_source: str = "metadata"
    split_seed: int = 0
    max_steps_per_epoch: int = 0
    #: Fast mode: backbone frozen, features computed once, heads trained (``trainer.fast``).
    fast: bool = False
    #: Train on another machine over SSH (``core.remote``); empty: on this computer. With ``slurm``
    #: submitting from a login node, the login node (``core.training.slurm_login``).
    remote_host: str = ""
    remote_python: str = "python3"
    remote_workdir: str = "iaa-desktop"
    #: Submit to a Slurm cluster instead (``core.training.slurm``): one job per run, seeds crossed
    #: with the request's backbone and α lists; ``None``: this computer or the SSH host.
    slurm: SlurmRequest | None = None


# --- choices ---------------------------------------------------------------------------------------

def default_request() -> RunRequest:
    """What the run dialog starts from: EfficientNet-Lite0 with ImageNet weights when those are
    installed offline (ImageNet initialisation is what makes a classifier learn on ~2,000 images),
    else the plain defaults."""
    if offline_weights_installed(DEFAULT_PRETRAINED_BACKBONE):
        return RunRequest(backbone=DEFAULT_PRETRAINED_BACKBONE, pretrained="imagenet")
    return RunRequest()


def parse_nvidia_smi(text: str) -> list[tuple[str, str]]:
    """``nvidia-smi -L`` output -> [("cuda:0", "cuda:0 - NVIDIA H100 ..."), ...]."""
    devices = []
    for line in text.splitlines():
        match = re.match(r"\s*GPU\s+(\d+):\s*(.*?)\s*(\(UUID:.*)?$", line)
        if match:
            devices.append((f"cuda:{match.group(1)}", f"cuda:{match.group(1)} - {match.group(2)}"))
    return devices


def detect_devices(timeout: float = 3.0) -> list[tuple[str, str]]:
    """Devices to offer: auto, cpu, then each CUDA GPU ``nvidia-smi -L`` lists (no torch needed).

    Returns (value, label) pairs; a missing or failing ``nvidia-smi`` just means no GPU.
    """
    found = [("auto", "auto (a GPU when there is one)"), ("cpu", "cpu")]
    try:
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=timeout,
                                check=False)
    except (OSError, subprocess.SubprocessError):
        return found
    if result.returncode == 0:
        found += parse_nvidia_smi(result.stdout)
    return found


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds from "0", "0,1,2", "0 1 2" or "0-4" (ranges inclusive), in order, without repeats."""
    seeds: list[int] = []
    for part in re.split(r"[,\s;]+", text.strip()):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part) or re.fullmatch(r"(\d+)", part)
        if match is None:
            raise PlanError(f"seeds: {part!r} is not a whole number or a range like 0-4")
        low = int(match.group(1))
        high = int(match.group(2)) if match.lastindex == 2 else low
        if high < low:
            raise PlanError(f"seeds: the range {part!r} goes backwards")
        seeds.extend(s for s in range(low, high + 1) if s not in seeds)
    if not seeds:
        raise PlanError("seeds: give at least one seed, e.g. 0 or 0,1,2")
    if len(seeds) > 100:
        raise PlanError(f"seeds: {len(seeds)} runs is more than 100; give fewer seeds")
    return tuple(seeds)


# --- validation ------------------------------------------------------------------------------------

def request_problems(request: RunRequest) -> list[str]:
    """Every problem with the dialog's inputs, as sentences (empty when the request is usable)."""
    problems = []
    if request.mode not in TASKS.values():
        problems.append(f"Task must be one of {', '.join(TASKS)}.")
    if not _NAME.match(request.backbone.strip() or "?"):
        problems.append("Backbone must be a timm model name such as resnet18 (letters, digits, _ . -).")
    if request.mode == "multitask" and not 0.0 < request.alpha < 1.0:
        problems.append(f"α must lie strictly between 0 and 1 for multi-task training, not {request.alpha}.")
    if request.epochs < 1:
        problems.append("Epochs must be at least 1.")
    if not request.lr > 0:
        problems.append("Learning rate must be positive.")
    if request.batch_size < 1:
        problems.append("Batch size must be at least 1.")
    if not 16 <= request.input_size <= 1024:
        problems.append(f"Input size must lie between 16 and 1024 pixels, not {request.input_size}.")
    if request.max_steps_per_epoch < 0:
        problems.append("Batches per epoch must be 0 (all) or more.")
    if request.fast and request.pretrained.strip() in ("", "none"):
        problems.append("Fast mode trains only the heads on a frozen backbone: choose pretrained weights.")
    try:
        parse_seeds(request.seeds)
    except PlanError as exc:
        problems.append(str(exc)[0].upper() + str(exc)[1:] + ".")
    device = request.device.strip()
    if not (device in ("auto", "cpu", "mps") or re.fullmatch(r"cuda(:\d+)?", device)):
        problems.append(f"Device must be auto, cpu or cuda:N, not {device!r}.")
    pretrained = request.pretrained.strip()
    if pretrained not in ("none", *IMAGENET_CHOICES):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            problems.append(f"Pretrained weights: {pretrained} is not a file.")
        elif path.suffix.lower() not in (".safetensors", ".pth", ".pt", ".bin"):
            problems.append(f"Pretrained weights: {path.name} is not a .safetensors, .pth, .pt or .bin file.")
    if request.split_source not in SPLIT_SOURCES:
        problems.append(f"Split source must be one of {', '.join(SPLIT_SOURCES)}.")
    try:
        remote_target(request)
    except RemoteError as exc:
        problems.append(str(exc)[0].upper() + str(exc)[1:] + ".")
    if request.slurm is not None:
        problems += slurm_request_problems(request.slurm)
        if request.slurm.submit_from == "ssh":
            if not request.remote_host.strip():
                problems.append("Slurm through a login node: give the login node as SSH host.")
            if pretrained not in ("none", *IMAGENET_CHOICES):
                problems.append("Pretrained weights from a local file cannot be sent through a login node: "
                                "choose ImageNet or none.")
        elif request.remote_host.strip():
            problems.append("Train on Slurm or on an SSH host, not both.")
    return problems


def remote_target(request: RunRequest) -> RemoteTarget | None:
    """The SSH machine a request trains on (``None``: this computer); raises ``RemoteError`` if unusable."""
    if not request.remote_host.strip():
        return None
    target = RemoteTarget(host=request.remote_host.strip(), python=request.remote_python.strip(),
                          workdir=request.remote_workdir.strip())
    target.validate()
    return target


def plan_specs(request: RunRequest, training_set: str | Path) -> list[RunSpec]:
    """One validated ``RunSpec`` per seed (Slurm: seed x backbone x α); ``PlanError`` lists the problems."""
    problems = request_problems(request)
    if problems:
        raise PlanError("\n".join(problems))
    pretrained = request.pretrained.strip()
    if pretrained not in ("none", *IMAGENET_CHOICES):
        pretrained = str(Path(pretrained).expanduser().resolve())
    specs = []
    for seed in parse_seeds(request.seeds):
        try:
            spec = RunSpec(data=str(Path(training_set).resolve()), mode=request.mode,
                           backbone=request.backbone.strip(), pretrained=pretrained,
                           alpha=float(request.alpha), epochs=int(request.epochs),
                           batch_size=int(request.batch_size), lr=float(request.lr), seed=seed,
                           device=request.device.strip(),
                           max_steps_per_epoch=int(request.max_steps_per_epoch), fast=bool(request.fast))
            spec.validate()
        except RunSpecError as exc:
            raise PlanError(str(exc)) from None
        specs.append(spec)
    if request.slurm is not None:
        try:
            return cross_grid(specs, request.slurm)
        except (RunSpecError, ValueError) as exc:
            raise PlanError(str(exc)) from None
    return specs


def new_run_dir(workspace: str | Path, spec: RunSpec, now: dt.datetime | None = None, tag: str = "") -> Path:
    """A fresh run folder ``runs/<YYYYmmdd-HHMMSS>-<mode>-<backbone>[-<tag>]-s<seed>``, ``run.json`` written.

    ``tag`` tells apart runs of a grid that differ in more than backbone and seed (e.g. ``a0.25``).
    """
    now = now or dt.datetime.now()
    backbone = re.sub(r'[^A-Za-z0-9_.-]', '_', spec.backbone) + (f"-{tag}" if tag else "")
    base = f"{now:%Y%m%d-%H%M%S}-{spec.mode}-{backbone}-s{spec.seed}"
    folder = runs_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    run_dir, n = folder / base, 1
    while run_dir.exists():
        n += 1
        run_dir = folder / f"{base}-{n}"
    run_dir.mkdir()
    save_spec(spec, run_dir / RUN_SPEC_FILE)
    return run_dir


# --- the training set ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedSet:
    """The training set a run uses, and whether an earlier export was re-used."""

    path: Path
    reused: bool
    info: TrainingSetInfo


def training_set_path(workspace: str | Path, dataset: Dataset, size: int, split_source: str = "metadata",
                      split_seed: int = 0) -> Path:
    """Where the export of ``dataset`` with these settings is kept in the workspace."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset.name or dataset.root.name or "dataset")
    split = "metadata" if split_source == "metadata" else f"seeded{split_seed}"
    return training_sets_dir(workspace) / f"{name}-{size}px-{split}.h5"


def masks_digest(dataset: Dataset, iaa: pd.Series | None = None) -> str:
    """Hash of every mask file's name, size and mtime (and of a given IAA table): what the IAA depends on."""
    digest = hashlib.blake2b(digest_size=16)
    for lesion in dataset:
        for seg in lesion.segmentations:
            try:
                stat = seg.mask_path.stat()
                digest.update(f"{seg.mask_path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{seg.mask_path}\0missing\n".encode())
    if iaa is not None:
        digest.update(pd.util.hash_pandas_object(iaa.astype(float), index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def reusable_training_set(path: str | Path, dataset: Dataset, size: int, *,
                          masks: str, excluded_ids: Iterable[str] = ()) -> TrainingSetInfo | None:
    """The info of the export at ``path`` when it still matches ``dataset``, else ``None``.

    It matches when its size, source folder and masks digest are the same and
    its ``source_fingerprint`` (images' ids, sizes, mtimes and IAA values) is
    what the dataset gives now, with no image added or removed.
    """
    path = Path(path)
    try:
        recorded = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        info = read_training_set_info(path)
        with h5py.File(path, "r") as h5:
            ids = [v.decode() if isinstance(v, bytes) else str(v) for v in h5["image_id"][()]]
            iaa = h5["iaa"][()].astype(np.float32)
    except (OSError, ValueError, KeyError, TrainingSetError):
        return None
    excluded = sorted(set(excluded_ids))
    if recorded.get("masks_digest") != masks or info.input_size != size:
        return None
    if sorted(recorded.get("review_excluded", [])) != excluded:
        return None  # a reviewer excluded (or restored) a lesion since
    if str(info.attributes.get("source")) != str(dataset.root.resolve()):
        return None
    with_image = [lesion for lesion in dataset
                  if lesion.image_path is not None and lesion.image_id not in set(excluded)]
    by_id = {lesion.image_id: lesion for lesion in with_image}
    n_skipped = int(info.attributes.get("n_skipped", 0))
    if any(i not in by_id for i in ids) or len(ids) + n_skipped != len(with_image):
        return None
    try:
        current = source_fingerprint([by_id[i] for i in ids], iaa)
    except OSError:
        return None
    return info if current == info.attributes.get("source_fingerprint") else None


def iter_prepare_training_set(
    dataset: Dataset, workspace: str | Path, *, size: int = 224, split_source: str = "metadata",
    split_seed: int = 0, iaa: pd.Series | None = None, workers: int | None = None, cache="default",
    excluded_ids: Iterable[str] = (),
) -> Generator[Progress, None, PreparedSet]:
    """Re-use the workspace's export of ``dataset`` when unchanged, else export it again.

    A generator: yields ``Progress`` (one step per image, then the agreement
    computation) and returns a ``PreparedSet``. Closing it between steps (the
    GUI's Cancel) leaves no partial file. ``split_source`` ``seeded`` ignores the
    metadata's splits and draws a stratified 70/10/20 split with ``split_seed``.
    ``excluded_ids``: lesions a reviewer excluded from analysis; left out of the set
    (which says so in its attributes), and an export made with other exclusions is
    not re-used.
    """
    excluded_ids = frozenset(excluded_ids)
    if split_source not in SPLIT_SOURCES:
        raise PlanError(f"split source must be one of {', '.join(SPLIT_SOURCES)}, not {split_source!r}")
    path = training_set_path(workspace, dataset, size, split_source, split_seed)
    masks = masks_digest(dataset, iaa)
    yield Progress(0, 1, "checking for an earlier export")
    info = reusable_training_set(path, dataset, size, masks=masks, excluded_ids=excluded_ids)
    if info is not None:
        yield Progress(1, 1, f"re-using {path.name}")
        return PreparedSet(path, True, info)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = dataset
    if split_source == "seeded":
        source = dataclasses.replace(
            dataset, lesions=tuple(dataclasses.replace(lesion, split=None) for lesion in dataset))
    info = yield from iter_export_training_set(source, path, size=size, iaa=iaa, split_seed=split_seed,
                                               workers=workers, cache=cache, excluded_ids=excluded_ids)
    _sidecar(path).write_text(json.dumps({"masks_digest": masks, "dataset_root": str(dataset.root.resolve()),
                                          "size": size, "split_source": split_source,
                                          "split_seed": split_seed,
                                          "review_excluded": sorted(excluded_ids)}, indent=2) + "\n",
                              encoding="utf-8")
    return PreparedSet(path, False, info)


def describe_specs(specs: Sequence[RunSpec]) -> str:
    """One line for the log: what is about to run."""
    if not specs:
        return "nothing to run"
    spec = specs[0]
    seeds = ", ".join(str(s.seed) for s in specs)
    return (f"{len(specs)} run(s) of {spec.mode} {spec.backbone}, {spec.epochs} epoch(s), "
            f"batch {spec.batch_size}, lr {spec.lr:g}, seed(s) {seeds}, device {spec.device}")
