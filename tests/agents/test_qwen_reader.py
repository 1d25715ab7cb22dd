"""The Qwen Code reader (sources/qwen.py) on sessions the real CLI wrote, offline, against the
scripted model: pinned and older versions. The oracle is what the model served
(chat_oracle.py): tokens and dollars per session, calls and attributed dollars per signature."""

from __future__ import annotations

import json

import pytest

from adw_patternd.sources import qwen
from adw_patternd.sources.agent_fold import from_json

from .agent_watch import MOCK_PRICES, chat_oracle, main_served, merged, watching
from .chat_oracle import check, context, expected, plant_fifo, read_in_appends, read_with_deadline
from .check import ENDED
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


def test_fork_copies_count_once(version, tmp_path):
    """`qwen --resume <id> --fork-session -p`: a new session whose file starts with copies of
    the parent's records (same uuids, `forkedFrom` on each); with the daemon watching, the
    parent's responses count in the parent's workflow only, the fork's own in the fork's."""
    if not has_fork_session(version):
        pytest.skip(f"Qwen Code {version} has no --fork-session")
    script = Script([
        Reply(calls=("git status",), usage=usage(0)), Reply(text="Parent done.", usage=usage(1)),
        Reply(calls=("git log --oneline -3",), usage=usage(2)), Reply(text="Fork done.", usage=usage(3)),
    ])
    with ModelServer(script) as server:
        cli = Qwen(version, tmp_path, server.url)
        with watching(tmp_path, cli.home, "qwen_homes", **MOCK_PRICES) as watched:
            parent = cli.run("The parent's work")
            parent_served = main_served(script.served)
            watched.check(chat_oracle(parent, [parent_served]), status={parent: ENDED})
            child = cli.run("The fork's own work", resume=parent, fork=True)
            assert child != parent and sorted(cli.sessions()) == sorted([parent, child])
            copied = [line for line in chat_lines(cli, child) if "forkedFrom" in line]
            assert copied and all(line["forkedFrom"]["sessionId"] == parent for line in copied)
            fork_served = main_served(script.served)[len(parent_served):]
            watched.check(merged(chat_oracle(parent, [parent_served]), chat_oracle(child, [fork_served])),
                          status={parent: ENDED, child: ENDED})
        assert not server.unrouted


def has_fork_session(version: str) -> bool:
    """--fork-session came after 0.15 (0.15.10's --help has none; 0.24.4's has it)."""
    return tuple(int(p) for p in version.split(".")[:2]) >= (0, 24)


def chat_lines(cli: Qwen, sid: str) -> list[dict]:
    (path,) = (cli.home / "projects").glob(f"*/chats/{sid}.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
