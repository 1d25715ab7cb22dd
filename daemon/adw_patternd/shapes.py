"""The engine's source for each shape of session kind (sources/kinds.py: SessionKind.shape):
the second half of the registry. A kind read by a pure reader needs nothing here; a kind
with a shape of its own (a store joined to ADW workflows, a home whose forks copy their
parents) has its source module beside the engine, made here.

Every source answers the same questions (docs/architecture.md, "Adding a kind"): ``names``,
``listing``, ``read``, ``refresh``; live, ``watched_folders``, ``recursive``, ``changed``,
``instead``; and ``in_process``: whether a sync reads its sessions in this process, in order
(a read needs what the reads before it counted), rather than in forked workers."""

from __future__ import annotations

from .sources.agent_source import AgentSource
from .sources.codex_source import CodexSource
from .config import Config
from .sources.session_source import SessionSource
from .sources.kinds import GENERIC, JOINED, ROLLOUTS
from .store.cross_file import CrossFileReader

# The attributes the engine has always had for these sources (tests and tools read them).
ATTRIBUTES = {"source": JOINED, "codex": ROLLOUTS, "agents": GENERIC}


def make_sources(config: Config, ledger, indexes: dict | None = None) -> dict[str, object]:
    """Each shape's source over ``ledger``; ``indexes``: what a parent process listed (a
    forked sync worker starts from its parent's listing), by shape."""
    indexes = indexes or {}
    return {JOINED: SessionSource(config, indexes.get(JOINED), ledger.counted_keys),
            ROLLOUTS: CodexSource(config, CrossFileReader(ledger.db), indexes.get(ROLLOUTS)),
            GENERIC: AgentSource(config)}


def indexes_of(sources: dict[str, object]) -> dict[str, object]:
    """What each source listed, for a forked worker (make_sources' ``indexes``)."""
    return {shape: getattr(source, "index", None) for shape, source in sources.items()}
