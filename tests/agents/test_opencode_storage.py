"""OpenCode's older JSON storage (issue 33): the real OpenCode 1.1.65 (agents.json's
"legacy" version, the last before the SQLite database) run offline against the scripted
model (Chat Completions); what sources/opencode_storage.py reads from its
``<data>/storage/`` is checked against what the model served, minus the title and summary
requests OpenCode never stores (no tools offered: ``Served.side``). 1.1.65's own cost prices
reasoning twice, as 1.2.27's does: the reader prices the tokens (the config's price, also
given as a user's ``prices:`` entry).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.core.commands import BUILTIN_COMMAND_RULES, call_signatures
from adw_patternd.sources import agent_fold as af
from adw_patternd.sources import opencode

from helpers import assert_a_second_sync_changes_nothing, diff_dumps, normalised_dump, query, wait_for, write_config

from .cli_base import require
from .install import AGENTS, legacy_version
from .script import Reply, Script, Usage
from .server import ModelServer
from .test_opencode_reader import PRICE, check, figures, oracle, read, run, usage

LEGACY = legacy_version("opencode")
MOCK_PRICE = {"mock-model": {"input": PRICE["input"], "output": PRICE["output"], "cache_write": PRICE["cache_write"],
                             "cache_read": PRICE["cache_read"]}}
FAST = {"debounce_ms": 100, "reconcile_interval_s": 0, "watch": {"sweep_interval_s": 0.5}}
FAILING = "git diff no-such-ref"  # exits 128


@pytest.fixture
def legacy():
    return require("opencode", LEGACY)


def stored(database: str) -> dict[str, tuple[int, int]]:
    return {r[0]: (int(r[1]), int(r[2])) for r in query(
        database, "SELECT adw_id, total_tokens, cost_nanos FROM workflow_history WHERE root_name = ? AND revision > 0",
        ("oc",))}


def config_for(folder: Path, data: Path, database: str, **extra) -> Path:
    return write_config(folder, {}, database, prices=MOCK_PRICE, opencode_data=[{"path": str(data), "name": "oc"}],
                        **extra)


def test_calls_in_sequence_and_in_one_response(legacy, tmp_path, capsys):
    replies = [Reply(calls=("git status",), usage=usage(0)),
               Reply(calls=("git log --oneline -3", "ls -la", FAILING), usage=usage(1)),
               Reply(text="Done.", usage=usage(2))]
    oc, script, _ = run(legacy, tmp_path, replies)
    assert oc.databases() == [] and (oc.storage() / "session").is_dir()
    reads = check(oc, script)
    ((sid, only),) = reads.items()
    assert only.workflow.workflow_id == f"oc/{sid}"
    calls = {sig: w.calls for sig, w in only.workflow.waits}
    assert calls["git:status:summary"] == 1 and calls["git:log:summary"] == 1
    failed = {sig: 1 for sig in call_signatures(FAILING, BUILTIN_COMMAND_RULES)}
    assert failed and af.from_json(only.state).failed == failed  # the exit code (128) of the one that failed
    # sync and verify --files: the database says what the files say, and the oracle's figures.
    database = str(tmp_path / "p.db")
    cfg = config_for(tmp_path, oc.data, database)
    assert main(["sync", "--config", str(cfg)]) == 0
    tokens, nanos, _ = oracle(script.served)
    assert stored(database) == {sid: (tokens, nanos)}
    assert_a_second_sync_changes_nothing(cfg, database, capsys)


def _cut(full: Path, view: Path, keep: int) -> None:
    """``view``: the storage as it was when ``keep`` of its message and part files were written
    (in id order, a message's parts after it); the message being written has no ``completed``."""
    shutil.rmtree(view, ignore_errors=True)
    shutil.copytree(full, view, ignore=shutil.ignore_patterns("message", "part"))
    written = 0
    for message in sorted((full / "message").glob("*/*.json")):
        if written >= keep:
            return
        parts = sorted((full / "part" / message.stem).glob("*.json"))
        info = json.loads(message.read_text())
        shown = parts[: max(0, keep - written - 1)]
        if len(shown) < len(parts):
            info.get("time", {}).pop("completed", None)
        target = view / "message" / message.parent.name / message.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(info))
        for part in shown:
            (view / "part" / message.stem).mkdir(parents=True, exist_ok=True)
            shutil.copy(part, view / "part" / message.stem / part.name)
        written += 1 + len(parts)


def test_resumed_session_read_in_appends(legacy, tmp_path):
    """A second run continues the session (--session): a read after the first run, then one
    from its state after the second, equals one whole read; so does a chain of reads of the
    files as they were written, one file more each time, and a read with nothing new."""
    replies = [Reply(calls=("git status",), usage=usage(0)), Reply(text="Done.", usage=usage(1)),
               Reply(calls=("git log --oneline -3", "git diff"), usage=usage(2)), Reply(text="Done again.", usage=usage(3))]
    oc, script, (first, _) = run(legacy, tmp_path, replies, prompts=("check the repo", "and the log"))
    whole = check(oc, script)
    again = read(oc.data, {sid: r.state for sid, r in first.items()})
    assert [figures(r.workflow) for r in again.values()] == [figures(r.workflow) for r in whole.values()]
    unchanged = read(oc.data, {sid: r.state for sid, r in again.items()})
    assert [figures(r.workflow) for r in unchanged.values()] == [figures(r.workflow) for r in whole.values()]
    view = tmp_path / "view"
    files = len(list(oc.storage().glob("message/*/*.json"))) + len(list(oc.storage().glob("part/*/*.json")))
    states: dict = {}
    for keep in range(1, files + 1):
        _cut(oc.storage(), view / "storage", keep)
        states = {sid: r.state for sid, r in read(view, states).items()}
    assert [figures(r.workflow) for r in read(view, states).values()] == [figures(r.workflow) for r in whole.values()]


def test_the_database_holds_the_session_after_an_upgrade(legacy, tmp_path):
    """OpenCode 1.2 imports storage/ into its database at its first start, keeping the ids,
    and leaves storage/ in place: the session is listed once, from the database, and a read
    from the storage's state counts nothing twice."""
    newer = require("opencode", AGENTS["opencode"]["older"])
    script = Script([Reply(calls=("git status",), usage=usage(0)), Reply(text="Done.", usage=usage(1)),
                     Reply(calls=("git log --oneline -3",), usage=usage(2)), Reply(text="Done again.", usage=usage(3))])
    with ModelServer(script) as server:
        from .opencode_cli import OpenCode
        oc = OpenCode(legacy, tmp_path, server.url)
        done = oc.run("check the repo")
        assert done.returncode == 0, done.stderr[-3000:]
        before = read(oc.data)
        done = oc.as_version(newer).run("and the log", session=done.session_id)
        assert done.returncode == 0, done.stderr[-3000:]
    assert script.left == 0 and not server.unrouted
    assert oc.databases() and (oc.storage() / "session").is_dir()
    problems: list[str] = []
    refs = opencode.list_sessions(str(oc.data), problems)
    assert not problems and list(refs) == list(before) and refs[next(iter(refs))].path.endswith(".db")
    whole = check(oc, script)
    again = read(oc.data, {sid: r.state for sid, r in before.items()})
    assert [figures(r.workflow) for r in again.values()] == [figures(r.workflow) for r in whole.values()]


def test_the_daemon_picks_a_storage_session_up_live(legacy, tmp_path, database, daemon, capsys):
    replies = [Reply(calls=("git status",), usage=usage(k)) if k % 2 == 0 else Reply(text="Done.", usage=usage(k))
               for k in range(4)]
    with ModelServer(Script(replies)) as server:
        from .opencode_cli import OpenCode
        oc = OpenCode(legacy, tmp_path / "cli", server.url)
        assert oc.run("check the repo").returncode == 0
        cfg = config_for(tmp_path, oc.data, database, **FAST)
        proc = daemon(cfg)
        wait_for(lambda: "catch-up:" in proc.log(), what="catch-up")
        assert len(stored(database)) == 1
        assert oc.run("check the repo again").returncode == 0
    whole = {sid: (r.workflow.total_tokens, r.workflow.cost_nanos) for sid, r in read(oc.data).items()}
    assert len(whole) == 2
    wait_for(lambda: stored(database) == whole, timeout=30, what="the second session stored live")
    assert proc.stop() == 0
    assert main(["verify", "--files", "--config", str(cfg)]) == 0, capsys.readouterr()
    again = tmp_path / "again"
    again.mkdir()
    fresh = str(again / "fresh.db")
    assert main(["sync", "--config", str(config_for(again, oc.data, fresh))]) == 0
    assert diff_dumps(normalised_dump(database), normalised_dump(fresh)) == []


def test_unknown_broken_and_half_written_files(legacy, tmp_path):
    """A part of an unknown type and a part that is not JSON count nothing; a message file
    being written (cut) ends the read there, and the next read, from its state, counts the
    rest once; a FIFO planted as a part file is never opened for reading."""
    oc, script, _ = run(legacy, tmp_path, [Reply(calls=("git status",), usage=usage(0)),
                                           Reply(text="Done.", usage=usage(1))])
    whole = read(oc.data)
    messages = sorted(oc.storage().glob("message/*/*.json"))
    folder = oc.storage() / "part" / messages[-1].stem
    (folder / "prt_zzzzunknown.json").write_text('{"type":"hologram","tokens":{"input":99}}')
    (folder / "prt_zzzzbroken.json").write_text('{"type":"step-fin')
    os.mkfifo(folder / "prt_zzzzfifo.json")
    assert [figures(r.workflow) for r in read(oc.data).values()] == [figures(r.workflow) for r in whole.values()]
    text = messages[-1].read_text()
    messages[-1].write_text(text[: len(text) // 2])
    cut = read(oc.data)
    assert [figures(r.workflow)[0] for r in cut.values()] < [figures(r.workflow)[0] for r in whole.values()]
    messages[-1].write_text(text)
    again = read(oc.data, {sid: r.state for sid, r in cut.items()})
    assert [figures(r.workflow) for r in again.values()] == [figures(r.workflow) for r in whole.values()]
