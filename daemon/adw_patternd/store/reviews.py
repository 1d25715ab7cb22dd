"""The review trail: an append-only table of what people decided about a pattern, whose
latest row per pattern is the pattern's state (`review`, config.yaml's `automated:`)."""

from __future__ import annotations

from ..core.errors import PatterndError
from ..core.review import DECISIONS, Review
from .db import Db
from .rows import now_text


class UnknownPattern(PatterndError):
    def __init__(self, signature: str):
        super().__init__(f"no pattern {signature!r} in the database; `adw-patternd patterns` lists the signatures")


_REVIEW_COLUMNS = ("pattern_signature, decision, note, decided_by, decided_at, occurrences_then, savings_then, "
                   "confidence_then, effective_on")


def _review(row) -> Review:
    return Review(row[0], row[1], row[2], row[3], row[4], int(row[5] or 0), float(row[6] or 0), float(row[7] or 0),
                  row[8])


def latest_reviews(db: Db) -> dict[str, Review]:
    """The latest decision of every reviewed pattern (decisions are few: one query)."""
    rows = db.all(f"SELECT {_REVIEW_COLUMNS} FROM pattern_reviews r WHERE r.id = "
                  "(SELECT MAX(id) FROM pattern_reviews x WHERE x.pattern_signature = r.pattern_signature)")
    return {r[0]: _review(r) for r in rows}


def review_history(db: Db, signature: str) -> list[Review]:
    return [_review(r) for r in db.all(f"SELECT {_REVIEW_COLUMNS} FROM pattern_reviews WHERE pattern_signature = ? "
                                       "ORDER BY id", (signature,))]


def record_review(db: Db, signature: str, decision: str, note: str | None, by: str, *,
                  effective_on: str | None = None, force: bool = False) -> Review:
    """Append a decision, with the pattern's numbers as they are now. ``automated`` takes
    the day a tool took over (``effective_on``); ``force``: a signature never seen (automated
    ahead of time), or another day for a pattern already automated."""
    if decision not in DECISIONS:
        raise PatterndError(f"decision {decision!r}: use one of {', '.join(DECISIONS)}")

    def work():
        row = db.one("SELECT occurrence_count, potential_monthly_savings, confidence_score FROM operation_patterns "
                     f"WHERE pattern_signature = ?{db.for_update}", (signature,))
        if (row is None or not row[0]) and not (force and decision == "automated"):
            raise UnknownPattern(signature)
        row = row or (0, 0.0, 0.0)
        if decision == "automated" and not force:
            latest = db.one("SELECT decision, effective_on FROM pattern_reviews WHERE pattern_signature = ? "
                            "ORDER BY id DESC LIMIT 1", (signature,))
            if latest and latest[0] == "automated" and latest[1] != effective_on:
                raise PatterndError(f"review {signature}: already automated on {latest[1]}; pass --force to record "
                                    f"{effective_on} as the day it took effect instead")
        values = (signature, DECISIONS[decision], note, by, now_text(), int(row[0] or 0), float(row[1] or 0),
                  float(row[2] or 0), effective_on if decision == "automated" else None)
        db.execute(f"INSERT INTO pattern_reviews ({_REVIEW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        # The reference's own column says the same, for tools that read only operation_patterns.
        db.execute("UPDATE operation_patterns SET automation_status = ? WHERE pattern_signature = ?",
                   (DECISIONS[decision], signature))
        return _review(values)

    return db.transaction(work, what=f"review of {signature}")


def occurrence_count(db: Db, signature: str) -> int:
    """How many stored workflows show the pattern (0 for a signature never seen)."""
    row = db.one("SELECT occurrence_count FROM operation_patterns WHERE pattern_signature = ?", (signature,))
    return int(row[0] or 0) if row else 0
