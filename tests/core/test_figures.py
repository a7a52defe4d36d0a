"""Publication figures: each builds from small synthetic data and exports valid files, headless."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from iaa_desktop.core.figures import (
    disagreement_map_figure,
    export_figure,
    factor_heatmap_figure,
    iaa_distribution_figure,
    iaa_ecdf_figure,
    lesion_overlay_figure,
    pairwise_matrix_figure,
    write_report_figures,
)
from iaa_desktop.core.figures.distributions import wrap_annotation
from iaa_desktop.core.figures.matrices import _compact_count
from iaa_desktop.core.figures.style import annotator_style

ANNOTATION = "Mann-Whitney U p = 1.7e-07, Cohen's d = 0.21"


@pytest.fixture(scope="module")
def iaa() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.beta(16, 4, 60), rng.beta(12, 4, 20)


def _factor_matrix(n: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    levels = [f"T{i}" for i in range(1, n + 1)]
    values = np.full((n, n), np.nan)
    counts = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1):
            values[i, j] = 0.7 + 0.05 * (i + j) / n
            counts[i, j] = 10 ** (i + j)
    return (pd.DataFrame(values, index=levels, columns=levels),
            pd.DataFrame(counts, index=levels, columns=levels))


def _lesion(size: tuple[int, int] = (40, 60)) -> tuple[np.ndarray, list[np.ndarray]]:
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    image = np.full((h, w, 3), (220, 180, 160), np.uint8)
    masks = [(((xx - 30 - k) / (15 + k)) ** 2 + ((yy - 20) / 10) ** 2 < 1).astype(np.uint8) for k in range(3)]
    return image, masks


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def test_distribution_figure_has_annotation_and_n(iaa):
    fig = iaa_distribution_figure(*iaa, annotation=ANNOTATION)
    texts = _texts(fig)
    assert ANNOTATION in texts
    assert any("Benign (n = 60)" in t for t in texts)
    assert any("Malignant (n = 20)" in t for t in texts)
    assert len(fig.axes) == 2


def test_distribution_figures_survive_empty_and_nan_groups():
    fig = iaa_distribution_figure([0.8, np.nan, 0.9], [], annotation="")
    assert any("Malignant (n = 0)" in t for t in _texts(fig))
    fig = iaa_ecdf_figure([], [0.7, 0.75, np.inf], annotation="KS p = 0.5")
    assert any("Malignant (n = 2)" in t for t in _texts(fig))


def test_long_annotation_is_wrapped_and_does_not_shrink_the_axes(iaa):
    long = "Mann-Whitney U p = 1.7e-07, Cohen's d = -0.23, AUC = 0.42, KS D = 0.12, p = 3.4e-06"
    assert wrap_annotation(long, 38) == (
        "Mann-Whitney U p = 1.7e-07,\nCohen's d = -0.23, AUC = 0.42,\nKS D = 0.12, p = 3.4e-06"
    )
    assert wrap_annotation("a" * 50, 38) == "a" * 50
    short = iaa_ecdf_figure(*iaa, annotation="p")
    wrapped = iaa_ecdf_figure(*iaa, annotation=long)
    for fig in (short, wrapped):
        fig.draw_without_rendering()
    assert wrapped.axes[0].get_position().width == pytest.approx(short.axes[0].get_position().width, rel=0.02)


def test_ecdf_figure_ends_at_one(iaa):
    fig = iaa_ecdf_figure(*iaa, annotation=ANNOTATION)
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_ydata())]
    assert len(lines) == 2
    for line in lines:
        assert line.get_ydata()[0] == 0.0 and line.get_ydata()[-1] == pytest.approx(1.0)


def test_factor_heatmap_prints_values_and_counts():
    matrix, counts = _factor_matrix()
    fig = factor_heatmap_figure(matrix, counts, title="Dice by tool", value_label="Mean Dice (unitless)")
    texts = _texts(fig)
    # Lower triangle with the diagonal: 6 cells of 3x3, upper triangle blank.
    assert sum(bool(re.fullmatch(r"0\.\d\d\nn=.+", t)) for t in texts) == 6
    assert "Mean Dice (unitless)" in texts


def test_compact_count():
    assert [_compact_count(n) for n in (7, 999, 8612, 9000, 11366, 114_000, 2_300_000)] == [
        "7", "999", "8.6k", "9k", "11.4k", "114k", "2.3M"]


def test_pairwise_matrix_figure_validates_shape():
    values = np.array([[1.0, 0.8], [0.8, 1.0]])
    fig = pairwise_matrix_figure(values, ["A00 · T1 · S1", "A01 · T2 · S2"], metric_label="Dice")
    assert "0.800" in _texts(fig)
    with pytest.raises(ValueError):
        pairwise_matrix_figure(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(ValueError):
        pairwise_matrix_figure(values, ["a"])


def test_lesion_overlay_has_one_legend_entry_per_annotator():
    image, masks = _lesion()
    labels = ["A00 · T1 · S1", "A01 · T2 · S2", "A02 · T3 · S3"]
    fig = lesion_overlay_figure(image, masks, labels, title="ISIC_0000000")
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == labels
    colours = {line.get_color() for line in fig.legends[0].get_lines()}
    assert len(colours) == 3
    # Distinct line styles too, so that the outlines stay apart in grayscale.
    assert len({str(annotator_style(i)[1]) for i in range(7)}) == 7
    with pytest.raises(ValueError):
        lesion_overlay_figure(image, masks[:2], labels)


@pytest.mark.parametrize("kind", ["vote fraction", "entropy"])
def test_disagreement_map_figure(kind):
    image, masks = _lesion()
    fraction = np.mean(masks, axis=0)
    fig = disagreement_map_figure(image, fraction, title="x", kind=kind)
    assert len(fig.axes) == 2  # image and colour bar
    overlay = fig.axes[0].get_images()[1].get_array()
    assert np.ma.getmaskarray(overlay)[fraction == 0].all()
    with pytest.raises(ValueError):
        disagreement_map_figure(image, fraction, kind="nonsense")


def test_export_writes_valid_png_svg_pdf(tmp_path: Path, iaa):
    fig = iaa_ecdf_figure(*iaa, annotation=ANNOTATION)
    paths = export_figure(fig, tmp_path / "sub" / "ecdf.v1", dpi=100)
    assert [p.name for p in paths] == ["ecdf.v1.png", "ecdf.v1.svg", "ecdf.v1.pdf"]
    png, svg, pdf = paths
    width_in, height_in = fig.get_size_inches()
    with Image.open(png) as img:
        img.load()
        assert img.size == (round(width_in * 100), round(height_in * 100))
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    svg_text = svg.read_text(encoding="utf-8")
    assert "<text" in svg_text and "Cumulative fraction" in svg_text
    assert "<dc:date>" not in svg_text
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data)) == 1
    assert b"/CreationDate" not in data
    assert b"/FontFile2" in data  # TrueType embedded (pdf.fonttype 42)


def test_export_is_deterministic(tmp_path: Path):
    matrix, counts = _factor_matrix()
    fig = factor_heatmap_figure(matrix, counts, title="t", value_label="v")
    first = export_figure(fig, tmp_path / "a", formats=("svg", "pdf"))
    second = export_figure(fig, tmp_path / "b", formats=("svg", "pdf"))
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_export_rejects_unknown_format(tmp_path: Path, iaa):
    with pytest.raises(ValueError, match="unknown figure format"):
        export_figure(iaa_ecdf_figure(*iaa), tmp_path / "x", formats=("png", "bmp"))


def test_write_report_figures_draws_what_is_present(tmp_path: Path, iaa):
    matrix, counts = _factor_matrix()
    result = SimpleNamespace(
        iaa_benign=iaa[0], iaa_malignant=iaa[1], malignancy_annotation=ANNOTATION,
        factor_matrices={"tool": (matrix, counts, "Mean Dice"), "skill level": (matrix, counts),
                         "tool_hd95": (matrix / 20, counts, "HD95 / diagonal", "Tool: HD95"),
                         "empty": (pd.DataFrame(), pd.DataFrame()), "bad": "not a tuple"},
    )
    written = write_report_figures(result, tmp_path, formats=("png",), dpi=50)
    assert list(written) == ["iaa_distribution", "iaa_ecdf", "factor_tool", "factor_skill_level",
                             "factor_tool_hd95"]
    assert all(p.is_file() for paths in written.values() for p in paths)
    assert write_report_figures(SimpleNamespace(), tmp_path / "none") == {}


def test_auto_fmt():
    from iaa_desktop.core.figures.export import _auto_fmt

    assert _auto_fmt(np.array([[0.034, np.nan]])) == ".3f"
    assert _auto_fmt(np.array([[0.81]])) == ".2f"
    assert _auto_fmt(np.array([[12.3]])) == ".1f"
    assert _auto_fmt(np.array([[np.nan]])) == ".2f"


def test_no_pyplot_or_qt_after_building_figures(tmp_path: Path):
    script = textwrap.dedent(f"""
        import sys
        from types import SimpleNamespace
        import numpy as np, pandas as pd
        from iaa_desktop.core import figures
        rng = np.random.default_rng(0)
        b, m = rng.beta(8, 2, 30), rng.beta(6, 2, 10)
        levels = ["a", "b"]
        mat = pd.DataFrame([[0.8, np.nan], [0.7, 0.9]], index=levels, columns=levels)
        image = np.zeros((20, 30, 3), np.uint8)
        mask = np.zeros((20, 30), np.uint8); mask[5:15, 5:20] = 1
        figs = [
            figures.iaa_distribution_figure(b, m, annotation="p"),
            figures.iaa_ecdf_figure(b, m, annotation="p"),
            figures.factor_heatmap_figure(mat, mat * 10, title="t", value_label="v"),
            figures.lesion_overlay_figure(image, [mask, mask], ["A", "B"], title="t"),
            figures.pairwise_matrix_figure(np.eye(2), ["A", "B"]),
            figures.disagreement_map_figure(image, mask * 0.5, title="t"),
        ]
        for i, fig in enumerate(figs):
            figures.export_figure(fig, {str(tmp_path)!r} + f"/f{{i}}", dpi=30)
        figures.write_report_figures(SimpleNamespace(iaa_benign=b, iaa_malignant=m,
                                     factor_matrices={{"x": (mat, mat, "v")}}), {str(tmp_path)!r}, dpi=30)
        bad = [name for name in sys.modules
               if name == "matplotlib.pyplot" or name.split(".")[0] in ("PySide6", "pyqtgraph", "torch")]
        print("BAD", bad)
        sys.exit(1 if bad else 0)
    """)
    proc = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
