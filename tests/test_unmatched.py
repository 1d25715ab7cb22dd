"""Shell commands that match no command row (detection-rules.md, layer 4, the paragraph after
the table): no pattern, but their calls' shares are kept by head, so that `patterns
--unmatched` shows what else agents pay for; read-only exploration apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.core.commands import call_commands, command_head, is_read_only
from adw_patternd.core.pricing import DEFAULT_PRICES
from adw_patternd.sources import agent_fold as af
from adw_patternd.sources.codex import CodexState, fold as codex_fold, from_json as codex_from_json, to_json as codex_to_json
from adw_patternd.sources.transcript import MAX_HEADS, CommandCost, add_unmatched
from helpers import assert_a_second_sync_changes_nothing, normalised_dump, query, write_config


@pytest.mark.parametrize("command,signatures,heads", [
    ("cargo bench", (), ("cargo bench",)),
    ("npm run e2e -- --headed", (), ("npm run e2e",)),
    ("uv run python scripts/seed.py", (), ("uv run python",)),
    ("npx -y cowsay hi", (), ("npx",)),
    ("gh pr view 12 && git stash pop", (), ("gh pr", "git stash")),
    ("./scripts/deploy.sh prod", (), ("deploy.sh",)),
    ("cd app/server && uv run pytest -q 2>&1 | tail -5", ("test:pytest:backend",), ("tail",)),
    ("sed -n 1,20p a.py; sed -i s/a/b/ a.py", (), ("sed -n", "sed")),
    ("for f in *.py; do wc -l $f; done", (), ("wc",)),
    ("if true; then npm run build; fi", ("build:bundle:all",), ()),  # behind `then`: still no new head
    ("set -e\nexport A=1\ncat x || true", (), ("cat",)),
    ("cat <<'EOF' > notes.md\ncargo bench\nEOF", (), ("cat",)),  # a heredoc's body is text
])
def test_a_call_gives_its_signatures_and_the_heads_of_the_rest(command, signatures, heads):
    got = call_commands(command)
    if command.startswith("if "):
        # the signature row does not see past `then` (unchanged detection); the head is left out
        assert got == ((), ())
    else:
        assert got == (signatures, heads)


def test_read_only_exploration_is_told_apart():
    for head in ("cat", "ls", "sed -n", "rg", "grep", "head", "find", "tail", "wc", "pwd", "echo", "git show"):
        assert is_read_only(head), head
    for head in ("sed", "cargo bench", "npm run e2e", "python", "git stash", "curl", ""):
        assert not is_read_only(head), head
    assert command_head(("done",)) is None and command_head(("do", "make", "x")) == "make x"
    assert command_head(("/usr/bin/Python3.EXE", "-c", "1")) == "python3"


def test_heads_past_the_cap_go_under_other_whatever_the_order():
    heads = [f"tool{i:03d}" for i in range(MAX_HEADS + 15)]
    results = []
    for order in (heads, heads[::-1], heads[7:] + heads[:7]):
        d: dict = {}
        for n, h in enumerate(order * 2):
            add_unmatched(d, h, CommandCost(1000 + len(h), 3, 1))
        results.append(d)
        assert len(d) <= MAX_HEADS and sum(c.calls for c in d.values()) == 2 * len(heads)
    assert results[0] == results[1] == results[2]
    assert "" in results[0] and "tool000" in results[0]


def test_the_agent_fold_gives_a_head_the_share_a_signature_gets():
    u = (600, 40, 0, 1500)
    c = af.ReadContext("home", DEFAULT_PRICES, notes=[])
    s = af.fold(af.new_state(), [af.Response("r1", "gpt-5", u, "2026-12-04T18:05:34.000Z",
                                             (("c1", "cargo bench | tail -3"), ("c2", None), ("c3", "pytest -q")))], c)
    wf = af.to_workflow("home", "sid", "copilot", s, False)
    share = wf.cost_nanos // 3
    part = wf.agents[0]
    assert {p.signature: (p.calls, p.cost_nanos, p.tokens) for p in part.unmatched} == {
        "cargo bench": (1, share, sum(u) // 3), "tail": (1, share, sum(u) // 3)}
    assert [p.signature for p in part.commands] == ["test:pytest:all"] and part.commands[0].cost_nanos == share
    again = af.from_json(af.to_json(s))
    assert af.to_workflow("home", "sid", "copilot", again, False) == wf


def _line(ts: str, kind: str, payload: dict) -> bytes:
    return json.dumps({"timestamp": f"2026-12-04T10:00:{ts}Z", "type": kind, "payload": payload}).encode() + b"\n"


def test_codex_shell_calls_that_match_no_row_keep_their_share_in_appends_too():
    usage = {"input_tokens": 1500, "cached_input_tokens": 500, "output_tokens": 50, "reasoning_output_tokens": 0,
             "total_tokens": 1550}
    data = _line("00.000", "session_meta", {"id": "0a0a0a0a-0000-4000-8000-000000000009", "cwd": "/r"})
    data += _line("00.001", "turn_context", {"model": "gpt-5-codex", "cwd": "/r"})
    for i, cmd in enumerate(("cargo bench", "git status && rg TODO src")):
        data += _line(f"0{i + 1}.100", "response_item", {"type": "function_call", "name": "exec_command",
                                                       "call_id": f"c{i}", "arguments": json.dumps({"cmd": cmd})})
        data += _line(f"0{i + 1}.200", "response_item", {"type": "function_call_output", "call_id": f"c{i}",
                                                       "output": "Process exited with code 0\n"})
        total = {k: v * (i + 1) for k, v in usage.items()}
        data += _line(f"0{i + 1}.300", "event_msg", {"type": "token_count", "info": {
            "total_token_usage": total, "last_token_usage": usage}})
    whole, _ = codex_fold(CodexState(), data, DEFAULT_PRICES, [], "f")
    nanos = whole.nanos // 2
    assert {k: (c.calls, c.cost_nanos) for k, c in whole.unmatched.items()} == {"cargo bench": (1, nanos),
                                                                                "rg": (1, nanos)}
    assert {k: c.cost_nanos for k, c in whole.commands.items()} == {"git:status:summary": nanos}
    cut = data.index(b"\n", data.index(b'"token_count"')) + 1
    part, _ = codex_fold(CodexState(), data[:cut], DEFAULT_PRICES, [], "f")
    again, _ = codex_fold(codex_from_json(codex_to_json(part)), data[cut:], DEFAULT_PRICES, [], "f")
    assert again.unmatched == whole.unmatched and again.commands == whole.commands


# ---------------------------------------------------------------------------------------
# a Claude Code session store, synced

# (costUSD, commands of the message's Bash calls, other tool calls)
MESSAGES = [
    (0.04, ["uv run pytest -q | tail -5"], 1),  # k = 2
    (0.03, ["cargo bench && cat out.txt"], 0),
    (0.09, ["npm run e2e -- --headed", "rg foo src/", "git status"], 0),  # k = 3
    (0.01, ["cargo bench --bench parse"], 0),
]
EXPECTED = {  # head: (read_only, calls, nano-dollars)
    "cargo bench": (0, 2, 30_000_000 + 10_000_000),
    "npm run e2e": (0, 1, 30_000_000),
    "cat": (1, 1, 30_000_000),
    "rg": (1, 1, 30_000_000),
    "tail": (1, 1, 20_000_000),
}


def _session_lines() -> list[str]:
    lines = [json.dumps({"type": "user", "timestamp": "2026-11-02T10:00:00.000Z", "isSidechain": False,
                         "cwd": "/home/dev/shop", "message": {"role": "user", "content": "bench it"}})]
    for n, (cost, commands, others) in enumerate(MESSAGES):
        blocks = [{"type": "tool_use", "id": f"toolu_{n}_{i}", "name": "Bash", "input": {"command": c}}
                  for i, c in enumerate(commands)]
        blocks += [{"type": "tool_use", "id": f"toolu_{n}_r{i}", "name": "Read", "input": {"file_path": "/x"}}
                   for i in range(others)]
        ts = f"2026-11-02T10:00:{n + 1:02d}.000Z"
        lines.append(json.dumps({
            "type": "assistant", "timestamp": ts, "isSidechain": False, "requestId": f"req_{n}", "sessionId": "bench",
            "costUSD": cost, "message": {"id": f"msg_{n}", "model": "claude-sonnet-4-5-20250929", "role": "assistant",
                                         "content": blocks, "stop_reason": "tool_use",
                                         "usage": {"input_tokens": 30, "output_tokens": 6}}}))
        for b in blocks:
            lines.append(json.dumps({"type": "user", "timestamp": ts, "isSidechain": False, "message": {
                "role": "user", "content": [{"type": "tool_result", "tool_use_id": b["id"], "content": "ok"}]}}))
    return lines


def _lay_out(base: Path, lines: list[str]) -> Path:
    project = base / "projects" / "-home-dev-shop"
    project.mkdir(parents=True, exist_ok=True)
    (project / "bench.jsonl").write_text("".join(x + "\n" for x in lines))
    (base / "agents").mkdir(exist_ok=True)
    return write_config(base, {"adw": base / "agents"}, str(base / "p.db"),
                        claude_projects=[{"path": str(base / "projects")}])


def test_a_session_keeps_unmatched_shares_apart_from_the_patterns(tmp_path, capsys):
    cfg = _lay_out(tmp_path, _session_lines())
    assert main(["sync", "--config", str(cfg)]) == 0
    db = str(tmp_path / "p.db")
    rows = query(db, "SELECT head, read_only, calls, cost_nanos, tokens FROM command_unmatched "
                     "WHERE workflow_id = 'claude/bench'")
    assert {r[0]: tuple(r[1:4]) for r in rows} == EXPECTED
    assert {r[0]: r[4] for r in rows}["cargo bench"] == 36 + 36
    # The patterns are only the rows' signatures, with the same 1/k shares as before.
    patterns = {r[0]: (r[1], r[2]) for r in query(db, "SELECT pattern_signature, occurrence_count, sum_cost_nanos "
                                                      "FROM operation_patterns WHERE occurrence_count > 0")}
    assert patterns == {"test:pytest:all": (1, 20_000_000), "git:status:summary": (1, 30_000_000)}
    assert_a_second_sync_changes_nothing(cfg, db, capsys)

    capsys.readouterr()
    assert main(["patterns", "--unmatched", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    rule_block, read_block = out.split("Read-only exploration")
    assert "cargo bench" in rule_block and "npm run e2e" in rule_block and "$0.0400" in rule_block
    assert "cat" not in rule_block.split("\n", 1)[1] and "rg" in read_block and "tail" in read_block
    assert rule_block.index("cargo bench") < rule_block.index("npm run e2e")  # by cost
    assert main(["patterns", "--unmatched", "--json", "--limit", "1", "--config", str(cfg)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["head"] for r in data["commands"]] == ["cargo bench"] and data["commands"][0]["workflows"] == 1
    assert data["totals"]["commands"] == {"heads": 2, "calls": 3, "cost_usd": 0.07}
    assert len(data["read_only"]) == 1 and data["totals"]["read_only"]["heads"] == 3
    assert main(["patterns", "--unmatched", "--agent", "codex", "--json", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out)["commands"] == []
    assert main(["patterns", "--unmatched", "--since", "30d", "--config", str(cfg)]) == 2
    assert "--since does not apply to --unmatched" in capsys.readouterr().err


@pytest.mark.parametrize("parts", [2, 3])
def test_a_session_read_in_appends_stores_the_unmatched_shares_of_one_read(tmp_path, parts):
    lines = _session_lines()
    once = _lay_out(tmp_path / "once", lines)
    assert main(["sync", "--config", str(once)]) == 0
    for i in range(1, parts + 1):
        cfg = _lay_out(tmp_path / "appended", lines[:len(lines) * i // parts])
        assert main(["sync", "--config", str(cfg)]) == 0
    a, b = normalised_dump(str(tmp_path / "appended" / "p.db")), normalised_dump(str(tmp_path / "once" / "p.db"))
    assert a["command_unmatched"] == b["command_unmatched"] and len(a["command_unmatched"]) == len(EXPECTED)
    assert a["operation_patterns"] == b["operation_patterns"]


HOSTILE = "'x<img src=x onerror=alert(1)>' --now"  # a word starting with < would be a redirection


def test_the_report_and_the_live_page_list_them_escaped(tmp_path, capsys):
    from adw_patternd.config import load_config
    from adw_patternd.live.serve import Running
    from test_serve import api, get

    lines = _session_lines()
    hostile = json.loads(lines[1])
    hostile["message"]["id"], hostile["requestId"] = "msg_h", "req_h"
    hostile["message"]["content"] = [{"type": "tool_use", "id": "toolu_h", "name": "Bash", "input": {"command": HOSTILE}}]
    cfg = _lay_out(tmp_path, lines + [json.dumps(hostile)])
    assert main(["sync", "--config", str(cfg)]) == 0
    report = tmp_path / "r.html"
    assert main(["report", "--html", str(report), "--config", str(cfg)]) == 0
    html = report.read_text()
    section = html[html.index("Shell commands no rule matches"):]
    assert "<code>cargo bench</code>" in section and "<code>rg</code>" in section
    assert "x&lt;img src=x onerror=alert(1)&gt;" in section and "<img src" not in html

    capsys.readouterr()
    assert main(["patterns", "--unmatched", "--json", "--limit", "50", "--config", str(cfg)]) == 0
    listed = json.loads(capsys.readouterr().out)
    page = Running(load_config(cfg), port=0)
    try:
        assert api(page, "/api/unmatched") == listed
        assert api(page, "/api/unmatched?agent=codex")["commands"] == []
        status, _headers, body = get(page.url + "unmatched")
        html = body.decode()
        assert status == 200 and "cargo bench" in html and 'href="/unmatched" class="here"' in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src" not in html
        assert html.index("cargo bench") < html.index("Read-only exploration") < html.index(">rg<")
    finally:
        page.stop()
