"""The heatmap's MetricsReloaded metrics and the agreement plots' IAA metric choice, offscreen."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("superqt")

from iaa_desktop.core.agreement.engine import iter_dataset_agreement  # noqa: E402
from iaa_desktop.core.agreement.image_metrics import image_metric  # noqa: E402
from iaa_desktop.core.agreement.lesion import lesion_agreement  # noqa: E402
from iaa_desktop.core.dataset.demo import write_demo  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.display.cell_text import with_fewer_decimals  # noqa: E402
from iaa_desktop.core.display.overlay import lesion_table_frame  # noqa: E402
from iaa_desktop.core.display.pair_matrix import format_value  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.core.statistics.views import dataset_views  # noqa: E402
from iaa_desktop.gui.widgets.agreement_plots import AgreementPlots  # noqa: E402
from iaa_desktop.gui.widgets.pair_heatmap import PairHeatmap  # noqa: E402
from tests.builders import make_imapp  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    dataset = load_dataset(write_demo(tmp_path_factory.mktemp("demo") / "demo", n_lesions=12))
    agreement = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=None))
    lesions = lesion_table_frame(dataset)
    return agreement, dataset_views(agreement, lesions, n_boot=50)


def test_heatmap_offers_and_draws_nsd_and_boundary_iou(qtbot, tmp_path):
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    widget = PairHeatmap()
    qtbot.addWidget(widget)
    lesion = dataset.lesion("ISIC_0000002")
    agreement = lesion_agreement(lesion)
    widget.set_agreement(agreement, lesion)
    offered = [widget.metric_combo.itemData(i) for i in range(widget.metric_combo.count())]
    assert {"mr_nsd_2px", "mr_boundary_iou_2px", "mr_hd95", "mr_masd"} <= set(offered)
    for metric, bar_label in (("mr_nsd_2px", "NSD, τ = 2 px (unitless)"),
                              ("mr_boundary_iou_1px", "Boundary IoU, d = 1 px (unitless)")):
        widget.set_metric(metric)
        matrix = widget.current_matrix()
        assert matrix.metric == metric and matrix.higher_is_better
        np.testing.assert_array_equal(np.diag(matrix.values), 1.0)
        texts = sorted(item.toPlainText() for item in widget.plot.text_items)
        # The cells show the values at as many decimals as fit the cell (issue 18's fitting).
        drop = widget.plot.decimals_dropped
        expected = [with_fewer_decimals(format_value(v, metric), drop) for v in matrix.values.ravel()]
        assert texts == sorted(expected)
        assert widget.plot.colour_bar.axis.labelText == bar_label
        assert widget.metric_combo.currentText().endswith("(MetricsReloaded)")
        # Off-diagonal cells are the engine's values for the pair.
        column = agreement.pair_columns.index(metric)
        assert sorted(matrix.values[~np.eye(len(matrix.masks), dtype=bool)]) == pytest.approx(
            sorted(2 * [row[column] for row in agreement.pairs
                        if row[3] not in ("ST", "MV") and row[4] not in ("ST", "MV")]))


def test_plots_switch_the_iaa_metric(qtbot, demo):
    agreement, views = demo
    wanted = {"mr_nsd_2px", "mr_boundary_iou_2px", "fleiss_kappa", "krippendorff_alpha"}
    assert wanted <= set(views.iaa_metrics)
    widget = AgreementPlots()
    qtbot.addWidget(widget)
    widget.set_views(views)
    assert widget.iaa_metric == "dice_score"
    widget.set_iaa_metric("mr_nsd_2px")
    view = widget.histogram.view
    assert view.metric == "mr_nsd_2px"
    assert widget.histogram.plot.getAxis("bottom").labelText == \
        "IAA: mean NSD, τ = 2 px (unitless, MetricsReloaded) over human pairs"
    expected = image_metric(agreement.pairwise, "mr_nsd_2px")
    for group in ("benign", "malignant"):
        by_name = {name.split(".")[0]: value for name, value in expected.items()}
        np.testing.assert_allclose(view.values[group], [by_name[i] for i in view.image_ids[group]])
    table = widget.table()
    assert list(table.columns) == ["image_id", "group", "mr_nsd_2px"]
    widget.set_iaa_metric("krippendorff_alpha")
    assert "Krippendorff α per lesion" in widget.histogram.plot.getAxis("bottom").labelText
    widget.tabs.setCurrentIndex(2)
    assert widget.current_scatter_view().metric == "krippendorff_alpha"
    assert "Krippendorff" in widget.scatter.plot.getAxis("left").labelText
    # A distance as IAA: the histogram runs from 0, not up to Dice's 1.
    widget.set_iaa_metric("mr_hd95")
    edges = widget.histogram.view.histogram.edges
    assert edges[0] == 0.0 and edges[-1] >= np.nanmax(widget.histogram.view.values["benign"])


def test_heatmap_says_when_a_metric_is_missing_from_the_table(qtbot, tmp_path):
    """Pairs read from a published table have MedPy's columns only."""
    from iaa_desktop.core.agreement.lesion import LesionAgreement

    dataset = load_dataset(make_imapp(tmp_path / "r"))
    lesion = dataset.lesion("ISIC_0000002")
    full = lesion_agreement(lesion)
    medpy_only = LesionAgreement(full.image_id, tuple(row[:17] for row in full.pairs),
                                 image_file_name=full.image_file_name)
    widget = PairHeatmap()
    qtbot.addWidget(widget)
    widget.set_agreement(medpy_only, lesion)
    assert widget.current_matrix() is not None  # Dice
    widget.set_metric("mr_nsd_2px")
    assert widget.current_matrix() is None
    assert "NSD 2 px (MetricsReloaded): not in this lesion" in widget.plot.caption.text
