"""Shared helpers for the tests: real config files, real databases, waiting with a deadline."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

import yaml


@contextmanager
def exclusive_lock(database: str):
    """Another process's view: hold the SQLite database with BEGIN EXCLUSIVE until the block ends."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def write_config(folder: Path, roots: dict[str, Path], database: str, **extra) -> Path:
    """A real config.yaml in ``folder``; ``roots`` maps name -> path."""
    doc = {
        "roots": [{"path": str(p), "name": n} for n, p in roots.items()],
        "database": database,
        "log": {"file": str(folder / "daemon.log"), "level": "INFO"},
    }
    doc.update(extra)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def wait_for(condition, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``condition`` until it returns a truthy value; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as e:  # the database may be mid-migration; keep polling
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def connect(database: str):
    if database.startswith("postgresql://"):
        import psycopg

        return psycopg.connect(database, autocommit=True)
    conn = sqlite3.connect(database, timeout=5)
    return conn


def query(database: str, sql: str, params=()):
    conn = connect(database)
    try:
        if database.startswith("postgresql://"):
            sql = sql.replace("?", "%s")
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def pattern_counts(database: str) -> dict[str, int]:
    return {sig: n for sig, n in query(database, "SELECT pattern_signature, occurrence_count FROM operation_patterns")}


def normalised_dump(database: str) -> dict:
    """Every fact the ledger keeps, without ids, wall-clock times and write counters, so that
    two databases built from the same files compare equal."""
    patterns = query(database, "SELECT pattern_signature, pattern_type, occurrence_count, avg_tokens_with_llm, "
                     "avg_cost_with_llm, avg_tokens_with_tool, avg_cost_with_tool, typical_input_pattern, "
                     "confidence_score, potential_monthly_savings, first_seen, last_seen, sum_tokens, sum_cost_nanos, "
                     "duration_n, duration_sum, duration_sumsq, sum_errors, sum_retries, sum_units, sum_estimated_nanos "
                     "FROM operation_patterns "
                     "WHERE occurrence_count > 0 ORDER BY pattern_signature")
    links = query(database, "SELECT p.pattern_signature, o.workflow_id, o.matched_characteristics, o.seen_us, "
                  "o.layer, o.tokens, o.cost_nanos, o.duration_seconds, o.error_count, o.retry_count, o.units, "
                  "o.estimated_nanos "
                  "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
                  "ORDER BY p.pattern_signature, o.workflow_id")
    workflows = query(database, "SELECT workflow_id, root_name, adw_id, nl_input, workflow_template, issue_class, "
                      "issue_number, model, status, start_time, end_time, seen_us, duration_seconds, total_tokens, "
                      "cost_nanos, actual_cost_total, error_count, retry_count, error_message, request, request_source, "
                      "time_source, estimated_nanos, unfinished_runs FROM workflow_history "
                      "WHERE revision > 0 ORDER BY workflow_id")
    agents = query(database, "SELECT workflow_id, agent_name, offset_bytes, results, tokens, cost_nanos, duration_ms, "
                   "error_results, last_error, model, state_json FROM agent_outputs ORDER BY workflow_id, agent_name")
    unmatched = query(database, "SELECT workflow_id, head, read_only, calls, cost_nanos, tokens FROM command_unmatched "
                      "ORDER BY workflow_id, head")
    return {"operation_patterns": [tuple(r) for r in patterns], "pattern_occurrences": [tuple(r) for r in links],
            "workflow_history": [tuple(r) for r in workflows], "agent_outputs": [tuple(r) for r in agents],
            "command_unmatched": [tuple(r) for r in unmatched]}


def diff_dumps(a: dict, b: dict) -> list[str]:
    out = []
    for table in a:
        sa, sb = set(a[table]), set(b[table])
        out += [f"{table}: only in first: {r}" for r in sorted(sa - sb, key=repr)[:5]]
        out += [f"{table}: only in second: {r}" for r in sorted(sb - sa, key=repr)[:5]]
    return out


def write_state(folder: Path, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"adw_id": folder.name, **fields}
    path = folder / "adw_state.json"
    path.write_text(json.dumps(doc))
    return path


def result_line(cost=0.5, tokens=(100, 0, 0, 50), is_error=False, duration_ms=60_000, text="Done.", **extra) -> str:
    inp, cw, cr, out = tokens
    doc = {"type": "result", "subtype": "success", "is_error": is_error, "duration_ms": duration_ms,
           "result": text, "usage": {"input_tokens": inp, "cache_creation_input_tokens": cw,
                                     "cache_read_input_tokens": cr, "output_tokens": out}, **extra}
    if cost is not None:
        doc["total_cost_usd"] = cost
    return json.dumps(doc) + "\n"


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(text)


def age(path: Path, seconds: float = 10) -> None:
    """Move a file's mtime into the past, as for a workflow that finished a while ago."""
    t = time.time() - seconds
    os.utime(path, (t, t))


IMPORTED_WITH_THE_PACKAGE = ("adw_patternd", "yaml", "msgspec", "zstandard")  # what the command line imports


def readable_packages(base: Path, extra=()) -> dict:
    """An environment whose PYTHONPATH holds adw_patternd, what importing it needs, and the
    ``extra`` modules (with their compiled libraries), copied where an unprivileged user can
    read them: the checkout (and the venv inside it) may sit in a folder only its owner can
    open."""
    pkg = base / "pkg"
    pkg.mkdir(parents=True, exist_ok=True)
    for name in (*IMPORTED_WITH_THE_PACKAGE, *extra):
        file = Path(importlib.import_module(name).__file__)
        if file.name != "__init__.py":  # a module of one file
            shutil.copy(file, pkg / file.name)
            continue
        for folder in (file.parent, file.parent.with_name(file.parent.name + ".libs")):
            if folder.is_dir() and not (pkg / folder.name).exists():
                shutil.copytree(folder, pkg / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, dirs, files in os.walk(pkg):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o755 if f.endswith(".so") or ".so." in f else 0o644)
    return {**os.environ, "PYTHONPATH": str(pkg)}


def open_to_everyone(*paths: Path) -> None:
    """Make files and folders readable (folders writable too) by any user: for a command run
    as nobody on files this process wrote under a umask of 027."""
    for top in paths:
        for dirpath, dirs, files in os.walk(top):
            os.chmod(dirpath, 0o777)
            for f in files:
                os.chmod(os.path.join(dirpath, f), 0o666)


@contextmanager
def stdlib_json():
    """Decode transcript lines with the stdlib's json alone (the reference the compiled
    decoder must match), for the duration of the block."""
    from adw_patternd.core import jsonline

    saved = jsonline._decode
    jsonline._decode = json.loads
    try:
        yield
    finally:
        jsonline._decode = saved


def assert_a_second_sync_changes_nothing(cfg, database: str, capsys) -> None:
    """`sync` again stores nothing new, leaves every fact as it was, and `verify --files`
    finds the database saying what the files say."""
    from adw_patternd.cli import main

    before = normalised_dump(database)
    capsys.readouterr()
    assert main(["sync", "--config", str(cfg)]) == 0
    assert "new 0, updated 0" in capsys.readouterr().out
    assert normalised_dump(database) == before
    assert main(["verify", "--files", "--config", str(cfg)]) == 0
