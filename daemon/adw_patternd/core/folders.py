"""A workflow folder's state file name and its Snapshot: the cheap identity the engine takes
before a read and the daemon's sweep compares (two stat calls). Values only."""

from __future__ import annotations

from typing import NamedTuple

STATE_FILE = "adw_state.json"


class Snapshot(NamedTuple):
    """Cheap evidence that a dormant workflow is unchanged: the stat of its folder (which
    changes when a file is added, removed or renamed in it) and of its state file (which
    changes on an in-place rewrite). Two stat calls, where a fingerprint needs a listing.
    A NamedTuple: the sweep's hot loop reads it by index, people by name."""

    folder_ino: int
    folder_mtime_ns: int
    state_ino: int  # 0 (and size, mtime 0) when there is no state file
    state_size: int
    state_mtime_ns: int
