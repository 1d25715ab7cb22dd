"""Trees as real ADWs leave them: five layouts, most without adw_state.json, git plumbing
agents, Bash calls inside big agents, runs cut off before their result line. Every amount
is checked against what the writer put in the files, computed on its own from the doc's
price table."""

import json
import os
import random
import time
from pathlib import Path

import pytest

from adw_patternd.core.commands import call_signatures, split_commands
from adw_patternd.synth.trees import (Turn, RunPlan, make_real_tree, price_usd, write_layout, write_transcript)
from helpers import append, query, wait_for, write_config
from test_sync import fresh_sync_dump, sync

NANOS = 1e9


def wf_rows(database):
    cols = ("adw_id", "cost_nanos", "estimated_nanos", "unfinished_runs", "status", "request", "request_source",
            "time_source", "start_time", "nl_input")
    rows = query(database, f"SELECT {', '.join(cols)} FROM workflow_history WHERE revision > 0")
    return {r[0]: dict(zip(cols, r)) for r in rows}


def links(database, adw_id):
    rows = query(database, "SELECT p.pattern_signature, o.layer, o.cost_nanos, o.units, o.estimated_nanos "
                           "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
                           "JOIN workflow_history w ON w.workflow_id = o.workflow_id WHERE w.adw_id = ?", (adw_id,))
    return {r[0]: {"layer": r[1], "cost": r[2], "units": r[3], "estimated": r[4]} for r in rows}


def message_tolerance(written) -> int:
    """Each message is priced and rounded to a nano-dollar on its own: allow one per message."""
    return sum(len(p.turns) for plans in written.agents.values() for p in plans) + 1


def test_every_layout_is_stored_with_every_dollar(tmp_path, root, database):
    written = make_real_tree(str(root), 40, seed=3)
    assert {w.layout for w in written} == {"classic", "isolated", "phase", "summary", "bare"}
    assert any(w.unfinished_runs for w in written), "the tree should hold a cut-off run"
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    rows = wf_rows(database)
    assert set(rows) == {w.adw_id for w in written}  # every workflow, with or without a state file
    for w in written:
        row = rows[w.adw_id]
        want = round((w.reported_usd + w.estimated_usd) * NANOS)
        assert abs(row["cost_nanos"] - want) <= message_tolerance(w), (w.layout, w.adw_id)
        assert abs(row["estimated_nanos"] - round(w.estimated_usd * NANOS)) <= message_tolerance(w)
        assert row["unfinished_runs"] == w.unfinished_runs
    assert main_verify(cfg) == 0


def main_verify(cfg) -> int:
    from adw_patternd.cli import main

    return main(["verify", "--config", str(cfg)])


def test_patterns_where_the_money_is(tmp_path, root, database, capsys):
    make_real_tree(str(root), 25, seed=5)
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    from adw_patternd.cli import main

    capsys.readouterr()
    assert main(["patterns", "--config", str(cfg), "--json"]) == 0
    rows = {r["pattern_signature"]: r for r in json.loads(capsys.readouterr().out)}
    for sig in ("git:commit:all", "git:branch:create", "git:pr:create", "classify:issue:all",
                "test:pytest:backend", "build:typecheck:all", "git:diff:summary", "git:status:summary"):
        assert sig in rows, f"{sig} not found in {sorted(rows)}"
        assert rows[sig]["avg_cost_with_llm"] > 0 and rows[sig]["sum_units"] >= rows[sig]["occurrence_count"]
    # Patterns found only in Bash calls are priced from message usage: all of their cost is an estimate.
    for sig in ("git:status:summary", "git:diff:summary"):
        assert rows[sig]["sum_estimated_nanos"] == rows[sig]["sum_cost_nanos"] > 0


def test_agent_roles_cost_their_runs_and_commands_their_share(tmp_path, root):
    """Layer 0: a branch_generator's occurrence costs its run; layer 4: a Bash call costs its
    message's priced usage divided by the message's tool calls."""
    rng = random.Random(1)
    folder = root / "0000abcd"
    sonnet = "claude-sonnet-4-5-20250929"
    branch = RunPlan("s-branch", sonnet, [Turn("m1", sonnet, (10, 100, 2000, 50), ["git checkout -b feat-x"])], 0.0421)
    (folder / "branch_generator").mkdir(parents=True)
    write_transcript(str(folder / "branch_generator" / "raw_output.jsonl"), [branch], rng)
    big = RunPlan("s-build", sonnet, [
        Turn("m2", sonnet, (20, 1000, 30000, 400), ["npx tsc --noEmit"], other_tools=1),  # tsc gets half
        Turn("m3", sonnet, (5, 0, 31000, 90), ["cd app/server && uv run pytest tests/ -q && git status"]),
        Turn("m4", sonnet, (5, 0, 32000, 30), []),
    ], 0.9)
    (folder / "sdlc_implementor").mkdir()
    write_transcript(str(folder / "sdlc_implementor" / "raw_output.jsonl"), [big], rng)
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    got = links(database, "0000abcd")
    assert got["git:branch:create"] == {"layer": "agent", "cost": 42_100_000, "units": 1, "estimated": 0}
    m2 = round(price_usd(sonnet, (20, 1000, 30000, 400)) * NANOS)
    m3 = round(price_usd(sonnet, (5, 0, 31000, 90)) * NANOS)
    assert got["build:typecheck:all"] == {"layer": "command", "cost": m2 // 2, "units": 1, "estimated": m2 // 2}
    # One call, two signatures: each gets the call's whole share.
    assert got["test:pytest:backend"]["cost"] == m3 and got["git:status:summary"]["cost"] == m3
    assert "git:commit:all" not in got
    assert wf_rows(database)["0000abcd"]["cost_nanos"] == 42_100_000 + 900_000_000


def test_cut_off_run_is_estimated_from_unique_messages_and_replaced_by_its_result(tmp_path, root):
    rng = random.Random(2)
    sonnet = "claude-sonnet-4-5-20250929"
    turns = [Turn(f"msg_{i}", sonnet, (10 * i, 500, 20000, 100 + i), ["git diff"], subagent=i == 2) for i in range(1, 4)]
    path = root / "0000cafe" / "builder" / "cc_raw_output.jsonl"
    path.parent.mkdir(parents=True)
    write_transcript(str(path), [RunPlan("s1", sonnet, turns, None, base64_bytes=300_000)], rng)
    # The writer splits each message over several lines with growing output_tokens: only the
    # last line of each id counts, once.
    ids = [json.loads(line)["message"]["id"] for line in path.read_text().splitlines() if '"assistant"' in line]
    assert len(ids) > len(set(ids))
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    estimate = sum(round(price_usd(sonnet, t.usage) * NANOS) for t in turns)
    row = wf_rows(database)["0000cafe"]
    assert (row["cost_nanos"], row["estimated_nanos"], row["unfinished_runs"], row["status"]) == (
        estimate, estimate, 1, "running")
    # The result line arrives: it replaces the estimate.
    append(path, json.dumps({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 1000,
                             "session_id": "s1", "total_cost_usd": 0.75, "usage": {"output_tokens": 400},
                             "modelUsage": {sonnet: {"costUSD": 0.75}}}) + "\n")
    assert sync(cfg) == 0
    row = wf_rows(database)["0000cafe"]
    assert (row["cost_nanos"], row["estimated_nanos"], row["unfinished_runs"], row["status"]) == (
        750_000_000, 0, 0, "completed")


def test_a_run_cut_off_long_ago_is_interrupted(tmp_path, root):
    rng = random.Random(3)
    w = write_layout(str(root), "bare", "0000dead", rng, cut_off=True)
    old = time.time() - 7200
    for dirpath, _dirs, files in os.walk(w.folder):
        for f in files:
            os.utime(os.path.join(dirpath, f), (old, old))
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database, stale_after_s=3600)
    assert sync(cfg) == 0
    row = wf_rows(database)["0000dead"]
    assert row["status"] == "interrupted" and row["time_source"] == "mtime"
    assert row["start_time"].startswith(time.strftime("%Y-%m-%d", time.gmtime(old)))


def test_request_and_time_come_from_what_each_layout_has(tmp_path, root):
    rng = random.Random(4)
    made = {layout: write_layout(str(root), layout, f"{n:08x}", rng, with_state=False)
            for n, layout in enumerate(("classic", "isolated", "phase", "summary", "bare"))}
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    rows = wf_rows(database)
    got = {layout: rows[w.adw_id] for layout, w in made.items()}
    assert (got["classic"]["request"], got["classic"]["request_source"]) == (made["classic"].title, "issue_title")
    # An isolated folder without a state file still has its prompts and its execution logs.
    assert got["isolated"]["request_source"] == "issue_title" and got["isolated"]["time_source"] == "execution_log"
    assert got["isolated"]["start_time"] == "2025-10-17T19:04:18.000000Z"
    assert (got["phase"]["request"], got["phase"]["request_source"], got["phase"]["time_source"]) == (
        made["phase"].title, "task_description", "state")
    assert (got["summary"]["request"], got["summary"]["request_source"], got["summary"]["time_source"]) == (
        made["summary"].title, "prompt", "mtime")
    assert got["bare"]["request_source"] is None and got["bare"]["time_source"] == "mtime"


def test_a_slug_is_a_request_but_never_nl_input(tmp_path, root):
    folder = root / "051a26d5"
    folder.mkdir()
    (folder / "adw_state.json").write_text(json.dumps({
        "adw_id": "051a26d5", "issue_number": "1", "branch_name": "bug-issue-1-adw-051a26d5-fix-tile-size-stability",
        "plan_file": None, "issue_class": "/bug"}))
    database = str(tmp_path / "p.db")
    assert sync(write_config(tmp_path, {"main": root}, database)) == 0
    row = wf_rows(database)["051a26d5"]
    assert (row["request"], row["request_source"], row["nl_input"]) == ("fix tile size stability", "slug", None)


def test_a_model_without_a_price_is_a_warning_naming_it_and_the_key(tmp_path, root):
    path = root / "0000beef" / "planner" / "cc_raw_output.jsonl"
    append(path, json.dumps({"type": "assistant", "message": {"id": "m1", "model": "claude-nova-9", "content": [],
                                                              "usage": {"input_tokens": 1000, "output_tokens": 10}}})
           + "\n")
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    log = (tmp_path / "daemon.log").read_text()
    assert "claude-nova-9" in log and "prices:" in log and str(path.parent.parent) in log
    write_config(tmp_path, {"main": root}, database,
                 prices={"claude-nova": {"input": 2, "output": 10, "cache_write": 2.5, "cache_read": 0.2}})
    assert sync(cfg) == 0  # a new price re-derives: the estimate is no longer zero
    assert wf_rows(database)["0000beef"]["cost_nanos"] == 2_000_000 + 100_000


def test_bad_new_files_warn_once_and_keep_the_last_good_data(tmp_path, root, caplog):
    rng = random.Random(6)
    w = write_layout(str(root), "summary", "0000f00d", rng)
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    good = wf_rows(database)["0000f00d"]
    summary = Path(w.folder) / "workflow_summary.json"
    summary.write_text('{"workflow": "chore_implement", "prompt": [1, 2')
    assert sync(cfg) == 1
    assert wf_rows(database)["0000f00d"] == good
    assert "workflow_summary.json" in (tmp_path / "daemon.log").read_text()
    # Junk inside a transcript: a line that is not JSON, a Bash call whose command is a number,
    # a 2 MB base64 line. Each is skipped with a note; the rest is read.
    summary.write_text(json.dumps({"workflow": "chore_implement", "prompt": "Fix it"}))
    transcript = Path(w.folder) / "planner" / "cc_raw_output.jsonl"
    append(transcript, '{"type":"assistant","message":{"id":"bad" \n')
    append(transcript, json.dumps({"type": "assistant", "message": {"id": "x1", "model": "claude-sonnet-4-5",
           "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": 42}}],
           "usage": {"input_tokens": 100}}}) + "\n")
    append(transcript, json.dumps({"type": "user", "message": {"content": [{"type": "tool_result", "content": [
        {"type": "image", "source": {"type": "base64", "data": "A" * 2_000_000}}]}]}}) + "\n")
    assert sync(cfg) == 0
    log = (tmp_path / "daemon.log").read_text()
    assert "is not valid JSON" in log and "has no command text" in log
    assert wf_rows(database)["0000f00d"]["unfinished_runs"] == 1


def test_the_array_copy_is_never_read(tmp_path, root):
    rng = random.Random(7)
    w = write_layout(str(root), "classic", "0000aaaa", rng)
    for agent in w.agents:
        (Path(w.folder) / agent / "raw_output.json").write_text("[not json at all")
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    assert "raw_output.json:" not in (tmp_path / "daemon.log").read_text()
    assert abs(wf_rows(database)["0000aaaa"]["cost_nanos"] - round(w.reported_usd * NANOS)) <= 1


def test_synced_twice_nothing_changes(tmp_path, root):
    make_real_tree(str(root), 15, seed=8)
    for dirpath, _dirs, files in os.walk(root):  # past the racy window
        for f in files:
            t = time.time() - 30
            os.utime(os.path.join(dirpath, f), (t, t))
    first = fresh_sync_dump(tmp_path, {"main": root}, "a")
    second = fresh_sync_dump(tmp_path, {"main": root}, "b")
    assert first == second


@pytest.mark.parametrize("command, expected", [
    ("cd app/server && uv run pytest tests/ -q", ("test:pytest:backend",)),
    ("npx tsc --noEmit 2>&1", ("build:typecheck:all",)),
    ("cd app/client && npm run build 2>&1 | tail -20", ("build:bundle:frontend",)),
    ("git add -A && git commit -m \"$(cat <<'EOF'\nfix: run npm test && pytest\nEOF\n)\"", ("git:commit:all",)),
    ("git commit -m 'multi\nline; npm install && pytest'", ("git:commit:all",)),
    ("FOO=1 BAR=2 timeout 60 sudo npx vitest run src/ui/a.test.ts", ("test:vitest:frontend",)),
    ("cd C:\\proj\\web && npx eslint .", ("format:eslint:all",)),
    ("git checkout main && git pull && git checkout -b feat-1", ("git:pull:all", "git:branch:create")),
    ("env CI=1 .venv/bin/pytest -x; git status || git diff", ("test:pytest:all", "git:status:summary",
                                                                  "git:diff:summary")),
    ("echo \"unterminated && npm ci", ()),
    ("ls -la && cat README.md", ()),
])
def test_command_splitting(command, expected):
    assert call_signatures(command) == expected


def test_cd_applies_to_the_rest_of_the_call_only():
    assert split_commands("cd app/server && pytest; cd ../client\nvitest") == [
        ("app/server", ("pytest",)), ("../client", ("vitest",))]


# -- the daemon, live --------------------------------------------------------------------------

FAST = {"debounce_ms": 100, "reconcile_interval_s": 0, "watch": {"sweep_interval_s": 0.5}}


@pytest.fixture
def live_daemon(tmp_path, root, database):
    from daemon_proc import DaemonProcess

    d = DaemonProcess(write_config(tmp_path, {"main": root}, database, **FAST))
    wait_for(lambda: "catch-up:" in d.log(), what="daemon ready")
    yield d
    if d.alive():
        assert d.stop() == 0


def test_the_daemon_live_equals_a_fresh_sync(tmp_path, root, database, live_daemon):
    from helpers import diff_dumps, normalised_dump

    written = make_real_tree(str(root), 20, seed=9)
    n = len(written)
    wait_for(lambda: len(wf_rows(database)) == n, timeout=30, what=f"{n} workflows stored")

    def same():
        diff = diff_dumps(normalised_dump(database), fresh_sync_dump(tmp_path, {"main": root},
                                                                    f"fresh-{time.monotonic_ns()}"))
        return not diff or None

    wait_for(same, timeout=30, interval=0.5, what="the live database to equal a fresh sync")


def test_a_running_agent_grows_its_estimate_live_then_its_result_replaces_it(root, database, live_daemon):
    sonnet = "claude-sonnet-4-5-20250929"
    path = root / "0000babe" / "sdlc_implementor" / "raw_output.jsonl"
    append(path, json.dumps({"type": "system", "subtype": "init", "session_id": "s1", "model": sonnet}) + "\n")
    total = 0
    for i in range(1, 6):
        usage = (10, 100, 5000 * i, 40 * i)
        total += round(price_usd(sonnet, usage) * NANOS)
        append(path, json.dumps({"type": "assistant", "session_id": "s1", "message": {
            "id": f"m{i}", "model": sonnet, "content": [{"type": "tool_use", "id": f"t{i}", "name": "Bash",
                                                        "input": {"command": "npx tsc --noEmit"}}],
            "usage": {"input_tokens": usage[0], "cache_creation_input_tokens": usage[1],
                      "cache_read_input_tokens": usage[2], "output_tokens": usage[3]}}}) + "\n")
        wait_for(lambda t=total: (wf_rows(database).get("0000babe") or {}).get("estimated_nanos") == t,
                 what=f"the estimate after message {i}")
    assert wf_rows(database)["0000babe"]["status"] == "running"
    append(path, json.dumps({"type": "result", "subtype": "success", "is_error": False, "session_id": "s1",
                             "duration_ms": 9000, "total_cost_usd": 0.5}) + "\n")
    wait_for(lambda: (wf_rows(database)["0000babe"]["cost_nanos"], wf_rows(database)["0000babe"]["estimated_nanos"])
             == (500_000_000, 0), what="the result line to replace the estimate")
    assert wf_rows(database)["0000babe"]["status"] == "completed"
    assert links(database, "0000babe")["build:typecheck:all"]["units"] == 5


def test_role_and_command_rules_extend_from_config(tmp_path, root):
    rng = random.Random(13)
    sonnet = "claude-sonnet-4-5-20250929"
    folder = root / "0000c0de"
    for agent, command in (("prod_releaser_2", "git push --tags"), ("builder", "cd api && make test")):
        (folder / agent).mkdir(parents=True)
        write_transcript(str(folder / agent / "cc_raw_output.jsonl"),
                         [RunPlan("s-" + agent, sonnet, [Turn("m-" + agent, sonnet, (1, 2, 3, 4), [command])], 0.01)],
                         rng)
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database, detection={
        "role_rules": [{"agent": "*_releaser", "signature": "deploy:release:all"}],
        "command_rules": [{"starts": ["make test"], "signature": "test:generic:<t>"}]})
    assert sync(cfg) == 0
    got = links(database, "0000c0de")
    assert got["deploy:release:all"]["layer"] == "agent" and got["test:generic:backend"]["layer"] == "command"
    assert "git:push:all" not in got  # the releaser's own commands are its role's
