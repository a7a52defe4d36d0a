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


# --- diagnosis-only datasets: one-hot rows and the study's binary task ---------------------------

#: The binary task the study fine-tuned on for ISIC 2018/2019, derm7pt and PH2: melanoma vs not.
BINARY_TASK = "melanoma vs not melanoma"

#: One-hot values read as "this class": ISIC writes 1.0 / 0.0; PH2's spreadsheet marks an X.
_ONE = {"1", "1.0", "x", "true", "yes"}
_ZERO = {"", "0", "0.0", "false", "no", "nan"}


def decode_one_hot(row: dict, classes: tuple[str, ...]) -> tuple[str | None, str]:
    """(class, "") for a row with exactly one class set, else (None, reason).

    ``row`` maps column names to cell values (strings or numbers). ``reason`` is
    ``"none"`` (no class set), ``"several:A,B"`` (more than one) or
    ``"bad:COL=value"`` (a value that is neither 0/1 nor X/empty).
    """
    chosen = []
    for name in classes:
        value = row.get(name)
        text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
        text = text.strip().lower()
        if text in _ONE:
            chosen.append(name)
        elif text not in _ZERO:
            return None, f"bad:{name}={value}"
    if not chosen:
        return None, "none"
    if len(chosen) > 1:
        return None, "several:" + ",".join(chosen)
    return chosen[0], ""


def melanoma_label(is_melanoma: bool | None) -> str | None:
    """``benign_malignant`` of the binary task: ``malignant`` for melanoma, ``benign`` for the rest."""
    if is_melanoma is None:
        return None
    return "malignant" if is_melanoma else "benign"
