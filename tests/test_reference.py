"""The reference design's seven unit tests, restated against our functions on a database
built exactly as the reference's own fixture builds it, and a regression test for each of
the reference's defects."""

import json
import sqlite3

import pytest

from adw_patternd import (batch_process_workflows, process_and_persist_workflow, record_pattern_occurrence,
                          update_pattern_statistics)
from adw_patternd.store.db import wrap_sqlite
from adw_patternd.store.ledger import Ledger
from adw_patternd.store.verify import verify
from adw_patternd.store.schema import _REFERENCE_SQLITE, MIGRATIONS


def reference_db(path=":memory:"):
    """The reference's mock_db fixture, verbatim in substance: its three tables, nothing more."""
    conn = sqlite3.connect(path)
    for ddl in _REFERENCE_SQLITE:
        conn.execute(ddl.replace("IF NOT EXISTS ", ""))
    conn.commit()
    return conn


@pytest.fixture
def mock_db():
    conn = reference_db()
    yield conn
    conn.close()


def wf(workflow_id, tokens=5000, cost=0.50, nl="Run backend tests with pytest", **extra):
    return {"workflow_id": workflow_id, "nl_input": nl, "duration_seconds": 120, "error_count": 0,
            "total_tokens": tokens, "actual_cost_total": cost, **extra}


# -- the reference's seven tests ----------------------------------------------------

def test_create_new_pattern(mock_db):
    pattern_id, is_new = record_pattern_occurrence("test:pytest:backend", wf("wf-123"), mock_db)
    assert pattern_id is not None and is_new is True
    pattern = mock_db.execute("SELECT * FROM operation_patterns WHERE id = ?", (pattern_id,)).fetchone()
    assert pattern[1] == "test:pytest:backend"
    assert pattern[3] == 1


def test_update_existing_pattern(mock_db):
    p1, new1 = record_pattern_occurrence("test:pytest:backend", wf("wf-123", nl="Run backend tests"), mock_db)
    p2, new2 = record_pattern_occurrence("test:pytest:backend", wf("wf-456", 5200, 0.52, "Run backend tests again"),
                                         mock_db)
    assert p1 == p2 and new1 is True and new2 is False
    assert mock_db.execute("SELECT occurrence_count FROM operation_patterns WHERE id = ?", (p1,)).fetchone()[0] == 2


def test_missing_workflow_id(mock_db):
    assert record_pattern_occurrence("test:generic:all", {"nl_input": "Run tests", "duration_seconds": 120},
                                     mock_db) == (None, False)


def test_first_workflow_statistics(mock_db):
    mock_db.execute("INSERT INTO operation_patterns (id, pattern_signature, pattern_type, occurrence_count) "
                    "VALUES (1, 'test:pytest:backend', 'test', 1)")
    mock_db.commit()
    update_pattern_statistics(1, wf("wf-123"), mock_db)
    tokens, cost = mock_db.execute("SELECT avg_tokens_with_llm, avg_cost_with_llm FROM operation_patterns WHERE id = 1").fetchone()
    assert tokens == 5000
    assert cost == 0.50


def test_running_average(mock_db):
    # Restated: the reference seeds "2 occurrences averaging 5000" with no workflow behind
    # them; exact accounting needs the first workflow to exist, so it is recorded first.
    record_pattern_occurrence("test:pytest:backend", wf("wf-456", 5000, 0.50), mock_db)
    pid = mock_db.execute("SELECT id FROM operation_patterns").fetchone()[0]
    update_pattern_statistics(pid, wf("wf-789", 6000, 0.60), mock_db)
    tokens, cost = mock_db.execute("SELECT avg_tokens_with_llm, avg_cost_with_llm FROM operation_patterns").fetchone()
    assert tokens == 5500  # average of (5000, 6000)
    assert abs(cost - 0.55) < 0.01


def test_process_single_workflow(mock_db):
    result = process_and_persist_workflow(wf("wf-123", workflow_template=None, error_message=None), mock_db)
    assert result["patterns_detected"] >= 1
    assert "test:pytest:backend" in [row[1] for row in mock_db.execute("SELECT * FROM operation_patterns")]


def test_batch_process_workflows(mock_db):
    result = batch_process_workflows([wf(f"wf-{i}", workflow_template=None, error_message=None) for i in range(5)],
                                     mock_db)
    assert result["total_workflows"] == 5 and result["processed"] == 5
    assert result["total_patterns"] >= 5 and result["errors"] == 0


# -- the reference's defects ----------------------------------------------------------

def counts(conn):
    return dict(conn.execute("SELECT pattern_signature, occurrence_count FROM operation_patterns"))


def test_rerunning_a_workflow_changes_nothing(mock_db):
    """Reference: occurrence_count + 1 on every call, and no unique (pattern, workflow)."""
    for _ in range(3):
        process_and_persist_workflow(wf("wf-1"), mock_db)
        record_pattern_occurrence("test:pytest:backend", wf("wf-1"), mock_db)
    assert counts(mock_db) == {"test:pytest:backend": 1}
    assert mock_db.execute("SELECT COUNT(*) FROM pattern_occurrences").fetchone()[0] == 1
    assert mock_db.execute("SELECT avg_tokens_with_llm FROM operation_patterns").fetchone()[0] == 5000


def test_existing_pattern_path_has_its_characteristics(mock_db):
    """Reference: `characteristics` is unset when the pattern already exists (NameError)."""
    record_pattern_occurrence("test:pytest:backend", wf("wf-1"), mock_db)
    record_pattern_occurrence("test:pytest:backend", wf("wf-2", nl="Run pytest in tests/api/x.py"), mock_db)
    chars = mock_db.execute("SELECT matched_characteristics FROM pattern_occurrences WHERE workflow_id = 'wf-2'").fetchone()[0]
    assert json.loads(chars)["files_mentioned"] == ["tests/api/x.py"]


def test_changed_workflow_replaces_its_contribution(mock_db):
    process_and_persist_workflow(wf("wf-1", 1000, 1.0), mock_db)
    process_and_persist_workflow(wf("wf-2", 3000, 3.0), mock_db)
    process_and_persist_workflow(wf("wf-1", 5000, 5.0), mock_db)  # its cost grew
    n, tokens, cost = mock_db.execute("SELECT occurrence_count, avg_tokens_with_llm, avg_cost_with_llm "
                                      "FROM operation_patterns WHERE pattern_signature = 'test:pytest:backend'").fetchone()
    assert (n, tokens, cost) == (2, 4000, 4.0)
    # Its request is edited: it leaves the pytest pattern and joins another.
    process_and_persist_workflow(wf("wf-1", 5000, 5.0, nl="Typecheck the frontend"), mock_db)
    assert counts(mock_db) == {"test:pytest:backend": 1, "build:typecheck:frontend": 1}
    assert mock_db.execute("SELECT avg_tokens_with_llm FROM operation_patterns "
                           "WHERE pattern_signature = 'test:pytest:backend'").fetchone()[0] == 3000


def test_savings_use_the_monthly_frequency_not_the_all_time_count(mock_db):
    # 6 workflows at $1 spread over 180 days: 1 a month, so savings = 0.95 x 1.
    for i in range(6):
        process_and_persist_workflow(wf(f"wf-{i}", cost=1.0, start_time=f"2026-0{1 + i}-01T00:00:00Z"), mock_db)
    first, last = mock_db.execute("SELECT first_seen_us, last_seen_us FROM operation_patterns").fetchone()
    span_days = (last - first) / 86_400e6
    savings = mock_db.execute("SELECT potential_monthly_savings FROM operation_patterns").fetchone()[0]
    assert savings == pytest.approx(0.95 * 6 * 30 / span_days)
    assert savings < 0.95 * 6 / 4  # the reference would say 0.95 x 6


def test_a_failure_mid_workflow_leaves_nothing_half_written(mock_db):
    """Reference: two commits per pattern. Here: one transaction per workflow."""
    process_and_persist_workflow(wf("wf-1"), mock_db)
    before = (counts(mock_db), mock_db.execute("SELECT * FROM workflow_history").fetchall())
    # A trigger makes the second pattern's link fail after the first was written.
    mock_db.execute("CREATE TRIGGER boom BEFORE INSERT ON pattern_occurrences WHEN NEW.workflow_id = 'wf-1' "
                    "AND (SELECT pattern_signature FROM operation_patterns WHERE id = NEW.pattern_id) = 'test:generic:all' "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    mock_db.commit()
    with pytest.raises(sqlite3.IntegrityError):
        process_and_persist_workflow(wf("wf-1", 9000, 9.0, workflow_template="adw_test_iso"), mock_db)
    assert (counts(mock_db), mock_db.execute("SELECT * FROM workflow_history").fetchall()) == before


def _plans(conn, statements):
    plans = []
    for sql, params in statements:
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
            plans += [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    return plans


def test_one_update_costs_the_same_whatever_the_history(tmp_path):
    """Reference: its confidence query reads all of a pattern's occurrences on every update.
    Here one update runs the same statements with 10 or 2,000 workflows stored, and none of
    them scans a table."""
    traces = {}
    for n in (10, 2000):
        conn = reference_db(str(tmp_path / f"h{n}.db"))
        batch_process_workflows([wf(f"wf-{i}", 1000 + i, start_time=f"2026-01-{1 + i % 28:02d}T00:00:00Z")
                                 for i in range(n)], conn)
        seen = []
        conn.set_trace_callback(seen.append)
        process_and_persist_workflow(wf("wf-5", 7777, 2.0), conn)
        conn.set_trace_callback(None)
        traces[n] = seen
        stmts = [s for s in seen if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT"))
                 and "sqlite_master" not in s and "PRAGMA" not in s.upper()]
        plans = [row[3] for s in stmts for row in conn.execute("EXPLAIN QUERY PLAN " + s)]
        full_scans = [p for p in plans if p.startswith("SCAN") and "USING" not in p]
        assert not full_scans, f"full table scans on update: {full_scans}"
        conn.close()
    assert len(traces[10]) == len(traces[2000])


def test_adopts_a_reference_database_in_place(tmp_path):
    path = str(tmp_path / "ref.db")
    conn = reference_db(path)
    conn.executemany("INSERT INTO workflow_history VALUES (?, ?, ?, ?, ?, ?)",
                     [("wf-a", 0, 120, 0, 1000, 1.0), ("wf-b", 1, 300, 1, 3000, 2.0)])
    conn.execute("INSERT INTO operation_patterns (id, pattern_signature, pattern_type, occurrence_count, "
                 "avg_tokens_with_llm) VALUES (7, 'test:pytest:backend', 'test', 5, 1234)")
    # The reference's double counting: the same link three times.
    conn.executemany("INSERT INTO pattern_occurrences (pattern_id, workflow_id, similarity_score) VALUES (?, ?, 100.0)",
                     [(7, "wf-a"), (7, "wf-a"), (7, "wf-a"), (7, "wf-b")])
    conn.commit()
    assert verify(Ledger.open(wrap_sqlite(conn))) == []
    row = conn.execute("SELECT id, occurrence_count, avg_tokens_with_llm, avg_cost_with_llm FROM operation_patterns").fetchone()
    assert row == (7, 2, 2000, 1.5)  # kept its id, recomputed from its two distinct workflows
    assert conn.execute("SELECT COUNT(*) FROM pattern_occurrences").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM workflow_history").fetchone()[0] == 2
    assert {r[0] for r in conn.execute("SELECT name FROM schema_migrations")} == {m.__name__ for m in MIGRATIONS}
    # The reference's own query works unchanged.
    assert conn.execute("SELECT pattern_signature, occurrence_count, confidence_score FROM operation_patterns "
                        "ORDER BY occurrence_count DESC LIMIT 10").fetchall() == [("test:pytest:backend", 2, 40.0)]  # 10 + 10 (variance 8,100) + 20
    conn.close()


def test_sync_workflow_history_syncs_the_configured_roots(tmp_path):
    from adw_patternd import sync_workflow_history
    from helpers import age, write_config
    from test_sync import make_workflow

    root = tmp_path / "agents"
    make_workflow(root, "s0000001")
    make_workflow(root, "s0000002", nl="Typecheck the frontend")
    for p in root.rglob("*"):
        age(p, 30)  # written a while ago: their fingerprints can be trusted
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"))
    assert sync_workflow_history(cfg) == 2
    assert sync_workflow_history(str(cfg)) == 0
