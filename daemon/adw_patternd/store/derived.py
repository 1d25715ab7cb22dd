"""A pattern's derived statistics (averages, savings, confidence, first and last seen) from
its running sums and its links' seen times: written by the ledger after each change to the
sums, and recomputed by verify."""

from __future__ import annotations

from ..model import PatternSums
from ..stats import derive
from .db import Db
from .rows import DERIVED_COLUMNS, us_to_iso


def _seen(db: Db, pid: int) -> tuple[int | None, int | None, str | None]:
    """First and last seen times and the typical characteristics (of the earliest workflow):
    index lookups on (pattern_id, seen_us, workflow_id), whatever the pattern's size."""
    first = db.one("SELECT seen_us, matched_characteristics FROM pattern_occurrences WHERE pattern_id = ? "
                   "AND seen_us IS NOT NULL ORDER BY seen_us, workflow_id LIMIT 1", (pid,))
    if first is None:
        row = db.one("SELECT matched_characteristics FROM pattern_occurrences WHERE pattern_id = ? "
                     "ORDER BY workflow_id LIMIT 1", (pid,))
        return None, None, row[0] if row else None
    last = db.one("SELECT seen_us FROM pattern_occurrences WHERE pattern_id = ? AND seen_us IS NOT NULL "
                  "ORDER BY seen_us DESC LIMIT 1", (pid,))
    return int(first[0]), int(last[0]), first[1]


def derived_values(db: Db, pid: int, sums: PatternSums, tool_cost_ratio: float) -> tuple:
    """The values of DERIVED_COLUMNS for pattern ``pid`` with these sums."""
    first_us, last_us, typical = _seen(db, pid)
    s = derive(sums, first_us, last_us, tool_cost_ratio)
    return (s.avg_tokens_with_llm, s.avg_cost_with_llm, s.avg_tokens_with_tool, s.avg_cost_with_tool,
            s.potential_monthly_savings, s.confidence_score, us_to_iso(first_us), us_to_iso(last_us),
            first_us, last_us, typical)


def write_derived(db: Db, pid: int, sums: PatternSums, tool_cost_ratio: float) -> None:
    values = derived_values(db, pid, sums, tool_cost_ratio)
    sets = ", ".join(f"{c} = ?" for c in DERIVED_COLUMNS)
    if values[-1] is None:  # no workflow left: keep the pattern's last characteristics
        sets = sets.replace(", typical_input_pattern = ?", "")
        values = values[:-1]
    db.execute(f"UPDATE operation_patterns SET {sets} WHERE id = ?", (*values, pid))
