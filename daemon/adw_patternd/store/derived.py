"""A pattern's derived statistics (averages, savings, confidence, first and last seen) from
its running sums and its links' seen times: written by the ledger after each change to the
sums, and recomputed by verify."""

from __future__ import annotations

from ..core.model import PatternSums
from ..core.stats import derive
from .db import Db
from .rows import DERIVED_COLUMNS, us_to_iso


_FIRST = ("SELECT seen_us, matched_characteristics FROM pattern_occurrences WHERE pattern_id = ? "
          "AND seen_us IS NOT NULL ORDER BY seen_us, workflow_id LIMIT 1")
_LAST = ("SELECT seen_us FROM pattern_occurrences WHERE pattern_id = ? AND seen_us IS NOT NULL "
         "ORDER BY seen_us DESC LIMIT 1")
_ANY = "SELECT matched_characteristics FROM pattern_occurrences WHERE pattern_id = ? ORDER BY workflow_id LIMIT 1"


def _seen(db: Db, pids: list[int]) -> dict[int, tuple[int | None, int | None, str | None]]:
    """Each pattern's first and last seen times and typical characteristics (of the earliest
    workflow): index lookups on (pattern_id, seen_us, workflow_id), whatever the pattern's
    size; asked for all the patterns at once (Db.one_each: two waits, not three a pattern)."""
    firsts = dict(zip(pids, db.one_each([(_FIRST, (pid,)) for pid in pids])))
    timed = [pid for pid in pids if firsts[pid] is not None]
    untimed = [pid for pid in pids if firsts[pid] is None]
    answers = db.one_each([(_LAST, (pid,)) for pid in timed] + [(_ANY, (pid,)) for pid in untimed])
    seen = {}
    for pid, row in zip(timed + untimed, answers):
        first = firsts[pid]
        seen[pid] = (int(first[0]), int(row[0]), first[1]) if first else (None, None, row[0] if row else None)
    return seen


def derived_values_many(db: Db, sums: dict[int, PatternSums], tool_cost_ratio: float) -> dict[int, tuple]:
    """The values of DERIVED_COLUMNS for each pattern with its sums."""
    values = {}
    for pid, (first_us, last_us, typical) in _seen(db, list(sums)).items():
        s = derive(sums[pid], first_us, last_us, tool_cost_ratio)
        values[pid] = (s.avg_tokens_with_llm, s.avg_cost_with_llm, s.avg_tokens_with_tool, s.avg_cost_with_tool,
                       s.potential_monthly_savings, s.confidence_score, us_to_iso(first_us), us_to_iso(last_us),
                       first_us, last_us, typical)
    return values


def derived_values(db: Db, pid: int, sums: PatternSums, tool_cost_ratio: float) -> tuple:
    """The values of DERIVED_COLUMNS for pattern ``pid`` with these sums."""
    return derived_values_many(db, {pid: sums}, tool_cost_ratio)[pid]


def write_derived_many(db: Db, sums: dict[int, PatternSums], tool_cost_ratio: float) -> None:
    for pid, values in derived_values_many(db, sums, tool_cost_ratio).items():
        sets = ", ".join(f"{c} = ?" for c in DERIVED_COLUMNS)
        if values[-1] is None:  # no workflow left: keep the pattern's last characteristics
            sets = sets.replace(", typical_input_pattern = ?", "")
            values = values[:-1]
        db.execute(f"UPDATE operation_patterns SET {sets} WHERE id = ?", (*values, pid))


def write_derived(db: Db, pid: int, sums: PatternSums, tool_cost_ratio: float) -> None:
    write_derived_many(db, {pid: sums}, tool_cost_ratio)
