"""examples/{copilot,gemini,qwen,opencode}/ (issue 33): each a home the real agent wrote
against the scripted model (make_examples.py), read by its reader as the README's first
command reads it: every session read without a note (so every model priced), with tokens
and dollars, and the calls the script made, by signature. A fresh make_examples run (when the
CLIs are installed) yields the same sessions and calls: the shipped files still say what
that agent writes."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from adw_patternd.core.pricing import DEFAULT_PRICES
from adw_patternd.sources import copilot, gemini, opencode, qwen
from adw_patternd.sources.agent_fold import ReadContext

from .install import AGENTS, bin_path
from .make_examples import AGENT_NAMES, MODELS, SESSIONS, make

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
READERS = {"copilot": copilot, "gemini": gemini, "qwen": qwen, "opencode": opencode}
# What SESSIONS calls, by signature (cargo bench and ls -la: no rule knows them).
CALLS = {"git:status:summary": 1, "git:diff:summary": 1, "test:pytest:all": 1, "test:generic:all": 1,
         "test:cargo:all": 1, "git:log:summary": 1}
SHIPPED_FILES = {"copilot": "events.jsonl", "gemini": ".jsonl", "qwen": ".jsonl", "opencode": "opencode.db"}


def summary(agent: str, home: Path) -> tuple[int, Counter, list]:
    """(sessions, calls by signature over all sessions, each session's workflow)."""
    reader = READERS[agent]
    problems: list[str] = []
    refs = reader.list_sessions(str(home), problems)
    assert not problems, problems
    calls: Counter = Counter()
    workflows = []
    for sid, ref in sorted(refs.items()):
        ctx = ReadContext("examples", DEFAULT_PRICES, notes=[])
        wf = reader.read_session(ref, None, ctx).workflow
        assert not ctx.notes, (agent, sid, ctx.notes)
        calls.update({c.signature: c.calls for c in wf.agents[0].commands})
        workflows.append(wf)
    return len(refs), calls, workflows


@pytest.mark.parametrize("agent", AGENT_NAMES)
def test_shipped_example_reads_whole(agent):
    count, calls, workflows = summary(agent, EXAMPLES / agent)
    assert count == len(SESSIONS)
    assert dict(calls) == CALLS
    assert sorted(wf.request for wf in workflows) == sorted(s.prompts[0] for s in SESSIONS)
    for wf in workflows:
        assert wf.total_tokens > 0 and wf.cost_nanos > 0
        assert wf.status == "completed" and wf.model == MODELS[agent] and wf.agents[0].name == agent


@pytest.mark.parametrize("agent", AGENT_NAMES)
def test_shipped_example_holds_only_session_files(agent):
    """Nothing but what the reader reads: no settings, OAuth, config, logs, WAL or locks."""
    files = [p for p in (EXAMPLES / agent).rglob("*") if p.is_file()]
    assert files and all(p.name.endswith(SHIPPED_FILES[agent]) for p in files), files
    assert sum(p.stat().st_size for p in files) < 150_000


def test_opencode_example_has_no_account_rows_and_no_wal():
    db = EXAMPLES / "opencode" / "opencode.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        secret = [t for t in tables if any(w in t for w in ("account", "credential", "share"))]
        assert secret and all(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 0 for t in secret)
    finally:
        con.close()


@pytest.mark.parametrize("agent", AGENT_NAMES)
def test_fresh_run_matches_shipped(agent, tmp_path):
    binary = bin_path(agent, AGENTS[agent]["pinned"])
    if not binary.exists():
        pytest.skip(f"{agent} {AGENTS[agent]['pinned']} is not installed at {binary}: "
                    f"run `python tests/agents/install.py {agent}` (or set ADW_PATTERND_AGENTS)")
    fresh = make(agent, tmp_path)
    shipped_count, shipped_calls, shipped = summary(agent, EXAMPLES / agent)
    count, calls, workflows = summary(agent, fresh)
    assert (count, calls) == (shipped_count, shipped_calls)
    # The usage is scripted: the same tokens and dollars, session by session (sorted: ids differ).
    assert sorted((w.total_tokens, w.cost_nanos) for w in workflows) == sorted(
        (w.total_tokens, w.cost_nanos) for w in shipped)
