"""The agents' session folders when inotify cannot watch all of them.

A session root is watched recursively: a folder that appears in it (a new project, a new
day's folder of dated sessions) gets its own watch from watchdog as it appears. Once a watch could
not be added (the kernel's inotify limit reached, or a folder refused: watcher.py), such a
folder may have none, and nothing would announce the files written in it: the session roots
are then read (a listing and a stat a session) every sweep_interval_s, as the stat sweep
reads the ADW roots' workflows. Slower, never blind.
"""

from __future__ import annotations

import logging
from typing import Callable

from .watcher import Watches

log = logging.getLogger("adw_patternd")


class UnwatchedStores:
    """``interval()``: how often to read them (the running configuration's
    sweep_interval_s); ``read()``: read every session root once (the sync's path);
    ``configured``: whether there is any (a change of session roots needs a restart)."""

    def __init__(self, watches: Watches, interval: Callable[[], float], read: Callable[[], object],
                 configured: bool):
        self.watches = watches
        self.interval = interval
        self.read = read
        self.configured = configured
        self.read_at: float | None = None  # monotonic time of the last read

    def read_if_due(self, now: float) -> None:
        if not self.configured or not self.watches.stores_unwatched:
            return
        if self.read_at is None:
            log.warning("session roots are read every %.0f s from now on: a folder that appears "
                        "in them may have no live watch", self.interval())
        elif now - self.read_at < self.interval():
            return
        self.read_at = now
        self.read()
