"""The comparison's bookkeeping without torch: sources paired by backbone, the table, reruns skipped.

The runner here stands in for ``iaa-train``: it writes the events a finished run
writes, with test balanced accuracies chosen per kind and seed, so the table's
arithmetic can be checked exactly. The real runs are in tests/trainer/test_finetune.py.
"""

import json

import pandas as pd
import pytest

from iaa_desktop.core.progress import run_to_end
from iaa_desktop.core.training.finetune_compare import CompareError, iter_finetune_compare, pair_sources
from iaa_desktop.core.training.runs import append_event
from tests.builders_diagnosis import make_ph2

BACC = {("diagnosis_only", 0): 0.60, ("diagnosis_only", 1): 0.70,
        ("multitask", 0): 0.65, ("multitask", 1): 0.80}


def fake_source(root, mode, backbone):
    folder = root / f"{mode}_{backbone}" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "best.json").write_text(json.dumps({"backbone": backbone, "mode": mode, "classes": ["b", "m"]}))
    return folder.parent


class FakeTrainer:
    def __init__(self):
        self.calls = []

    def __call__(self, args):
        self.calls.append(args)
        out = args[args.index("--out") + 1]
        kind = "multitask" if "multitask" in args[args.index("--finetune-from") + 1] else "diagnosis_only"
        bacc = BACC[(kind, int(args[args.index("--seed") + 1]))]
        if kind == "multitask" and args[args.index("--data") + 1].endswith("ph2_1_16px.h5"):
            bacc += 0.05  # the second dataset gains more: difference 0.125
        append_event(out, "run_finished", test={"balanced_accuracy": bacc, "auroc": 0.9, "f1_macro": None})
        return 0


def test_table_difference_and_mean_and_reruns_skipped(tmp_path):
    sources = {"classification": [fake_source(tmp_path, "classification", "resnet18")],
               "multitask": [fake_source(tmp_path, "multitask", "resnet18")]}
    data = [make_ph2(tmp_path / "ph2"), make_ph2(tmp_path / "other" / "ph2")]
    trainer = FakeTrainer()
    out = tmp_path / "cmp"
    result = run_to_end(iter_finetune_compare(data, sources, out, seeds=(0, 1), size=16,
                                              train_args=["--epochs", "1"], runner=trainer))
    assert len(trainer.calls) == 8 and all(call[-2:] == ["--epochs", "1"] for call in trainer.calls)
    sets = out / "training_sets"
    assert (sets / "ph2_16px.h5").is_file() and (sets / "ph2_1_16px.h5").is_file()
    table = pd.read_csv(out / "finetune_comparison.csv")
    assert list(table["dataset"]) == ["ph2", "ph2_1", "mean"]
    first = table.iloc[0]
    assert first["balanced_accuracy_diagnosis_only"] == pytest.approx(0.65)
    assert first["balanced_accuracy_multitask"] == pytest.approx(0.725)
    assert first["difference"] == pytest.approx(0.075) and first["n_seeds"] == 2
    assert table.iloc[1]["difference"] == pytest.approx(0.125)
    assert result.mean_difference == pytest.approx(0.1) and table.iloc[-1]["difference"] == pytest.approx(0.1)
    assert pd.isna(first["f1_macro_multitask"])
    markdown = (out / "finetune_comparison.md").read_text()
    assert "| ph2 | resnet18 | 2 | 65.0 | 72.5 | +7.5 |" in markdown and "+10.0 points" in markdown
    runs = pd.read_csv(out / "finetune_runs.csv")
    assert len(runs) == 8 and set(runs["status"]) == {"finished"}

    again = FakeTrainer()
    run_to_end(iter_finetune_compare(data, sources, out, seeds=(0, 1), size=16, runner=again))
    assert again.calls == []  # finished runs are reused


def test_sources_must_pair_by_backbone_and_mode(tmp_path):
    classification = fake_source(tmp_path, "classification", "resnet18")
    multitask = fake_source(tmp_path, "multitask", "resnet18")
    other = fake_source(tmp_path, "multitask", "resnet50")
    paired = pair_sources({"classification": [classification], "multitask": [multitask, other]}, ["resnet18"])
    assert paired == {"resnet18": {"classification": classification, "multitask": multitask}}
    with pytest.raises(CompareError, match="backbone resnet50: no classification source"):
        pair_sources({"classification": [classification], "multitask": [multitask, other]})
    with pytest.raises(CompareError, match="a multitask checkpoint given as a classification source"):
        pair_sources({"classification": [multitask], "multitask": [multitask]})
    with pytest.raises(CompareError, match="no best checkpoint"):
        pair_sources({"classification": [tmp_path / "nowhere"], "multitask": [multitask]})
