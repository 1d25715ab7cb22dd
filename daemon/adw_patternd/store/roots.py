"""What the store knows about each root: whether it holds workflows of it, and the root
folder's identity (device:inode) per host as of the last full pass (see ../roots.py)."""

from __future__ import annotations

from .db import Db
from .rows import now_text


def holds_workflows(db: Db, root_name: str) -> bool:
    return db.retrying(lambda: db.one(
        "SELECT 1 FROM workflow_history WHERE root_name = ? AND revision > 0 LIMIT 1", (root_name,))) is not None


def root_identity(db: Db, host: str, root_name: str) -> str | None:
    row = db.retrying(lambda: db.one("SELECT identity FROM root_identity WHERE host = ? AND root_name = ?",
                                     (host, root_name)))
    return row[0] if row else None


def record_root_identity(db: Db, host: str, root_name: str, identity: str) -> None:
    db.transaction(lambda: db.execute(
        "INSERT INTO root_identity (host, root_name, identity, recorded_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (host, root_name) DO UPDATE SET identity = excluded.identity, recorded_at = excluded.recorded_at",
        (host, root_name, identity, now_text())), what="root identity")
