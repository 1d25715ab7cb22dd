"""Gemini CLI sessions: ``~/.gemini/tmp/<project>/chats/session-*.jsonl`` (and the legacy
``session-*.json`` of older builds), read into the generic fold of agent_fold.py.

What the files say (../shared/docs/more-agents.md, section 2, and the real CLI 0.61 and 0.24
run against the scripted model, tests/agents/test_gemini_reader.py):

- .jsonl: a header line (``sessionId``), message lines (string ``id``), ``$set`` patches
  (``$set.messages`` replaces the whole list: copies of messages already seen) and
  ``$rewindTo`` (the conversation forgets messages; they were served, so they stay counted).
  A response is a ``type: "gemini"`` message with ``tokens``; it is written again with the
  same id once its tool calls are done: the last copy counts, once.
- .json (legacy, 0.24 and older): one object rewritten whole, ``messages`` in order. A
  session resumed by a newer CLI has a .jsonl copy: that copy is read, the .json not.
- ``tokens.input`` includes ``cached``; ``output`` excludes ``thoughts``. No cache writes.
- Shell calls: ``toolCalls[]`` named ``run_shell_command``; the exit code is in the output
  text (``Exit Code: N``, only when not 0 in 0.61); the wait is the call's timestamp minus
  its response's.
- Not on disk: the model router's request and the other utility calls. Nothing marks a
  session's end: a response without tool calls ends the turn (completed until the next).

Only the chats folders are opened: settings.json, oauth_creds.json and the rest of the
home hold credentials and are never read.
"""

from __future__ import annotations

import os
import re

from ..core.errors import InputRejected
from ..core.jsonline import loads
from . import agent_fold as af

AGENT = "gemini"
CONFIG_KEY = "gemini_homes"
DESCRIBE = "a Gemini CLI home, such as ~/.gemini"
SHELL_TOOL = "run_shell_command"
HEAD_BYTES = 4096
_SID = re.compile(rb'"sessionId"\s*:\s*"([^"]{1,200})"')
_EXIT = re.compile(r"^Exit Code: (-?\d+)", re.M)
_CONTEXT_PREFIX = "<session_context>"


def _chats_dirs(root: str, problems: list[str] | None = None) -> list[str]:
    tmp = os.path.join(root, "tmp")
    try:
        projects = sorted(os.listdir(tmp))
    except FileNotFoundError:
        return []
    except OSError as e:
        if problems is not None:
            problems.append(f"{tmp}: cannot be listed ({e.strerror or e})")
        return []
    return [d for d in (os.path.join(tmp, p, "chats") for p in projects) if os.path.isdir(d)]


def _head_sid(path: str) -> str | None:
    """The sessionId a chat file names near its start (a FIFO is refused, never waited on)."""
    try:
        fd = af.open_regular(path)
    except InputRejected:
        return None
    try:
        found = _SID.search(os.pread(fd, HEAD_BYTES, 0))
    finally:
        os.close(fd)
    return found.group(1).decode("utf-8", "replace") if found else None


def _session_files(chats: str, problems: list[str]):
    """(sid, path, kind) for each chat file in one chats folder: main .jsonl/.json files,
    and sub-agents' ``<parent sid>/<id>.jsonl`` (kind "sub", sid = the parent's)."""
    try:
        names = sorted(os.listdir(chats))
    except OSError as e:
        problems.append(f"{chats}: cannot be listed ({e.strerror or e})")
        return
    for name in names:
        path = os.path.join(chats, name)
        if name.startswith("session-") and name.endswith((".jsonl", ".json")):
            sid = _head_sid(path)
            if sid:
                yield sid, path, "jsonl" if name.endswith(".jsonl") else "json"
        elif os.path.isdir(path):
            try:
                subs = sorted(os.listdir(path))
            except OSError:
                continue
            yield from ((name, os.path.join(path, s), "sub") for s in subs if s.endswith(".jsonl"))


def list_sessions(root: str, problems: list[str]) -> dict[str, af.SessionRef]:
    found: dict[str, dict[str, list[str]]] = {}
    for chats in _chats_dirs(root, problems):
        for sid, path, kind in _session_files(chats, problems):
            found.setdefault(sid, {"jsonl": [], "json": [], "sub": []})[kind].append(path)
    refs = {}
    for sid, kinds in found.items():
        # A legacy .json resumed by a newer CLI has a .jsonl copy of it: read the copy only.
        mains = kinds["jsonl"] or kinds["json"]
        if not mains:
            continue  # sub-agents whose parent's file is gone: nothing names their session
        refs[sid] = af.SessionRef(sid, mains[0], tuple(mains + kinds["sub"]))
    return refs


def watched_folders(root: str) -> tuple[str, ...]:
    # tmp/ is watched whole (recursively) so a new project's chats folder is seen too.
    return (os.path.join(root, "tmp"),)


def session_of(root: str, changed_path: str) -> str | None:
    rel = os.path.relpath(changed_path, os.path.join(root, "tmp")).split(os.sep)
    if len(rel) < 3 or rel[0] == ".." or rel[1] != "chats":
        return None
    if len(rel) == 4 and rel[3].endswith(".jsonl"):
        return rel[2]  # chats/<parent sid>/<sub-agent>.jsonl
    if len(rel) == 3 and rel[2].startswith("session-") and rel[2].endswith((".jsonl", ".json")):
        return _head_sid(changed_path)
    return None


# ---------------------------------------------------------------------------------------
# records -> events

def _text(content) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(texts) if texts else None
    return None


def _int(v) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _usage(tokens: dict) -> af.Usage:
    prompt, cached = _int(tokens.get("input")), _int(tokens.get("cached"))
    return (max(prompt - cached, 0), _int(tokens.get("output")) + _int(tokens.get("thoughts")), 0, min(cached, prompt))


def _output_text(call: dict) -> str:
    texts = []
    for r in call.get("result") or ():
        resp = ((r or {}).get("functionResponse") or {}).get("response") if isinstance(r, dict) else None
        if isinstance(resp, dict):
            texts.extend(v for v in (resp.get("output"), resp.get("error")) if isinstance(v, str))
    return "\n".join(texts)


def _exit_code(call: dict) -> int | None:
    """From the output text: ``Exit Code: N``; none means 0 for a call that ran to its end
    (0.61 writes the line only when not 0); cancelled or backgrounded calls have none."""
    status, text = call.get("status"), _output_text(call)
    found = _EXIT.search(text)
    if found:
        return int(found.group(1))
    if status != "success" or "moved to background" in text:
        return None
    return 0


def _call_pairs(msg: dict) -> tuple:
    calls = []
    for n, call in enumerate(c for c in msg.get("toolCalls") or () if isinstance(c, dict)):
        args = call.get("args") if isinstance(call.get("args"), dict) else {}
        command = args.get("command") if call.get("name") == SHELL_TOOL else None
        calls.append((str(call.get("id") or f"{msg.get('id')}#{n}"), command if isinstance(command, str) else None))
    return tuple(calls)


def message_events(msg: dict, state: af.FoldState):
    """The events of one message (a line, or an entry of ``$set.messages``/legacy ``messages``)."""
    kind, ts = msg.get("type"), msg.get("timestamp")
    if kind == "user":
        text = _text(msg.get("content"))
        if text and not text.startswith(_CONTEXT_PREFIX):
            yield af.Prompt(text, ts)
        return
    if kind != "gemini" or not isinstance(msg.get("tokens"), dict):
        return
    rid = str(msg.get("id"))
    ms = af.epoch_ms(ts)
    newest = state.extra.get("newest_ms")
    if rid not in state.open and rid in state.recent:
        return
    if rid not in state.open and ms is not None and newest is not None and ms < newest:
        return  # a copy of a response closed long ago (``$set.messages``, a resume's replay)
    if ms is not None:
        state.extra["newest_ms"] = ms if newest is None else max(newest, ms)
    calls = _call_pairs(msg)
    yield af.Response(rid, msg.get("model") if isinstance(msg.get("model"), str) else None,
                      _usage(msg["tokens"]), ts, calls)
    for call in msg.get("toolCalls") or ():
        if isinstance(call, dict) and call.get("name") == SHELL_TOOL and call.get("status") in (
                "success", "error", "cancelled"):
            yield af.CallEnd(str(call.get("id")), call.get("timestamp"), _exit_code(call))
    if not calls and _text(msg.get("content")):
        # The turn's answer: the agent waits for the user. A response with neither text nor
        # calls is not one: Gemini CLI 0.61 writes a response before its calls (they come
        # with the same id once they end), so a session killed in a call ends on it.
        yield af.Ended(ts)


def line_events(obj: dict, state: af.FoldState):
    if isinstance(obj.get("id"), str):
        yield from message_events(obj, state)
    elif isinstance(obj.get("$set"), dict) and isinstance(obj["$set"].get("messages"), list):
        for msg in obj["$set"]["messages"]:
            if isinstance(msg, dict):
                yield from message_events(msg, state)
    # the header, other $set patches, $rewindTo and unknown records carry no spend


# ---------------------------------------------------------------------------------------
# reading

def _read_jsonl(path: str, state: af.FoldState, ctx: af.ReadContext) -> tuple[af.FileStat, bool]:
    """Fold the lines ``path`` gained; True when its head changed (read again whole)."""
    with af.JsonlReader(path, state.files.get(path), ctx.notes) as reader:
        if reader.whole:
            return reader.stat, True
        for obj in reader:
            af.fold(state, line_events(obj, state), ctx)
        state.files[path] = reader.cursor
        return reader.stat, False


def _read_legacy(path: str, state: af.FoldState, ctx: af.ReadContext) -> af.FileStat:
    fd = af.open_regular(path)
    try:
        st = os.fstat(fd)
        raw = os.pread(fd, st.st_size, 0)
    finally:
        os.close(fd)
    try:
        doc = loads(raw)
    except (ValueError, RecursionError):
        raise InputRejected(path, "is not complete JSON (being written?)", transient=True) from None
    for msg in doc.get("messages") or () if isinstance(doc, dict) else ():
        if isinstance(msg, dict):
            af.fold(state, message_events(msg, state), ctx)
    state.files[path] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return af.FileStat(path, st.st_size, st.st_mtime_ns, st.st_ino)


def _legacy_changed(path: str, cursor) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return True
    return cursor != [st.st_size, st.st_mtime_ns, st.st_ino]


def _read_all(ref: af.SessionRef, state: af.FoldState, ctx: af.ReadContext):
    stats = []
    for path in ref.files:
        if path.endswith(".json"):
            stats.append(_read_legacy(path, state, ctx))
            continue
        stat, whole = _read_jsonl(path, state, ctx)
        if whole:
            return None
        stats.append(stat)
    return tuple(stats)


def read_session(ref: af.SessionRef, stored: str | None, ctx: af.ReadContext) -> af.SessionRead:
    state = af.from_json(stored)
    legacy = [p for p in ref.files if p.endswith(".json")]
    if legacy and state.files and not any(_legacy_changed(p, state.files.get(p)) for p in legacy):
        stats = tuple(af.FileStat(p, *state.files[p][:3]) for p in legacy)
        return af.SessionRead(af.to_workflow(ctx.root_name, ref.sid, AGENT, state, ctx.fresh), stored or "", stats)
    if legacy:  # rewritten whole by the CLI: the session is read again from nothing
        state = af.new_state()
    stats = _read_all(ref, state, ctx)
    if stats is None:  # a file's head changed: another file in its place
        state = af.new_state()
        stats = _read_all(ref, state, ctx)
    return af.SessionRead(af.to_workflow(ctx.root_name, ref.sid, AGENT, state, ctx.fresh),
                          af.to_json(state), stats)
