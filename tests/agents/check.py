"""The agent tests' harness: what the model served, worked out; what we stored, compared.

The oracle is the scripted server's ``Served`` log and nothing else: tokens and dollars per
session, calls and attributed dollars per command signature, each priced here from the
published prices (not from our price table) in integer nano-dollars. ``Watched`` runs
``adw-patternd run`` on a store while an agent writes it; ``Watched.check`` waits until the
daemon has caught up with a fresh ``sync`` of the same files, then asserts that both
databases say what the oracle says, that they are equal, and that ``verify --files
--agent-record`` is clean (the agent's own record differs from ours only for its reasons).

Pricing rules (../shared/docs/claude-session-store.md): nano-dollars per token are the
price per million tokens times 1,000; a 5-minute cache write costs 1.25x the input price,
a 1-hour write 2x; a response with k tool calls gives each call cost // k (and
tokens // k); a Bash call gives its share once to each distinct signature it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from daemon_proc import DaemonProcess
from helpers import diff_dumps, normalised_dump, query, wait_for, write_config

from .script import Served

# Nano-dollars per token (USD per million tokens x 1,000): input, output, 5-minute write,
# 1-hour write, cache read. Published prices: sonnet 4.x 3/15 (writes 3.75 and 6, reads 0.30),
# haiku 4.5 1/5 (1.25 and 2, 0.10), opus 4.5 and later 5/25 (6.25 and 10, 0.50).
PRICES = {
    "claude-sonnet-4-5": (3000, 15000, 3750, 6000, 300),
    "claude-haiku-4-5": (1000, 5000, 1250, 2000, 100),
    "claude-opus-4-5": (5000, 25000, 6250, 10000, 500),
    # OpenAI (Codex): gpt-5-codex 1.25 input, 0.125 cached input, 10 output. OpenAI has no
    # cache-write price: written tokens are part of the input and billed as input.
    "gpt-5-codex": (1250, 10000, 1250, 1250, 125),
}
FAST = {"debounce_ms": 100, "reconcile_interval_s": 0, "watch": {"sweep_interval_s": 0.5}}
ENDED, KILLED = "completed", ("running", "interrupted")


def price_of(model: str) -> tuple[int, int, int, int, int]:
    for prefix, price in PRICES.items():
        if model.startswith(prefix):
            return price
    raise AssertionError(f"the oracle has no price for {model!r}: add it to tests/agents/check.py PRICES")


def served_nanos(s: Served) -> int:
    inp, out, w5, w1, read = price_of(s.model)
    u = s.usage
    return u.input * inp + u.output * out + u.cache_write_5m * w5 + u.cache_write_1h * w1 + u.cache_read * read


def served_tokens(s: Served) -> int:
    u = s.usage
    return u.input + u.output + u.cache_write + u.cache_read


def counted(served: list[Served]) -> list[Served]:
    """The responses a session file holds: answered (not an error), and not a side request
    (a title or an output summary, which no file records). 2.0.x's warm-ups are written
    to agent files, so they count."""
    return [s for s in served if s.status == 200 and not s.side]


@dataclass
class Oracle:
    """What the model served, as the figures we should store."""

    sessions: dict[str, tuple[int, int]] = field(default_factory=dict)  # session -> (tokens, nanos)
    signatures: dict[str, tuple[int, int]] = field(default_factory=dict)  # signature -> (calls, nanos)
    # 2.0.x's warm-ups, (tokens, nanos) each, kept out of ``sessions``: which session one
    # belongs to is not the agent's to say consistently. A resumed process's warm-up request
    # can carry the resumed session's id while its agent file names the new process's own
    # session (and the next time the other way round), so the oracle only knows that each
    # warm-up belongs, whole, to one session of the test.
    warmups: list[tuple[int, int]] = field(default_factory=list)
    # What it was made of, for as_written.
    served: list[Served] = field(default_factory=list, repr=False)
    session_of: object = field(default=None, repr=False)

    @classmethod
    def of(cls, served: list[Served], session_of=None) -> "Oracle":
        """``session_of(served)``: which session a response counts for (default: the session
        id the agent sent with the request)."""
        from adw_patternd.core.commands import call_signatures

        sessions: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        signatures: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        warmups = []
        for s in counted(served):
            sid = session_of(s) if session_of else s.session
            assert sid, f"served response {s.response_id} has no session id"
            nanos = served_nanos(s)
            if s.warmup:
                warmups.append((served_tokens(s), nanos))
                continue
            sessions[sid][0] += served_tokens(s)
            sessions[sid][1] += nanos
            k = len(s.calls) + (s.subagent is not None)
            for command in s.calls:
                # The signature rules are the product's; the shares are the oracle's.
                for sig in call_signatures(command):
                    signatures[sig][0] += 1
                    signatures[sig][1] += nanos // k
        return cls({k: tuple(v) for k, v in sessions.items()}, {k: tuple(v) for k, v in signatures.items()},
                   sorted(warmups), list(served), session_of)

    def as_written(self, store: Path) -> "Oracle":
        """These figures with one correction the agent's files force: Claude Code 2.0.x writes
        a response's entry when its last content block ends, with the usage it has then. On a
        busy machine that is before message_delta brings the final output count, and the entry
        keeps message_start's first count (1). No file holds the rest, so no reader can count
        it: a response whose every copy in ``store`` (a Claude Code session store) has that
        first count is taken as written. Anything else stays what the model served."""
        written: dict[str, set[int]] = defaultdict(set)
        for path in store.rglob("*.jsonl"):
            for line in path.read_text(errors="replace").splitlines():
                if '"assistant"' not in line:
                    continue
                try:
                    message = json.loads(line).get("message") or {}
                except ValueError:
                    continue
                if isinstance(message, dict) and isinstance(message.get("usage"), dict):
                    written[str(message.get("id"))].add(message["usage"].get("output_tokens"))
        early = {s.response_id for s in self.served if s.api == "anthropic" and s.usage.output > 1
                 and written.get(s.response_id) == {min(s.usage.output, 1)}}
        if not early:
            return self
        served = [replace(s, usage=replace(s.usage, output=min(s.usage.output, 1))) if s.response_id in early else s
                  for s in self.served]
        return Oracle.of(served, self.session_of)

    def matches(self, stored: dict[str, tuple[int, int]]) -> bool:
        """Whether ``stored`` is these sessions with each warm-up added, whole, to one of them
        (a session that only warm-ups fill included)."""
        rest = {sid: (t - self.sessions.get(sid, (0, 0))[0], n - self.sessions.get(sid, (0, 0))[1])
                for sid, (t, n) in stored.items()}
        if any(sid not in stored for sid in self.sessions):
            return False
        return _partition(sorted(self.warmups, reverse=True), sorted(rest.values()))


def _partition(items: list[tuple[int, int]], bins: list[tuple[int, int]]) -> bool:
    """Whether ``items`` can be shared out so that each bin's sum is exactly its amount."""
    if not items:
        return all(b == (0, 0) for b in bins)
    (t, n), others = items[0], items[1:]
    for i, (bt, bn) in enumerate(bins):
        if bt >= t and bn >= n and (i == 0 or bins[i - 1] != (bt, bn)):
            if _partition(others, bins[:i] + [(bt - t, bn - n)] + bins[i + 1:]):
                return True
    return False


def stored_sessions(database: str, prefix: str = "claude") -> dict[str, tuple[int, int]]:
    rows = query(database, "SELECT workflow_id, total_tokens, cost_nanos FROM workflow_history "
                 "WHERE workflow_id LIKE ? AND revision > 0", (f"{prefix}/%",))
    return {wid.split("/", 1)[1]: (tokens, nanos) for wid, tokens, nanos in rows}


def stored_signatures(database: str) -> dict[str, tuple[int, int]]:
    """Per signature: calls and attributed nano-dollars, summed over the layer-4 links."""
    rows = query(database, "SELECT p.pattern_signature, o.units, o.cost_nanos FROM pattern_occurrences o "
                 "JOIN operation_patterns p ON p.id = o.pattern_id WHERE o.layer = 'command'")
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sig, units, nanos in rows:
        out[sig][0] += units
        out[sig][1] += nanos
    return {k: tuple(v) for k, v in out.items()}


def stored_status(database: str, prefix: str = "claude") -> dict[str, str]:
    rows = query(database, "SELECT workflow_id, status FROM workflow_history WHERE workflow_id LIKE ? "
                 "AND revision > 0", (f"{prefix}/%",))
    return {wid.split("/", 1)[1]: status for wid, status in rows}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adw_patternd", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ})


class Watched:
    """``adw-patternd run`` watching ``projects`` (a Claude Code store, or with ``kind`` another
    kind's config key, ``"codex_homes"``, ``"qwen_homes"``..., that agent's home) while the
    agent runs. ``extra``: more of config.yaml (``prices:`` for a scripted model), given to the
    fresh syncs too.

    ``with Watched(tmp_path, projects) as w:`` starts it and waits for its catch-up;
    ``w.check(oracle, status=...)`` does the comparisons (see the module's docstring)."""

    def __init__(self, base: Path, projects: Path, kind: str = "claude_projects", **extra):
        self.base = base / "watch"
        self.base.mkdir(parents=True, exist_ok=True)
        self.projects = projects
        self.kind = kind
        self.prefix = root_name(kind)
        self.database = str(self.base / "live.db")
        self.extra = extra
        self.config = self.write_config(self.base, self.database, **FAST, **extra)
        self.daemon: DaemonProcess | None = None

    def write_config(self, folder: Path, database: str, **extra) -> Path:
        return write_config(folder, {}, database, **{self.kind: [{"path": str(self.projects)}]}, **extra)

    def __enter__(self) -> "Watched":
        self.daemon = DaemonProcess(self.config)
        try:
            wait_for(lambda: "catch-up:" in self.daemon.log() or not self.daemon.alive(), timeout=30,
                     what="the daemon's catch-up")
            assert self.daemon.alive(), f"the daemon exited ({self.daemon.proc.returncode}) before its catch-up"
        except AssertionError as e:
            self.__exit__()
            raise AssertionError(f"{e}\ndaemon log:\n{self.daemon.log()[-3000:]}\n"
                                 f"daemon output:\n{self.daemon.output()[-3000:]}") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.daemon and self.daemon.alive():
            self.daemon.kill()

    def fresh_sync(self, **extra) -> str:
        folder = self.base / f"fresh-{len(list(self.base.glob('fresh-*')))}"
        folder.mkdir()
        database = str(folder / "fresh.db")
        cfg = self.write_config(folder, database, **{**self.extra, **extra})
        done = _cli("sync", "--config", str(cfg))
        assert done.returncode == 0, f"sync failed:\n{done.stdout}\n{done.stderr}"
        return database

    def files(self) -> list[tuple[str, int, int]]:
        """What a sync reads: each file of the store (path, size, mtime); of the homes of the
        other kinds (JSON chats, a SQLite database and its -wal), every file."""
        pattern = "*.jsonl*" if self.kind in ("claude_projects", "codex_homes") else "*"
        found = []
        for path in sorted(self.projects.rglob(pattern)):
            if path.is_dir():
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            found.append((str(path), st.st_size, st.st_mtime_ns))
        return found

    def caught_up(self, timeout: float = 30) -> str:
        """Wait until the daemon's database equals a fresh sync's of the same files; the
        fresh database's path. The fresh sync is taken again when the files changed since
        (a process of the agent still writing after the command returned): the daemon is
        compared with what the files say now, not with what they said at the first look."""
        state = {"files": self.files()}
        state["fresh"] = self.fresh_sync()
        state["want"] = normalised_dump(state["fresh"])

        def equal() -> bool:
            if self.files() != state["files"]:
                state["files"] = self.files()
                state["fresh"] = self.fresh_sync()
                state["want"] = normalised_dump(state["fresh"])
            return normalised_dump(self.database) == state["want"]

        try:
            wait_for(equal, timeout=timeout, what="the daemon's database to equal a fresh sync's")
        except AssertionError:
            diff = diff_dumps(normalised_dump(self.database), state["want"])
            raise AssertionError("the daemon's database differs from a fresh sync's:\n" + "\n".join(diff)
                                 + "\n" + self.daemon.log()[-3000:] + "\ndaemon output:\n"
                                 + self.daemon.output()[-2000:]) from None
        return state["fresh"]

    def check(self, oracle: Oracle, status: dict[str, str | tuple[str, ...]] | None = None) -> None:
        fresh = self.caught_up()
        if self.kind == "claude_projects":
            oracle = oracle.as_written(self.projects)
        problems = []
        for name, database in (("daemon", self.database), ("fresh sync", fresh)):
            problems += compare(name, oracle, database, status or {}, self.prefix)
        # The agent's own record (2.1.3xx's cost-state) as a second opinion: a difference its
        # reasons do not explain fails the check
        done = _cli("verify", "--files", "--agent-record", "--config", str(self.config))
        if done.returncode != 0:
            problems.append(f"verify --files --agent-record is not clean:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        log = self.daemon.log()
        if "Traceback" in log:
            problems.append("the daemon logged a traceback:\n" + log[-3000:])
        assert not problems, "\n".join(problems)


def root_name(config_key: str) -> str:
    """The name a root of the kind configured under ``config_key`` gets when config.yaml
    gives none: the prefix of its workflow ids."""
    from adw_patternd.sources.kinds import KINDS

    return next(k.default_name for k in KINDS if k.config_key == config_key)


def compare(name: str, oracle: Oracle, database: str, status: dict, prefix: str = "claude") -> list[str]:
    """Each difference between the oracle and ``database``, said in full."""
    problems = []
    sessions = stored_sessions(database, prefix)
    if not oracle.matches(sessions):
        problems.append(f"{name}: sessions (tokens, nano-dollars) differ from what the model served:\n"
                        f"  served: {oracle.sessions}" + (f" and warm-ups {oracle.warmups}" if oracle.warmups else "")
                        + f"\n  stored: {sessions}")
    signatures = stored_signatures(database)
    if signatures != oracle.signatures:
        problems.append(f"{name}: signatures (calls, nano-dollars) differ from what the model served:\n"
                        f"  served: {oracle.signatures}\n  stored: {signatures}")
    stored = stored_status(database, prefix)
    for sid, want in status.items():
        allowed = (want,) if isinstance(want, str) else want
        if stored.get(sid) not in allowed:
            problems.append(f"{name}: session {sid} is {stored.get(sid)!r}, expected {' or '.join(allowed)}")
    return problems
