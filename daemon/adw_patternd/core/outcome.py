"""What processing one workflow folder did: one immutable value from reading to commit."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .change import Change
from .folders import Snapshot


class Kind(enum.Enum):
    PENDING = "pending"  # read into a change, waiting for its transaction
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"  # a file could not be used: the workflow keeps its last good data
    SKIPPED = "skipped"  # not a workflow folder
    MISSING = "missing"  # the folder is gone (a deletion only under a healthy root: see roots.py)
    NOT_STORED = "not stored"  # read, but the database could not take the write

    @property
    def stored(self) -> bool:
        """The database now holds this version."""
        return self in (Kind.NEW, Kind.UPDATED)


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    root: str
    adw_id: str
    patterns: tuple[int, ...] = ()
    new_patterns: tuple[str, ...] = ()
    reason: str | None = None
    transient: bool = False
    ms: float = 0.0
    notes: tuple[str, ...] = ()  # problems found in usable files, logged as one warning
    # The folder as listed before reading (for the daemon's sweep), whether its newest file
    # was too fresh for its mtime to prove that a later write changed it, and its fingerprint.
    snapshot: Snapshot | None = None
    racy: bool = True
    fingerprint: str | None = None
    # While a file is fresh, a run without its result line counts as running; at this wall
    # time (epoch seconds) it turns stale, and a read then says interrupted.
    stale_at: float | None = None
    changed_at: float | None = None  # the newest file's mtime (epoch seconds): for change-to-commit latency
    # SKIPPED, a session of a store: the ADW workflow it belongs to (its worktree, or a run naming it)
    joined_to: str | None = None
    # Only while PENDING: the change to apply, and when its reading started (perf_counter).
    change: Change | None = None
    started: float = 0.0
