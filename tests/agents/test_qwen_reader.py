"""The Qwen Code reader (sources/qwen.py) on sessions the real CLI wrote, offline, against the
scripted model: pinned and older versions. The oracle is what the model served
(chat_oracle.py): tokens and dollars per session, calls and attributed dollars per signature."""

from __future__ import annotations

import json

import pytest

from adw_patternd.sources import qwen
from adw_patternd.sources.agent_fold import from_json

from .chat_oracle import check, context, expected, plant_fifo, read_in_appends, read_with_deadline
from .cli_base import require
from .install import versions_under_test
from .qwen_cli import Qwen
from .script import Reply, Script, Usage
from .server import ModelServer


@pytest.fixture(params=versions_under_test("qwen"), ids=lambda v: f"qwen-{v}")
def version(request):
    return require("qwen", request.param)


def usage(k: int) -> Usage:
    return Usage(input=600 + 100 * k, cache_read=1500 + 900 * k, output=40 + 3 * k, reasoning=10 + k)


def read(home, sid: str):
    problems: list[str] = []
    refs = qwen.list_sessions(str(home), problems)
    assert not problems and sid in refs, (problems, refs)
    return refs[sid], qwen.read_session(refs[sid], None, context())


def run(version, tmp_path, replies, prompt="Look at the repository"):
    script = Script(list(replies))
    with ModelServer(script) as server:
        cli = Qwen(version, tmp_path, server.url)
        sid = cli.run(prompt)
        assert not server.unrouted
    return cli, sid, [list(script.served)]


def test_calls_in_sequence(version, tmp_path):
    cli, sid, runs = run(version, tmp_path, [
        Reply(calls=("git status",), usage=usage(0)),
        Reply(calls=("git diff nosuchref",), usage=usage(1)),
        Reply(text="Done.", usage=usage(2)),
    ])
    ref, got = read(cli.home, sid)
    wf = got.workflow
    check(wf, expected(runs), "qwen")
    assert wf.status == "completed" and wf.request == "Look at the repository" and wf.model == "mock-model"
    waits = dict(wf.waits)
    assert waits["git:status:summary"].calls == 1 and waits["git:diff:summary"].calls == 1
    assert from_json(got.state).failed == {"git:diff:summary": 1}
    assert read_in_appends(qwen, ref, tmp_path).workflow == wf


def test_calls_in_one_response(version, tmp_path):
    cli, sid, runs = run(version, tmp_path, [
        Reply(calls=("git status", "git log --oneline -3", "ls -la"), usage=usage(0)),
        Reply(text="Done.", usage=usage(3)),
    ])
    _, got = read(cli.home, sid)
    check(got.workflow, expected(runs), "qwen")
    assert {c.signature: c.calls for c in got.workflow.agents[0].commands} == {
        "git:status:summary": 1, "git:log:summary": 1}
    assert dict(got.workflow.waits)["git:log:summary"].calls == 1


def test_resumed_session_appends_and_counts_both_runs(version, tmp_path):
    script = Script([
        Reply(calls=("git status",), usage=usage(0)), Reply(text="First.", usage=usage(1)),
        Reply(calls=("git log --oneline -3",), usage=usage(2)), Reply(text="Second.", usage=usage(3)),
    ])
    with ModelServer(script) as server:
        cli = Qwen(version, tmp_path, server.url)
        sid = cli.run("First part")
        ref, first = read(cli.home, sid)
        check(first.workflow, expected([list(script.served)]), "qwen")
        assert cli.run("Second part", resume=sid) == sid
    again = qwen.read_session(ref, first.state, context())
    whole = qwen.read_session(ref, None, context()).workflow
    assert again.workflow == whole and whole.status == "completed"
    check(whole, expected([list(script.served)]), "qwen")
    assert list(qwen.list_sessions(str(cli.home), [])) == [sid]


def test_bad_input_and_files_never_opened(version, tmp_path):
    """A cut last line and a record of an unknown type change nothing; FIFOs planted as
    settings.json, oauth_creds.json and the usage files are never opened."""
    cli, sid, runs = run(version, tmp_path, [Reply(calls=("git status",), usage=usage(0)),
                                             Reply(text="Done.", usage=usage(1))])
    ref, clean = read(cli.home, sid)
    with open(ref.path, "ab") as f:
        f.write(json.dumps({"uuid": "x", "type": "brand_new", "timestamp": "2020-01-01T00:00:00.000Z",
                            "usageMetadata": {"promptTokenCount": 99}}).encode() + b"\n")
        f.write(b'{"uuid":"y","type":"assistant","usageMetadata":{"promptTokenCount":5')
    for name in ("settings.json", "oauth_creds.json", "usage_record.jsonl", "installation_id"):
        plant_fifo(cli.home / name)
    problems: list[str] = []
    refs = read_with_deadline(lambda: qwen.list_sessions(str(cli.home), problems))
    got = read_with_deadline(lambda: qwen.read_session(refs[sid], clean.state, context()))
    assert got.workflow.total_tokens == clean.workflow.total_tokens
    assert got.workflow.cost_nanos == clean.workflow.cost_nanos and not problems
    whole = read_with_deadline(lambda: qwen.read_session(refs[sid], None, context()))
    assert whole.workflow.agents == clean.workflow.agents
    check(whole.workflow, expected(runs), "qwen")
    assert qwen.session_of(str(cli.home), ref.path) == sid
    assert qwen.session_of(str(cli.home), str(cli.home / "settings.json")) is None
    assert qwen.watched_folders(str(cli.home)) == (str(cli.home / "projects"),)
