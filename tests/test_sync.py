"""sync over real folders into a real database (SQLite, and PostgreSQL when configured)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from adw_patternd.sources import parse as parse_module
from adw_patternd.cli import main
from adw_patternd.synth.trees import make_tree
from helpers import (age, append, normalised_dump, pattern_counts, query, result_line, write_config,
                     write_state)


def sync(config_path, *extra) -> int:
    return main(["sync", "--config", str(config_path), *extra])


def make_workflow(root: Path, adw_id: str, nl="Run backend tests with pytest", cost=0.5, agents=("tester",),
                  **state) -> Path:
    folder = root / adw_id
    write_state(folder, nl_input=nl, workflow_template=state.pop("workflow_template", "adw_plan_iso"),
                start_time=state.pop("start_time", "2026-10-01T10:00:00Z"),
                end_time=state.pop("end_time", "2026-10-01T10:02:00Z"), **state)
    for a in agents:
        append(folder / a / "raw_output.jsonl", '{"type":"system","subtype":"init","model":"claude-sonnet-4-5"}\n'
               + result_line(cost=cost))
    return folder


def fresh_sync_dump(tmp_path, roots: dict, name="fresh") -> dict:
    """What a from-scratch sync of the same files into an empty SQLite database holds."""
    folder = tmp_path / name
    folder.mkdir()
    cfg = write_config(folder, roots, str(folder / "fresh.db"))
    sync(cfg)
    return normalised_dump(str(folder / "fresh.db"))


def test_sync_stores_workflows_and_patterns(config_path, root, database, capsys):
    make_workflow(root, "aaaa0001")
    make_workflow(root, "aaaa0002", cost=1.5)
    make_workflow(root, "aaaa0003", nl="Typecheck the frontend with tsc")
    assert sync(config_path) == 0
    assert "new 3" in capsys.readouterr().out
    assert pattern_counts(database) == {"test:pytest:backend": 2, "build:typecheck:frontend": 1}
    avg = query(database, "SELECT avg_cost_with_llm, avg_tokens_with_llm FROM operation_patterns "
                          "WHERE pattern_signature = 'test:pytest:backend'")[0]
    assert avg == (1.0, 150)
    wf = query(database, "SELECT workflow_id, status, duration_seconds, total_tokens, actual_cost_total, model "
                         "FROM workflow_history WHERE adw_id = 'aaaa0001'")[0]
    assert wf == ("main/aaaa0001", "completed", 120, 150, 0.5, "claude-sonnet-4-5")


def test_resync_is_idempotent_and_skips_unchanged(config_path, root, database, capsys, tmp_path):
    make_tree(str(root), 30, seed=3)
    for p in root.rglob("*"):
        age(p, 30)
    assert sync(config_path) == 0
    first = normalised_dump(database)
    capsys.readouterr()
    assert sync(config_path) == 0
    assert "new 0, updated 0, unchanged 30" in capsys.readouterr().out
    assert normalised_dump(database) == first
    assert main(["verify", "--config", str(config_path)]) == 0


def test_no_change_sync_parses_no_file(config_path, root, database, monkeypatch):
    make_tree(str(root), 10, seed=4)
    for p in root.rglob("*"):
        age(p, 30)
    sync(config_path)
    parsed = []
    real = parse_module.decode_json_object
    monkeypatch.setattr(parse_module, "decode_json_object", lambda *a, **k: parsed.append(a[0]) or real(*a, **k))
    assert sync(config_path) == 0
    assert parsed == []


def test_changed_workflows_replace_their_contribution(config_path, root, database, tmp_path):
    a = make_workflow(root, "bbbb0001", cost=1.0)
    make_workflow(root, "bbbb0002", cost=3.0)
    sync(config_path)
    # cost grows: the tester runs again (a retry), status moves on, then the request is edited
    append(a / "tester" / "raw_output.jsonl", result_line(cost=2.0))
    sync(config_path)
    row = query(database, "SELECT occurrence_count, avg_cost_with_llm FROM operation_patterns "
                          "WHERE pattern_signature = 'test:pytest:backend'")[0]
    assert row == (2, 3.0)  # (1 + 2 + 3) / 2
    assert query(database, "SELECT retry_count FROM workflow_history WHERE adw_id = 'bbbb0001'")[0][0] == 1
    write_state(a, nl_input="Typecheck the frontend with tsc", workflow_template="adw_plan_iso",
                start_time="2026-10-01T10:00:00Z", end_time="2026-10-01T10:02:00Z")
    sync(config_path)
    assert pattern_counts(database) == {"test:pytest:backend": 1, "build:typecheck:frontend": 1}
    assert normalised_dump(database) == fresh_sync_dump(tmp_path, {"main": root})
    assert main(["verify", "--config", str(config_path)]) == 0


def test_growing_output_is_read_from_the_last_offset(config_path, root, database):
    folder = make_workflow(root, "cccc0001", cost=1.0)
    out = folder / "tester" / "raw_output.jsonl"
    append(out, '{"type":"assistant","message":{"id":"m0","content":[{"type":"text","text":"working"}]}}\n')
    sync(config_path)
    offset = query(database, "SELECT offset_bytes FROM agent_outputs")[0][0]
    assert offset == out.stat().st_size
    append(out, '{"type":"assistant","message":{"id":"m"}}\n' + result_line(cost=2.0) + '{"type":"resu')
    sync(config_path)
    row = query(database, "SELECT results, cost_nanos, offset_bytes FROM agent_outputs")[0]
    assert row[0] == 2 and row[1] == 3_000_000_000  # 1.0 from the first read + 2.0 appended
    # The unfinished last line is not read yet: the offset stops before it.
    assert row[2] == out.stat().st_size - len('{"type":"resu')
    # An already-read result line rewritten in place (same length, the file grown since): a
    # run's cost is in that line, so the reader notices and reads the file again from the start.
    data = out.read_bytes()
    out.write_bytes(data.replace(b'"total_cost_usd": 1.0', b'"total_cost_usd": 7.0') + b'\n')
    sync(config_path)
    row = query(database, "SELECT results, cost_nanos FROM agent_outputs")[0]
    assert row[0] == 2 and row[1] == 9_000_000_000


def test_output_rewritten_in_place_is_read_again_from_the_start(config_path, root, database):
    folder = make_workflow(root, "cccc0003", cost=1.0)
    sync(config_path)
    out = folder / "tester" / "raw_output.jsonl"
    with open(out, "w") as f:  # truncated and rewritten, longer than before: same inode
        f.write(result_line(cost=4.0) + result_line(cost=5.0, text="Done again, at more length."))
    sync(config_path)
    assert query(database, "SELECT results, cost_nanos FROM agent_outputs")[0] == (2, 9_000_000_000)


def test_replaced_output_file_is_read_again_from_the_start(config_path, root, database):
    folder = make_workflow(root, "cccc0002", cost=1.0)
    sync(config_path)
    out = folder / "tester" / "raw_output.jsonl"
    tmp = out.with_suffix(".new")
    tmp.write_text(result_line(cost=4.0))
    os.replace(tmp, out)  # a new inode
    sync(config_path)
    assert query(database, "SELECT results, cost_nanos FROM agent_outputs")[0] == (1, 4_000_000_000)


def test_deleted_folder_keeps_its_history(config_path, root, database, tmp_path):
    make_workflow(root, "dddd0001")
    make_workflow(root, "dddd0002")
    sync(config_path)
    shutil.rmtree(root / "dddd0001")
    sync(config_path)
    assert pattern_counts(database) == {"test:pytest:backend": 2}
    cfg = write_config(tmp_path, {"main": root}, database, drop_deleted_workflows=True)
    sync(cfg)
    assert pattern_counts(database) == {"test:pytest:backend": 1}
    assert main(["verify", "--config", str(cfg)]) == 0


def test_verify_catches_and_repairs_a_corrupted_statistic(config_path, root, database, capsys):
    make_tree(str(root), 12, seed=5)
    sync(config_path)
    conn_sql = "UPDATE operation_patterns SET avg_cost_with_llm = avg_cost_with_llm + 1, occurrence_count = 99 " \
               "WHERE id = (SELECT MIN(id) FROM operation_patterns WHERE occurrence_count > 0)"
    from helpers import connect
    conn = connect(database)
    conn.execute(conn_sql)
    if hasattr(conn, "commit"):
        conn.commit()
    conn.close()
    capsys.readouterr()
    assert main(["verify", "--config", str(config_path)]) == 1
    out = capsys.readouterr().out
    assert "occurrence_count stored 99" in out and "avg_cost_with_llm stored" in out
    assert main(["verify", "--repair", "--config", str(config_path)]) == 0
    assert main(["verify", "--config", str(config_path)]) == 0


@pytest.mark.parametrize("content, reason", [
    (b'{"adw_id": "x", "nl_input": "Run te', "truncated JSON"),
    (b"", "empty file"),
    (b"not json at all", "not valid JSON"),
    (b'{"nl_input": "caf\xe9"}', "not UTF-8"),
    (b'["a", "list"]', "expected a JSON object"),
    (b'{"nl_input": ["a", "list"]}', "field 'nl_input' should be text"),
    (b'{"start_time": {"a": 1}}', "field 'start_time' should be a time"),
    (b'{"nl_input": "x", "pad": "' + b"y" * 5000 + b'"}', "exceeds max_file_bytes"),
    (b'{"cost": NaN}', "NaN is not allowed"),
])
def test_bad_state_file_keeps_last_good_data(tmp_path, root, database, content, reason, capsys):
    cfg = write_config(tmp_path, {"main": root}, database, max_file_bytes=4096)
    bad = make_workflow(root, "eeee0001", cost=1.0)
    make_workflow(root, "eeee0002", cost=3.0)
    assert sync(cfg) == 0
    before = normalised_dump(database)
    (bad / "adw_state.json").write_bytes(content)
    append(bad / "tester" / "raw_output.jsonl", result_line(cost=50.0))
    make_workflow(root, "eeee0003", cost=5.0)  # the others are still processed
    capsys.readouterr()
    assert sync(cfg) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "eeee0001" in line]
    assert len(lines) == 1 and reason in lines[0] and "adw_state.json" in lines[0], err
    after = normalised_dump(database)
    assert [w for w in after["workflow_history"] if w[0] == "main/eeee0001"] == \
        [w for w in before["workflow_history"] if w[0] == "main/eeee0001"]
    assert pattern_counts(database) == {"test:pytest:backend": 3}
    assert query(database, "SELECT avg_cost_with_llm FROM operation_patterns")[0][0] == 3.0  # (1 + 3 + 5) / 3


def test_symlink_outside_the_root_is_not_followed(config_path, root, database, tmp_path, capsys):
    """A linked workflow folder or file leading out of the root is refused (and counted as failed)."""
    outside = tmp_path / "outside"
    make_workflow(outside, "ffff0001", cost=9.0)
    os.symlink(outside / "ffff0001", root / "ffff0001")
    make_workflow(root, "ffff0002")
    os.symlink(outside / "ffff0001" / "adw_state.json", root / "ffff0002" / "linked.json")
    (root / "ffff0003").mkdir()
    os.symlink(outside / "ffff0001" / "adw_state.json", root / "ffff0003" / "adw_state.json")
    assert sync(config_path) == 1
    assert [r[0] for r in query(database, "SELECT adw_id FROM workflow_history WHERE revision > 0")] == ["ffff0002"]
    assert "symlink leads outside the root" in capsys.readouterr().err


def test_symlink_inside_the_root_is_followed(config_path, root, database):
    make_workflow(root, "gggg0001")
    (root / "gggg0002").mkdir()
    os.symlink(root / "gggg0001" / "adw_state.json", root / "gggg0002" / "adw_state.json")
    sync(config_path)
    assert pattern_counts(database) == {"test:pytest:backend": 2}  # the linked state file counts for both


def test_two_roots_with_the_same_adw_id_are_two_workflows(tmp_path, database):
    r1, r2 = tmp_path / "host1", tmp_path / "host2"
    make_workflow(r1, "12345678", cost=1.0)
    make_workflow(r2, "12345678", cost=3.0)
    cfg = write_config(tmp_path, {"host1": r1, "host2": r2}, database)
    sync(cfg)
    assert pattern_counts(database) == {"test:pytest:backend": 2}
    assert sorted(r[0] for r in query(database, "SELECT workflow_id FROM workflow_history")) == \
        ["host1/12345678", "host2/12345678"]


def test_field_variants_of_older_generations(config_path, root, database):
    folder = root / "hhhh0001"
    write_state(folder, workflow="adw_test_iso", model="opus", issue_number=42, nl_input=None,
                branch_name="feat-issue-42-adw-hhhh0001-run-backend-tests", start_time="2026-10-01 10:00:00",
                end_time=1790000000)
    append(folder / "tester" / "raw_output.jsonl",
           result_line(cost=None, tokens=(1000, 0, 0, 1000), modelUsage={"claude-opus-4-1-20250805": {}})
           + result_line(cost=None, cost_usd=0.25, is_error=True, text="2 tests failed"))
    (folder / "error.log").write_text("boom\n")
    sync(config_path)
    row = query(database, "SELECT workflow_template, model, issue_number, status, error_count, retry_count, "
                          "cost_nanos, error_message, start_time FROM workflow_history")[0]
    # 1000 x $15 + 1000 x $75 per million = $0.09, plus the reported $0.25
    assert row == ("adw_test_iso", "opus", "42", "failed", 2, 1, 340_000_000, "2 tests failed",
                   "2026-10-01T10:00:00.000000Z")
    # nl_input is null: the branch slug stands in ("run backend tests")
    assert set(pattern_counts(database)) == {"test:generic:backend", "test:pytest:backend", "test:generic:all"}


def test_patterns_report_formats(config_path, root, database, capsys):
    make_tree(str(root), 20, seed=6)
    sync(config_path)
    capsys.readouterr()
    assert main(["patterns", "--config", str(config_path), "--json", "--sort", "occurrences", "--limit", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3
    assert {"pattern_signature", "occurrence_count", "avg_cost_with_llm", "potential_monthly_savings",
            "confidence_score", "first_seen", "last_seen"} <= set(rows[0])
    assert [r["occurrence_count"] for r in rows] == sorted((r["occurrence_count"] for r in rows), reverse=True)
    assert main(["patterns", "--config", str(config_path), "--csv"]) == 0
    csv_out = capsys.readouterr().out.splitlines()
    assert csv_out[0].startswith("id,pattern_signature,")
    assert main(["patterns", "--config", str(config_path)]) == 0
    table = capsys.readouterr().out
    assert "savings/month" in table and "confidence" in table


def test_sync_twice_from_the_shipped_examples(tmp_path):
    examples = Path(__file__).parent.parent / "examples" / "agents"
    cfg = write_config(tmp_path, {"example": examples}, str(tmp_path / "ex.db"))
    assert sync(cfg) == 0
    first = normalised_dump(str(tmp_path / "ex.db"))
    assert len(first["workflow_history"]) >= 10 and len(first["operation_patterns"]) >= 4
    assert sync(cfg) == 0
    assert normalised_dump(str(tmp_path / "ex.db")) == first


def test_the_seed_success_criteria(tmp_path, database):
    """Phase 1.3's success criteria, on the shipped sample tree: patterns persisted,
    occurrences linked, statistics calculated, sync integration, idempotent."""
    examples = Path(__file__).parent.parent / "examples" / "agents"
    cfg = write_config(tmp_path, {"example": examples}, database)
    assert sync(cfg) == 0
    patterns = query(database, "SELECT id, occurrence_count, avg_tokens_with_llm, avg_cost_with_llm, "
                               "confidence_score, potential_monthly_savings FROM operation_patterns")
    assert patterns  # persisted
    links = query(database, "SELECT pattern_id, COUNT(*) FROM pattern_occurrences GROUP BY pattern_id")
    assert dict(links) == {p[0]: p[1] for p in patterns if p[1]}  # occurrences linked, one per workflow
    assert all(p[2] > 0 and p[3] > 0 and p[4] >= 10 and p[5] > 0 for p in patterns if p[1])  # statistics
    before = (query(database, "SELECT COUNT(*) FROM operation_patterns"),
              query(database, "SELECT COUNT(*) FROM pattern_occurrences"), normalised_dump(database))
    assert sync(cfg) == 0 and main(["sync", "--config", str(cfg)]) == 0  # idempotent
    assert (query(database, "SELECT COUNT(*) FROM operation_patterns"),
            query(database, "SELECT COUNT(*) FROM pattern_occurrences"), normalised_dump(database)) == before


_VICTIM = None  # the workflow whose reading worker is killed (set before the workers fork)


def _prepare_or_die(job):
    from adw_patternd import sync_workers as sync_module

    if any(adw_id == _VICTIM for _, adw_id, _ in job):
        os.kill(os.getpid(), 9)  # SIGKILL: what the OOM killer sends
    return sync_module._worker_prepare_real(job)


def test_sync_survives_a_reading_worker_killed_mid_run(tmp_path, monkeypatch, capsys):
    """The OOM killer takes a worker: its batch is read again in the sync's own process."""
    global _VICTIM
    from adw_patternd import sync_workers as sync_module

    root = tmp_path / "agents"
    make_tree(str(root), 40, seed=12, filler=(150, 400))
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"), sync_batch_size=8)
    _VICTIM = sorted(os.listdir(root))[9]  # in the second batch
    monkeypatch.setattr(sync_module, "_worker_prepare_real", sync_module._worker_prepare, raising=False)
    monkeypatch.setattr(sync_module, "_worker_prepare", _prepare_or_die)
    monkeypatch.setattr(sync_module, "WORKER_TIMEOUT_S", 3)
    assert sync(cfg) == 0
    captured = capsys.readouterr()
    assert "new 40" in captured.out
    assert "gave no answer" in captured.err
    assert main(["verify", "--config", str(cfg)]) == 0


def test_a_file_caught_mid_write_is_read_again_before_it_fails(tmp_path, root, database, capsys):
    """sync reads a state file half-written (an agent rewriting it whole): a moment later it
    reads it again, and the workflow counts, with no warning and exit 0. Here the writer
    finishes while the sync reports its progress, before the pause."""
    from adw_patternd.config import load_config
    from adw_patternd.engine import Engine
    from adw_patternd.store import open_ledger
    from adw_patternd.sync import Syncer

    cfg = write_config(tmp_path, {"main": root}, database)
    make_workflow(root, "ffff0001", cost=2.0)
    state = root / "ffff0001" / "adw_state.json"
    whole = state.read_bytes()
    state.write_bytes(whole[: len(whole) // 2])
    make_workflow(root, "ffff0002", cost=4.0)
    config = load_config(str(cfg))
    with open_ledger(config) as ledger:
        summary = Syncer(Engine(config, ledger)).run(progress=lambda done, total: state.write_bytes(whole))
    assert (summary.new, summary.failed) == (2, 0), summary.line()
    assert "truncated JSON" not in capsys.readouterr().err
    assert pattern_counts(database) == {"test:pytest:backend": 2}
    assert main(["verify", "--files", "--config", str(cfg)]) == 0


def test_a_file_still_half_written_after_the_pauses_fails_once(tmp_path, root, database, capsys, monkeypatch):
    from adw_patternd import sync as sync_module

    monkeypatch.setattr(sync_module, "TRANSIENT_PAUSES_S", (0.01, 0.01))
    cfg = write_config(tmp_path, {"main": root}, database)
    make_workflow(root, "ffff0003")
    state = root / "ffff0003" / "adw_state.json"
    state.write_bytes(state.read_bytes()[:20])
    assert sync(cfg) == 1
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if "truncated JSON" in line and "ffff0003" in line], captured.err
    assert sum("truncated JSON" in line for line in captured.err.splitlines()) == 1, captured.err
    assert "failed 1" in captured.out
