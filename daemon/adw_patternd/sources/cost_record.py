"""Claude Code's own record of what a session cost (`cost-state` entries, 2.1.3xx;
../shared/docs/claude-session-store.md), kept beside our count as a second opinion.

A session file's fold keeps, besides what it counts (transcript.py):
- the file's latest record: its dollars as nanodollars, and per model the tokens and dollars;
- the spend this file had counted when that record (or a run cut off before it wrote one)
  was read: what came after is not in the record;
- the spend of runs cut off before they wrote a record (a killed agent): a resumed run's
  record starts again from the last one written, so theirs is never in it;
- the spend of copies of responses that another session counts (a fork's or a resume's
  copy of its parent's conversation): the agent's record includes them, ours does not.
All bounded: one record, a few sums, at most MAX_KEEPERS sessions a file copied from.
Pure: values in, values out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

MAX_MODELS = 8  # models kept per record; the rest are summed under OTHER_MODELS
OTHER_MODELS = "(other models)"
MAX_KEEPERS = 8  # sessions a file's copies are kept by, named; the rest are summed under ""
MAX_USD = 1_000_000.0  # a session's record above this is not a real number


class Spend(NamedTuple):
    """Tokens by kind and nanodollars."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    nanos: int = 0

    def plus(self, other) -> "Spend":
        return Spend(*(a + b for a, b in zip(self, other, strict=True)))

    def minus(self, other) -> "Spend":
        return Spend(*(a - b for a, b in zip(self, other, strict=True)))


ZERO = Spend()
KINDS = ("input", "output", "cache read", "cache write 5m", "cache write 1h", "nanodollars")


def spend_of(usage: tuple[int, int, int, int], write_1h: int, nanos: int) -> Spend:
    """A response's (or a sum's) spend from the fold's usage order: input, cache write, cache
    read, output; ``write_1h`` of the cache writes were 1-hour ones."""
    inp, cw, cr, out = usage
    return Spend(inp, out, cr, cw - write_1h, write_1h, nanos)


@dataclass(frozen=True)
class CostRecord:
    """One cost-state entry: what the agent says the session cost."""

    nanos: int
    models: tuple[tuple[str, Spend], ...] = ()
    unknown: bool = False  # hasUnknownModelCost: the agent had no price for a model it used

    def spend(self) -> Spend:
        """Tokens summed over the models, with the record's total dollars."""
        total = ZERO
        for _model, s in self.models:
            total = total.plus(s)
        return total._replace(nanos=self.nanos)

    def to_json(self) -> list:
        return [self.nanos, [[m, list(s)] for m, s in self.models], int(self.unknown)]

    @classmethod
    def from_json(cls, v: list) -> "CostRecord":
        return cls(v[0], tuple((m, Spend(*s)) for m, s in v[1]), bool(v[2]))


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= MAX_USD * 1e9:
        return None
    return v


def _nanos(usd) -> int | None:
    v = _number(usd)
    return round(v * 1e9) if v is not None and v <= MAX_USD else None


def _tokens(v) -> int:
    n = _number(v)
    return int(n) if n is not None else 0


def parse_record(entry: dict, notes: list[str], where: str) -> CostRecord | None:
    """A cost-state entry as a record; None (with a note) when its total is not a cost."""
    nanos = _nanos(entry.get("totalCostUSD"))
    if nanos is None:
        notes.append(f"{where}: a cost-state entry's totalCostUSD is not a cost (that record is ignored)")
        return None
    models = []
    usage = entry.get("modelUsage")
    for model, u in sorted(usage.items()) if isinstance(usage, dict) else ():
        if not isinstance(model, str) or not isinstance(u, dict):
            continue
        write_1h = _tokens(u.get("cacheCreationEphemeral1hInputTokens"))
        write_5m = (_tokens(u.get("cacheCreationEphemeral5mInputTokens")) if "cacheCreationEphemeral5mInputTokens" in u
                    else max(0, _tokens(u.get("cacheCreationInputTokens")) - write_1h))
        models.append((model, Spend(_tokens(u.get("inputTokens")), _tokens(u.get("outputTokens")),
                                    _tokens(u.get("cacheReadInputTokens")), write_5m, write_1h,
                                    _nanos(u.get("costUSD")) or 0)))
    if len(models) > MAX_MODELS:
        other = ZERO
        for _m, s in models[MAX_MODELS - 1:]:
            other = other.plus(s)
        models = models[:MAX_MODELS - 1] + [(OTHER_MODELS, other)]
    return CostRecord(nanos, tuple(models), entry.get("hasUnknownModelCost") is True)


@dataclass(frozen=True)
class RecordState:
    """What a session file's fold keeps about the agent's record (the module's docstring)."""

    record: CostRecord | None = None
    baseline: Spend = ZERO  # this file's counted spend when its latest record or cut-off run was read
    unrecorded: Spend = ZERO  # runs cut off before they wrote a record
    cut_runs: int = 0  # how many
    copied: dict = field(default_factory=dict)  # keeper workflow id -> Spend of closed copies it counts
    turn_open: bool = False  # a response came since the last prompt, with no end of turn or record after it

    def to_json(self) -> list:
        return [self.record.to_json() if self.record else None, list(self.baseline), list(self.unrecorded),
                self.cut_runs, {k: list(v) for k, v in self.copied.items()}, int(self.turn_open)]

    @classmethod
    def from_json(cls, v: list | None) -> "RecordState":
        if not v:
            return cls()
        return cls(CostRecord.from_json(v[0]) if v[0] else None, Spend(*v[1]), Spend(*v[2]), v[3],
                   {k: Spend(*s) for k, s in v[4].items()}, bool(v[5]))


def add_copy(copied: dict, keeper: str, spend: Spend) -> dict:
    """``copied`` with ``spend`` added for ``keeper``; past MAX_KEEPERS named keepers, under ""."""
    if keeper not in copied and len([k for k in copied if k]) >= MAX_KEEPERS:
        keeper = ""
    return {**copied, keeper: copied.get(keeper, ZERO).plus(spend)}


# User entries that are no turn of the conversation: a local command (/cost, /exit) and its output
LOCAL_COMMAND = ("<command-name>", "<command-message>", "<command-args>", "<local-command-")


def is_prompt(entry: dict) -> bool:
    """A user entry that starts a turn: not a tool result, a meta entry, a local command or a
    side conversation's."""
    msg = entry.get("message")
    if entry.get("type") != "user" or entry.get("isSidechain") is True or entry.get("isMeta") is True \
            or not isinstance(msg, dict):
        return False
    content = msg.get("content")
    if isinstance(content, str):
        return not content.lstrip().startswith(LOCAL_COMMAND)
    return isinstance(content, list) and not any(isinstance(b, dict) and b.get("type") == "tool_result"
                                                 for b in content)
