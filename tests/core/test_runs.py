"""Run specs and the run event log shared by the trainer and the GUI."""

import json

import pytest

from iaa_desktop.core.training.runs import (
    EVENTS_FILE,
    RunSpec,
    RunSpecError,
    append_event,
    load_spec,
    read_events,
    save_spec,
)


def test_spec_round_trip_and_overrides(tmp_path):
    spec = RunSpec(data="set.h5", mode="multitask", alpha=0.2, epochs=3)
    save_spec(spec, tmp_path / "run.json")
    assert load_spec(tmp_path / "run.json") == spec
    assert spec.replace(lr=1) == RunSpec(data="set.h5", mode="multitask", alpha=0.2, epochs=3, lr=1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left


@pytest.mark.parametrize(("values", "message"), [
    ({"mode": "segmentation"}, "mode must be one of regression, classification, multitask"),
    ({"alpha": 1.5}, "alpha must lie in"),
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"device": "tpu"}, "device must be auto, cpu, mps or cuda"),
    ({"reg_loss": "huber"}, "reg_loss must be one of"),
])
def test_invalid_specs_are_refused_by_field(tmp_path, values, message):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(values))
    with pytest.raises(RunSpecError, match=message):
        load_spec(path)


def test_unknown_fields_wrong_types_and_bad_files(tmp_path):
    with pytest.raises(RunSpecError, match="unknown run spec field.*learning_rate"):
        RunSpec.from_dict({"learning_rate": 0.1})
    with pytest.raises(RunSpecError, match="'epochs' must be int"):
        RunSpec.from_dict({"epochs": "3"})
    with pytest.raises(RunSpecError, match="'epochs' must be int"):
        RunSpec.from_dict({"epochs": True})
    assert RunSpec.from_dict({"lr": 1}).lr == 1.0
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RunSpecError, match="bad.json: not a readable JSON run spec"):
        load_spec(tmp_path / "bad.json")
    with pytest.raises(RunSpecError, match="missing.json: run spec not found"):
        load_spec(tmp_path / "missing.json")


def test_events_are_read_incrementally_and_partial_lines_wait(tmp_path):
    append_event(tmp_path, "run_started", device="cpu")
    append_event(tmp_path, "epoch_end", epoch=1, metrics={"val_mae": 0.1})
    events, offset = read_events(tmp_path)
    assert [e["event"] for e in events] == ["run_started", "epoch_end"]
    assert events[1]["metrics"]["val_mae"] == 0.1 and "time" in events[0]
    with open(tmp_path / EVENTS_FILE, "a") as handle:
        handle.write('{"event": "epoch_progress", "batch"')  # the writer is mid-line
    more, offset2 = read_events(tmp_path, offset)
    assert more == [] and offset2 == offset
    with open(tmp_path / EVENTS_FILE, "a") as handle:
        handle.write(': 3}\nnot json\n')
    more, _ = read_events(tmp_path, offset2)
    assert [e.get("batch") for e in more] == [3]  # the damaged line is skipped


def test_unknown_event_kind_and_missing_log(tmp_path):
    with pytest.raises(ValueError, match="unknown event kind"):
        append_event(tmp_path, "epoch_started")
    assert read_events(tmp_path / "nowhere") == ([], 0)
