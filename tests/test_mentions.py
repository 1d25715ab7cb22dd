"""Charge only what was done (issue 18, item 6). Where the request is not the reference's
nl_input (an issue title, a task description, a prompt), a request, error or template that
names a pattern is an occurrence only when an agent or a command did it, and then costs
those parts; otherwise it is a mention: no occurrence, no cost, listed by `show`. Trees in
the reference's format (nl_input) give the same database as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from adw_patternd.cli import main
from helpers import append, normalised_dump, result_line, write_config, write_state

EXAMPLES = Path(__file__).parent.parent / "examples" / "agents"
GOLDEN = Path(__file__).parent / "golden" / "reference_format.json"
# The example tree's workflows in the reference's format (adw_state.json with nl_input).
REFERENCE_FORMAT = ("0b94a014", "1807dfaf", "5738f7c7", "63f1bbbc", "8acaca45", "ab215122", "ce1d62e0", "d4f398ee",
                    "eab06e9b", "f49e72ce", "f6111cf2")
PORT_CLASH = "Fix EADDRINUSE error - port 3010 is already in use when running npm run dev"  # names deps:npm:update
USAGE = {"input_tokens": 1000, "output_tokens": 200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def transcript(path: Path, commands: list[str], cost: float) -> None:
    """One finished run whose agent ran ``commands`` through Bash, one message each."""
    lines = [json.dumps({"type": "system", "subtype": "init", "session_id": "s-" + path.parent.parent.name,
                         "model": "claude-sonnet-4-5"}) + "\n"]
    for i, command in enumerate(commands):
        lines.append(json.dumps({"type": "assistant", "message": {
            "id": f"msg_{i}", "model": "claude-sonnet-4-5", "usage": USAGE,
            "content": [{"type": "tool_use", "id": f"toolu_{i}", "name": "Bash", "input": {"command": command}}]}}) + "\n")
    append(path, "".join(lines) + result_line(cost=cost))


def patterns(cfg, capsys) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["patterns", "--json", "--config", str(cfg)]) == 0
    return {p["pattern_signature"]: p for p in json.loads(capsys.readouterr().out)}


def show(cfg, capsys, signature: str) -> dict:
    capsys.readouterr()
    assert main(["show", signature, "--json", "--config", str(cfg)]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_workflow_that_only_mentions_a_pattern_is_not_charged_for_it(tmp_path, database, capsys):
    root = tmp_path / "agents"
    # The case: a task about a port clash "when running npm run dev"; its agent
    # never ran npm.
    write_state(root / "m0000001", task_description=PORT_CLASH, start_time="2026-11-02T10:00:00Z")
    transcript(root / "m0000001" / "build" / "build_output.jsonl", ["lsof -i :3010", "kill 4242"], cost=1.5)
    # The same words as nl_input: the reference's semantics, the whole workflow.
    write_state(root / "m0000002", nl_input=PORT_CLASH, start_time="2026-11-03T10:00:00Z")
    transcript(root / "m0000002" / "build" / "raw_output.jsonl", ["lsof -i :3010"], cost=2.0)
    # A task naming the typecheck whose agent ran it: charged the call's share, not the workflow.
    write_state(root / "m0000003", task_description="Typecheck the project", start_time="2026-11-04T10:00:00Z")
    transcript(root / "m0000003" / "build" / "build_output.jsonl", ["npx tsc --noEmit", "git status"], cost=3.0)
    cfg = write_config(tmp_path, {"main": root}, database)
    assert main(["sync", "--config", str(cfg)]) == 0

    got = patterns(cfg, capsys)
    deps = got["deps:npm:update"]
    assert deps["occurrence_count"] == 1 and deps["sum_cost_nanos"] == 2_000_000_000  # m0000002 only
    typecheck = got["build:typecheck:all"]
    assert typecheck["occurrence_count"] == 1 and 0 < typecheck["sum_cost_nanos"] < 3_000_000_000

    d = show(cfg, capsys, "deps:npm:update")
    assert [w["workflow_id"] for w in d["workflows"]] == ["main/m0000002"]
    assert d["mentions_count"] == 1
    assert [(m["workflow_id"], m["request"], m["request_source"]) for m in d["mentions"]] == [
        ("main/m0000001", PORT_CLASH, "task_description")]
    d = show(cfg, capsys, "build:typecheck:all")
    assert [(w["workflow_id"], w["layer"]) for w in d["workflows"]] == [("main/m0000003", "command")]
    assert d["mentions"] == [] and [e["item"] for e in d["command_lines"]] == ["npx tsc --noEmit"]
    assert main(["show", "deps:npm:update", "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert "mentioned without being done (1 workflow(s)" in text and "main/m0000001" in text

    # A mention that becomes work: the agent runs it now.
    transcript(root / "m0000001" / "build" / "build_output.jsonl", ["npx tsc --noEmit"], cost=0.5)
    assert main(["sync", "--config", str(cfg)]) == 0
    assert patterns(cfg, capsys)["build:typecheck:all"]["occurrence_count"] == 2
    assert main(["verify", "--config", str(cfg)]) == 0
    assert main(["verify", "--files", "--config", str(cfg)]) == 0


def test_a_tree_in_the_reference_format_gives_the_same_database_as_before(tmp_path, database):
    """Every column, against the database the commit before this change made of the same
    eleven workflows (tests/golden/reference_format.json)."""
    root = tmp_path / "agents"
    for adw_id in REFERENCE_FORMAT:
        shutil.copytree(EXAMPLES / adw_id, root / adw_id)
    cfg = write_config(tmp_path, {"main": root}, database)
    assert main(["sync", "--config", str(cfg)]) == 0
    golden = {table: [tuple(r) for r in rows] for table, rows in json.loads(GOLDEN.read_text()).items()}
    assert normalised_dump(database) == golden
