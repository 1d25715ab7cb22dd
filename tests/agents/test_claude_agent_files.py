"""Claude Code 2.0.x's sub-agent files, without the CLI: <project>/agent-<id>.jsonl files
(its warm-ups and Task agents) belong to the session their entries name, as 2.1.x's
<sid>/subagents/ files do; one whose session file is gone is still counted, as that session (its files are the session)."""

from __future__ import annotations

import json

from adw_patternd.cli import main
from helpers import query, write_config

SID = "7ce372e9-ada5-458b-9617-7d915d657550"
USAGE = {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 10}


def entry(sid: str, mid: str, ts: str, sidechain: bool = False) -> str:
    return json.dumps({"type": "assistant", "isSidechain": sidechain, "sessionId": sid, "timestamp": ts,
                       "requestId": "req_" + mid, "message": {"id": mid, "model": "claude-sonnet-4-5-20250929",
                                                              "usage": USAGE, "stop_reason": "end_turn",
                                                              "content": [{"type": "text", "text": "ok"}]}}) + "\n"


def sessions(database: str) -> dict[str, tuple[int, int]]:
    rows = query(database, "SELECT workflow_id, total_tokens, cost_nanos FROM workflow_history")
    return {wid: (t, n) for wid, t, n in rows}


def test_an_agent_file_beside_its_session_is_part_of_it(tmp_path):
    project = tmp_path / "projects" / "-tmp-repo"
    project.mkdir(parents=True)
    (project / f"{SID}.jsonl").write_text(json.dumps({"type": "user", "sessionId": SID, "message": {
        "role": "user", "content": "go"}, "timestamp": "2026-01-01T00:00:00.000Z"}) + "\n"
        + entry(SID, "msg_main", "2026-01-01T00:00:01.000Z"))
    user = json.dumps({"type": "user", "isSidechain": True, "sessionId": SID, "timestamp": "2026-01-01T00:00:00.500Z",
                       "message": {"role": "user", "content": "Warmup"}}) + "\n"
    (project / "agent-a9672df.jsonl").write_text(user + entry(SID, "msg_warm", "2026-01-01T00:00:00.600Z", True))
    orphan = "0d0d0d0d-1111-4222-8333-444455556666"  # its session file is gone
    (project / "agent-b0b0b0b.jsonl").write_text(entry(orphan, "msg_orphan", "2026-01-01T00:00:02.000Z", True))
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {}, database, claude_projects=[{"path": str(tmp_path / "projects")}])
    assert main(["sync", "--config", str(cfg)]) == 0
    one = 100 * 3000 + 10 * 15000  # 100 input at $3/M, 10 output at $15/M, in nano-dollars
    assert sessions(database) == {f"claude/{SID}": (220, 2 * one), f"claude/{orphan}": (110, one)}
    assert main(["verify", "--files", "--config", str(cfg)]) == 0
