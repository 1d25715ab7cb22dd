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
  message with k tool calls gives each call 1/k (layer 4 of detection-rules.md). A simple
  command that matches no row gives the same share to its head (``unmatched``: no pattern,
  only what else agents pay for).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass, field, replace

from ..core.commands import BUILTIN_COMMAND_RULES, CommandRule, call_commands, command_line
from ..core.stored import STORED_COLUMNS, StoredTranscript  # noqa: F401 (re-exported)
from ..core.jsonline import INVALID, DecodedLines, loads
from ..core.pricing import PriceRule, cost_nanos
from ..core.waits import Waits
from .cost_record import RecordState, Spend, add_copy, is_prompt, parse_record, spend_of
from .response_keys import ResponseKeys, epoch_ms

# Claude Code 2.0.x writes its sub-agents' conversations (the warm-ups it starts with, the
# Task tool's agents) beside the sessions, as <project>/agent-<id>.jsonl; their entries carry
# the session id of the session that started them. 2.1.x moved them to <sid>/subagents/.
AGENT_FILE = re.compile(r"agent-[A-Za-z0-9_-]{1,64}\.jsonl")

MAX_COST_USD = 100_000.0  # a single agent run costing more is not a real number
MAX_TOKENS = 10_000_000_000
MAX_DURATION_MS = 30 * 86_400 * 1000
ERROR_TEXT_LIMIT = 2000
TAIL_BYTES = 32  # the bytes kept from just before the read offset, to tell an append from a rewrite
_MARKS = (b'"result"', b'"assistant"')


_SESSION = re.compile(rb'"session_id"\s*:\s*"([^"\\]{1,200})"')


def head_session(first_line: bytes) -> str:
    """The session_id on a transcript's first line ("" if none): a new run rewriting the
    file starts with another one."""
    m = _SESSION.search(first_line)
    return m.group(1).decode("utf-8", "replace") if m else ""


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
    # (tool id, signatures, command line, unmatched heads) of its Bash calls
    bash: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...]], ...]
    sidechain: bool = False  # written by a session file's side conversation (isSidechain)
    request: str = ""  # requestId (session files): with the id, what makes a response one response
    cost: int | None = None  # nanodollars from the costUSD of its last entry (older Claude Code), else priced
    duplicate: bool = False  # a copy of a response counted elsewhere (keys.py): its lines merge here, uncounted
    write_1h: int = 0  # of usage's cache write tokens, the 1-hour ones (priced 2x input, not 1.25x)
    kept_by: str = ""  # a duplicate's: the other session that counts it (cost_record.py), "" for this one


NO_SUMS = (0, 0, 0, 0, 0, 0, 0)
# A message closes when this many other messages have begun after it: its lines are
# consecutive in the files Claude Code writes (one entry per content block), so a closed
# message takes no more lines; its usage and its Bash calls' costs go into sums. What a file's
# state keeps is bounded by this, whatever the length of the run (docs/session-store.md).
OPEN_MESSAGES = 16

MAX_LINES = 50  # distinct command lines kept per signature and transcript; the rest count under ""


def merge_lines(a: tuple, b: tuple) -> tuple[tuple[str, int], ...]:
    """Add two (command line, calls) lists. Past MAX_LINES distinct lines, the calls of the
    lines that sort last go to "" (other command lines), so the counts still add up to the
    calls. Which lines stay depends only on the set seen, never on the order seen (a
    transcript read whole or in appends keeps the same ones, each with its exact count)."""
    if not b:
        return a
    counts = dict(a)
    for line, n in b:
        counts[line] = counts.get(line, 0) + n
    if len(counts) > MAX_LINES:
        named = sorted(line for line in counts if line)
        other = counts.get("", 0) + sum(counts[line] for line in named[MAX_LINES - 1:])
        counts = {line: counts[line] for line in named[: MAX_LINES - 1]}
        counts[""] = other
    return tuple(sorted(counts.items()))


MAX_HEADS = 40  # distinct unmatched heads kept per transcript; the rest count under ""


def add_unmatched(unmatched: dict, head: str, cost: "CommandCost") -> None:
    """Add a head's share to ``unmatched`` (head -> CommandCost), in place. Past MAX_HEADS
    heads, those that sort last go to "" (other commands), as merge_lines does with lines:
    which stay depends only on the set seen, so a read in appends keeps the same ones."""
    before = unmatched.get(head)
    unmatched[head] = cost if before is None else before.plus(cost)
    if before is None and len(unmatched) > MAX_HEADS:
        named = sorted(h for h in unmatched if h)
        other = unmatched.get("", CommandCost())
        for h in named[MAX_HEADS - 1:]:
            other = other.plus(unmatched.pop(h))
        unmatched[""] = other


@dataclass(frozen=True)
class CommandCost:
    """What one signature's Bash calls cost in one transcript: nano-dollars, tokens, calls,
    and the command lines behind the calls with how often each ran."""

    cost_nanos: int = 0
    tokens: int = 0
    calls: int = 0
    lines: tuple[tuple[str, int], ...] = ()

    def plus(self, other: "CommandCost") -> "CommandCost":
        return CommandCost(self.cost_nanos + other.cost_nanos, self.tokens + other.tokens, self.calls + other.calls,
                           merge_lines(self.lines, other.lines))


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
    messages: dict = field(default_factory=dict)  # message key -> Message: open ones only (OPEN_MESSAGES)
    commands: dict = field(default_factory=dict)  # signature -> CommandCost, closed messages
    after_result: int = 0  # the offset just after the last result line: where a run can start
    # Finished runs read from earlier versions of the file and no longer in it: an agent run
    # again rewrites its transcript. They were paid for, so they stay counted (as retries).
    overwritten: tuple[Run, ...] = ()
    # What the file looked like at the last read, to tell an append from a rewrite
    size: int = 0
    mtime_ns: int = 0  # 0 when the file was too new to trust its mtime
    head: str = ""  # the session_id of the file's first line
    results_at: tuple[tuple[int, int, int], ...] = ()  # (start, end, crc32) of each result line read
    # A Claude Code session file (claude_sessions.py) rather than a stream-json copy: no result
    # lines, a timestamp on every entry, the prompt in its first user entry.
    session: bool = False
    first_ts: str = ""  # the first and last entry timestamps, as written (ISO 8601, UTC)
    last_ts: str = ""
    prompt: str | None = None  # the first line of the first user message
    cwd: str = ""
    # The session's turn had ended at its last entry that says (claude_sessions.turn_ended):
    # a response with stop_reason end_turn, or a cost-state; a later prompt reopens it.
    ended: bool = False
    # The wall time of Bash calls, tool_use to tool_result (claude_sessions.py): calls still
    # waiting for their result (tool id -> [epoch ms of the call, its signatures]), and each
    # signature's waits (core/waits.py: bounded sums).
    waiting: dict = field(default_factory=dict)
    waits: dict = field(default_factory=dict)  # signature -> Waits
    # The messages of the open run closed since it began (OPEN_MESSAGES): input, cache write,
    # cache read and output tokens, estimated and recorded nanodollars, and of the cache
    # writes the 1-hour ones. A result line resets it.
    closed: tuple[int, int, int, int, int, int, int] = NO_SUMS
    # A session file's: Claude Code's own record of the session's cost and what explains a
    # difference from ours (cost_record.py)
    agent_record: RecordState = field(default_factory=RecordState)
    unmatched: dict = field(default_factory=dict)  # unmatched head -> CommandCost, closed messages (MAX_HEADS)

    @property
    def agent(self) -> str:
        """The agent folder; in a session store, "session" for the session file itself and
        agent-<id> for its subagent files (<sid>/subagents/agent-<id>.jsonl, and 2.0.x's
        <project>/agent-<id>.jsonl beside it)."""
        if self.session:
            if "/subagents/" in self.path or AGENT_FILE.fullmatch(self.path):
                return self.path.rsplit("/", 1)[-1].removesuffix(".jsonl")
            return "session"
        return self.path.split("/", 1)[0]

    def restarted(self, device: int, inode: int) -> "Transcript":
        """An empty read of a rewritten file. Its finished runs with a session id become
        overwritten runs, until the new file shows the same session again (a run is known by
        its session_id: a retry is a new session; the same session rewritten replaces it)."""
        known = {r.session_id: r for r in self.overwritten + self.runs if r.session_id}
        return Transcript(self.path, device, inode, overwritten=tuple(known.values()), session=self.session)


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


def write_1h_of(usage, notes: list[str]) -> int:
    """The 1-hour cache write tokens of an API usage (usage.cache_creation's split); 0 where
    it has no split: every cache write is then a 5-minute one (claude-session-store.md)."""
    split = usage.get("cache_creation") if isinstance(usage, dict) else None
    if not isinstance(split, dict):
        return 0
    return count(split.get("ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens", notes)


def price_usage(model: str | None, usage: tuple[int, int, int, int], prices: tuple[PriceRule, ...],
                notes: list[str], write_1h: int = 0) -> int:
    """``write_1h``: how many of the cache write tokens were 1-hour writes."""
    if not any(usage):
        return 0
    inp, cw, cr, out = usage
    nanos = cost_nanos(model, inp, out, cw, cr, prices, write_1h)
    if nanos is None:
        notes.append(price_note(model))
        return 0
    return nanos


def _reported_nanos(result: dict, notes: list[str]) -> int | None:
    """A result line's reported cost as nanodollars, converted once, here: only integers are
    summed after (a float summed in two orders differs in its last digit)."""
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
        return round(v * 1e9)
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
    nanos = _reported_nanos(result, notes)
    if nanos is None:
        nanos = price_usage(model, usage, prices, notes, write_1h_of(result.get("usage"), notes))
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

# A token with its quotes, found by byte search, is always real JSON (inside a JSON string a
# quote is escaped). The fold below takes a line as a result, an assistant message, an init
# or a Bash call only when the line spells the token plainly, and merges the lines of a
# message only when they spell its id plainly; so the scanner can find every line that
# matters by byte search and skip the rest unparsed, with the same result either way.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_ID_VALUE = re.compile(rb'"id"\s*:\s*"([A-Za-z0-9_.:-]+)"')


class _Fold:
    """Mutable working copy of a Transcript while one chunk is scanned. ``keys``: the
    session store's counted responses (response_keys.py), None for an ADW transcript."""

    def __init__(self, t: Transcript, prices, rules, notes, where, keys=None):
        self.t, self.prices, self.rules, self.notes, self.where, self.keys = t, prices, rules, notes, where, keys
        self.model, self.session, self.open = t.model, t.session_id, t.open
        self.after_result = t.after_result
        self.results_at: list[tuple[int, int, int]] = []
        self.runs = list(t.runs)
        self.messages = dict(t.messages)
        self.commands = dict(t.commands)
        self.unmatched = dict(t.unmatched)
        self.closed = list(t.closed) + [0] * (len(NO_SUMS) - len(t.closed))
        self.record = t.agent_record
        self.main = t.session and t.agent == "session"  # a session's own file: where its runs and record are
        self.bash_calls: dict[str, tuple[str, ...]] = {}  # tool id -> signatures, of this chunk's Bash calls

    def line(self, obj: dict, raw: bytes, pos: int, end: int, run_start: bool) -> None:
        kind = obj.get("type")
        if kind == "assistant" and b'"assistant"' in raw:
            self.assistant(obj, raw, pos)
        elif kind == "result" and b'"result"' in raw:
            run = result_run(obj, self.prices, self.model, self.notes)
            if run.session_id is None:
                run = replace(run, session_id=self.session)
            self.runs.append(run)
            self.model = run.model or self.model
            self.close_messages()
            self.open, self.session, self.after_result = False, None, end
            self.results_at.append((pos, pos + len(raw), zlib.crc32(raw)))
        elif kind == "system" and obj.get("subtype") == "init" and run_start and b'"init"' in raw:
            if isinstance(obj.get("model"), str):
                self.model = obj["model"]
            self.session = obj.get("session_id") if isinstance(obj.get("session_id"), str) else None
            self.open = True
        elif kind == "cost-state" and self.t.session and b'"cost-state"' in raw:
            record = parse_record(obj, self.notes, self.where)
            if record is not None:
                self.record = replace(self.record, record=record, baseline=self.counted(), turn_open=False)
        elif kind == "user" and self.record.turn_open and self.main and is_prompt(obj):
            # A prompt while a run had not ended: that run was cut off (killed) before it wrote
            # a record, and the next run's record starts again from the last one written.
            counted = self.counted()
            self.record = replace(self.record, baseline=counted, turn_open=False, cut_runs=self.record.cut_runs + 1,
                                  unrecorded=self.record.unrecorded.plus(counted.minus(self.record.baseline)))

    def counted(self) -> Spend:
        return counted_spend(self.closed, self.messages, self.prices)

    def assistant(self, obj: dict, raw: bytes, pos: int) -> None:
        msg = obj.get("message")
        if not isinstance(msg, dict):
            return
        self.open = True
        mid = msg.get("id")
        if not (isinstance(mid, str) and _PLAIN_ID.fullmatch(mid) and mid.encode() in _ID_VALUE.findall(raw)):
            mid = None  # no id, or one spelled so that its other lines cannot be found: its own message
        # A session file read with the store's keys: a response is its message id and request id.
        # Without them (an ADW transcript, a session joined to an ADW run): its message id.
        request = obj.get("requestId") if self.keys is not None and isinstance(obj.get("requestId"), str) else ""
        key = f"@{pos}" if mid is None else f"{mid}\x1f{request}" if request else mid
        model = msg.get("model") if isinstance(msg.get("model"), str) else None
        sidechain = obj.get("isSidechain") is True
        prev = self.messages.get(key)
        if prev and sidechain and not prev.sidechain:
            return  # a side conversation replaying its parent's message: the parent's counts
        duplicate = prev.duplicate if prev else (
            mid is not None and self.keys is not None
            and not self.keys.claim(self.t.path, mid, request, sidechain, epoch_ms(obj.get("timestamp"))))
        kept_by = prev.kept_by if prev else self.keeper(mid, request, sidechain, obj) if duplicate else ""
        if self.main and not sidechain:
            self.record = replace(self.record, turn_open=msg.get("stop_reason") != "end_turn")
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
            if block.get("name") == "Bash" and b'"Bash"' in raw:
                inp = block.get("input")
                command = inp.get("command") if isinstance(inp, dict) else None
                if not isinstance(command, str):
                    self.notes.append(f"{self.where}: Bash call at byte {pos} has no command text (ignored)")
                    continue
                sigs, heads = call_commands(command, self.rules)
                bash.append((tid, sigs, command_line(command) if sigs else "", heads))
        self.bash_calls.update((tid, sigs) for tid, sigs, _line, _heads in bash if sigs)
        if "usage" in msg:
            usage, write_1h = usage_of(msg["usage"], self.notes), write_1h_of(msg["usage"], self.notes)
        else:
            usage, write_1h = (prev.usage, prev.write_1h) if prev else ((0, 0, 0, 0), 0)
        cost = _entry_cost(obj, self.notes, self.where) if "costUSD" in obj else (prev.cost if prev else None)
        if prev is None:
            self.close_oldest()
        self.messages[key] = Message(model or (prev.model if prev else None) or self.model, usage,
                                     tuple(tools), tuple(bash), sidechain and (prev.sidechain if prev else True),
                                     request, cost, duplicate, write_1h, kept_by)

    def keeper(self, mid: str, request: str, sidechain: bool, obj: dict) -> str:
        """The other session that counts a duplicate ("" when it is this one's own)."""
        keeper = self.keys.keeper(mid, request, sidechain, epoch_ms(obj.get("timestamp")))
        return "" if keeper == self.keys.workflow_id else keeper

    def close_oldest(self) -> None:
        """Make room for a new message: the oldest open one closes (OPEN_MESSAGES)."""
        while len(self.messages) >= OPEN_MESSAGES:
            oldest = next(iter(self.messages))
            self.close(self.messages.pop(oldest))

    def close(self, msg: Message) -> None:
        if msg.duplicate:
            if msg.kept_by:
                copy = spend_of(msg.usage, msg.write_1h, message_nanos(msg, self.prices, []))
                self.record = replace(self.record, copied=add_copy(self.record.copied, msg.kept_by, copy))
            return
        nanos = message_nanos(msg, self.prices, self.notes)
        for i, n in enumerate(msg.usage):
            self.closed[i] += n
        self.closed[5 if msg.cost is not None else 4] += nanos
        self.closed[6] += msg.write_1h
        add_shares(self.commands, self.unmatched, msg, self.prices, [])

    def close_messages(self) -> None:
        """A result line ends the run: its cost is the result's, its messages' commands stay."""
        for msg in self.messages.values():
            add_shares(self.commands, self.unmatched, msg, self.prices, self.notes)
        self.messages = {}
        self.closed = list(NO_SUMS)

    def result(self, offset: int, tail: str) -> Transcript:
        t = self.t
        overwritten = t.overwritten
        if overwritten:  # the file holds these sessions again: what it says now replaces them
            present = {r.session_id for r in self.runs} | {self.session}
            overwritten = tuple(r for r in overwritten if r.session_id not in present)
        return replace(t, offset=offset, tail=tail, model=self.model, session_id=self.session, runs=tuple(self.runs),
                       open=self.open, messages=self.messages, commands=self.commands, unmatched=self.unmatched,
                       after_result=self.after_result,
                       overwritten=overwritten, results_at=t.results_at + tuple(self.results_at),
                       closed=tuple(self.closed), agent_record=self.record)


def _entry_cost(entry: dict, notes: list[str], where: str) -> int | None:
    """An entry's costUSD (older Claude Code versions wrote it) as nanodollars, else None."""
    v = entry.get("costUSD")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= MAX_COST_USD:
        if v is not None:
            notes.append(f"{where}: costUSD {str(v)[:30]!r} is not a cost (priced from usage)")
        return None
    return round(v * 1e9)


def message_nanos(msg: Message, prices, notes: list[str]) -> int:
    """What a message cost: its recorded costUSD where it has one, else its usage priced."""
    return msg.cost if msg.cost is not None else price_usage(msg.model, msg.usage, prices, notes, msg.write_1h)


def counted_spend(closed, messages: dict, prices) -> Spend:
    """What a file counted: its closed messages' sums and its open messages, copies left out."""
    c = closed
    total = spend_of((c[0], c[1], c[2], c[3]), c[6], c[4] + c[5])
    for msg in messages.values():
        if not msg.duplicate:
            total = total.plus(spend_of(msg.usage, msg.write_1h, message_nanos(msg, prices, [])))
    return total


def copied_spend(t: "Transcript", prices) -> dict:
    """Keeper workflow id -> the spend of this file's copies of responses another session counts."""
    copied = t.agent_record.copied
    for msg in t.messages.values():
        if msg.duplicate and msg.kept_by:
            copied = add_copy(copied, msg.kept_by, spend_of(msg.usage, msg.write_1h, message_nanos(msg, prices, [])))
    return copied


def add_shares(commands: dict, unmatched: dict, msg: Message, prices, notes: list[str]) -> None:
    """Add a message's Bash calls' shares, in place: 1/k of it to each distinct signature of
    each call (``commands``), and the same to each distinct unmatched head (``unmatched``,
    add_unmatched; no command lines: the head is what a rule is written from)."""
    if not msg.bash or msg.duplicate:
        return
    nanos = message_nanos(msg, prices, notes)
    tokens = sum(msg.usage)
    k = len(msg.tools)
    for _tid, sigs, line, heads in msg.bash:
        for sig in sigs:
            commands[sig] = commands.get(sig, CommandCost()).plus(CommandCost(nanos // k, tokens // k, 1, ((line, 1),)))
        for head in heads:
            add_unmatched(unmatched, head, CommandCost(nanos // k, tokens // k, 1))


def scan_chunk(t: Transcript, chunk, start: int, prices: tuple[PriceRule, ...], notes: list[str], where: str,
               rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES,
               decoded: DecodedLines | None = None, keys: ResponseKeys | None = None,
               bash_calls: dict | None = None) -> tuple[Transcript, int]:
    """Fold the complete lines of ``chunk`` (the file's bytes from ``start``; bytes, or a
    _MappedChunk) into ``t``. Returns the new value and the offset just after the last
    newline, so that a line still being written is read next time, whole.

    Only the lines that can change the value are parsed, each found by a byte search:
    1. every line with a "result" token;
    2. an init line where a run starts: the file's first line and the line after a result;
    3. after the chunk's last result line (the open run): every "assistant" line;
    4. before it: only lines with a "Bash" token, and the lines that share their message
       ids. A closed run costs what its result line says; of its messages only those with
       Bash calls outlive it, as command costs. The tool results and the closed runs' other
       messages (most of the bytes) are never parsed.
    The value is the same whether a file is read whole or in any split into appends.
    ``decoded``: the chunk's decoded lines, shared with session.fold_facts. ``keys``: a
    session file's counted responses (response_keys.py); without them a response is known by
    its message id while it is open. ``bash_calls``: filled with this chunk's Bash calls.
    """
    end = chunk.rfind(b"\n")
    if end < 0:
        return t, start
    lines, run_starts = _select_lines(t, decoded or DecodedLines(chunk), start, end, notes, where)
    if keys is not None:
        keys.prepare(_message_ids(lines.values()))
    fold = _Fold(t, prices, rules, notes, where, keys)
    for line_start in sorted(lines):
        obj, raw, line_end = lines[line_start]
        if isinstance(obj, dict):
            fold.line(obj, raw, start + line_start, start + line_end + 1, line_start in run_starts)
    if bash_calls is not None:
        bash_calls.update(fold.bash_calls)
    tail = bytes(chunk[max(0, end + 1 - TAIL_BYTES):end + 1])
    if len(tail) < TAIL_BYTES:
        tail = (bytes.fromhex(t.tail) + tail)[-TAIL_BYTES:]
    return fold.result(start + end + 1, tail.hex()), start + end + 1


def _message_ids(lines) -> list[str]:
    """The message ids of the assistant lines picked from a chunk (to ask the store at once)."""
    ids = []
    for obj, _raw, _end in lines:
        msg = obj.get("message") if isinstance(obj, dict) and obj.get("type") == "assistant" else None
        if isinstance(msg, dict) and isinstance(msg.get("id"), str):
            ids.append(msg["id"])
    return ids


class _Selection:
    """The lines of a chunk picked for folding, decoded once each (by ``decoded``)."""

    def __init__(self, decoded: DecodedLines, start: int, notes: list[str], where: str):
        self.chunk, self.decoded, self.start, self.notes, self.where = decoded.chunk, decoded, start, notes, where
        self.lines: dict[int, tuple[object, bytes, int]] = {}  # line start -> (value, raw bytes, line end)

    def take(self, line_start: int, line_end: int | None = None) -> None:
        if line_start in self.lines:
            return
        obj, raw, line_end = self.decoded.at(line_start, line_end)
        if obj is INVALID:
            self.notes.append(f"{self.where}: line at byte {self.start + line_start} is not valid JSON (skipped)")
            obj = None
        self.lines[line_start] = (obj, raw, line_end)

    def each_line_with(self, token: bytes, first: int, last: int):
        """(start, end) of each line holding ``token`` in chunk[first:last]."""
        chunk, pos = self.chunk, first
        while (hit := chunk.find(token, pos, last)) >= 0:
            line_start = chunk.rfind(b"\n", 0, hit) + 1
            line_end = chunk.find(b"\n", hit)
            yield line_start, line_end
            pos = line_end + 1


def _select_lines(t: Transcript, decoded: DecodedLines, start: int, end: int, notes: list[str], where: str):
    """The lines that can change the fold (scan_chunk's four rules), parsed, and the
    positions where a run starts."""
    chunk = decoded.chunk
    pick = _Selection(decoded, start, notes, where)
    lines = pick.lines
    for line_start, line_end in pick.each_line_with(b'"result"', 0, end):
        pick.take(line_start, line_end)
    result_ends = [line_end + 1 for obj, raw, line_end in lines.values()
                   if isinstance(obj, dict) and obj.get("type") == "result"]
    open_from = max(result_ends, default=0)  # the open run's lines begin here
    run_starts = {p for p in result_ends if p < end}
    if t.after_result == start:
        run_starts.add(0)
    for line_start in run_starts:
        line_end = chunk.find(b"\n", line_start)
        if chunk.find(b'"init"', line_start, min(line_end, line_start + 65536)) >= 0:
            pick.take(line_start, line_end)
    for line_start, line_end in pick.each_line_with(b'"assistant"', open_from, end):
        pick.take(line_start, line_end)
    if t.session:
        _select_record_lines(t, pick, end)
    if open_from:
        # Messages with Bash calls: those found in the closed lines, and those still open
        # from the last read, whose later lines may be here.
        ids = {mid.encode() for mid, msg in t.messages.items() if msg.bash and not mid.startswith("@")}
        for line_start, line_end in pick.each_line_with(b'"Bash"', 0, open_from):
            pick.take(line_start, line_end)
            ids.update(_ID_VALUE.findall(lines[line_start][1]))
        if ids:
            for hit, mid in find_ids(chunk, 0, open_from):
                if mid in ids:
                    pick.take(chunk.rfind(b"\n", 0, hit) + 1)
    return lines, run_starts


# A request's content (a user message, often large), told by its type: the line's first key
_REQUEST_BLOB = b'"api-request-blob"'


def _select_record_lines(t: Transcript, pick: "_Selection", end: int) -> None:
    """A session file's cost-state lines, and in its own file the prompts: where a run that
    wrote no record was cut off (cost_record.py)."""
    for line_start, line_end in pick.each_line_with(b'"cost-state"', 0, end):
        pick.take(line_start, line_end)
    if t.agent != "session":
        return
    chunk = pick.chunk
    for line_start, line_end in pick.each_line_with(b'"user"', 0, end):
        if chunk.find(_REQUEST_BLOB, line_start, min(line_end, line_start + 64)) < 0 \
                and chunk.find(b'"tool_result"', line_start, line_end) < 0:  # not a request, not a tool result
            pick.take(line_start, line_end)


def find_ids(chunk, first: int, last: int):
    """(position, id) of each `"id":"<plain id>"` in chunk[first:last]."""
    if isinstance(chunk, bytes):
        return ((m.start(), m.group(1)) for m in _ID_VALUE.finditer(chunk, first, last))
    return chunk.finditer(_ID_VALUE, first, last)


# ---------------------------------------------------------------------------------------
# what a transcript adds up to

@dataclass(frozen=True)
class Totals:
    """A transcript's spend: its finished runs (reported; those overwritten included) and its
    open run (estimated)."""

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
    unmatched: dict  # unmatched head -> CommandCost, open messages included
    overwritten: int = 0  # of ``runs``: seen in earlier versions of the file, since overwritten
    overwritten_nanos: int = 0
    lost: int = 0  # of ``runs``: attempts only the session store kept (each a retry)


def totals(t: Transcript, prices: tuple[PriceRule, ...], notes: list[str]) -> Totals:
    runs = t.overwritten + t.runs
    tokens = sum(r.tokens for r in runs)
    reported = sum(r.cost_nanos for r in runs) + t.closed[5]
    estimated = t.closed[4]
    tokens += sum(t.closed[:4])
    commands, unmatched = dict(t.commands), dict(t.unmatched)
    for msg in t.messages.values():
        if msg.duplicate:
            continue
        if msg.cost is not None:
            reported += msg.cost
        else:
            estimated += price_usage(msg.model, msg.usage, prices, notes, msg.write_1h)
        tokens += sum(msg.usage)
        add_shares(commands, unmatched, msg, prices, [])
    errors = [r for r in runs if r.is_error]
    model = next((r.model for r in reversed(runs) if r.model), None) or t.model
    return Totals(len(runs), 1 if t.open else 0, tokens, reported, estimated,
                  sum(r.duration_ms for r in runs), len(errors), errors[-1].error_text if errors else None,
                  model, commands, unmatched, len(t.overwritten), sum(r.cost_nanos for r in t.overwritten))


# ---------------------------------------------------------------------------------------
# stored form (one JSON text beside the read offset)

def _run_json(r: Run) -> list:
    return [r.session_id, r.tokens, r.cost_nanos, r.duration_ms, r.is_error, r.error_text, r.model]


# 2: command lines beside the commands' costs. 3: bounded: closed messages in sums, a
# message's request id, recorded cost and duplicate mark (a version 2 session file's state
# is converted, and read again where its file still is: migration m011). 4: a message's
# 1-hour cache writes (priced 2x input); a version 2 or 3 session file's state is kept, and
# read again where its file still is; every file is read again once (migration m013).
# 5: the agent's own record (cost_record.py), the closed messages' 1-hour writes and a
# duplicate's keeper; as for 4 (migration m015).
# 6: the shares of commands that match no row (``unmatched``, a Bash call's heads); a
# version 2 to 5 session file's state is kept where its file is gone (with no unmatched
# figures), every file still there is read again once (migration m016).
STATE_VERSION = 6
OLDER_KEPT = (2, 3, 4, 5)  # versions whose session file state is kept where its file is gone


def _message_json(m: Message) -> list:
    return [m.model, list(m.usage), list(m.tools), [[tid, list(s), line, list(h)] for tid, s, line, h in m.bash],
            int(m.sidechain), m.request, m.cost, int(m.duplicate), m.write_1h, m.kept_by]


def _waiting(stored: dict) -> dict:
    """Calls waiting for their result; version 2 kept only the time (no signatures: not timed)."""
    return {tid: v for tid, v in stored.items() if isinstance(v, list)}


def _message(m: list) -> Message:
    """A stored message: version 5's and 6's ten fields, 4's nine, 3's eight, or 2's four or five
    (a Bash call's unmatched heads from version 6 on)."""
    bash = tuple((b[0], tuple(b[1]), b[2], tuple(b[3]) if len(b) > 3 else ()) for b in m[3])
    if len(m) >= 8:
        return Message(m[0], tuple(m[1]), tuple(m[2]), bash, bool(m[4]), m[5], m[6], bool(m[7]),
                       m[8] if len(m) > 8 else 0, m[9] if len(m) > 9 else "")
    return Message(m[0], tuple(m[1]), tuple(m[2]), bash, len(m) > 4)


def to_json(t: Transcript) -> str:
    return json.dumps({
        "model": t.model, "session": t.session_id, "open": t.open,
        "runs": [_run_json(r) for r in t.runs],
        "v": STATE_VERSION,
        "messages": {k: _message_json(m) for k, m in t.messages.items()},
        "closed": list(t.closed),
        "commands": {k: [c.cost_nanos, c.tokens, c.calls, [list(x) for x in c.lines]] for k, c in t.commands.items()},
        "unmatched": {k: [c.cost_nanos, c.tokens, c.calls] for k, c in t.unmatched.items()},
        "after_result": t.after_result,
        "overwritten": [_run_json(r) for r in t.overwritten],
        "results_at": [list(r) for r in t.results_at],
        **({"store": [t.first_ts, t.last_ts, t.prompt, t.cwd, t.ended, t.waiting,
                      {k: w.to_json() for k, w in t.waits.items()}],
            "record": t.agent_record.to_json()} if t.session else {}),
    }, separators=(",", ":"))


# StoredTranscript and its columns are core/stored.py's (the store keeps them without knowing a reader).


def stored(t: Transcript) -> StoredTranscript:
    runs = t.overwritten + t.runs
    errors = [r for r in runs if r.is_error]
    return StoredTranscript(t.path, t.device, t.inode, t.offset, t.size, t.mtime_ns, t.head, t.tail, len(runs),
                            sum(r.tokens for r in runs), sum(r.cost_nanos for r in runs),
                            sum(r.duration_ms for r in runs), len(errors), errors[-1].error_text if errors else None,
                            t.model, len(t.overwritten), to_json(t))


def from_json(path: str, device: int, inode: int, offset: int, size: int, mtime_ns: int, head: str, tail: str,
              text: str | None, session: bool = False) -> Transcript:
    """``session``: what to start from when nothing usable is stored (a session file's row)."""
    d = loads(text) if text else {}
    facts = d.get("store")
    if d.get("v") in OLDER_KEPT and facts is not None:
        # A session file's state of an older version: kept (the file may be gone; Claude Code
        # deletes old sessions), but with no file identity, so that a file still there is read again.
        device = inode = 0
    elif d.get("v") != STATE_VERSION:
        # Stored by an older version: read the file again from the start, keeping the runs
        # that only the ledger knows (seen live, since overwritten by a later run).
        return Transcript(path, overwritten=tuple(Run(*r) for r in d.get("overwritten", ())), session=session)
    return Transcript(
        path, device, inode, offset, tail, d["model"], d["session"],
        tuple(Run(*r) for r in d["runs"]), d["open"],
        {k: _message(m) for k, m in d["messages"].items()},
        {k: CommandCost(c[0], c[1], c[2], tuple((line, n) for line, n in c[3])) for k, c in d["commands"].items()},
        d["after_result"],
        tuple(Run(*r) for r in d["overwritten"]), size, mtime_ns, head, tuple(tuple(r) for r in d["results_at"]),
        facts is not None, *(facts[:5] if facts else ()),
        *((_waiting(facts[5]), {k: Waits.from_json(v) for k, v in facts[6].items()}) if facts and len(facts) > 5
          else ()),
        closed=(tuple(d.get("closed", NO_SUMS)) + NO_SUMS)[:len(NO_SUMS)],
        agent_record=RecordState.from_json(d.get("record")),
        unmatched={k: CommandCost(*c) for k, c in d.get("unmatched", {}).items()},
    )
