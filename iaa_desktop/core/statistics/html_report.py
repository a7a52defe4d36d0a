"""A self-contained HTML report: figures, numbers, parameters and provenance in one file.

``report.html`` links nothing outside itself: PNG figures are embedded as base64 data
URIs, the CSS is inline, there are no scripts, web fonts or external links, so the file
can be mailed, archived or opened offline years later. Every piece of text (table cells,
parameter values, titles) is HTML-escaped.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html
import importlib.metadata
import math
import platform
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from iaa_desktop._version import __version__

__all__ = ["format_number", "flatten_stats", "software_versions", "write_html_report"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 62em; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { font-size: 1.05em; }
.meta { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.text, th.text { text-align: left; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""

#: Parameter keys shown as the dataset fingerprint, first one found wins.
_FINGERPRINT_KEYS = ("dataset_fingerprint", "fingerprint", "source_fingerprint")

#: Packages whose versions are recorded (python and iaa_desktop are added).
_PACKAGES = ("numpy", "pandas", "scipy", "matplotlib")


def format_number(value: object) -> str:
    """A number as a reader wants it: 4 significant digits, scientific for tiny p-values.

    Integers keep every digit (with thousands separators), nan becomes ``"–"``, and
    anything that is not a number is returned as ``str(value)``.
    """
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isnan(x):
            return "–"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x != 0.0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
            return f"{x:.2e}"
        if x.is_integer() and abs(x) < 1e6:
            return f"{x:.1f}" if abs(x) < 10 else f"{x:,.0f}"
        return f"{x:.4g}"
    return str(value)


def _plain(value: object) -> object:
    """Dataclasses, named tuples and arrays as dicts, lists or scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if hasattr(value, "_asdict"):
        return value._asdict()
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else value
    return value


def flatten_stats(stats: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    """Nested statistics as ``("malignancy / mann_whitney / p", "1.70e-07")`` rows.

    Nested mappings and dataclasses are walked; arrays and lists longer than 8 are
    summarised (``"array of 1,900 values, mean 0.8023"``) rather than printed, and
    DataFrames are named by their shape (pass them as ``tables`` to show them).
    """
    rows: list[tuple[str, str]] = []
    for key, raw in stats.items():
        name = f"{prefix} / {key}" if prefix else str(key)
        value = _plain(raw)
        if isinstance(value, Mapping):
            rows.extend(flatten_stats(value, name))
        elif isinstance(value, pd.DataFrame | pd.Series):
            shape = " × ".join(f"{n:,}" for n in value.shape)
            rows.append((name, f"table of {shape} (see the tables)"))
        elif isinstance(value, np.ndarray | list | tuple):
            array = np.asarray(value, dtype=object).ravel()
            if len(array) <= 8:
                rows.append((name, ", ".join(format_number(v) for v in array)))
            else:
                numeric = pd.to_numeric(pd.Series(array), errors="coerce").to_numpy(dtype=np.float64)
                summary = f"array of {len(array):,} values"
                if np.isfinite(numeric).any():
                    summary += f", mean {format_number(float(np.nanmean(numeric)))}"
                rows.append((name, summary))
        else:
            rows.append((name, format_number(value)))
    return rows


def software_versions() -> dict[str, str]:
    """Versions of python, iaa_desktop and the numeric packages (``"not installed"`` if absent)."""
    versions = {"python": platform.python_version(), "iaa_desktop": __version__}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _key_value_table(rows: list[tuple[str, str]], headers: tuple[str, str]) -> str:
    esc = html.escape
    body = "".join(f'<tr><td class="text">{esc(k)}</td><td class="text">{esc(v)}</td></tr>' for k, v in rows)
    head = f'<tr><th class="text">{esc(headers[0])}</th><th class="text">{esc(headers[1])}</th></tr>'
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _frame_html(frame: pd.DataFrame) -> str:
    """A DataFrame as an escaped HTML table, numbers through :func:`format_number`."""
    types = pd.api.types
    integer_columns = {
        col: format_number
        for col, dtype in frame.dtypes.items()
        if types.is_integer_dtype(dtype) and not types.is_bool_dtype(dtype)
    }
    return frame.to_html(escape=True, float_format=format_number, formatters=integer_columns or None,
                         na_rep="–", border=0, classes="data", max_rows=500)


def _figure_html(name: str, paths: list[Path]) -> str:
    """The figure's PNG embedded as a data URI (else its SVG), with the list of its files."""
    esc = html.escape
    paths = [Path(p) for p in paths]
    by_suffix = {p.suffix.lower(): p for p in paths}
    image = ""
    for suffix, mime in ((".png", "image/png"), (".svg", "image/svg+xml")):
        path = by_suffix.get(suffix)
        if path is not None and path.is_file():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            image = f'<img alt="{esc(name)}" src="data:{mime};base64,{data}">'
            break
    if not image:
        image = "<p><em>No PNG or SVG file to show.</em></p>"
    files = ", ".join(f"<code>{esc(p.name)}</code>" for p in paths)
    return f"<figure>{image}<figcaption><strong>{esc(name)}</strong> — files: {files}</figcaption></figure>"


def _result_summary(result: object) -> pd.DataFrame | None:
    """n, mean, median and quartiles of IAA per group, when ``result`` has the arrays."""
    rows = {}
    for label, attr in (("Benign", "iaa_benign"), ("Malignant", "iaa_malignant")):
        values = getattr(result, attr, None)
        if values is None:
            continue
        array = np.asarray(values, dtype=np.float64).ravel()
        array = array[np.isfinite(array)]
        if array.size == 0:
            rows[label] = {"n": 0}
            continue
        q1, median, q3 = np.percentile(array, [25, 50, 75])
        rows[label] = {"n": int(array.size), "mean": float(array.mean()), "sd": float(array.std(ddof=1))
                       if array.size > 1 else float("nan"), "median": median, "q1": q1, "q3": q3}
    if not rows:
        return None
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.columns.name = "Group"  # one header row: the group names label the rows
    return frame.astype({"n": "int64"})


def write_html_report(
    result: object,
    stats: Mapping[str, object],
    figures: Mapping[str, list[Path]],
    out_dir: str | Path,
    *,
    parameters: Mapping[str, object],
    tables: Mapping[str, pd.DataFrame] | None = None,
    title: str = "IAA report",
) -> Path:
    """Write ``report.html``, one self-contained file, into ``out_dir``.

    Parameters
    ----------
    result : object
        Duck-typed: if it has ``iaa_benign`` / ``iaa_malignant`` arrays, a summary table
        (n, mean, sd, median, quartiles of IAA per group) is included;
        ``malignancy_annotation`` (str) is shown under it.
    stats : mapping
        Statistics, possibly nested (dicts or dataclasses); shown flattened, one row per
        leaf, keys joined with ``" / "``.
    figures : mapping of str to list of pathlib.Path
        Figure name -> its files, as returned by ``figures.write_report_figures``. The PNG
        (else the SVG) is embedded; the other files are listed by name.
    out_dir : str or pathlib.Path
        Folder of the report (created if needed).
    parameters : mapping
        The run's parameters, shown as a table. A ``dataset_fingerprint`` (or
        ``fingerprint``) entry is also shown at the top.
    tables : mapping of str to pandas.DataFrame, optional
        Extra tables of numbers, one section each (at most 500 rows shown per table).
    title : str
        Page title and heading.

    Returns
    -------
    pathlib.Path
        The written ``report.html``.
    """
    esc = html.escape
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    fingerprint = next((parameters[k] for k in _FINGERPRINT_KEYS if parameters.get(k)), None)

    meta = f"Created {esc(created)} with iaa_desktop {esc(__version__)}."
    if fingerprint is not None:
        meta += f"<br>Dataset fingerprint: <code>{esc(str(fingerprint))}</code>"
    parts = [f"<h1>{esc(title)}</h1>", f'<p class="meta">{meta}</p>']

    summary = _result_summary(result)
    if summary is not None:
        parts.append("<h2>IAA by malignancy</h2>")
        parts.append("<p>IAA: mean pairwise Dice of the human annotators of an image (unitless, 0–1).</p>")
        parts.append(_frame_html(summary))
        annotation = getattr(result, "malignancy_annotation", "")
        if annotation:
            parts.append(f"<p><strong>Test:</strong> {esc(str(annotation))}</p>")

    # Figures and tables first: a reader looks at those; the full list of statistics follows.
    if figures:
        parts.append("<h2>Figures</h2>")
        parts.extend(_figure_html(str(name), list(paths)) for name, paths in figures.items())

    for name, frame in (tables or {}).items():
        parts.append(f"<h2>{esc(str(name))}</h2>")
        parts.append(_frame_html(frame))

    if stats:
        parts.append("<h2>All statistics</h2>")
        parts.append(_key_value_table(flatten_stats(stats), ("Statistic", "Value")))

    parts.append("<h2>Parameters</h2>")
    parts.append(_key_value_table(flatten_stats(dict(parameters)), ("Parameter", "Value")))
    parts.append("<h2>Software</h2>")
    parts.append(_key_value_table(list(software_versions().items()), ("Package", "Version")))

    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
    path = out_dir / "report.html"
    path.write_text(document, encoding="utf-8")
    return path
