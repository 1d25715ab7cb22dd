"""Decisions about patterns, as values: what a review says, what a pattern's state is, how
much automating it matters (impact), and when its numbers have moved enough since the
decision to deserve another look. Nothing here does I/O; the store keeps the trail."""

from __future__ import annotations

from dataclasses import dataclass

# The verb a person types, and the state it leaves the pattern in.
DECISIONS = {"approve": "approved", "reject": "rejected", "defer": "deferred", "automated": "automated"}
STATES = ("pending", *DECISIONS.values())
RECHECK_FACTOR = 2.0  # savings or occurrences doubled (or halved) since the decision


@dataclass(frozen=True)
class Review:
    """One decision, with the pattern's numbers when it was taken."""

    signature: str
    state: str  # approved, rejected or deferred
    note: str | None
    by: str
    at: str  # ISO 8601, UTC
    occurrences_then: int
    savings_then: float
    confidence_then: float
    effective_on: str | None = None  # automated: the UTC day (YYYY-MM-DD) a tool took over from

    def as_dict(self) -> dict:
        return {"state": self.state, "note": self.note, "by": self.by, "at": self.at,
                "occurrences_then": self.occurrences_then, "savings_then": self.savings_then,
                "confidence_then": self.confidence_then, "effective_on": self.effective_on}


def impact(row: dict) -> float:
    """How much automating a pattern is worth, to rank what to review first:
    confidence (as a fraction) x occurrences x potential monthly savings."""
    return (float(row.get("confidence_score") or 0) / 100 * int(row.get("occurrence_count") or 0)
            * float(row.get("potential_monthly_savings") or 0))


def _moved(then: float, now: float) -> float | None:
    """The factor by which a figure moved, when it doubled or halved (or appeared)."""
    if then <= 0:
        return float("inf") if now > 0 else None
    factor = now / then
    return factor if factor >= RECHECK_FACTOR or factor <= 1 / RECHECK_FACTOR else None


def recheck_reason(review: Review | None, occurrences: int, savings: float) -> str | None:
    """Why a decided pattern deserves another look (its numbers moved a lot since), or None."""
    if review is None:
        return None
    reasons = []
    if _moved(review.savings_then, savings) is not None:
        reasons.append(f"savings ${review.savings_then:,.2f}/month when {review.state}, now ${savings:,.2f}")
    if _moved(review.occurrences_then, occurrences) is not None:
        reasons.append(f"{review.occurrences_then} occurrences when {review.state}, now {occurrences}")
    return "; ".join(reasons) or None


def annotate(rows: list[dict], latest: dict[str, Review]) -> list[dict]:
    """Each pattern row with its review state, who decided and when, whether it needs another
    look, and its impact."""
    out = []
    for row in rows:
        review = latest.get(row["pattern_signature"])
        out.append({
            **row,
            "review_state": review.state if review else "pending",
            "reviewed_by": review.by if review else None,
            "reviewed_at": review.at if review else None,
            "recheck": recheck_reason(review, int(row.get("occurrence_count") or 0),
                                      float(row.get("potential_monthly_savings") or 0)),
            "impact": impact(row),
        })
    return out


def select(rows: list[dict], state: str | None, sort: str) -> list[dict]:
    """Rows in ``state`` (a review state, or "recheck": decided, numbers moved since), ranked
    by impact when asked; other orders are the store's."""
    if state == "recheck":
        rows = [r for r in rows if r["recheck"]]
    elif state:
        rows = [r for r in rows if r["review_state"] == state]
    if sort == "impact":
        rows = sorted(rows, key=lambda r: (-r["impact"], r["pattern_signature"]))
    return rows
