"""Heatmap cell texts with fewer decimals for small cells."""

import pytest

from iaa_desktop.core.display.cell_text import decimals_of, with_fewer_decimals


@pytest.mark.parametrize("text, drop, expected", [
    ("0.8765", 0, "0.8765"), ("0.8765", 1, "0.876"), ("0.8765", 2, "0.88"), ("0.8765", 3, "0.9"),
    ("0.8765", 9, "1"), ("1.000", 1, "1.00"), ("1.000", 3, "1"), ("12.4", 1, "12"), ("12.6", 1, "13"),
    ("-0.04", 1, "0.0"), ("-0.26", 1, "-0.3"), ("–", 2, "–"), ("", 1, ""), ("7", 2, "7"),
])
def test_fewer_decimals_rounds_to_the_nearest(text, drop, expected):
    assert with_fewer_decimals(text, drop) == expected


def test_decimals_of():
    assert [decimals_of(t) for t in ("0.873", "12.4", "3", "–", "1e-3")] == [3, 1, 0, 0, 0]
