"""Money is integer nanodollars in every stored figure (issue 31): each reported USD amount
(a result line's total_cost_usd, an entry's costUSD) becomes nanodollars once, where it is
read, and only integers are summed; a dollar figure is a division for display. So a session
read in appends, as the daemon reads a resumed session, stores exactly what one read of the
whole files stores: every column of every table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.sources.transcript import result_run
from helpers import normalised_dump, query, write_config

SONNET = "claude-sonnet-4-5-20250929"
# Costs that, summed as floats in one order or another, differ in the last digit
COSTS = (0.0320291, 0.032, 0.1, 0.2, 0.30000000000000004, 1e-9, 0.0000003)


def _entry(n: int, ts: str, **extra) -> dict:
    usage = {"input_tokens": 7 + n, "cache_creation_input_tokens": 1000 + n, "cache_read_input_tokens": 3000,
             "output_tokens": 11 * n, "cache_creation": {"ephemeral_5m_input_tokens": 400,
                                                         "ephemeral_1h_input_tokens": 600 + n}}
    block = {"type": "tool_use", "id": f"toolu_{n}", "name": "Bash", "input": {"command": "uv run pytest"}}
    return {"type": "assistant", "timestamp": ts, "isSidechain": False, "requestId": f"req_{n}",
            "sessionId": "resumed", "message": {"id": f"msg_{n}", "model": SONNET, "role": "assistant",
                                                "content": [block], "stop_reason": "tool_use", "usage": usage},
            **extra}


def _session_lines() -> list[str]:
    """A session run, then resumed twice (each resume appends a prompt and its responses),
    some entries with costUSD (older Claude Code) and some priced from usage."""
    lines = []
    for run in range(3):
        lines.append(json.dumps({"type": "user", "timestamp": f"2026-11-02T1{run}:00:00.000Z", "isSidechain": False,
                                 "cwd": "/home/dev/shop", "message": {"role": "user", "content": f"run {run}"}}))
        for k in range(6):
            n = run * 10 + k
            ts = f"2026-11-02T1{run}:00:{k + 1:02d}.000Z"
            extra = {"costUSD": COSTS[n % len(COSTS)]} if n % 2 else {}
            lines.append(json.dumps(_entry(n, ts, **extra)))
            lines.append(json.dumps({"type": "user", "timestamp": ts, "isSidechain": False, "message": {
                "role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": "ok"}]}}))
    return lines


def _transcript_lines() -> list[str]:
    """An ADW agent's stream-json: runs whose result lines report float costs."""
    lines = []
    for run, cost in enumerate(COSTS):
        lines.append(json.dumps({"type": "system", "subtype": "init", "session_id": f"s{run}", "model": SONNET}))
        lines.append(json.dumps({"type": "assistant", "session_id": f"s{run}", "message": {
            "id": f"msg_r{run}", "model": SONNET, "content": [{"type": "tool_use", "id": f"toolu_r{run}", "name": "Bash",
                                                             "input": {"command": "git status"}}],
            "usage": {"input_tokens": 5, "output_tokens": 9}}}))
        lines.append(json.dumps({"type": "result", "subtype": "success", "is_error": False, "total_cost_usd": cost,
                                 "session_id": f"s{run}", "duration_ms": 1000, "usage": {"input_tokens": 5,
                                                                                        "output_tokens": 9}}))
    return lines


def _lay_out(base: Path, session: list[str], transcript: list[str]) -> Path:
    project = base / "projects" / "-home-dev-shop"
    project.mkdir(parents=True, exist_ok=True)
    (project / "resumed.jsonl").write_text("".join(x + "\n" for x in session))
    agent = base / "agents" / "a1b2c3d4" / "sdlc_implementor"
    agent.mkdir(parents=True, exist_ok=True)
    (agent / "raw_output.jsonl").write_text("".join(x + "\n" for x in transcript))
    # Recorded times, not the files' mtimes (which differ between the two trees)
    (agent.parent / "adw_state.json").write_text(json.dumps({"adw_id": "a1b2c3d4", "start_time": "2026-11-02T09:00:00Z",
                                                             "end_time": "2026-11-02T09:30:00Z"}))
    return write_config(base, {"adw": base / "agents"}, str(base / "p.db"),
                        claude_projects=[{"path": str(base / "projects")}])


def _dump(database: str) -> dict:
    dump = normalised_dump(database)
    dump["agent_outputs_all"] = query(database, "SELECT * FROM agent_outputs ORDER BY workflow_id, agent_name")
    dump["command_waits"] = query(database, "SELECT * FROM command_waits ORDER BY workflow_id, signature")
    return dump


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_a_session_read_in_appends_stores_what_one_read_stores(tmp_path, parts):
    session, transcript = _session_lines(), _transcript_lines()
    once = _lay_out(tmp_path / "once", session, transcript)
    assert main(["sync", "--config", str(once)]) == 0

    appended = tmp_path / "appended"
    for i in range(1, parts + 1):  # the files as they grew: each sync reads what was appended
        cfg = _lay_out(appended, session[:len(session) * i // parts], transcript[:len(transcript) * i // parts])
        assert main(["sync", "--config", str(cfg)]) == 0
    a, b = _dump(str(appended / "p.db")), _dump(str(tmp_path / "once" / "p.db"))
    for table in a:
        if table == "agent_outputs_all":  # where the files are (device, inode) differs, not what they hold
            a[table] = [r[:2] + r[4:] for r in a[table]]
            b[table] = [r[:2] + r[4:] for r in b[table]]
        assert a[table] == b[table], table
    (cost, actual), = query(str(tmp_path / "once" / "p.db"), "SELECT cost_nanos, actual_cost_total FROM "
                                                             "workflow_history WHERE workflow_id = 'claude/resumed'")
    assert isinstance(cost, int) and actual == cost / 1e9


def test_a_reported_cost_becomes_nanodollars_once_where_it_is_read():
    for cost in COSTS:
        run = result_run({"type": "result", "total_cost_usd": cost}, (), None, [])
        assert type(run.cost_nanos) is int and run.cost_nanos == round(cost * 1e9)
