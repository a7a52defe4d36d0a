"""Normalising benign/malignant labels from the spellings datasets use."""

from __future__ import annotations

#: Labels kept as they are (lower-cased); ISIC uses the two "indeterminate/..." forms.
KNOWN_LABELS = (
    "benign",
    "malignant",
    "indeterminate",
    "indeterminate/benign",
    "indeterminate/malignant",
)
_ALIASES = {
    "0": "benign",
    "1": "malignant",
    "b": "benign",
    "m": "malignant",
    "false": "benign",
    "true": "malignant",
}


def normalise_benign_malignant(value: str | None) -> tuple[str | None, bool]:
    """(label, recognised): the label in our vocabulary, and whether it was one we know.

    Empty values give ``(None, True)``: unknown but not wrong. Unrecognised
    values give ``(None, False)`` so the loader can report them.
    """
    if value is None:
        return None, True
    text = value.strip().lower()
    if not text:
        return None, True
    if text in KNOWN_LABELS:
        return text, True
    if text in _ALIASES:
        return _ALIASES[text], True
    return None, False
