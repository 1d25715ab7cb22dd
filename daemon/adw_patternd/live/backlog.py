"""Workflows read while the database could not take a write (disk full, read-only): tried
again after a backoff, until a retry stores them; the cause is what the daemon's STATUS says."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .watcher import Key

STORE_RETRY_S = (1.0, 60.0)  # a database that refused a write is tried again after 1 s, doubling to 60 s


@dataclass(slots=True)
class Backlog:
    """Workflows read while the database could not take a write (disk full, read-only):
    tried again after a backoff, until a retry stores them; the cause is what STATUS says."""

    keys: set = field(default_factory=set)
    cause: str | None = None
    delay: float = 0.0
    retry_at: float = 0.0

    def add(self, key: Key, cause: str) -> None:
        now = time.monotonic()
        if now >= self.retry_at:  # the first refusal, or a retry refused again: back off further
            self.delay = min(max(self.delay * 2, STORE_RETRY_S[0]), STORE_RETRY_S[1])
            self.retry_at = now + self.delay
        self.cause = cause
        self.keys.add(key)

    def due(self) -> dict[str, set[str]] | None:
        """The workflows to try again now, by root; None before their time."""
        if not self.keys or time.monotonic() < self.retry_at:
            return None
        only: dict[str, set[str]] = {}
        for root, adw_id in self.keys:
            only.setdefault(root, set()).add(adw_id)
        self.keys = set()
        return only

    def clear(self) -> None:
        """The database takes writes again: nothing waits, no backoff."""
        self.keys, self.cause, self.delay, self.retry_at = set(), None, 0.0, 0.0
