"""The constant to beat, drawn everywhere a regression figure is shown, and the run dialog's
ImageNet choice with the backbones whose weights are installed offline marked."""

import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

from PySide6.QtCore import Qt  # noqa: E402

from iaa_desktop.core.training import backbones, plan  # noqa: E402
from iaa_desktop.core.training.run_records import BASELINE_LABEL  # noqa: E402
from iaa_desktop.core.training.runs import RunSpec, append_event, save_spec  # noqa: E402
from iaa_desktop.core.workspace_paths import runs_dir  # noqa: E402
from iaa_desktop.gui.widgets import run_dialog  # noqa: E402
from iaa_desktop.gui.widgets.predictions_panel import PredictionsPanel  # noqa: E402
from iaa_desktop.gui.widgets.run_dialog import OFFLINE_MARK, RunDialog  # noqa: E402
from iaa_desktop.gui.widgets.runs_panel import RunsPanel  # noqa: E402
from iaa_desktop.gui.widgets.training_monitor import TrainingMonitor  # noqa: E402

LITE0 = "tf_efficientnet_lite0"


@pytest.fixture
def lite0_installed(monkeypatch):
    """As if only the Lite0 weights package were installed (whatever this machine has)."""
    monkeypatch.setattr(backbones, "offline_weights_installed", lambda name: name == LITE0)
    monkeypatch.setattr(plan, "offline_weights_installed", backbones.offline_weights_installed)
    monkeypatch.setattr(run_dialog, "installed_offline_backbones", lambda: (LITE0,))


def _items(dialog):
    combo = dialog.backbone_combo
    return {combo.itemData(i): combo.itemText(i) for i in range(combo.count()) if combo.itemData(i)}


def test_the_dialog_preselects_lite0_with_imagenet_and_marks_offline_backbones(qtbot, lite0_installed):
    dialog = RunDialog(devices=[])
    qtbot.addWidget(dialog)
    items = _items(dialog)
    assert items[LITE0] == LITE0 + OFFLINE_MARK
    assert items["tf_efficientnet_lite1"] == "tf_efficientnet_lite1" and items["resnet18"] == "resnet18"
    request = dialog.request()
    assert (request.backbone, request.pretrained) == (LITE0, "imagenet")  # the mark is not in the name
    assert dialog.pretrained_combo.currentText() == "ImageNet (offline weights where installed)"
    assert "installed on this computer" in dialog.pretrained_note.text()
    dialog.set_backbone("resnet18")
    assert "needs internet" in dialog.pretrained_note.text()
    dialog.pretrained_combo.setCurrentIndex(dialog.pretrained_combo.findData("none"))
    assert dialog.pretrained_note.text() == "" and dialog.request().pretrained == "none"


def test_without_offline_weights_the_dialog_starts_from_scratch(qtbot, monkeypatch):
    monkeypatch.setattr(plan, "offline_weights_installed", lambda name: False)
    monkeypatch.setattr(run_dialog, "installed_offline_backbones", lambda: ())
    dialog = RunDialog(devices=[])
    qtbot.addWidget(dialog)
    assert OFFLINE_MARK not in "".join(_items(dialog).values())
    assert (dialog.request().backbone, dialog.request().pretrained) == ("resnet18", "none")


def test_an_older_timm_request_reopens_as_imagenet(qtbot):
    dialog = RunDialog(devices=[], initial=plan.RunRequest(backbone="resnet18", pretrained="timm"))
    qtbot.addWidget(dialog)
    assert dialog.request().pretrained == "imagenet"


def test_the_mae_curve_has_the_constant_beside_it(qtbot):
    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    events = [{"event": "epoch_end", "epoch": e, "epochs": 3, "train_loss": 0.2 / e,
               "val": {"loss": 0.1, "mae": mae, "baseline_mae": 0.13, "pearson": 0.3}}
              for e, mae in ((1, 0.16), (2, 0.12), (3, 0.11))]
    monitor.start_run("run", "IAA regressor", "regression", events)
    assert monitor.curve_data("val_mae") == ([1, 2, 3], [0.16, 0.12, 0.11])
    assert monitor.curve_data("val_baseline_mae") == ([1, 2, 3], [0.13, 0.13, 0.13])
    labels = [label.text for _, label in monitor.metric_plot.plotItem.legend.items]
    assert BASELINE_LABEL in labels
    pen = monitor.curves["val_baseline_mae"].opts["pen"]
    assert pen.style() == pen.style().DashLine
    monitor.start_run("run", "Diagnosis", "classification", [])
    assert "val_baseline_mae" not in monitor.curves


def _regression_run(workspace, seed, mae, constant):
    run_dir = runs_dir(workspace) / f"reg-{seed}"
    spec = RunSpec(data="/x/set.h5", mode="regression", backbone="resnet18", seed=seed, epochs=1)
    save_spec(spec, run_dir / "run.json")
    append_event(run_dir, "run_started", spec=spec.to_dict(), device="cpu")
    metrics = {"mae": mae, "baseline_mae": constant, "mae_ratio": mae / constant}
    append_event(run_dir, "epoch_end", epoch=1, epochs=1, lr=0.01, train_loss=0.2, val=metrics)
    append_event(run_dir, "run_finished", best_epoch=1, best=metrics, test=metrics, seconds=2.0)


def test_the_runs_comparison_shows_the_constant_and_the_ratio(qtbot, tmp_path):
    for seed, (mae, constant) in enumerate(((0.10, 0.13), (0.12, 0.13))):
        _regression_run(tmp_path / "ws", seed, mae, constant)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.runs_loaded, timeout=10_000):
        panel.set_workspace(tmp_path / "ws")
    model = panel.runs_model
    headers = [model.headerData(i, Qt.Orientation.Horizontal) for i in range(model.columnCount())]
    assert "Test MAE, constant" in headers and "MAE / constant" in headers
    panel.set_metric("mae")
    with qtbot.waitSignal(panel.comparison_changed):
        panel.select_runs([r.run_id for r in panel.records])
    row = panel.comparison.iloc[0]
    assert row["baseline_mae"] == pytest.approx(0.13) and row["mae_ratio"] == pytest.approx(0.11 / 0.13)
    dashed = [item for item in panel.plot.plotItem.listDataItems() if item.name() == BASELINE_LABEL]
    assert len(dashed) == 1 and dashed[0].yData.tolist() == pytest.approx([0.13, 0.13])


def test_the_scatter_draws_the_constant_and_names_the_ratio(qtbot):
    panel = PredictionsPanel()
    qtbot.addWidget(panel)
    frame = pd.DataFrame({"split": ["test"] * 4, "iaa_true": [0.9, 0.8, 0.5, 0.95],
                          "malignant_true": [0, 1, 0, -1], "predicted_iaa": [0.85, 0.8, 0.7, 0.9],
                          "iaa_baseline": [0.86] * 4}, index=pd.Index(list("abcd"), name="image_id"))
    panel.set_predictions(frame)
    text = panel.stats_label.text()
    constant = float(np.mean(np.abs(np.array([0.9, 0.8, 0.5, 0.95]) - 0.86)))
    assert f"vs {constant:.3f} for the constant (training median 0.860)" in text and "ratio" in text
    xs, ys = panel.constant.getData()
    assert len(xs) == 2 and set(ys.tolist()) == {0.86}
    panel.set_predictions(frame.drop(columns="iaa_baseline"))
    assert "constant" not in panel.stats_label.text() and len(panel.constant.getData()[0]) == 0
    assert not math.isnan(panel.scatter.mae)
