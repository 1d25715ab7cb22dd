"""Claude Code's session store as a source (issue 18, items 1-4): joined to ADW runs by
session id for times and requests, lost attempts as retries, people's own sessions as
workflows of their own; every message counted once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.synth.sessions import make_joined_tree, project_folder
from helpers import (append, assert_a_second_sync_changes_nothing, open_to_everyone, query, readable_packages,
                     write_config)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def _age(folder: Path, seconds: float = 7200) -> None:
    """Make every file look written ``seconds`` ago: nothing is still running."""
    then = time.time() - seconds
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            os.utime(os.path.join(dirpath, name), (then, then))


@pytest.fixture
def joined(tmp_path, database):
    tree = make_joined_tree(str(tmp_path / "agents"), str(tmp_path / "projects"), 15, interactive=5)
    _age(tmp_path)
    cfg = write_config(tmp_path, {"adw": tmp_path / "agents"}, database,
                       claude_projects=[{"path": str(tmp_path / "projects")}])
    assert main(["sync", "--config", str(cfg)]) == 0
    return tree, cfg, database


def rows(database: str) -> dict[str, dict]:
    cols = ("workflow_id", "status", "start_time", "end_time", "time_source", "request", "request_source",
            "total_tokens", "cost_nanos", "estimated_nanos", "retry_count", "session_runs")
    return {r[0]: dict(zip(cols, r)) for r in query(database, f"SELECT {', '.join(cols)} FROM workflow_history")}


def test_adw_workflows_take_their_times_from_their_sessions(joined):
    tree, _cfg, database = joined
    stored = rows(database)
    for w in tree.workflows:
        sessions = tree.adw_sessions[w.adw_id]
        if not sessions:
            continue
        row = stored[f"adw/{w.adw_id}"]
        assert row["time_source"] == "session", w.adw_id
        assert _time(row["start_time"]) == min(_time(s.first) for s in sessions)
        assert _time(row["end_time"]) == max(_time(s.last) for s in sessions)


def test_lost_attempts_are_retries_and_no_message_counts_twice(joined):
    tree, _cfg, database = joined
    stored = rows(database)
    assert sum(len(v) for v in tree.lost.values()) >= 2, "the tree must hold lost attempts to test them"
    for w in tree.workflows:
        row = stored[f"adw/{w.adw_id}"]
        lost = tree.lost[w.adw_id]
        assert (row["session_runs"], row["retry_count"]) == (len(lost), len(lost)), w.adw_id
        # Each message once: the runs on disk (result line or, cut off, their messages) and
        # the lost attempts' messages. The named sessions add times, never tokens.
        on_disk = sum(sum(t.usage) for plans in w.agents.values() for t in plans[-1].turns)
        assert row["total_tokens"] == on_disk + sum(sum(s.usage) for s in lost), w.adw_id
        expected = w.reported_usd + w.estimated_usd + sum(s.usd for s in lost)
        assert row["cost_nanos"] / 1e9 == pytest.approx(expected, abs=1e-6)
        assert row["estimated_nanos"] / 1e9 == pytest.approx(w.estimated_usd + sum(s.usd for s in lost), abs=1e-6)
    # ... and across the whole database: every message in the store and the transcripts once.
    total = sum(r["total_tokens"] for r in stored.values())
    everything = (sum(sum(t.usage) for w in tree.workflows for plans in w.agents.values() for t in plans[-1].turns)
                  + sum(sum(s.usage) for lost in tree.lost.values() for s in lost)
                  + sum(sum(s.usage) for s in tree.interactive))
    assert total == everything


def test_a_request_comes_from_the_first_session_when_nothing_better_says_it(joined):
    tree, _cfg, database = joined
    stored = rows(database)
    for w in tree.workflows:
        row = stored[f"adw/{w.adw_id}"]
        if row["request_source"] == "session":
            first = min(tree.adw_sessions[w.adw_id], key=lambda s: s.first)
            assert row["request"] == first.prompt and row["request"].startswith("/")  # a slash command, as it is
    assert any(r["request_source"] == "session" for r in stored.values() if r["workflow_id"].startswith("adw/"))


def test_people_s_own_sessions_are_workflows_with_the_spend_of_their_usage(joined):
    tree, _cfg, database = joined
    stored = rows(database)
    own = {k: v for k, v in stored.items() if k.startswith("claude/")}
    assert set(own) == {f"claude/{s.sid}" for s in tree.interactive}
    for s in tree.interactive:
        row = own[f"claude/{s.sid}"]
        assert row["total_tokens"] == sum(s.usage)
        assert row["cost_nanos"] / 1e9 == pytest.approx(s.usd, abs=1e-6)
        assert row["estimated_nanos"] == row["cost_nanos"]  # priced from usage: an estimate, and marked so
        assert (row["request"], row["request_source"], row["time_source"]) == (s.prompt, "session", "session")
        assert _time(row["start_time"]) == _time(s.first) and _time(row["end_time"]) == _time(s.last)
        last = [json.loads(x) for x in Path(s.path).read_text().splitlines() if x.endswith("}")][-1]
        ended = last["type"] == "assistant" and last["message"]["stop_reason"] == "end_turn"
        assert row["status"] == ("completed" if ended else "interrupted")
    # Their Bash calls are layer-4 occurrences, of the sessions' own workflows.
    linked = {wid for (wid,) in query(database, "SELECT DISTINCT workflow_id FROM pattern_occurrences "
                                                "WHERE substr(workflow_id, 1, 7) = 'claude/'")}
    assert linked and linked <= set(own)


def test_a_second_sync_changes_nothing_and_verify_files_is_clean(joined, capsys):
    _tree, cfg, database = joined
    assert_a_second_sync_changes_nothing(cfg, database, capsys)


def test_an_appended_session_line_is_read_incrementally(joined, capsys):
    tree, cfg, database = joined
    s = next(x for x in tree.interactive if not x.cut_short)
    usage = {"input_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 3}
    append(Path(s.path), json.dumps({"type": "assistant", "isSidechain": False, "sessionId": s.sid,
                                     "timestamp": "2026-12-30T10:00:00.000Z", "requestId": "req_new",
                                     "message": {"id": "msg_new", "model": "claude-sonnet-4-5-20250929",
                                                 "usage": usage, "stop_reason": "end_turn",
                                                 "content": [{"type": "text", "text": "Done."}]}}) + "\n")
    offset_before = query(database, "SELECT offset_bytes FROM agent_outputs WHERE workflow_id = ?",
                          (f"claude/{s.sid}",))[0][0]
    assert main(["sync", "--config", str(cfg)]) == 0
    row = rows(database)[f"claude/{s.sid}"]
    assert row["total_tokens"] == sum(s.usage) + 10
    assert row["end_time"].startswith("2026-12-30T10:00:00")
    offset_after = query(database, "SELECT offset_bytes FROM agent_outputs WHERE workflow_id = ?",
                         (f"claude/{s.sid}",))[0][0]
    assert offset_after == os.path.getsize(s.path) > offset_before
    assert main(["verify", "--files", "--config", str(cfg)]) == 0


def test_a_session_an_adw_run_names_later_leaves_the_people_s_workflows(tmp_path, database):
    """A session first read as a person's own becomes part of the ADW workflow once its
    transcript names it: dropped as its own workflow in the same transaction."""
    tree = make_joined_tree(str(tmp_path / "agents"), str(tmp_path / "projects"), 5, interactive=1)
    phase = next(w for w in tree.workflows if w.layout == "phase")  # its sessions share one project folder
    moved = tmp_path / "held"
    shutil.move(phase.folder, moved)
    _age(tmp_path)
    cfg = write_config(tmp_path, {"adw": tmp_path / "agents"}, database,
                       claude_projects=[{"path": str(tmp_path / "projects")}])
    assert main(["sync", "--config", str(cfg)]) == 0
    sids = {s.sid for s in tree.adw_sessions[phase.adw_id]}
    assert {f"claude/{sid}" for sid in sids} <= set(rows(database))
    shutil.move(moved, phase.folder)
    assert main(["sync", "--config", str(cfg)]) == 0
    stored = rows(database)
    assert not {f"claude/{sid}" for sid in sids} & set(stored)
    assert stored[f"adw/{phase.adw_id}"]["time_source"] == "session"
    assert main(["verify", "--files", "--config", str(cfg)]) == 0


def test_include_sessions_false_leaves_people_s_sessions_out(tmp_path, database):
    tree = make_joined_tree(str(tmp_path / "agents"), str(tmp_path / "projects"), 5, interactive=2)
    cfg = write_config(tmp_path, {"adw": tmp_path / "agents"}, database,
                       claude_projects=[{"path": str(tmp_path / "projects"), "include_sessions": False}])
    assert main(["sync", "--config", str(cfg)]) == 0
    stored = rows(database)
    assert not any(k.startswith("claude/") for k in stored)
    assert all(stored[f"adw/{w.adw_id}"]["time_source"] == "session" for w in tree.workflows
               if tree.adw_sessions[w.adw_id])


def test_bad_session_files_get_one_warning_each_and_the_rest_is_read(tmp_path, capsys):
    tree = make_joined_tree(str(tmp_path / "agents"), str(tmp_path / "projects"), 3, interactive=2)
    people = tmp_path / "projects" / project_folder("/home/dev/shop")
    (people / "not-jsonl.jsonl").write_bytes(b"\x00\x01 binary, not JSON lines\n" * 3)
    bad_time = people / "bad-time.jsonl"
    bad_time.write_text(json.dumps({"type": "user", "timestamp": "yesterday at noon", "sessionId": "bad-time",
                                    "message": {"role": "user", "content": "hello"}}) + "\n")
    os.symlink(tmp_path / "projects", tmp_path / "projects" / "loop")  # a symlink loop under projects/
    second = tmp_path / "second"
    (second / "-elsewhere").mkdir(parents=True)
    shutil.copy(tree.interactive[0].path, second / "-elsewhere")  # a session id that two stores hold
    cfg = write_config(tmp_path, {"adw": tmp_path / "agents"}, str(tmp_path / "p.db"),
                       claude_projects=[{"path": str(tmp_path / "projects")},
                                        {"path": str(second), "name": "laptop"}])
    assert main(["sync", "--config", str(cfg)]) == 1  # one file could not be used: said, and in the exit code
    log = (tmp_path / "daemon.log").read_text()
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert any("not-jsonl.jsonl: not a Claude Code session file: its first line is not JSON" in w for w in warnings)
    assert any("bad-time.jsonl" in w and "'yesterday at noon' does not parse" in w for w in warnings)
    assert any(f"{tree.interactive[0].sid} is also in" in w for w in warnings)
    assert any("loop: a symlink in the session store (not followed)" in w for w in warnings)
    assert "Traceback" not in log
    stored = rows(str(tmp_path / "p.db"))
    assert {f"claude/{s.sid}" for s in tree.interactive} <= set(stored)
    assert not any(k.startswith("laptop/") for k in stored)
    # Said once: a second sync does not repeat the store's problems.
    assert main(["sync", "--config", str(cfg)]) == 1
    assert (tmp_path / "daemon.log").read_text().count("is also in") == 1


def test_a_store_folder_the_service_user_cannot_read_is_one_warning(tmp_path):
    """Run as nobody (root reads everything): one project folder it may not open, then the
    whole store. Each is named once, with the fix; the rest is read and nothing is dropped."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("as root this needs setpriv to run as nobody")
    prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--") if os.geteuid() == 0 else ()
    base = Path(tempfile.mkdtemp(prefix="adw-store-", dir="/tmp"))
    try:
        os.chmod(base, 0o777)
        (base / "env").mkdir()
        os.chmod(base / "env", 0o755)  # not left to the umask: an in-process CLI call set it to 027
        env = readable_packages(base / "env", ("watchdog",))
        tree = make_joined_tree(str(base / "agents"), str(base / "projects"), 3, interactive=2)
        (base / "db").mkdir()
        cfg = write_config(base, {"adw": base / "agents"}, str(base / "db" / "p.db"),
                           claude_projects=[{"path": str(base / "projects")}])
        open_to_everyone(base / "agents", base / "projects", base / "db")
        os.chmod(cfg, 0o644)
        people = base / "projects" / project_folder("/home/dev/shop")
        hidden = sorted(p for p in (base / "projects").iterdir() if p != people)[0]
        hidden.chmod(0)

        def sync() -> subprocess.CompletedProcess:
            return subprocess.run([*prefix, sys.executable, "-m", "adw_patternd", "sync", "--config", str(cfg)],
                                  capture_output=True, text=True, timeout=120, env=env, cwd=base)

        done = sync()
        assert done.returncode == 0, done.stderr
        log = (base / "daemon.log").read_text()
        assert log.count(f"{hidden}: cannot list (Permission denied) (skipped)") == 1
        assert {f"claude/{s.sid}" for s in tree.interactive} <= set(rows(str(base / "db" / "p.db")))
        (base / "projects").chmod(0)
        done = sync()
        assert done.returncode == 0, done.stderr
        log = (base / "daemon.log").read_text()
        assert log.count("cannot list the session store (Permission denied): give the daemon's user read "
                         "access to it") == 1
        assert "Traceback" not in log
        # Its sessions are kept: a store that cannot be read is not a store that was emptied.
        assert {f"claude/{s.sid}" for s in tree.interactive} <= set(rows(str(base / "db" / "p.db")))
    finally:
        for p in (base / "projects", *(base / "projects").glob("*")):
            os.chmod(p, 0o755) if p.is_dir() else None
        shutil.rmtree(base, ignore_errors=True)


def _entry(kind: str, ts: str, message: dict, **extra) -> str:
    return json.dumps({"type": kind, "isSidechain": False, "sessionId": "wait-1", "timestamp": ts,
                       "message": message, **extra}) + "\n"


def _bash_call(tid: str, ts: str, n: int) -> str:
    usage = {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 5}
    return _entry("assistant", ts, {"id": f"msg_w{n}", "model": "claude-sonnet-4-5-20250929", "usage": usage,
                                    "content": [{"type": "tool_use", "id": tid, "name": "Bash",
                                                 "input": {"command": "npx tsc --noEmit"}}]}, requestId=f"req_w{n}")


def _result(tid: str, ts: str) -> str:
    return _entry("user", ts, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid,
                                                            "content": "ok"}]})


def test_show_gives_the_time_agents_waited_on_a_command(tmp_path, database, capsys):
    """Item 5: from a Bash call's entry to its tool_result's, read whole or across appends."""
    store = tmp_path / "projects" / "-home-dev-shop"
    store.mkdir(parents=True)
    session = store / "wait-1.jsonl"
    session.write_text(_entry("user", "2026-11-02T10:00:00.000Z", {"role": "user", "content": "typecheck it"})
                       + _bash_call("toolu_a", "2026-11-02T10:00:01.000Z", 1)
                       + _result("toolu_a", "2026-11-02T10:00:03.000Z")  # 2 s
                       + _bash_call("toolu_b", "2026-11-02T10:01:00.000Z", 2))
    (tmp_path / "agents").mkdir()
    cfg = write_config(tmp_path, {"adw": tmp_path / "agents"}, database,
                       claude_projects=[{"path": str(tmp_path / "projects")}])
    assert main(["sync", "--config", str(cfg)]) == 0
    append(session, _result("toolu_b", "2026-11-02T10:01:04.000Z")  # 4 s, its call read a sync ago
           + _bash_call("toolu_c", "2026-11-02T10:02:00.000Z", 3) + _result("toolu_c", "2026-11-02T10:02:30.000Z"))
    assert main(["sync", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["show", "build:typecheck:all", "--json", "--config", str(cfg)]) == 0
    shown = json.loads(capsys.readouterr().out)["wall_time"]
    assert shown == {"timed_calls": 3, "workflows": 1, "median_s": 4.0, "total_s": 36.0, "median_estimated": False}
    assert main(["show", "build:typecheck:all", "--config", str(cfg)]) == 0
    assert "median 4.0 s, total 36.0 s" in capsys.readouterr().out
    assert main(["verify", "--files", "--config", str(cfg)]) == 0  # the same, read whole
