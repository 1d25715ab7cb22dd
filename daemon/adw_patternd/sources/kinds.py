"""The registry of session kinds: which agents' files adw-patternd reads, and how a root of
each kind is configured, listed, watched and read (docs/architecture.md, "Adding a kind").

A kind is one entry of KINDS. Everything above sources/ (config, engine, sync, the daemon,
the views) asks this registry and never names an agent: a root's kind (config.yaml's key for
it) says which entry reads it and which agent wrote it.

Most kinds are a pure reader module with the contract of AGENT-READERS (copilot.py,
gemini.py, qwen.py, opencode.py): `list_sessions`, `watched_folders`, `session_of`,
`read_session`, read by one generic source (agent_source.py) that stores each session's state
as opaque text. Two kinds have a shape of their own, which the engine picks by ``shape``
(never by name; shapes.py makes each shape's source): "joined", a session store whose
sessions may belong to an ADW workflow (session_source.py), and "rollouts", a home whose
forks copy their parents' events, so that a read needs what other files counted
(codex_source.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import copilot, gemini, opencode, qwen
from .agent_fold import ReadContext, SessionRead, SessionRef

ADW = ""  # the kind of a root of ADW workflow folders (config.yaml's `roots:`)
ADW_AGENT = "claude"  # ADW runs are Claude Code's
GENERIC = "sessions"  # the shape of a kind read by a pure reader module
JOINED = "joined"  # a session store whose sessions may belong to ADW workflows
ROLLOUTS = "rollouts"  # a home whose forks copy their parents' events


@dataclass(frozen=True)
class SessionKind:
    """One kind of session source. ``reader``: its pure reader module (None for a kind of
    another shape, whose source has a module of its own: shapes.py)."""

    name: str
    config_key: str  # config.yaml's list of roots of this kind
    default_name: str  # a root's name when config.yaml gives none
    describe: str  # for messages: "a GitHub Copilot CLI home, such as ~/.copilot"
    agent: str  # the agent that wrote its sessions (patterns --agent, status, the report)
    shape: str = GENERIC
    reader: ModuleType | None = None
    keys: frozenset = frozenset({"path", "name"})  # what one entry of its config list may say

    def list_sessions(self, root: str, problems: list[str]) -> dict[str, SessionRef]:
        return self.reader.list_sessions(root, problems)

    def watched_folders(self, root: str) -> tuple[str, ...]:
        """Session folders only: never the home itself (credentials and settings live there)."""
        return self.reader.watched_folders(root)

    @property
    def watch_recursive(self) -> bool:
        """Whether its watched folders are watched with all their subfolders."""
        return getattr(self.reader, "WATCH_RECURSIVE", True)

    def sessions_changed(self, root: str, changed_path: str, mark):
        """The sessions a changed file concerns, and the mark to give the next call (a kind
        whose change names no session, a shared database, keeps where it looked up to)."""
        own = getattr(self.reader, "sessions_changed", None)
        if own is not None:
            return own(root, changed_path, mark)
        sid = self.reader.session_of(root, changed_path)
        return ({sid} if sid else set()), mark

    def identity_files(self, ref: SessionRef) -> tuple[str, ...]:
        """The files whose stat says whether a session may have changed (its fingerprint)."""
        own = getattr(self.reader, "identity_files", None)
        return own(ref) if own is not None else ref.files

    def read_session(self, ref: SessionRef, stored: str | None, ctx: ReadContext) -> SessionRead:
        return self.reader.read_session(ref, stored, ctx)


def _reader(module: ModuleType, default_name: str) -> SessionKind:
    return SessionKind(module.AGENT, module.CONFIG_KEY, default_name, module.DESCRIBE, module.AGENT,
                       reader=module)


KINDS: tuple[SessionKind, ...] = (
    SessionKind("claude", "claude_projects", "claude", "a Claude Code session store, such as ~/.claude/projects",
                "claude", shape=JOINED, keys=frozenset({"path", "name", "include_sessions"})),
    SessionKind("codex", "codex_homes", "codex", "a Codex CLI home (the folder holding sessions/), such as ~/.codex",
                "codex", shape=ROLLOUTS, keys=frozenset({"path", "name", "include_sessions"})),
    _reader(copilot, "copilot"),
    _reader(gemini, "gemini"),
    _reader(qwen, "qwen"),
    _reader(opencode, "opencode"),
)
BY_NAME = {k.name: k for k in KINDS}


def kind(name: str) -> SessionKind:
    return BY_NAME[name]


def agent_of(kind_name: str) -> str:
    """The agent that wrote a root's workflows, by the root's kind (ADW folders: Claude Code's)."""
    return BY_NAME[kind_name].agent if kind_name in BY_NAME else ADW_AGENT


def agents() -> tuple[str, ...]:
    return tuple(dict.fromkeys([ADW_AGENT, *(k.agent for k in KINDS)]))
