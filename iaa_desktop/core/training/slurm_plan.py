"""The run dialog's "Slurm cluster" choice: its fields, their problems, and the grid they make.

``SlurmRequest`` is what the dialog gathers (text as typed); ``slurm_request_problems``
names every problem in a sentence; ``slurm_options`` gives the ``slurm.SlurmOptions``
and ``cross_grid`` crosses the dialog's per-seed specs with the backbone and α
lists (``slurm_grid.GridSpec``). No Qt; ``core.training.plan`` carries a
``SlurmRequest`` in its ``RunRequest``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from iaa_desktop.core.training.runs import RunSpec

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class SlurmRequest:
    """Slurm fields of the run dialog; ``backbones``/``alphas``: extra grid axes as typed (comma lists).

    ``submit_from``: ``local`` (sbatch on this machine) or ``ssh`` (the project's CLI on a login
    node: the request's SSH host, Python and folder; ``core.training.slurm_login``).
    """

    partition: str = ""
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: float = 0.0
    time_min: int = 60
    account: str = ""
    extra_sbatch: str = ""
    backbones: str = ""
    alphas: str = ""
    submit_from: str = "local"


SUBMIT_FROM = ("local", "ssh")


def _items(text: str) -> list[str]:
    return [part for part in re.split(r"[,\s;]+", text.strip()) if part]


def parse_backbones(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_items(text)))


def parse_alphas(text: str) -> tuple[float, ...]:
    """α values from "0.25, 0.5"; ``ValueError`` naming the first one that is not a number in (0, 1)."""
    values = []
    for part in _items(text):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a number") from None
        if not 0.0 < value < 1.0:
            raise ValueError(f"{part} does not lie strictly between 0 and 1")
        values.append(value)
    return tuple(dict.fromkeys(values))


def slurm_request_problems(request: SlurmRequest) -> list[str]:
    """Every problem with the Slurm fields, as sentences (empty when usable)."""
    from iaa_desktop.core.training.slurm import SlurmError

    problems = []
    if request.submit_from not in SUBMIT_FROM:
        problems.append(f"Submit from must be local or ssh, not {request.submit_from!r}.")
    if request.partition and not _NAME.match(request.partition):
        problems.append(f"Partition {request.partition!r}: letters, digits, _ . - only (empty: the default).")
    bad = [b for b in parse_backbones(request.backbones) if not _NAME.match(b)]
    if bad:
        problems.append(f"Grid backbones: {', '.join(bad)} are not timm model names.")
    try:
        parse_alphas(request.alphas)
    except ValueError as exc:
        problems.append(f"Grid α values: {exc}.")
    try:
        slurm_options(request)
    except (SlurmError, ValueError) as exc:
        problems.append(f"Slurm: {exc}.")
    return problems


def slurm_options(request: SlurmRequest):
    """The ``slurm.SlurmOptions`` of the fields (validated; ``SlurmError`` or ``ValueError`` otherwise)."""
    from iaa_desktop.core.training.slurm import SlurmOptions

    options = SlurmOptions(partition=request.partition.strip(), gpus_per_node=int(request.gpus_per_node),
                           cpus_per_task=int(request.cpus_per_task), mem_gb=float(request.mem_gb),
                           time_min=int(request.time_min), account=request.account.strip(),
                           extra_sbatch=tuple(shlex.split(request.extra_sbatch)))
    options.validate()
    return options


def cross_grid(specs: Sequence[RunSpec], request: SlurmRequest) -> list[RunSpec]:
    """The per-seed specs crossed with the grid's backbones and α values (the dialog's own first)."""
    from iaa_desktop.core.training.slurm_grid import GridSpec

    if not specs:
        return []
    base = specs[0]
    backbones = tuple(dict.fromkeys((base.backbone, *parse_backbones(request.backbones))))
    alphas = tuple(dict.fromkeys((base.alpha, *parse_alphas(request.alphas))))
    return GridSpec(base, seeds=tuple(s.seed for s in specs), backbones=backbones, alphas=alphas).specs()
