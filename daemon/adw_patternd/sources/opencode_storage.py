"""OpenCode's older sessions: the JSON files of ``<data>/storage/`` that versions before the
SQLite database wrote (1.1.65 and earlier), read in place into the fold of agent_fold.py.

What a real OpenCode 1.1.65 wrote against the scripted model (tests/agents/test_opencode_storage.py):

- ``storage/session/<projectID>/<sessionID>.json``: the session (``id``, ``projectID``,
  ``parentID`` for a child session, ``title``, ``version``, ``time.created/updated``); it is
  written again at each step's end (its ``summary``).
- ``storage/message/<sessionID>/<messageID>.json``: a message's ``info`` with its ``id`` and
  ``sessionID`` inside (the database's ``message.data`` without them): ``role``, ``modelID``,
  ``time.created`` and, once the assistant message is done, ``time.completed``.
- ``storage/part/<messageID>/<partID>.json``: a part (``id``, ``sessionID``, ``messageID`` inside)
  as the database's ``part.data``: ``step-finish`` with ``tokens`` and ``cost``, ``tool`` with
  ``state``. No ``time_updated``: a part file says nothing of when it last changed.
- Ids are ascending in time (``msg_``/``prt_`` then a hex time), so file names sort in order.
- 1.1.65's ``tokens.output`` includes ``reasoning`` (total = input + output + cache), and its
  ``cost`` prices the reasoning twice, as 1.2.27's does: priced from our table instead.
- OpenCode 1.2 imports the storage into its database at its first start, keeping the
  session, message and part ids, and leaves storage/ in place: a session the database holds
  is read from the database only (opencode.py lists it first).

The state keeps ``done``, the id of the last message counted whole (it and all before it are
complete: never read again), and ``pending``, the part ids counted of each later message (the
one being written). A message is complete when a later one exists or, an assistant's, when it
has ``time.completed``.
"""

from __future__ import annotations

import glob
import json
import os

from ..core.errors import InputRejected
from . import agent_fold as af
from .opencode_parts import part_events

STORAGE = "storage"
AGENT = "opencode"
MAX_FILE_BYTES = 64 * 1024 * 1024  # a part holds a tool's whole output; a bigger file is not a part
COUNTED_TYPES = ("text", "step-finish")  # the parts that are events (prompts, responses)


def storage_of(root: str) -> str:
    return os.path.join(root, STORAGE)


def _load(path: str) -> dict | None:
    """A JSON object file, or None (missing, being written, not an object, not a regular file)."""
    try:
        fd = af.open_regular(path)
    except InputRejected:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES:
        return None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _json_names(folder: str) -> list[str]:
    """The ids of a folder's ``<id>.json`` files, in id order."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n[:-5] for n in names if n.endswith(".json") and not n.startswith("."))


def session_files(root: str) -> list[str]:
    pattern = os.path.join(glob.escape(storage_of(root)), "session", "*", "*.json")
    return sorted(p for p in glob.glob(pattern) if os.path.isfile(p))


def message_folder(ref: af.SessionRef) -> str:
    storage = os.path.dirname(os.path.dirname(os.path.dirname(ref.path)))
    return os.path.join(storage, "message", ref.sid)


def list_sessions(root: str, held: dict) -> dict[str, af.SessionRef]:
    """The storage's sessions that ``held`` (the databases' sessions) lacks."""
    refs = {}
    for path in session_files(root):
        sid = os.path.basename(path)[:-5]
        if sid in held or sid in refs:
            continue
        doc = _load(path) or {}
        parent = doc.get("parentID") if isinstance(doc.get("parentID"), str) else None
        refs[sid] = af.SessionRef(sid, path, (path,), parent)
    return refs


def is_storage(ref: af.SessionRef) -> bool:
    return ref.path.endswith(".json")


def watched_folders(root: str) -> tuple[str, ...]:
    """Each project's session folder (not recursive): a session's file there is written again
    at each step's end. A project folder made after the watch began is not watched: its
    sessions are found at the next listing (the daemon's reconcile)."""
    base = os.path.join(storage_of(root), "session")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return ()
    return tuple(os.path.join(base, n) for n in names if os.path.isdir(os.path.join(base, n)))


def session_of(root: str, changed_path: str) -> str | None:
    """The session a changed file under storage/ belongs to (a part file names it inside)."""
    rel = os.path.relpath(changed_path, storage_of(root))
    if rel.startswith(".."):
        return None
    parts = rel.split(os.sep)
    if len(parts) == 3 and parts[0] == "session" and parts[2].endswith(".json"):
        return parts[2][:-5]
    if len(parts) >= 2 and parts[0] == "message":
        return parts[1]
    if len(parts) == 3 and parts[0] == "part":
        sid = (_load(changed_path) or {}).get("sessionID")
        return sid if isinstance(sid, str) else None
    return None


def identity_files(ref: af.SessionRef) -> tuple[str, ...]:
    """The session's file (written at each step's end) and its messages' folder (a new message)."""
    return (ref.path, message_folder(ref))


def _parts(storage: str, mid: str) -> list[tuple[str, dict]]:
    folder = os.path.join(storage, "part", mid)
    got = []
    for pid in _json_names(folder):
        part = _load(os.path.join(folder, pid + ".json"))
        if part is not None:  # one being written is read next time (its message is not complete)
            got.append((pid, part))
    return got


def _complete(info: dict, last: bool) -> bool:
    times = info.get("time") if isinstance(info.get("time"), dict) else {}
    return not last or (info.get("role") == "assistant" and times.get("completed") is not None)


def _fold_messages(state: af.FoldState, ref: af.SessionRef, ctx: af.ReadContext) -> None:
    """Fold the messages after ``done``: the new parts of each; advance ``done`` over the
    complete ones, keeping the counted part ids of the rest in ``pending``."""
    done = state.extra.get("done", "")
    pending = dict(state.extra.get("pending", {}))
    folder = message_folder(ref)
    storage = os.path.dirname(os.path.dirname(folder))
    # The folder's names are listed whole at each read (no file says which messages are new);
    # only those after ``done`` are opened, so an append costs one listing, not a re-read.
    mids = [m for m in _json_names(folder) if m > done]
    advancing = True
    for i, mid in enumerate(mids):
        info = _load(os.path.join(folder, mid + ".json"))
        if info is None:
            break  # being written: it and the later ones are read next time
        counted = set(pending.get(mid, ()))
        times = info.get("time") if isinstance(info.get("time"), dict) else {}
        when = times.get("completed") or times.get("created")
        parts = [(pid, when, part, pid not in counted) for pid, part in _parts(storage, mid)]
        af.fold(state, part_events(info, parts), ctx)
        counted |= {pid for pid, _w, part, _n in parts if part.get("type") in COUNTED_TYPES}
        if advancing and _complete(info, i == len(mids) - 1):
            done = mid
            pending.pop(mid, None)
        else:
            advancing = False
            pending[mid] = sorted(counted)
    state.extra.update(storage=ref.path, done=done, pending=pending)


def read_session(ref: af.SessionRef, stored: str | None, ctx: af.ReadContext) -> af.SessionRead:
    state = af.from_json(stored)
    if state.extra.get("storage") != ref.path:
        state = af.new_state()  # first read, or read before from another form
    _fold_messages(state, ref, ctx)
    try:
        st = os.stat(ref.path)
    except OSError as e:
        raise InputRejected(ref.path, f"cannot be read ({e.strerror or e})", transient=True) from None
    stat = af.FileStat(ref.path, st.st_size, st.st_mtime_ns, st.st_ino)
    return af.SessionRead(af.to_workflow(ctx.root_name, ref.sid, AGENT, state, ctx.fresh), af.to_json(state), (stat,))
