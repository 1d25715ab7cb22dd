"""A real `adw-patternd run` watching the home of Copilot CLI, Gemini CLI, Qwen Code or
OpenCode while the real CLI runs (check.py's Watched), and the oracle in check.Oracle's
terms, from each reader test's own (chat_oracle.expected, test_*_reader.oracle):

    with watching(tmp_path, cli.home, "qwen_homes", **MOCK_PRICES) as watched:
        sid = cli.run("check the repo")
        watched.check(chat_oracle(sid, [main_served(script.served)]), status={sid: ENDED})
"""

from __future__ import annotations

from pathlib import Path

from adw_patternd.sources.kinds import KINDS
from helpers import wait_for

from .chat_oracle import expected
from .check import Oracle, Watched
from .cli_base import killed, runs_command
from .opencode_cli import PRICE

SLEEP = ("sleep", "60")
# The scripted model's price, given to the daemon as a user's `prices:` entry (the reader
# tests give their readers the same: chat_oracle.PRICES, test_opencode_reader.PRICES).
MOCK_PRICES = {"prices": {"mock-model": {"input": PRICE["input"], "output": PRICE["output"],
                                         "cache_write": PRICE["cache_write"], "cache_read": PRICE["cache_read"]}}}


def watching(tmp_path, home: Path, kind: str, **extra) -> Watched:
    """check.Watched on an agent's home whose session folders exist (a home the agent has
    used before), so that the daemon watches them from its start."""
    for folder in next(k for k in KINDS if k.config_key == kind).watched_folders(str(home)):
        Path(folder).mkdir(parents=True, exist_ok=True)
    return Watched(tmp_path, home, kind=kind, **extra)


def main_served(served) -> list:
    return [s for s in served if not s.side and s.status == 200]


def kill_in_sleep(proc, served_list, written, responses: int = 2):
    """Wait until the model has served ``responses`` main responses, the CLI runs the
    `sleep 60` the last one asked for, and ``written()`` (the agent's file holds what the test
    says it wrote); SIGKILL the CLI and all it started."""
    wait_for(lambda: len(main_served(served_list)) == responses and runs_command(proc, SLEEP) and written(),
             timeout=90, what="the CLI to run `sleep 60` and write what it is said to")
    return killed(proc)


def holds(paths, text: str):
    """A ``written`` for kill_in_sleep: whether one of the files ``paths()`` lists holds ``text``."""
    return lambda: any(text.encode() in p.read_bytes() for p in paths())


def chat_oracle(sid: str, runs: list[list], output_only: bool = False, killed: tuple[int, ...] = ()) -> Oracle:
    """chat_oracle.expected's figures as check.Oracle's, for one session."""
    e = expected(runs, output_only=output_only, killed=killed)
    return Oracle({sid: (e.tokens, e.nanos)}, {sig: (row[2], row[0]) for sig, row in e.commands.items()})


def tuple_oracle(sid: str, figures) -> Oracle:
    """A reader test's (tokens, nanos, {signature: [nanos, tokens, calls]}) as check.Oracle's."""
    tokens, nanos, sigs = figures
    return Oracle({sid: (tokens, nanos)}, {sig: (row[2], row[0]) for sig, row in sigs.items()})


def merged(*oracles: Oracle) -> Oracle:
    """The oracles of several sessions as one: their sessions side by side, their signatures
    added up."""
    sessions, signatures = {}, {}
    for o in oracles:
        sessions.update(o.sessions)
        for sig, (calls, nanos) in o.signatures.items():
            had = signatures.get(sig, (0, 0))
            signatures[sig] = (had[0] + calls, had[1] + nanos)
    return Oracle(sessions, signatures)
