"""The HTML report is one self-contained, escaped file."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import iaa_desktop
from iaa_desktop.core.figures import export_figure, iaa_ecdf_figure
from iaa_desktop.core.statistics.html_report import (
    flatten_stats,
    format_number,
    software_versions,
    write_html_report,
)

HOSTILE = '<script>alert("x")</script>'


@dataclass(frozen=True)
class _Test:
    statistic: float
    p_value: float


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str, Path]:
    out = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(2)
    benign, malignant = rng.beta(16, 4, 40), rng.beta(12, 4, 15)
    png = export_figure(iaa_ecdf_figure(benign, malignant, annotation="KS p = 0.01"), out / "ecdf",
                        formats=("png", "pdf"), dpi=40)
    result = SimpleNamespace(iaa_benign=benign, iaa_malignant=malignant,
                             malignancy_annotation="Mann-Whitney U p = 1.7e-07 <b>")
    stats = {"malignancy": {"mann_whitney": _Test(12345.0, 1.7e-7), "cohens_d": 0.2134567},
             "n_images": 2394, "iaa_all": np.linspace(0, 1, 50), HOSTILE: "value"}
    tables = {"Per image": pd.DataFrame({"image_id": ["ISIC_1", HOSTILE], "iaa": [0.812345678, np.nan],
                                         "n_masks": [3, 5]})}
    parameters = {"dataset": "/data/imapp", "dataset_fingerprint": "sha256:abc123", "min_masks": 2}
    path = write_html_report(result, stats, {"iaa_ecdf": png}, out, parameters=parameters, tables=tables,
                             title=f"IAA {HOSTILE}")
    return path, path.read_text(encoding="utf-8"), png[0]


def test_report_is_written(report):
    path, text, _ = report
    assert path.name == "report.html"
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_report_links_nothing_outside_itself(report):
    _, text, _ = report
    lowered = text.lower()
    for forbidden in ('src="http', "src='http", 'href="http', "href='http", "<link", "<script", "@import",
                      "url(http"):
        assert forbidden not in lowered, forbidden


def test_report_embeds_the_png(report):
    _, text, png = report
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert match is not None
    assert base64.b64decode(match.group(1)) == png.read_bytes()
    assert "ecdf.pdf" in text  # the other files are listed by name


def test_report_escapes_text(report):
    _, text, _ = report
    assert HOSTILE not in text
    assert "&lt;script&gt;" in text
    assert "<b>" not in text


def test_report_has_numbers_parameters_versions(report):
    _, text, _ = report
    assert "0.8123" in text and "0.812345678" not in text
    assert "1.70e-07" in text and "0.2135" in text and "2,394" in text
    assert "malignancy / mann_whitney / p_value" in text
    assert "array of 50 values" in text
    assert "sha256:abc123" in text and "min_masks" in text
    for package in ("python", "numpy", "pandas", "scipy", "matplotlib"):
        assert f">{package}<" in text
    assert iaa_desktop.__version__ in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", text)


def test_report_without_optional_parts(tmp_path: Path):
    path = write_html_report(object(), {}, {}, tmp_path, parameters={})
    text = path.read_text(encoding="utf-8")
    assert "<h2>Software</h2>" in text and "IAA by malignancy" not in text


def test_format_number():
    assert format_number(0.80234) == "0.8023"
    assert format_number(1.7e-7) == "1.70e-07"
    assert format_number(12345) == "12,345"
    assert format_number(float("nan")) == "–"
    assert format_number(True) == "True"
    assert format_number("x") == "x"


def test_flatten_stats_and_versions():
    rows = dict(flatten_stats({"a": {"b": 1, "c": [0.5, 0.25]}, "t": pd.DataFrame({"x": [1, 2]})}))
    assert rows == {"a / b": "1", "a / c": "0.5, 0.25", "t": "table of 2 × 1 (see the tables)"}
    assert set(software_versions()) >= {"python", "iaa_desktop", "numpy", "pandas", "scipy", "matplotlib"}
