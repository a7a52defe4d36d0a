"""Each speed-up of issue 19 against the code it replaced, in the same run, same masks.

The baseline is the module as it was at a named commit (``--baseline``, default the commit
issue 19's work started from), loaded from git next to the current one. For every stage:
per-lesion median time of both, their ratio, and a check that both give identical values.
Lesions: those of ``profile_dataset.py``'s sample (IMA++ sizes, 2-5 annotators), the
largest ``--lesions`` of them.

    python benchmarks/bench_stage_speedups.py [--baseline 86bb279] [--lesions 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from profile_dataset import build_sample  # noqa: E402

from iaa_desktop.core.agreement import chance, staple  # noqa: E402
from iaa_desktop.core.agreement import lesion as lesion_now  # noqa: E402
from iaa_desktop.core.agreement.boundary import DEFAULT_SPEC  # noqa: E402
from iaa_desktop.core.agreement.consensus import majority_vote  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.dataset.masks import decode_mask  # noqa: E402

BASELINE = "86bb279"


def module_at(commit: str, path: str, name: str) -> types.ModuleType:
    """The module at ``path`` as it was at ``commit``, importable beside today's."""
    source = subprocess.check_output(["git", "-C", str(REPO), "show", f"{commit}:{path}"], text=True)
    source = source.replace("cache=True", "cache=False")  # numba caches need a real file
    module = types.ModuleType(name)
    module.__file__ = f"{commit}:{path}"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def _staple_values(result) -> tuple:
    return (result.mask.tobytes(), result.probability.tobytes(), result.sensitivity,
            result.specificity, result.iterations)


def _staple_table_use(fn):
    """What the agreement table reads of STAPLE: mask and estimates (not the probability map)."""
    def run(masks):
        result = fn(masks)
        return result.mask, result.sensitivity, result.specificity, result.iterations
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/iaa-prof19-spread"))
    parser.add_argument("--limit", type=int, default=60, help="lesions in the profile sample")
    parser.add_argument("--lesions", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dataset = load_dataset(build_sample(args.data_dir, args.limit))
    lesions = sorted((x for x in dataset if len(x.human_segmentations) >= 2),
                     key=lambda x: x.width * x.height)[-args.lesions:]
    old_chance = module_at(args.baseline, "iaa_desktop/core/agreement/chance.py", "baseline_chance")
    old_staple = module_at(args.baseline, "iaa_desktop/core/agreement/staple.py", "baseline_staple")
    old_sums = module_at(args.baseline, "iaa_desktop/core/agreement/raster_sums.py", "baseline_sums")
    old_consensus = module_at(args.baseline, "iaa_desktop/core/agreement/consensus.py",
                              "baseline_consensus")
    # The baseline STAPLE with its own sums and its own vote patterns: today's patterns cover
    # only the union's box, which the baseline's EM would read as the whole image.
    old_staple.raster_sums = old_sums.raster_sums
    for name in ("ConsensusInputError", "_as_mask_list", "_Patterns", "_vote_patterns"):
        setattr(old_staple, name, getattr(old_consensus, name))
    old_lesion = module_at(args.baseline, "iaa_desktop/core/agreement/lesion.py", "baseline_lesion")

    prepared: dict[int, list] = {}

    def with_consensus(masks):
        # The lesion's masks plus STAPLE and MV, prepared once (outside the timing).
        if id(masks) not in prepared:
            everything = [(lesion_now.MaskInfo(f"m{i}", "a", "t", "s"), m) for i, m in enumerate(masks)]
            everything += [(lesion_now.MaskInfo("st", "ST", "ST", "ST"), staple.staple(masks).mask),
                           (lesion_now.MaskInfo("mv", "MV", "MV", "MV"), majority_vote(masks))]
            prepared[id(masks)] = everything
        return prepared[id(masks)]

    def pairs_with(module):
        # Every pair, both conventions, as the table computes them (surfaces and bands included).
        return lambda masks: module._pair_rows("x.JPG", with_consensus(masks), "imapp", DEFAULT_SPEC)

    stages = {
        "chance (kappa/alpha)": (old_chance.chance_agreement, chance.chance_agreement, str),
        "staple, as the table uses it (lazy map + run-length raster sums)": (
            _staple_table_use(old_staple.staple), _staple_table_use(staple.staple),
            lambda r: (r[0].tobytes(), *r[1:])),
    }
    stages["all pairs of a lesion, one k-d tree per mask (incl. STAPLE + MV)"] = (
        pairs_with(old_lesion), pairs_with(lesion_now), lambda rows: [tuple(map(repr, r)) for r in rows])
    print(f"baseline {args.baseline}; {len(lesions)} largest lesions of the sample "
          f"({lesions[0].width * lesions[0].height / 1e6:.0f}-"
          f"{lesions[-1].width * lesions[-1].height / 1e6:.0f} MP), median of {args.repeat} runs each")
    print("| stage | baseline ms/lesion | now ms/lesion | ratio | identical |")
    print("|---|---|---|---|---|")
    status = 0
    masks_of = {x.image_id: [decode_mask(s.mask_path).mask for s in x.human_segmentations]
                for x in lesions}
    for name, (before, after, key) in stages.items():
        t_before, t_after, same = [], [], True
        for lesion in lesions:
            masks = masks_of[lesion.image_id]
            runs_b, runs_a = [], []
            for _ in range(args.repeat):  # alternate, so load changes hit both alike
                start = time.perf_counter()
                result_b = before(masks)
                runs_b.append(time.perf_counter() - start)
                start = time.perf_counter()
                result_a = after(masks)
                runs_a.append(time.perf_counter() - start)
            same &= key(result_b) == key(result_a)
            t_before.append(statistics.median(runs_b))
            t_after.append(statistics.median(runs_a))
        b, a = statistics.median(t_before), statistics.median(t_after)
        print(f"| {name} | {1000 * b:.0f} | {1000 * a:.0f} | {b / a:.2f}x | {'yes' if same else 'NO'} |")
        status |= 0 if same else 1
    # The probability map is still there, identical, when read.
    masks = masks_of[lesions[-1].image_id]
    same = _staple_values(old_staple.staple(masks)) == _staple_values(staple.staple(masks))
    print(f"STAPLE probability map read on demand identical to the baseline's: {'yes' if same else 'NO'}")
    return status | (0 if same else 1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
