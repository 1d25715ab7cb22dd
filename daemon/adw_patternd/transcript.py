"""One agent transcript (Claude Code stream-json), folded line by line into a value.

Pure: bytes in, a Transcript out. The fold is the same whether a file is read whole or in
appended chunks, because everything a later line needs from the earlier ones is carried in
the Transcript (and stored with the read offset): the finished runs, the open run's
assistant messages by id, and the command costs of the messages already closed.

- A result line closes a run: its own totals count (total_cost_usd, usage, duration_ms).
- Assistant lines after the last result line are an unfinished run: its cost is estimated
  from each message.id once (the usage of its last line), priced by the message's model.
  Stream output_tokens can be partial, so this is a lower bound.
- Bash tool calls give their message's priced usage to their commands' signatures: a
  message with k tool calls gives each call 1/k (layer 4 of detection-rules.md).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace

from .commands import BUILTIN_COMMAND_RULES, CommandRule, call_signatures
from .pricing import PriceRule, cost_nanos

MAX_COST_USD = 100_000.0  # a single agent run costing more is not a real number
MAX_TOKENS = 10_000_000_000
MAX_DURATION_MS = 30 * 86_400 * 1000
ERROR_TEXT_LIMIT = 2000
_MARKS = (b'"result"', b'"assistant"')


def price_note(model: str | None) -> str:
    return (f"model {model!r} has no price: add it under `prices:` in config.yaml "
            f"(USD per million tokens: input, output, cache_write, cache_read); its usage counts as $0 until then")


@dataclass(frozen=True)
class Run:
    """One finished run of an agent: one result line."""

    session_id: str | None
    tokens: int
    cost_nanos: int
    duration_ms: int
    is_error: bool
    error_text: str | None
    model: str | None


@dataclass(frozen=True)
class Message:
    """An assistant message of the open run, merged over the lines that share its id."""

    model: str | None
    usage: tuple[int, int, int, int]  # input, cache write, cache read, output (of its last line)
    tools: tuple[str, ...]  # ids of all its tool calls, of any kind
    bash: tuple[tuple[str, tuple[str, ...]], ...]  # (tool id, signatures) of its Bash calls


@dataclass(frozen=True)
class CommandCost:
    """What one signature's Bash calls cost in one transcript: nano-dollars, tokens, calls."""

    cost_nanos: int = 0
    tokens: int = 0
    calls: int = 0

    def plus(self, other: "CommandCost") -> "CommandCost":
        return CommandCost(self.cost_nanos + other.cost_nanos, self.tokens + other.tokens, self.calls + other.calls)


@dataclass(frozen=True)
class Transcript:
    """An agent transcript as read up to ``offset`` (just after its last complete line)."""

    path: str  # relative to the workflow folder: <agent>/<name>output.jsonl
    device: int = 0
    inode: int = 0
    offset: int = 0
    tail: str = ""  # hex of the bytes just before ``offset``: tells an append from a rewrite
    model: str | None = None
    session_id: str | None = None  # of the open run, from its init line
    runs: tuple[Run, ...] = ()
    open: bool = False  # lines of a run without its result line follow the last result
    messages: dict = field(default_factory=dict)  # message id -> Message, open run only
    commands: dict = field(default_factory=dict)  # signature -> CommandCost, closed messages

    @property
    def agent(self) -> str:
        return self.path.split("/", 1)[0]

    def restarted(self, device: int, inode: int) -> "Transcript":
        return Transcript(self.path, device, inode)


# ---------------------------------------------------------------------------------------
# numbers from untrusted lines

def count(value, what: str, notes: list[str], limit: float = MAX_TOKENS) -> int:
    if type(value) is int and 0 <= value <= limit:  # the common case, first
        return value
    if value is None:
        return 0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            notes.append(f"{what} {value[:30]!r} is not a number (counted as 0)")
            return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        notes.append(f"{what} is not a number (counted as 0)")
        return 0
    if value < 0 or value > limit:
        notes.append(f"{what} {value} is out of range (counted as 0)")
        return 0
    return int(value)


def usage_of(usage, notes: list[str]) -> tuple[int, int, int, int]:
    if not isinstance(usage, dict):
        return (0, 0, 0, 0)
    return (count(usage.get("input_tokens"), "input_tokens", notes),
            count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens", notes),
            count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens", notes),
            count(usage.get("output_tokens"), "output_tokens", notes))


def price_usage(model: str | None, usage: tuple[int, int, int, int], prices: tuple[PriceRule, ...],
                notes: list[str]) -> int:
    if not any(usage):
        return 0
    inp, cw, cr, out = usage
    nanos = cost_nanos(model, inp, out, cw, cr, prices)
    if nanos is None:
        notes.append(price_note(model))
        return 0
    return nanos


def _reported_cost(result: dict, notes: list[str]) -> float | None:
    for key in ("total_cost_usd", "cost_usd", "total_cost"):
        v = result.get(key)
        if v is None:
            continue
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                notes.append(f"{key} {v[:30]!r} is not a number (priced from usage)")
                return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            notes.append(f"{key} is not a number (priced from usage)")
            return None
        if v < 0 or v > MAX_COST_USD:
            notes.append(f"{key} {v} is out of range (priced from usage)")
            return None
        return float(v)
    return None


def result_model(result: dict) -> str | None:
    usage = result.get("modelUsage")
    if isinstance(usage, dict):
        for key in usage:
            if isinstance(key, str) and key:
                return key
    return None


def result_run(result: dict, prices: tuple[PriceRule, ...], fallback_model: str | None, notes: list[str]) -> Run:
    usage = usage_of(result.get("usage"), notes)
    model = result_model(result) or fallback_model
    cost = _reported_cost(result, notes)
    nanos = round(cost * 1e9) if cost is not None else price_usage(model, usage, prices, notes)
    is_error = result.get("is_error") is True or str(result.get("subtype", "")).startswith("error")
    text = None
    if is_error:
        t = result.get("result")
        text = (t if isinstance(t, str) and t else str(result.get("subtype") or "error"))[-ERROR_TEXT_LIMIT:]
    duration = count(result.get("duration_ms"), "duration_ms", notes, MAX_DURATION_MS)
    session = result.get("session_id") if isinstance(result.get("session_id"), str) else None
    return Run(session, sum(usage), nanos, duration, is_error, text, model)


# ---------------------------------------------------------------------------------------
# the fold

class _Fold:
    """Mutable working copy of a Transcript while one chunk is scanned."""

    def __init__(self, t: Transcript, prices, rules, notes, where):
        self.t, self.prices, self.rules, self.notes, self.where = t, prices, rules, notes, where
        self.model, self.session, self.open = t.model, t.session_id, t.open
        self.runs = list(t.runs)
        self.messages = dict(t.messages)
        self.commands = dict(t.commands)

    def line(self, obj: dict, pos: int) -> None:
        kind = obj.get("type")
        if kind == "assistant":
            self.assistant(obj, pos)
        elif kind == "result":
            run = result_run(obj, self.prices, self.model, self.notes)
            if run.session_id is None:
                run = replace(run, session_id=self.session)
            self.runs.append(run)
            self.model = run.model or self.model
            self.close_messages()
            self.open, self.session = False, None
        elif kind == "system" and obj.get("subtype") == "init":
            if isinstance(obj.get("model"), str):
                self.model = obj["model"]
            self.session = obj.get("session_id") if isinstance(obj.get("session_id"), str) else None
            self.open = True

    def assistant(self, obj: dict, pos: int) -> None:
        msg = obj.get("message")
        if not isinstance(msg, dict):
            return
        self.open = True
        mid = msg.get("id") if isinstance(msg.get("id"), str) and msg.get("id") else f"@{pos}"
        model = msg.get("model") if isinstance(msg.get("model"), str) else None
        prev = self.messages.get(mid)
        tools = list(prev.tools) if prev else []
        bash = list(prev.bash) if prev else []
        content = msg.get("content")
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict) or block.get("type") != "tool_use":
                continue
            tid = block.get("id") if isinstance(block.get("id"), str) else f"@{pos}:{len(tools)}"
            if tid in tools:
                continue
            tools.append(tid)
            if block.get("name") == "Bash":
                inp = block.get("input")
                command = inp.get("command") if isinstance(inp, dict) else None
                if not isinstance(command, str):
                    self.notes.append(f"{self.where}: Bash call at byte {pos} has no command text (ignored)")
                    continue
                bash.append((tid, call_signatures(command, self.rules)))
        usage = usage_of(msg.get("usage"), self.notes) if "usage" in msg else (prev.usage if prev else (0, 0, 0, 0))
        self.messages[mid] = Message(model or (prev.model if prev else None) or self.model, usage,
                                     tuple(tools), tuple(bash))

    def close_messages(self) -> None:
        for msg in self.messages.values():
            for sig, cost in message_commands(msg, self.prices, self.notes):
                self.commands[sig] = self.commands.get(sig, CommandCost()).plus(cost)
        self.messages = {}

    def result(self, offset: int, tail: str) -> Transcript:
        t = self.t
        return Transcript(t.path, t.device, t.inode, offset, tail, self.model, self.session, tuple(self.runs),
                          self.open, self.messages, self.commands)


def message_commands(msg: Message, prices, notes: list[str]):
    """(signature, CommandCost) for each distinct signature of each Bash call of a message."""
    if not msg.bash:
        return
    nanos = price_usage(msg.model, msg.usage, prices, notes)
    tokens = sum(msg.usage)
    k = len(msg.tools)
    for _tid, sigs in msg.bash:
        for sig in sigs:
            yield sig, CommandCost(nanos // k, tokens // k, 1)


def scan_chunk(t: Transcript, chunk, start: int, prices: tuple[PriceRule, ...], notes: list[str], where: str,
               rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES) -> tuple[Transcript, int]:
    """Fold the complete lines of ``chunk`` (the file's bytes from ``start``; bytes, or an
    object with find/rfind/slicing) into ``t``. Returns the new value and the offset just
    after the last newline, so that a line still being written is read next time, whole.

    Only lines holding a "result", "assistant" or "init" token are parsed: the tool results
    (often base64 images of hundreds of KB) are skipped at memory speed. Inside a JSON
    string a quote is escaped, so such a token with its quotes is always real JSON. An init
    line opens a run: it is looked for only where a run can start (the file's first line,
    and the line after each result line), which saves a pass over the bytes.
    """
    end = chunk.rfind(b"\n")
    if end < 0:
        return t, start
    starts: set[int] = set()
    results = []
    for mark in _MARKS:
        pos = 0
        while True:
            hit = chunk.find(mark, pos, end)
            if hit < 0:
                break
            line_start = chunk.rfind(b"\n", 0, hit) + 1
            starts.add(line_start)
            pos = chunk.find(b"\n", hit) + 1
            if mark == b'"result"':
                results.append(pos)
    # Where a run (and its init line) can begin: the file's first line, the first line after
    # a read that ended between runs, and the line after each result line.
    for line_start in ([0] if start == 0 or not t.open else []) + results:
        if line_start < end and b'"init"' in chunk[line_start:min(chunk.find(b"\n", line_start), line_start + 65536)]:
            starts.add(line_start)
    fold = _Fold(t, prices, rules, notes, where)
    for line_start in sorted(starts):
        line = bytes(chunk[line_start:chunk.find(b"\n", line_start)])
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            notes.append(f"{where}: line at byte {start + line_start} is not valid JSON (skipped)")
            continue
        if isinstance(obj, dict):
            fold.line(obj, start + line_start)
    return fold.result(start + end + 1, t.tail), start + end + 1


# ---------------------------------------------------------------------------------------
# what a transcript adds up to

@dataclass(frozen=True)
class Totals:
    """A transcript's spend: its finished runs (reported) and its open run (estimated)."""

    runs: int
    unfinished: int
    tokens: int
    reported_nanos: int
    estimated_nanos: int
    duration_ms: int
    errors: int
    last_error: str | None
    model: str | None
    commands: dict  # signature -> CommandCost, open messages included


def totals(t: Transcript, prices: tuple[PriceRule, ...], notes: list[str]) -> Totals:
    tokens = sum(r.tokens for r in t.runs)
    reported = sum(r.cost_nanos for r in t.runs)
    estimated = 0
    commands = dict(t.commands)
    for msg in t.messages.values():
        estimated += price_usage(msg.model, msg.usage, prices, notes)
        tokens += sum(msg.usage)
        for sig, cost in message_commands(msg, prices, []):
            commands[sig] = commands.get(sig, CommandCost()).plus(cost)
    errors = [r for r in t.runs if r.is_error]
    model = next((r.model for r in reversed(t.runs) if r.model), None) or t.model
    return Totals(len(t.runs), 1 if t.open else 0, tokens, reported, estimated,
                  sum(r.duration_ms for r in t.runs), len(errors), errors[-1].error_text if errors else None,
                  model, commands)


# ---------------------------------------------------------------------------------------
# stored form (one JSON text beside the read offset)

def to_json(t: Transcript) -> str:
    return json.dumps({
        "model": t.model, "session": t.session_id, "open": t.open,
        "runs": [[r.session_id, r.tokens, r.cost_nanos, r.duration_ms, r.is_error, r.error_text, r.model]
                 for r in t.runs],
        "messages": {k: [m.model, list(m.usage), list(m.tools), [[tid, list(s)] for tid, s in m.bash]]
                     for k, m in t.messages.items()},
        "commands": {k: [c.cost_nanos, c.tokens, c.calls] for k, c in t.commands.items()},
    }, separators=(",", ":"))


def from_json(path: str, device: int, inode: int, offset: int, tail: str, text: str | None) -> Transcript:
    if not text:
        return Transcript(path)  # stored by an older version: read again from the start
    d = json.loads(text)
    return Transcript(
        path, device, inode, offset, tail, d["model"], d["session"],
        tuple(Run(*r) for r in d["runs"]), d["open"],
        {k: Message(m[0], tuple(m[1]), tuple(m[2]), tuple((tid, tuple(s)) for tid, s in m[3]))
         for k, m in d["messages"].items()},
        {k: CommandCost(*c) for k, c in d["commands"].items()},
    )
