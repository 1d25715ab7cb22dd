"""What stands behind a pattern.

Reads for `show` and the HTML report (the workflows, agents and command lines behind a
pattern, its weeks, the totals, with its review trail from reviews.py). Every read here is
an index range over one pattern or one time window, so a report costs the same with a long
history.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..core.commands import printable
from ..core.recipes import recipe_for
from ..core.review import recheck_reason
from ..core.stats import DAY_US, confidence_parts
from . import automation
from .db import Db
from .queries import HOST_IS
from .reviews import UnknownPattern, review_history
from .rows import SUM_COLUMNS, sums_of
from .waits import waits_of

WEEK_US = 7 * DAY_US
WEEKS = 12
HEADLINE_CHARS = 100


def week_start_us(us: int) -> int:
    """Monday 00:00 UTC of the week holding ``us``."""
    day = datetime.fromtimestamp(us / 1e6, tz=timezone.utc).date()
    monday = datetime.combine(day - timedelta(days=day.weekday()), datetime.min.time(), tzinfo=timezone.utc)
    return int(monday.timestamp()) * 1_000_000


def headline(request: str | None) -> str | None:
    """The first line of a request, cut for a table."""
    if not request:
        return None
    line = printable(" ".join(request.strip().split("\n", 1)[0].split()))
    return line if len(line) <= HEADLINE_CHARS else line[: HEADLINE_CHARS - 1] + "…"


def weeks_end(db: Db, until_us: int | None, now_us: int, signature: str | None = None) -> tuple[int, str]:
    """The instant whose week is the last of the WEEKS shown, and what it is: just before
    --until; else, for one pattern, its newest workflow, and for all, the newest workflow
    with spend (a $0 workflow dated by its files' times, today, says nothing of spend); else
    the newest workflow stored; else today. The data may end long before today."""
    if until_us is not None:
        return until_us - 1, "--until"
    if signature is not None:
        row = db.one("SELECT MAX(o.seen_us) FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
                     "WHERE p.pattern_signature = ?", (signature,))
        if row and row[0] is not None:
            return int(row[0]), "the pattern's newest workflow"
    else:
        row = db.one("SELECT MAX(seen_us) FROM workflow_history WHERE revision > 0 AND cost_nanos > 0")
        if row and row[0] is not None:
            return int(row[0]), "the newest workflow with spend"
    row = db.one("SELECT MAX(seen_us) FROM workflow_history WHERE revision > 0")
    if row and row[0] is not None:
        return int(row[0]), "the newest workflow stored"
    return now_us, "today (nothing stored)"


def weeks(db: Db, end_us: int, pattern_id: int | None = None, host: str | None = None) -> list[dict]:
    """The WEEKS weeks (Monday to Monday, UTC) up to the one holding ``end_us``, oldest
    first: workflows and spend, of one pattern (its occurrences and attributed spend) or of
    everything (spend seen, and the part of it patterns account for), or of one ``host``'s."""
    first = week_start_us(end_us) - (WEEKS - 1) * WEEK_US
    end = week_start_us(end_us) + WEEK_US
    if pattern_id is None:
        mine = "" if host is None else f" AND {HOST_IS}"
        rows = db.all("SELECT (seen_us - ?) / ?, COUNT(*), SUM(cost_nanos), SUM(attributed_nanos) FROM workflow_history "
                      f"WHERE revision > 0 AND seen_us >= ? AND seen_us < ?{mine} GROUP BY 1",
                      (first, WEEK_US, first, end, *(() if host is None else (host,))))
    else:
        rows = db.all("SELECT (seen_us - ?) / ?, COUNT(*), SUM(cost_nanos), SUM(cost_nanos) FROM pattern_occurrences "
                      "WHERE pattern_id = ? AND seen_us >= ? AND seen_us < ? GROUP BY 1", (first, WEEK_US, pattern_id, first, end))
    found = {int(r[0]): r[1:] for r in rows}
    out = []
    for i in range(WEEKS):
        n, spend, attributed = found.get(i, (0, 0, 0))
        start = datetime.fromtimestamp((first + i * WEEK_US) / 1e6, tz=timezone.utc).date().isoformat()
        out.append({"week": start, "workflows": int(n or 0), "spend_usd": int(spend or 0) / 1e9,
                    "attributed_usd": int(attributed or 0) / 1e9})
    return out


def show(db: Db, signature: str, *, limit: int = 20, now_us: int, until_us: int | None = None,
         recipes: dict | None = None) -> dict:
    """Everything `show` prints about one pattern, read on one snapshot."""
    return db.snapshot(lambda: evidence_of(db, signature, limit=limit,
                                           weeks_to=weeks_end(db, until_us, now_us, signature), recipes=recipes,
                                           now_us=now_us))


def evidence_of(db: Db, signature: str, *, limit: int, weeks_to: tuple[int, str], recipes: dict | None = None,
                now_us: int | None = None) -> dict:
    """`show`'s content; the caller holds a snapshot (or does not mind a moving database).
    ``weeks_to``: where its weeks end, from weeks_end(). ``recipes``: config.yaml's."""
    pattern, sums, workflows, evidence, by_week, history, mentions, wall_time, automated = _read(
        db, signature, limit, weeks_to, now_us)
    frequency, consistency, success = confidence_parts(sums) if sums.count else (0, 0, 0)
    latest = history[-1] if history else None
    savings = float(pattern["potential_monthly_savings"] or 0)
    return {
        "pattern_signature": signature,
        "pattern_type": pattern["pattern_type"],
        "statistics": {
            "occurrence_count": sums.count, "runs_or_calls": sums.units,
            "attributed_usd": sums.cost_nanos / 1e9, "estimated_usd": sums.estimated_nanos / 1e9,
            "avg_tokens_with_llm": pattern["avg_tokens_with_llm"], "avg_cost_with_llm": pattern["avg_cost_with_llm"],
            "avg_tokens_with_tool": pattern["avg_tokens_with_tool"], "avg_cost_with_tool": pattern["avg_cost_with_tool"],
            "potential_monthly_savings": savings, "first_seen": pattern["first_seen"], "last_seen": pattern["last_seen"],
        },
        "confidence": {"score": float(pattern["confidence_score"] or 0), "frequency": frequency,
                       "consistency": consistency, "success": success,
                       "of": {"frequency": 40, "consistency": 30, "success": 30}},
        "workflows": workflows,
        "workflows_shown": len(workflows),
        "agents": evidence["agent"],
        "command_lines": evidence["command"],
        "recipe": recipe_for(signature, recipes),
        "automation": automated[0] if automated else None,
        "regressions": automated[1] if automated else [],
        "wall_time": wall_time,
        "mentions": mentions[0],
        "mentions_count": mentions[1],
        "weeks": by_week,
        "weeks_end": by_week[-1]["week"],
        "weeks_end_from": weeks_to[1],
        "review": {
            "state": latest.state if latest else "pending",
            "recheck": recheck_reason(latest, sums.count, savings),
            "history": [r.as_dict() for r in history],
        },
    }


def _read(db: Db, signature: str, limit: int, weeks_to: tuple[int, str], now_us: int | None) -> tuple:
    """What evidence_of shows, as read from the tables."""
    cur = db.execute("SELECT * FROM operation_patterns WHERE pattern_signature = ?", (signature,))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    if row is None:
        raise UnknownPattern(signature)
    pattern = dict(zip(names, row, strict=True))
    pid = int(pattern["id"])
    sums = sums_of(tuple(pattern[c] for c in SUM_COLUMNS))
    evidence = {"agent": [], "command": []}
    found = db.all("SELECT kind, item, SUM(n), COUNT(*) FROM pattern_evidence WHERE pattern_id = ? "
                   "GROUP BY kind, item", (pid,))
    # Ordered here, not in SQL: the stores' text collations differ, the order must not.
    for kind, item, n, wfs in sorted(found, key=lambda r: (-int(r[2]), r[1])):
        evidence[kind].append({"item": item or None, "count": int(n), "workflows": int(wfs)})
    history = review_history(db, signature)
    automated = None
    if history and history[-1].state == "automated" and history[-1].effective_on and now_us is not None:
        automated = (automation.figures(db, signature, history[-1], now_us),
                     automation.regressions(db, pid, automation.day_us(history[-1].effective_on), limit))
    return (pattern, sums, _workflows_of(db, pid, limit), evidence, weeks(db, weeks_to[0], pid), history,
            mentions_of(db, pid, limit), waits_of(db, signature), automated)


def _workflows_of(db: Db, pid: int, limit: int) -> list[dict]:
    """The newest workflows in which the pattern occurs."""
    query = ("SELECT w.workflow_id, w.adw_id, w.root_name, w.start_time, w.time_source, w.request, "
             "w.request_source, w.status, o.layer, o.cost_nanos, o.estimated_nanos, o.units FROM pattern_occurrences o "
             "JOIN workflow_history w ON w.workflow_id = o.workflow_id AND w.revision > 0 WHERE o.pattern_id = ? AND ")
    # Newest first, then any without a time: two index ranges, in the same order in both stores.
    rows = db.all(query + "o.seen_us IS NOT NULL ORDER BY o.seen_us DESC, o.workflow_id DESC LIMIT ?", (pid, limit))
    if len(rows) < limit:
        rows += db.all(query + "o.seen_us IS NULL ORDER BY o.workflow_id DESC LIMIT ?", (pid, limit - len(rows)))
    return [{
        "workflow_id": r[0], "adw_id": r[1], "root": r[2], "start_time": r[3], "time_source": r[4],
        "request": headline(r[5]), "request_source": r[6], "status": r[7], "layer": r[8],
        "attributed_usd": int(r[9] or 0) / 1e9, "estimated_usd": int(r[10] or 0) / 1e9, "units": int(r[11] or 0),
    } for r in rows]


def mentions_of(db: Db, pid: int, limit: int) -> tuple[list[dict], int]:
    """The newest workflows that name the pattern without doing it (request, error or
    template; no agent or command did it), and how many there are in all."""
    query = ("SELECT w.workflow_id, w.start_time, w.time_source, w.request, w.request_source FROM pattern_mentions m "
             "JOIN workflow_history w ON w.workflow_id = m.workflow_id AND w.revision > 0 WHERE m.pattern_id = ? AND ")
    rows = db.all(query + "w.seen_us IS NOT NULL ORDER BY w.seen_us DESC, w.workflow_id DESC LIMIT ?", (pid, limit))
    if len(rows) < limit:
        rows += db.all(query + "w.seen_us IS NULL ORDER BY w.workflow_id DESC LIMIT ?", (pid, limit - len(rows)))
    count = db.one("SELECT COUNT(*) FROM pattern_mentions m JOIN workflow_history w ON w.workflow_id = m.workflow_id "
                   "AND w.revision > 0 WHERE m.pattern_id = ?", (pid,))[0]
    return [{"workflow_id": r[0], "start_time": r[1], "time_source": r[2], "request": headline(r[3]),
             "request_source": r[4]} for r in rows], int(count)


def totals(db: Db, host: str | None = None) -> dict:
    """Spend seen, the part patterns account for (each dollar once) and the part estimated;
    of every workflow, or of those ``host`` wrote."""
    row = db.one("SELECT COUNT(*), COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(attributed_nanos), 0), "
                 "COALESCE(SUM(estimated_nanos), 0) FROM workflow_history "
                 "WHERE revision > 0" + ("" if host is None else f" AND {HOST_IS}"), () if host is None else (host,))
    spend, attributed = int(row[1]), int(row[2])
    return {"workflows": int(row[0]), "spend_usd": spend / 1e9, "attributed_usd": attributed / 1e9,
            "attributed_share": attributed / spend if spend else 0.0, "estimated_usd": int(row[3]) / 1e9}
