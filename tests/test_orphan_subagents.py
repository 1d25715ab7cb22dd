"""A session whose main file is gone while its <session>/subagents/ files remain (a store
copied or pruned by hand, or the main file not yet written) is its subagent files, under
the folder's session id, and their spend counts (claude-session-store.md; issue 31)."""

from __future__ import annotations

import json
from pathlib import Path

from adw_patternd.cli import main
from adw_patternd.core.pricing import DEFAULT_PRICES, cost_nanos
from adw_patternd.sources.claude_sessions import SessionIndex, list_store
from adw_patternd.config import load_config
from helpers import query, write_config

MODEL = "claude-haiku-4-5-20251001"


def _lines(sid: str, agent: str, n: int, sidechain: bool) -> tuple[list[str], int, int]:
    """A conversation of ``n`` responses: (lines, tokens, nanodollars)."""
    lines = [json.dumps({"type": "user", "timestamp": "2026-11-02T10:00:00.000Z", "isSidechain": sidechain,
                         "sessionId": sid, "agentId": agent, "cwd": "/home/dev/shop",
                         "message": {"role": "user", "content": f"look around ({agent})"}})]
    tokens = nanos = 0
    for i in range(n):
        usage = {"input_tokens": 10 + i, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 3000,
                 "output_tokens": 40}
        lines.append(json.dumps({
            "type": "assistant", "timestamp": f"2026-11-02T10:00:{i + 1:02d}.000Z", "isSidechain": sidechain,
            "sessionId": sid, "agentId": agent, "requestId": f"req_{agent}_{i}",
            "message": {"id": f"msg_{agent}_{i}", "model": MODEL, "role": "assistant", "usage": usage,
                        "content": [{"type": "text", "text": "found it"}],
                        "stop_reason": "end_turn" if i == n - 1 else "tool_use"}}))
        tokens += 10 + i + 200 + 3000 + 40
        nanos += cost_nanos(MODEL, 10 + i, 40, 200, 3000, DEFAULT_PRICES)
    return lines, tokens, nanos


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(x + "\n" for x in lines))


def _store(tmp_path: Path) -> tuple[Path, dict[str, tuple[int, int]]]:
    project = tmp_path / "projects" / "-home-dev-shop"
    expected = {}
    # Only its subagents' files: the session is them
    tokens = nanos = 0
    for agent, n in (("a1", 3), ("a2", 2)):
        lines, t, c = _lines("orphan", agent, n, sidechain=True)
        _write(project / "orphan" / "subagents" / f"agent-{agent}.jsonl", lines)
        tokens, nanos = tokens + t, nanos + c
    expected["orphan"] = (tokens, nanos)
    # A whole session beside it: its main file and one subagent
    main_lines, t1, c1 = _lines("whole", "main", 2, sidechain=False)
    sub_lines, t2, c2 = _lines("whole", "b1", 2, sidechain=True)
    _write(project / "whole.jsonl", main_lines)
    _write(project / "whole" / "subagents" / "agent-b1.jsonl", sub_lines)
    expected["whole"] = (t1 + t2, c1 + c2)
    expected["whole subagents"] = (t2, c2)
    # A folder with no session files in it is no session
    (project / "empty" / "subagents").mkdir(parents=True)
    (project / "memory").mkdir()
    return tmp_path / "projects", expected


def _sessions(database: str) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in query(database, "SELECT workflow_id, total_tokens, cost_nanos, status "
                                                 "FROM workflow_history")}


def test_a_sessions_subagent_files_without_its_main_file_are_the_session(tmp_path, database):
    store, expected = _store(tmp_path)
    assert [(sid, orphan) for _p, sid, _path, orphan in list_store(str(store), [])] == [
        ("orphan", True), ("whole", False)]
    cfg = write_config(tmp_path, {}, database, claude_projects=[{"path": str(store)}])
    assert main(["sync", "--config", str(cfg)]) == 0
    got = _sessions(database)
    assert set(got) == {"claude/orphan", "claude/whole"}
    assert got["claude/orphan"] == (*expected["orphan"], "completed")
    assert got["claude/whole"][:2] == expected["whole"]
    agents = query(database, "SELECT agent_name FROM agent_outputs WHERE workflow_id = 'claude/orphan' "
                             "ORDER BY agent_name")
    assert [a for (a,) in agents] == ["orphan/subagents/agent-a1.jsonl", "orphan/subagents/agent-a2.jsonl"]

    # The main file of a session goes (pruned by hand): what remains is its subagents'.
    (store / "-home-dev-shop" / "whole.jsonl").unlink()
    assert main(["sync", "--config", str(cfg)]) == 0
    assert _sessions(database)["claude/whole"][:2] == expected["whole subagents"]
    assert main(["verify", "--files", "--config", str(cfg), "--rounds", "1"]) == 0


def test_the_daemon_finds_a_session_that_is_only_subagent_files(tmp_path, database):
    """The daemon maps an event in <sid>/subagents/ to the session and looks it up on disk:
    the same lookup finds a session whose main file is not there."""
    store, _expected = _store(tmp_path)
    cfg = write_config(tmp_path, {}, database, claude_projects=[{"path": str(store)}])
    config = load_config(cfg)
    index = SessionIndex()  # as when the files appeared after the stores were listed
    found = index.find(config.claude_projects[0], "orphan")
    assert found is not None and found.orphan and found.path.endswith("/orphan.jsonl")
    assert index.find(config.claude_projects[0], "empty") is None
    # Its main file written later: the same entry, no longer an orphan
    _write(Path(found.path), _lines("orphan", "main", 1, sidechain=False)[0])
    assert not index.find(config.claude_projects[0], "orphan").orphan
