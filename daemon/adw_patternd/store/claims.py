"""Session claims: which ADW workflow a session of a Claude Code store belongs to (its
times are then that workflow's, and it is not a workflow of its own)."""

from __future__ import annotations

from .db import Db


def session_owner(db: Db, session_id: str) -> str | None:
    """The ADW workflow that claims a session of a store, if one does."""
    row = db.one("SELECT workflow_id FROM session_claims WHERE session_id = ? ORDER BY workflow_id LIMIT 1",
                 (session_id,))
    return row[0] if row else None


def claim(db: Db, workflow_id: str, sessions: tuple[str, ...]) -> bool:
    """Make the workflow's session claims exactly ``sessions``; whether they changed."""
    held = {r[0] for r in db.all("SELECT session_id FROM session_claims WHERE workflow_id = ?", (workflow_id,))}
    if held == set(sessions):
        return False
    db.execute("DELETE FROM session_claims WHERE workflow_id = ?", (workflow_id,))
    db.executemany("INSERT INTO session_claims (session_id, workflow_id) VALUES (?, ?)",
                   [(sid, workflow_id) for sid in sorted(set(sessions))])
    return True
