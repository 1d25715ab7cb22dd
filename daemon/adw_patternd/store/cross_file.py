"""counted_events and counted_totals rows: what a session's reads counted that the reads of
other files need, in a home whose forks copy their parents' events (core/change.py:
CrossFileFacts). Each usage event key is held by the one session that counted it; each session's cumulative totals tell its forks which of their
leading events are copies. Rows are added with their session's change and removed with it
(or when it is read again from its start)."""

from __future__ import annotations

from .db import Db
from .rows import CrossFileFacts

_CHUNK = 500


class CrossFileReader:
    """What the reads of such a session ask the store (retried while it is busy)."""

    def __init__(self, db: Db):
        self.db = db

    def key_holder_of(self, key: str) -> str | None:
        """The workflow that counted a usage event, if one did."""
        return self.db.retrying(lambda: key_holder(self.db, key))

    def totals(self, session_id: str) -> frozenset:
        """The cumulative totals a session counted (for its forks' copies)."""
        return self.db.retrying(lambda: totals_of(self.db, session_id))


def key_holder(db: Db, key: str) -> str | None:
    row = db.one("SELECT workflow_id FROM counted_events WHERE event_key = ?", (key,))
    return row[0] if row else None


def totals_of(db: Db, session_id: str) -> frozenset:
    return frozenset(tuple(int(x) for x in r[0].split(",")) for r in db.all(
        "SELECT total FROM counted_totals WHERE session_id = ?", (session_id,)))


def store_cross_file(db: Db, workflow_id: str, facts: CrossFileFacts) -> bool:
    """Add what a session's read counted. False, writing nothing, when another session
    counted one of its events since the read (the read is then done again)."""
    keys = sorted(set(facts.keys))
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i:i + _CHUNK]
        if db.one(f"SELECT 1 FROM counted_events WHERE event_key IN ({', '.join('?' for _ in chunk)}) "
                  "AND workflow_id <> ?", (*chunk, workflow_id)):
            return False
    if facts.reset:
        db.execute("DELETE FROM counted_events WHERE workflow_id = ?", (workflow_id,))
        db.execute("DELETE FROM counted_totals WHERE workflow_id = ?", (workflow_id,))
    if keys:
        db.executemany("INSERT INTO counted_events (event_key, workflow_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       [(k, workflow_id) for k in keys])
    if facts.totals:
        db.executemany("INSERT INTO counted_totals (session_id, total, workflow_id) VALUES (?, ?, ?) "
                       "ON CONFLICT DO NOTHING", [(facts.session_id, t, workflow_id) for t in sorted(set(facts.totals))])
    return True
