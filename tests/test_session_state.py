"""A session's state says what its files say (issue 31): a Claude Code run that ended its turn
(an assistant entry with stop_reason end_turn, or Claude Code's cost-state) is `completed`;
one that did not is `running` while it is written to, `interrupted` after; a later line (a
resumed session appends) reopens it. A Codex session that ended with task_complete is
`completed`, with turn_aborted `interrupted`. The state comes from the stored fold, so a file
read whole and read in appends agree, and a store copied long after (new mtimes, old
entries) holds no running session."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.core.pricing import DEFAULT_PRICES
from adw_patternd.sources.claude_sessions import fold_chunk
from adw_patternd.sources.codex_workflow import codex_status
from adw_patternd.sources.transcript import Transcript, from_json, to_json
from helpers import normalised_dump, query, write_config

MODEL = "claude-sonnet-4-5-20250929"


def _ts(minutes_ago: float = 0.0) -> str:
    when = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def prompt(text="run the tests", ts=None, **extra) -> str:
    return json.dumps({"type": "user", "timestamp": ts or _ts(), "isSidechain": False, "cwd": "/home/dev/shop",
                       "message": {"role": "user", "content": text}, **extra})


def tool_result(tid="toolu_1", ts=None) -> str:
    return json.dumps({"type": "user", "timestamp": ts or _ts(), "isSidechain": False,
                       "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid,
                                                                "content": "ok"}]}})


def response(n: int, stop: str | None, ts=None, sidechain=False, bash=False, version=None, thinking=False) -> str:
    block = ({"type": "tool_use", "id": f"toolu_{n}", "name": "Bash", "input": {"command": "git status"}} if bash
             else {"type": "thinking", "thinking": "hm", "signature": "s"} if thinking
             else {"type": "text", "text": "done"})
    return json.dumps({"type": "assistant", "timestamp": ts or _ts(), "isSidechain": sidechain, "requestId": f"req_{n}",
                       **({"version": version} if version else {}),
                       "message": {"id": f"msg_{n}", "model": MODEL, "role": "assistant", "content": [block],
                                   "stop_reason": stop, "usage": {"input_tokens": 10, "output_tokens": 5}}})


COST_STATE = json.dumps({"type": "cost-state", "sessionId": "s", "totalCostUSD": 0.0001, "modelUsage": {}})
LOCAL_COMMAND = json.dumps({"type": "user", "timestamp": "2026-11-02T10:00:00.000Z", "isSidechain": False,
                            "message": {"role": "user", "content": "<command-name>/cost</command-name>"}})

# (lines, whether the session's turn had ended after them)
CASES = {
    "ended with end_turn": ([prompt(), response(1, "tool_use", bash=True), tool_result(), response(2, "end_turn")], True),
    "cut off after a tool result": ([prompt(), response(1, "tool_use", bash=True), tool_result()], False),
    "cut off mid-response": ([prompt(), response(1, None)], False),
    "cut off mid-response (2.1.x)": ([prompt(), response(1, None, version="2.1.328")], False),
    # 2.0.x copies a response's message into its entry as each block ends: the answer's entry
    # has no stop reason when message_delta came after (measured: 2.0.65 under load)
    "2.0.x: the answer written before its stop reason": ([prompt(), response(1, "tool_use", bash=True), tool_result(),
                                                          response(2, None, version="2.0.65")], True),
    "2.0.x: text, then the same response's tool call": ([prompt(), response(1, None, version="2.0.65"),
                                                        response(1, None, bash=True, version="2.0.65")], False),
    "2.0.x: only thinking so far": ([prompt(), response(1, None, thinking=True, version="2.0.65")], False),
    "resumed: a new prompt": ([prompt(), response(1, "end_turn"), prompt("and now lint")], False),
    "resumed and ended again": ([prompt(), response(1, "end_turn"), prompt("and now lint"), response(2, "end_turn")],
                                True),
    "cost-state written as the run ends": ([prompt(), response(1, "tool_use", bash=True), tool_result(), COST_STATE],
                                           True),
    "end_turn, then bookkeeping entries": ([prompt(), response(1, "end_turn"), COST_STATE,
                                            json.dumps({"type": "last-prompt", "lastPrompt": "x"}), LOCAL_COMMAND,
                                            json.dumps({"type": "system", "subtype": "turn_duration",
                                                        "timestamp": _ts()})], True),
    "a side conversation ends after the main one is cut off": ([prompt(), response(1, "tool_use", bash=True),
                                                                response(7, "end_turn", sidechain=True)], False),
    "a request's content is no prompt": ([prompt(), response(1, "end_turn"),
                                          json.dumps({"type": "api-request-blob",
                                                      "message": {"role": "user", "content": "x"}})], True),
}


def _fold(data: bytes, cuts, stored: bool) -> Transcript:
    t = Transcript("s.jsonl", session=True)
    for size in sorted(set(cuts)) + [len(data)]:
        end = data.rfind(b"\n", 0, size) + 1
        if end <= t.offset:
            continue
        t = fold_chunk(t, data[t.offset:end], t.offset, DEFAULT_PRICES, [], "f")
        if stored:
            t = from_json(t.path, t.device, t.inode, t.offset, t.size, t.mtime_ns, t.head, t.tail, to_json(t), True)
    return t


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_session_file_says_whether_its_turn_ended_whole_or_in_appends(case):
    lines, ended = CASES[case]
    data = ("\n".join(lines) + "\n").encode()
    assert _fold(data, [], False).ended is ended
    every_line = [i + 1 for i, b in enumerate(data) if b == 10]
    assert _fold(data, every_line, True).ended is ended  # each line an append, through the stored state


def test_a_subagent_file_ends_with_its_own_sidechain_turn():
    data = ("\n".join([prompt(), response(1, "end_turn", sidechain=True)]) + "\n").encode()
    t = fold_chunk(Transcript("s/subagents/agent-1.jsonl", session=True), data, 0, DEFAULT_PRICES, [], "f")
    assert t.ended


@pytest.mark.parametrize("turn, fresh, status", [
    ("complete", True, "completed"), ("complete", False, "completed"), ("aborted", True, "interrupted"),
    ("started", True, "running"), ("started", False, "interrupted"),
    ("", True, "running"), ("", False, "completed")])  # builds that write no turn event: as before
def test_a_codex_sessions_state_comes_from_its_last_turn_event(turn, fresh, status):
    assert codex_status(turn, fresh) == status


def test_a_codex_session_without_turn_events_stopped_while_a_command_ran_is_interrupted():
    # Codex 0.77 writes no turn event: a shell call without its output is all that tells a
    # killed run from a finished one.
    assert codex_status("", False, call_open=True) == "interrupted"
    assert codex_status("", True, call_open=True) == "running"


def _rollout(events: list[str], ts: str) -> str:
    lines = [{"timestamp": ts, "type": "session_meta", "payload": {"id": "0199a213-81c0-7800-8aa1-bbab2a035a53",
                                                                   "cwd": "/home/dev/shop"}},
             {"timestamp": ts, "type": "turn_context", "payload": {"model": "gpt-5-codex", "cwd": "/home/dev/shop"}}]
    lines += [{"timestamp": ts, "type": "event_msg", "payload": {"type": e}} for e in events]
    return "".join(json.dumps(x) + "\n" for x in lines)


def _sessions(tmp_path: Path) -> dict[str, str]:
    """A Claude store and a Codex home, every file written just now; the sessions' entries
    recorded now, except one recorded long ago (a store copied from elsewhere)."""
    project = tmp_path / "projects" / "-home-dev-shop"
    project.mkdir(parents=True)
    files = {
        "ended": [prompt(), response(1, "tool_use", bash=True), tool_result(), response(2, "end_turn")],
        "going": [prompt(), response(3, "tool_use", bash=True)],
        "copied": [prompt(ts="2026-01-02T10:00:00.000Z"), response(4, "tool_use", ts="2026-01-02T10:00:01.000Z")],
    }
    for sid, lines in files.items():
        (project / f"{sid}.jsonl").write_text("\n".join(lines) + "\n")
    day = tmp_path / "codex" / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    rollouts = {"0199a213-81c0-7800-8aa1-bbab2a035a53": ["task_started", "task_complete"],
                "0199a213-81c0-7800-8aa1-bbab2a035a54": ["task_started", "turn_aborted"],
                "0199a213-81c0-7800-8aa1-bbab2a035a55": ["task_started"]}
    for sid, events in rollouts.items():
        text = _rollout(events, _ts()).replace("0199a213-81c0-7800-8aa1-bbab2a035a53", sid)
        (day / f"rollout-2026-01-02T10-00-00-{sid}.jsonl").write_text(text)
    return {"claude/ended": "completed", "claude/going": "running", "claude/copied": "interrupted",
            "codex/0199a213-81c0-7800-8aa1-bbab2a035a53": "completed",
            "codex/0199a213-81c0-7800-8aa1-bbab2a035a54": "interrupted",
            "codex/0199a213-81c0-7800-8aa1-bbab2a035a55": "running"}


def _statuses(database: str) -> dict[str, str]:
    return dict(query(database, "SELECT workflow_id, status FROM workflow_history"))


def test_status_says_what_the_files_say_and_a_resumed_session_reopens(tmp_path, database, capsys):
    expected = _sessions(tmp_path)
    cfg = write_config(tmp_path, {}, database, claude_projects=[{"path": str(tmp_path / "projects")}],
                       codex_homes=[{"path": str(tmp_path / "codex")}])
    assert main(["sync", "--config", str(cfg)]) == 0
    assert _statuses(database) == expected
    capsys.readouterr()
    assert main(["status", "--config", str(cfg)]) == 0
    assert "status: completed 2, interrupted 2, running 2" in capsys.readouterr().out

    # Resumed: the ended session gets a new prompt (running again), then ends once more.
    ended = tmp_path / "projects" / "-home-dev-shop" / "ended.jsonl"
    with ended.open("a") as f:
        f.write(prompt("and now lint") + "\n")
    assert main(["sync", "--config", str(cfg)]) == 0
    assert _statuses(database)["claude/ended"] == "running"
    with ended.open("a") as f:
        f.write(response(5, "end_turn") + "\n" + COST_STATE + "\n")
    assert main(["sync", "--config", str(cfg)]) == 0
    assert _statuses(database)["claude/ended"] == "completed"

    # What was read in appends is what a fresh read of the same files stores.
    (tmp_path / "fresh").mkdir()
    fresh = write_config(tmp_path / "fresh", {}, str(tmp_path / "fresh" / "p.db"),
                         claude_projects=[{"path": str(tmp_path / "projects")}],
                         codex_homes=[{"path": str(tmp_path / "codex")}])
    assert main(["sync", "--config", str(fresh)]) == 0
    if not database.startswith("postgresql"):  # the same engine on both sides: every column compares
        assert normalised_dump(database) == normalised_dump(str(tmp_path / "fresh" / "p.db"))
