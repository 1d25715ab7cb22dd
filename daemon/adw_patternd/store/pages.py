"""The live page's own reads (`adw-patternd serve`): the workflows list, one workflow, the
spend of each week by root, and the revision a browser polls. Read-only, like queries.py;
the pages' other figures come from the reads `patterns`, `show`, `status` and the report
use, so that both say the same."""

from __future__ import annotations

import json

from .db import Db
from .evidence import WEEK_US, WEEKS, headline, week_start_us
from .queries import _live

# The workflows list's sortable columns, and the SQL each sorts by.
WORKFLOW_SORTS = {"start": "seen_us", "spend": "cost_nanos", "workflow": "workflow_id", "root": "root_name",
                  "host": "host", "status": "status", "updated": "updated_at"}
_RUN_FIELDS = ("session_id", "tokens", "cost_nanos", "duration_ms", "is_error", "error_text", "model")


def revision(db: Db) -> str:
    """A value that changes whenever another connection commits: SQLite's data_version of
    this connection; PostgreSQL's current snapshot (the transactions in flight and the next
    id: a commit anywhere on the server changes it, so at worst a page reloads for nothing).
    One statement, answered from memory either way."""
    if db.dialect == "sqlite":
        return f"s{db.one('PRAGMA data_version')[0]}"
    return str(db.one("SELECT pg_current_snapshot()::text")[0])


def schema_current(db: Db) -> bool:
    """Whether the database has every migration this version knows (checked without a write)."""
    from .schema import _current

    return _current(db)


def workflows(db: Db, *, roots: tuple[tuple[str, ...], bool] | None, host: str | None, status: str | None,
              sort: str, descending: bool, limit: int, offset: int) -> tuple[list[dict], int]:
    """A page of stored workflows (``roots``: as queries.window takes them) and how many match."""
    live, params = _live(host)
    where = [live]
    if roots is not None:
        names, keep = roots
        if names:
            where.append(f"root_name {'' if keep else 'NOT '}IN ({', '.join('?' for _ in names)})")
            params += tuple(names)
        elif keep:
            where.append("1 = 0")
    if status is not None:
        where.append("status = ?")
        params += (status,)
    cond = " AND ".join(where)
    direction = "DESC" if descending else "ASC"
    # NULLs last both ways, and the workflow id breaks ties, in both stores alike.
    order = f"{WORKFLOW_SORTS[sort]} IS NULL, {WORKFLOW_SORTS[sort]} {direction}, workflow_id {direction}"
    rows = db.all("SELECT workflow_id, root_name, host, start_time, status, cost_nanos, time_source, request, "
                  f"estimated_nanos, attributed_nanos FROM workflow_history WHERE {cond} ORDER BY {order} "
                  "LIMIT ? OFFSET ?", (*params, limit, offset))
    total = int(db.one(f"SELECT COUNT(*) FROM workflow_history WHERE {cond}", params)[0])
    return [{"workflow_id": r[0], "root": r[1], "host": r[2], "start_time": r[3], "status": r[4],
             "spend_usd": int(r[5] or 0) / 1e9, "time_source": r[6], "request": headline(r[7]),
             "estimated_usd": int(r[8] or 0) / 1e9, "attributed_usd": int(r[9] or 0) / 1e9} for r in rows], total


def workflow(db: Db, workflow_id: str) -> dict | None:
    """One stored workflow: its row, the patterns it counts toward (with what each got of
    its cost), the command lines behind each, the waits on its commands, and its agents'
    runs. None when there is no such workflow."""
    cur = db.execute("SELECT * FROM workflow_history WHERE workflow_id = ? AND revision > 0", (workflow_id,))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    if row is None:
        return None
    w = dict(zip(names, row, strict=True))
    links = [{"pattern_signature": r[0], "layer": r[1], "attributed_usd": int(r[2] or 0) / 1e9,
              "estimated_usd": int(r[3] or 0) / 1e9, "units": int(r[4] or 0)}
             for r in db.all("SELECT p.pattern_signature, o.layer, o.cost_nanos, o.estimated_nanos, o.units "
                             "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
                             "WHERE o.workflow_id = ?", (workflow_id,))]
    links.sort(key=lambda link: (-link["attributed_usd"], link["pattern_signature"]))
    evidence = sorted(({"pattern_signature": r[0], "kind": r[1], "item": r[2] or None, "count": int(r[3])}
                       for r in db.all("SELECT p.pattern_signature, e.kind, e.item, e.n FROM pattern_evidence e "
                                       "JOIN operation_patterns p ON p.id = e.pattern_id WHERE e.workflow_id = ?",
                                       (workflow_id,))),
                      key=lambda e: (e["pattern_signature"], e["kind"], -e["count"], e["item"] or ""))
    waits = [{"signature": r[0], "calls": int(r[1]), "total_s": int(r[2]) / 1000}
             for r in sorted(db.all("SELECT signature, calls, total_ms FROM command_waits WHERE workflow_id = ?",
                                    (workflow_id,)), key=lambda r: str(r[0]))]
    agents = [_agent(str(r[0]), r[1]) for r in sorted(
        db.all("SELECT agent_name, state_json FROM agent_outputs WHERE workflow_id = ?", (workflow_id,)),
        key=lambda r: str(r[0]))]
    return {"row": w, "patterns": links, "evidence": evidence, "waits": waits, "agents": agents}


def _agent(name: str, state_json: str | None) -> dict:
    """An agent's transcript as stored: its finished runs (kept in its read state)."""
    try:
        state = json.loads(state_json or "{}")
    except ValueError:
        state = {}
    runs = []
    for kept in (state.get("overwritten") or []) + (state.get("runs") or []) if isinstance(state, dict) else []:
        if isinstance(kept, list) and len(kept) == len(_RUN_FIELDS):
            run = dict(zip(_RUN_FIELDS, kept))
            runs.append({"session_id": run["session_id"], "tokens": int(run["tokens"] or 0),
                         "cost_usd": int(run["cost_nanos"] or 0) / 1e9, "duration_s": int(run["duration_ms"] or 0) / 1000,
                         "is_error": bool(run["is_error"]), "model": run["model"]})
    return {"agent": name.split("/", 1)[0], "transcript": name, "runs": runs}


def weeks_by_root(db: Db, end_us: int, host: str | None = None) -> dict[str, list[int]]:
    """The spend (nano-dollars) of each of the WEEKS weeks up to the one holding ``end_us``,
    oldest first, by root name: the overview's stacked chart (roots become agents above)."""
    first = week_start_us(end_us) - (WEEKS - 1) * WEEK_US
    live, params = _live(host)
    found: dict[str, list[int]] = {}
    for root, week, nanos in db.all(
            f"SELECT root_name, (seen_us - ?) / ?, SUM(cost_nanos) FROM workflow_history WHERE {live} "
            "AND seen_us >= ? AND seen_us < ? GROUP BY root_name, 2",
            (first, WEEK_US, *params, first, week_start_us(end_us) + WEEK_US)):
        found.setdefault(str(root), [0] * WEEKS)[int(week)] += int(nanos or 0)
    return found


def filter_values(db: Db) -> dict[str, list[str]]:
    """What the filters offer: the stored roots, hosts and workflow states."""
    def distinct(column: str) -> list[str]:
        # From the column's index alone (wh_root, wh_host): a stored workflow's row may be a
        # placeholder (revision 0) only inside the transaction that stores it.
        return sorted(str(r[0]) for r in db.all(f"SELECT DISTINCT {column} FROM workflow_history "
                                                f"WHERE {column} IS NOT NULL"))

    return {"roots": distinct("root_name"), "hosts": distinct("host"), "statuses": distinct("status")}
