"""OpenCode sessions: its SQLite database ``<data>/opencode*.db`` (default
``~/.local/share/opencode``), read in place, read-only, into the fold of agent_fold.py.

What the database says (../shared/docs/more-agents.md, section 4, and the real OpenCode
1.18.33 and 1.2.27 run against the scripted model, tests/agents/test_opencode_reader.py):

- One response = one ``step-finish`` part; its ``tokens`` are transformed: ``input`` excludes
  cache reads and writes, ``output`` excludes ``reasoning``. Its ``cost`` is OpenCode's own,
  from the model's price in the user's config or the models.dev catalog: a real price, used
  when not 0; a 0 (a model with no price there) is priced from our table instead.
- The session's totals, ``message.data.tokens`` and the ``event`` log repeat the steps: not read.
- A ``tool`` part named ``bash`` belongs to the step whose ``step-finish`` follows it in its
  message; ``state.metadata.exit`` is its exit code, ``state.time.end - start`` its wait.
- Rows are upserted: each read takes the parts whose ``time_updated`` is past the stored
  cursor (epoch ms). The WAL is usually not checkpointed (the main file alone has no
  tables): the database is opened in place with ``mode=ro``, never copied.
- Not in the database: the title request (the session title is its answer).

Sessions of versions before the database (JSON files under ``<data>/storage/``) are read by
opencode_storage.py: those no database holds (OpenCode 1.2 imports them with their ids).

A locked or half-written database is a transient problem (read again next time). The
database also holds credential and account tables: never selected.
"""

from __future__ import annotations

import glob
import json
import os
import sqlite3
from urllib.parse import quote

from ..core.errors import InputRejected
from . import agent_fold as af
from . import opencode_storage as storage
from .opencode_parts import message_events

AGENT = "opencode"
CONFIG_KEY = "opencode_data"
DESCRIBE = "an OpenCode data folder, such as ~/.local/share/opencode"
WATCH_RECURSIVE = False  # its folder holds the database beside snapshot/ (a git dir that churns) and log/
BUSY_MS = 200  # how long a read waits on a lock before calling it transient


def databases(root: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(glob.escape(root), "opencode*.db")) if os.path.isfile(p))


def connect(path: str) -> sqlite3.Connection:
    """A read-only connection to the database in place (following its -wal and -shm)."""
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=BUSY_MS / 1000, check_same_thread=False)
        con.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        con.execute("PRAGMA query_only = 1")
    except sqlite3.Error as e:
        raise InputRejected(path, f"cannot be opened read-only ({e})", transient=True) from None
    return con


def _query(path: str, sql: str, args=()) -> list[tuple]:
    con = connect(path)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []  # a database OpenCode has not made its tables in yet
        raise InputRejected(path, f"cannot be read now ({e})", transient=True) from None
    except sqlite3.DatabaseError as e:  # malformed: being written, or cut
        raise InputRejected(path, f"cannot be read now ({e})", transient=True) from None
    finally:
        con.close()


def list_sessions(root: str, problems: list[str]) -> dict[str, af.SessionRef]:
    refs = {}
    for path in databases(root):
        try:
            rows = _query(path, "SELECT id, parent_id FROM session")
        except InputRejected as e:
            problems.append(str(e))
            continue
        for sid, parent in rows:
            refs.setdefault(sid, af.SessionRef(sid, path, (path,), parent))
    refs.update(storage.list_sessions(root, refs))  # the older JSON sessions no database holds
    return refs


def watched_folders(root: str) -> tuple[str, ...]:
    # The database, its -wal and -shm sit in root (not recursive: snapshot/ churns); the older
    # JSON storage's sessions in a folder per project.
    return (root, *storage.watched_folders(root))


def session_of(root: str, changed_path: str) -> str | None:
    """The session most recently updated in the changed database (a database change names no
    session; the one being written is the newest), or the session of a changed storage file."""
    if _in_storage(root, changed_path):
        return storage.session_of(root, changed_path)
    name = os.path.basename(changed_path)
    for suffix in ("-wal", "-shm", "-journal"):
        name = name.removesuffix(suffix)
    if not (name.startswith("opencode") and name.endswith(".db")):
        return None
    try:
        rows = _query(os.path.join(os.path.dirname(changed_path), name),
                      "SELECT id FROM session ORDER BY time_updated DESC LIMIT 1")
    except InputRejected:
        return None
    return rows[0][0] if rows else None


def _in_storage(root: str, changed_path: str) -> bool:
    return os.path.abspath(changed_path).startswith(os.path.abspath(storage.storage_of(root)) + os.sep)


def _database_of(changed_path: str) -> str | None:
    name = os.path.basename(changed_path)
    for suffix in ("-wal", "-shm", "-journal"):
        name = name.removesuffix(suffix)
    if not (name.startswith("opencode") and name.endswith(".db")):
        return None
    return os.path.join(os.path.dirname(changed_path), name)


def sessions_changed(root: str, changed_path: str, mark):
    """The sessions of the changed database updated since ``mark`` (what the previous call
    returned: per database, the newest `time_updated` seen; None at first, when every session
    of the database is named: reading one unchanged since its stored cursor costs one query)."""
    marks = dict(mark or {})
    if _in_storage(root, changed_path):
        sid = storage.session_of(root, changed_path)
        return ({sid} if sid else set()), marks
    path = _database_of(changed_path)
    if path is None:
        return set(), marks
    try:
        rows = _query(path, "SELECT id, time_updated FROM session WHERE time_updated >= ?", (marks.get(path, 0),))
    except InputRejected:
        return set(), marks  # being written: the event that finishes the write comes next
    if rows:
        marks[path] = max(int(t or 0) for _sid, t in rows)
    return {sid for sid, _t in rows}, marks


def identity_files(ref: af.SessionRef) -> tuple[str, ...]:
    """The database and its write-ahead log: new rows sit in the -wal until a checkpoint
    (a storage session: its file and its messages' folder)."""
    if storage.is_storage(ref):
        return storage.identity_files(ref)
    wal = ref.path + "-wal"
    return (ref.path, wal) if os.path.exists(wal) else (ref.path,)


def _rows(path: str, sid: str, cursor: int):
    """The messages with parts updated past the cursor, each with all its parts."""
    touched = _query(path, "SELECT DISTINCT message_id FROM part WHERE session_id = ? AND time_updated > ?",
                     (sid, cursor))
    if not touched:
        return [], cursor
    ids = [t[0] for t in touched]
    marks = ",".join("?" * len(ids))
    messages = dict(_query(path, f"SELECT id, data FROM message WHERE id IN ({marks})", ids))
    parts = _query(path, f"SELECT message_id, id, time_updated, data FROM part WHERE message_id IN ({marks}) "
                         "ORDER BY message_id, id", ids)
    grouped: dict[str, list] = {}
    newest = cursor
    for mid, pid, updated, data in parts:
        try:
            part = json.loads(data)
        except (TypeError, ValueError):
            continue  # a row being written: its next update is read
        if isinstance(part, dict) and isinstance(updated, int):
            grouped.setdefault(mid, []).append((pid, updated, part))
            newest = max(newest, updated)
    out = []
    for mid in sorted(grouped):
        try:
            info = json.loads(messages.get(mid) or "{}")
        except ValueError:
            info = {}
        out.append((info if isinstance(info, dict) else {}, grouped[mid]))
    return out, newest


def read_session(ref: af.SessionRef, stored: str | None, ctx: af.ReadContext) -> af.SessionRead:
    if storage.is_storage(ref):
        return storage.read_session(ref, stored, ctx)
    state = af.from_json(stored)
    cursor = state.extra.get("cursor", 0) if state.extra.get("db") == ref.path else 0
    if cursor == 0:
        state = af.new_state()
    messages, newest = _rows(ref.path, ref.sid, cursor)
    for info, parts in messages:
        af.fold(state, message_events(info, parts, cursor), ctx)
    state.extra.update(db=ref.path, cursor=newest)
    st = os.stat(ref.path)
    stat = af.FileStat(ref.path, st.st_size, st.st_mtime_ns, st.st_ino)
    return af.SessionRead(af.to_workflow(ctx.root_name, ref.sid, AGENT, state, ctx.fresh), af.to_json(state), (stat,))
