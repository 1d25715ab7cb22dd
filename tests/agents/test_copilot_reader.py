"""The GitHub Copilot CLI reader (sources/copilot.py) on sessions the real CLI wrote, offline,
against the scripted model: pinned and older versions. The oracle is what the model served
(chat_oracle.py): tokens and dollars per session, calls and attributed dollars per signature.

Measured: 1.0.102 writes a `session.usage_record` per response; 1.0.60 writes none (each
message says its output tokens, the shutdown the run's totals), so there the calls' shares are
their output's and the session's input is added once per run."""

from __future__ import annotations

import json

import pytest

from adw_patternd.sources import copilot
from adw_patternd.sources.agent_fold import SessionRef, from_json

from .chat_oracle import check, context, expected, plant_fifo, read_in_appends, read_with_deadline
from .cli_base import require
from .copilot_cli import Copilot
from .install import versions_under_test
from .script import Reply, Script, Usage
from .server import ModelServer


@pytest.fixture(params=versions_under_test("copilot"), ids=lambda v: f"copilot-{v}")
def version(request):
    return require("copilot", request.param)


def usage(k: int) -> Usage:
    return Usage(input=600 + 100 * k, cache_read=1500 + 900 * k, output=40 + 3 * k, reasoning=10 + k)


def has_usage_records(root, sid: str) -> bool:
    return b'"session.usage_record"' in (root / "session-state" / sid / "events.jsonl").read_bytes()


def read(home, sid: str, fresh: bool = False):
    problems: list[str] = []
    refs = copilot.list_sessions(str(home), problems)
    assert not problems and sid in refs
    return refs[sid], copilot.read_session(refs[sid], None, context(fresh))


def run(version, tmp_path, replies, prompts=("Look at the repository",)):
    script = Script(list(replies))
    runs, sid = [], None
    with ModelServer(script) as server:
        cli = Copilot(version, tmp_path, server.url)
        for prompt in prompts:
            before = len(script.served)
            sid = cli.run(prompt, resume=sid)
            runs.append(script.served[before:])
        assert not server.unrouted
    return cli, sid, runs


def test_calls_in_sequence(version, tmp_path):
    cli, sid, runs = run(version, tmp_path, [
        Reply(calls=("git status",), usage=usage(0)),
        Reply(calls=("git diff nosuchref",), usage=usage(1)),
        Reply(text="Done.", usage=usage(2)),
    ])
    ref, got = read(cli.home, sid)
    wf = got.workflow
    check(wf, expected(runs, output_only=not has_usage_records(cli.home, sid)), "copilot")
    assert wf.status == "completed" and wf.request == "Look at the repository" and wf.model == "mock-model"
    assert wf.workflow_id == f"home/{sid}" and got.files[0].path == ref.path
    waits = dict(wf.waits)
    assert waits["git:status:summary"].calls == 1 and waits["git:diff:summary"].calls == 1
    assert from_json(got.state).failed == {"git:diff:summary": 1}
    assert read_in_appends(copilot, ref, tmp_path).workflow == wf


def test_calls_in_one_response(version, tmp_path):
    cli, sid, runs = run(version, tmp_path, [
        Reply(calls=("git status", "git log --oneline -3", "ls -la"), usage=usage(0)),
        Reply(text="Done.", usage=usage(3)),
    ])
    _, got = read(cli.home, sid)
    check(got.workflow, expected(runs, output_only=not has_usage_records(cli.home, sid)), "copilot")
    assert {c.signature: c.calls for c in got.workflow.agents[0].commands} == {
        "git:status:summary": 1, "git:log:summary": 1}


def test_resumed_session_appends_and_counts_both_runs(version, tmp_path):
    script_replies = [
        Reply(calls=("git status",), usage=usage(0)), Reply(text="First.", usage=usage(1)),
        Reply(calls=("git log --oneline -3",), usage=usage(2)), Reply(text="Second.", usage=usage(3)),
    ]
    script = Script(script_replies)
    with ModelServer(script) as server:
        cli = Copilot(version, tmp_path, server.url)
        sid = cli.run("First part")
        first_runs = [list(script.served)]
        ref, first = read(cli.home, sid)
        check(first.workflow, expected(first_runs, output_only=not has_usage_records(cli.home, sid)), "copilot")
        assert cli.run("Second part", resume=sid) == sid
        runs = [first_runs[0], script.served[len(first_runs[0]):]]
    again = copilot.read_session(ref, first.state, context())
    whole = copilot.read_session(ref, None, context()).workflow
    assert again.workflow == whole and whole.status == "completed"
    check(whole, expected(runs, output_only=not has_usage_records(cli.home, sid)), "copilot")
    assert [s for s in copilot.list_sessions(str(cli.home), [])] == [sid]


def test_bad_input_and_files_never_opened(version, tmp_path):
    """A cut last line and a record of an unknown type change nothing; a FIFO planted as
    config.json (and the SQLite index, and the logs) is never opened: list and read return."""
    cli, sid, runs = run(version, tmp_path, [Reply(calls=("git status",), usage=usage(0)),
                                             Reply(text="Done.", usage=usage(1))])
    ref, clean = read(cli.home, sid)
    with open(ref.path, "ab") as f:
        f.write(json.dumps({"type": "brand.new_event", "data": {"usage": {"inputTokens": 99}},
                            "timestamp": "2020-01-01T00:00:00.000Z"}).encode() + b"\n")
        f.write(b'{"type":"session.usage_record","data":{"usage":{"inputTokens":5')
    for name in ("config.json", "session-store.db", "settings.json", "logs"):
        plant_fifo(cli.home / name)
    problems: list[str] = []
    refs = read_with_deadline(lambda: copilot.list_sessions(str(cli.home), problems))
    got = read_with_deadline(lambda: copilot.read_session(refs[sid], clean.state, context()))
    assert got.workflow.total_tokens == clean.workflow.total_tokens
    assert got.workflow.cost_nanos == clean.workflow.cost_nanos and not problems
    whole = read_with_deadline(lambda: copilot.read_session(refs[sid], None, context()))
    assert whole.workflow.agents == clean.workflow.agents
    assert copilot.session_of(str(cli.home), ref.path) == sid
    assert copilot.session_of(str(cli.home), str(cli.home / "config.json")) is None
    assert copilot.watched_folders(str(cli.home)) == (str(cli.home / "session-state"),)
    assert isinstance(ref, SessionRef)
