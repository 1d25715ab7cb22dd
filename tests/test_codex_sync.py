"""A Codex home as a source in `sync` (issue 28, item 1): each session a workflow
`<home>/<session id>` with exactly the synthetic home's planned tokens, dollars, request,
times and per-signature attributed costs; a second sync changes nothing; verify --files is
clean; appends are read from the stored offset and a file compressed or archived in place
adds nothing."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import zstandard

from adw_patternd.cli import main
from adw_patternd.synth.codex import make_codex_home
from helpers import assert_a_second_sync_changes_nothing, query, write_config


def _age(folder: Path, seconds: float = 7200) -> None:
    then = time.time() - seconds
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):
                os.utime(path, (then, then))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@pytest.fixture
def synced(tmp_path, database):
    home = tmp_path / "codex-home"
    plan = make_codex_home(str(home))
    _age(home / "sessions")
    _age(home / "archived_sessions")
    cfg = write_config(tmp_path, {}, database, codex_homes=[{"path": str(home), "name": "cx"}])
    assert main(["sync", "--config", str(cfg)]) == 0
    return plan, cfg, database


def workflows(database: str) -> dict[str, dict]:
    cols = ("workflow_id", "status", "start_time", "end_time", "time_source", "request", "request_source",
            "total_tokens", "cost_nanos", "estimated_nanos")
    return {r[0]: dict(zip(cols, r)) for r in query(database, f"SELECT {', '.join(cols)} FROM workflow_history "
                                                              "WHERE revision > 0")}


def commands(database: str) -> dict[str, dict[str, list[int]]]:
    got: dict[str, dict[str, list[int]]] = {}
    for sig, wid, cost, tokens, units in query(
            database, "SELECT p.pattern_signature, o.workflow_id, o.cost_nanos, o.tokens, o.units "
                      "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
                      "WHERE o.layer = 'command'"):
        got.setdefault(wid, {})[sig] = [int(cost), int(tokens), int(units)]
    return got


def test_sync_gives_each_session_its_plan(synced):
    plan, _cfg, database = synced
    stored = workflows(database)
    by_command = commands(database)
    assert set(stored) == {f"cx/{sid}" for sid in plan.sessions}
    for sid, p in plan.sessions.items():
        row = stored[f"cx/{sid}"]
        assert (row["total_tokens"], row["cost_nanos"], row["estimated_nanos"]) == (p.tokens, p.nanos, p.nanos), p.kind
        assert row["request"] == p.request, p.kind
        assert row["time_source"] == "session" and row["status"] == "completed"
        assert _time(row["start_time"]) == _time(p.first) and _time(row["end_time"]) == _time(p.last), p.kind
        assert by_command.get(f"cx/{sid}", {}) == {sig: list(v) for sig, v in p.commands.items()}, p.kind
    assert sum(p.nanos for p in plan.sessions.values()) > 0
    assert any(p.commands for p in plan.sessions.values())


def test_each_bad_file_is_one_warning(tmp_path, database, capsys):
    """A file the listing and the read both find wrong (no session_meta first line, not a
    rollout at all) is said once, by the read, with its session."""
    home = tmp_path / "codex-home"
    make_codex_home(str(home))
    _age(home)
    cfg = write_config(tmp_path, {}, database, codex_homes=[{"path": str(home), "name": "cx"}])
    capsys.readouterr()
    assert main(["sync", "--config", str(cfg)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    paths = [next(w for w in line.split() if w.startswith(str(home))) for line in warnings]
    assert len(paths) >= 5 and len(paths) == len(set(paths)), "\n".join(warnings)
    assert any("no session_meta first line" in line for line in warnings)


def test_a_second_sync_changes_nothing_and_verify_files_is_clean(synced, capsys):
    _plan, cfg, database = synced
    assert_a_second_sync_changes_nothing(cfg, database, capsys)


def test_compressed_or_archived_in_place_adds_nothing(synced, capsys):
    plan, cfg, database = synced
    before = workflows(database)
    moved = [p for p in plan.sessions.values() if p.kind == "session" and not p.compressed and not p.archived][:2]
    zst = Path(moved[0].path + ".zst")
    zst.write_bytes(zstandard.ZstdCompressor().compress(Path(moved[0].path).read_bytes()))
    os.unlink(moved[0].path)
    archived = Path(plan.home) / "archived_sessions" / os.path.basename(moved[1].path)
    shutil.move(moved[1].path, archived)
    assert main(["sync", "--config", str(cfg)]) == 0
    assert workflows(database) == before
    assert main(["verify", "--files", "--config", str(cfg)]) == 0


def append_git_status(path: str, when: str = "2026-09-20T10:00:00.000Z", usage=(1000, 200, 300, 0)) -> tuple:
    """Append one response that ran `git status` to a plain rollout: (model, usage, total)."""
    import json

    model, total = None, [0, 0, 0, 0, 0]
    for raw in Path(path).read_bytes().splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        p = obj.get("payload") or {}
        if obj.get("type") == "turn_context" and p.get("model"):
            model = p["model"]
        if p.get("type") == "token_count" and isinstance(p.get("info"), dict):
            total = list(p["info"]["total_token_usage"].values())[:5]
    last = [*usage, usage[0] + usage[2]]
    total = [a + b for a, b in zip(total, last)]
    keys = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")
    call = {"timestamp": when, "type": "response_item",
            "payload": {"type": "function_call", "name": "exec_command", "call_id": "call_git_appended",
                        "arguments": json.dumps({"cmd": "git status"})}}
    count = {"timestamp": when.replace("00.000Z", "01.000Z"), "type": "event_msg",
             "payload": {"type": "token_count", "info": {"total_token_usage": dict(zip(keys, total)),
                                                         "last_token_usage": dict(zip(keys, last)),
                                                         "model_context_window": 272000}}}
    with open(path, "a") as f:
        f.write(json.dumps(call) + "\n" + json.dumps(count) + "\n")
    return model, tuple(last), total


def test_an_append_is_read_from_the_stored_offset(synced):
    from adw_patternd.core.pricing import DEFAULT_PRICES
    from adw_patternd.sources.codex import response_nanos

    plan, cfg, database = synced
    p = next(p for p in plan.sessions.values() if p.kind == "session" and not p.compressed and not p.archived
             and "git:status:summary" not in p.commands)
    size = os.path.getsize(p.path)
    model, last, _total = append_git_status(p.path)
    nanos = response_nanos(model, last, DEFAULT_PRICES)
    assert main(["sync", "--config", str(cfg)]) == 0
    row = workflows(database)[f"cx/{p.sid}"]
    assert (row["total_tokens"], row["cost_nanos"]) == (p.tokens + last[0] + last[2], p.nanos + nanos)
    assert commands(database)[f"cx/{p.sid}"]["git:status:summary"] == [nanos, last[0] + last[2], 1]
    offset = query(database, "SELECT offset_bytes FROM agent_outputs WHERE workflow_id = ?", (f"cx/{p.sid}",))
    assert int(offset[0][0]) == os.path.getsize(p.path) > size
    assert main(["verify", "--files", "--config", str(cfg)]) == 0  # the same as reading it whole


@pytest.fixture
def mixed(tmp_path, database):
    """A Claude Code tree with its session store beside a Codex home."""
    from adw_patternd.synth.sessions import make_joined_tree

    make_joined_tree(str(tmp_path / "agents"), str(tmp_path / "projects"), 6, interactive=2)
    plan = make_codex_home(str(tmp_path / "codex-home"))
    _age(tmp_path)
    cfg = write_config(tmp_path, {"adw": tmp_path / "agents"}, database,
                       claude_projects=[{"path": str(tmp_path / "projects")}],
                       codex_homes=[{"path": str(tmp_path / "codex-home"), "name": "cx"}])
    assert main(["sync", "--config", str(cfg)]) == 0
    return plan, cfg, database


def _links(database: str, codex: bool) -> dict[str, int]:
    got: dict[str, int] = {}
    for sig, wid in query(database, "SELECT p.pattern_signature, o.workflow_id FROM pattern_occurrences o "
                                    "JOIN operation_patterns p ON p.id = o.pattern_id"):
        if wid.startswith("cx/") == codex:
            got[sig] = got.get(sig, 0) + 1
    return got


def test_agents_side_by_side_in_status_patterns_and_show(mixed, capsys):
    import csv
    import io
    import json

    plan, cfg, database = mixed
    stored = workflows(database)
    capsys.readouterr()
    assert main(["status", "--json", "--config", str(cfg)]) == 0
    by_agent = json.loads(capsys.readouterr().out)["by_agent"]
    codex = [r for wid, r in stored.items() if wid.startswith("cx/")]
    claude = [r for wid, r in stored.items() if not wid.startswith("cx/")]
    assert by_agent["codex"]["workflows"] == len(plan.sessions) == len(codex)
    assert by_agent["claude"]["workflows"] == len(claude) > 0
    assert by_agent["codex"]["spend_usd"] == pytest.approx(sum(r["cost_nanos"] for r in codex) / 1e9)
    assert main(["status", "--config", str(cfg)]) == 0
    assert f"codex {len(codex)} workflows" in capsys.readouterr().out
    # the report and the metrics file split the spend by agent alike
    assert main(["report", "--json", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["by_agent"] == by_agent
    from adw_patternd.config import load_config
    from adw_patternd.outputs.metrics import Metrics
    from adw_patternd.store import open_ledger

    config = load_config(cfg)
    with open_ledger(config) as ledger:
        Metrics(cfg.parent / "m.prom", ledger, config.agent_of).write()
    text = (cfg.parent / "m.prom").read_text()
    for agent, seen in by_agent.items():
        assert f'adw_patternd_spend_usd{{agent="{agent}"}} {seen["spend_usd"]}' in text

    for agent, is_codex in (("codex", True), ("claude", False)):
        assert main(["patterns", "--agent", agent, "--json", "--config", str(cfg)]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert {r["pattern_signature"]: r["occurrence_count"] for r in rows} == _links(database, is_codex), agent
        assert main(["patterns", "--agent", agent, "--csv", "--config", str(cfg)]) == 0
        assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == len(rows)
        assert main(["patterns", "--agent", agent, "--config", str(cfg)]) == 0
        text = capsys.readouterr().out
        assert all(r["pattern_signature"] in text for r in rows[:5])

    assert main(["show", "git:status:summary", "--limit", "200", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    section = out.split("workflows, newest first", 1)[1].split("\n\n", 1)[0]
    lines = section.splitlines()[1:]
    assert lines and all(("  codex  " in x) == x.startswith("  cx/") for x in lines)
    assert all("  claude  " in x for x in lines if not x.startswith("  cx/"))


def test_the_shipped_example_home_is_what_the_writer_writes(tmp_path):
    """examples/codex/ (read by config.yaml, so by the README's first command) is
    write_example_home's output, byte for byte: python -m adw_patternd.synth.codex examples/codex"""
    from adw_patternd.synth.codex import write_example_home

    shipped = Path(__file__).parent.parent / "examples" / "codex"
    write_example_home(str(tmp_path))

    def files(base: Path) -> dict[str, bytes]:
        return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}

    assert files(shipped) == files(tmp_path)
    assert "codex_homes" in (shipped.parent.parent / "config.yaml").read_text()


def test_two_readers_racing_for_a_copied_event_count_it_once(tmp_path, database):
    """Two processes read a session and its verbatim copy before either stores: the second
    change to be stored finds the events taken (counted_events), is refused, and is read again."""
    from adw_patternd.config import load_config
    from adw_patternd.engine import NOT_STORED, Engine
    from adw_patternd.store import open_ledger

    home = tmp_path / "codex-home"
    plan = make_codex_home(str(home), bad=False)
    _age(home)
    cfg = write_config(tmp_path, {}, database, codex_homes=[{"path": str(home), "name": "cx"}])
    config = load_config(str(cfg))
    dup = next(p for p in plan.sessions.values() if p.kind == "duplicate")
    source = plan.sessions[dup.repeats]
    with open_ledger(config) as ledger:
        first, second = Engine(config, ledger), Engine(config, ledger)
        root = config.root("cx")
        for e in (first, second):
            e.codex.refresh()
        late = first.prepare([(root, source.sid, NOT_STORED)])  # read first, stored last
        early = second.prepare([(root, dup.sid, NOT_STORED)])
        second.commit(early)
        first.commit(late)
    stored = workflows(database)
    both = stored[f"cx/{source.sid}"]["total_tokens"] + stored[f"cx/{dup.sid}"]["total_tokens"]
    assert both == source.tokens + dup.tokens  # each event once, whichever session holds it
    assert stored[f"cx/{source.sid}"]["total_tokens"] < source.tokens  # stored second: its copied events went
    held = query(database, "SELECT workflow_id, COUNT(*) FROM counted_events GROUP BY workflow_id")
    assert {w for w, _n in held} <= {f"cx/{source.sid}", f"cx/{dup.sid}"}


def test_an_append_whose_change_was_never_stored_counts_when_read_again(synced):
    """An append read, its change then lost (a refused commit, a stop): the next read, from
    the stored offset, must count its events, though this process remembers having counted
    them (the store decides)."""
    from adw_patternd.config import load_config
    from adw_patternd.engine import Engine
    from adw_patternd.store import open_ledger

    plan, cfg, database = synced
    p = next(p for p in plan.sessions.values() if p.kind == "session" and not p.compressed and not p.archived)
    _model, last, _total = append_git_status(p.path)
    config = load_config(str(cfg))
    with open_ledger(config) as ledger:
        engine = Engine(config, ledger)
        engine.codex.refresh()
        root = config.root("cx")
        lost = engine.prepare([(root, p.sid, None)])  # the append read, never committed
        assert lost[0].change is not None
        engine.process(root, p.sid)
    assert workflows(database)[f"cx/{p.sid}"]["total_tokens"] == p.tokens + last[0] + last[2]


def test_a_fork_indexed_while_its_first_line_was_written_still_knows_its_copies(tmp_path, database):
    from adw_patternd.config import load_config
    from adw_patternd.engine import Engine
    from adw_patternd.store import open_ledger

    home = tmp_path / "codex-home"
    plan = make_codex_home(str(home), bad=False)
    import json
    from datetime import timedelta

    fork = next(p for p in plan.sessions.values() if p.kind == "fork")
    # Its copies spill past its first second (as on a slow disk): only its parent's totals tell them.
    lines = [json.loads(x) for x in Path(fork.path).read_bytes().splitlines()]
    second = lines[0]["timestamp"][:19]
    same = [i for i, o in enumerate(lines) if o["timestamp"][:19] == second]
    for i in same[len(same) // 2:]:
        t = datetime.fromisoformat(lines[i]["timestamp"].replace("Z", "+00:00")) + timedelta(seconds=1)
        lines[i]["timestamp"] = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    data = "".join(json.dumps(o) + "\n" for o in lines).encode()
    os.unlink(fork.path)
    _age(home)
    cfg = write_config(tmp_path, {}, database, codex_homes=[{"path": str(home), "name": "cx"}])
    assert main(["sync", "--config", str(cfg)]) == 0  # the parent is stored; the fork is not there yet
    config = load_config(str(cfg))
    with open_ledger(config) as ledger:
        engine = Engine(config, ledger)
        engine.codex.refresh()
        Path(fork.path).write_bytes(data[:40])  # its session_meta line, cut short
        assert engine.codex.index.add("cx", fork.path, []) == fork.sid
        assert engine.codex.index.file("cx", fork.sid).parent_id is None
        Path(fork.path).write_bytes(data)
        engine.process(config.root("cx"), fork.sid)
    row = workflows(database)[f"cx/{fork.sid}"]
    assert (row["total_tokens"], row["cost_nanos"]) == (fork.tokens, fork.nanos)
