"""Schema migrations: numbered functions, recorded in the database, applied on open.

m001 creates the reference design's three tables exactly as its own test fixture does, so
a database the reference made and one we made start from the same place. m002 adds what
exact accounting needs beside them and adopts whatever rows are already there.
"""

from __future__ import annotations

import logging
import math
import socket

from .db import Db

log = logging.getLogger("adw_patternd.store")

_REFERENCE_SQLITE = (
    """CREATE TABLE IF NOT EXISTS operation_patterns (
        id INTEGER PRIMARY KEY,
        pattern_signature TEXT UNIQUE,
        pattern_type TEXT,
        occurrence_count INTEGER DEFAULT 1,
        avg_tokens_with_llm INTEGER DEFAULT 0,
        avg_cost_with_llm REAL DEFAULT 0.0,
        avg_tokens_with_tool INTEGER DEFAULT 0,
        avg_cost_with_tool REAL DEFAULT 0.0,
        typical_input_pattern TEXT,
        automation_status TEXT DEFAULT 'detected',
        confidence_score REAL DEFAULT 10.0,
        potential_monthly_savings REAL DEFAULT 0.0,
        created_at TEXT,
        last_seen TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS pattern_occurrences (
        id INTEGER PRIMARY KEY,
        pattern_id INTEGER,
        workflow_id TEXT,
        similarity_score REAL,
        matched_characteristics TEXT,
        detected_at TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS workflow_history (
        workflow_id TEXT PRIMARY KEY,
        error_count INTEGER,
        duration_seconds INTEGER,
        retry_count INTEGER,
        total_tokens INTEGER,
        actual_cost_total REAL
    )""",
)

# The same tables in PostgreSQL: 64-bit ids and doubles, and workflow ids compared byte by
# byte (COLLATE "C", as SQLite does), so that ties between workflows started at the same
# moment break the same way in both stores and the (pattern_id, seen_us, workflow_id)
# index serves the ORDER BY.
_REFERENCE_POSTGRES = tuple(
    ddl.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY").replace(" REAL", " DOUBLE PRECISION")
    .replace("pattern_id INTEGER", "pattern_id BIGINT").replace("total_tokens INTEGER", "total_tokens BIGINT")
    .replace("workflow_id TEXT", 'workflow_id TEXT COLLATE "C"')
    for ddl in _REFERENCE_SQLITE
)


def m001_reference_tables(db: Db) -> None:
    for ddl in (_REFERENCE_POSTGRES if db.dialect == "postgres" else _REFERENCE_SQLITE):
        db.execute(ddl)


_ADDED_COLUMNS = {
    "workflow_history": [
        ("root_name", "TEXT"), ("adw_id", "TEXT"), ("nl_input", "TEXT"), ("workflow_template", "TEXT"),
        ("issue_class", "TEXT"), ("issue_number", "TEXT"), ("model", "TEXT"), ("status", "TEXT"),
        ("start_time", "TEXT"), ("end_time", "TEXT"), ("seen_us", "BIGINT"), ("cost_nanos", "BIGINT"),
        ("error_message", "TEXT"), ("fingerprint", "TEXT"), ("revision", "BIGINT DEFAULT 0"),
        ("updated_at", "TEXT"),
    ],
    "pattern_occurrences": [("seen_us", "BIGINT")],
    "operation_patterns": [
        ("sum_tokens", "BIGINT DEFAULT 0"), ("sum_cost_nanos", "BIGINT DEFAULT 0"),
        ("duration_n", "BIGINT DEFAULT 0"), ("duration_sum", "BIGINT DEFAULT 0"),
        ("duration_sumsq", "BIGINT DEFAULT 0"), ("sum_errors", "BIGINT DEFAULT 0"),
        ("sum_retries", "BIGINT DEFAULT 0"), ("first_seen", "TEXT"), ("first_seen_us", "BIGINT"),
        ("last_seen_us", "BIGINT"),
    ],
}


def columns(db: Db, table: str) -> set[str]:
    if db.dialect == "sqlite":
        return {row[1] for row in db.all(f"PRAGMA table_info({table})")}
    return {row[0] for row in db.all(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?",
        (table,))}


def _to_int(v) -> int:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return 0
    return int(x + 0.5) if math.isfinite(x) and x > 0 else 0


def m002_exact_accounting(db: Db) -> None:
    for table, cols in _ADDED_COLUMNS.items():
        have = columns(db, table)
        for name, kind in cols:
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    big = "BIGINT"
    db.execute(f"""CREATE TABLE IF NOT EXISTS agent_outputs (
        workflow_id TEXT NOT NULL, agent_name TEXT NOT NULL, device {big}, inode {big}, offset_bytes {big},
        results {big}, tokens {big}, cost_nanos {big}, duration_ms {big}, error_results {big},
        last_error TEXT, model TEXT, PRIMARY KEY (workflow_id, agent_name))""")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")

    # Adopt rows a reference database already holds. Its workflows are keyed by a bare
    # workflow_id; they count as already contributing (revision 1).
    from ..core.times import epoch_us, iso, parse_time  # noqa: PLC0415

    have = columns(db, "workflow_history")
    start_col = "start_time" if "start_time" in have else "NULL"
    rows = db.all(f"SELECT workflow_id, actual_cost_total, duration_seconds, error_count, retry_count, total_tokens, "
                  f"{start_col} FROM workflow_history WHERE revision IS NULL OR revision = 0")
    fixed = []
    for wf_id, cost, duration, errors, retries, tokens, start in rows:
        try:
            c = float(cost) if cost is not None else 0.0
        except (TypeError, ValueError):
            c = 0.0
        nanos = round(c * 1e9) if math.isfinite(c) and c >= 0 else 0
        t = parse_time(start, [], "start_time") if start is not None else None
        fixed.append((nanos, nanos / 1e9, _to_int(duration), _to_int(errors), _to_int(retries), _to_int(tokens),
                      iso(t), epoch_us(t), wf_id))
    if fixed:
        db.executemany(
            "UPDATE workflow_history SET cost_nanos = ?, actual_cost_total = ?, duration_seconds = ?, error_count = ?, "
            "retry_count = ?, total_tokens = ?, start_time = ?, seen_us = ?, revision = 1, "
            "root_name = COALESCE(root_name, ''), adw_id = COALESCE(adw_id, workflow_id) WHERE workflow_id = ?", fixed)
        log.info("adopted %d existing workflow_history rows", len(fixed))

    # The reference could link a workflow to a pattern more than once; keep one link.
    dup = db.one("SELECT COUNT(*) - COUNT(DISTINCT pattern_id || '/' || workflow_id) FROM pattern_occurrences")[0] or 0
    if dup:
        db.execute("DELETE FROM pattern_occurrences WHERE id NOT IN "
                   "(SELECT MIN(id) FROM pattern_occurrences GROUP BY pattern_id, workflow_id)")
        log.info("removed %d duplicate pattern_occurrences rows", dup)
    orphans = db.one("SELECT COUNT(*) FROM pattern_occurrences po WHERE NOT EXISTS "
                     "(SELECT 1 FROM workflow_history w WHERE w.workflow_id = po.workflow_id)")[0]
    if orphans:
        db.execute("DELETE FROM pattern_occurrences WHERE NOT EXISTS "
                   "(SELECT 1 FROM workflow_history w WHERE w.workflow_id = pattern_occurrences.workflow_id)")
        log.warning("removed %d pattern_occurrences rows whose workflow is not in workflow_history", orphans)
    db.execute("UPDATE pattern_occurrences SET seen_us = (SELECT w.seen_us FROM workflow_history w "
               "WHERE w.workflow_id = pattern_occurrences.workflow_id)")

    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS po_pattern_workflow ON pattern_occurrences (pattern_id, workflow_id)")
    db.execute("CREATE INDEX IF NOT EXISTS po_workflow ON pattern_occurrences (workflow_id)")
    db.execute("CREATE INDEX IF NOT EXISTS po_pattern_seen ON pattern_occurrences (pattern_id, seen_us, workflow_id)")
    db.execute("CREATE INDEX IF NOT EXISTS wh_root ON workflow_history (root_name, adw_id)")
    # The sums of every pattern are recomputed by the ledger right after migrating.
    db.execute("INSERT INTO meta (key, value) VALUES ('recompute_all', '1') ON CONFLICT (key) DO UPDATE SET value = '1'")


def m003_output_tail(db: Db) -> None:
    """Remember the bytes before each read offset, to tell an append from an in-place rewrite."""
    if "tail" not in columns(db, "agent_outputs"):
        db.execute("ALTER TABLE agent_outputs ADD COLUMN tail TEXT DEFAULT ''")


_ATTRIBUTION_COLUMNS = {
    "workflow_history": [
        ("request", "TEXT"), ("request_source", "TEXT"), ("time_source", "TEXT"),
        ("estimated_nanos", "BIGINT DEFAULT 0"), ("unfinished_runs", "BIGINT DEFAULT 0"),
    ],
    "pattern_occurrences": [
        ("layer", "TEXT DEFAULT 'workflow'"), ("tokens", "BIGINT DEFAULT 0"), ("cost_nanos", "BIGINT DEFAULT 0"),
        ("duration_seconds", "BIGINT DEFAULT 0"), ("error_count", "BIGINT DEFAULT 0"),
        ("retry_count", "BIGINT DEFAULT 0"), ("units", "BIGINT DEFAULT 1"), ("estimated_nanos", "BIGINT DEFAULT 0"),
    ],
    "operation_patterns": [("sum_units", "BIGINT DEFAULT 0"), ("sum_estimated_nanos", "BIGINT DEFAULT 0")],
    "agent_outputs": [("state_json", "TEXT")],
}


def _add_columns(db: Db, spec: dict[str, list[tuple[str, str]]]) -> None:
    """Add each (name, type) column its table lacks: a migration may have half-run before."""
    for table, cols in spec.items():
        have = columns(db, table)
        for name, kind in cols:
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def m004_attributed_costs(db: Db) -> None:
    """Real ADW trees: each link carries what its pattern cost in that workflow (an agent's runs,
    a command's calls, or the whole workflow), and each transcript its open run and commands.
    Existing links describe whole workflows; the ledger fills their amounts right after
    (recompute_all). Transcripts are now keyed by their path and read again from the start."""
    _add_columns(db, _ATTRIBUTION_COLUMNS)
    db.execute("DELETE FROM agent_outputs")
    db.execute("UPDATE workflow_history SET fingerprint = NULL")
    db.execute("UPDATE pattern_occurrences SET layer = 'workflow' WHERE layer IS NULL")
    db.execute("INSERT INTO meta (key, value) VALUES ('recompute_all', '1') ON CONFLICT (key) DO UPDATE SET value = '1'")


_RUN_LEDGER_COLUMNS = {
    "workflow_history": [("overwritten_runs", "BIGINT DEFAULT 0"), ("overwritten_nanos", "BIGINT DEFAULT 0")],
    "agent_outputs": [("size_bytes", "BIGINT DEFAULT 0"), ("mtime_ns", "BIGINT DEFAULT 0"),
                      ("head_session", "TEXT DEFAULT ''"), ("overwritten_runs", "BIGINT DEFAULT 0")],
}


def m005_run_ledger(db: Db) -> None:
    """Runs, not bytes: each transcript keeps the runs that a rewrite of its file took away
    (counted as retries), and what the file looked like (size, mtime, first session) to
    notice a rewrite of the same length. Stored transcripts are read again once."""
    _add_columns(db, _RUN_LEDGER_COLUMNS)
    db.execute("UPDATE workflow_history SET fingerprint = NULL")


_APPEND_ONLY_SQLITE = """CREATE TRIGGER IF NOT EXISTS pattern_reviews_append_only_{what} BEFORE {what} ON pattern_reviews
    BEGIN SELECT RAISE(ABORT, 'pattern_reviews is an append-only audit trail'); END"""
_APPEND_ONLY_POSTGRES = (
    """CREATE OR REPLACE FUNCTION pattern_reviews_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'pattern_reviews is an append-only audit trail'; END $$""",
    """DROP TRIGGER IF EXISTS pattern_reviews_append_only ON pattern_reviews""",
    """CREATE TRIGGER pattern_reviews_append_only BEFORE UPDATE OR DELETE ON pattern_reviews
       FOR EACH STATEMENT EXECUTE FUNCTION pattern_reviews_append_only()""",
)


def m006_evidence_and_reviews(db: Db) -> None:
    """Evidence a person can check a pattern against (the agents and command lines behind
    each link), the part of each workflow's spend its patterns account for, and decisions
    about patterns in an append-only table (the latest one is the pattern's state).
    Stored workflows are read again once to fill the evidence."""
    big = "BIGINT"
    ident = "BIGSERIAL PRIMARY KEY" if db.dialect == "postgres" else "INTEGER PRIMARY KEY"
    wf_id = 'TEXT COLLATE "C"' if db.dialect == "postgres" else "TEXT"
    db.execute(f"""CREATE TABLE IF NOT EXISTS pattern_evidence (
        pattern_id {big} NOT NULL, workflow_id {wf_id} NOT NULL, kind TEXT NOT NULL, item TEXT NOT NULL, n {big},
        PRIMARY KEY (pattern_id, workflow_id, kind, item))""")
    db.execute("CREATE INDEX IF NOT EXISTS pe_workflow ON pattern_evidence (workflow_id)")
    db.execute(f"""CREATE TABLE IF NOT EXISTS pattern_reviews (
        id {ident}, pattern_signature TEXT NOT NULL, decision TEXT NOT NULL, note TEXT, decided_by TEXT NOT NULL,
        decided_at TEXT NOT NULL, occurrences_then {big}, savings_then DOUBLE PRECISION,
        confidence_then DOUBLE PRECISION)""")
    db.execute("CREATE INDEX IF NOT EXISTS pr_signature ON pattern_reviews (pattern_signature, id)")
    if db.dialect == "postgres":
        for ddl in _APPEND_ONLY_POSTGRES:
            db.execute(ddl)
    else:
        for what in ("UPDATE", "DELETE"):
            db.execute(_APPEND_ONLY_SQLITE.format(what=what))
    _add_columns(db, {"workflow_history": [("attributed_nanos", "BIGINT DEFAULT 0")]})
    db.execute("CREATE INDEX IF NOT EXISTS wh_seen ON workflow_history (seen_us)")  # the report's weeks
    db.execute("UPDATE workflow_history SET fingerprint = NULL")
    # Rows without files (adopted from the reference) keep what their links say.
    db.execute("UPDATE workflow_history SET attributed_nanos = cost_nanos WHERE EXISTS (SELECT 1 FROM "
               "pattern_occurrences o WHERE o.workflow_id = workflow_history.workflow_id AND o.layer = 'workflow')")


def m007_root_identity(db: Db) -> None:
    """Each root folder's device:inode per host as of the last full pass: a root that is no
    longer the same folder (a mount came or went) is never evidence of deletions."""
    db.execute("CREATE TABLE IF NOT EXISTS root_identity (host TEXT NOT NULL, root_name TEXT NOT NULL, "
               "identity TEXT NOT NULL, recorded_at TEXT, PRIMARY KEY (host, root_name))")


def m008_mentions(db: Db) -> None:
    """Where the request is not nl_input, a request, error or template that names a pattern no
    agent did is a mention, not an occurrence: every workflow is read again to say which."""
    db.execute("CREATE TABLE IF NOT EXISTS pattern_mentions (pattern_id INTEGER NOT NULL, workflow_id TEXT NOT NULL, "
               "PRIMARY KEY (pattern_id, workflow_id))")
    db.execute("CREATE INDEX IF NOT EXISTS pm_workflow ON pattern_mentions (workflow_id)")
    db.execute("UPDATE workflow_history SET fingerprint = NULL")


def m009_session_store(db: Db) -> None:
    """Claude Code's session store: which ADW workflow each session belongs to (its own
    workflow otherwise), and how many of a workflow's runs only the store kept."""
    db.execute("CREATE TABLE IF NOT EXISTS session_claims (session_id TEXT NOT NULL, workflow_id TEXT NOT NULL, "
               "PRIMARY KEY (session_id, workflow_id))")
    db.execute("CREATE INDEX IF NOT EXISTS sc_workflow ON session_claims (workflow_id)")
    _add_columns(db, {"workflow_history": [("session_runs", "BIGINT DEFAULT 0")]})
    # The wall time of each signature's Bash calls in a workflow, where a session gave it.
    db.execute("CREATE TABLE IF NOT EXISTS command_waits (workflow_id TEXT NOT NULL, signature TEXT NOT NULL, "
               "calls INTEGER NOT NULL, total_ms BIGINT NOT NULL, waits_ms TEXT NOT NULL, "
               "PRIMARY KEY (signature, workflow_id))")
    db.execute("CREATE INDEX IF NOT EXISTS cw_workflow ON command_waits (workflow_id)")


def m010_automation(db: Db) -> None:
    """An automated pattern's effective day in the review trail (a new column: the trail
    still refuses UPDATE and DELETE), and the regressions already warned about (once each)."""
    _add_columns(db, {"pattern_reviews": [("effective_on", "TEXT")]})
    db.execute("CREATE TABLE IF NOT EXISTS regression_warnings (pattern_id BIGINT NOT NULL, workflow_id TEXT NOT NULL, "
               "warned_at TEXT NOT NULL, PRIMARY KEY (pattern_id, workflow_id))")


def m011_response_keys(db: Db) -> None:
    """Bounded state per file: the responses a session store's files counted, one row each
    (written once, never rewritten), so that a replay or a copy in another file counts once.
    Session files are read again once (a version 2 state is kept where its file is gone)."""
    compact = " WITHOUT ROWID" if db.dialect == "sqlite" else ""
    db.execute("CREATE TABLE IF NOT EXISTS response_keys (mkey BIGINT NOT NULL, rkey BIGINT NOT NULL, "
               "file BIGINT NOT NULL, side SMALLINT NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (mkey, rkey))"
               + compact)
    db.execute("CREATE INDEX IF NOT EXISTS rk_file ON response_keys (file)")
    db.execute("CREATE TABLE IF NOT EXISTS response_files (file BIGINT PRIMARY KEY, workflow_id TEXT NOT NULL, "
               "first_ms BIGINT NOT NULL)" + compact)
    db.execute("CREATE INDEX IF NOT EXISTS rf_workflow ON response_files (workflow_id)")
    db.execute("UPDATE workflow_history SET fingerprint = NULL WHERE workflow_id IN "
               "(SELECT workflow_id FROM agent_outputs WHERE state_json LIKE ?)", ('%"store":%',))


def m012_codex_facts(db: Db) -> None:
    """What a Codex home's sessions counted that other files need (docs/codex.md): each
    usage event counted once across files (by its key), and each session's counted
    cumulative totals (a fork's or sub-agent's copies of them are not spend). Rows are
    written once with their session's change, and go with the session."""
    db.execute("CREATE TABLE IF NOT EXISTS codex_keys (event_key TEXT PRIMARY KEY, workflow_id TEXT NOT NULL)")
    db.execute("CREATE INDEX IF NOT EXISTS ck_workflow ON codex_keys (workflow_id)")
    db.execute("CREATE TABLE IF NOT EXISTS codex_totals (session_id TEXT NOT NULL, total TEXT NOT NULL, "
               "workflow_id TEXT NOT NULL, PRIMARY KEY (session_id, total))")
    db.execute("CREATE INDEX IF NOT EXISTS ct_workflow ON codex_totals (workflow_id)")


def m013_transcript_state_v4(db: Db) -> None:
    """Transcript state version 4 (1-hour cache writes priced apart, where a session's turn
    stands: sources/transcript.py) and Codex state version 3 (where its last turn stands):
    every workflow with a transcript, a session file or a rollout is read again once. A
    session file's older state is kept where its file is gone."""
    db.execute("UPDATE workflow_history SET fingerprint = NULL WHERE workflow_id IN "
               "(SELECT workflow_id FROM agent_outputs)")


def m014_workflow_host(db: Db, host: str) -> None:
    """Which machine wrote each workflow (config.yaml's host:), so that a team sharing one
    PostgreSQL database can tell its machines apart. Rows written before are this host's:
    the one that migrates is the one that wrote them, or the first of a fleet to upgrade."""
    _add_columns(db, {"workflow_history": [("host", "TEXT")]})
    db.execute("UPDATE workflow_history SET host = ? WHERE host IS NULL", (host,))
    db.execute("CREATE INDEX IF NOT EXISTS wh_host ON workflow_history (host, seen_us)")


def m015_transcript_state_v5(db: Db) -> None:
    """Transcript state version 5 (Claude Code's own cost record kept beside a session file's
    count: sources/cost_record.py): every workflow with a session file is read again once. A
    session file's older state is kept where its file is gone."""
    db.execute("UPDATE workflow_history SET fingerprint = NULL WHERE workflow_id IN "
               "(SELECT workflow_id FROM agent_outputs WHERE state_json LIKE ?)", ('%"store":%',))


def m016_command_unmatched(db: Db) -> None:
    """What the shell commands that match no layer-4 row cost, per workflow and head
    (`patterns --unmatched`): transcript state version 6, Codex state version 4 (their
    shares by head). Every workflow with a transcript, a session file or a rollout is read
    again once; a session file's older state is kept where its file is gone."""
    db.execute("CREATE TABLE IF NOT EXISTS command_unmatched (workflow_id TEXT NOT NULL, head TEXT NOT NULL, "
               "read_only SMALLINT NOT NULL, calls BIGINT NOT NULL, cost_nanos BIGINT NOT NULL, "
               "tokens BIGINT NOT NULL, PRIMARY KEY (workflow_id, head))")
    db.execute("UPDATE workflow_history SET fingerprint = NULL WHERE workflow_id IN "
               "(SELECT workflow_id FROM agent_outputs)")


def m017_cross_file_names(db: Db) -> None:
    """m012's tables keep what any home whose forks copy their parents' events counted, not
    one agent's: renamed for what they hold (their rows and indexes stay as they are)."""
    db.execute("ALTER TABLE codex_keys RENAME TO counted_events")
    db.execute("ALTER TABLE codex_totals RENAME TO counted_totals")


def m018_agent_state_v3(db: Db) -> None:
    """The pure readers' state version 3 (a Gemini response with neither text nor calls does
    not end its turn: a session killed in a call is interrupted, not completed): every
    session read by one is read again once."""
    db.execute("UPDATE workflow_history SET fingerprint = NULL WHERE workflow_id IN "
               "(SELECT workflow_id FROM agent_outputs WHERE agent_name = ?)", ("session",))


MIGRATIONS = (m001_reference_tables, m002_exact_accounting, m003_output_tail, m004_attributed_costs,
              m005_run_ledger, m006_evidence_and_reviews, m007_root_identity, m008_mentions, m009_session_store,
              m010_automation, m011_response_keys, m012_codex_facts, m013_transcript_state_v4,
              m014_workflow_host, m015_transcript_state_v5, m016_command_unmatched, m017_cross_file_names,
              m018_agent_state_v3)
# Migrations that need to know the machine migrating (the host its old rows are given).
_WITH_HOST = (m014_workflow_host,)


def _current(db: Db) -> bool:
    """Whether every migration is applied, found without a write (a read-only server, a
    full disk: opening still works, and the write that fails says why)."""
    if db.dialect == "sqlite":
        return db.one("PRAGMA user_version")[0] == len(MIGRATIONS)
    try:
        done = {r[0] for r in db.all("SELECT name FROM schema_migrations")}
    except Exception:  # no such table yet (autocommit: nothing to roll back)
        return False
    return done >= {m.__name__ for m in MIGRATIONS}


def migrate(db: Db, host: str | None = None) -> list[str]:
    """Apply the migrations this database lacks; return their names. ``host``: this
    machine's name as config.yaml gives it (default: the OS's)."""
    host = host or socket.gethostname()
    if _current(db):
        return []

    def work():
        if db.dialect == "postgres":
            # Several daemons may start at once against one database.
            db.execute("SELECT pg_advisory_xact_lock(7242023)")
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {r[0] for r in db.all("SELECT name FROM schema_migrations")}
        applied = []
        for m in MIGRATIONS:
            if m.__name__ not in done:
                m(db, host) if m in _WITH_HOST else m(db)
                db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, "
                           + ("datetime('now')" if db.dialect == "sqlite" else "now()::text") + ")", (m.__name__,))
                applied.append(m.__name__)
        if db.dialect == "sqlite":
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        return applied

    applied = db.transaction(work, what="schema migration")
    if applied:
        log.info("schema migrated: %s", ", ".join(applied))
    return applied
