"""`verify`: the stored statistics against a recomputation from the stored links, as a list
of differences (empty means healthy). Each check is one function that reports what differs
and, asked to repair, rewrites it; `verify(repair=True)` runs them in one transaction.

Also here: re-deriving every statistic when a migration or the settings they depend on
(prices, rules, tool_cost_ratio) changed, the explicit step of opening a ledger.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ..core.model import PatternSums
from ..core.stored import WHOLE_AGAIN
from .db import Db
from .derived import derived_values, write_derived
from .rows import DERIVED_COLUMNS, LINK_COLUMNS, SUM_COLUMNS, contribution_of, same_value

log = logging.getLogger("adw_patternd.store")

class Ledger(Protocol):
    """What verify needs of a ledger (store/ledger.py opens one with verify's help, so verify
    does not import it): its database, and the tool cost ratio it derives statistics with."""

    db: Db
    tool_cost_ratio: float


# What a whole-workflow link (layers 1-3) carries: exactly its workflow's totals.
WHOLE_WORKFLOW = ("w.total_tokens", "w.cost_nanos", "w.duration_seconds", "w.error_count", "w.retry_count", "1",
                  "w.estimated_nanos")


def recompute(ledger: Ledger) -> dict[int, tuple[PatternSums, tuple]]:
    """Every pattern's sums and derived values, recomputed from the links of stored workflows."""
    db = ledger.db
    sums: dict[int, PatternSums] = {int(r[0]): PatternSums() for r in db.all("SELECT id FROM operation_patterns")}
    for r in db.all(f"SELECT po.pattern_id, {', '.join('po.' + c for c in LINK_COLUMNS)} "
                    "FROM pattern_occurrences po JOIN workflow_history w ON w.workflow_id = po.workflow_id "
                    "WHERE w.revision > 0"):
        pid = int(r[0])
        sums[pid] = sums.get(pid, PatternSums()).plus(contribution_of(r[1:]))
    return {pid: (s, derived_values(db, pid, s, ledger.tool_cost_ratio)) for pid, s in sums.items()}


def _orphans(db: Db, repair: bool, table: str, owner: str, what: str) -> list[str]:
    where = f"WHERE NOT EXISTS ({owner})"
    n = db.one(f"SELECT COUNT(*) FROM {table} {where}")[0]
    if n and repair:
        db.execute(f"DELETE FROM {table} {where}")
    return [f"{n} {table} rows {what}"] if n else []


def orphan_links(ledger: Ledger, repair: bool) -> list[str]:
    return _orphans(ledger.db, repair, "pattern_occurrences", "SELECT 1 FROM workflow_history w WHERE "
                    "w.workflow_id = pattern_occurrences.workflow_id AND w.revision > 0", "link to no stored workflow")


def orphan_evidence(ledger: Ledger, repair: bool) -> list[str]:
    return _orphans(ledger.db, repair, "pattern_evidence", "SELECT 1 FROM pattern_occurrences po WHERE "
                    "po.pattern_id = pattern_evidence.pattern_id AND po.workflow_id = pattern_evidence.workflow_id",
                    "belong to no pattern_occurrences row")


def orphan_mentions(ledger: Ledger, repair: bool) -> list[str]:
    return _orphans(ledger.db, repair, "pattern_mentions", "SELECT 1 FROM workflow_history w WHERE "
                    "w.workflow_id = pattern_mentions.workflow_id AND w.revision > 0", "belong to no stored workflow")


def seen_times(ledger: Ledger, repair: bool) -> list[str]:
    """A link's seen time is its workflow's (the windows and weeks read it from the link)."""
    db = ledger.db
    distinct = "IS DISTINCT FROM" if db.dialect == "postgres" else "IS NOT"
    n = db.one("SELECT COUNT(*) FROM pattern_occurrences po JOIN workflow_history w ON w.workflow_id = po.workflow_id "
               f"WHERE po.seen_us {distinct} w.seen_us")[0]
    if n and repair:
        db.execute("UPDATE pattern_occurrences SET seen_us = (SELECT w.seen_us FROM workflow_history w "
                   "WHERE w.workflow_id = pattern_occurrences.workflow_id)")
    return [f"{n} pattern_occurrences rows disagree with their workflow's seen time"] if n else []


def whole_workflow_links(ledger: Ledger, repair: bool) -> list[str]:
    db = ledger.db
    pairs = list(zip(LINK_COLUMNS, WHOLE_WORKFLOW, strict=True))
    differs = " OR ".join(f"COALESCE(po.{c}, 0) <> COALESCE({w}, 0)" for c, w in pairs)
    n = db.one("SELECT COUNT(*) FROM pattern_occurrences po JOIN workflow_history w ON w.workflow_id = po.workflow_id "
               f"WHERE po.layer = 'workflow' AND ({differs})")[0]
    if n and repair:
        sets = ", ".join(f"{c} = (SELECT COALESCE({w}, 0) FROM workflow_history w "
                         "WHERE w.workflow_id = pattern_occurrences.workflow_id)" for c, w in pairs)
        db.execute(f"UPDATE pattern_occurrences SET {sets} WHERE layer = 'workflow'")
    return [f"{n} whole-workflow pattern_occurrences rows disagree with their workflow's totals"] if n else []


def pattern_statistics(ledger: Ledger, repair: bool) -> list[str]:
    """Each pattern's running sums and derived statistics against their recomputation."""
    db = ledger.db
    names = SUM_COLUMNS + DERIVED_COLUMNS
    stored = {int(r[0]): r[1:] for r in db.all(
        f"SELECT id, pattern_signature, {', '.join(names)} FROM operation_patterns")}
    problems = []
    for pid, (sums, derived) in sorted(recompute(ledger).items()):
        signature, have = stored[pid][0], stored[pid][1:]
        want = (*sums.row(), *derived)
        bad = [(name, h, w) for name, h, w in zip(names, have, want, strict=True)
               if not (name == "typical_input_pattern" and w is None) and not same_value(h, w)]
        problems += [f"{signature}: {name} stored {h!r}, recomputed {w!r}" for name, h, w in bad]
        if bad and repair:
            db.execute(f"UPDATE operation_patterns SET {', '.join(c + ' = ?' for c in SUM_COLUMNS)} WHERE id = ?",
                       (*sums.row(), pid))
            write_derived(db, pid, sums, ledger.tool_cost_ratio)
    return problems


# Links first: the pattern statistics are recomputed from what the checks before left.
CHECKS = (orphan_links, orphan_evidence, orphan_mentions, seen_times, whole_workflow_links, pattern_statistics)


def verify(ledger: Ledger, repair: bool = False) -> list[str]:
    """Differences between the stored statistics and a recomputation; empty means healthy."""
    def work():
        return [problem for check in CHECKS for problem in check(ledger, repair)]

    if repair:
        return ledger.db.transaction(work, what="verify --repair")
    return work()


def _forget_read_positions(db: Db) -> None:
    """Every file is read again from its start. An agent transcript's or a session file's
    read is kept with no file identity, which makes the next read restart it: the runs only
    the ledger knows (seen, then overwritten by a retry) stay counted, and a session file
    that is gone keeps what was read of it. A rollout's or a pure reader's session's read goes:
    it is read again whole."""
    db.execute("UPDATE agent_outputs SET device = 0, inode = 0")
    db.executemany("DELETE FROM agent_outputs WHERE agent_name = ?", [(name,) for name in WHOLE_AGAIN])


def rederive_if_needed(ledger: Ledger, derivation_key: str | None) -> None:
    """Recompute after a migration asked for it; read every workflow again when the prices,
    rules or tool_cost_ratio changed since the last run (``derivation_key`` None: never)."""
    db = ledger.db
    flag = db.one("SELECT value FROM meta WHERE key = 'recompute_all'")
    if flag and flag[0] == "1":
        fixed = verify(ledger, repair=True)
        db.transaction(lambda: db.execute("UPDATE meta SET value = '0' WHERE key = 'recompute_all'"))
        if fixed:
            log.info("recomputed pattern statistics after migration (%d values corrected)", len(fixed))
    if derivation_key is None:
        return
    row = db.one("SELECT value FROM meta WHERE key = 'derivation'")
    if row and row[0] == derivation_key:
        return

    def work():
        if row is not None:
            # Prices or rules changed: every workflow must be read again from its files' start.
            # Its stored reads are kept with no file identity (the next read restarts them):
            # the runs only the ledger knows (seen, then overwritten) stay counted, and a
            # session file that is gone keeps what was read of it.
            db.execute("UPDATE workflow_history SET fingerprint = NULL")
            _forget_read_positions(db)
        db.execute("INSERT INTO meta (key, value) VALUES ('derivation', ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (derivation_key,))

    db.transaction(work, what="derivation settings")
    if row is not None:
        log.info("detection rules, prices or tool_cost_ratio changed: every workflow will be read again")
        verify(ledger, repair=True)
