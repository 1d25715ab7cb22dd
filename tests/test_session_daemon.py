"""The session store, live: a real daemon with a real watchdog observer on a real store.
Lines appended to a person's session, a session that starts while the daemon runs, and a
line appended to an ADW run's session all reach the database; afterwards it equals a fresh
sync and verify --files is clean. Every wait has a deadline; nothing sleeps to assert."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


from adw_patternd.cli import main
from adw_patternd.synth.sessions import INTERACTIVE_PROJECT, make_joined_tree, project_folder
from helpers import append, diff_dumps, normalised_dump, query, wait_for, write_config

FAST = {"debounce_ms": 100, "reconcile_interval_s": 0, "watch": {"sweep_interval_s": 0.5}}
USAGE = {"input_tokens": 11, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 4}


def line(sid: str, mid: str, ts: str) -> str:
    return json.dumps({"type": "assistant", "isSidechain": False, "sessionId": sid, "timestamp": ts,
                       "requestId": "req_" + mid, "message": {"id": mid, "model": "claude-sonnet-4-5-20250929",
                                                              "usage": USAGE, "stop_reason": "end_turn",
                                                              "content": [{"type": "text", "text": "ok"}]}}) + "\n"


def value(database: str, column: str, workflow_id: str):
    rows = query(database, f"SELECT {column} FROM workflow_history WHERE workflow_id = ?", (workflow_id,))
    return rows[0][0] if rows else None


def test_session_lines_reach_the_database_live(tmp_path, database, daemon):
    tree = make_joined_tree(str(tmp_path / "agents"), str(tmp_path / "projects"), 6, interactive=3)
    then = time.time() - 7200
    for p in tmp_path.rglob("*"):
        os.utime(p, (then, then))
    cfg = write_config(tmp_path, {"adw": tmp_path / "agents"}, database,
                       claude_projects=[{"path": str(tmp_path / "projects")}], **FAST)
    d = daemon(cfg)
    wait_for(lambda: "catch-up:" in d.log(), what="catch-up")
    person = tree.interactive[0]
    assert value(database, "total_tokens", f"claude/{person.sid}") == sum(person.usage)

    # A line appended to a person's session.
    append(Path(person.path), line(person.sid, "msg_live1", "2026-12-01T09:00:00.000Z"))
    wait_for(lambda: value(database, "total_tokens", f"claude/{person.sid}") == sum(person.usage) + 15,
             what="the appended line committed")
    assert value(database, "end_time", f"claude/{person.sid}").startswith("2026-12-01T09:00:00")

    # A session that starts while the daemon runs.
    new_sid = "0d0d0d0d-1111-4222-8333-444455556666"
    new = tmp_path / "projects" / project_folder(INTERACTIVE_PROJECT) / f"{new_sid}.jsonl"
    append(new, json.dumps({"type": "user", "sessionId": new_sid, "timestamp": "2026-12-01T10:00:00.000Z",
                            "cwd": INTERACTIVE_PROJECT, "message": {"role": "user", "content": "git diff please"}})
           + "\n" + line(new_sid, "msg_live2", "2026-12-01T10:00:05.000Z"))
    wait_for(lambda: value(database, "request", f"claude/{new_sid}") == "git diff please", what="a new session")

    # A line appended to an ADW run's session: the workflow's end moves, its dollars do not.
    phase = next(w for w in tree.workflows if w.layout == "phase" and tree.adw_sessions[w.adw_id])
    run = max(tree.adw_sessions[phase.adw_id], key=lambda s: s.last)
    cost = value(database, "cost_nanos", f"adw/{phase.adw_id}")
    append(Path(run.path), line(run.sid, "msg_live3", "2026-12-01T11:00:00.000Z"))
    wait_for(lambda: (value(database, "end_time", f"adw/{phase.adw_id}") or "").startswith("2026-12-01T11:00:00"),
             what="the ADW workflow's end follows its session")
    assert value(database, "cost_nanos", f"adw/{phase.adw_id}") == cost
    assert d.stop() == 0
    assert "Traceback" not in d.log()

    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh = write_config(fresh_dir, {"adw": tmp_path / "agents"}, str(fresh_dir / "fresh.db"),
                         claude_projects=[{"path": str(tmp_path / "projects")}])
    assert main(["sync", "--config", str(fresh)]) == 0
    assert diff_dumps(normalised_dump(database), normalised_dump(str(fresh_dir / "fresh.db"))) == []
    assert main(["verify", "--files", "--config", str(cfg)]) == 0
