"""The four agents of issue 33 end to end (config, sync, the daemon, verify --files, the
views), on homes their real CLIs wrote against the scripted model, at each one's pinned
version. For each kind: a session written before the daemon starts is caught up, one written
while it runs is picked up live; the daemon's database then equals a fresh sync's; verify
--files finds nothing; each session's figures are its reader's; `status` and `patterns
--agent` name the agent. Every wait has a deadline; a missing CLI skips with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.config import load_config
from adw_patternd.sources import kinds
from adw_patternd.sources.agent_fold import ReadContext

from helpers import diff_dumps, normalised_dump, query, wait_for, write_config

from . import copilot_cli, gemini_cli, opencode_cli, qwen_cli
from .chat_oracle import plant_fifo, read_with_deadline
from .install import AGENTS
from .script import Reply, Script, Usage
from .server import ModelServer

FAST = {"debounce_ms": 100, "reconcile_interval_s": 0, "watch": {"sweep_interval_s": 0.5}}
MOCK_PRICE = {"mock-model": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}
GEMINI_MODEL = "gemini-2.5-flash"


class Driver:
    """One agent's CLI in a scratch home: ``run(prompt)`` writes one session; ``home`` is the
    folder a user configures; ``secrets``: files of the home a reader must never open."""

    def __init__(self, agent: str, tmp: Path, url: str):
        version = AGENTS[agent]["pinned"]
        self.agent = agent
        if agent == "copilot":
            self.cli = copilot_cli.Copilot(version, tmp / "cli", url)
            self.home, self.secrets = self.cli.home, ("config.json", "session-store.db", "settings.json")
        elif agent == "qwen":
            self.cli = qwen_cli.Qwen(version, tmp / "cli", url)
            self.home, self.secrets = self.cli.home, ("settings.json", "oauth_creds.json", "usage_record.jsonl")
        elif agent == "gemini":
            self.cli = gemini_cli.GeminiCli(version, tmp / "cli", url, model=GEMINI_MODEL)
            self.home, self.secrets = self.cli.gemini_home, ("settings.json", "oauth_creds.json", "google_accounts.json")
        else:
            self.cli = opencode_cli.OpenCode(version, tmp / "cli", url)
            self.home, self.secrets = self.cli.data, ("auth.json",)

    def run(self, prompt: str) -> None:
        done = self.cli.run(prompt)
        if hasattr(done, "returncode"):
            assert done.returncode == 0, done.stderr[-3000:]


def missing(agent: str) -> str | None:
    module = {"copilot": copilot_cli, "qwen": qwen_cli, "gemini": gemini_cli, "opencode": opencode_cli}[agent]
    return module.missing_reason(AGENTS[agent]["pinned"])


def replies(n: int) -> list[Reply]:
    out = []
    for k in range(n):
        u = Usage(input=600 + 100 * k, cache_read=1500 + 300 * k, output=40 + 3 * k, reasoning=10)
        out += [Reply(calls=("git status",), usage=u), Reply(text="Done.", usage=u)]
    return out


@pytest.fixture(params=["copilot", "gemini", "qwen", "opencode"])
def agent(request):
    reason = missing(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


def kind_of(agent: str) -> kinds.SessionKind:
    return next(k for k in kinds.KINDS if k.agent == agent)


def stored(database: str, root: str) -> dict[str, tuple[int, int]]:
    return {r[0]: (int(r[1]), int(r[2])) for r in query(
        database, "SELECT adw_id, total_tokens, cost_nanos FROM workflow_history WHERE root_name = ? AND revision > 0",
        (root,))}


def reader_figures(cfg: Path, home: Path, agent: str) -> dict[str, tuple[int, int]]:
    """What the kind's own reader says of each session, read whole."""
    k, config = kind_of(agent), load_config(cfg)
    refs = k.list_sessions(str(home), [])
    out = {}
    for sid, ref in refs.items():
        wf = k.read_session(ref, None, ReadContext("h", config.prices, config.rules.commands)).workflow
        out[sid] = (wf.total_tokens, wf.cost_nanos)
    return out


def config_for(tmp: Path, agent: str, home: Path, database: str, **extra) -> Path:
    return write_config(tmp, {}, database, prices=MOCK_PRICE, **{kind_of(agent).config_key: [
        {"path": str(home), "name": "h"}]}, **extra)


def test_sync_reads_a_home_and_never_opens_its_secrets(agent, tmp_path, capsys):
    with ModelServer(Script(replies(1))) as server:
        d = Driver(agent, tmp_path, server.url)
        d.run("check the repo")
    for name in d.secrets:
        target = d.home / name
        if target.exists() and not target.is_dir():
            target.unlink()
        if not target.exists():
            plant_fifo(target)
    database = str(tmp_path / "p.db")
    cfg = config_for(tmp_path, agent, d.home, database)
    assert read_with_deadline(lambda: main(["sync", "--config", str(cfg)])) == 0
    figures = reader_figures(cfg, d.home, agent)
    assert len(figures) == 1 and stored(database, "h") == figures
    (tokens, nanos), = figures.values()
    assert tokens > 0 and nanos > 0
    capsys.readouterr()
    assert main(["patterns", "--agent", agent, "--config", str(cfg), "--json"]) == 0
    assert "git:status:summary" in capsys.readouterr().out
    assert main(["status", "--config", str(cfg), "--json"]) == 0
    assert agent in json.loads(capsys.readouterr().out)["by_agent"]


def test_the_daemon_picks_a_session_up_live(agent, tmp_path, database, daemon, capsys):
    with ModelServer(Script(replies(2))) as server:
        d = Driver(agent, tmp_path, server.url)
        d.run("check the repo")
        cfg = config_for(tmp_path, agent, d.home, database, **FAST)
        proc = daemon(cfg)
        wait_for(lambda: "catch-up:" in proc.log(), what="catch-up")
        assert len(stored(database, "h")) == 1
        d.run("check the repo again")
    figures = reader_figures(cfg, d.home, agent)
    assert len(figures) == 2
    wait_for(lambda: stored(database, "h") == figures, timeout=30,
             what=f"the second {agent} session stored live with its reader's figures")
    assert proc.stop() == 0
    assert main(["verify", "--files", "--config", str(cfg)]) == 0, capsys.readouterr()
    # A fresh sync of the same files into another database says the same.
    again = tmp_path / "again"
    again.mkdir()
    fresh = str(again / "fresh.db")
    assert main(["sync", "--config", str(config_for(again, agent, d.home, fresh))]) == 0
    assert diff_dumps(normalised_dump(database), normalised_dump(fresh)) == []
