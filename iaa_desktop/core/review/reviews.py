"""Reviewers' decisions per lesion, kept in the workspace database; CSV export and import.

A review gives a lesion a status (:data:`STATUSES`), a free-text note, an
optional chosen reference (one of the lesion's annotators, ``MV`` or
``STAPLE``), the reviewer's name and the time (UTC ISO 8601). Every save is
one transaction and is also appended to a history table, so each edit has an
id (:func:`save_review` returns it). Lesions never reviewed are
``unreviewed``. Lesions marked ``exclude`` are left out of the statistics and
of the training-set export when those are asked to honour the reviews
(:func:`excluded_ids`).

CSV (:data:`REVIEW_COLUMNS`): ``image_id, status, note, reference, reviewer,
updated``; reading it back checks every row and reports problems as
``FILE, row N: ...`` (N is the line number; the header is line 1).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.review.workspace import Workspace

STATUSES = ("unreviewed", "consensus_acceptable", "needs_reannotation", "exclude")
STATUS_LABELS = {
    "unreviewed": "Unreviewed",
    "consensus_acceptable": "Consensus acceptable",
    "needs_reannotation": "Needs re-annotation",
    "exclude": "Exclude from analysis",
}
#: Consensus references a reviewer may choose besides the lesion's annotators.
CONSENSUS_REFERENCES = ("MV", "STAPLE")
REVIEW_COLUMNS = ("image_id", "status", "note", "reference", "reviewer", "updated")
MAX_NOTE_CHARS = 20_000


class ReviewError(IAAError):
    """A review cannot be saved or read (message names the lesion or file and row)."""


class ReviewImportError(ReviewError):
    """A review CSV has invalid rows; nothing was imported. ``messages``: one per problem."""

    def __init__(self, messages: Sequence[str]) -> None:
        shown = list(messages[:20])
        more = f"\n... and {len(messages) - 20} more" if len(messages) > 20 else ""
        super().__init__("\n".join(shown) + more)
        self.messages = tuple(messages)


@dataclass(frozen=True)
class Review:
    """One lesion's review (``updated``: UTC ISO 8601, empty for never reviewed)."""

    image_id: str
    status: str = "unreviewed"
    note: str = ""
    reference: str = ""
    reviewer: str = ""
    updated: str = ""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def review_problems(review: Review, annotators: Iterable[str] | None = None) -> list[str]:
    """What is wrong with ``review`` (empty when it is valid).

    ``annotators``: the lesion's annotators, when known; the reference must then
    be one of them, ``MV`` or ``STAPLE``.
    """
    problems = []
    if not review.image_id.strip():
        problems.append("image_id is empty")
    if review.status not in STATUSES:
        problems.append(f"status {review.status!r} is not one of {', '.join(STATUSES)}")
    if len(review.note) > MAX_NOTE_CHARS:
        problems.append(f"note is longer than {MAX_NOTE_CHARS:,} characters")
    if review.reference and annotators is not None:
        allowed = (*sorted(set(annotators)), *CONSENSUS_REFERENCES)
        if review.reference not in allowed:
            problems.append(f"reference {review.reference!r} is not one of {', '.join(allowed)}")
    return problems


def save_review(workspace: Workspace, review: Review, *, annotators: Iterable[str] | None = None,
                now: str | None = None) -> int:
    """Save ``review`` (stamped with the time now unless ``now``); returns the edit id.

    The edit is durable when this returns. Raises ``ReviewError`` for an invalid
    review and ``WorkspaceError`` when the workspace is read-only.
    """
    problems = review_problems(review, annotators)
    if problems:
        raise ReviewError(f"review of {review.image_id or '?'} not saved: {'; '.join(problems)}")
    updated = now or now_iso()
    with workspace.transaction() as db:
        return _write(db, review, updated)


def _write(db, review: Review, updated: str) -> int:
    values = (review.image_id, review.status, review.note, review.reference, review.reviewer, updated)
    cursor = db.execute("INSERT INTO review_history (image_id, status, note, reference, reviewer, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?)", values)
    edit_id = int(cursor.lastrowid)
    db.execute("INSERT OR REPLACE INTO reviews (image_id, status, note, reference, reviewer, updated, "
               "edit_id) VALUES (?, ?, ?, ?, ?, ?, ?)", (*values, edit_id))
    return edit_id


def get_review(workspace: Workspace, image_id: str) -> Review:
    """The review of ``image_id`` (an ``unreviewed`` one when there is none)."""
    row = workspace.connection.execute(
        "SELECT image_id, status, note, reference, reviewer, updated FROM reviews WHERE image_id = ?",
        (image_id,)).fetchone()
    return Review(*row) if row else Review(image_id)


def all_reviews(workspace: Workspace) -> dict[str, Review]:
    """Every saved review by image id."""
    rows = workspace.connection.execute(
        "SELECT image_id, status, note, reference, reviewer, updated FROM reviews ORDER BY image_id")
    return {row[0]: Review(*row) for row in rows}


def statuses(workspace: Workspace) -> dict[str, str]:
    """Image id -> status of every reviewed lesion (the browser's status column)."""
    return dict(workspace.connection.execute("SELECT image_id, status FROM reviews"))


def reviews_frame(workspace: Workspace, image_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Reviews as a table (:data:`REVIEW_COLUMNS`); with ``image_ids``, one row each in that order."""
    saved = all_reviews(workspace)
    ids = list(saved) if image_ids is None else list(image_ids)
    rows = [asdict(saved.get(i, Review(i))) for i in ids]
    return pd.DataFrame(rows, columns=list(REVIEW_COLUMNS))


def excluded_ids(workspace: Workspace) -> frozenset[str]:
    """Image ids whose review status is ``exclude``."""
    rows = workspace.connection.execute("SELECT image_id FROM reviews WHERE status = 'exclude'")
    return frozenset(row[0] for row in rows)


def review_summary(workspace: Workspace, image_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Status -> number of lesions (over ``image_ids`` when given, else the reviewed ones)."""
    saved = statuses(workspace)
    ids = list(saved) if image_ids is None else list(image_ids)
    counts = Counter(saved.get(i, "unreviewed") for i in ids)
    return {status: counts.get(status, 0) for status in STATUSES}


def next_unreviewed(image_ids: Sequence[str], status_by_id: Mapping[str, str],
                    after: str | None = None) -> str | None:
    """The first unreviewed id after ``after`` in ``image_ids`` (wrapping), or ``None``."""
    start = image_ids.index(after) + 1 if after in image_ids else 0
    for offset in range(len(image_ids)):
        image_id = image_ids[(start + offset) % len(image_ids)]
        if image_id != after and status_by_id.get(image_id, "unreviewed") == "unreviewed":
            return image_id
    return None


# --- CSV -----------------------------------------------------------------------------------------

def export_reviews_csv(workspace: Workspace, path: str | Path,
                       image_ids: Iterable[str] | None = None) -> int:
    """Write the reviews to ``path`` (UTF-8 CSV, :data:`REVIEW_COLUMNS`); returns the row count."""
    frame = reviews_frame(workspace, image_ids)
    try:
        frame.to_csv(path, index=False, encoding="utf-8")
    except OSError as exc:
        raise ReviewError(f"{path}: cannot write the reviews ({exc.strerror or exc})") from None
    return len(frame)


def read_reviews_csv(path: str | Path, *, known_ids: Iterable[str] | None = None,
                     annotators_by_id: Mapping[str, Iterable[str]] | None = None) -> list[Review]:
    """Reviews from a CSV written by :func:`export_reviews_csv` (or by hand), every row checked.

    Parameters
    ----------
    path
        The CSV (UTF-8, BOM accepted; comma, semicolon or tab delimited).
    known_ids
        The dataset's image ids: rows naming another id are errors.
    annotators_by_id
        Each lesion's annotators: a reference must be one of them, MV or STAPLE.

    Raises
    ------
    ReviewImportError
        Listing every problem as ``FILE, row N: ...``.
    """
    from iaa_desktop.core.dataset.io.tables import sniff_delimiter

    path = Path(path)
    try:
        delimiter = sniff_delimiter(path)
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error, IAAError) as exc:
        raise ReviewImportError([f"{path}: cannot read the reviews ({exc})"]) from None
    header = [name.strip() for name in rows[0]] if rows else []
    missing = [c for c in ("image_id", "status") if c not in header]
    if missing:
        raise ReviewImportError([f"{path}, row 1: missing column(s) {', '.join(missing)} "
                                 f"(expected {', '.join(REVIEW_COLUMNS)}; found {', '.join(header)})"])
    known = set(known_ids) if known_ids is not None else None
    errors: list[str] = []
    reviews: dict[str, Review] = {}
    for line, values in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append(f"{path}, row {line}: {len(values)} fields, the header has {len(header)}")
            continue
        record = dict(zip(header, values, strict=True))
        review = Review(**{c: record.get(c, "").strip() if c != "note" else record.get(c, "")
                           for c in REVIEW_COLUMNS})
        annotators = annotators_by_id.get(review.image_id) if annotators_by_id is not None else None
        problems = review_problems(review, annotators)
        if known is not None and review.image_id and review.image_id not in known:
            problems.append(f"image {review.image_id!r} is not in the dataset")
        if review.image_id in reviews:
            problems.append(f"image {review.image_id!r} appears more than once")
        if review.updated and not _is_iso_time(review.updated):
            problems.append(f"updated {review.updated!r} is not an ISO 8601 time")
        errors.extend(f"{path}, row {line}: {problem}" for problem in problems)
        if not problems:
            reviews[review.image_id] = review
    if errors:
        raise ReviewImportError(errors)
    return list(reviews.values())


def _is_iso_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def import_reviews_csv(workspace: Workspace, path: str | Path, **checks) -> int:
    """Read ``path`` (see :func:`read_reviews_csv`) and save every review in one transaction.

    All or nothing: a file with any invalid row raises ``ReviewImportError`` and
    changes nothing. Rows keep their ``updated`` time when they have one.
    Returns the number of reviews imported.
    """
    reviews = read_reviews_csv(path, **checks)
    stamp = now_iso()
    with workspace.transaction() as db:
        for review in reviews:
            _write(db, review, review.updated or stamp)
    return len(reviews)
