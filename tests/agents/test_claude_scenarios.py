"""The real Claude Code CLI, offline, against a scripted model (issue 31).

Each scenario runs the pinned and the older CLI (tests/agents/agents.json) in a scratch
repository and HOME, with ``adw-patternd run`` watching the session store, and checks what
we stored against what the model served (check.py): tokens and dollars per session, calls
and attributed dollars per command signature, each session's state, the daemon's database
against a fresh sync's, and ``verify --files``.
"""

from __future__ import annotations

import pytest

from agents.check import ENDED, KILLED, Oracle, Watched
from agents.claude_cli import ClaudeCode
from agents.install import version_of
from agents.script import Reply, Script, Usage
from agents.server import ModelServer
from helpers import wait_for

VERSIONS = [pytest.param(version_of("claude", "pinned"), id="pinned"),
            pytest.param(version_of("claude", "older"), id="older")]
PROMPT = "Scripted scenario: do as the model says."


def usage(i: int = 0, **kw) -> Usage:
    """A response's usage, different for each ``i`` so that a figure counted twice or lost shows."""
    base = {"input": 40 + i, "output": 15 + i, "cache_read": 900 + 7 * i, "cache_write_5m": 120 + 3 * i}
    return Usage(**{**base, **kw})


@pytest.fixture
def agent(tmp_path):
    """``agent(version, replies)`` -> (claude, script, server, watched), all stopped afterwards."""
    opened = []

    def make(version: str, replies: list[Reply], **script_kw):
        script = Script(list(replies), **script_kw)
        server = ModelServer(script).__enter__()
        opened.append(server)
        claude = ClaudeCode(version, tmp_path / "agent", server.url)
        watched = Watched(tmp_path, claude.projects).__enter__()
        opened.append(watched)
        return claude, script, server, watched

    yield make
    for thing in reversed(opened):
        thing.__exit__(None, None, None)


def finished(run, server) -> str:
    assert run.returncode == 0, f"claude failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    assert not server.unrouted, f"the agent asked what the server does not answer: {server.unrouted}"
    assert run.session_id, run.stdout[-2000:]
    return run.session_id


@pytest.mark.parametrize("version", VERSIONS)
def test_calls_one_after_another(agent, version):
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status",), usage=usage(0)),
        Reply(calls=("git log --oneline -3",), usage=usage(1)),
        Reply(calls=("git diff HEAD",), usage=usage(2)),
        Reply(calls=("git status --short",), usage=usage(3)),
        Reply(text="All four ran.", usage=usage(4)),
    ])
    sid = finished(claude.run(PROMPT), server)
    assert script.left == 0
    watched.check(Oracle.of(script.served), status={sid: ENDED})


@pytest.mark.parametrize("version", VERSIONS)
def test_two_calls_in_one_response(agent, version):
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status", "git diff"), usage=usage(0, cache_write_5m=0)),
        Reply(calls=("git log -1", "git status", "echo three"), usage=usage(1)),
        Reply(text="Both ran.", usage=usage(2)),
    ])
    sid = finished(claude.run(PROMPT), server)
    watched.check(Oracle.of(script.served), status={sid: ENDED})


@pytest.mark.parametrize("version", VERSIONS)
def test_one_hour_cache_writes(agent, version):
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status",), usage=usage(0, cache_write_5m=0, cache_write_1h=4800)),
        Reply(calls=("git diff",), usage=usage(1, cache_write_5m=300, cache_write_1h=1200)),
        Reply(text="Cached.", usage=usage(2, cache_write_5m=0, cache_write_1h=700)),
    ])
    sid = finished(claude.run(PROMPT), server)
    watched.check(Oracle.of(script.served), status={sid: ENDED})
