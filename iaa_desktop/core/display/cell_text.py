"""Shorter cell texts for small heatmap cells: the same number with fewer decimals.

A heatmap draws ``core.display.pair_matrix.format_value`` texts ("0.873", "12.4"); when the
cells are too small for them at a readable font, the widget asks for the values rounded to
fewer decimals. Rounding is to the nearest, ties to even (Python's ``format``), so "0.875"
becomes "0.88" and "1.000" becomes "1.00", "1.0", "1".
"""

from __future__ import annotations

import re

_DECIMAL = re.compile(r"^(-?)(\d+)\.(\d+)$")


def decimals_of(text: str) -> int:
    """How many decimals a plain decimal text has (0 for integers and non-numbers)."""
    match = _DECIMAL.match(text)
    return len(match.group(3)) if match else 0


def with_fewer_decimals(text: str, drop: int) -> str:
    """``text`` rounded to ``drop`` fewer decimals (at least none); other texts unchanged.

    Examples
    --------
    >>> with_fewer_decimals("0.8765", 2)
    '0.88'
    >>> with_fewer_decimals("12.4", 3)
    '12'
    >>> with_fewer_decimals("–", 1)
    '–'
    """
    if drop <= 0 or not _DECIMAL.match(text):
        return text
    keep = max(decimals_of(text) - drop, 0)
    rounded = f"{float(text):.{keep}f}"
    return rounded.lstrip("-") if float(rounded) == 0 else rounded  # no "-0.0"
