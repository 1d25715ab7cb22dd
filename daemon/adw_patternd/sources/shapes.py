"""The engine's source for each shape of session kind (kinds.py: SessionKind.shape): the
second half of the registry. A kind read by a pure reader is read by AgentSource; a kind
with a shape of its own (a store joined to ADW workflows, a home whose forks copy their
parents) has a source module of its own beside it, made here.

Every source answers the same questions (docs/architecture.md, "Adding a kind"): ``names``,
``listing``, ``read``, ``refresh``; live, ``watched_folders``, ``recursive``, ``changed``,
``instead``; and ``in_process``: whether a sync reads its sessions in this process, in order
(a read needs what the reads before it counted), rather than in forked workers.

What a source asks of the store comes in as plain callables and objects the engine hands
over (``fetch_keys``, ``cross_file``): nothing here imports store/."""

from __future__ import annotations

from ..config import Config
from .agent_source import AgentSource
from .codex_source import CodexSource
from .kinds import GENERIC, JOINED, ROLLOUTS
from .session_source import SessionSource

# The attributes the engine has always had for these sources (tests and tools read them).
ATTRIBUTES = {"source": JOINED, "codex": ROLLOUTS, "agents": GENERIC}


def make_sources(config: Config, fetch_keys=None, cross_file=None, indexes: dict | None = None) -> dict[str, object]:
    """Each shape's source. ``fetch_keys``: the store's look-up of responses counted already
    (store/response_keys.py); ``cross_file``: its record of what other files' reads counted
    (store/cross_file.py: CrossFileReader); ``indexes``: what a parent process listed (a forked
    sync worker starts from its parent's listing), by shape."""
    indexes = indexes or {}
    return {JOINED: SessionSource(config, indexes.get(JOINED), fetch_keys),
            ROLLOUTS: CodexSource(config, cross_file, indexes.get(ROLLOUTS)),
            GENERIC: AgentSource(config)}


def indexes_of(sources: dict[str, object]) -> dict[str, object]:
    """What each source listed, for a forked worker (make_sources' ``indexes``)."""
    return {shape: getattr(source, "index", None) for shape, source in sources.items()}
