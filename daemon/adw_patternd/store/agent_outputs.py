"""agent_outputs rows: each transcript's read position and folded state, stored with its
workflow's change so that the next read starts where this one ended."""

from __future__ import annotations

from ..transcript import STORED_COLUMNS, StoredTranscript
from .db import Db


def store_transcripts(db: Db, workflow_id: str, transcripts: tuple[StoredTranscript, ...],
                      stored_names: set[str]) -> None:
    """Make the workflow's agent_outputs rows exactly ``transcripts`` (``stored_names``: the
    agent_name of the rows it has)."""
    names = {t.path for t in transcripts}
    stale = sorted(n for n in stored_names if n not in names)
    if stale:
        db.executemany("DELETE FROM agent_outputs WHERE workflow_id = ? AND agent_name = ?",
                       [(workflow_id, n) for n in stale])
    db.executemany(
        f"INSERT INTO agent_outputs (workflow_id, {', '.join(STORED_COLUMNS)}) "
        f"VALUES (?, {', '.join('?' for _ in STORED_COLUMNS)}) ON CONFLICT (workflow_id, agent_name) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in STORED_COLUMNS[1:]), [(workflow_id, *t) for t in transcripts])


def same_transcripts(db: Db, workflow_id: str, transcripts: tuple[StoredTranscript, ...]) -> bool:
    """Whether the stored rows say what ``transcripts`` say (read positions aside)."""
    stored = db.all(f"SELECT {', '.join(STORED_COLUMNS)} FROM agent_outputs WHERE workflow_id = ?", (workflow_id,))
    return sorted(StoredTranscript(*r).content() for r in stored) == sorted(t.content() for t in transcripts)
