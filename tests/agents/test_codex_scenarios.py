"""The real Codex CLI, offline, against the scripted model (issue 31): each scenario on the
pinned and the older version. The oracle is what the model served (check.py's Oracle); the
daemon watched while Codex ran, and a fresh sync must agree with it and with the oracle."""

from __future__ import annotations

import pytest

from helpers import wait_for

from .check import ENDED
from .cli_base import require
from .codex_cli import has_exec_fork, writes_task_complete
from .codex_rig import CodexRig, session_id
from .install import versions_under_test
from .script import Reply, Script, Usage

VERSIONS = [pytest.param(v, id=f"codex-{v}") for v in versions_under_test("codex")]
GIT = ("git status", "git log --oneline", "git diff", "git add README.md")


@pytest.fixture(params=VERSIONS)
def version(request):
    return require("codex", request.param)


def ended(version: str) -> str:
    """The state of a finished `codex exec`, by what its file says: 0.77 writes no
    task_complete, so its file reads as a run still going (codex_cli.writes_task_complete)."""
    return ENDED if writes_task_complete(version) else "running"


def test_calls_one_after_another(version, tmp_path):
    script = Script([
        Reply(calls=("git status",), usage=Usage(input=1200, cache_read=800, output=60, reasoning=20)),
        Reply(calls=("git log --oneline",), usage=Usage(input=300, cache_read=2100, output=45)),
        Reply(calls=("git diff",), usage=Usage(input=250, cache_read=2500, output=35, reasoning=10)),
        Reply(text="Looked around.", usage=Usage(input=200, cache_read=2800, output=25)),
    ])
    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "Look at the repository")
        assert len(script.served) == 4 and {s.session for s in script.served} == {sid}
        rig.check({sid: ended(version)})


def test_two_calls_in_one_response(version, tmp_path):
    """Each call of a response gets an equal share of that response's dollars."""
    script = Script([
        Reply(calls=("git status", "git diff"), usage=Usage(input=1501, cache_read=999, output=77, reasoning=7)),
        Reply(calls=("git log --oneline", "git add README.md", "git status"),
              usage=Usage(input=401, cache_read=2300, output=51)),
        Reply(text="Both looked at.", usage=Usage(input=150, cache_read=2900, output=20)),
    ])
    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "Status and diff together")
        rig.check({sid: ended(version)})


def test_cache_writes_reported(version, tmp_path):
    """The API names cache writes (input_tokens_details.cache_write_tokens), which 0.169
    records as cache_write_input_tokens: they are part of the input, priced as input."""
    script = Script([
        Reply(calls=("git status",), usage=Usage(input=700, cache_write_5m=900, cache_read=400, output=30)),
        Reply(text="Cached.", usage=Usage(input=100, cache_write_5m=250, cache_read=1800, output=12)),
    ])
    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "Write the cache")
        rig.check({sid: ended(version)})


def test_resume_last(version, tmp_path):
    """`codex exec resume --last` appends to the same session: it costs what it served."""
    script = Script([
        Reply(calls=("git status",), usage=Usage(input=1000, cache_read=500, output=40)),
        Reply(text="First part done.", usage=Usage(input=200, cache_read=1400, output=20)),
        Reply(calls=("git log --oneline",), usage=Usage(input=600, cache_read=1800, output=30, reasoning=12)),
        Reply(text="Second part done.", usage=Usage(input=100, cache_read=2500, output=15)),
    ])
    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "First part")
        rig.check({sid: ended(version)})
        assert rig.run(rig.codex.resume_last, "Second part") == sid
        rig.check({sid: ended(version)})


def test_fork(version, tmp_path):
    """`codex exec fork <id>`: a new session that copies its parent's history; the copy is
    not spend, the fork's own responses are."""
    if not has_exec_fork(version):
        pytest.skip(f"Codex {version} has no `codex exec fork` (it forks only from the interactive TUI)")
    script = Script([
        Reply(calls=("git status",), usage=Usage(input=1000, cache_read=500, output=40)),
        Reply(text="Parent done.", usage=Usage(input=200, cache_read=1400, output=20)),
        Reply(calls=("git diff",), usage=Usage(input=700, cache_read=1700, output=35)),
        Reply(text="Fork done.", usage=Usage(input=90, cache_read=2400, output=11)),
    ])
    with CodexRig(version, tmp_path, script) as rig:
        parent = rig.run(rig.codex.exec, "The parent's work")
        child = rig.run(rig.codex.fork, parent, "The fork's own work")
        assert child != parent
        rig.check({parent: ENDED, child: ENDED})


def test_api_error_then_retry(version, tmp_path):
    """A request answered with a 500 counts nothing; the retry that succeeds counts once."""
    script = Script([
        Reply(calls=("git status",), usage=Usage(input=1000, cache_read=500, output=40)),
        Reply(error=500),
        Reply(calls=("git diff",), usage=Usage(input=333, cache_read=1500, output=44)),
        Reply(text="Done after a retry.", usage=Usage(input=120, cache_read=1900, output=18)),
    ])
    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "Work through an error")
        assert [s.status for s in script.served] == [200, 500, 200, 200]
        rig.check({sid: ended(version)})


def test_sigkill_mid_run_then_resume(version, tmp_path):
    """Killed while a shell command runs: the response that asked for it was served and
    counts; the session is interrupted; resumed, it goes on in the same file."""
    script = Script([
        Reply(calls=("git status",), usage=Usage(input=1000, cache_read=500, output=40)),
        Reply(calls=("sleep 60",), usage=Usage(input=400, cache_read=1400, output=33)),
        Reply(calls=("git log --oneline",), usage=Usage(input=700, cache_read=1700, output=35)),
        Reply(text="Resumed and done.", usage=Usage(input=90, cache_read=2400, output=11)),
    ])
    with CodexRig(version, tmp_path, script) as rig:
        proc = rig.codex.start("Work, then get killed")
        wait_for(lambda: len(script.served) == 2 and any("sleep 60" in p.read_text() for p in rig.codex.rollouts()),
                 timeout=60, what="the sleep call in the rollout")
        # The call can start a few milliseconds before its response's tokens are written: a
        # kill in between keeps no tokens of that response in any file (what this test
        # asserts would then be unknowable), so the kill waits for them too
        wait_for(lambda: rig.codex.responses_with_usage() == 2, what="the sleep response's tokens in the rollout")
        sid = session_id(rig.codex.kill(proc))
        # 0.169's exec_command hands a command still running back to the model after 10 s,
        # which then asks again: a kill that late is not the kill this scenario is about
        assert len(script.served) == 2, f"the sleep call went back to the model before the kill: {script.served}"
        rig.check({sid: "running"})  # within stale_after_s, a killed run's file looks like one going on
        rig.check_interrupted(sid)
        assert rig.run(rig.codex.resume_last, "Go on") == sid
        rig.check({sid: ended(version)})


def test_automatic_compaction(version, tmp_path):
    """Usage over the auto-compact limit: Codex asks for a summary (a request without tools)
    and goes on from it. The summary request counts once; the compacted history is not
    counted again."""
    script = Script([
        Reply(calls=("git status",), usage=Usage(input=9000, cache_read=2000, output=50)),
        Reply(calls=("git diff",), usage=Usage(input=500, cache_read=1000, output=40)),
        Reply(text="Done after compacting.", usage=Usage(input=300, cache_read=1700, output=30)),
    ], compact_reply=Reply(text="Summary: ran git status.", usage=Usage(input=10500, cache_read=700, output=420)))
    with CodexRig(version, tmp_path, script, context_window=20000, auto_compact=10000) as rig:
        sid = rig.run(rig.codex.exec, "Fill the context")
        assert [s.compact for s in script.served].count(True) == 1, script.served
        rig.check({sid: ended(version)})


def test_several_hundred_turns(version, tmp_path):
    """300 responses in one session, one call each but the last."""
    replies = [Reply(calls=(GIT[n % len(GIT)],), usage=Usage(input=100 + n, cache_read=50 * n, output=10 + n % 7))
               for n in range(299)]
    script = Script([*replies, Reply(text="Three hundred.", usage=Usage(input=90, cache_read=15000, output=9))])
    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "Many turns", timeout=50)
        assert len(script.served) == 300
        rig.check({sid: ended(version)})
