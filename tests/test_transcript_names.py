"""Every transcript (issue 18, item 7): inside an agent folder, any *.jsonl whose first
complete line is a stream-json event is a transcript, whatever its name; some ADWs name
it after the session id. Other JSONL files are not read as transcripts."""

from __future__ import annotations

import json

from adw_patternd.cli import main
from helpers import append, query, result_line, write_config

SESSION = "5f1c2a9e-3b7d-4c21-9f0e-8a6b2d4c1e07"
INIT = json.dumps({"type": "system", "subtype": "init", "session_id": SESSION, "model": "claude-sonnet-4-5"}) + "\n"


def stored_cost(database: str, adw_id: str):
    rows = query(database, "SELECT cost_nanos FROM workflow_history WHERE adw_id = ? AND revision > 0", (adw_id,))
    return rows[0][0] if rows else None


def test_a_transcript_named_after_its_session_is_read(tmp_path, capsys):
    root = tmp_path / "agents"
    append(root / "a0000001" / "sdlc_implementor" / f"{SESSION}.jsonl", INIT + result_line(cost=1.25, session_id=SESSION))
    append(root / "a0000001" / "sdlc_planner" / "raw_output.jsonl", INIT + result_line(cost=0.5))
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert main(["sync", "--config", str(cfg)]) == 0
    assert stored_cost(database, "a0000001") == 1_750_000_000
    agents = {r[0] for r in query(database, "SELECT agent_name FROM agent_outputs")}
    assert agents == {f"sdlc_implementor/{SESSION}.jsonl", "sdlc_planner/raw_output.jsonl"}
    assert main(["verify", "--files", "--config", str(cfg)]) == 0


def test_other_jsonl_files_are_not_transcripts(tmp_path, capsys):
    root = tmp_path / "agents"
    folder = root / "b0000001"
    append(folder / "sdlc_planner" / "raw_output.jsonl", INIT + result_line(cost=0.5))
    append(folder / "sdlc_planner" / "notes.jsonl", json.dumps({"kind": "note", "text": "type: result"}) + "\n")
    append(folder / "sdlc_planner" / "metrics.jsonl", json.dumps({"type": "metric", "value": 3}) + "\n")
    append(folder / "sdlc_planner" / "broken.jsonl", "not json at all\n")
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert main(["sync", "--config", str(cfg)]) == 0
    assert stored_cost(database, "b0000001") == 500_000_000
    assert {r[0] for r in query(database, "SELECT agent_name FROM agent_outputs")} == {"sdlc_planner/raw_output.jsonl"}
    assert "notes.jsonl" not in capsys.readouterr().err  # not a transcript: nothing to say about it


def test_a_transcript_is_read_once_its_first_line_is_whole(tmp_path, capsys):
    """A session-named file still being written (no whole first line) is not a transcript
    yet; the write that completes its first line makes it one."""
    root = tmp_path / "agents"
    path = root / "c0000001" / "sdlc_tester" / f"{SESSION}.jsonl"
    append(root / "c0000001" / "sdlc_planner" / "raw_output.jsonl", INIT + result_line(cost=0.5))
    append(path, INIT[:20])
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database)
    assert main(["sync", "--config", str(cfg)]) == 0
    assert stored_cost(database, "c0000001") == 500_000_000
    append(path, INIT[20:] + result_line(cost=2.0))
    assert main(["sync", "--config", str(cfg)]) == 0
    assert "updated 1" in capsys.readouterr().out
    assert stored_cost(database, "c0000001") == 2_500_000_000
    assert main(["verify", "--files", "--config", str(cfg)]) == 0
