"""pattern_mentions rows: the patterns a workflow's request, error or template names without
any agent doing them (not occurrences: no cost, not in the statistics), for `show`."""

from __future__ import annotations

from .batch import BatchWrites
from .db import Db


def store_mentions(db: Db, workflow_id: str, pattern_ids: list[int], writes: BatchWrites, *, replace: bool) -> None:
    """Make the workflow's mention rows exactly ``pattern_ids`` (``replace``: it had some before)."""
    if replace:
        db.execute("DELETE FROM pattern_mentions WHERE workflow_id = ?", (workflow_id,))
    writes.add("pattern_mentions", ("pattern_id", "workflow_id"), [(pid, workflow_id) for pid in pattern_ids])


def same_mentions(db: Db, workflow_id: str, pattern_ids: list[int]) -> bool:
    stored = sorted(int(r[0]) for r in db.all("SELECT pattern_id FROM pattern_mentions WHERE workflow_id = ?",
                                              (workflow_id,)))
    return stored == pattern_ids
