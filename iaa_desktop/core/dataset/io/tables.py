"""Reading metadata CSVs robustly: BOMs, other delimiters, missing columns, bad labels."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from iaa_desktop.core.errors import DatasetReadError

_DELIMITERS = ",;\t|"


def sniff_delimiter(path: Path) -> str:
    """The delimiter of a CSV's header line (comma unless another one clearly is)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = handle.readline()
    if not header.strip():
        raise DatasetReadError(f"{path}: file is empty (no header line)")
    try:
        return csv.Sniffer().sniff(header, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_table(path: Path, required: Iterable[str], what: str) -> pd.DataFrame:
    """Read a metadata CSV as strings, checking that ``required`` columns are present.

    Parameters
    ----------
    path
        The CSV file.
    required
        Column names that must be present (after stripping whitespace and BOMs).
    what
        A few words naming the table, for messages ("segmentation metadata").

    Raises
    ------
    DatasetReadError
        Naming the file and the problem: unreadable, empty, or missing columns.
    """
    path = Path(path)
    try:
        delimiter = sniff_delimiter(path)
        frame = pd.read_csv(
            path, sep=delimiter, dtype=str, keep_default_na=True, encoding="utf-8-sig"
        )
    except DatasetReadError:
        raise
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetReadError(f"{path}: cannot read {what} ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        hint = ""
        if len(frame.columns) == 1 and delimiter == ",":
            hint = " (is the file delimited by something other than commas?)"
        raise DatasetReadError(
            f"{path}: {what} lacks column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns[:12]))}{hint}"
        )
    return frame


def first_present(frame: pd.DataFrame, names: Iterable[str]) -> str | None:
    """The first of ``names`` that is a column of ``frame``."""
    return next((n for n in names if n in frame.columns), None)


def clean(value: object) -> str | None:
    """A stripped string, or ``None`` for NaN / empty."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def to_int(value: object) -> int | None:
    text = clean(value)
    if text is None:
        return None
    try:
        return int(float(text))
    except ValueError:
        return None
