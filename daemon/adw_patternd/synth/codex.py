"""Synthetic Codex CLI homes (../shared/docs/codex-sessions.md), for tests, the bench and
examples/codex/: rollouts with every line type of the doc, written from a seed, and the PLAN
the writer worked out from what it chose to write (never by calling the reader).

What a home holds: about 60 sessions over several days in sessions/YYYY/MM/DD/, archived
ones (archived_sessions/, flat), compressed ones (.jsonl.zst, in both folders), one session
held twice (plain under sessions/, compressed under archived_sessions/), three forks and a
sub-agent that copy their parent's lines, a fork whose parent is not in the home, a session
that repeats another's usage events verbatim, re-emitted and rate-limit-only token_count
events, and the bad inputs: a line cut short and a line that is not JSON in the middle of a
rollout, a last line still being written, a .zst that does not decompress, a rollout with no
session_meta, a file that is not a rollout at all, totals that go backwards, and a model
with no price. Beside them, auth.json, config.toml and history.jsonl, which nothing may read.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import zstandard

START = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
CWD = "/home/dev/shop"

# USD per million tokens: input, cached input, output (section 9). The plan prices with this
# table, written here again, so that a wrong built-in price shows as a difference.
PRICES = {"gpt-5": (1.25, 0.125, 10.0), "gpt-5-codex": (1.25, 0.125, 10.0), "gpt-5.1-codex": (1.25, 0.125, 10.0),
          "gpt-5.2-codex": (1.75, 0.175, 14.0), "gpt-5.4": (2.50, 0.25, 15.0), "gpt-5.4-mini": (0.75, 0.075, 4.50),
          "gpt-5.5": (5.0, 0.50, 30.0)}
UNPRICED = "gpt-5.6-luna"
MODELS = ("gpt-5-codex", "gpt-5.1-codex", "gpt-5.2-codex", "gpt-5.4", "gpt-5.4-mini", "gpt-5.5", "gpt-5")

# (tool, command, workdir below CWD or None, the signatures layer 4 gives it)
COMMANDS = (
    ("shell", ["bash", "-lc", "git status"], None, ("git:status:summary",)),
    ("shell", ["bash", "-lc", "cd app/server && uv run pytest tests/ -q"], None, ("test:pytest:backend",)),
    ("shell_command", "git add -A && git commit -m 'fix: tidy'", None, ("git:commit:all",)),
    ("exec_command", "npx tsc --noEmit", "app/client", ("build:typecheck:frontend",)),
    ("exec_command", "pytest -q", "app/server", ("test:pytest:backend",)),
    ("local_shell_call", ["npm", "install"], "web", ("deps:npm:install",)),
    ("shell", ["git", "diff", "--stat"], None, ("git:diff:summary",)),
    ("shell", ["bash", "-lc", "git log --oneline -5 | head -3"], None, ("git:log:summary",)),
    ("shell_command", "ls -la", None, ()),
    ("shell", ["sh", "-c", "npm test && git push"], None, ("test:generic:all", "git:push:all")),
    ("exec_command", "git status && git status --short", None, ("git:status:summary",)),
    ("container.exec", ["bash", "-lc", "ruff check ."], None, ("format:ruff:all",)),
    ("shell_command", "npm test", "web", ("test:generic:frontend",)),
    ("shell", ["zsh", "-lc", "pytest tests/api -x"], None, ("test:pytest:backend",)),
)
OTHER_CALLS = ("apply_patch", "update_plan", "write_stdin", "view_image", "github__create_issue")
ASKS = ("Add a retry to the uploader and run the tests", "why does the build fail on main?",
        "commit this with a good message\nand push it", "typecheck the client and fix the errors",
        "Show git status", "update the dependencies", "Refactor the payment module " + "carefully " * 60)


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def plan_nanos(model: str | None, inp: int, cached: int, out: int) -> int:
    """The doc's formula, in the same float steps as the reader's price table."""
    p = PRICES.get(model or "")
    if p is None:
        return 0
    usd_e6 = (inp - cached) * p[0] + out * p[2] + 0 * p[0] + cached * p[1]
    return round(usd_e6 * 1000)


@dataclass
class SessionPlan:
    """What reading one session must give."""

    sid: str
    path: str  # the file that is read
    request: str | None = None
    first: str = ""
    last: str = ""
    tokens: int = 0
    nanos: int = 0
    by_model: dict = field(default_factory=dict)  # model -> [input, cached, output, reasoning]
    commands: dict = field(default_factory=dict)  # signature -> [nanos, tokens, calls]
    waits: dict = field(default_factory=dict)  # signature -> [ms, ...] in call order
    compressed: bool = False
    archived: bool = False
    parent: str | None = None
    kind: str = "session"  # session, fork, subagent, orphan fork, duplicate, bad...
    repeats: str | None = None  # a duplicate's: the session whose usage events it repeats verbatim


@dataclass
class HomePlan:
    home: str
    sessions: dict = field(default_factory=dict)  # sid -> SessionPlan
    notes: list = field(default_factory=list)  # (path, words the note about it must hold)
    skipped: list = field(default_factory=list)  # files whose content is read by no session
    also_held: dict = field(default_factory=dict)  # sid -> the other file of a session held twice
    # Tokens that ccusage's rules count where ours do not, by session: re-emitted events that
    # repeat last_token_usage (see tests/test_ccusage_codex.py), keyed by sid.
    secrets: tuple = ("auth.json", "config.toml", "history.jsonl")


class _Writer:
    """One rollout being written, and its plan worked out as it goes."""

    def __init__(self, rng: random.Random, sid: str, t: datetime, plan: SessionPlan):
        self.rng, self.sid, self.t, self.plan = rng, sid, t, plan
        self.lines: list[dict] = []
        self.total = [0, 0, 0, 0, 0]
        self.model: str | None = None
        self.last: list[int] = [0, 0, 0, 0, 0]
        self.calls = 0  # tool calls since the last token_count event
        self.shell: list[tuple[tuple[str, ...], str]] = []  # (signatures, call id) of those calls
        self.outputs: list[tuple[str, dict, tuple[str, ...], int | None]] = []
        self.counted_totals: list[tuple] = []  # the cumulative totals this session counted
        self.keys: list[tuple] = []
        self.seen_keys: set = set()  # keys counted by sessions written (and read) before

    def step(self, lo: int = 40, hi: int = 4000) -> None:
        self.t += timedelta(milliseconds=self.rng.randrange(lo, hi))

    def line(self, kind: str, payload: dict, *, step: bool = True) -> dict:
        if step:
            self.step()
        obj = {"timestamp": stamp(self.t), "type": kind, "payload": payload}
        self.lines.append(obj)
        return obj

    def meta(self, *, parent: str | None = None, subagent: bool = False, cwd: str = CWD) -> None:
        payload = {"id": self.sid, "timestamp": stamp(self.t), "cwd": cwd, "originator": "codex_cli_rs",
                   "cli_version": "0.139.0", "source": "cli", "model_provider": "openai",
                   "base_instructions": {"text": "You are Codex."},
                   "git": {"commit_hash": "4e1d2c9", "branch": "main", "repository_url": "git@example.com:dev/shop.git"}}
        if parent and subagent:
            payload["source"] = {"subagent": {"thread_spawn": {"parent_thread_id": parent, "depth": 1}}}
            payload["agent_nickname"], payload["agent_role"] = "scout", "explorer"
        elif parent:
            payload["forked_from_id"] = parent
        self.lines.append({"timestamp": stamp(self.t), "type": "session_meta", "payload": payload})

    def turn(self, model: str, ask: str | None, *, as_message: bool = False) -> None:
        self.model = model
        self.line("turn_context", {"cwd": CWD, "approval_policy": "on-request", "model": model, "effort": "medium",
                                   "summary": "auto", "turn_id": f"t{self.rng.getrandbits(32):08x}",
                                   "sandbox_policy": {"type": "workspace-write", "network_access": False}})
        self.line("response_item", {"type": "message", "role": "developer",
                                     "content": [{"type": "input_text", "text": "<permissions>sandboxed</permissions>"}]})
        self.line("response_item", {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": f"<environment_context>\n  <cwd>{CWD}</cwd>\n</environment_context>"}]})
        if ask is None:
            return
        parts = [{"type": "input_text", "text": "# AGENTS.md instructions for /home/dev/shop\n<INSTRUCTIONS>x"},
                 {"type": "input_text", "text": ask}]
        self.line("response_item", {"type": "message", "role": "user", "content": parts})
        if not as_message:
            self.line("event_msg", {"type": "user_message", "message": ask, "images": [], "kind": "plain"})
        if self.plan.request is None:
            first = next(x.strip() for x in ask.splitlines() if x.strip())
            self.plan.request = first if len(first) <= 500 else first[:499] + "…"
        self.line("event_msg", {"type": "task_started", "model_context_window": 272000})

    def shell_call(self, spec) -> None:
        tool, command, sub, sigs = spec
        call_id = f"call_{self.rng.getrandbits(48):012x}"
        workdir = f"{CWD}/{sub}" if sub else CWD
        if tool == "local_shell_call":
            self.line("response_item", {"type": "local_shell_call", "call_id": call_id, "status": "completed",
                                        "action": {"type": "exec", "command": command, "working_directory": workdir,
                                                   "timeout_ms": None, "env": None, "user": None}})
        else:
            key = {"shell": "command", "container.exec": "command", "shell_command": "command",
                   "exec_command": "cmd"}[tool]
            args = {key: command, "timeout_ms": 120000}
            if sub or self.rng.random() < 0.5:
                args["workdir"] = workdir
            self.line("response_item", {"type": "function_call", "name": tool, "arguments": json.dumps(args),
                                        "call_id": call_id})
        self.calls += 1
        if sigs:
            self.shell.append((sigs, call_id))
        ms = self.rng.randrange(50, 90_000)
        style = self.rng.randrange(4)
        if style == 0:
            out = json.dumps({"output": "ok\n", "metadata": {"exit_code": 0, "duration_seconds": ms / 1000}})
        elif style == 1:
            out = f"Exit code: 0\nWall time: {ms / 1000} seconds\nOutput:\nok\n"
        elif style == 2:
            out = f"Wall time: {ms / 1000:.3f} seconds\nProcess exited with code 0\nOutput:\nok\n"
            ms = round(float(f"{ms / 1000:.3f}") * 1000)
        else:
            out, ms = "ok, no timing here\n", None
        self.outputs.append((call_id, {"type": "function_call_output", "call_id": call_id, "output": out}, sigs, ms))

    def other_call(self, name: str) -> None:
        call_id = f"call_{self.rng.getrandbits(48):012x}"
        if name == "apply_patch":
            self.line("response_item", {"type": "custom_tool_call", "status": "completed", "call_id": call_id,
                                        "name": "apply_patch", "input": "*** Begin Patch\n*** Update File: a.py\n"
                                        "@@\n-x\n+y\n*** End Patch\n"})
            self.outputs.append((call_id, {"type": "custom_tool_call_output", "call_id": call_id,
                                           "output": "Success. Updated the following files:\nM a.py\n"}, (), None))
        else:
            args = {"update_plan": {"plan": [{"step": "test", "status": "in_progress"}]},
                    "write_stdin": {"session_id": 3, "chars": "y\n"}, "view_image": {"path": "shot.png"},
                    }.get(name, {"title": "bug"})
            self.line("response_item", {"type": "function_call", "name": name, "arguments": json.dumps(args),
                                        "call_id": call_id})
            self.outputs.append((call_id, {"type": "function_call_output", "call_id": call_id,
                                           "output": "Wall time: 1.5 seconds\nok\n"}, (), None))
        self.calls += 1

    def usage(self) -> list[int]:
        inp = self.rng.randrange(2_000, 60_000)
        cached = self.rng.randrange(0, inp)
        out = self.rng.randrange(20, 4_000)
        reasoning = self.rng.randrange(0, out)
        return [inp, cached, out, reasoning, inp + out]

    def token_count(self, last: list[int] | None, *, with_last: bool = True, total: list[int] | None = None,
                    count: bool = True) -> None:
        """A token_count event for a response of usage ``last`` (added to the running total);
        ``count``: whether the reader must count it (the plan adds it then)."""
        if total is None:
            total = [a + b for a, b in zip(self.total, last)]
        info = {"total_token_usage": dict(zip(("input_tokens", "cached_input_tokens", "output_tokens",
                                               "reasoning_output_tokens", "total_tokens"), total)),
                "model_context_window": 272000}
        if with_last:
            info["last_token_usage"] = dict(zip(("input_tokens", "cached_input_tokens", "output_tokens",
                                                 "reasoning_output_tokens", "total_tokens"), last))
        self.line("event_msg", {"type": "token_count", "info": info, "rate_limits": self.limits()})
        calls, shell = self.calls, self.shell
        self.calls, self.shell = 0, []
        prev = self.total
        if last is not None:
            self.last = list(last)
        self.total = list(total)
        if not count:
            return
        delta = last if with_last else [max(0, a - b) for a, b in zip(total, prev)]
        key = (stamp(self.t), self.model or "", *delta)
        if key in self.seen_keys:
            return
        self.keys.append(key)
        self.counted_totals.append(tuple(total))
        nanos = plan_nanos(self.model, delta[0], delta[1], delta[2])
        p = self.plan
        p.tokens += delta[0] + delta[2]
        p.nanos += nanos
        m = p.by_model.setdefault(self.model or "", [0, 0, 0, 0])
        for i in range(4):
            m[i] += delta[i]
        for sigs, _cid in shell:
            for sig in sigs:
                c = p.commands.setdefault(sig, [0, 0, 0])
                c[0] += nanos // calls
                c[1] += (delta[0] + delta[2]) // calls
                c[2] += 1

    def limits(self) -> dict:
        return {"primary": {"used_percent": float(self.rng.randrange(100)), "window_minutes": 300,
                            "resets_at": 1788000000}, "secondary": None}

    def rate_limits_only(self) -> None:
        self.line("event_msg", {"type": "token_count", "info": None, "rate_limits": self.limits()})
        self.calls, self.shell = 0, []

    def outputs_now(self, *, cut: bool = False) -> None:
        for n, (_cid, payload, sigs, ms) in enumerate(self.outputs):
            obj = self.line("response_item", payload)
            if cut and n == 0:
                obj["_cut"] = True  # written cut short: its wait is lost
                continue
            if ms is not None:
                for sig in sigs:
                    self.plan.waits.setdefault(sig, []).append(ms)
        self.outputs = []

    def response(self, n_shell: int, n_other: int, *, reemit: bool = False, limits_between: bool = False,
                 with_last: bool = True, cut_output: bool = False) -> None:
        self.line("response_item", {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Thinking"}],
                                    "encrypted_content": "gAAAA" + "x" * self.rng.randrange(10, 200)})
        for _ in range(n_shell):
            self.shell_call(self.rng.choice(COMMANDS))
        for _ in range(n_other):
            self.other_call(self.rng.choice(OTHER_CALLS))
        if self.rng.random() < 0.2:
            self.line("response_item", {"type": "web_search_call", "status": "completed",
                                        "action": {"type": "search", "query": "codex rollout"}})
        if limits_between:  # the calls before a rate-limit-only event go to no response
            self.rate_limits_only()
        self.token_count(self.usage(), with_last=with_last)
        if reemit:  # a refresh: the same total, a new time, the last usage repeated or not
            self.token_count(self.last, total=list(self.total), count=False, with_last=self.rng.random() < 0.5)
        self.outputs_now(cut=cut_output)
        self.line("event_msg", {"type": "agent_reasoning", "text": "checking"})
        self.line("response_item", {"type": "message", "role": "assistant",
                                    "content": [{"type": "output_text", "text": "Done."}]})
        self.line("event_msg", {"type": "agent_message", "message": "Done."})

    def extras(self) -> None:
        """Line types a reader must pass over."""
        self.line("compacted", {"message": "Summary: tidy.", "replacement_history": [
            {"type": "function_call", "name": "shell", "call_id": "call_old",
             "arguments": json.dumps({"command": ["bash", "-lc", "git status"]})},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "old ask"}]}]})
        self.line("event_msg", {"type": "context_compacted"})
        self.line("response_item", {"type": "ghost_snapshot", "ghost_commit": {"id": "abc"}})
        self.line("event_msg", {"type": "turn_aborted", "reason": "interrupted"})
        self.line("event_msg", {"type": "entered_review_mode"})
        self.line("event_msg", {"type": "exited_review_mode"})
        self.line("event_msg", {"type": "mcp_tool_call_end", "call_id": "m1", "duration": {"secs": 1}})
        self.line("event_msg", {"type": "patch_apply_end", "call_id": "p1", "success": True})
        self.line("world_state", {"anything": 1})
        # Codex 0.169 writes one per response, with the same totals as the response's
        # token_count: here one repeating the last, which adds nothing (and, as any usage
        # event, closes the calls written before it).
        keys = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")
        self.line("token_usage_record", {"response_id": "resp_1", "usage": dict(zip(keys, self.last)),
                                         "thread_token_usage": dict(zip(keys, self.total))})
        self.calls, self.shell = 0, []
        self.line("event_msg", {"type": "task_complete", "last_agent_message": "Done."})

    def end_turn(self) -> None:
        """A turn still open at the end ends as Codex ends one: task_complete (at the same
        time as the line before it: no step, so the seeded randomness is unchanged)."""
        turns = [x["payload"]["type"] for x in self.lines if x.get("type") == "event_msg"
                 and x["payload"].get("type") in ("task_started", "task_complete", "turn_aborted")]
        if turns and turns[-1] == "task_started":
            self.line("event_msg", {"type": "task_complete", "last_agent_message": "Done."}, step=False)

    def finish(self) -> None:
        """The first and last complete lines' times (a line cut short or not JSON has none)."""
        written = [x for x in self.lines if not x.get("_cut") and not x.get("_garbage")]
        self.plan.first, self.plan.last = written[0]["timestamp"], written[-1]["timestamp"]


def _encode(lines: list[dict]) -> bytes:
    out = []
    for obj in lines:
        if obj.get("_garbage"):
            out.append("this is not JSON {\n")
            continue
        text = json.dumps({k: v for k, v in obj.items() if k != "_cut"}, separators=(",", ":"))
        if obj.get("_cut"):
            text = text[: len(text) // 2]  # a line cut short, and the file goes on
        out.append(text + "\n")
    return "".join(out).encode()


def _name(t: datetime, sid: str) -> str:
    return f"rollout-{t.strftime('%Y-%m-%dT%H-%M-%S')}-{sid}.jsonl"


def _put(home: str, rel: str, data: bytes, compress: bool = False) -> str:
    path = os.path.join(home, rel + (".zst" if compress else ""))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(zstandard.ZstdCompressor(level=3).compress(data) if compress else data)
    return path


def make_codex_home(home: str, *, seed: int = 28, sessions: int = 60, days: int = 5, bad: bool = True,
                    secrets: bool = True) -> HomePlan:
    """Write a Codex home under ``home`` and return its plan. ``sessions``: the ordinary
    sessions (forks, copies and bad files come on top)."""
    b = _HomeBuilder(home, random.Random(seed))
    order = b.ordinary(sessions, days)
    b.held_twice(order)
    b.children(order)
    b.duplicate(order)
    if bad:
        _bad_files(home, b.rng, b.plan, b.session, b.done, b.place)
    if secrets:
        for name in b.plan.secrets:
            with open(os.path.join(home, name), "w") as f:
                f.write('{"OPENAI_API_KEY": "sk-not-a-real-key"}\n' if name == "auth.json" else "# not ours\n")
    return b.plan


def _at(order: list[_Writer], k: int) -> _Writer:
    """The k-th of 60 sessions, for homes of any size."""
    return order[min(len(order) - 1, k * len(order) // 60)]


class _HomeBuilder:
    """The steps of make_codex_home, sharing its random stream, plan and counted keys."""

    def __init__(self, home: str, rng: random.Random):
        self.home, self.rng = home, rng
        self.plan = HomePlan(home)
        self.seen_keys: set = set()
        self.written: dict[str, _Writer] = {}
        self.lineage: dict[str, set] = {}

    def new_sid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def place(self, w: _Writer, *, archived: bool = False, compress: bool = False, lines: list[dict] | None = None,
              tail: bytes = b"") -> str:
        t0 = datetime.strptime(w.lines[0]["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")
        name = _name(t0, w.sid)
        rel = f"archived_sessions/{name}" if archived else f"sessions/{t0:%Y/%m/%d}/{name}"
        path = _put(self.home, rel, _encode(lines if lines is not None else w.lines) + tail, compress)
        w.plan.path, w.plan.compressed, w.plan.archived = path, compress, archived
        return path

    def session(self, t: datetime, *, sid: str | None = None, kind: str = "session", responses: int | None = None,
                model: str | None = None) -> _Writer:
        rng = self.rng
        sid = sid or self.new_sid()
        w = _Writer(rng, sid, t, SessionPlan(sid, "", kind=kind))
        w.seen_keys = self.seen_keys
        w.meta()
        w.turn(model or rng.choice(MODELS), rng.choice(ASKS))
        for n in range(responses if responses is not None else rng.randrange(2, 7)):
            w.response(rng.randrange(0, 4), rng.randrange(0, 3), reemit=rng.random() < 0.3,
                       limits_between=rng.random() < 0.1)
            if rng.random() < 0.25:
                w.rate_limits_only()
            if n == 2 and rng.random() < 0.5:
                w.turn(rng.choice(MODELS), rng.choice(ASKS))
        if rng.random() < 0.3:
            w.extras()
        return w

    def done(self, w: _Writer) -> None:
        w.end_turn()
        w.finish()
        self.seen_keys.update(w.keys)
        self.lineage[w.sid] = set(w.counted_totals) | self.lineage.get(w.plan.parent or "", set())
        self.plan.sessions[w.sid] = w.plan
        self.written[w.sid] = w

    def child(self, parent: _Writer, t: datetime, *, subagent: bool = False, absent: bool = False,
              spill: bool = False, ask_as_message: bool = False) -> _Writer:
        """A fork or sub-agent: its session_meta, the parent's lines copied and stamped with
        its creation time, then its own turn."""
        rng = self.rng
        sid = self.new_sid()
        kind = "orphan fork" if absent else ("subagent" if subagent else "fork")
        w = _Writer(rng, sid, t, SessionPlan(sid, "", kind=kind, parent=parent.sid))
        w.seen_keys = self.seen_keys
        w.meta(parent=parent.sid, subagent=subagent)
        clock = t
        for obj in parent.lines:
            clock += timedelta(milliseconds=1 if not spill else 3)
            w.lines.append({**obj, "timestamp": stamp(clock)})
        w.t = clock + timedelta(seconds=2)
        w.total = list(parent.total)
        w.turn(parent.model or "gpt-5-codex", f"Now {rng.choice(ASKS).lower()}", as_message=ask_as_message)
        for _ in range(rng.randrange(2, 5)):
            w.response(rng.randrange(1, 4), rng.randrange(0, 2), reemit=rng.random() < 0.3)
        return w

    def ordinary(self, sessions: int, days: int) -> list[_Writer]:
        """The ordinary sessions: most plain under sessions/, some archived, some compressed."""
        order: list[_Writer] = []
        span = timedelta(days=days) / max(1, sessions)
        for i in range(sessions):
            t = START + span * i + timedelta(seconds=self.rng.randrange(0, 600))
            w = self.session(t)
            self.done(w)
            order.append(w)
        for i, w in enumerate(order):
            if i % 12 == 5:
                self.place(w, archived=True)
            elif i % 12 == 7:
                self.place(w, archived=True, compress=True)
            elif i % 12 == 9:
                self.place(w, compress=True)
            else:
                self.place(w)
        return order

    def held_twice(self, order: list[_Writer]) -> None:
        """One session held twice: plain under sessions/, and compressed under archived_sessions/."""
        twice = _at(order, 2)
        t0 = datetime.strptime(twice.lines[0]["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")
        self.plan.also_held[twice.sid] = _put(self.home, f"archived_sessions/{_name(t0, twice.sid)}",
                                              _encode(twice.lines), True)

    def children(self, order: list[_Writer]) -> None:
        """Three forks and a sub-agent, their parents in the home; a fork whose parent is not."""
        for n, (parent, kw) in enumerate(((_at(order, 3), {}), (_at(order, 10), {"spill": True}),
                                          (_at(order, 20), {}),
                                          (_at(order, 30), {"subagent": True, "ask_as_message": True}))):
            when = (parent.t + timedelta(minutes=30 + n)).replace(microsecond=900_000 if kw.get("spill") else 0)
            c = self.child(parent, when, **kw)
            self.done(c)
            self.place(c)
        ghost = _Writer(self.rng, self.new_sid(), START + timedelta(days=1, hours=3), SessionPlan("", ""))
        ghost.seen_keys = set()
        ghost.meta()
        ghost.turn("gpt-5.4", "a session this home never had")
        for _ in range(3):
            ghost.response(1, 1)
        orphan = self.child(ghost, (ghost.t + timedelta(minutes=5)).replace(microsecond=0), absent=True)
        self.done(orphan)
        self.place(orphan)

    def duplicate(self, order: list[_Writer]) -> None:
        """A session that repeats another's usage events verbatim (same times, same model):
        each counts once, in the session read first (the other one: it starts earlier)."""
        source = _at(order, 40)
        dup = _Writer(self.rng, self.new_sid(), source.t + timedelta(hours=1), SessionPlan("", "", kind="duplicate"))
        dup.plan.sid, dup.plan.repeats = dup.sid, source.sid
        dup.seen_keys = self.seen_keys
        dup.meta()
        dup.turn(source.model or "gpt-5", "replay the earlier session")
        dup.total = [0, 0, 0, 0, 0]
        for obj in source.lines:  # its models and usage events, as they were
            p = obj["payload"]
            if obj["type"] == "turn_context" or (obj["type"] == "event_msg" and p.get("type") == "token_count"
                                                 and p.get("info")):
                dup.lines.append(obj)
        dup.t = max(dup.t, datetime.strptime(dup.lines[-1]["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc)) + timedelta(seconds=5)
        dup.total = list(source.total)
        for _ in range(2):
            dup.response(1, 0)
        self.done(dup)
        self.place(dup)


def _bad_files(home, rng, plan: HomePlan, session, done, place) -> None:
    # A line cut short in the middle (its output's wait is lost), and a line that is not JSON.
    w = session(START + timedelta(days=2, hours=5), kind="bad", responses=0)
    w.response(2, 0, cut_output=True)
    w.line("event_msg", {"type": "agent_message", "message": "x"})
    w.lines.append({"_garbage": True})
    w.response(1, 1)
    done(w)
    plan.notes.append((place(w), "not valid JSON"))

    # A last line still being written: not read yet.
    w = session(START + timedelta(days=2, hours=6), kind="bad", responses=2)
    done(w)
    place(w, tail=b'{"timestamp":"2026-09-03T14:00:00.000Z","type":"event_msg","payload":{"type":"token_count","in')

    # Totals that go backwards (counted from last_token_usage, with a note).
    w = session(START + timedelta(days=2, hours=7), kind="bad", responses=1)
    w.token_count(w.usage(), total=[x // 2 for x in w.total])
    done(w)
    plan.notes.append((place(w), "below the previous"))

    # A model with no price, and token_count events with only totals.
    w = _Writer(rng, str(uuid.UUID(int=rng.getrandbits(128), version=4)), START + timedelta(days=2, hours=8),
                SessionPlan("", "", kind="bad"))
    w.plan.sid = w.sid
    w.seen_keys = set()
    w.meta()
    w.turn(UNPRICED, "try the new model")
    for _ in range(2):
        w.response(1, 0, with_last=False)
    done(w)
    plan.notes.append((place(w), f"model '{UNPRICED}' has no price"))

    # No session_meta: the id comes from the file name.
    w = session(START + timedelta(days=2, hours=9), kind="bad", responses=2)
    w.lines = w.lines[1:]
    done(w)
    plan.notes.append((place(w), "no session_meta"))

    # A .zst that does not decompress, and a file that is not a rollout.
    sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    path = _put(home, f"archived_sessions/rollout-2026-09-04T10-00-00-{sid}.jsonl", b"\x28\xb5\x2f\xfd garbage" * 20)
    os.rename(path, path + ".zst")
    plan.notes.append((path + ".zst", "does not decompress"))
    plan.skipped.append(path + ".zst")
    sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    path = _put(home, f"sessions/2026/09/04/rollout-2026-09-04T11-00-00-{sid}.jsonl", b"hello\nworld\n")
    plan.notes.append((path, "not a Codex rollout"))
    plan.skipped.append(path)


def write_example_home(folder: str, seed: int = 7) -> HomePlan:
    """A small home for examples/codex/: eight sessions and their forks, an archived and a
    compressed rollout (no bad files, nothing but sessions/ and archived_sessions/)."""
    return make_codex_home(folder, seed=seed, sessions=8, days=2, bad=False, secrets=False)


if __name__ == "__main__":  # python -m adw_patternd.synth.codex examples/codex
    import sys

    write_example_home(sys.argv[1])
