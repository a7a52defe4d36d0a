"""A training grid: one run spec crossed with lists of seeds, backbones and multi-task α.

A grid file is a run spec (``runs.RunSpec`` fields) with up to three lists beside
them::

    {"data": "training-sets/demo-64px.h5", "mode": "multitask", "epochs": 30,
     "seeds": [0, 1, 2], "backbones": ["resnet18", "mobilenetv2_100"], "alphas": [0.25, 0.5]}

Omitted lists keep the spec's single value. α is crossed only for multi-task runs
(the other tasks do not use it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from iaa_desktop.core.training.runs import RunSpec, RunSpecError, read_json_object

GRID_KEYS = ("seeds", "backbones", "alphas")


@dataclass(frozen=True)
class GridSpec:
    """``base`` crossed with ``seeds`` x ``backbones`` x ``alphas`` (an empty list keeps the base's value)."""

    base: RunSpec
    seeds: tuple[int, ...] = ()
    backbones: tuple[str, ...] = ()
    alphas: tuple[float, ...] = ()

    def specs(self) -> list[RunSpec]:
        """Every run of the grid, backbone-major then α then seed (validated)."""
        backbones = self.backbones or (self.base.backbone,)
        alphas = self.alphas if (self.alphas and self.base.mode == "multitask") else (self.base.alpha,)
        seeds = self.seeds or (self.base.seed,)
        specs = []
        for backbone, alpha, seed in itertools.product(backbones, alphas, seeds):
            spec = self.base.replace(backbone=backbone, alpha=float(alpha), seed=int(seed))
            spec.validate()
            specs.append(spec)
        return specs


def grid_from_dict(values: dict) -> GridSpec:
    """A grid from a mapping (a spec's fields plus ``seeds``/``backbones``/``alphas`` lists)."""
    values = dict(values)
    lists = {key: values.pop(key, []) for key in GRID_KEYS}
    for key, items in lists.items():
        if not isinstance(items, list):
            raise RunSpecError(f"grid field {key!r} must be a list, not {items!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in lists["seeds"]):
        raise RunSpecError(f"grid seeds must be whole numbers, not {lists['seeds']!r}")
    if any(not isinstance(b, str) or not b.strip() for b in lists["backbones"]):
        raise RunSpecError(f"grid backbones must be timm model names, not {lists['backbones']!r}")
    if any(isinstance(a, bool) or not isinstance(a, int | float) for a in lists["alphas"]):
        raise RunSpecError(f"grid alphas must be numbers, not {lists['alphas']!r}")
    base = RunSpec.from_dict(values)
    grid = GridSpec(base, tuple(dict.fromkeys(lists["seeds"])), tuple(dict.fromkeys(lists["backbones"])),
                    tuple(dict.fromkeys(float(a) for a in lists["alphas"])))
    grid.specs()  # validates every combination
    return grid


def load_grid(path: str | Path) -> GridSpec:
    """Read a grid file; every problem is a ``RunSpecError`` naming the file.

    A relative ``data`` path is taken relative to the grid file's folder.
    """
    path = Path(path)
    values = read_json_object(path, "grid file",
                              "a JSON object (a run spec with seeds/backbones/alphas lists)")
    if values.get("data") and not Path(values["data"]).is_absolute():
        values["data"] = str((path.parent / values["data"]).resolve())
    try:
        return grid_from_dict(values)
    except RunSpecError as exc:
        raise RunSpecError(f"{path}: {exc}") from None


def grid_values(specs: list[RunSpec]) -> dict:
    """A grid file's mapping (base spec + seeds/backbones/alphas lists) that gives back exactly ``specs``.

    ``specs`` must be a full cross of its seeds, backbones and α values in grid
    order (as ``GridSpec.specs`` or the run dialog make them); ``RunSpecError`` otherwise.
    """
    if not specs:
        raise RunSpecError("the grid has no runs")
    base = specs[0]
    grid = GridSpec(base, seeds=tuple(dict.fromkeys(s.seed for s in specs)),
                    backbones=tuple(dict.fromkeys(s.backbone for s in specs)),
                    alphas=tuple(dict.fromkeys(s.alpha for s in specs)))
    if grid.specs() != list(specs):
        raise RunSpecError("these runs are not one grid (seeds x backbones x α over one spec)")
    return {**base.to_dict(), "seeds": list(grid.seeds), "backbones": list(grid.backbones),
            "alphas": list(grid.alphas)}
