"""Reading and writing agreement tables as CSV: the pairwise table in the IMA++ layout, validated,
and every derived table written so that its floats read back bit for bit.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.metrics import METRIC_COLUMNS
from iaa_desktop.core.agreement.tables import (
    _REQUIRED_IDS,
    ID_COLUMNS,
    PAIRWISE_COLUMNS,
    PairwiseTableError,
    agreement_tables,
)

_NA_TOKENS = frozenset({"nan", "na", "n/a", "null", "none", "-nan"})


def _lines(rows: np.ndarray, limit: int = 5) -> str:
    """File line numbers of 0-based data rows (the header is line 1)."""
    shown = ", ".join(str(int(r) + 2) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _to_float(column: pd.Series, name: str, source: str) -> np.ndarray:
    """Parse a column of metric strings exactly as Python's ``float`` would."""
    values = np.empty(len(column), dtype=np.float64)
    bad = []
    for i, text in enumerate(column.tolist()):
        text = text.strip()
        if not text or text.lower() in _NA_TOKENS:
            values[i] = np.nan
            continue
        try:
            # float() rounds correctly, so a table we wrote reads back bit for bit.
            values[i] = float(text)
        except ValueError:
            bad.append(i)
    if bad:
        example = column.iloc[bad[0]]
        raise PairwiseTableError(
            f"{source}: column {name} holds non-numeric values, e.g. {example!r} "
            f"(line {_lines(np.asarray(bad))})"
        )
    return values


def _header_fields(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        return handle.readline()


def read_pairwise_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate a pairwise metrics CSV in the IMA++ layout.

    Parameters
    ----------
    path
        A comma-separated file with the columns :data:`PAIRWISE_COLUMNS`, in any
        order; a UTF-8 byte-order mark and extra columns are tolerated.

    Returns
    -------
    pandas.DataFrame
        The :data:`PAIRWISE_COLUMNS` in the published order, then any extra
        columns as read. Metric columns are float64 (missing cells and ``nan``
        are NaN: IMA++ leaves HD/ASSD empty when a mask is empty); the other
        columns are strings, with NaN for empty cells. A header-only file gives
        an empty table.

    Raises
    ------
    PairwiseTableError
        Naming the file and the problem: missing or unreadable file, empty file,
        a delimiter other than commas, missing columns, non-numeric metrics, or
        missing image / annotator ids.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        what = "is a directory, not a CSV file" if path.is_dir() else "does not exist"
        raise PairwiseTableError(f"{source}: pairwise table {what}")
    try:
        # Everything as text: ids stay exactly as written ("NA" is a valid code
        # for nothing here) and metrics are parsed by float() below.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise PairwiseTableError(f"{source}: pairwise table is empty (no header line)") from None
    except UnicodeDecodeError:
        raise PairwiseTableError(f"{source}: pairwise table is not UTF-8 text") from None
    except (OSError, pd.errors.ParserError) as exc:
        raise PairwiseTableError(f"{source}: cannot read pairwise table ({exc})") from None
    raw.columns = [str(c).strip() for c in raw.columns]

    missing = [c for c in PAIRWISE_COLUMNS if c not in raw.columns]
    if missing:
        header = _header_fields(path)
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            fields = {f.strip() for f in header.split(sep)}
            if set(PAIRWISE_COLUMNS) <= fields:
                raise PairwiseTableError(
                    f"{source}: pairwise table is separated by {name}; "
                    "expected comma-separated values (IMA++ layout)"
                )
        raise PairwiseTableError(f"{source}: pairwise table lacks column(s) {', '.join(missing)}")

    extra = [c for c in raw.columns if c not in PAIRWISE_COLUMNS]
    table = raw[[*PAIRWISE_COLUMNS, *extra]].copy()
    for name in METRIC_COLUMNS:
        table[name] = _to_float(raw[name], name, source)
    for name in ID_COLUMNS:
        table[name] = raw[name].where(raw[name].str.strip() != "")
    for name in _REQUIRED_IDS:
        empty = np.flatnonzero(table[name].isna().to_numpy())
        if len(empty):
            raise PairwiseTableError(f"{source}: column {name} is empty on line {_lines(empty)}")
    return table


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV whose floats read back bit for bit.

    pandas writes floats with ``repr`` (the shortest text that parses back to
    the same double), NaN as an empty cell and ``\\n`` line endings, which is
    also how the published IMA++ CSVs are written.
    """
    path = Path(path)
    table.to_csv(path, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    return path


def write_agreement_tables(
    pairwise: pd.DataFrame, out_dir: str | Path, tables: dict[str, pd.DataFrame] | None = None
) -> dict[str, Path]:
    """Write the agreement tables of a pairwise table as CSV files in ``out_dir``.

    Parameters
    ----------
    pairwise
        A pairwise table (see :func:`read_pairwise_csv`).
    out_dir
        Folder to write to, created if needed; nothing is written elsewhere.
        Existing files of the same names are replaced.
    tables
        The tables if already computed by :func:`agreement_tables`.

    Returns
    -------
    dict of str to Path
        ``image_level``, ``factor_annotator``, ``factor_tool``,
        ``factor_skill_level``, ``intra_inter_annotator``, ``intra_inter_tool``,
        ``intra_inter_skill_level``: each the path of ``<name>.csv``.

    Raises
    ------
    PairwiseTableError
        When ``out_dir`` cannot be created or written.
    """
    out_dir = Path(out_dir)
    if tables is None:
        tables = agreement_tables(pairwise)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return {name: write_table(table, out_dir / f"{name}.csv") for name, table in tables.items()}
    except OSError as exc:
        raise PairwiseTableError(f"{out_dir}: cannot write agreement tables ({exc})") from None
