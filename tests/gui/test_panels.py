"""The analysis panels, offscreen: pair heatmap, agreement plots, problems, exports, workers."""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from iaa_desktop.core.agreement.engine import iter_dataset_agreement  # noqa: E402
from iaa_desktop.core.agreement.lesion import lesion_agreement  # noqa: E402
from iaa_desktop.core.agreement.metrics import METRIC_COLUMNS  # noqa: E402
from iaa_desktop.core.agreement.tables import PAIRWISE_COLUMNS  # noqa: E402
from iaa_desktop.core.dataset.demo import write_demo  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.dataset.model import Problem  # noqa: E402
from iaa_desktop.core.dataset.qa import QA_COLUMNS, iter_qa  # noqa: E402
from iaa_desktop.core.display.overlay import lesion_table_frame  # noqa: E402
from iaa_desktop.core.display.pair_matrix import MaskPair, format_value  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.core.statistics.views import dataset_views  # noqa: E402
from iaa_desktop.gui.analysis_workers import (  # noqa: E402
    dataset_views_worker,
    pair_matrices_worker,
    qa_worker,
)
from iaa_desktop.gui.plot_export import ExportError, export_table, export_widget  # noqa: E402
from iaa_desktop.gui.widgets.agreement_plots import AgreementPlots  # noqa: E402
from iaa_desktop.gui.widgets.pair_heatmap import PairHeatmap  # noqa: E402
from iaa_desktop.gui.widgets.problems_panel import ProblemsPanel, problems_frame  # noqa: E402
from tests.builders import make_imapp, write_mask  # noqa: E402

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def imapp(tmp_path_factory):
    return load_dataset(make_imapp(tmp_path_factory.mktemp("imapp") / "r"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    dataset = load_dataset(write_demo(tmp_path_factory.mktemp("demo") / "demo", n_lesions=16))
    agreement = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=None))
    lesions = lesion_table_frame(dataset)
    return dataset, agreement, lesions, dataset_views(agreement, lesions, n_boot=100)


def click_scene(qtbot, graphics, scene_pos, double=False):
    """A real mouse click on a pyqtgraph view at a scene position."""
    point = graphics.mapFromScene(scene_pos)
    action = qtbot.mouseDClick if double else qtbot.mouseClick
    action(graphics.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(point.x(), point.y()))


@pytest.fixture
def heatmap(qtbot, imapp):
    widget = PairHeatmap()
    qtbot.addWidget(widget)
    widget.resize(640, 520)
    widget.show()
    qtbot.waitExposed(widget)
    lesion = imapp.lesion("ISIC_0000002")
    widget.set_agreement(lesion_agreement(lesion), lesion)
    return widget


def cell_texts(widget):
    return sorted(item.toPlainText() for item in widget.plot.text_items)


def test_heatmap_draws_the_matrix_and_follows_the_metric_and_consensus(heatmap):
    n = len(heatmap.current_matrix().masks)
    assert heatmap.plot.shape == (n, n) and len(heatmap.plot.cell_items) == n * n
    values = heatmap.current_matrix().values.ravel()
    assert cell_texts(heatmap) == sorted(format_value(v, "dice_score") for v in values)
    heatmap.metric_combo.setCurrentIndex(heatmap.metric_combo.findData("hd95_score"))
    matrix = heatmap.current_matrix()
    assert matrix.metric == "hd95_score"
    assert cell_texts(heatmap) == sorted(format_value(v, "hd95_score") for v in matrix.values.ravel())
    assert heatmap.plot.colour_bar.axis.labelText == "HD95 (px)"
    heatmap.consensus_check.setChecked(True)
    assert heatmap.plot.shape == (n + 2, n + 2)
    assert [m.key for m in heatmap.current_matrix().masks][-2:] == ["STAPLE", "MV"]


def test_clicking_a_heatmap_cell_emits_its_two_masks(qtbot, heatmap, imapp):
    heatmap.consensus_check.setChecked(True)
    matrix = heatmap.current_matrix()
    last = len(matrix.masks) - 1
    with qtbot.waitSignal(heatmap.pair_clicked, timeout=TIMEOUT_MS) as blocker:
        click_scene(qtbot, heatmap.plot, heatmap.plot.cell_scene_pos(last, 1))
    pair = blocker.args[0]
    assert isinstance(pair, MaskPair)
    assert pair.keys == ("MV", 1)
    segs = imapp.lesion("ISIC_0000002").human_segmentations
    assert pair.second.name == segs[1].name
    assert pair.value == matrix.values[last, 1]
    assert heatmap.plot.selected == (last, 1) and heatmap.plot.highlight[1].isVisible()
    # The public path gives the same payload.
    with qtbot.waitSignal(heatmap.pair_clicked) as again:
        heatmap.click_cell(0, 1)
    assert again.args[0].keys == (0, 1)


def test_heatmap_says_why_a_lesion_has_no_matrix(heatmap, imapp):
    lesion = imapp.lesion("ISIC_0000003")
    heatmap.set_agreement(lesion_agreement(lesion), lesion)
    assert heatmap.plot.shape == (0, 0)
    assert "fewer than two" in heatmap.plot.caption.text
    heatmap.clear()
    assert heatmap.current_matrix() is None and heatmap.table() is None


@pytest.fixture
def plots(qtbot, demo):
    widget = AgreementPlots()
    qtbot.addWidget(widget)
    widget.resize(760, 560)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_views(demo[3])
    return widget


def test_clicking_a_histogram_bar_selects_its_lesions(qtbot, plots, demo):
    histogram = demo[3].malignancy.histogram
    group = "benign"
    bin_index = int(np.argmax(histogram.counts[group]))
    with qtbot.waitSignal(plots.lesions_selected, timeout=TIMEOUT_MS) as blocker:
        click_scene(qtbot, plots.histogram, plots.histogram.bar_scene_pos(group, bin_index))
    assert blocker.args[0] == histogram.bar_ids(group, bin_index)
    assert len(blocker.args[0]) == histogram.counts[group][bin_index] > 0
    assert plots.histogram.highlight.isVisible()
    assert "Mann-Whitney" in plots.histogram.caption.text
    with qtbot.waitSignal(plots.lesions_selected) as cleared:
        plots.clear_button.click()
    assert cleared.args[0] == []
    assert not plots.histogram.highlight.isVisible()


def test_clicking_a_factor_cell_selects_the_images_of_its_pairs(qtbot, plots, demo):
    plots.tabs.setCurrentIndex(1)
    plots.set_factor("tool")
    view = plots.current_factor_view()
    assert view.factor == "tool"
    row, column = 1, 0
    assert np.isfinite(view.values[row, column])
    with qtbot.waitSignal(plots.lesions_selected, timeout=TIMEOUT_MS) as blocker:
        click_scene(qtbot, plots.factor_plot, plots.factor_plot.cell_scene_pos(row, column))
    assert blocker.args[0] == view.cell_ids(row, column)
    plots.set_factor("skill_level", "hd95_score_normalized_mean")
    assert plots.current_factor_view().metric == "hd95_score_normalized_mean"
    assert plots.factor_plot.colour_bar.axis.labelText.startswith("Mean HD95")


def test_clicking_a_scatter_point_selects_its_lesion(qtbot, plots, demo):
    plots.tabs.setCurrentIndex(2)
    plots.set_scatter_column("hd95_score_mean")
    view = plots.current_scatter_view()
    index = int(np.argmin(view.y))
    with qtbot.waitSignal(plots.lesions_selected, timeout=TIMEOUT_MS) as blocker:
        click_scene(qtbot, plots.scatter, plots.scatter.point_scene_pos(index))
    assert blocker.args[0] == [view.image_ids[index]]
    assert plots.scatter.plot.getAxis("bottom").labelText == "Mean HD95 (px)"
    assert plots.table().columns.tolist() == ["image_id", "hd95_score_mean", "iaa"]


@pytest.fixture
def problems(tmp_path):
    root = make_imapp(tmp_path / "r")
    # An empty mask: a high-severity QA finding.
    empty = next((root / "segs").glob("ISIC_0000002_A01_*.png"))
    write_mask(empty, np.zeros((48, 64), dtype=bool))
    dataset = load_dataset(root)
    findings = run_to_end(iter_qa(dataset))
    loader = [Problem("unknown_label", "low", "metadata.csv: label 'x' is unknown", "metadata.csv",
                      "ISIC_0000003")]
    return loader, findings


def test_problems_are_sorted_high_first_filtered_and_activated(qtbot, problems):
    loader, findings = problems
    panel = ProblemsPanel()
    qtbot.addWidget(panel)
    panel.resize(800, 400)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_problems(loader, findings)
    assert panel.row_count() == len(findings) + 1
    ranks = {"high": 2, "medium": 1, "low": 0}
    shown = [ranks[panel.value_at(r, "severity")] for r in range(panel.row_count())]
    assert shown == sorted(shown, reverse=True) and shown[0] == 2
    assert panel.value_at(0, "kind") == "empty_mask"
    panel.set_severity("low")
    assert {panel.value_at(r, "severity") for r in range(panel.row_count())} == {"low"}
    panel.set_severity(None)
    panel.filter_edit.setText("unknown_label")
    assert panel.row_count() == 1 and panel.value_at(0, "source") == "loader"
    assert "1 of" in panel.count_label.text()
    panel.filter_edit.setText("")
    rect = panel.view.visualRect(panel.proxy.index(0, 0))
    with qtbot.waitSignal(panel.lesion_activated, timeout=TIMEOUT_MS) as blocker:
        # Qt 6's QTest double click needs the press of a first click on the same cell.
        qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args[0] == "ISIC_0000002"


def test_problems_frame_keeps_a_finding_that_repeats_a_loader_problem_once():
    problem = Problem("missing_mask", "high", "segs/m.png: file not found", "segs/m.png", "ISIC_1")
    finding = pd.DataFrame([["ISIC_1", "m.png", "", "missing_mask", "high", problem.message, problem.path]],
                           columns=list(QA_COLUMNS))
    frame = problems_frame([problem], finding)
    assert len(frame) == 1 and frame["source"].iloc[0] == "loader" and frame["mask"].iloc[0] == "m.png"


def _check_exports(widget, folder, expected_text):
    png = export_widget(widget, folder / "plot.png")
    image = QImage(str(png))
    assert not image.isNull() and image.width() >= widget.width() and image.height() > 0
    svg = export_widget(widget, folder / "plot.svg")
    tree = ET.parse(svg)
    texts = " ".join((e.text or "").strip() for e in tree.iter("{http://www.w3.org/2000/svg}text"))
    assert expected_text in texts
    assert any(True for _ in tree.iter("{http://www.w3.org/2000/svg}path"))
    pdf = export_widget(widget, folder / "plot.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and b"/Type /Page" in data
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"^Pages:\s+1$", info, re.MULTILINE)


def test_plots_export_to_png_svg_and_pdf(tmp_path, heatmap, plots):
    (tmp_path / "heatmap").mkdir()
    _check_exports(heatmap.plot, tmp_path / "heatmap", heatmap.current_matrix().masks[0].label)
    (tmp_path / "histogram").mkdir()
    _check_exports(plots.histogram, tmp_path / "histogram", "IAA (mean pairwise Dice, unitless)")
    (tmp_path / "widget").mkdir()
    _check_exports(plots, tmp_path / "widget", "By malignancy")  # a plain QWidget (tabs and all)
    with pytest.raises(ExportError, match=r"\.jpeg"):
        export_widget(heatmap.plot, tmp_path / "plot.jpeg")
    with pytest.raises(ExportError, match="does not exist"):
        export_widget(heatmap.plot, tmp_path / "missing" / "plot.png")


def test_tables_export_to_csv(tmp_path, heatmap, problems, qtbot):
    path = export_table(heatmap.table(), tmp_path / "matrix.csv")
    back = pd.read_csv(path)
    np.testing.assert_array_equal(back.iloc[:, 1:].to_numpy(), heatmap.current_matrix().values)
    panel = ProblemsPanel()
    qtbot.addWidget(panel)
    panel.set_problems(*problems)
    panel.set_severity("high")
    written = pd.read_csv(panel.export_csv(tmp_path / "problems.csv"), keep_default_na=False)
    assert len(written) == panel.row_count() > 0 and set(written["severity"]) == {"high"}


def test_workers_compute_off_the_gui_thread(qtbot, demo, imapp):
    dataset, agreement, lesions, _ = demo
    errors, results = [], []
    lesion = dataset.lesions[0]
    for worker in (pair_matrices_worker(lesion, errors.append),
                   pair_matrices_worker(lesion, errors.append, agreement.pairwise),
                   dataset_views_worker(agreement, lesions, errors.append, dataset),
                   qa_worker(imapp, errors.append)):
        worker.returned.connect(results.append)
        with qtbot.waitSignal(worker.finished, timeout=TIMEOUT_MS):
            worker.start()
    assert errors == []
    direct, from_table, views, findings = results
    assert direct.keys() == from_table.keys()
    for key, matrix in direct.items():
        np.testing.assert_array_equal(matrix.values, from_table[key].values)
    assert "pixels_x" in views.numeric_columns and "annotators" in views.numeric_columns
    assert list(findings.columns) == list(QA_COLUMNS)


def test_plots_of_a_dataset_without_pairs_say_so(qtbot):
    empty = pd.DataFrame({c: pd.Series([], dtype="float64" if c in METRIC_COLUMNS else "str")
                          for c in PAIRWISE_COLUMNS})
    lesions = pd.DataFrame({"image_id": ["a"], "benign_malignant": ["benign"], "annotators": [1],
                            "masks": [1]})
    widget = AgreementPlots()
    qtbot.addWidget(widget)
    widget.set_views(dataset_views(empty, lesions, n_boot=0))
    assert widget.column_combo.count() == 0
    assert widget.factor_plot.shape == (0, 0)
    assert "No pairs" in widget.factor_plot.caption.text
    assert "No malignant vs benign test" in widget.histogram.caption.text
    assert "No image has an IAA" in widget.scatter.caption.text
    widget.click_bar("benign", 0)  # nothing to select: no signal, no error
    assert widget.selection == []
    widget.clear("Computing…")
    assert widget.views is None and widget.table() is None


def test_export_button_writes_the_chosen_format_and_the_csv(tmp_path, heatmap, monkeypatch):
    answers = iter([(str(tmp_path / "figure"), "SVG vector image (*.svg)"),
                    (str(tmp_path / "matrix.csv"), "CSV table (*.csv)")])
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: next(answers))
    plot_action, csv_action = heatmap.export_button.actions()
    plot_action.trigger()
    ET.parse(tmp_path / "figure.svg")
    csv_action.trigger()
    assert pd.read_csv(tmp_path / "matrix.csv")["mask"].tolist() == heatmap.current_matrix().labels
