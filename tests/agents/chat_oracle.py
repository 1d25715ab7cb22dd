"""What a session read by an issue-33 reader must add up to, worked out from what the scripted
model served (script.served), never from the files the agent wrote: shared by the Copilot and
Qwen Code reader tests (the agents that speak Chat Completions)."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from adw_patternd.core.commands import call_signatures, command_line
from adw_patternd.core.pricing import DEFAULT_PRICES, Price, PriceRule, cost_nanos
from adw_patternd.sources.agent_fold import ReadContext, SessionRef

MODEL = "mock-model"
PRICES = DEFAULT_PRICES + (PriceRule(MODEL, Price(3, 15, 3.75, 0.30)),)


def price(usage: tuple[int, int, int, int]) -> int:
    inp, out, cw, cr = usage
    return cost_nanos(MODEL, inp, out, cw, cr, PRICES)


@dataclass
class Expected:
    tokens: int = 0
    nanos: int = 0
    commands: dict = field(default_factory=dict)  # signature -> [nanos, tokens, calls, {line: calls}]

    def add_share(self, usage, calls) -> None:
        """A response's shell calls: each gets 1/k of what ``usage`` costs (k: all its calls)."""
        k = len(calls)
        for command in calls:
            for sig in call_signatures(command):
                got = self.commands.setdefault(sig, [0, 0, 0, {}])
                got[0] += price(usage) // k
                got[1] += sum(usage) // k
                got[2] += 1
                line = command_line(command)
                got[3][line] = got[3].get(line, 0) + 1


def served_usage(s) -> tuple[int, int, int, int]:
    u = s.usage
    return (u.input, u.output, u.cache_write, u.cache_read)


def expected(runs: list[list], output_only: bool = False, killed: tuple[int, ...] = ()) -> Expected:
    """``runs``: the served responses of each CLI run. ``output_only``: the agent recorded each
    response's output alone and the run's other tokens as a total at its end (Copilot before
    usage records): the calls' shares are then their output's. ``killed``: the runs (by
    index) killed before their end, which never wrote that total."""
    e = Expected()
    for n, served in enumerate(runs):
        rest = [0, 0, 0, 0]
        for s in served:
            if s.side or s.status != 200:
                continue
            usage = served_usage(s)
            if output_only:
                mine = (0, usage[1], 0, 0)
                rest = [a + b for a, b in zip(rest, (usage[0], 0, usage[2], usage[3]))]
            else:
                mine = usage
            e.tokens += sum(mine)
            e.nanos += price(mine)
            e.add_share(mine, s.calls)
        if any(rest) and n not in killed:
            e.tokens += sum(rest)
            e.nanos += price(tuple(rest))
    return e


def check(wf, e: Expected, agent: str) -> None:
    assert (wf.total_tokens, wf.cost_nanos, wf.estimated_nanos) == (e.tokens, e.nanos, e.nanos)
    part = wf.agents[0]
    assert part.name == agent and part.tokens == e.tokens and part.estimated_nanos == e.nanos
    got = {c.signature: [c.cost_nanos, c.tokens, c.calls, dict(c.lines)] for c in part.commands}
    assert got == e.commands


def context(fresh: bool = False) -> ReadContext:
    return ReadContext("home", PRICES, notes=[], fresh=fresh)


def read_in_appends(module, ref: SessionRef, tmp: Path):
    """The session read as it grew: its file copied in two pieces (cut inside a line), read
    after each; the second read starts from the first's state."""
    data = Path(ref.path).read_bytes()
    copy = tmp / "growing" / Path(ref.path).name
    copy.parent.mkdir(parents=True, exist_ok=True)
    cut = data.index(b"\n", len(data) // 2) - 7
    copy.write_bytes(data[:cut])
    part = SessionRef(ref.sid, str(copy), (str(copy),))
    first = module.read_session(part, None, context())
    with open(copy, "ab") as f:
        f.write(data[cut:])
    return module.read_session(part, first.state, context())


def read_with_deadline(fn, seconds: float = 20.0):
    """Run ``fn`` in a thread: a read that opened a FIFO would never return."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"{fn} did not return within {seconds}s (it opened something that blocks)"
    return out[0]


def plant_fifo(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
