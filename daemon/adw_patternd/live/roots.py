"""The daemon's roots and their lifecycle: a root is watched while it can be read (the
guard, roots.py, says why not, once), dropped when it goes away or is replaced by another
folder (a mount came or went), caught up when it comes back, and added or removed by a
reload. Its workflows and their data stay when it goes."""

from __future__ import annotations

import logging
import os
from typing import Callable

from ..config import Root
from ..roots import RootGuard
from ..sync import SyncSummary, list_workflows
from .sweep import Sweep, Tracked
from .watcher import Key, Watches

log = logging.getLogger("adw_patternd")


class LiveRoots:
    """``roots``: every configured root by name; ``missing``: those not readable now (not
    watched, not read). ``catch_up(roots)``: the sync's pass over them. ``touch(key)``: ask
    for a workflow to be read."""

    def __init__(self, roots: list[Root], guard: RootGuard, watches: Watches, sweep: Sweep,
                 tracked: dict[Key, Tracked], touch: Callable[..., None],
                 catch_up: Callable[[list[Root]], SyncSummary]):
        self.roots: dict[str, Root] = {r.name: r for r in roots}
        self.missing: set[str] = set()
        self.guard = guard
        self.watches = watches
        self.sweep = sweep
        self.tracked = tracked
        self.touch = touch
        self.catch_up = catch_up
        self._stats: dict[str, tuple | None] = {}  # each root folder's stat as last swept
        self._identities: dict[str, str | None] = {}  # each root folder's device:inode while watched

    def add(self, root: Root, *, catch_up: bool) -> None:
        """Watch a root if it can be read now (else wait for it: the guard said why)."""
        self.roots[root.name] = root
        health = self.guard.health(root)
        if not health.readable:
            self.missing.add(root.name)
            return
        self.missing.discard(root.name)
        self._identities[root.name] = health.identity
        self.sweep.open_root(root)
        if not self.watches.watch_root(root):
            log.warning("root %s: no live watch; new workflow folders are found by the sweep", root.name)
        self._stats[root.name] = _root_stat(root)
        if catch_up:
            log.info("root %s: %s", root.name, self.catch_up([root]).line())

    def drop(self, name: str) -> None:
        """Stop watching a root that went away; its workflows and their data stay."""
        self.watches.unwatch_root(name)
        self.sweep.close_root(name)
        self.missing.add(name)

    def sweep_roots(self) -> None:
        """Roots that went away or came back (the guard says which, and why, once), a root
        folder replaced by another (a mount came or went: its watch and its open fd see the
        old one), and new folders in a root without a live watch. One stat a root a tick:
        the guard looks only when the root folder's own stat changed (device and inode for
        a mount or a replacement, mtime for folders added or removed, ctime for a chmod)."""
        for name, root in list(self.roots.items()):
            seen = _root_stat(root)
            if seen == self._stats.get(name):
                continue
            self._stats[name] = seen
            health = self.guard.health(root)
            if name in self.missing:
                if health.readable:
                    self.add(root, catch_up=True)
                continue
            if not health.readable or health.identity != self._identities.get(name):
                self.drop(name)
                if health.readable:
                    log.info("root %s: folder %s was replaced (now %s); watching the new one", name, root.path,
                             health.identity)
                    self.add(root, catch_up=True)
                continue
            for adw_id in list_workflows(root) or ():  # a folder came or went (watched root or not)
                if (name, adw_id) not in self.tracked:
                    self.touch((name, adw_id))

    def remove_others(self, kept: list[Root]) -> dict[str, Root]:
        """A reload: forget the roots not in ``kept``; the roots as they were before."""
        old_roots = dict(self.roots)
        for name in set(old_roots) - {r.name for r in kept}:
            self.watches.unwatch_root(name)
            self.sweep.close_root(name)
            self.roots.pop(name, None)
            self.missing.discard(name)
            for key in [k for k in self.tracked if k[0] == name]:
                del self.tracked[key]
            log.info("reload: root %s removed", name)
        return old_roots

    def add_new(self, roots: list[Root], old_roots: dict[str, Root]) -> None:
        """A reload: watch and catch up the roots that are new, or in another folder now."""
        for root in roots:
            if root.name not in old_roots or old_roots[root.name].path != root.path:
                if root.name in old_roots:
                    self.watches.unwatch_root(root.name)
                log.info("reload: root %s added (%s)", root.name, root.path)
                self.add(root, catch_up=True)


def _root_stat(root: Root) -> tuple | None:
    try:
        st = os.stat(root.path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
