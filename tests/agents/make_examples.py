"""Write ``examples/{copilot,gemini,qwen,opencode}/``: a small home of each agent, written by
the real agent CLI (the pinned version, tests/agents/agents.json) against the scripted model.

    python tests/agents/make_examples.py examples/ [--agents copilot,qwen]

Each agent runs offline in a scratch HOME and a scratch git repository (the drivers
copilot_cli.py, gemini_cli.py, qwen_cli.py, opencode_cli.py), for the same three sessions
(SESSIONS): shell calls a developer runs and our rules know (git status, git diff --stat,
pytest -q and npm test in one response, cargo test, git log --oneline -5), one no rule knows
(cargo bench, ls -la), and a resumed third session. Every response's usage is fixed (usage()),
and each agent is given a model our price table knows (MODELS). The commands run for real in
the scratch repository and may fail there (no tests, no Cargo.toml): the call still counts.

Only the files the reader reads are copied (sources/<agent>.py list_sessions): Copilot's
``session-state/<id>/events.jsonl``, Gemini's ``tmp/<project>/chats/``, Qwen Code's
``projects/<project>/chats/``, OpenCode's ``opencode.db`` (copied through SQLite's backup, so
the WAL is in it; journal_mode=DELETE, credential tables emptied, vacuumed). Never settings,
OAuth files, config, logs, caches or locks. Session ids and times differ from run to run;
sessions, calls and tokens do not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a script: import the drivers as the tests do (package ``agents``)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import agents  # noqa: F401

    __package__ = "agents"

from .copilot_cli import Copilot  # noqa: E402
from .gemini_cli import GeminiCli  # noqa: E402
from .install import AGENTS  # noqa: E402
from .opencode_cli import OpenCode, config  # noqa: E402
from .qwen_cli import Qwen  # noqa: E402
from .script import Reply, Script, Usage  # noqa: E402
from .server import ModelServer  # noqa: E402

AGENT_NAMES = ("copilot", "gemini", "qwen", "opencode")
MODELS = {"copilot": "gpt-5-codex", "gemini": "gemini-2.5-flash", "qwen": "qwen3-coder-plus",
          "opencode": "claude-sonnet-4-5"}
# Claude Sonnet 4.5's list price (USD per million tokens), given to OpenCode as the model's
# cost: it writes its own cost of each step from it, as it would from the models.dev catalog.
SONNET_PRICE = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}
# Reasoning tokens where the model thinks (part of the output); Qwen3 Coder and Sonnet do not here.
REASONING = {"copilot": 12, "gemini": 9, "qwen": 0, "opencode": 0}


@dataclass(frozen=True)
class Session:
    """One session: its prompts (a second one resumes it) and, per prompt, the replies."""

    prompts: tuple[str, ...]
    calls: tuple[tuple[tuple[str, ...], ...], ...]  # per prompt: each response's shell calls


SESSIONS = (
    Session(("Check the state of the repository",), ((("git status",), ("git diff --stat",)),)),
    Session(("Run the tests",), ((("pytest -q", "npm test"), ("cargo test",)),)),
    Session(("Show me the recent history", "And how fast is it?"),
            ((("git log --oneline -5",),), (("cargo bench",), ("ls -la",)))),
)


def usage(k: int, reasoning: int) -> Usage:
    """The k-th response's usage: a growing context, mostly cached, each different."""
    return Usage(input=1800 + 250 * k, cache_read=6000 + 1500 * k, output=90 + 15 * k,
                 reasoning=reasoning if k % 2 == 0 else 0)


def script_for(agent: str) -> Script:
    """All the agent's replies in order: each prompt's calls, one response each, then a text."""
    replies, k = [], 0
    for session in SESSIONS:
        for prompt_calls in session.calls:
            for calls in prompt_calls:
                replies.append(Reply(calls=calls, usage=usage(k, REASONING[agent])))
                k += 1
            replies.append(Reply(text="Done: the commands ran.", usage=usage(k, REASONING[agent])))
            k += 1
    return Script(replies)


class _Copilot(Copilot):
    def env(self) -> dict[str, str]:
        return {**super().env(), "COPILOT_MODEL": MODELS["copilot"]}


class _Qwen(Qwen):
    def env(self) -> dict[str, str]:
        return {**super().env(), "OPENAI_MODEL": MODELS["qwen"]}


def _ok(run, agent: str):
    if run.returncode != 0:
        raise RuntimeError(f"{agent} failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return run


def _run_resuming(cli) -> Path:
    """Each session's prompts, the later ones resuming the session the first one started
    (a CLI whose ``run`` returns the session id: Copilot's, Qwen's)."""
    for session in SESSIONS:
        sid = None
        for prompt in session.prompts:
            sid = cli.run(prompt, resume=sid)
    return cli.home


def run_copilot(version: str, root: Path, url: str) -> Path:
    return _run_resuming(_Copilot(version, root, url))


def run_qwen(version: str, root: Path, url: str) -> Path:
    return _run_resuming(_Qwen(version, root, url))


def run_gemini(version: str, root: Path, url: str) -> Path:
    cli = GeminiCli(version, root, url, model=MODELS["gemini"])
    for session in SESSIONS:
        for n, prompt in enumerate(session.prompts):
            _ok(cli.run(prompt, resume="latest" if n else None), "gemini")
    return cli.gemini_home


def run_opencode(version: str, root: Path, url: str) -> Path:
    oc = OpenCode(version, root, url)
    conf = config(url)
    model = MODELS["opencode"]
    conf["provider"]["mock"]["models"] = {model: {"name": "Claude Sonnet 4.5", "cost": SONNET_PRICE,
                                                  "limit": {"context": 200000, "output": 8192}}}
    conf["model"] = conf["small_model"] = f"mock/{model}"
    (oc.repo / "opencode.json").write_text(json.dumps(conf, indent=2))
    subprocess.run(["git", "commit", "-qam", "the model"], cwd=oc.repo, env=oc.env(), check=True)
    for session in SESSIONS:
        sid = None
        for prompt in session.prompts:
            done = _ok(oc.run(prompt, session=sid), "opencode")
            sid = sid or done.session_id
    return oc.data


RUNNERS = {"copilot": run_copilot, "gemini": run_gemini, "qwen": run_qwen, "opencode": run_opencode}


# ---------------------------------------------------------------------------------------
# the files each reader reads, copied

def copy_copilot(home: Path, out: Path) -> None:
    for events in sorted(home.glob("session-state/*/events.jsonl")):
        if not events.parent.name.startswith("."):
            _copy(events, out / events.relative_to(home))


def copy_gemini(home: Path, out: Path) -> None:
    for chats in sorted(home.glob("tmp/*/chats")):
        for path in sorted([*chats.glob("session-*.json"), *chats.glob("session-*.jsonl"), *chats.glob("*/*.jsonl")]):
            _copy(path, out / path.relative_to(home))


def copy_qwen(home: Path, out: Path) -> None:
    for path in sorted([*home.glob("projects/*/chats/*.jsonl"), *home.glob("projects/*/chats/archive/*.jsonl")]):
        _copy(path, out / path.relative_to(home))


# Emptied in the copy: any table whose name or columns speak of an account or a secret
# (1.18.33: account, account_state, control_account, credential, session_share; empty in a
# scratch run, emptied in case a version fills them), and the event log, which repeats the
# messages and parts (the reader never reads it) and would be most of the file.
SECRET_WORDS = ("account", "auth", "credential", "token", "secret", "password")
SECRET_COLUMNS = {"secret", "access_token", "refresh_token", "password", "api_key", "key"}
NOT_READ = ("event", "event_sequence")


def _blanked(con: sqlite3.Connection) -> list[str]:
    tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out = []
    for table in tables:
        columns = {row[1].lower() for row in con.execute(f'PRAGMA table_info("{table}")')}
        if table in NOT_READ or columns & SECRET_COLUMNS or any(w in table.lower() for w in SECRET_WORDS):
            out.append(table)
    return out


def copy_opencode(data: Path, out: Path) -> None:
    for db in sorted(data.glob("opencode*.db")):
        target = out / db.name
        target.parent.mkdir(parents=True, exist_ok=True)
        src, dst = sqlite3.connect(f"file:{db}?mode=ro", uri=True), sqlite3.connect(target)
        try:
            src.backup(dst)  # the database as its readers see it, the WAL's pages included
        finally:
            src.close()
        try:
            for table in _blanked(dst):
                dst.execute(f'DELETE FROM "{table}"')
            dst.commit()
            dst.execute("PRAGMA journal_mode = DELETE")
            dst.execute("PRAGMA page_size = 512")  # some 40 tables and indexes, most empty: a page each
            dst.execute("VACUUM")
        finally:
            dst.close()


COPIERS = {"copilot": copy_copilot, "gemini": copy_gemini, "qwen": copy_qwen, "opencode": copy_opencode}


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def make(agent: str, out: Path, version: str | None = None) -> Path:
    """Run ``agent`` (its pinned version unless given) and write its example home to
    ``out/<agent>`` (replaced whole); the home."""
    version = version or AGENTS[agent]["pinned"]
    target = out / agent
    with tempfile.TemporaryDirectory(prefix=f"adw-example-{agent}-") as scratch:
        script = script_for(agent)
        with ModelServer(script) as server:
            home = RUNNERS[agent](version, Path(scratch), server.url)
        if server.unrouted or script.left:
            raise RuntimeError(f"{agent}: requests not scripted {server.unrouted}, replies not taken: {script.left}")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        COPIERS[agent](home, target)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the examples folder (each agent's subfolder is replaced)")
    ap.add_argument("--agents", default=",".join(AGENT_NAMES), help="comma-separated, of " + ", ".join(AGENT_NAMES))
    args = ap.parse_args(argv)
    chosen = [a for a in args.agents.split(",") if a]
    unknown = sorted(set(chosen) - set(AGENT_NAMES))
    if unknown:
        print(f"make_examples.py: unknown agent {', '.join(unknown)}: choose from {', '.join(AGENT_NAMES)}",
              file=sys.stderr)
        return 2
    from .install import bin_path
    for agent in chosen:
        binary = bin_path(agent, AGENTS[agent]["pinned"])
        if not binary.exists():
            print(f"make_examples.py: {agent} is not installed at {binary}: run "
                  f"`python tests/agents/install.py {agent} --versions pinned` (or set ADW_PATTERND_AGENTS)",
                  file=sys.stderr)
            return 1
    for agent in chosen:
        target = make(agent, args.out)
        size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        print(f"{agent} {AGENTS[agent]['pinned']}: {target} ({size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
