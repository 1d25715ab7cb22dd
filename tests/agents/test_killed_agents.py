"""Copilot CLI, Gemini CLI, Qwen Code and OpenCode killed mid-session (SIGKILL while a shell
command runs, after at least one finished response), with a real `adw-patternd run` watching
their home (check.py's Watched); then resumed where the CLI can resume.

The oracle is what the model served (each reader test's own oracle, from ``script.served``),
cut to what the agent had written when it died; what each agent writes of the response
whose `sleep 60` was running is said at each scenario. The daemon's database, a fresh sync's
and the oracle must agree, and `verify --files` must be clean: nothing counted twice, and a
resumed session stays one workflow.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

import pytest

from helpers import wait_for

from . import test_gemini_reader as gem_test
from . import test_opencode_reader as oc_test
from .agent_watch import MOCK_PRICES, chat_oracle, holds, kill_in_sleep, main_served, tuple_oracle, watching
from .check import ENDED, KILLED, Oracle
from .cli_base import require
from .copilot_cli import Copilot
from .gemini_cli import GeminiCli
from .install import versions_under_test
from .opencode_cli import OpenCode
from .qwen_cli import Qwen
from .script import Reply, Script, Usage
from .server import ModelServer


def usage(k: int) -> Usage:
    """The k-th response's usage: all different, so a response counted twice or lost shows."""
    return Usage(input=600 + 100 * k, cache_read=1500 + 900 * k, output=40 + 3 * k, reasoning=10 + k)


# Qwen Code refuses a command that starts with a sleep of 2 s or more ("Blocked: standalone
# sleep 60. Run blocking commands in the background"; 0.24.4 lets a trailing
# `# intentional-sleep:` comment through, 0.15.10 nothing): the sleep comes second.
QWEN_SLEEP = "true && sleep 60"


def script(sleep: str = "sleep 60") -> Script:
    """One finished response (git status), then `sleep 60`, during which the CLI is killed;
    the resumed run gets the rest."""
    return Script([
        Reply(calls=("git status",), usage=usage(0)),
        Reply(calls=(sleep,), usage=usage(1)),
        Reply(calls=("git log --oneline -3",), usage=usage(2)),
        Reply(text="Resumed and done.", usage=usage(3)),
    ])


@pytest.fixture(params=versions_under_test("copilot"), ids=lambda v: f"copilot-{v}")
def copilot_version(request):
    return require("copilot", request.param)


def test_copilot_killed_in_a_shell_command_then_resumed(copilot_version, tmp_path):
    """Copilot writes its events a few seconds late; once the log holds the `sleep 60` call's
    start it holds both responses. 1.0.102 writes a response's usage record before it runs the
    calls: the killed response counts whole. 1.0.60 writes each message's output tokens, and
    the run's input at its shutdown, which a killed run never reaches: that run's input is
    lost (the resumed run's shutdown totals cover that run alone)."""
    s = script()
    with ModelServer(s) as server:
        cli = Copilot(copilot_version, tmp_path, server.url)
        events = lambda: (cli.home / "session-state").glob("*/events.jsonl")  # noqa: E731
        with watching(tmp_path, cli.home, "copilot_homes", **MOCK_PRICES) as watched:
            kill_in_sleep(cli.start("Work, then get killed"), s.served, holds(events, '"command":"sleep 60"'))
            sid = cli.only_session()
            first = main_served(s.served)
            output_only = not b'"session.usage_record"' in next(events()).read_bytes()
            watched.check(chat_oracle(sid, [first], output_only, killed=(0,)), status={sid: KILLED})
            assert cli.run("Go on", resume=sid) == sid
            runs = [first, main_served(s.served)[2:]]
            watched.check(chat_oracle(sid, runs, output_only, killed=(0,)), status={sid: ENDED})
        assert not server.unrouted


@pytest.fixture(params=versions_under_test("qwen"), ids=lambda v: f"qwen-{v}")
def qwen_version(request):
    return require("qwen", request.param)


def test_qwen_killed_in_a_shell_command_then_resumed(qwen_version, tmp_path):
    """Qwen Code writes a response's `assistant` record (its usage, its calls) a moment after
    the response, before the call's result: once the chat holds the sleep call, both responses
    count whole. The resumed run appends to the same chat file."""
    s = script(QWEN_SLEEP)
    with ModelServer(s) as server:
        cli = Qwen(qwen_version, tmp_path, server.url)
        chats = lambda: (cli.home / "projects").glob("*/chats/*.jsonl")  # noqa: E731
        with watching(tmp_path, cli.home, "qwen_homes", **MOCK_PRICES) as watched:
            kill_in_sleep(cli.start("Work, then get killed"), s.served, holds(chats, f'"command":"{QWEN_SLEEP}"'))
            (sid,) = cli.sessions()
            first = main_served(s.served)
            watched.check(chat_oracle(sid, [first]), status={sid: KILLED})
            assert cli.run("Go on", resume=sid) == sid
            assert cli.sessions() == [sid]
            watched.check(chat_oracle(sid, [main_served(s.served)]), status={sid: ENDED})
        assert not server.unrouted


@pytest.fixture(params=versions_under_test("gemini"), ids=lambda v: f"gemini-{v}")
def gemini_version(request):
    return require("gemini", request.param)


def gemini_written(version: str, cli: GeminiCli, killed_response):
    """What Gemini CLI has written of the response whose call it runs: 0.61 (.jsonl) writes
    the message with its tokens as the response ends and its tool calls only once they end;
    0.24 (.json, rewritten whole) writes the message, tokens and calls, once the calls end."""
    u = killed_response.usage
    if gem_test.merges_tool_responses(version):
        return holds(cli.chats, "Process Group PGID"), []  # the first call's result: all 0.24 writes
    return holds(cli.chats, f'"total":{u.input + u.cache_read + u.output}'), [replace(killed_response, calls=())]


def utc_minute() -> str:
    """Now, as Gemini CLI names a chat file by the minute its run started (UTC)."""
    return time.strftime("%Y-%m-%dT%H-%M", time.gmtime())


def gemini_oracle(version: str, sid: str, runs: list[list]) -> Oracle:
    """test_gemini_reader.oracle of each run (a resumed run starts a new turn), added up."""
    tokens = nanos = 0
    sigs: dict[str, list[int]] = {}
    for served in runs:
        t, n, s = gem_test.oracle(version, served)
        tokens, nanos = tokens + t, nanos + n
        for sig, row in s.items():
            sigs[sig] = [a + b for a, b in zip(sigs.get(sig, [0, 0, 0]), row)]
    return tuple_oracle(sid, (tokens, nanos, sigs))


def test_gemini_killed_in_a_shell_command_then_resumed(gemini_version, tmp_path):
    """0.61 keeps the killed response's tokens and never its call; 0.24 keeps nothing of it.
    `--resume latest` goes on in the same session; 0.61 resumed in a later minute than the
    chat file's name starts a second file of the session (its header and context; the new
    messages go on in the first), which the daemon must add to the session's files.

    Nothing in a Gemini chat marks a session's end (sources/gemini.py): a response with text
    and no calls ends the turn. 0.61's killed response was written before its calls, with no
    text: not an answer, so the killed session is running, then interrupted, as 0.24's is
    (its last message had a call)."""
    s = script()
    with ModelServer(s) as server:
        cli = GeminiCli(gemini_version, tmp_path, server.url, model=gem_test.MODEL)
        with watching(tmp_path, cli.gemini_home, "gemini_homes") as watched:
            proc = cli.start("Work, then get killed")
            wait_for(lambda: len(main_served(s.served)) == 2, timeout=90, what="the sleep response")
            written, kept = gemini_written(gemini_version, cli, main_served(s.served)[1])
            kill_in_sleep(proc, s.served, written)
            (sid,) = gem_test.read(cli.gemini_home)
            first = main_served(s.served)[:1] + kept
            watched.check(gemini_oracle(gemini_version, sid, [first]), status={sid: KILLED})
            if not gem_test.merges_tool_responses(gemini_version):  # 0.24 rewrites its one .json
                (chat,) = cli.chats()
                wait_for(lambda: utc_minute() not in chat.name, timeout=65, what="the chat's minute to pass")
            done = cli.run("Go on", resume="latest")
            assert done.returncode == 0, done.stderr[-3000:]
            assert list(gem_test.read(cli.gemini_home)) == [sid]
            assert len(cli.chats()) == (1 if gem_test.merges_tool_responses(gemini_version) else 2)
            runs = [first, main_served(s.served)[2:]]
            watched.check(gemini_oracle(gemini_version, sid, runs), status={sid: ENDED})
        assert not server.unrouted


@pytest.fixture(params=versions_under_test("opencode"), ids=lambda v: f"opencode-{v}")
def opencode_version(request):
    return require("opencode", request.param)


def opencode_runs(oc: OpenCode, command: str):
    """A ``written`` for kill_in_sleep: whether opencode.db holds the running call of ``command``."""
    def written() -> bool:
        for db in oc.databases():
            con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1)
            try:
                rows = con.execute("SELECT data FROM part WHERE data LIKE ?", (f'%"command":"{command}"%',)).fetchall()
            finally:
                con.close()
            if any('"status":"running"' in data for (data,) in rows):
                return True
        return False
    return written


def test_opencode_killed_in_a_shell_command_then_resumed(opencode_version, tmp_path):
    """OpenCode writes a step's tokens (its `step-finish` part) once the step's tool calls
    have ended: of the killed response it keeps the call, running, and no tokens. `run
    --session` goes on in the same session."""
    s = script()
    with ModelServer(s) as server:
        oc = OpenCode(opencode_version, tmp_path, server.url)
        with watching(tmp_path, oc.data, "opencode_data", **MOCK_PRICES) as watched:
            kill_in_sleep(oc.start("Work, then get killed"), s.served, opencode_runs(oc, "sleep 60"))
            (sid,) = oc_test.read(oc.data)
            first = main_served(s.served)[:1]
            watched.check(tuple_oracle(sid, oc_test.oracle(first)), status={sid: KILLED})
            done = oc.run("Go on", session=sid)
            assert done.returncode == 0, done.stderr[-3000:]
            assert list(oc_test.read(oc.data)) == [sid]
            runs = first + main_served(s.served)[2:]
            watched.check(tuple_oracle(sid, oc_test.oracle(runs)), status={sid: ENDED})
        assert not server.unrouted
