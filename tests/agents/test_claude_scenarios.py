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


@pytest.mark.parametrize("version", VERSIONS)
def test_resume(agent, version):
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status",), usage=usage(0)),
        Reply(text="First part done.", usage=usage(1)),
        Reply(calls=("git log -2",), usage=usage(2)),
        Reply(calls=("git diff",), usage=usage(3)),
        Reply(text="Second part done.", usage=usage(4)),
    ])
    first = finished(claude.run(PROMPT), server)
    second = finished(claude.run("Go on.", "--resume", first), server)
    watched.check(Oracle.of(script.served), status={first: ENDED, second: ENDED})


@pytest.mark.parametrize("version", VERSIONS)
def test_resume_fork_session(agent, version):
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status",), usage=usage(0)),
        Reply(text="Parent done.", usage=usage(1)),
        Reply(calls=("git diff --stat",), usage=usage(2)),
        Reply(text="Fork done.", usage=usage(3)),
    ])
    parent = finished(claude.run(PROMPT), server)
    fork = finished(claude.run("Branch off.", "--resume", parent, "--fork-session"), server)
    assert fork != parent, "--fork-session gave the fork its parent's session id"
    watched.check(Oracle.of(script.served), status={parent: ENDED, fork: ENDED})


@pytest.mark.parametrize("version", VERSIONS)
def test_task_subagent_runs_its_own_commands(agent, version):
    task = "Sub-agent: look at the repository's state."
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status",), usage=usage(0)),
        Reply(subagent=task, usage=usage(1)),
        Reply(text="Waiting for the sub-agent.", usage=usage(2)),
        Reply(text="The sub-agent reported.", usage=usage(3)),
    ], agents={task: [
        Reply(calls=("git log --oneline",), usage=usage(10)),
        Reply(calls=("git diff", "git status"), usage=usage(11)),
        Reply(text="Sub-agent report.", usage=usage(12)),
    ]})
    sid = finished(claude.run(PROMPT), server)
    assert not script.agents[task], "the sub-agent did not take its replies"
    assert any(s.calls == ("git log --oneline",) for s in script.served)
    watched.check(Oracle.of(script.served), status={sid: ENDED})


@pytest.mark.parametrize("version", VERSIONS)
def test_api_error_then_retry(agent, version):
    """An overloaded answer the CLI retries itself; then, with retries off, an error that
    ends the run (2.1.x writes a <synthetic> assistant entry for it), and a resume."""
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status",), usage=usage(0)),
        Reply(error=529),
        Reply(text="Answered on the retry.", usage=usage(1)),
        Reply(error=500),
        Reply(calls=("git diff",), usage=usage(2)),
        Reply(text="Done after the error.", usage=usage(3)),
    ])
    first = finished(claude.run(PROMPT), server)
    second = claude.run("Again.", "--resume", first, env={"CLAUDE_CODE_MAX_RETRIES": "0"})
    sessions = {first}
    if second.returncode != 0:  # the error ended the run: a person tries again
        assert any("<synthetic>" in f.read_text() for f in claude.session_files()), \
            "the failed run wrote no <synthetic> entry"
        sessions.add(second.session_id or first)
        sessions.add(finished(claude.run("Try again.", "--resume", second.session_id or first), server))
    else:
        sessions.add(finished(second, server))
    assert [s.status for s in script.served if s.status != 200] == [529, 500]
    watched.check(Oracle.of(script.served), status={sid: ENDED for sid in sessions})


# A call still running when the agent is killed (2.1.x refuses a bare long `sleep`).
LONG_COMMAND = "python3 -c 'import time; time.sleep(60)'"


@pytest.mark.parametrize("version", VERSIONS)
def test_sigkill_mid_run_then_resume(agent, version):
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status",), usage=usage(0)),
        Reply(calls=(LONG_COMMAND,), usage=usage(1)),
        Reply(calls=("git diff",), usage=usage(2)),
        Reply(text="Finished after the crash.", usage=usage(3)),
    ])
    proc = claude.start(PROMPT)
    try:
        sleeping = wait_for(lambda: next((s for s in script.served if s.calls == (LONG_COMMAND,)), None),
                            timeout=60, what="the model to call sleep")
        wait_for(lambda: any(sleeping.response_id in f.read_text() for f in claude.session_files()),
                 what="the sleep call written to the session file")
    finally:
        claude.kill(proc)
    sid = sleeping.session
    watched.check(Oracle.of(script.served), status={sid: KILLED})

    resumed = finished(claude.run("Carry on.", "--resume", sid), server)
    watched.check(Oracle.of(script.served), status={sid: ENDED, resumed: ENDED})


COMPACT_WINDOW = {"CLAUDE_CODE_AUTO_COMPACT_WINDOW": "200000"}  # 2.1.x's own window for sonnet is larger


@pytest.mark.parametrize("version", VERSIONS)
def test_automatic_compaction(agent, version):
    """Usage near the context window makes the agent compact: it asks for a summary, then
    goes on from the summary. The compacted history is not counted again.

    Neither version writes the summary's response to the session file (no assistant entry
    holds its message id, asserted below), so no reader of the files can count it: the
    oracle leaves it out, and a version that starts writing it fails here."""
    claude, script, server, watched = agent(version, [
        Reply(calls=("git status",), usage=usage(0, cache_read=185_000)),
        Reply(calls=("git diff",), usage=usage(1, cache_read=6_000)),
        Reply(text="Compacted and done.", usage=usage(2)),
    ])
    sid = finished(claude.run(PROMPT, env=COMPACT_WINDOW), server)
    summaries = [s for s in script.served if s.compact]
    assert summaries, "the agent did not compact"
    text = "".join(f.read_text() for f in claude.session_files())
    assert "compact_boundary" in text
    written = [s.response_id for s in summaries if s.response_id in text]
    assert not written, f"the summary responses {written} are now written: count them in the oracle"
    watched.check(Oracle.of([s for s in script.served if not s.compact]), status={sid: ENDED})


@pytest.mark.parametrize("version", VERSIONS)
def test_several_hundred_turns(agent, version):
    turns = 240
    commands = ("git status", "true", "git diff", "git log -1")
    claude, script, server, watched = agent(version, [
        Reply(calls=(commands[i % len(commands)],), usage=usage(i % 50, cache_read=2_000 + 40 * i))
        for i in range(turns)] + [Reply(text="Many turns later.", usage=usage(3))])
    sid = finished(claude.run(PROMPT, "--max-turns", str(turns + 10), timeout=240), server)
    assert script.left == 0
    watched.check(Oracle.of(script.served), status={sid: ENDED})
