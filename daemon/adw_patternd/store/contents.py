"""What each table says, by key: the reads `verify --files` compares between the live
database and the one recomputed from the files (check_files.py)."""

from __future__ import annotations

from .db import Db
from .rows import DERIVED_COLUMNS, LINK_COLUMNS, SUM_COLUMNS, WORKFLOW_COLUMNS

# Each table's query, how many leading columns are its key, and the names of the others.
# Left out: bookkeeping (revisions, times of writing, ids) and where a file was found (inode,
# device, size, mtime), which are not statistics.
TABLES = {
    "workflow_history": ("SELECT workflow_id, " + ", ".join(WORKFLOW_COLUMNS)
                         + " FROM workflow_history WHERE revision > 0", 1, WORKFLOW_COLUMNS),
    "pattern_occurrences": ("SELECT p.pattern_signature, o.workflow_id, o.layer, o.seen_us, o.matched_characteristics, "
                            + ", ".join(f"o.{c}" for c in LINK_COLUMNS)
                            + " FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
                              "JOIN workflow_history w ON w.workflow_id = o.workflow_id AND w.revision > 0", 2,
                            ("layer", "seen_us", "matched_characteristics") + LINK_COLUMNS),
    "agent_outputs": ("SELECT workflow_id, agent_name, offset_bytes, tail, results, tokens, cost_nanos, duration_ms, "
                      "error_results, last_error, model, overwritten_runs, state_json FROM agent_outputs", 2,
                      ("offset_bytes", "tail", "results", "tokens", "cost_nanos", "duration_ms", "error_results",
                       "last_error", "model", "overwritten_runs", "state_json")),
    "pattern_evidence": ("SELECT p.pattern_signature, e.workflow_id, e.kind, e.item, e.n FROM pattern_evidence e "
                         "JOIN operation_patterns p ON p.id = e.pattern_id", 4, ("n",)),
    "pattern_mentions": ("SELECT p.pattern_signature, m.workflow_id FROM pattern_mentions m "
                         "JOIN operation_patterns p ON p.id = m.pattern_id", 2, ()),
    "command_waits": ("SELECT signature, workflow_id, calls, total_ms, waits_ms FROM command_waits", 2,
                      ("calls", "total_ms", "waits_ms")),
    "command_unmatched": ("SELECT head, workflow_id, read_only, calls, cost_nanos, tokens FROM command_unmatched", 2,
                          ("read_only", "calls", "cost_nanos", "tokens")),
    "session_claims": ("SELECT session_id, workflow_id FROM session_claims", 2, ()),
    "counted_events": ("SELECT event_key, workflow_id FROM counted_events", 1, ("workflow_id",)),
    "counted_totals": ("SELECT session_id, total, workflow_id FROM counted_totals", 2, ("workflow_id",)),
    "operation_patterns": ("SELECT pattern_signature, " + ", ".join(SUM_COLUMNS + DERIVED_COLUMNS)
                           + " FROM operation_patterns WHERE occurrence_count > 0", 1, SUM_COLUMNS + DERIVED_COLUMNS),
}


def _value(v):
    if isinstance(v, float):
        return round(v, 6)
    if v is None or isinstance(v, (int, str)):
        return v
    return float(v) if hasattr(v, "as_integer_ratio") else v  # PostgreSQL numerics


def dump(db: Db) -> dict[str, dict[tuple, tuple]]:
    """Every table's content by key, read on one snapshot."""
    def work():
        out = {}
        for table, (query, key_len, _cols) in TABLES.items():
            out[table] = {tuple(r[:key_len]): tuple(_value(v) for v in r[key_len:]) for r in db.all(query)}
        return out

    return db.snapshot(work)


def overwritten_states(db: Db) -> list[tuple[str, str, str | None]]:
    """(workflow id, transcript, state JSON) of each transcript that holds runs a later run
    of its agent overwrote, read on one snapshot."""
    return db.snapshot(lambda: db.all("SELECT workflow_id, agent_name, state_json FROM agent_outputs "
                                      "WHERE overwritten_runs > 0"))


def stored_workflows(db: Db) -> int:
    return int(db.one("SELECT COUNT(*) FROM workflow_history WHERE revision > 0")[0])


def session_record_states(db: Db) -> dict[str, list[tuple[str, str]]]:
    """Workflow id -> (file, state JSON) of each of its files, for each session of its own
    (not joined to an ADW workflow) that holds Claude Code's own record (a cost-state)."""
    rows = db.snapshot(lambda: db.all(
        "SELECT workflow_id, agent_name, state_json FROM agent_outputs WHERE workflow_id IN "
        "(SELECT workflow_id FROM agent_outputs WHERE state_json LIKE ? AND agent_name NOT LIKE ?) "
        "AND agent_name NOT LIKE ? ORDER BY workflow_id, agent_name", ('%"record":[[%', "@%", "@%")))
    found: dict[str, list[tuple[str, str]]] = {}
    for workflow_id, name, state in rows:
        found.setdefault(workflow_id, []).append((name, state))
    return found
