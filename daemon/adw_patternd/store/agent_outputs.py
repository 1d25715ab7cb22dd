"""agent_outputs rows: each transcript's read position and folded state, stored with its
workflow's change so that the next read starts where this one ended."""

from __future__ import annotations

from ..core.stored import STORED_COLUMNS, StoredTranscript
from .batch import BatchWrites
from .db import Db
from .response_keys import forget_files


def store_transcripts(db: Db, workflow_id: str, transcripts: tuple[StoredTranscript, ...],
                      stored_names: set[str], writes: BatchWrites) -> None:
    """Make the workflow's agent_outputs rows exactly ``transcripts`` (``stored_names``: the
    agent_name of the rows it has)."""
    names = {t.path for t in transcripts}
    stale = sorted(n for n in stored_names if n not in names)
    if stale:
        forget_files(db, workflow_id, stale)
        db.executemany("DELETE FROM agent_outputs WHERE workflow_id = ? AND agent_name = ?",
                       [(workflow_id, n) for n in stale])
    last = {t.path: t for t in transcripts}  # one row a name (a statement of many rows may not upsert one twice)
    writes.add("agent_outputs", ("workflow_id", *STORED_COLUMNS),
               [(workflow_id, *t) for t in last.values()],
               "ON CONFLICT (workflow_id, agent_name) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in STORED_COLUMNS[1:]))


def same_transcripts(db: Db, workflow_id: str, transcripts: tuple[StoredTranscript, ...]) -> bool:
    """Whether the stored rows say what ``transcripts`` say (read positions aside)."""
    stored = db.all(f"SELECT {', '.join(STORED_COLUMNS)} FROM agent_outputs WHERE workflow_id = ?", (workflow_id,))
    return sorted(StoredTranscript(*r).content() for r in stored) == sorted(t.content() for t in transcripts)
