"""Automated patterns: the savings measured since a tool took over, and the regressions (an
agent doing the operation again after the day it was automated).

Realized savings of a pattern automated on day D (docs/reports.md, "Automated"):
- before: workflows started in [D - baseline days, D), where the history reaches;
- since: workflows started in [D, D + 30 days), up to now;
- rate = spend on the signature in the window / workflows started in it;
- realized a month = (rate before - rate since) x workflows started a month (the window since).
A window shorter than MIN_WINDOW_DAYS is "too early to tell": shown with its length, never
extrapolated silently. Every read is an index range over one pattern or one time window.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from ..core.review import Review
from ..core.stats import DAY_US
from .db import Db
from .reviews import latest_reviews, record_review
from .rows import now_text

WINDOW_DAYS = 30
MIN_WINDOW_DAYS = 7
MONTH_DAYS = 30


def day_us(day: str) -> int:
    """00:00 UTC of a YYYY-MM-DD day, in epoch microseconds."""
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 1_000_000


def _workflows(db: Db, since_us: int, until_us: int) -> int:
    return int(db.one("SELECT COUNT(*) FROM workflow_history WHERE revision > 0 AND seen_us >= ? AND seen_us < ?",
                      (since_us, until_us))[0])


def _spend(db: Db, pid: int, since_us: int, until_us: int) -> int:
    return int(db.one("SELECT COALESCE(SUM(cost_nanos), 0) FROM pattern_occurrences WHERE pattern_id = ? "
                      "AND seen_us >= ? AND seen_us < ?", (pid, since_us, until_us))[0])


def figures(db: Db, signature: str, review: Review, now_us: int, baseline_days: int = WINDOW_DAYS) -> dict:
    """The before/after figures of one automated pattern (the caller holds a snapshot)."""
    effective = day_us(review.effective_on)
    row = db.one("SELECT id FROM operation_patterns WHERE pattern_signature = ?", (signature,))
    pid = int(row[0]) if row else None
    oldest = db.one("SELECT MIN(seen_us) FROM workflow_history WHERE revision > 0 AND seen_us IS NOT NULL")[0]
    before_from = max(effective - baseline_days * DAY_US, int(oldest) if oldest is not None else effective)
    since_to = min(now_us, effective + WINDOW_DAYS * DAY_US)
    before_days = max(0, effective - before_from) / DAY_US
    since_days = max(0, since_to - effective) / DAY_US
    n_before, n_since = _workflows(db, before_from, effective), _workflows(db, effective, max(since_to, effective))
    spend_before = _spend(db, pid, before_from, effective) if pid else 0
    spend_since = _spend(db, pid, effective, max(since_to, effective)) if pid else 0
    rate_before = spend_before / n_before / 1e9 if n_before else None
    rate_since = spend_since / n_since / 1e9 if n_since else None
    per_month = n_since / since_days * MONTH_DAYS if since_days else None
    realized = None
    if rate_before is not None and rate_since is not None and per_month is not None:
        realized = (rate_before - rate_since) * per_month
    predicted = review.savings_then
    return {
        "automated_on": review.effective_on,
        "window_before_days": round(before_days, 2),
        "window_since_days": round(since_days, 2),
        "workflows_before": n_before,
        "workflows_since": n_since,
        "spend_per_workflow_before_usd": rate_before,
        "spend_per_workflow_since_usd": rate_since,
        "realized_savings_usd_month": realized,
        "predicted_savings_usd_month": predicted,
        "realized_over_predicted": realized / predicted if realized is not None and predicted else None,
        "too_early": before_days < MIN_WINDOW_DAYS or since_days < MIN_WINDOW_DAYS,
        # Workflows whose start is a file mtime (a guess): put before or after the day by it.
        "mtime_dated": int(db.one("SELECT COUNT(*) FROM workflow_history WHERE revision > 0 AND time_source = 'mtime' "
                                  "AND seen_us >= ? AND seen_us < ?", (before_from, max(since_to, effective)))[0]),
        "regressions": int(db.one("SELECT COUNT(*) FROM pattern_occurrences WHERE pattern_id = ? AND seen_us >= ?",
                                  (pid, effective))[0]) if pid else 0,
    }


def regressions(db: Db, pid: int, effective_us: int, limit: int | None = None) -> list[dict]:
    """The workflows started on or after the effective day in which the pattern occurs,
    newest first, with the agents and command lines that did it."""
    rows = db.all("SELECT o.workflow_id, o.seen_us, w.start_time, w.time_source, o.cost_nanos FROM pattern_occurrences o "
                  "JOIN workflow_history w ON w.workflow_id = o.workflow_id AND w.revision > 0 "
                  "WHERE o.pattern_id = ? AND o.seen_us >= ? ORDER BY o.seen_us DESC, o.workflow_id DESC"
                  + (" LIMIT ?" if limit else ""), (pid, effective_us, *((limit,) if limit else ())))
    out = []
    for wid, _seen, start, source, cost in rows:
        evidence = db.all("SELECT kind, item FROM pattern_evidence WHERE pattern_id = ? AND workflow_id = ? "
                          "ORDER BY kind, item", (pid, wid))
        out.append({"workflow_id": wid, "start_time": start, "time_source": source,
                    "attributed_usd": int(cost or 0) / 1e9,
                    "agents": [item for kind, item in evidence if kind == "agent"],
                    "command_lines": [item for kind, item in evidence if kind == "command" and item]})
    return out


def automated(db: Db) -> dict[str, tuple[int, int]]:
    """signature -> (pattern id, effective day in us) of every pattern whose latest review
    is `automated` (reviews are few: one query)."""
    rows = db.all("SELECT r.pattern_signature, r.effective_on, p.id FROM pattern_reviews r "
                  "JOIN operation_patterns p ON p.pattern_signature = r.pattern_signature WHERE r.id = "
                  "(SELECT MAX(id) FROM pattern_reviews x WHERE x.pattern_signature = r.pattern_signature) "
                  "AND r.decision = 'automated' AND r.effective_on IS NOT NULL")
    return {sig: (int(pid), day_us(on)) for sig, on, pid in rows}


def new_regressions(db: Db, workflow_id: str, pattern_ids, automations: dict[str, tuple[int, int]]) -> list[dict]:
    """The regressions of one workflow not warned about before, now recorded as warned (so a
    re-read or a restart does not warn again): each with its signature, agents and lines."""
    present = set(pattern_ids)
    wanted = {pid: (sig, on) for sig, (pid, on) in automations.items() if pid in present}
    found = []
    for pid, (sig, on) in sorted(wanted.items()):
        row = db.one("SELECT seen_us FROM pattern_occurrences WHERE pattern_id = ? AND workflow_id = ?",
                     (pid, workflow_id))
        if row is None or row[0] is None or int(row[0]) < on:
            continue

        def record(pid=pid):
            return db.one("INSERT INTO regression_warnings (pattern_id, workflow_id, warned_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (pattern_id, workflow_id) DO NOTHING RETURNING pattern_id",
                          (pid, workflow_id, now_text()))

        if db.transaction(record, what=f"regression of {sig} in {workflow_id}") is None:
            continue  # warned before
        evidence = db.all("SELECT kind, item FROM pattern_evidence WHERE pattern_id = ? AND workflow_id = ? "
                          "ORDER BY kind, item", (pid, workflow_id))
        found.append({"signature": sig, "workflow_id": workflow_id,
                      "agents": [i for k, i in evidence if k == "agent"],
                      "command_lines": [i for k, i in evidence if k == "command" and i]})
    return found


def record_declared(db: Db, declared) -> list[str]:
    """config.yaml's `automated:` entries, recorded in the review trail (by "config.yaml")
    where the trail does not say so already; the signatures recorded now."""
    latest = latest_reviews(db)
    done = []
    for sig, on, note in declared:
        review = latest.get(sig)
        if review is not None and review.state == "automated" and review.effective_on == on:
            continue
        record_review(db, sig, "automated", note, "config.yaml", effective_on=on, force=True)
        done.append(sig)
    return done


def regression_counts(db: Db) -> dict[str, int]:
    """Regressions warned about, by signature (the metrics' counter: it survives restarts)."""
    return {sig: int(n) for sig, n in db.all(
        "SELECT p.pattern_signature, COUNT(*) FROM regression_warnings g JOIN operation_patterns p ON p.id = g.pattern_id "
        "GROUP BY p.pattern_signature")}
