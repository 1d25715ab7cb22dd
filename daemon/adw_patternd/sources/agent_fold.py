"""The shared half of the readers for agents that write one JSON-lines session log (issue 33:
GitHub Copilot CLI, Gemini CLI, Qwen Code; OpenCode feeds it rows): the values every such
reader returns, and one bounded fold over a small vocabulary of events.

Each agent module (copilot.py, qwen.py, ...) translates its own records into these events:

- ``Prompt(text, ts)``: a user's request (the first one names the session).
- ``Response(id, model, usage, ts, calls, recorded_nanos)``: one model response. ``usage`` is
  (uncached input, output with reasoning, cache write, cache read). ``calls`` holds every tool
  call of the response as (call id, shell command text), the text None for a tool that is not a
  shell: k, the divisor of the 1/k rule, counts them all. ``recorded_nanos``: the agent's own
  cost, only where it is a real one (else None: the fold prices the tokens).
- ``CallStart(call_id, ts)``: a tool started later than its response (its wait starts here).
- ``CallEnd(call_id, ts, exit_code, wall_ms)``: a tool's result; ``wall_ms`` when the agent
  records the wait itself, else end − start.
- ``Ended(ts)`` / ``Reopened(ts)``: the session ended (a shutdown record), or went on.
- ``Seen(ts)``: any other record: only its time counts (the session's start and end).

A Response whose ``usage`` is None adds its calls to an earlier copy with the same id and keeps
that copy's usage (Copilot writes a response's usage record, then its message with the calls).

The fold is pure and bounded: a response stays open (its copies with the same id replace it:
the last copy's usage counts, once) until OPEN_RESPONSES newer ones have begun; it then goes
into sums: tokens and nanodollars per model, and its shell calls' shares per signature (the
1/k rule of sources/transcript.py ``add_shares``), and the same shares per unmatched head (a
shell command that matches no row); waits per signature go to
core/waits.py. So a session of 100,000 responses keeps a state of the same size as one of 20.

Reading a log in appends (``JsonlReader``) keeps, per file, the offset after its last complete
line and a checksum of its first line: a file whose head changed is read whole again into a
fresh fold; a file that shrank with the same head was rewound (Copilot removes the events
after a rewind point): what was counted stays counted (it was served), and reading goes on
from the new end.
"""

from __future__ import annotations

import json
import os
import stat
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, NamedTuple, Union

from ..core.commands import BUILTIN_COMMAND_RULES, call_commands, command_line
from ..core.errors import InputRejected
from ..core.jsonline import loads
from ..core.model import AgentPart, CommandPart, Workflow, workflow_id
from ..core.pricing import cost_nanos
from ..core.waits import Waits
from .parse import MAX_DURATION_S, first_line, parse_time, unmatched_parts
from .transcript import MAX_TOKENS, CommandCost, add_unmatched, count

# 2: a shell call's unmatched heads, and their shares (``unmatched``); 3: a Gemini response
# with neither text nor calls does not end its turn (gemini.py)
STATE_VERSION = 3
OPEN_RESPONSES = 16  # responses kept open for later copies of themselves; older ones are in sums
CLOSED_IDS = 64  # ids of the last closed responses: a late copy of one is not counted again
MAX_WAITING = 256  # calls awaiting their result (an aborted turn never answers)
MAX_MODELS = 32  # models kept apart in a session's sums; more go under ""
MAX_WAIT_MS = 86_400_000  # a call waiting longer than a day is a session left open, not a wait
PROMPT_MAX = 500  # characters of the request's first line
HEAD_BYTES = 4096  # bytes of a file's first line checksummed to know it is the same file
CHUNK_BYTES = 8 * 1024 * 1024  # bytes read at once: a long log is never held whole
Usage = tuple[int, int, int, int]  # uncached input, output (reasoning included), cache write, cache read


# ---------------------------------------------------------------------------------------
# what a reader is given and returns

@dataclass(frozen=True)
class SessionRef:
    """Where one session is: its id, its main file (or database), every file it reads, and
    the session it was forked or spawned from, if it says."""

    sid: str
    path: str
    files: tuple[str, ...]
    parent: str | None = None


@dataclass
class ReadContext:
    """What a read needs besides the files: the root's name, the price and command rules, the
    notes list to append to (one line each), and whether the session's files changed within
    stale_after_s (so that a session not ended may still be going)."""

    root_name: str
    prices: tuple
    command_rules: tuple = BUILTIN_COMMAND_RULES
    notes: list[str] = field(default_factory=list)
    fresh: bool = False


class FileStat(NamedTuple):
    path: str
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True)
class SessionRead:
    """A read's result: the whole session's value, the state to give the next read, and what
    the files looked like when read."""

    workflow: Workflow
    state: str
    files: tuple[FileStat, ...]


# ---------------------------------------------------------------------------------------
# the events

class Prompt(NamedTuple):
    text: str
    ts: object = None  # ISO 8601 text or epoch milliseconds; None when unknown


class Response(NamedTuple):
    id: str  # "" when the agent gives none: then never merged with another
    model: str | None
    usage: Usage | None  # None: the earlier copy's (or none)
    ts: object = None
    calls: tuple[tuple[str, str | None], ...] = ()  # (call id, shell command or None), every tool call
    recorded_nanos: int | None = None


class CallStart(NamedTuple):
    call_id: str
    ts: object


class CallEnd(NamedTuple):
    call_id: str
    ts: object = None
    exit_code: int | None = None
    wall_ms: int | None = None


class Ended(NamedTuple):
    ts: object = None


class Reopened(NamedTuple):
    ts: object = None


class Seen(NamedTuple):
    ts: object = None


Event = Union[Prompt, Response, CallStart, CallEnd, Ended, Reopened, Seen]


# ---------------------------------------------------------------------------------------
# the state

@dataclass
class OpenResponse:
    model: str | None
    usage: Usage
    calls: list  # [call id, command or None, signatures, unmatched heads]
    recorded: int | None  # the agent's own cost
    priced: int | None  # our price; None when the model has none

    @property
    def nanos(self) -> int:
        if self.recorded is not None:
            return self.recorded
        return self.priced or 0


@dataclass
class FoldState:
    """A session as folded so far. ``files``: path -> [offset, size, inode, head length, head
    crc] (JsonlReader); ``extra``: small JSON values an agent module keeps between reads."""

    files: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    request: str | None = None
    first_ms: int | None = None
    last_ms: int | None = None
    ended: bool = False
    open: dict = field(default_factory=dict)  # response id -> OpenResponse, oldest first
    recent: list = field(default_factory=list)  # ids of the last CLOSED_IDS closed responses
    responses: int = 0  # closed
    tokens: int = 0  # closed
    estimated: int = 0  # closed, priced by us
    reported: int = 0  # closed, the agent's own cost
    models: dict = field(default_factory=dict)  # model ("" none) -> [tokens, nanos, responses], closed
    commands: dict = field(default_factory=dict)  # signature -> CommandCost, closed
    unmatched: dict = field(default_factory=dict)  # unmatched head -> CommandCost, closed (transcript.MAX_HEADS)
    waiting: dict = field(default_factory=dict)  # call id -> [start ms or None, signatures]
    waits: dict = field(default_factory=dict)  # signature -> Waits
    failed: dict = field(default_factory=dict)  # signature -> calls that exited non-zero
    unpriced: int = 0  # responses whose model has no price (counted as $0, with a note)
    serial: int = 0  # names responses that have no id


def new_state() -> FoldState:
    return FoldState()


# ---------------------------------------------------------------------------------------
# the fold

def epoch_ms(ts) -> int | None:
    """An event's time in epoch milliseconds: ISO 8601 text, or a number (seconds or ms)."""
    if ts is None or ts == "":
        return None
    when = parse_time(ts, [], "")
    return round(when.timestamp() * 1000) if when is not None else None


def cut_request(text) -> str | None:
    line = first_line(text) if isinstance(text, str) else None
    if not line:
        return None
    return line if len(line) <= PROMPT_MAX else line[: PROMPT_MAX - 1] + "…"


def price_note(model: str | None) -> str:
    if not model:
        return "a response names no model: its tokens count, its dollars are 0 (no model to price)"
    return (f"model {model!r} has no price: its tokens count, its dollars are 0 until it is added under "
            f"`prices:` in config.yaml as `{model}: {{input, output, cache_write, cache_read}}` "
            "(USD per million tokens)")


def clean_usage(usage, notes: list[str], where: str) -> Usage:
    """Four token counts from untrusted numbers (a bad one counts 0, with a note)."""
    odd: list[str] = []
    names = ("input", "output", "cache write", "cache read")
    got = tuple(count(v, n, odd, MAX_TOKENS) for v, n in zip(tuple(usage)[:4], names))
    notes.extend(f"{where}: {n}" for n in odd)
    return got + (0,) * (4 - len(got))  # type: ignore[return-value]


def fold(state: FoldState, events, ctx: ReadContext) -> FoldState:
    """Fold ``events`` into ``state`` (changed in place and returned)."""
    f = _Fold(state, ctx)
    for event in events:
        f.event(event)
    return state


class _Fold:
    def __init__(self, s: FoldState, ctx: ReadContext):
        self.s, self.ctx = s, ctx

    def event(self, e) -> None:
        ms = epoch_ms(e.ts)
        s = self.s
        if ms is not None:
            if s.first_ms is None:
                s.first_ms = ms
            s.last_ms = ms if s.last_ms is None else max(s.last_ms, ms)
        kind = type(e)
        if kind is Response:
            s.ended = False
            self.response(e, ms)
        elif kind is CallEnd:
            self.call_end(e, ms)
        elif kind is CallStart:
            got = s.waiting.get(e.call_id)
            if got is not None and ms is not None:
                got[0] = ms
        elif kind is Prompt:
            s.ended = False
            if s.request is None:
                s.request = cut_request(e.text)
        elif kind is Ended:
            s.ended = True
        elif kind is Reopened:
            s.ended = False

    def response(self, e: Response, ms: int | None) -> None:
        s = self.s
        rid = e.id
        if not rid:
            s.serial += 1
            rid = f"@{s.serial}"
        elif rid in s.recent:
            return  # a late copy of a response counted already
        before = s.open.get(rid)
        calls = self.calls(before, e.calls, ms)
        if e.usage is None and before is not None:
            before.calls = calls
            before.model = before.model or e.model
            return
        usage = clean_usage(e.usage or (0, 0, 0, 0), self.ctx.notes, "response " + rid[:80])
        priced = None
        if e.recorded_nanos is None and any(usage):
            priced = cost_nanos(e.model, usage[0], usage[1], usage[2], usage[3], self.ctx.prices)
            if priced is None:
                note = price_note(e.model)
                if note not in self.ctx.notes:
                    self.ctx.notes.append(note)
        s.open.pop(rid, None)
        s.open[rid] = OpenResponse(e.model, usage, calls, e.recorded_nanos, priced)
        while len(s.open) > OPEN_RESPONSES:
            old = next(iter(s.open))
            close(s, old, s.open.pop(old))

    def calls(self, before: OpenResponse | None, calls, ms: int | None) -> list:
        """The response's calls: those of its earlier copy, then the new ones (a copy can add
        calls: Gemini writes a response again with its tool calls). New shell calls wait."""
        got = list(before.calls) if before is not None else []
        known = {c[0] for c in got if c[0]}
        for call_id, command in calls:
            if call_id and call_id in known:
                continue
            sigs, heads = call_commands(command, self.ctx.command_rules) if isinstance(command, str) else ((), ())
            got.append([call_id or "", command if isinstance(command, str) else None, list(sigs), list(heads)])
            if call_id:
                known.add(call_id)
                if sigs:
                    self.s.waiting.pop(call_id, None)
                    self.s.waiting[call_id] = [ms, list(sigs)]
                    while len(self.s.waiting) > MAX_WAITING:
                        del self.s.waiting[next(iter(self.s.waiting))]
        return got

    def call_end(self, e: CallEnd, ms: int | None) -> None:
        s = self.s
        got = s.waiting.pop(e.call_id, None)
        if got is None:
            return
        start, sigs = got
        wait = e.wall_ms
        if wait is None and start is not None and ms is not None:
            wait = ms - start
        failed = isinstance(e.exit_code, int) and not isinstance(e.exit_code, bool) and e.exit_code != 0
        for sig in sigs:
            if isinstance(wait, int) and 0 <= wait <= MAX_WAIT_MS:
                s.waits[sig] = s.waits.get(sig, Waits()).add(wait)
            if failed:
                s.failed[sig] = s.failed.get(sig, 0) + 1


def add_shares(commands: dict, unmatched: dict, r: OpenResponse) -> None:
    """Add a response's shell calls' shares, in place: each call gets 1/k of its response, k
    being all its tool calls (transcript.py's rule), once for each distinct signature
    (``commands``) and once for each distinct unmatched head (``unmatched``)."""
    k = len(r.calls)
    if not k:
        return
    nanos, tokens = r.nanos, sum(r.usage)
    for _cid, command, sigs, heads in r.calls:
        if command is None:
            continue
        line = command_line(command) if sigs else ""
        for sig in sigs:
            commands[sig] = commands.get(sig, CommandCost()).plus(CommandCost(nanos // k, tokens // k, 1, ((line, 1),)))
        for head in heads:
            add_unmatched(unmatched, head, CommandCost(nanos // k, tokens // k, 1))


def close(s: FoldState, rid: str, r: OpenResponse) -> None:
    """A response leaves the open window: its numbers go into the sums."""
    tokens, nanos = sum(r.usage), r.nanos
    s.responses += 1
    s.tokens += tokens
    if r.recorded is not None:
        s.reported += nanos
    else:
        s.estimated += nanos
        s.unpriced += 1 if r.priced is None and any(r.usage) else 0
    model = r.model or ""
    if model not in s.models and len(s.models) >= MAX_MODELS:
        model = ""
    m = s.models.setdefault(model, [0, 0, 0])
    m[0], m[1], m[2] = m[0] + tokens, m[1] + nanos, m[2] + 1
    add_shares(s.commands, s.unmatched, r)
    if not rid.startswith("@"):
        s.recent.append(rid)
        del s.recent[:-CLOSED_IDS]


# ---------------------------------------------------------------------------------------
# the value

class Totals(NamedTuple):
    tokens: int
    estimated: int
    reported: int
    models: dict
    commands: dict
    unmatched: dict


def totals(s: FoldState) -> Totals:
    """The closed sums plus the open responses."""
    tokens, estimated, reported = s.tokens, s.estimated, s.reported
    models = {k: list(v) for k, v in s.models.items()}
    commands, unmatched = dict(s.commands), dict(s.unmatched)
    for r in s.open.values():
        t = sum(r.usage)
        tokens += t
        if r.recorded is not None:
            reported += r.nanos
        else:
            estimated += r.nanos
        m = models.setdefault(r.model or "", [0, 0, 0])
        m[0], m[1], m[2] = m[0] + t, m[1] + r.nanos, m[2] + 1
        add_shares(commands, unmatched, r)
    return Totals(tokens, estimated, reported, models, commands, unmatched)


def status_of(s: FoldState, fresh: bool) -> str:
    """A session's state (the words of the Claude Code and Codex readers): completed when it
    ended, running while its files changed within stale_after_s, else interrupted."""
    if s.ended:
        return "completed"
    return "running" if fresh else "interrupted"


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms is not None else None


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t is not None else None


def to_workflow(root_name: str, sid: str, agent: str, s: FoldState, fresh: bool) -> Workflow:
    """Pure: the same state gives the same Workflow. One AgentPart named by the agent, whose
    spend is estimated from usage (or reported, where the agent's own cost is real)."""
    t = totals(s)
    start, end = _time(s.first_ms), _time(s.last_ms)
    duration = 0
    if start and end and 0 <= (end - start).total_seconds() <= MAX_DURATION_S:
        duration = int((end - start).total_seconds() + 0.5)
    commands = tuple(CommandPart(sig, c.cost_nanos, c.tokens, c.calls, c.lines) for sig, c in sorted(t.commands.items()))
    part = AgentPart(agent, runs=1, tokens=t.tokens, reported_nanos=t.reported, estimated_nanos=t.estimated,
                     duration_ms=duration * 1000, commands=commands, unmatched=unmatched_parts(t.unmatched))
    spent = sorted(((v[0], name) for name, v in t.models.items() if name), reverse=True)
    seen = s.first_ms if s.first_ms is not None else s.last_ms
    return Workflow(
        workflow_id=workflow_id(root_name, sid), root_name=root_name, adw_id=sid, request=s.request,
        model=spent[0][1] if spent else None, status=status_of(s, fresh),
        start_time=_iso(start), end_time=_iso(end),
        seen_us=seen * 1000 if seen is not None else None,
        duration_seconds=duration, total_tokens=t.tokens, cost_nanos=t.reported + t.estimated,
        request_source="session" if s.request else None, time_source="session" if start else None,
        estimated_nanos=t.estimated, agents=(part,),
        waits=tuple((sig, w) for sig, w in sorted(s.waits.items()) if w.calls))


# ---------------------------------------------------------------------------------------
# stored form

def to_json(s: FoldState) -> str:
    return json.dumps({
        "v": STATE_VERSION, "files": s.files, "extra": s.extra, "request": s.request,
        "first": s.first_ms, "last": s.last_ms, "ended": s.ended,
        "open": [[rid, r.model, list(r.usage), r.calls, r.recorded, r.priced] for rid, r in s.open.items()],
        "recent": s.recent,
        "sums": [s.responses, s.tokens, s.estimated, s.reported, s.unpriced, s.serial],
        "models": s.models,
        "commands": {k: [c.cost_nanos, c.tokens, c.calls, [list(x) for x in c.lines]] for k, c in s.commands.items()},
        "unmatched": {k: [c.cost_nanos, c.tokens, c.calls] for k, c in s.unmatched.items()},
        "waiting": s.waiting, "waits": {k: w.to_json() for k, w in s.waits.items()}, "failed": s.failed,
    }, separators=(",", ":"))


def from_json(text: str | None) -> FoldState:
    """The stored state; a fresh one (the files are read whole again) when there is none, or
    it is of another version or not readable."""
    try:
        d = loads(text.encode()) if text else None
    except (ValueError, RecursionError):
        d = None
    if not isinstance(d, dict) or d.get("v") != STATE_VERSION:
        return FoldState()
    responses, tokens, estimated, reported, unpriced, serial = d["sums"]
    return FoldState(
        files=d["files"], extra=d["extra"], request=d["request"], first_ms=d["first"], last_ms=d["last"],
        ended=d["ended"],
        open={rid: OpenResponse(m, tuple(u), calls, rec, pr) for rid, m, u, calls, rec, pr in d["open"]},
        recent=d["recent"], responses=responses, tokens=tokens, estimated=estimated, reported=reported,
        models=d["models"],
        commands={k: CommandCost(c[0], c[1], c[2], tuple((line, n) for line, n in c[3]))
                  for k, c in d["commands"].items()},
        unmatched={k: CommandCost(*c) for k, c in d["unmatched"].items()},
        waiting=d["waiting"], waits={k: Waits.from_json(v) for k, v in d["waits"].items()}, failed=d["failed"],
        unpriced=unpriced, serial=serial)


# ---------------------------------------------------------------------------------------
# reading a JSON-lines log in appends

def open_regular(path: str) -> int:
    """A read-only descriptor of a regular file. Never blocks: a FIFO or device planted where a
    session file should be is refused, not opened for reading."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise InputRejected(path, f"cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputRejected(path, "is not a regular file (skipped)")
    return fd


class JsonlReader:
    """The complete lines a log gained since ``cursor`` (FoldState.files[path]), decoded.

    ``with JsonlReader(path, cursor, notes) as r:``; ``r.whole`` says the file is read from its
    start though it had a cursor (its head changed: a new file in the old one's place; the
    caller starts a fresh fold); iterate ``r`` for the objects (a line that is not JSON is a
    note, skipped); ``r.cursor`` then is the new cursor and ``r.stat`` the file's FileStat.
    A last line without its newline is left for the next read, whole."""

    def __init__(self, path: str, cursor, notes: list[str]):
        self.path, self.notes = path, notes
        self.fd = open_regular(path)
        st = os.fstat(self.fd)
        self.stat = FileStat(path, st.st_size, st.st_mtime_ns, st.st_ino)
        self.whole = False
        head_len, head_crc = (cursor[3], cursor[4]) if cursor else (0, 0)
        self.offset = cursor[0] if cursor else 0
        if cursor and self.offset and self._head_crc(head_len) != head_crc:
            self.whole, self.offset, head_len = True, 0, 0
        elif self.offset > st.st_size:
            notes.append(f"{path}: shorter than at the last read (rewound): what was read stays counted")
            self.offset = self._last_line_end(st.st_size)
        self.head = (head_len, head_crc) if head_len else (0, 0)

    def __enter__(self) -> "JsonlReader":
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def _head_crc(self, length: int) -> int:
        return zlib.crc32(os.pread(self.fd, length, 0)) if length else 0

    def _last_line_end(self, size: int) -> int:
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            block = os.pread(self.fd, pos - start, start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            pos = start
        return 0

    @property
    def cursor(self) -> list:
        return [self.offset, self.stat.size, self.stat.inode, self.head[0], self.head[1]]

    def __iter__(self) -> Iterator[dict]:
        while self.offset < self.stat.size:
            chunk = os.pread(self.fd, min(CHUNK_BYTES, self.stat.size - self.offset), self.offset)
            end = chunk.rfind(b"\n")
            if end < 0:
                if len(chunk) >= CHUNK_BYTES:  # one line longer than a chunk: read it whole
                    chunk = os.pread(self.fd, self.stat.size - self.offset, self.offset)
                    end = chunk.rfind(b"\n")
                if end < 0:
                    return
            base, pos = self.offset, 0
            while pos <= end:
                nl = chunk.index(b"\n", pos)
                raw = chunk[pos:nl]
                if base + pos == 0 and not self.head[0]:
                    first = raw[:HEAD_BYTES]
                    self.head = (len(first), zlib.crc32(first)) if first else (0, 0)
                obj = self._decode(raw, base + pos)
                pos = nl + 1
                self.offset = base + pos
                if obj is not None:
                    yield obj

    def _decode(self, raw: bytes, at: int):
        if not raw.strip():
            return None
        try:
            obj = loads(raw)
        except (ValueError, RecursionError):
            self.notes.append(f"{self.path}: line at byte {at} is not valid JSON (skipped)")
            return None
        if not isinstance(obj, dict):
            self.notes.append(f"{self.path}: line at byte {at} is not a JSON object (skipped)")
            return None
        return obj


def read_jsonl_session(ref: SessionRef, stored: str | None, ctx: ReadContext, agent: str,
                       events_of: Callable[[JsonlReader, FoldState], Iterable]) -> SessionRead:
    """A session kept in one JSONL file, read on from the stored cursor; a file rewritten
    under it is read again from the start with a fresh state. ``events_of(records, state)``:
    the agent's events of the records (``state.extra`` carries what its later records need)."""
    state = from_json(stored)
    with JsonlReader(ref.path, state.files.get(ref.path), ctx.notes) as reader:
        if reader.whole:
            state = new_state()
        fold(state, events_of(reader, state), ctx)
        state.files = {ref.path: reader.cursor}
        file_stat = reader.stat
    return SessionRead(to_workflow(ctx.root_name, ref.sid, agent, state, ctx.fresh), to_json(state), (file_stat,))
