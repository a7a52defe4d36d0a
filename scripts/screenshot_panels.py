"""Screenshots of the analysis panels filled with the demo dataset, for looking at them.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot_panels.py [OUT_DIR]

Writes pair_heatmap_dice.png, pair_heatmap_hd95.png, pair_heatmap_nsd2.png,
pair_heatmap_boundary_iou2.png, plots_malignancy.png, plots_malignancy_nsd2.png,
plots_factor_tool.png, plots_factor_annotator.png, plots_scatter.png and
problems.png (default OUT_DIR: /tmp/panel_shots). ``render_panels`` does the
same from Python (the main window's screenshot job can call it).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from iaa_desktop.core.agreement.engine import iter_dataset_agreement  # noqa: E402
from iaa_desktop.core.dataset.demo import demo_dataset_dir  # noqa: E402
from iaa_desktop.core.dataset.io import load_dataset  # noqa: E402
from iaa_desktop.core.dataset.qa import iter_qa  # noqa: E402
from iaa_desktop.core.display.overlay import lesion_table_frame  # noqa: E402
from iaa_desktop.core.progress import run_to_end  # noqa: E402
from iaa_desktop.gui.analysis_workers import lesion_pair_matrices, views_with_metadata  # noqa: E402
from iaa_desktop.gui.widgets.agreement_plots import AgreementPlots  # noqa: E402
from iaa_desktop.gui.widgets.pair_heatmap import PairHeatmap  # noqa: E402
from iaa_desktop.gui.widgets.problems_panel import ProblemsPanel  # noqa: E402


def _save(app: QApplication, widget: QWidget, path: Path, shots: list[Path]) -> None:
    for _ in range(5):
        app.processEvents()
    widget.grab().save(str(path))
    shots.append(path)


def render_panels(out: Path, dataset_dir: Path | None = None) -> list[Path]:
    """Fill each panel with ``dataset_dir`` (the demo by default) and save PNGs in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(imageAxisOrder="row-major")
    dataset = load_dataset(dataset_dir or demo_dataset_dir())
    agreement = run_to_end(iter_dataset_agreement(dataset, workers=1))
    shots: list[Path] = []

    lesion = max(dataset.lesions, key=lambda item: len(item.human_segmentations))
    heatmap = PairHeatmap()
    heatmap.resize(720, 560)
    heatmap.show()
    heatmap.set_matrices(lesion_pair_matrices(lesion, agreement.pairwise))
    heatmap.click_cell(1, 0)
    _save(app, heatmap, out / "pair_heatmap_dice.png", shots)
    heatmap.set_metric("hd95_score")
    heatmap.consensus_check.setChecked(True)
    heatmap.click_cell(2, 0)
    _save(app, heatmap, out / "pair_heatmap_hd95.png", shots)
    heatmap.set_metric("mr_nsd_2px")
    _save(app, heatmap, out / "pair_heatmap_nsd2.png", shots)
    heatmap.set_metric("mr_boundary_iou_2px")
    heatmap.consensus_check.setChecked(False)
    _save(app, heatmap, out / "pair_heatmap_boundary_iou2.png", shots)

    plots = AgreementPlots()
    plots.resize(800, 600)
    plots.show()
    plots.set_views(views_with_metadata(agreement, lesion_table_frame(dataset), dataset))
    histogram = plots.views.malignancy.histogram
    top_bin = int(histogram.counts["malignant"].argmax())
    plots.click_bar("malignant", top_bin)
    _save(app, plots, out / "plots_malignancy.png", shots)
    plots.set_iaa_metric("mr_nsd_2px")
    _save(app, plots, out / "plots_malignancy_nsd2.png", shots)
    plots.set_iaa_metric("dice_score")
    plots.tabs.setCurrentIndex(1)
    plots.set_factor("tool")
    plots.click_cell(2, 1)
    _save(app, plots, out / "plots_factor_tool.png", shots)
    plots.set_factor("annotator")
    _save(app, plots, out / "plots_factor_annotator.png", shots)
    plots.tabs.setCurrentIndex(2)
    plots.set_scatter_column("hd95_score_mean")
    plots.click_point(int(plots.current_scatter_view().y.argmin()))
    _save(app, plots, out / "plots_scatter.png", shots)

    problems = ProblemsPanel()
    problems.resize(900, 420)
    problems.show()
    problems.set_problems(dataset.problems, run_to_end(iter_qa(dataset)))
    _save(app, problems, out / "problems.png", shots)
    for widget in (heatmap, plots, problems):
        widget.close()
    return shots


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/panel_shots")
    for path in render_panels(out):
        print(path)


if __name__ == "__main__":
    main()
