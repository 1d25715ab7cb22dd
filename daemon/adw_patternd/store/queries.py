"""The read-only queries behind `patterns`, `status`, the metrics file and the reference
design's functions. They read the ledger's tables; nothing here writes."""

from __future__ import annotations

from ..core.review import annotate, select
from ..core.stats import derive
from .db import Db
from .reviews import latest_reviews
from .rows import sums_of, us_to_iso

ORDER = {"savings": "potential_monthly_savings DESC", "occurrences": "occurrence_count DESC",
         "confidence": "confidence_score DESC"}
MONTH_US = 30 * 86_400 * 1_000_000
# A host filter, written so that SQLite does not take the host index: one host's workflows
# are often most of them, and a walk of wh_host then each row costs several times the scan.
HOST_IS = "host || '' = ?"
SORT_KEY = {"savings": "potential_monthly_savings", "occurrences": "occurrence_count",
            "confidence": "confidence_score"}


def pattern_figures(db: Db) -> list[tuple[str, int, float, int]]:
    """(signature, occurrences, potential monthly savings, attributed nano-dollars) of each
    pattern found at least once: what the metrics file shows."""
    return db.retrying(lambda: [(r[0], int(r[1]), float(r[2] or 0), int(r[3] or 0)) for r in db.all(
        "SELECT pattern_signature, occurrence_count, potential_monthly_savings, sum_cost_nanos "
        "FROM operation_patterns WHERE occurrence_count > 0 ORDER BY pattern_signature")])


def signature_of(db: Db, pattern_id: int) -> str | None:
    """The signature of pattern ``pattern_id``; None when there is none."""
    row = db.one("SELECT pattern_signature FROM operation_patterns WHERE id = ?", (pattern_id,))
    return row[0] if row else None


def patterns(db: Db, sort: str = "savings", limit: int | None = None) -> list[dict]:
    cur = db.execute(f"SELECT * FROM operation_patterns WHERE occurrence_count > 0 ORDER BY {ORDER[sort]}, "
                     f"pattern_signature" + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _of_roots(roots: tuple[tuple[str, ...], bool] | None) -> tuple[str, tuple]:
    """A condition on w.root_name: (names, True) only those roots, (names, False) all but them."""
    if roots is None:
        return "", ()
    names, keep = roots
    if not names:
        return ("AND 1 = 0 ", ()) if keep else ("", ())
    return f"AND w.root_name {'' if keep else 'NOT '}IN ({', '.join('?' for _ in names)}) ", tuple(names)


def window(db: Db, tool_cost_ratio: float, since_us: int, until_us: int, sort: str = "savings",
           limit: int | None = None, roots: tuple[tuple[str, ...], bool] | None = None,
           own_span: bool = False, host: str | None = None, trend: bool = True) -> list[dict]:
    """The patterns' statistics over the workflows seen (started) in [since, until): a query
    over the links, not the running sums. Monthly savings use the window's length. Each
    row also has its spend in the 30 days before ``until`` and in the 30 before those.
    ``roots``: only the workflows of these roots (names, True), or of all others (names, False).
    ``own_span``: monthly savings over each pattern's first to last seen, as the running sums'.
    ``host``: only the workflows this host wrote. ``trend``: False leaves the 30-day spends
    out (the report does not show them; their query costs as much again)."""
    only, names = _of_roots(roots)
    if host is not None:
        only, names = only + f"AND w.{HOST_IS} ", (*names, host)
    dur = "CASE WHEN o.duration_seconds > 0 THEN o.duration_seconds ELSE 0 END"
    rows = db.all(
        "SELECT p.pattern_signature, COUNT(*), SUM(o.tokens), SUM(o.cost_nanos), "
        "SUM(CASE WHEN o.duration_seconds > 0 THEN 1 ELSE 0 END), "
        f"SUM({dur}), SUM({dur} * {dur}), SUM(o.error_count), SUM(o.retry_count), SUM(o.units), "
        "SUM(o.estimated_nanos), MIN(o.seen_us), MAX(o.seen_us) "
        "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
        "JOIN workflow_history w ON w.workflow_id = o.workflow_id AND w.revision > 0 "
        f"WHERE o.seen_us >= ? AND o.seen_us < ? {only}GROUP BY p.pattern_signature", (since_us, until_us, *names))
    trends = {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in db.all(
        "SELECT p.pattern_signature, SUM(CASE WHEN o.seen_us >= ? THEN o.cost_nanos ELSE 0 END), "
        "SUM(CASE WHEN o.seen_us < ? THEN o.cost_nanos ELSE 0 END) "
        "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
        "JOIN workflow_history w ON w.workflow_id = o.workflow_id AND w.revision > 0 "
        f"WHERE o.seen_us >= ? AND o.seen_us < ? {only}GROUP BY p.pattern_signature",
        (until_us - MONTH_US, until_us - MONTH_US, until_us - 2 * MONTH_US, until_us, *names))} if trend else {}
    out = []
    for r in rows:
        sums = sums_of(r[1:11])
        s = derive(sums, int(r[11]) if own_span else since_us, int(r[12]) if own_span else until_us, tool_cost_ratio)
        last30, prior30 = trends.get(r[0], (0, 0))
        out.append({
            "pattern_signature": r[0], "occurrence_count": s.occurrence_count, "sum_units": sums.units,
            "sum_cost_nanos": sums.cost_nanos, "sum_estimated_nanos": sums.estimated_nanos,
            "avg_tokens_with_llm": s.avg_tokens_with_llm, "avg_cost_with_llm": s.avg_cost_with_llm,
            "avg_tokens_with_tool": s.avg_tokens_with_tool, "avg_cost_with_tool": s.avg_cost_with_tool,
            "potential_monthly_savings": s.potential_monthly_savings, "confidence_score": s.confidence_score,
            "first_seen": us_to_iso(int(r[11])), "last_seen": us_to_iso(int(r[12])),
            "spend_last_30d_usd": last30 / 1e9, "spend_prior_30d_usd": prior30 / 1e9,
            "trend": (None if not prior30 else (last30 - prior30) / prior30),
        })
    out.sort(key=lambda row: (-row[SORT_KEY[sort]], row["pattern_signature"]))
    return out[:limit] if limit else out


def _live(host: str | None, alias: str = "") -> tuple[str, tuple]:
    """The condition for stored workflows (of one host, or of all), and its parameters."""
    if host is None:
        return f"{alias}revision > 0", ()
    return f"{alias}revision > 0 AND {alias}{HOST_IS}", (host,)


def hosts(db: Db) -> list[str]:
    """The hosts that wrote the stored workflows, by name."""
    return [str(r[0]) for r in db.all("SELECT DISTINCT host FROM workflow_history WHERE revision > 0 "
                                      "AND host IS NOT NULL")]


def listed(db: Db, tool_cost_ratio: float, *, sort: str = "savings", limit: int | None = None,
           state: str | None = None, roots: tuple[tuple[str, ...], bool] | None = None, host: str | None = None,
           since_us: int | None = None, until_us: int | None = None, now_us: int = 0) -> list[dict]:
    """The rows `patterns` prints (and the live page's Patterns): the running sums, or with a
    window, roots or a host, the sums over those workflows; annotated with review states,
    in ``state`` only, ranked by ``sort`` (savings, occurrences, confidence, impact)."""
    # Ranking by impact or filtering by review state needs every row before the limit.
    store_sort = "savings" if sort == "impact" else sort
    store_limit = None if sort == "impact" or state else limit
    if since_us is not None or until_us is not None or roots is not None or host is not None:
        rows = window(db, tool_cost_ratio, since_us or 0, until_us if until_us is not None else now_us + 1,
                      store_sort, store_limit, roots, own_span=since_us is None and until_us is None, host=host)
    else:
        rows = patterns(db, store_sort, store_limit)
    return select(annotate(rows, latest_reviews(db)), state, sort)[:limit]


def spend_by_agent(db: Db, agent_of, host: str | None = None) -> dict:
    """Workflows and spend seen by agent (``agent_of``: root name -> agent), by agent name."""
    found: dict[str, list[int]] = {}
    live, params = _live(host)
    for root, n, nanos in db.all("SELECT root_name, COUNT(*), COALESCE(SUM(cost_nanos), 0) FROM workflow_history "
                                 f"WHERE {live} GROUP BY root_name", params):
        sums = found.setdefault(agent_of(root), [0, 0])
        sums[0] += int(n)
        sums[1] += int(nanos)
    return {agent: {"workflows": n, "spend_usd": nanos / 1e9} for agent, (n, nanos) in sorted(found.items())}


def spend_by_host(db: Db, host: str | None = None) -> dict:
    """Workflows and spend seen by the host that wrote them (a team's shared database)."""
    live, params = _live(host)
    rows = db.all("SELECT COALESCE(host, 'none'), COUNT(*), COALESCE(SUM(cost_nanos), 0), "
                  f"COALESCE(SUM(attributed_nanos), 0) FROM workflow_history WHERE {live} GROUP BY 1", params)
    return {str(r[0]): {"workflows": int(r[1]), "spend_usd": int(r[2]) / 1e9, "attributed_usd": int(r[3]) / 1e9}
            for r in sorted(rows, key=lambda r: str(r[0]))}


def status(db: Db, host: str | None = None, agent_of=None) -> dict:
    """What `status --json` says (and the live page's /api/status), of every workflow or of
    those one host wrote; ``agent_of``: root name -> agent, for its spend by agent."""
    live, params = _live(host)
    roots = {r[0]: {"workflows": int(r[1]), "last_updated": r[2], "spend_usd": int(r[3] or 0) / 1e9} for r in db.all(
        "SELECT root_name, COUNT(*), MAX(updated_at), COALESCE(SUM(cost_nanos), 0) FROM workflow_history "
        f"WHERE {live} GROUP BY root_name", params)}
    last = db.one(f"SELECT workflow_id, updated_at FROM workflow_history WHERE {live} "
                  "ORDER BY updated_at DESC, workflow_id LIMIT 1", params)
    if db.dialect == "sqlite":
        pages = db.one("PRAGMA page_count")[0] * db.one("PRAGMA page_size")[0]
    else:
        pages = db.one("SELECT pg_total_relation_size('operation_patterns') + pg_total_relation_size('pattern_occurrences')"
                       " + pg_total_relation_size('workflow_history') + pg_total_relation_size('agent_outputs')")[0]

    def counts(column: str) -> dict:
        return {str(r[0]): int(r[1]) for r in db.all(
            f"SELECT COALESCE({column}, 'none'), COUNT(*) FROM workflow_history WHERE {live} "
            f"GROUP BY COALESCE({column}, 'none') ORDER BY 1", params)}

    spend = db.one("SELECT COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(estimated_nanos), 0), "
                   "COALESCE(SUM(unfinished_runs), 0), COALESCE(SUM(overwritten_runs), 0), "
                   "COALESCE(SUM(overwritten_nanos), 0), COALESCE(SUM(session_runs), 0) "
                   f"FROM workflow_history WHERE {live}", params)
    return {
        "workflows": sum(v["workflows"] for v in roots.values()),
        "by_status": counts("status"),
        "time_source": counts("time_source"),
        "request_source": counts("request_source"),
        "spend_usd": int(spend[0]) / 1e9,
        "estimated_usd": int(spend[1]) / 1e9,
        "unfinished_runs": int(spend[2]),
        "overwritten_runs": int(spend[3]),  # seen live, since overwritten: kept, not in the files
        "overwritten_usd": int(spend[4]) / 1e9,
        "session_runs": int(spend[5]),  # attempts only the session store kept (retries, priced from usage)
        "patterns": int(db.one("SELECT COUNT(*) FROM operation_patterns WHERE occurrence_count > 0")[0] if host is None
                        else db.one("SELECT COUNT(DISTINCT o.pattern_id) FROM pattern_occurrences o JOIN workflow_history w "
                                    f"ON w.workflow_id = o.workflow_id WHERE {_live(host, 'w.')[0]}", params)[0]),
        "roots": roots,
        "by_host": spend_by_host(db, host),
        "by_agent": spend_by_agent(db, agent_of or (lambda root: ""), host),
        "host": host,
        "last_processed": {"workflow_id": last[0], "at": last[1]} if last else None,
        "database": db.label,
        "database_bytes": int(pages or 0),
    }
