"""The OpenCode reader against the real CLI (issue 33): each scenario runs OpenCode offline
against the scripted model (Chat Completions) and checks what sources/opencode.py reads from
its opencode.db against what the model served, minus the title request OpenCode never
stores (no tools offered: ``Served.side``). Prices: the config's price of mock-model, also
given to the reader as a user's ``prices:`` entry (1.2.27's own cost prices reasoning twice).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from adw_patternd.core.commands import BUILTIN_COMMAND_RULES, call_signatures
from adw_patternd.core.errors import InputRejected
from adw_patternd.core.pricing import DEFAULT_PRICES, Price, PriceRule, cost_nanos
from adw_patternd.sources import agent_fold as af
from adw_patternd.sources import opencode

from .cli_base import require
from .install import versions_under_test
from .opencode_cli import PRICE, OpenCode
from .script import Reply, Script, Usage
from .server import ModelServer

PRICES = DEFAULT_PRICES + (PriceRule("mock-model", Price(PRICE["input"], PRICE["output"], PRICE["cache_write"],
                                                         PRICE["cache_read"]), exact=True),)


def usage(k: int) -> Usage:
    return Usage(input=600 + 100 * k, cache_read=1500 + 900 * k, output=40 + 3 * k, reasoning=10 + k)


def oracle(served):
    tokens = nanos = 0
    sigs: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for s in served:
        if s.side or s.status != 200:
            continue
        u = s.usage
        t = u.input + u.cache_read + u.cache_write + u.output
        n = cost_nanos("mock-model", u.input, u.output, u.cache_write, u.cache_read, PRICES)
        tokens, nanos = tokens + t, nanos + n
        for command in s.calls:
            for sig in call_signatures(command, BUILTIN_COMMAND_RULES):
                got = sigs[sig]
                got[0], got[1], got[2] = got[0] + n // len(s.calls), got[1] + t // len(s.calls), got[2] + 1
    return tokens, nanos, dict(sigs)


def read(data: Path, stored: dict | None = None):
    problems: list[str] = []
    refs = opencode.list_sessions(str(data), problems)
    assert not problems
    out = {}
    for sid, ref in refs.items():
        ctx = af.ReadContext("oc", PRICES)
        out[sid] = opencode.read_session(ref, (stored or {}).get(sid), ctx)
        assert not ctx.notes, ctx.notes
    return out


def figures(w):
    return (w.total_tokens, w.cost_nanos,
            {c.signature: [c.cost_nanos, c.tokens, c.calls] for c in w.agents[0].commands}, w.status)


@pytest.fixture(params=versions_under_test("opencode"))
def version(request):
    return require("opencode", request.param)


def run(version, tmp_path, replies, prompts=("check the repo",)):
    script = Script(list(replies))
    with ModelServer(script) as server:
        oc = OpenCode(version, tmp_path, server.url)
        sid = None
        halves = []
        for prompt in prompts:
            done = oc.run(prompt, session=sid)
            assert done.returncode == 0, done.stderr[-3000:]
            sid = sid or done.session_id
            halves.append(read(oc.data))
    assert not server.unrouted
    assert script.left == 0
    return oc, script, halves


def check(oc, script):
    reads = read(oc.data)
    (only,) = reads.values()
    tokens, nanos, sigs = oracle(script.served)
    assert figures(only.workflow)[:3] == (tokens, nanos, sigs)
    assert only.workflow.status == "completed"
    assert only.workflow.request == "check the repo"
    assert only.workflow.agents[0].name == "opencode"
    return reads


def test_calls_in_sequence_and_in_one_response(version, tmp_path):
    replies = [Reply(calls=("git status",), usage=usage(0)),
               Reply(calls=("git log --oneline -3", "ls -la", "git diff"), usage=usage(1)),
               Reply(text="Done.", usage=usage(2))]
    oc, script, _ = run(version, tmp_path, replies)
    reads = check(oc, script)
    (only,) = reads.values()
    assert {sig for sig, _ in only.workflow.waits} >= {"git:status:summary", "git:log:summary"}


def test_resumed_session_read_in_appends(version, tmp_path):
    """A second run continues the session (--session): a read after the first run, then one
    from its state after the second, equals one whole read."""
    replies = [Reply(calls=("git status",), usage=usage(0)), Reply(text="Done.", usage=usage(1)),
               Reply(calls=("git log --oneline -3",), usage=usage(2)), Reply(text="Done again.", usage=usage(3))]
    oc, script, (first, _) = run(version, tmp_path, replies, prompts=("check the repo", "and the log"))
    whole = check(oc, script)
    again = read(oc.data, {sid: r.state for sid, r in first.items()})
    assert [figures(r.workflow) for r in again.values()] == [figures(r.workflow) for r in whole.values()]


def test_locked_and_half_written_database(version, tmp_path):
    oc, script, _ = run(version, tmp_path, [Reply(calls=("git status",), usage=usage(0)),
                                            Reply(text="Done.", usage=usage(1))])
    whole = read(oc.data)
    (db,) = oc.databases()
    # Another connection in a write transaction: WAL readers see the last commit.
    writer = sqlite3.connect(db)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE session SET title = 'being written'")
    try:
        assert [figures(r.workflow) for r in read(oc.data).values()] == \
            [figures(r.workflow) for r in whole.values()]
    finally:
        writer.rollback()
        writer.close()
    # A database in rollback-journal mode, locked exclusively: transient, then read.
    other = tmp_path / "journal"
    other.mkdir()
    copy = other / "opencode.db"
    src = sqlite3.connect(db)
    src.execute(f"VACUUM INTO '{copy}'")
    src.close()
    locker = sqlite3.connect(copy)
    locker.execute("PRAGMA journal_mode = DELETE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE session SET title = 'x'")
    problems: list[str] = []
    assert opencode.list_sessions(str(other), problems) == {} and problems and "opencode.db" in problems[0]
    (sid,) = whole
    ref = af.SessionRef(sid, str(copy), (str(copy),))
    with pytest.raises(InputRejected) as err:
        opencode.read_session(ref, None, af.ReadContext("oc", PRICES))
    assert err.value.transient
    locker.rollback()
    locker.close()
    assert figures(opencode.read_session(ref, None, af.ReadContext("oc", PRICES)).workflow) == \
        figures(whole[sid].workflow)
    # Half written: the file cut in the middle.
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputRejected) as err:
        opencode.read_session(ref, None, af.ReadContext("oc", PRICES))
    assert err.value.transient


def test_unknown_part_type_is_skipped(version, tmp_path):
    oc, script, _ = run(version, tmp_path, [Reply(calls=("git status",), usage=usage(0)),
                                            Reply(text="Done.", usage=usage(1))])
    whole = read(oc.data)
    (db,) = oc.databases()
    con = sqlite3.connect(db)
    row = con.execute("SELECT id, message_id, session_id, time_created, time_updated FROM part LIMIT 1").fetchone()
    con.execute("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES "
                "(?, ?, ?, ?, ?, ?)", ("prt_zzzzunknown", row[1], row[2], row[3], row[4] + 10**6,
                                       '{"type":"hologram","tokens":{"input":99}}'))
    con.execute("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES "
                "(?, ?, ?, ?, ?, ?)", ("prt_zzzzbroken", row[1], row[2], row[3], row[4] + 10**6, '{"type":"step-fin'))
    con.commit()
    con.close()
    assert [figures(r.workflow)[:3] for r in read(oc.data).values()] == \
        [figures(r.workflow)[:3] for r in whole.values()]
    shutil.rmtree(oc.data / "snapshot", ignore_errors=True)
