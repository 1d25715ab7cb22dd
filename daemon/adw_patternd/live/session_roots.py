"""The roots of agent sessions, live: each root's session folders watched (as its source says:
never an agent's home itself, where credentials live), and a change read. A watch event only
adds its path to the root's pending paths and marks the root (watcher.py); after the debounce
the root's source says which sessions those paths are, and each is read from its stored
state. Nothing here knows a kind: the engine's source for the root's shape answers."""

from __future__ import annotations

import logging
from typing import Callable

from ..config import Config, Root
from ..engine import Engine
from ..core.outcome import Outcome
from .watcher import Key, Watches

log = logging.getLogger("adw_patternd")


class LiveSources:
    """``record(key, outcome)``: the daemon's bookkeeping of a live read; ``touch(key)``: ask
    for a workflow of an ADW root to be read; ``adw_roots``: those roots, by name (shared)."""

    def __init__(self, config: Config, engine: Engine, watches: Watches, adw_roots: dict[str, Root],
                 owner_of: Callable[[str], str | None], record: Callable[[Key, Outcome], None],
                 touch: Callable[..., None]):
        self.roots = {r.name: r for r in config.sources}
        self.engine, self.watches, self.adw_roots = engine, watches, adw_roots
        self.owner_of, self.record, self.touch = owner_of, record, touch

    def _source(self, root: Root):
        return self.engine.sources[root.shape]

    def watch(self) -> None:
        for root in self.roots.values():
            source = self._source(root)
            folders = source.watched_folders(root)
            if not self.watches.watch_sessions(root, folders, source.recursive(root)):
                log.warning("%s: no live watch on %s; its sessions are read again at each reconcile", root.name,
                            ", ".join(folders))

    def handle(self, key: Key) -> None:
        """Files changed under a root's session folders (key: the root, no session): its source
        says which sessions they are. A session's own key comes back when its files turn stale
        (to become interrupted)."""
        root = self.roots[key[0]]
        if key[1]:
            self._read(root, key[1])
            return
        for sid in sorted(self._source(root).changed(root, self.watches.changed_paths.pop(root.name, ()))):
            self._read(root, sid)

    def _read(self, root: Root, sid: str) -> None:
        o = self.engine.process(root, sid)
        owner = self._source(root).instead(o, self.owner_of)
        adw_root, _, adw_id = (owner or "").partition("/")
        if adw_root in self.adw_roots:  # it belongs to an ADW workflow: that one is read
            self.touch((adw_root, adw_id), delay=0)
            return
        self.record((root.name, sid), o)
