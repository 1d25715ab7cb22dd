"""Codex CLI rollouts (sources/codex.py) against the synthetic home's own plan
(synth/codex.py), the fold's split invariance, the lister keeping out of the rest of a
Codex home, and the bad inputs of issue 28."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from adw_patternd.config import parse_config
from adw_patternd.core.errors import ConfigError
from adw_patternd.core.pricing import DEFAULT_PRICES, cost_nanos
from adw_patternd.sources.codex import (CodexState, NotARollout, fold, from_json, list_home,
                                        read_home, read_rollout, to_json)
from adw_patternd.synth.codex import make_codex_home, write_example_home


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("codex")
    plan = make_codex_home(str(folder))
    notes: list[str] = []
    return plan, read_home(str(folder), DEFAULT_PRICES, notes), notes


def observed(state: CodexState) -> dict:
    return {"request": state.request, "first": state.first_ts, "last": state.last_ts, "tokens": state.tokens,
            "nanos": state.nanos,
            "by_model": {k: [m.input, m.cached, m.output, m.reasoning] for k, m in state.models.items()},
            "commands": {k: [c.cost_nanos, c.tokens, c.calls] for k, c in state.commands.items()},
            "waits": {k: list(w.values) for k, w in state.waits.items()}}


def planned(p) -> dict:
    return {"request": p.request, "first": p.first, "last": p.last, "tokens": p.tokens, "nanos": p.nanos,
            "by_model": p.by_model, "commands": p.commands, "waits": {k: sorted(v) for k, v in p.waits.items()}}


def test_the_home_reads_as_its_plan(home):
    plan, read, _notes = home
    assert len(plan.sessions) >= 60
    assert set(read.states) == set(plan.sessions)
    for sid, p in plan.sessions.items():
        assert read.files[sid].path == p.path, p.kind
        assert observed(read.states[sid]) == planned(p), (p.kind, p.path)
    kinds = [p.kind for p in plan.sessions.values()]
    assert kinds.count("fork") == 3 and kinds.count("subagent") == 1 and kinds.count("orphan fork") == 1
    # the plan covers what the issue lists: archived, compressed in both folders, priced and unpriced
    assert any(p.archived and p.compressed for p in plan.sessions.values())
    assert any(not p.archived and p.compressed for p in plan.sessions.values())
    assert any(p.archived and not p.compressed for p in plan.sessions.values())
    assert sum(p.nanos for p in plan.sessions.values()) > 0
    assert any(p.nanos == 0 and p.tokens > 0 for p in plan.sessions.values())


def test_forks_and_copies_are_not_spend_again(home):
    """A fork's copied usage is its parent's: each child costs only its own responses, and
    the session that repeats another's events verbatim costs only its own too."""
    plan, read, _notes = home
    for sid, p in plan.sessions.items():
        s = read.states[sid]
        if p.kind in ("fork", "subagent", "orphan fork"):
            assert s.parent_id == p.parent
            assert s.copied > 0 and not s.copying
            parent = read.states.get(p.parent)
            assert parent is None or s.tokens < parent.tokens + s.tokens
        if p.kind == "duplicate":
            assert s.repeated > 0
    counted = [c.key for got in read.counted.values() for c in got]
    assert len(counted) == len(set(counted)), "a usage event counted twice across files"


def test_bad_inputs_are_named_and_the_rest_read(home):
    plan, read, notes = home
    for path, words in plan.notes:
        assert any(n.startswith(path) and words in n for n in notes), (path, words, notes)
    for path in plan.skipped:
        assert path not in {f.path for f in read.files.values()} or not any(
            read.files[s].path == path and s in read.states for s in read.files)
    # the session held twice is read from its plain file under sessions/
    for sid, other in plan.also_held.items():
        assert read.files[sid].path == plan.sessions[sid].path and "/sessions/" in read.files[sid].path
        assert other.endswith(".zst")
    # one note per unpriced model and file, naming the `prices:` key
    priced = [n for n in notes if "has no price" in n]
    assert len(priced) == 1 and "`prices:`" in priced[0]


def test_a_home_with_nothing_to_read_is_named(tmp_path):
    notes: list[str] = []
    assert list_home(str(tmp_path / "nowhere"), notes) == {}
    assert notes == [f"{tmp_path / 'nowhere'}: neither sessions/ nor archived_sessions/ is there to read (is it a "
                     "Codex home, and can the daemon's user reach it?)"]
    notes = []
    state, _ = fold(CodexState(), b'{"timestamp":"2026-09-01T00:00:00.000Z","type":"event_msg","payload":{"type":'
                    b'"token_count","info":{"last_token_usage":{"input_tokens":"lots","output_tokens":-3}}}}\n',
                    DEFAULT_PRICES, notes, "f")
    assert notes[1:3] == ["f: token_count input_tokens 'lots' is not a number (counted as 0)",
                         "f: token_count output_tokens -3 is out of range (counted as 0)"]
    assert state.tokens == 0


def test_a_file_that_is_not_a_rollout_raises_its_own_type(tmp_path):
    with pytest.raises(NotARollout, match="not a Codex rollout"):
        fold(CodexState(), b"hello\n", DEFAULT_PRICES, [], "f")
    notes: list[str] = []
    state, _ = fold(CodexState(), b'{"timestamp":"2026-09-01T00:00:00.000Z","type":"turn_context","payload":'
                    b'{"model":"gpt-5"}}\n', DEFAULT_PRICES, notes, "f")
    assert state.model == "gpt-5" and any("no session_meta" in n for n in notes)
    bad = tmp_path / "rollout-x.jsonl.zst"
    bad.write_bytes(b"\x28\xb5\x2f\xfd garbage" * 20)
    with pytest.raises(Exception, match="does not decompress"):
        read_rollout(str(bad))


# ---------------------------------------------------------------------------------------
# the fold is the same whole and in appends

def _fold_in_parts(data: bytes, cuts: list[int], parent_totals, seen: frozenset, *, through_json: bool):
    state, counted = CodexState(), []
    notes: list[str] = []
    for size in sorted(set(cuts)) + [len(data)]:
        if size <= state.offset:
            continue
        state, got = fold(state, data[state.offset:size], DEFAULT_PRICES, notes, "f", parent_totals=parent_totals,
                          seen=seen | {c.key for c in counted})
        counted += got
        if through_json:
            state = from_json(to_json(state))
    return state, counted


@pytest.fixture(scope="module")
def sample_files(home):
    """Files with something to carry across a split: each kind of child, the session that
    repeats another's events, the bad ones, and a few ordinary ones."""
    plan, read, _notes = home
    out = []
    lineage = {sid: frozenset(c.total for c in got if c.total) for sid, got in read.counted.items()}
    others = frozenset(c.key for sid, got in read.counted.items() for c in got)
    for sid, p in plan.sessions.items():
        if p.kind == "session" and len(out) > 8:
            continue
        own = frozenset(c.key for c in read.counted[sid])
        parent = lineage.get(p.parent) if p.parent else None
        out.append((read_rollout(p.path), parent, others - own, read.states[sid], read.counted[sid]))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_appends_fold_as_one_read(sample_files, data):
    i = data.draw(st.integers(0, len(sample_files) - 1))
    raw, parent, seen, whole, counted = sample_files[i]
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    through_json = data.draw(st.booleans())
    state, got = _fold_in_parts(raw, cuts, parent, seen, through_json=through_json)
    one, one_counted = fold(CodexState(), raw, DEFAULT_PRICES, [], "f", parent_totals=parent, seen=seen)
    assert state == one
    assert [c.key for c in got] == [c.key for c in one_counted]
    assert observed(one) == observed(whole) and len(one_counted) == len(counted)


def test_the_state_stays_bounded():
    """A session ten times longer carries the same state, but for the sums' digits."""
    def session(responses: int) -> bytes:
        lines = [{"timestamp": "2026-09-01T08:00:00.000Z", "type": "session_meta", "payload": {"id": "s"}},
                 {"timestamp": "2026-09-01T08:00:01.000Z", "type": "turn_context", "payload": {"model": "gpt-5"}}]
        total = [0] * 5
        for n in range(responses):
            ts = f"2026-09-01T{8 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.500Z"
            lines.append({"timestamp": ts, "type": "response_item", "payload": {
                "type": "function_call", "name": "exec_command", "call_id": f"c{n}",
                "arguments": json.dumps({"cmd": f"git status && echo {n}"})}})
            last = [1000, 10, 100, 5, 1100]
            total = [a + b for a, b in zip(total, last)]
            keys = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")
            lines.append({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
                "total_token_usage": dict(zip(keys, total)), "last_token_usage": dict(zip(keys, last))}}})
            lines.append({"timestamp": ts, "type": "response_item", "payload": {
                "type": "function_call_output", "call_id": f"c{n}", "output": "Wall time: 0.25 seconds\nok"}})
        return "".join(json.dumps(x) + "\n" for x in lines).encode()

    small, _ = fold(CodexState(), session(300), DEFAULT_PRICES, [], "f")
    large, _ = fold(CodexState(), session(3000), DEFAULT_PRICES, [], "f")
    assert large.commands["git:status:summary"].calls == 3000
    waits = large.waits["git:status:summary"]
    assert (waits.calls, waits.total_ms, waits.exact) == (3000, 3000 * 250, False)  # every call, in buckets
    assert len(to_json(large)) < len(to_json(small)) + 200
    assert not large.shell and not large.waiting


# ---------------------------------------------------------------------------------------
# the rest of a Codex home stays unread

def _with_deadline(fn, seconds: float, fifos: list[Path]):
    """Run ``fn`` in a thread; if it is still running at the deadline (blocked opening a
    FIFO), open each FIFO for writing to let it go, and fail."""
    result: dict = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as e:  # reported below
            result["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        worker.join(5)
        pytest.fail(f"reading the home blocked on a FIFO: it opened one of {[f.name for f in fifos]}")
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_the_lister_never_opens_the_rest_of_the_home(tmp_path):
    """auth.json, config.toml and history.jsonl are FIFOs here: opening one for reading would
    block until a writer came, so a reader that touched them would hang."""
    plan = make_codex_home(str(tmp_path), sessions=8, bad=False, secrets=False)
    fifos = [tmp_path / name for name in ("auth.json", "config.toml", "history.jsonl")]
    for fifo in fifos:
        os.mkfifo(fifo)
    decoy = tmp_path / "sessions" / "2026" / "09" / "01" / "rollout-2026-09-01T00-00-00-decoy.jsonl"
    os.mkfifo(decoy)  # not a regular file: named, never opened
    fifos.append(decoy)
    notes: list[str] = []
    read = _with_deadline(lambda: read_home(str(tmp_path), DEFAULT_PRICES, notes), 60, fifos)
    assert set(read.states) == set(plan.sessions)
    assert any(n.startswith(str(decoy)) and "not a regular file" in n for n in notes)
    assert not any("auth.json" in n or "config.toml" in n or "history.jsonl" in n for n in notes)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_an_unreadable_folder_is_named_and_the_rest_read():
    """A day folder the reading user cannot list: one note naming it, the other sessions
    read. Root can list anything, so as root the listing runs in a child as nobody."""
    folder = tempfile.mkdtemp(prefix="codex-unreadable-")
    try:
        os.chmod(folder, 0o755)
        plan = make_codex_home(folder, sessions=6, bad=False, secrets=False)
        for dirpath, dirnames, filenames in os.walk(folder):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        day = Path(plan.sessions[next(iter(plan.sessions))].path).parent
        hidden = {sid for sid, p in plan.sessions.items() if Path(p.path).parent == day}
        os.chmod(day, 0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: drop to nobody when root, list, report, exit
            try:
                os.close(r)
                if os.getuid() == 0:
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                notes: list[str] = []
                found = list_home(folder, notes)
                os.write(w, json.dumps({"sids": sorted(found), "notes": notes}).encode())
            finally:
                os._exit(0)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        os.waitpid(pid, 0)
        got = json.loads(b"".join(chunks))
        # (a session held twice is still read from its other file)
        assert set(got["sids"]) == set(plan.sessions) - (hidden - set(plan.also_held))
        assert [n for n in got["notes"] if n.startswith(str(day))] == [
            f"{day}: cannot list (Permission denied): give the daemon's user read access to it"]
    finally:
        for dirpath, _dirs, _files in os.walk(folder):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# prices and config

def test_openai_prices_are_built_in_and_matched_whole():
    # (input − cached) × input + cached × cached-input + output × output, reasoning inside output
    assert cost_nanos("gpt-5-codex", 1_000_000 - 400_000, 1_000_000, 0, 400_000, DEFAULT_PRICES) == round(
        (0.6 * 1.25 + 0.4 * 0.125 + 10) * 1e9)
    assert cost_nanos("gpt-5.5", 1_000_000, 0, 0, 0, DEFAULT_PRICES) == 5_000_000_000
    assert cost_nanos("gpt-5-2025-08-07", 1_000_000, 0, 0, 0, DEFAULT_PRICES) == 1_250_000_000
    for unknown in ("gpt-5.6-luna", "gpt-5-nano", "codex-auto-review"):
        assert cost_nanos(unknown, 1000, 1000, 0, 0, DEFAULT_PRICES) is None


def test_prices_override_openai_models_and_add_new_ones(tmp_path):
    cfg = parse_config({"roots": [{"path": "r", "name": "r"}], "database": "d.db", "prices": {
        "gpt-5": {"input": 2, "output": 20, "cache_write": 2, "cache_read": 0.2},
        "gpt-5.6-luna": {"input": 0.2, "output": 1.2, "cache_write": 0.2, "cache_read": 0.02}}},
        tmp_path / "c.yaml")
    assert cost_nanos("gpt-5", 1_000_000, 0, 0, 0, cfg.prices) == 2_000_000_000
    assert cost_nanos("gpt-5.6-luna", 0, 1_000_000, 0, 0, cfg.prices) == 1_200_000_000
    assert cost_nanos("gpt-5.6-luna-mini", 0, 1_000_000, 0, 0, cfg.prices) is None
    assert cost_nanos("gpt-5.5", 1_000_000, 0, 0, 0, cfg.prices) == 5_000_000_000


def test_codex_homes_config(tmp_path):
    cfg = parse_config({"database": "d.db", "codex_homes": [{"path": "~/.codex"},
                                                            {"path": "other", "name": "ci", "include_sessions": False}]},
                       tmp_path / "c.yaml")
    first, second = cfg.codex_homes
    assert (first.name, first.codex, first.include_sessions) == ("codex", True, True)
    assert first.path == Path(os.path.expanduser("~/.codex"))
    assert (second.name, second.path, second.include_sessions) == ("ci", tmp_path / "other", False)
    assert cfg.root("ci") is second and not cfg.roots
    with pytest.raises(ConfigError, match=r"codex_homes\[0\].name: 'claude' is already the name"):
        parse_config({"database": "d.db", "claude_projects": [{"path": "p"}], "codex_homes": [{"path": "h",
                                                                                               "name": "claude"}]},
                     tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"codex_homes\[0\].path: required"):
        parse_config({"database": "d.db", "codex_homes": [{"name": "x"}]}, tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"codex_homes\[0\].colour: unknown key"):
        parse_config({"database": "d.db", "codex_homes": [{"path": "h", "colour": 1}]}, tmp_path / "c.yaml")


def test_the_example_home_has_forks_an_archived_and_a_compressed_rollout(tmp_path):
    plan = write_example_home(str(tmp_path))
    kinds = {p.kind for p in plan.sessions.values()}
    assert {"fork", "subagent", "orphan fork"} <= kinds
    assert any(p.compressed for p in plan.sessions.values()) and any(p.archived for p in plan.sessions.values())
    assert sorted(os.listdir(tmp_path)) == ["archived_sessions", "sessions"]
    notes: list[str] = []
    read = read_home(str(tmp_path), DEFAULT_PRICES, notes)
    assert {sid: observed(s) for sid, s in read.states.items()} == {sid: planned(p) for sid, p in plan.sessions.items()}
    assert all(stat.S_ISREG(os.stat(p.path).st_mode) for p in plan.sessions.values())


# ---------------------------------------------------------------------------------------
# Codex 0.169's token_usage_record (issue 31: measured on the real CLI)

def _line(ts: str, kind: str, payload: dict) -> bytes:
    return json.dumps({"timestamp": f"2026-12-04T10:00:{ts}Z", "type": kind, "payload": payload}).encode() + b"\n"


def _u(inp: int, cached: int, out: int) -> dict:
    return {"input_tokens": inp, "cached_input_tokens": cached, "cache_write_input_tokens": 0, "output_tokens": out,
            "reasoning_output_tokens": 0, "total_tokens": inp + out}


def _response(ts: str, command: str, usage: dict, total: dict | None, *, then_token_count: bool) -> bytes:
    """As Codex 0.169 writes one response that calls a command: the call, the
    token_usage_record, the call's output, then the token_count (unless killed before)."""
    record = {"response_id": f"resp_{ts}", "usage": usage, **({"thread_token_usage": total} if total else {})}
    out = (_line(ts + ".100", "response_item", {"type": "function_call", "name": "exec_command", "call_id": f"c{ts}",
                                                "arguments": json.dumps({"cmd": command})})
           + _line(ts + ".101", "token_usage_record", record)
           + _line(ts + ".200", "response_item", {"type": "function_call_output", "call_id": f"c{ts}",
                                                  "output": "Wall time: 0.1000 seconds\nProcess exited with code 0\n"}))
    if then_token_count:
        out += _line(ts + ".201", "event_msg", {"type": "token_count", "info": {
            "total_token_usage": total or usage, "last_token_usage": usage}})
    return out


@pytest.mark.parametrize("with_thread_total", [True, False])
def test_a_token_usage_record_counts_its_response_once(with_thread_total):
    """Each response once, whether its token_count follows (a repeat of the record's total)
    or never comes (Codex killed while the call ran): the record alone is the response."""
    head = (_line("00.000", "session_meta", {"id": "0a0a0a0a-0000-4000-8000-000000000001", "cwd": "/r"})
            + _line("00.001", "turn_context", {"model": "gpt-5-codex", "cwd": "/r"}))
    first, second = _u(1500, 500, 50), _u(1700, 1500, 40)
    both = _u(3200, 2000, 90)
    data = (head + _response("01", "git status", first, first if with_thread_total else None, then_token_count=True)
            + _response("02", "git diff", second, both if with_thread_total else None, then_token_count=False))
    notes: list[str] = []
    state, counted = fold(CodexState(), data, DEFAULT_PRICES, notes, "f")
    assert not notes
    assert len(counted) == 2
    assert state.tokens == 1550 + 1740
    nanos = [1000 * 1250 + 500 * 125 + 50 * 10_000, 200 * 1250 + 1500 * 125 + 40 * 10_000]
    assert state.nanos == sum(nanos)
    assert {k: (c.calls, c.cost_nanos) for k, c in state.commands.items()} == {
        "git:status:summary": (1, nanos[0]), "git:diff:summary": (1, nanos[1])}
