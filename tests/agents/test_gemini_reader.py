"""The Gemini CLI reader against the real CLI (issue 33): each scenario runs Gemini CLI
offline against the scripted model and checks what sources/gemini.py reads from the chats
it wrote against what the model served (the oracle), minus what the CLI never writes:

- the router's and other utility requests (no tools offered: ``Served.side``);
- 0.24 (legacy .json): a response that calls tools right after another tool-only response
  of the same turn is folded into the earlier message: its calls are kept there, its
  tokens are lost (recordMessageTokens queues them, the next response's overwrite them).
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from adw_patternd.core.commands import BUILTIN_COMMAND_RULES, call_signatures
from adw_patternd.core.pricing import DEFAULT_PRICES, cost_nanos
from adw_patternd.sources import agent_fold as af
from adw_patternd.sources import gemini

from .cli_base import require
from .gemini_cli import GeminiCli
from .install import versions_under_test
from .script import Reply, Script, Usage
from .server import ModelServer

MODEL = "gemini-2.5-flash"  # priced, and served by every version when asked with -m
VERSIONS = versions_under_test("gemini")


def usage(k: int) -> Usage:
    """The k-th response's usage: all different, so a response counted twice or lost shows."""
    return Usage(input=600 + 100 * k, cache_read=1600 + 900 * k, output=35 + 2 * k, reasoning=5 + k)


def merges_tool_responses(version: str) -> bool:
    return tuple(int(p) for p in version.split(".")[:2]) < (0, 40)


def recorded(version: str, served) -> list[tuple[str, Usage, tuple[str, ...]]]:
    """(model, usage, calls) of each response the chat file holds, by the module doc's rules."""
    out: list[list] = []
    previous_calls = False
    for s in served:
        if s.side or s.status != 200:
            continue
        if merges_tool_responses(version) and s.calls and previous_calls and out:
            out[-1][2] = out[-1][2] + s.calls
        else:
            out.append([s.model, s.usage, s.calls])
        previous_calls = bool(s.calls)
    return [tuple(r) for r in out]


def oracle(version: str, served):
    """Tokens, nanodollars, and per signature [nanos, tokens, calls], from what was served."""
    tokens = nanos = 0
    sigs: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for model, u, calls in recorded(version, served):
        t = u.input + u.cache_read + u.output
        n = cost_nanos(model, u.input, u.output, 0, u.cache_read, DEFAULT_PRICES)
        assert n is not None, model
        tokens, nanos = tokens + t, nanos + n
        for command in calls:
            for sig in call_signatures(command, BUILTIN_COMMAND_RULES):
                got = sigs[sig]
                got[0], got[1], got[2] = got[0] + n // len(calls), got[1] + t // len(calls), got[2] + 1
    return tokens, nanos, dict(sigs)


def read(home: Path, stored: dict | None = None, fresh: bool = False):
    problems: list[str] = []
    refs = gemini.list_sessions(str(home), problems)
    assert not problems
    out = {}
    for sid, ref in refs.items():
        ctx = af.ReadContext("gem", DEFAULT_PRICES, fresh=fresh)
        out[sid] = gemini.read_session(ref, (stored or {}).get(sid), ctx)
        assert not [n for n in ctx.notes if "price" in n], ctx.notes
    return out


def figures(workflow):
    part = workflow.agents[0]
    return (workflow.total_tokens, workflow.cost_nanos,
            {c.signature: [c.cost_nanos, c.tokens, c.calls] for c in part.commands})


@pytest.fixture(params=VERSIONS)
def version(request):
    return require("gemini", request.param)


def run(version: str, tmp_path: Path, replies: list[Reply], prompts=("check the repo",), resume=False):
    script = Script(list(replies))
    with ModelServer(script) as server:
        cli = GeminiCli(version, tmp_path, server.url, model=MODEL)
        for n, prompt in enumerate(prompts):
            done = cli.run(prompt, resume="latest" if resume and n else None)
            assert done.returncode == 0, done.stderr[-3000:]
    assert not server.unrouted
    assert script.left == 0
    return cli, script


def check(version, cli, script, sessions=1):
    reads = read(cli.gemini_home)
    assert len(reads) == sessions
    tokens, nanos, sigs = oracle(version, script.served)
    got_tokens = sum(r.workflow.total_tokens for r in reads.values())
    got_nanos = sum(r.workflow.cost_nanos for r in reads.values())
    got_sigs: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in reads.values():
        for sig, row in figures(r.workflow)[2].items():
            got_sigs[sig] = [a + b for a, b in zip(got_sigs[sig], row)]
    assert (got_tokens, got_nanos, dict(got_sigs)) == (tokens, nanos, sigs)
    for r in reads.values():
        assert r.workflow.status == "completed"
        assert r.workflow.agents[0].name == "gemini"
        assert r.workflow.request == "check the repo"
    return reads


def test_calls_in_sequence(version, tmp_path):
    replies = [Reply(calls=(c,), usage=usage(k)) for k, c in enumerate(("git status", "git log --oneline -3",
                                                                         "git diff"))]
    cli, script = run(version, tmp_path, replies + [Reply(text="Done.", usage=usage(3))])
    reads = check(version, cli, script)
    (only,) = reads.values()
    # 0.24 stamps a call when its message is rewritten, not when it ends: waits only approximate
    assert {sig for sig, _ in only.workflow.waits} >= ({"git:log:summary"} if merges_tool_responses(version)
                                                       else {"git:status:summary", "git:log:summary"})
    assert_appends_equal_whole(cli, reads)


def test_calls_in_one_response(version, tmp_path):
    replies = [Reply(calls=("git status", "git log --oneline -3", "ls -la"), usage=usage(0)),
               Reply(calls=("git diff",), usage=usage(1)), Reply(text="Done.", usage=usage(2))]
    cli, script = run(version, tmp_path, replies)
    reads = check(version, cli, script)
    assert_appends_equal_whole(cli, reads)


def test_resumed_session(version, tmp_path):
    replies = [Reply(calls=("git status",), usage=usage(0)), Reply(text="Done.", usage=usage(1)),
               Reply(calls=("git log --oneline -3",), usage=usage(2)), Reply(text="Done again.", usage=usage(3))]
    cli, script = run(version, tmp_path, replies, prompts=("check the repo", "and the log"), resume=True)
    check(version, cli, script)


def test_default_model_goes_through_the_router(tmp_path):
    """No -m: the pinned CLI asks its router first (a JSON model choice, not on disk)."""
    version = require("gemini", VERSIONS[0])
    script = Script([Reply(calls=("git status",), usage=usage(0)), Reply(text="Done.", usage=usage(1))])
    with ModelServer(script) as server:
        cli = GeminiCli(version, tmp_path, server.url)
        assert cli.run("check the repo").returncode == 0
    assert any(s.side for s in script.served)
    main = [s for s in script.served if not s.side]
    (r,) = gemini.list_sessions(str(cli.gemini_home), []).values()
    ctx = af.ReadContext("gem", DEFAULT_PRICES)
    got = gemini.read_session(r, None, ctx).workflow
    assert got.total_tokens == sum(s.usage.input + s.usage.cache_read + s.usage.output for s in main)
    expect = [cost_nanos(s.model, s.usage.input, s.usage.output, 0, s.usage.cache_read, DEFAULT_PRICES) for s in main]
    if None in expect:  # a model no public price list has: tokens count, dollars 0, one note
        assert got.cost_nanos == 0 and any("has no price" in n for n in ctx.notes)
    else:
        assert got.cost_nanos == sum(expect)


def assert_appends_equal_whole(cli: GeminiCli, reads: dict):
    """Read the chat after its first half, then again with that state after the rest: the
    same value as one whole read (for a legacy .json, rewritten whole, the same too)."""
    (sid, whole), = reads.items()
    (path,) = [Path(f.path) for f in whole.files]
    data = path.read_bytes()
    cut = data[: len(data) // 2]
    if path.suffix == ".jsonl":
        cut = cut[: cut.rfind(b"\n") + 1] + b'{"id":"half-writ'  # a cut last line
    keep = path.with_name(path.name + ".keep")
    shutil.copy2(path, keep)
    path.write_bytes(cut)
    try:
        first = read(cli.gemini_home, fresh=True)
    except Exception:
        if path.suffix == ".jsonl":
            raise
        first = {}  # a half-written legacy .json is a transient problem (checked below)
    os.replace(keep, path)
    second = read(cli.gemini_home, {k: v.state for k, v in first.items()})
    assert figures(second[sid].workflow) == figures(whole.workflow)
    assert second[sid].workflow.status == whole.workflow.status


def test_bad_input(version, tmp_path):
    """A cut last line, a record of an unknown type, a line that is not JSON: skipped, the
    rest counted; credentials and settings are never opened (a FIFO in their place)."""
    cli, script = run(version, tmp_path, [Reply(calls=("git status",), usage=usage(0)),
                                          Reply(text="Done.", usage=usage(1))])
    whole = read(cli.gemini_home)
    for name in ("settings.json", "oauth_creds.json", "google_accounts.json", "projects.json"):
        target = cli.gemini_home / name
        target.unlink(missing_ok=True)
        os.mkfifo(target)
    (path,) = cli.chats()
    if path.suffix == ".jsonl":
        with path.open("ab") as f:
            f.write(b'{"$unknown":{"kind":"new"},"extra":1}\nnot json at all\n{"id":"x","type":"gemini","tok')
    again = read(cli.gemini_home)
    assert [figures(r.workflow) for r in again.values()] == [figures(r.workflow) for r in whole.values()]


def test_half_written_legacy_json_is_transient(tmp_path):
    chats = tmp_path / "home" / "tmp" / "abc" / "chats"
    chats.mkdir(parents=True)
    (chats / "session-2026-01-01T00-00-1234abcd.json").write_text('{"sessionId": "1234abcd-1", "messages": [{"id')
    (ref,) = gemini.list_sessions(str(tmp_path / "home"), []).values()
    with pytest.raises(Exception) as err:
        gemini.read_session(ref, None, af.ReadContext("gem", DEFAULT_PRICES))
    assert getattr(err.value, "transient", False)


def test_gemini_prices():
    # gemini-2.5-pro: $1.25 in, $10 out, $0.125 cached; over 200k prompt tokens $2.50/$15/$0.25.
    assert cost_nanos("gemini-2.5-pro", 100_000, 0, 0, 0, DEFAULT_PRICES) == 125_000_000
    assert cost_nanos("gemini-2.5-pro", 150_000, 1000, 0, 60_000, DEFAULT_PRICES) == \
        round((150_000 * 2.50 + 1000 * 15 + 60_000 * 0.25) * 1000)
    # flash-lite is not flash, and a dated snapshot is its model.
    assert cost_nanos("gemini-2.5-flash-lite", 1_000_000, 0, 0, 0, DEFAULT_PRICES) == 100_000_000
    assert cost_nanos("gemini-2.5-flash-preview-09-2025", 1_000_000, 0, 0, 0, DEFAULT_PRICES) == 300_000_000
    assert cost_nanos("gemini-3.5-flash-lite", 1000, 0, 0, 0, DEFAULT_PRICES) is None
