"""Codex CLI rollouts (../shared/docs/codex-sessions.md, section 9): one session file folded
into a value, and where a Codex home keeps its session files.

The fold is pure: bytes in, a CodexState out, the same whether a file is read whole or in
any split into appended chunks (only complete lines are folded). What it carries is only
what a later line can still change: the previous cumulative total, the current model and
cwd, the tool calls written since the last token_count event, the shell calls still waiting
for their output, the first and last timestamps, the request and whether a fork's copied
prefix is still open. Everything closed is already in the sums: per model (tokens and
nano-dollars), per signature (a CommandCost: attributed nano-dollars, tokens, calls, command
lines), per unmatched head (a shell command that matches no row: its share, no pattern)
and per signature's waits (core/waits.py: exact up to 64 calls, then in buckets; the
calls and the total always exact).

Facts that span files come in as arguments and go out as results: the totals a fork's
parent counted (to know the copies) and the (timestamp, model, input, cached, output,
reasoning, total) keys counted anywhere so far; the fold returns the keys it counted, with
their cumulative totals, for the caller's append-only table.

`list_home` lists only `sessions/` (recursively) and `archived_sessions/` of a home: the
home also holds the user's credentials (auth.json), which nothing here opens or stats.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from dataclasses import dataclass, field, replace
from typing import Container, NamedTuple

import zstandard

from ..core.commands import BUILTIN_COMMAND_RULES, CommandRule, call_commands, command_line
from ..core.errors import InputRejected
from ..core.jsonline import loads
from ..core.pricing import PriceRule, cost_nanos
from ..core.waits import Waits
from .parse import first_line
from .transcript import CommandCost, add_unmatched, count

PROMPT_MAX = 500  # characters of the request's first line
MAX_WAIT_MS = 86_400_000  # a call waiting longer than a day is a session left open, not a wait
MAX_WAITING = 256  # shell calls remembered while their output is awaited (an aborted turn never answers)
MAX_PENDING_SHELL = 1024  # shell calls kept for one response; more still count in its k
HEAD_MAX = 4 * 1024 * 1024  # bytes read looking for a rollout's first line (session_meta)

SHELL_TOOLS = frozenset(("shell", "container.exec", "shell_command", "exec_command"))
CALL_ITEMS = frozenset(("function_call", "custom_tool_call", "local_shell_call"))
_WRAPPERS = frozenset(("bash", "sh", "zsh"))
_WRAPPER_FLAGS = frozenset(("-c", "-lc"))
INJECTED = ("<environment_context>", "<user_instructions>", "# AGENTS.md instructions for ", "<INSTRUCTIONS>",
            "<skill>", "<user_shell_command>", "<turn_aborted>")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_WALL = re.compile(r"Wall time:\s*([0-9]+(?:\.[0-9]+)?)\s*seconds")
_SID_IN_NAME = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.jsonl(?:\.zst)?$")

USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")
Usage = tuple[int, int, int, int, int]  # input (cached included), cached, output (reasoning included), reasoning, total

NO_WAITS = Waits()
# The event_msg types that say where a turn stands (newer builds; older ones write none)
TURN_EVENTS = {"task_started": "started", "turn_started": "started", "task_complete": "complete",
               "turn_complete": "complete", "turn_aborted": "aborted"}
ROLLOUT = "rollout.jsonl"  # a session's one agent_outputs row, wherever its file is now


class NotARollout(InputRejected):
    """The file's first line is not a rollout line (a JSON object with a "type")."""


class Counted(NamedTuple):
    """One usage event the fold counted: its cross-file key, and the cumulative total it
    brought the session to (None when the event had only last_token_usage)."""

    key: tuple
    total: Usage | None


@dataclass(frozen=True)
class ModelSpend:
    """What one model's counted responses add up to in a session."""

    input: int = 0  # cached included
    cached: int = 0
    output: int = 0  # reasoning included
    reasoning: int = 0
    nanos: int = 0
    responses: int = 0

    @property
    def tokens(self) -> int:
        return self.input + self.output

    def plus(self, u: Usage, nanos: int) -> "ModelSpend":
        return ModelSpend(self.input + u[0], self.cached + u[1], self.output + u[2], self.reasoning + u[3],
                          self.nanos + nanos, self.responses + 1)


@dataclass(frozen=True)
class ShellCall:
    call_id: str
    signatures: tuple[str, ...]
    line: str  # the command line, as evidence
    heads: tuple[str, ...] = ()  # of its simple commands that match no row


@dataclass(frozen=True)
class CodexState:
    """A rollout as read up to ``offset`` (just after its last complete line)."""

    offset: int = 0
    meta: bool = False  # a session_meta line was read (the first one is the session's)
    session_id: str | None = None
    parent_id: str | None = None  # forked_from_id, or a sub-agent's parent_thread_id
    cwd: str = ""
    model: str | None = None  # of the last turn_context
    prev_total: Usage | None = None  # the last cumulative total seen
    copying: bool = False  # a fork's or sub-agent's leading copies may still follow
    first_second: str = ""  # the first 19 characters of the first line's timestamp
    calls: int = 0  # tool calls of any kind since the last token_count event
    shell: tuple[ShellCall, ...] = ()  # ... of which these are shell calls with signatures
    waiting: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (call id, signatures) of shell calls awaiting output
    held: tuple[tuple[str, int], ...] = ()  # (signature, ms) seen while the copied prefix is open
    first_ts: str = ""
    last_ts: str = ""
    # The request: (user_message, user message part) from the copied lines, and since them
    request_parts: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None)
    models: dict = field(default_factory=dict)  # model ("" for none) -> ModelSpend
    commands: dict = field(default_factory=dict)  # signature -> CommandCost
    waits: dict = field(default_factory=dict)  # signature -> Waits
    copied: int = 0  # token_count events taken as copies of the parent's
    repeated: int = 0  # events skipped: a total equal to the previous one, or a key counted already
    # Where the last turn stands, from its last turn event: "started", "complete" (task_complete),
    # "aborted" (turn_aborted); "" where the rollout has none (builds before they were written).
    turn: str = ""
    # A token_usage_record (Codex 0.16x) was the last usage event: the token_count after it
    # repeats that response (see usage_record).
    recorded: bool = False
    # Tool calls written whose output was not, yet: with no turn events (0.77), what tells a
    # run stopped while a command ran from a finished one (codex_workflow.codex_status).
    calls_open: int = 0
    unmatched: dict = field(default_factory=dict)  # unmatched head -> CommandCost (transcript.MAX_HEADS)

    @property
    def request(self) -> str | None:
        copied_um, copied_msg, since_um, since_msg = self.request_parts
        return since_um or since_msg or copied_um or copied_msg

    @property
    def tokens(self) -> int:
        return sum(m.tokens for m in self.models.values())

    @property
    def nanos(self) -> int:
        return sum(m.nanos for m in self.models.values())



# ---------------------------------------------------------------------------------------
# pieces of lines

def _usage(value, notes: list[str], where: str) -> Usage | None:
    if not isinstance(value, dict):
        return None
    odd: list[str] = []
    got = [count(value.get(k), k, odd) for k in USAGE_KEYS]
    notes.extend(f"{where}: token_count {n}" for n in odd)
    got[1] = min(got[1], got[0])
    return tuple(got)  # type: ignore[return-value]


def _minus(total: Usage, prev: Usage | None) -> Usage:
    if prev is None:
        return total
    d = [max(0, a - b) for a, b in zip(total, prev)]
    d[1] = min(d[1], d[0])
    return tuple(d)  # type: ignore[return-value]


def cut_request(text) -> str | None:
    line = first_line(text) if isinstance(text, str) else None
    if not line:
        return None
    return line if len(line) <= PROMPT_MAX else line[: PROMPT_MAX - 1] + "…"


def message_request(payload: dict) -> str | None:
    """The first part of a user message that is not injected context (section 5)."""
    if payload.get("role") != "user":
        return None
    content = payload.get("content")
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "text"):
            continue
        text = part.get("text")
        if not isinstance(text, str) or text.lstrip().startswith(INJECTED):
            continue
        got = cut_request(text)
        if got:
            return got
    return None


def argv_script(argv) -> str | None:
    """A command given as argv, as a shell line: the script of a bash -lc / sh -c / zsh -lc
    wrapper, else the words joined as a shell would quote them."""
    if not isinstance(argv, list) or not argv or not all(isinstance(w, str) for w in argv):
        return None
    if (len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] in _WRAPPERS and argv[1] in _WRAPPER_FLAGS):
        return argv[-1]
    return shlex.join(argv)


def shell_command(payload: dict, notes: list[str], where: str) -> tuple[str, str | None] | None:
    """(command line, workdir) of a shell tool call; None for any other call."""
    kind = payload.get("type")
    if kind == "local_shell_call":
        action = payload.get("action")
        if not isinstance(action, dict):
            return None
        script = argv_script(action.get("command"))
        workdir = action.get("working_directory")
    elif kind == "function_call" and payload.get("name") in SHELL_TOOLS:
        args = payload.get("arguments")
        if isinstance(args, str):
            try:
                args = loads(args.encode("utf-8", "surrogatepass"))
            except (ValueError, RecursionError):
                notes.append(f"{where}: {payload.get('name')} call {payload.get('call_id')!r} has arguments "
                             "that are not JSON (ignored)")
                return None
        if not isinstance(args, dict):
            return None
        name = payload["name"]
        if name in ("shell", "container.exec"):
            script = argv_script(args.get("command"))
        elif name == "shell_command":
            script = args.get("command") if isinstance(args.get("command"), str) else None
        else:
            script = args.get("cmd") if isinstance(args.get("cmd"), str) else None
        workdir = args.get("workdir")
    else:
        return None
    if not script:
        notes.append(f"{where}: shell call {payload.get('call_id')!r} has no command (ignored)")
        return None
    return script, workdir if isinstance(workdir, str) and workdir else None


def call_signatures_in(script: str, workdir: str | None, rules: tuple[CommandRule, ...]) -> tuple[str, ...]:
    """Layer 4 of detection-rules.md, with the call's workdir as a `cd` into it."""
    return call_commands_in(script, workdir, rules)[0]


def call_commands_in(script: str, workdir: str | None,
                     rules: tuple[CommandRule, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(signatures, unmatched heads) of a shell call, its workdir a `cd` into it."""
    if workdir:
        return call_commands(f"cd {shlex.quote(workdir)}\n{script}", rules)
    return call_commands(script, rules)


def wall_ms(output) -> int | None:
    """The wait a function_call_output records: JSON metadata.duration_seconds, or a
    `Wall time: F seconds` line."""
    seconds = None
    if isinstance(output, str):
        if output.startswith("{"):
            try:
                output = loads(output.encode("utf-8", "surrogatepass"))
            except (ValueError, RecursionError):
                pass
        if isinstance(output, str):
            m = _WALL.search(output[:4096])
            seconds = float(m.group(1)) if m else None
    if isinstance(output, dict):
        meta = output.get("metadata")
        v = meta.get("duration_seconds") if isinstance(meta, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            seconds = float(v)
    if seconds is None or not (0 <= seconds * 1000 <= MAX_WAIT_MS):
        return None
    return round(seconds * 1000)


def price_note(model: str | None) -> str:
    if not model:
        return ("token_count with no turn_context model before it: its tokens count, its dollars are 0 "
                "(no model to price)")
    return (f"model {model!r} has no price: its tokens count, its dollars are 0 until it is added under "
            f"`prices:` in config.yaml as `{model}: {{input, output, cache_write, cache_read}}` "
            "(USD per million tokens; for OpenAI models cache_read is the cached-input price)")


def response_nanos(model: str | None, u: Usage, prices: tuple[PriceRule, ...]) -> int | None:
    """(input − cached) × input + cached × cached-input + output × output; reasoning is
    inside output and never added. None when the model has no price."""
    if not model:
        return None
    return cost_nanos(model, u[0] - u[1], u[2], 0, u[1], prices)


# ---------------------------------------------------------------------------------------
# the fold

class _Fold:
    """Mutable working copy of a CodexState while one chunk is folded."""

    def __init__(self, s: CodexState, prices, rules, notes: list[str], where: str, parent_totals, seen):
        self.s, self.prices, self.rules, self.notes, self.where = s, prices, rules, notes, where
        self.parent_totals, self.seen = parent_totals, seen
        self.meta, self.sid, self.parent, self.cwd, self.model = s.meta, s.session_id, s.parent_id, s.cwd, s.model
        self.prev, self.copying, self.first_second = s.prev_total, s.copying, s.first_second
        self.calls, self.shell = s.calls, list(s.shell)
        self.waiting = dict(s.waiting)
        self.held = list(s.held)
        self.first_ts, self.last_ts = s.first_ts, s.last_ts
        self.req = list(s.request_parts)
        self.models, self.commands, self.waits = dict(s.models), dict(s.commands), dict(s.waits)
        self.unmatched = dict(s.unmatched)
        self.copied, self.repeated = s.copied, s.repeated
        self.turn, self.recorded, self.calls_open = s.turn, s.recorded, s.calls_open
        self.counted: list[Counted] = []
        self.new_keys: set = set()
        self.priced_notes: set = set()
        self.backwards_noted = False

    def line(self, obj: dict, pos: int) -> None:
        ts = obj.get("timestamp")
        if isinstance(ts, str) and _TIMESTAMP.match(ts):
            if not self.first_ts:
                self.first_ts = ts
                self.first_second = ts[:19]
            self.last_ts = ts
        else:
            ts = ""
        kind, payload = obj.get("type"), obj.get("payload")
        if not isinstance(payload, dict):
            return
        if kind == "event_msg":
            ptype = payload.get("type")
            if ptype == "token_count":
                self.token_count(payload, ts, pos)
            elif ptype == "user_message":
                if payload.get("kind") in (None, "plain"):
                    self.request(2, cut_request(payload.get("message")))
            elif ptype in TURN_EVENTS:
                self.turn = TURN_EVENTS[ptype]
        elif kind == "response_item":
            ptype = payload.get("type")
            if ptype in CALL_ITEMS:
                self.tool_call(payload)
            elif ptype == "message":
                if self.req[3] is None or self.copying:
                    self.request(3, message_request(payload))
            elif isinstance(ptype, str) and ptype.endswith("_output"):
                self.output(payload)
        elif kind == "token_usage_record":
            self.usage_record(payload, ts, pos)
        elif kind == "turn_context":
            if isinstance(payload.get("model"), str) and payload["model"]:
                self.model = payload["model"]
            if isinstance(payload.get("cwd"), str):
                self.cwd = payload["cwd"]
        elif kind == "session_meta" and not self.meta:
            self.session_meta(payload)

    def request(self, slot: int, text: str | None) -> None:
        """The first request of a session; in a fork or sub-agent, while its copied prefix
        may still go on, the latest one: the copy can end with a parent's message after its
        last usage event, and the child's own prompt is the one just before its first
        response."""
        if text and (self.req[slot] is None or self.copying):
            self.req[slot] = text

    def session_meta(self, payload: dict) -> None:
        self.meta = True
        sid = payload.get("id") or payload.get("session_id")
        self.sid = sid if isinstance(sid, str) and sid else None
        self.parent = parent_of(payload)
        self.copying = self.parent is not None
        if isinstance(payload.get("cwd"), str):
            self.cwd = payload["cwd"]

    def tool_call(self, payload: dict) -> None:
        self.calls += 1
        self.calls_open += 1
        got = shell_command(payload, self.notes, self.where)
        if got is None:
            return
        script, workdir = got
        sigs, heads = call_commands_in(script, workdir, self.rules)
        if not sigs and not heads:
            return
        call_id = payload.get("call_id")
        call_id = call_id if isinstance(call_id, str) else ""
        if len(self.shell) < MAX_PENDING_SHELL:
            self.shell.append(ShellCall(call_id, sigs, command_line(script) if sigs else "", heads))
        if call_id and sigs:
            self.waiting.pop(call_id, None)
            self.waiting[call_id] = sigs
            while len(self.waiting) > MAX_WAITING:
                del self.waiting[next(iter(self.waiting))]

    def output(self, payload: dict) -> None:
        self.calls_open = max(0, self.calls_open - 1)
        call_id = payload.get("call_id")
        if not isinstance(call_id, str) or call_id not in self.waiting:
            return
        sigs = self.waiting.pop(call_id)
        ms = wall_ms(payload.get("output"))
        if ms is None:
            return
        for sig in sigs:
            if self.copying:
                self.held.append((sig, ms))
            else:
                self.waits[sig] = self.waits.get(sig, NO_WAITS).add(ms)

    def token_count(self, payload: dict, ts: str, pos: int) -> None:
        info = payload.get("info")
        if not isinstance(info, dict):
            self.calls, self.shell = 0, []
            return  # info null: rate limits only
        if self.recorded:
            self.recorded = False
            return  # the token_usage_record before it counted this response (usage_record)
        total = _usage(info.get("total_token_usage"), self.notes, self.where)
        last = _usage(info.get("last_token_usage"), self.notes, self.where)
        self.usage_event(total, last, ts, pos)

    def usage_record(self, payload: dict, ts: str, pos: int) -> None:
        """Codex 0.16x's ``token_usage_record``: one per response, written as the response
        ends, before its calls run; the ``token_count`` with the same totals comes after
        their outputs, or never when the run is killed meanwhile. That token_count repeats the
        record and is skipped whatever its totals say: they are the writing process's own, and
        a process resumed after a kill starts them from the last token_count, without the
        responses only a record holds, so they run below the records' totals and would look
        like new usage (measured on the real CLI killed and resumed, issue 31). Its
        ``thread_token_usage`` is the session's total; without one, the total is the
        previous one plus this response."""
        last = _usage(payload.get("usage"), self.notes, self.where)
        if last is None:
            return
        self.recorded = True
        total = _usage(payload.get("thread_token_usage"), self.notes, self.where)
        if total is None:
            total = tuple(a + b for a, b in zip(self.prev or (0,) * len(last), last))  # type: ignore[assignment]
        self.usage_event(total, last, ts, pos)

    def usage_event(self, total: Usage | None, last: Usage | None, ts: str, pos: int) -> None:
        """One usage event (a token_count or a token_usage_record) closes the calls written
        since the previous one."""
        calls, shell = self.calls, self.shell
        self.calls, self.shell = 0, []
        if self.copying and self.copy_event(total, ts):
            return
        delta = self.delta(total, last, pos)
        if delta is not None:
            self.count(delta, ts, total, calls, shell)

    def copy_event(self, total: Usage | None, ts: str) -> bool:
        """Whether a token_count event of a fork's or sub-agent's opening is a copy of its
        parent's; the first one that is not ends the copied prefix."""
        if self.parent_totals is not None:
            copy = total is not None and total in self.parent_totals
        else:
            copy = bool(ts) and ts[:19] == self.first_second
        if copy:
            self.copied += 1
            if total is not None:
                self.prev = total
            # Everything written before a copied event is a copy: its calls, its waits
            # and its request belong to the parent.
            self.waiting.clear()
            self.held.clear()
            self.req = [self.req[0] or self.req[2], self.req[1] or self.req[3], None, None]
            return True
        self.copying = False
        for sig, ms in self.held:
            self.waits[sig] = self.waits.get(sig, NO_WAITS).add(ms)
        self.held = []
        return False

    def delta(self, total: Usage | None, last: Usage | None, pos: int) -> Usage | None:
        """What one event adds: its last_token_usage, else the growth of its total; None
        for a repeat of the previous total or an event that adds nothing."""
        if total is not None and total == self.prev:
            self.repeated += 1
            return None
        if total is not None and self.prev is not None and any(a < b for a, b in zip(total[:4], self.prev[:4])):
            reset = not any(total[:4])  # a context-window fill: totals restart from 0
            if not reset and not self.backwards_noted:
                self.backwards_noted = True
                self.notes.append(f"{self.where}: token_count at byte {pos} has totals below the previous "
                                  "ones (counted from its last_token_usage, or the growth of each field)")
        delta = last if last is not None else (_minus(total, self.prev) if total is not None else None)
        if total is not None:
            self.prev = total
        if delta is None or not any(delta[:4]):
            return None
        return delta

    def count(self, delta: Usage, ts: str, total: Usage | None, calls: int, shell: list[ShellCall]) -> None:
        """One response counted once across files: priced by the current model, its share
        given to each signature of the calls it closes."""
        key = (ts, self.model or "", *delta)
        if key in self.new_keys or key in self.seen:
            self.repeated += 1
            return
        self.new_keys.add(key)
        self.counted.append(Counted(key, total))
        nanos = response_nanos(self.model, delta, self.prices)
        if nanos is None:
            if self.model not in self.priced_notes:
                self.priced_notes.add(self.model)
                self.notes.append(f"{self.where}: {price_note(self.model)}")
            nanos = 0
        m = self.model or ""
        self.models[m] = self.models.get(m, ModelSpend()).plus(delta, nanos)
        if shell:
            tokens = delta[0] + delta[2]
            for call in shell:
                for sig in call.signatures:
                    cost = CommandCost(nanos // calls, tokens // calls, 1, ((call.line, 1),))
                    self.commands[sig] = self.commands.get(sig, CommandCost()).plus(cost)
                for head in call.heads:
                    add_unmatched(self.unmatched, head, CommandCost(nanos // calls, tokens // calls, 1))

    def result(self, offset: int) -> CodexState:
        return CodexState(offset, self.meta, self.sid, self.parent, self.cwd, self.model, self.prev, self.copying,
                          self.first_second, self.calls, tuple(self.shell), tuple(self.waiting.items()),
                          tuple(self.held), self.first_ts, self.last_ts, tuple(self.req),  # type: ignore[arg-type]
                          self.models, self.commands, self.waits, self.copied, self.repeated, self.turn,
                          self.recorded, self.calls_open, self.unmatched)


def parent_of(meta: dict) -> str | None:
    """The session a fork or a spawned sub-agent copied its history from."""
    forked = meta.get("forked_from_id")
    if isinstance(forked, str) and forked:
        return forked
    source = meta.get("source")
    sub = source.get("subagent") if isinstance(source, dict) else None
    spawn = sub.get("thread_spawn") if isinstance(sub, dict) else None
    parent = spawn.get("parent_thread_id") if isinstance(spawn, dict) else None
    return parent if isinstance(parent, str) and parent else None


def fold(state: CodexState, chunk: bytes, prices: tuple[PriceRule, ...], notes: list[str], where: str,
         rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES, *, parent_totals: Container | None = None,
         seen: Container = frozenset()) -> tuple[CodexState, tuple[Counted, ...]]:
    """Fold the complete lines of ``chunk`` (the file's bytes from ``state.offset``) into
    ``state``. Returns the new state (its offset just after the chunk's last newline, so a
    line still being written is read whole next time) and the events it counted.

    ``parent_totals``: for a fork or sub-agent whose parent is in a configured home, the
    cumulative totals the parent (and the sessions it copied from) counted; None when the
    parent is nowhere to be found (then the opening same-second burst is the copy).
    ``seen``: the keys counted in any file so far (this one's earlier reads included).
    A file whose first line is not a rollout line raises NotARollout; any other bad line is
    a note, and the rest is read."""
    end = chunk.rfind(b"\n")
    if end < 0:
        return state, ()
    f = _Fold(state, prices, rules, notes, where, parent_totals, seen)
    pos = 0
    base = state.offset
    while pos <= end:
        nl = chunk.find(b"\n", pos)
        raw = chunk[pos:nl]
        if raw.strip():
            try:
                obj = loads(raw)
            except (ValueError, RecursionError):
                obj = None
            if base + pos == 0 and not (isinstance(obj, dict) and isinstance(obj.get("type"), str)):
                raise NotARollout(where, "not a Codex rollout: its first line is not a JSON object with a \"type\"")
            if not isinstance(obj, dict):
                notes.append(f"{where}: line at byte {base + pos} is not valid JSON (skipped)")
            else:
                if not f.meta and obj.get("type") != "session_meta" and base + pos == 0:
                    notes.append(f"{where}: no session_meta first line (session id taken from the file name)")
                    f.meta = True
                f.line(obj, base + pos)
        pos = nl + 1
    return f.result(base + end + 1), tuple(f.counted)


# ---------------------------------------------------------------------------------------
# stored form

# 2: waits as core/waits.py's bounded sums (1 kept only the first 200). 3: where the last turn
# stands (a version 2 state is read again from the start: migration m013). 4: the shares of
# shell commands that match no row, by head (a version 3 state is read again: migration m016).
STATE_VERSION = 4


def to_json(s: CodexState) -> str:
    return json.dumps({
        "v": STATE_VERSION, "offset": s.offset, "meta": s.meta, "sid": s.session_id, "parent": s.parent_id,
        "cwd": s.cwd, "model": s.model, "prev": list(s.prev_total) if s.prev_total else None,
        "copying": s.copying, "second": s.first_second, "calls": s.calls,
        "shell": [[c.call_id, list(c.signatures), c.line, list(c.heads)] for c in s.shell],
        "waiting": [[cid, list(sigs)] for cid, sigs in s.waiting], "held": [list(h) for h in s.held],
        "ts": [s.first_ts, s.last_ts], "request": list(s.request_parts),
        "models": {k: [m.input, m.cached, m.output, m.reasoning, m.nanos, m.responses] for k, m in s.models.items()},
        "commands": {k: [c.cost_nanos, c.tokens, c.calls, [list(x) for x in c.lines]] for k, c in s.commands.items()},
        "unmatched": {k: [c.cost_nanos, c.tokens, c.calls] for k, c in s.unmatched.items()},
        "waits": {k: w.to_json() for k, w in s.waits.items()},
        "copied": s.copied, "repeated": s.repeated, "turn": s.turn,
        "recorded": s.recorded, "calls_open": s.calls_open,
    }, separators=(",", ":"), sort_keys=True)


def from_json(text: str) -> CodexState:
    """The state stored by to_json; an empty state (read the file again) for another version."""
    d = loads(text.encode()) if text else {}
    if not isinstance(d, dict) or d.get("v") != STATE_VERSION:
        return CodexState()
    return CodexState(
        d["offset"], d["meta"], d["sid"], d["parent"], d["cwd"], d["model"],
        tuple(d["prev"]) if d["prev"] else None, d["copying"], d["second"], d["calls"],
        tuple(ShellCall(c[0], tuple(c[1]), c[2], tuple(c[3])) for c in d["shell"]),
        tuple((cid, tuple(sigs)) for cid, sigs in d["waiting"]), tuple((h[0], h[1]) for h in d["held"]),
        d["ts"][0], d["ts"][1], tuple(d["request"]),
        {k: ModelSpend(*m) for k, m in d["models"].items()},
        {k: CommandCost(c[0], c[1], c[2], tuple((line, n) for line, n in c[3])) for k, c in d["commands"].items()},
        {k: Waits.from_json(w) for k, w in d["waits"].items()},
        d["copied"], d["repeated"], d["turn"], d["recorded"],
        d["calls_open"], {k: CommandCost(*c) for k, c in d["unmatched"].items()})


# ---------------------------------------------------------------------------------------
# a Codex home: where the rollouts are

@dataclass(frozen=True)
class RolloutFile:
    path: str
    session_id: str
    parent_id: str | None
    compressed: bool
    archived: bool

    @property
    def rank(self) -> tuple[bool, bool, str]:
        """Which file of a session held twice is read: plain before compressed, sessions/
        before archived_sessions/."""
        return (self.compressed, self.archived, self.path)


def read_rollout(path: str) -> bytes:
    """A rollout's bytes, decompressed for a .jsonl.zst. OSError for a file that cannot be
    read; InputRejected for a .zst that does not decompress."""
    with open(path, "rb") as f:
        if not path.endswith(".zst"):
            return f.read()
        try:
            return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
        except zstandard.ZstdError as e:
            raise InputRejected(path, f"a .zst that does not decompress ({e}) (skipped)") from None


def _head_line(path: str) -> bytes:
    with open(path, "rb") as f:
        reader = f
        if path.endswith(".zst"):
            reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        head = b""
        try:
            while b"\n" not in head and len(head) < HEAD_MAX:
                got = reader.read(65536)
                if not got:
                    break
                head += got
        except zstandard.ZstdError as e:
            raise InputRejected(path, f"a .zst that does not decompress ({e}) (skipped)") from None
        return head.split(b"\n", 1)[0]


def rollout_head(path: str, notes: list[str]) -> tuple[str, str | None] | None:
    """(session id, parent id) of a rollout, from its first line's session_meta, else the
    id in its file name (with a note); None when it cannot be read (with a note)."""
    try:
        line = _head_line(path)
    except InputRejected as e:
        notes.append(str(e))
        return None
    except OSError as e:
        notes.append(f"{path}: cannot read ({e.strerror}) (skipped)")
        return None
    try:
        obj = loads(line) if line.strip() else None
    except (ValueError, RecursionError):
        obj = None
    payload = obj.get("payload") if isinstance(obj, dict) else None
    if isinstance(obj, dict) and obj.get("type") == "session_meta" and isinstance(payload, dict):
        sid = payload.get("id") or payload.get("session_id")
        if isinstance(sid, str) and sid:
            return sid, parent_of(payload)
    m = _SID_IN_NAME.search(path)
    if m:
        # A first line that is no session_meta is said by the read of the file (one warning
        # a file); a session_meta without an id only here
        if isinstance(obj, dict) and obj.get("type") == "session_meta":
            notes.append(f"{path}: a session_meta without an id on its first line (session id taken from the file name)")
        return m.group(1).lower(), None
    notes.append(f"{path}: no session_meta with an id on its first line, and no id in its name (skipped)")
    return None


def _rollout_names(folder: str, recursive: bool, notes: list[str]):
    """Paths of rollout-*.jsonl and rollout-*.jsonl.zst regular files under ``folder``;
    folders only descended, never through a symlink."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return
    except OSError as e:
        notes.append(f"{folder}: cannot list ({e.strerror}): give the daemon's user read access to it")
        return
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                if recursive:
                    yield from _rollout_names(e.path, True, notes)
                continue
        except OSError:
            continue
        if e.name.startswith("rollout-") and e.name.endswith((".jsonl", ".jsonl.zst")):
            try:
                if not stat.S_ISREG(e.stat(follow_symlinks=False).st_mode):
                    notes.append(f"{e.path}: not a regular file (ignored)")
                    continue
            except OSError:
                continue
            yield e.path


def list_home(home: str, notes: list[str]) -> dict[str, RolloutFile]:
    """Each session of a Codex home once, by session id: `sessions/` (recursively) and
    `archived_sessions/`, plain and compressed. Nothing else in the home is opened or
    stat'ed. A session held twice is read from its plain file under sessions/ first (see
    RolloutFile.rank)."""
    found: dict[str, RolloutFile] = {}
    home = home.rstrip("/") or "/"
    if not any(os.path.isdir(f"{home}/{sub}") for sub in ("sessions", "archived_sessions")):
        notes.append(f"{home}: neither sessions/ nor archived_sessions/ is there to read (is it a Codex home, and "
                     "can the daemon's user reach it?)")
    for sub, archived in (("sessions", False), ("archived_sessions", True)):
        for path in _rollout_names(f"{home}/{sub}", recursive=True, notes=notes):
            head = rollout_head(path, notes)
            if head is None:
                continue
            sid, parent = head
            f = RolloutFile(path, sid, parent, path.endswith(".zst"), archived)
            held = found.get(sid)
            if held is None:
                found[sid] = f
                continue
            # Codex keeps a session in two files as a matter of course (resuming a compressed
            # one writes it out again; archiving moves it): not a problem, nothing to say.
            found[sid] = f if f.rank < held.rank else held
    return found


# ---------------------------------------------------------------------------------------
# a whole home at once (tests, examples; the daemon keeps these facts in its store)

@dataclass
class HomeRead:
    files: dict[str, RolloutFile]
    states: dict[str, CodexState]
    counted: dict[str, tuple[Counted, ...]]  # session id -> the events it counted


def read_home(home: str, prices: tuple[PriceRule, ...], notes: list[str],
              rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES) -> HomeRead:
    """Fold every session of a home, parents before their forks and sub-agents, others in
    the order of their file names (which start with the session's start time)."""
    files = list_home(home, notes)
    states: dict[str, CodexState] = {}
    counted: dict[str, tuple[Counted, ...]] = {}
    seen: set = set()
    lineage_totals: dict[str, frozenset] = {}

    def read(sid: str, stack: tuple[str, ...] = ()) -> None:
        if sid in states or sid in stack:
            return
        f = files[sid]
        parent_totals = None
        if f.parent_id and f.parent_id in files and f.parent_id not in stack:
            read(f.parent_id, stack + (sid,))
            parent_totals = lineage_totals.get(f.parent_id, frozenset())
        try:
            data = read_rollout(f.path)
        except InputRejected as e:
            notes.append(str(e))
            return
        except OSError as e:
            notes.append(f"{f.path}: cannot read ({e.strerror}) (skipped)")
            return
        try:
            state, got = fold(CodexState(), data, prices, notes, f.path, rules, parent_totals=parent_totals,
                              seen=seen)
        except NotARollout as e:
            notes.append(str(e))
            return
        if state.session_id is None:
            state = replace(state, session_id=sid)
        states[sid], counted[sid] = state, got
        seen.update(c.key for c in got)
        own = frozenset(c.total for c in got if c.total is not None)
        lineage_totals[sid] = own | (lineage_totals.get(f.parent_id, frozenset()) if f.parent_id else frozenset())

    for sid in sorted(files, key=lambda s: (os.path.basename(files[s].path), s)):
        read(sid)
    return HomeRead(files, states, counted)
