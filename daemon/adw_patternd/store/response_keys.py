"""response_keys rows: the responses of session store files counted already, one row each,
written once (sources/response_keys.py says why and which copy counts); response_files:
the workflow and first entry of each file that holds some. A read asks only for the message
ids its new lines hold; a change adds what it counted in the transaction that stores it."""

from __future__ import annotations

from ..core.response_rank import Held, beaten_by, file_key
from .cross_file import store_cross_file
from .db import Db
from .rows import Change

_CHUNK = 500


def fetch_keys(db: Db, message_keys: list[int], left_out: tuple[int, ...]) -> list[Held]:
    """The counted copies with these message keys, but for those of the files in
    ``left_out`` (read again from their start)."""
    found = []
    for i in range(0, len(message_keys), _CHUNK):
        chunk = message_keys[i:i + _CHUNK]
        rows = db.all("SELECT k.mkey, k.rkey, k.side, k.at_ms, f.first_ms, f.workflow_id, k.file FROM response_keys k "
                      f"JOIN response_files f ON f.file = k.file WHERE k.mkey IN ({', '.join('?' for _ in chunk)})",
                      chunk)
        found += [Held(int(m), int(r), int(side), int(at), int(first), wid, int(f))
                  for m, r, side, at, first, wid, f in rows if int(f) not in left_out]
    return found


def store_keys(db: Db, change: Change) -> tuple[str, ...] | None:
    """Record what a change's session files counted, taking over the copies it ranks before.
    Returns the workflows whose copies it took (to be read again), or None, writing nothing,
    when a copy stored since the change was read keeps one of its responses: read it again."""
    workflow_id, counted, reset = change.workflow.workflow_id, change.keys_counted, change.keys_reset
    if change.cross_file is not None and not store_cross_file(db, workflow_id, change.cross_file):
        return None
    if not counted and not reset:
        return ()
    current: dict[int, list[Held]] = {}
    for h in fetch_keys(db, sorted({h.mkey for h in counted}), reset):
        current.setdefault(h.mkey, []).append(h)
    taken: list[Held] = []
    for h in counted:
        beaten = beaten_by(h, [c for c in current.get(h.mkey, ()) if c not in taken])
        if beaten is None:
            return None
        taken += beaten
    if reset:
        db.executemany("DELETE FROM response_keys WHERE file = ?", [(f,) for f in reset])
    if taken:
        db.executemany("DELETE FROM response_keys WHERE mkey = ? AND rkey = ?", [(h.mkey, h.rkey) for h in taken])
    if counted:
        db.executemany("INSERT INTO response_keys (mkey, rkey, file, side, at_ms) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT DO NOTHING", [(h.mkey, h.rkey, h.file, h.side, h.at_ms) for h in counted])
        db.executemany("INSERT INTO response_files (file, workflow_id, first_ms) VALUES (?, ?, ?) "
                       "ON CONFLICT (file) DO UPDATE SET first_ms = excluded.first_ms",
                       sorted({(h.file, workflow_id, change.keys_first_ms) for h in counted}))
    return tuple(sorted({h.workflow_id for h in taken}))


def read_again(db: Db, workflow_ids) -> None:
    """Workflows that lost a response to a copy ranked before theirs: each is read again
    from its files' start (no file identity), its stored state kept until then."""
    for wid in workflow_ids:
        db.execute("UPDATE agent_outputs SET device = 0, inode = 0 WHERE workflow_id = ?", (wid,))
        db.execute("UPDATE workflow_history SET fingerprint = NULL WHERE workflow_id = ?", (wid,))


def forget_files(db: Db, workflow_id: str, names) -> None:
    """Files of a workflow are gone (or the workflow is): what they counted may count elsewhere."""
    files = [(file_key(workflow_id, n),) for n in names]
    if files:
        db.executemany("DELETE FROM response_keys WHERE file = ?", files)
        db.executemany("DELETE FROM response_files WHERE file = ?", files)
