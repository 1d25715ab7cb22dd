"""response_keys rows: the responses of session store files counted already, one row each,
written once (sources/response_keys.py says why). A read asks only for the message ids its
new lines hold; a change adds the keys it counted, in the transaction that stores it."""

from __future__ import annotations

from ..sources.response_keys import ResponseKeys
from .db import Db

_CHUNK = 500


def fetch_keys(db: Db, message_keys: list[int], left_out: tuple[int, ...]) -> list[tuple[int, int]]:
    """(message key, request key) of the counted responses with these message keys, but for
    those of the files in ``left_out`` (read again from their start)."""
    found = []
    for i in range(0, len(message_keys), _CHUNK):
        chunk = message_keys[i:i + _CHUNK]
        found += [(int(m), int(r)) for m, r, f in db.all(
            f"SELECT mkey, rkey, file FROM response_keys WHERE mkey IN ({', '.join('?' for _ in chunk)})", chunk)
            if int(f) not in left_out]
    return found


def store_keys(db: Db, counted: tuple[tuple[int, int, int], ...], reset: tuple[int, ...]) -> bool:
    """Record what a change counted. False, writing nothing, when another file counted one of
    these responses since the change was read (a concurrent reader, or an earlier change of
    the same batch): the change must be read again."""
    files = {f for f, _m, _r in counted} | set(reset)
    wanted = {(m, r) for _f, m, r in counted}
    mkeys = sorted({m for m, _r in wanted})
    for i in range(0, len(mkeys), _CHUNK):
        chunk = mkeys[i:i + _CHUNK]
        for m, r, f in db.all(f"SELECT mkey, rkey, file FROM response_keys WHERE mkey IN "
                              f"({', '.join('?' for _ in chunk)})", chunk):
            if (int(m), int(r)) in wanted and int(f) not in files:
                return False
    if reset:
        db.executemany("DELETE FROM response_keys WHERE file = ?", [(f,) for f in reset])
    if counted:
        db.executemany("INSERT INTO response_keys (mkey, rkey, file) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                       [(m, r, f) for f, m, r in counted])
    return True


def forget_files(db: Db, workflow_id: str, names) -> None:
    """Files of a workflow are gone (or the workflow is): what they counted may count elsewhere."""
    files = [(ResponseKeys(workflow_id).file_key(n),) for n in names]
    if files:
        db.executemany("DELETE FROM response_keys WHERE file = ?", files)
