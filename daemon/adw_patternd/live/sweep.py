"""The stat sweep: how the daemon notices changes to workflows that have no live watch.

A workflow that changed within active_window_s has a live inotify watch; the others are
dormant and stat-checked here, in tiers by how long they have been unchanged (changed in the
last day: every sweep_interval_s; unchanged for a week or more: every
dormant_sweep_interval_s; between: halfway), a slice at a time so that no round blocks live
updates for long. Once per round the live workflows' fingerprints are checked too. The
sweep only says which workflows to read (``touch``); the daemon reads them.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from ..config import Root, WatchConfig
from ..core.folders import STATE_FILE, Snapshot
from .watcher import Key, Watches

log = logging.getLogger("adw_patternd")

# Sweep tiers by time since a workflow last changed: under a day, under a week, older.
TIER_AGES_S = (86_400.0, 7 * 86_400.0, float("inf"))
RECENT_S = TIER_AGES_S[1]  # changed within this: fingerprinted by every reconcile, not only the full one
FOLDER_ROUNDS = 4  # a dormant workflow's folder (not just its state file) is stat-checked every 4th round
STATE_SUFFIX = "/" + STATE_FILE
UNKNOWN = object()  # look(): the workflow could not be looked at now (its root is gone): leave it


@dataclass(slots=True)
class _Tier:
    """One sweep tier: its workflows for the current round, and how far the round got."""

    index: int
    keys: list = field(default_factory=list)
    at: int = 0
    round: int = -1


@dataclass(slots=True)
class Tracked:
    """What the daemon remembers of one workflow folder between sweeps."""

    snapshot: Snapshot | None = None
    last_change: float = 0.0  # monotonic time of the last change seen
    transient_failures: int = 0
    failure: tuple | None = None  # (reason, snapshot) of the last bad version reported
    tier: int = 0  # its sweep tier (by age), as of the last classification


class Sweep:
    """The sweep's schedule: tiers, slices, ages; the root folders it stats relative to.

    ``tracked``: the daemon's record of every workflow (shared: the daemon adds to it, the
    sweep reads snapshots and writes tiers). ``touch(key, delay=...)``: ask for a read.
    ``look(key, stored_fingerprint)``: a live workflow's fingerprint now, None when it is
    gone, UNKNOWN when it cannot be looked at."""

    def __init__(self, watch: WatchConfig, tracked: dict[Key, Tracked], watches: Watches,
                 touch: Callable[..., None], look: Callable[[Key, str | None], object]):
        self.watch = watch
        self.tracked = tracked
        self.watches = watches
        self.touch = touch
        self.look = look
        self.live_fingerprints: dict[Key, str | None] = {}  # live workflows' fingerprints as last read
        self._root_fds: dict[str, int] = {}  # each root kept open: the sweep stats relative to it
        self._tiers = [_Tier(i) for i in range(len(TIER_AGES_S))]
        self._members: list[list[Key]] = [[] for _ in TIER_AGES_S]
        self._classified_at = float("-inf")

    def add(self, key: Key) -> None:
        """A workflow seen for the first time: swept with the busiest tier until the next classification."""
        self._members[0].append(key)

    def recent(self, root_names) -> dict[str, set[str]]:
        """The workflows of each root that changed within RECENT_S (or whose age is unknown)."""
        only: dict[str, set[str]] = {name: set() for name in root_names}
        for key, tracked in self.tracked.items():
            if tracked.tier < 2 and key[0] in only:
                only[key[0]].add(key[1])
        return only

    def close_all(self) -> None:
        for name in list(self._root_fds):
            self.close_root(name)

    def _age_tier(self, tracked: Tracked, now: float, now_ns: int) -> int:
        if (tracked.last_change and now - tracked.last_change < TIER_AGES_S[0]) or tracked.snapshot is None:
            return 0
        age = (now_ns - max(tracked.snapshot.folder_mtime_ns, tracked.snapshot.state_mtime_ns)) / 1e9
        return next(i for i, limit in enumerate(TIER_AGES_S) if age < limit)

    def classify(self) -> None:
        """Put each workflow in its sweep tier. Ages move slowly, and a workflow that changes is
        watched live for active_window_s: so this runs once per that window (or per slowest
        round, if longer), not per round."""
        now, now_ns = time.monotonic(), time.time_ns()
        members: list[list[Key]] = [[] for _ in TIER_AGES_S]
        for key, tracked in self.tracked.items():
            tracked.tier = self._age_tier(tracked, now, now_ns)
            members[tracked.tier].append(key)
        self._members = members
        self._classified_at = now

    def tier_interval(self, index: int) -> float:
        fast, slow = self.watch.sweep_interval_s, self.watch.dormant_sweep_interval_s
        return (fast, (fast + slow) / 2, slow)[index]

    def tick(self, tick: float) -> None:
        """Stat the next slice of each tier's workflows, so that each one is checked once per
        its tier's interval and no round blocks live updates for long.

        Every round of a tier stats each of its workflows' state file (in-place rewrites, the
        way a workflow wakes up); every FOLDER_ROUNDS-th round its folder too (files or agent
        folders added, a state file renamed over). At 100,000 folders a
        stat is most of the daemon's idle cost, hence the tiers and the split. Live-watched
        workflows are skipped (their events say everything) until they fall dormant."""
        now = time.monotonic()
        watch = self.watch
        if now - self._classified_at >= max(watch.dormant_sweep_interval_s, watch.active_window_s):
            self.classify()
        for tier in self._tiers:
            if tier.at >= len(tier.keys):
                tier.keys = self._members[tier.index]
                tier.at = 0
                tier.round += 1
                if tier.index == 0 and self.watches.workflows and tier.round % FOLDER_ROUNDS == 0:
                    self._check_live()
            count = int(max(1, -(-len(tier.keys) * tick // self.tier_interval(tier.index))))
            keys = tier.keys[tier.at : tier.at + count]
            tier.at += len(keys)
            self._sweep_keys(keys, whole=tier.round % FOLDER_ROUNDS == 0, now=now)

    def _sweep_keys(self, keys: list[Key], *, whole: bool, now: float) -> None:
        """A stat of each workflow's state file, and on a ``whole`` round of its folder too.
        This is the hot loop at 100,000 folders: lookups hoisted, nothing allocated to compare."""
        window = self.watch.active_window_s
        live = self.watches.workflows
        tracked_of = self.tracked.get
        fds = self._root_fds
        touch = self.touch
        stat = os.stat
        for key in keys:
            tracked = tracked_of(key)
            fd = fds.get(key[0])
            if tracked is None or fd is None:
                continue
            if key in live:
                if now - tracked.last_change > window:
                    self.watches.deactivate(key)
                    self.live_fingerprints.pop(key, None)
                    if tracked.snapshot is None:
                        touch(key, delay=0)  # read once more, to remember it as seen
                continue
            seen = tracked.snapshot
            if seen is None:  # the last read saw files too fresh to trust: read again
                touch(key, delay=0)
                continue
            changed = False
            if whole:  # files or agent folders added, a state file renamed over
                try:
                    st = stat(key[1], dir_fd=fd, follow_symlinks=False)
                    changed = st.st_mtime_ns != seen[1] or st.st_ino != seen[0]
                except OSError:
                    changed = True
            if not changed:  # a state file rewritten in place: every round, so within the tier's interval
                try:
                    st = stat(key[1] + STATE_SUFFIX, dir_fd=fd, follow_symlinks=False)
                    changed = st.st_mtime_ns != seen[4] or st.st_size != seen[3] or st.st_ino != seen[2]
                except OSError:
                    changed = seen[2] != 0
            if changed:
                touch(key, delay=0)

    def _check_live(self) -> None:
        """Once per sweep round, live-watched workflows get a full fingerprint check: watchdog
        silently skips a subfolder it cannot watch, and drops inotify queue overflows."""
        for key in list(self.watches.workflows):
            stored = self.live_fingerprints.get(key)
            now = self.look(key, stored)
            if now is UNKNOWN:
                continue
            if now is None or (stored is not None and stored != now):
                self.touch(key, delay=0)

    def open_root(self, root: Root) -> None:
        self.close_root(root.name)
        try:
            self._root_fds[root.name] = os.open(root.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            log.warning("root %s: cannot open %s (%s); its dormant workflows are not swept", root.name, root.path,
                        e.strerror)

    def close_root(self, name: str) -> None:
        fd = self._root_fds.pop(name, None)
        if fd is not None:
            os.close(fd)
