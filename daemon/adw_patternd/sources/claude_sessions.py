"""Claude Code's session store (../shared/docs/claude-session-store.md): what a session
file adds to the transcript fold, and where the session files are.

A session file is folded by transcript.py like a stream-json transcript whose run never
ends (no result line: its spend is its usage, priced), with a side conversation's replay of
its parent's message dropped. This module adds what only session files have: the first and
last timestamps, the first user message (the prompt) and the working folder. Pure, apart
from `SessionIndex.build`, which lists the store.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, replace

from ..core.commands import BUILTIN_COMMAND_RULES, CommandRule
from ..core.waits import Waits
from ..core.errors import InputRejected
from ..core.jsonline import INVALID, DecodedLines
from .parse import first_line, parse_time
from .response_keys import ResponseKeys
from .transcript import AGENT_FILE, Transcript, find_ids, scan_chunk

log = logging.getLogger("adw_patternd")

_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"([^"\\]{1,64})"')
PROMPT_MAX = 500  # characters of the prompt's first line kept as a request
PROMPT_LINES_TRIED = 8  # user lines parsed looking for the prompt, per read: not every tool result
# A worktree of an ADW workflow: <repo>/trees/<adw_id>, as a project folder name
WORKTREE_PROJECT = re.compile(r"-trees-([A-Za-z0-9]+)$")


_JOINED = re.compile(r"(?:^|\|)@[^/|]*/([^/|:]+)\.jsonl:")


def joined_in(fingerprint: str | None) -> tuple[str, ...]:
    """The session ids a stored fingerprint names (@<store>/<sid>.jsonl tokens): the files
    to stat again before deciding that a workflow is unchanged."""
    return tuple(_JOINED.findall(fingerprint)) if fingerprint and "@" in fingerprint else ()


def named_sessions(transcripts) -> set[str]:
    """The session ids an ADW workflow's transcripts name: each run's, the open run's and
    the first line's."""
    named = set()
    for t in transcripts:
        named.update(r.session_id for r in t.overwritten + t.runs if r.session_id)
        named.update(x for x in (t.session_id, t.head) if x)
    return {s for s in named if _PLAIN_SID.fullmatch(s)}


_PLAIN_SID = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def _timestamp(raw: bytes, notes: list[str], where: str) -> str:
    """The timestamp at the start of ``raw`` when it parses, else "" (with a note)."""
    m = _TIMESTAMP.match(raw)
    if not m:
        return ""
    text = m.group(1).decode("utf-8", "replace")
    if parse_time(text, [], "timestamp") is None:
        notes.append(f"{where}: timestamp {text[:40]!r} does not parse (ignored)")
        return ""
    return text


def first_timestamp(path: str) -> str:
    """The first timestamp in a session file's first 64 KiB ("" if none, or unreadable):
    the session's rank among sessions holding a copy of one response (response_keys.py)."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return ""
    m = _TIMESTAMP.search(head)
    return m.group(1).decode("utf-8", "replace") if m else ""


_SESSION_ID = re.compile(rb'"sessionId"\s*:\s*"([A-Za-z0-9_.-]{1,200})"')
_AGENT_SESSIONS: dict[tuple[str, int], str] = {}  # (path, inode) -> its session: written once, never changed


def agent_session(path: str) -> str | None:
    """The session a project-level agent-<id>.jsonl belongs to: the sessionId of its first
    entries (None while none is written, or unreadable)."""
    try:
        with open(path, "rb") as f:
            key = (path, os.fstat(f.fileno()).st_ino)
            known = _AGENT_SESSIONS.get(key)
            if known is not None:
                return known
            head = f.read(65536)
    except OSError:
        return None
    m = _SESSION_ID.search(head)
    if not m:
        return None
    if len(_AGENT_SESSIONS) >= 100_000:
        _AGENT_SESSIONS.clear()
    sid = _AGENT_SESSIONS[key] = m.group(1).decode()
    return sid


def parent_of_agent_file(project: str, name: str) -> str | None:
    """The session whose sub-agent a project-level file ``name`` holds (its session's own file
    may be gone: the session is then its sub-agents' files); None for any other file."""
    if not AGENT_FILE.fullmatch(name):
        return None
    sid = agent_session(f"{project}/{name}")
    return sid if sid and sid != name[:-6] and _PLAIN_SID.fullmatch(sid) else None


def prompt_of(entry: dict) -> str | None:
    """The text a person (or an ADW) typed, from a user entry; None for a tool result."""
    if entry.get("type") != "user" or entry.get("isSidechain") is True:
        return None
    msg = entry.get("message")
    content = msg.get("content") if isinstance(msg, dict) else None
    if isinstance(content, str):
        line = first_line(content)
        return line[:PROMPT_MAX] if line else None
    if isinstance(content, list):
        if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return None
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                line = first_line(block["text"])
                if line:
                    return line[:PROMPT_MAX]
    return None


def fold_chunk(t: Transcript, chunk, start: int, prices, notes: list[str], where: str,
               rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES, keys: ResponseKeys | None = None) -> Transcript:
    """Fold the complete lines of ``chunk`` (the file's bytes from ``start``) into ``t`` in
    one pass: the transcript scan, then a session file's facts, sharing the lines decoded.
    ``keys``: the session store's counted responses (response_keys.py)."""
    decoded = DecodedLines(chunk)
    calls: dict[str, tuple[str, ...]] = {}
    t, end = scan_chunk(t, chunk, start, prices, notes, where, rules, decoded, keys, calls)
    return fold_facts(t, chunk, start, end - start, notes, where, decoded, calls)


def fold_facts(t: Transcript, chunk, start: int, length: int, notes: list[str], where: str,
               decoded: DecodedLines | None = None, calls: dict | None = None) -> Transcript:
    """Add the facts of ``chunk[:length]`` (complete lines just folded, from byte ``start``
    of the file) to a session value. A file whose first line is not JSON is not a session
    file: InputRejected (it keeps what was stored for it). ``decoded``: the lines the
    transcript scan decoded already (none is decoded twice)."""
    if length <= 0 or not t.session:
        return t
    decoded = decoded or DecodedLines(chunk)
    if start == 0 and decoded.at(0)[0] is INVALID:
        raise InputRejected(where, "not a Claude Code session file: its first line is not JSON")
    facts: dict = {}
    if not t.first_ts:
        for hit in _hits(chunk, b'"timestamp"', 0, length):
            facts["first_ts"] = _timestamp(bytes(chunk[hit:hit + 100]), notes, where)
            if facts["first_ts"]:
                break
    last = chunk.rfind(b'"timestamp"', 0, length)
    while last >= 0:
        ts = _timestamp(bytes(chunk[last:last + 100]), [], where)
        if ts:
            facts["last_ts"] = ts
            break
        last = chunk.rfind(b'"timestamp"', 0, last)
    ended = turn_ended(decoded, length, t.agent == "session")
    if ended is not None and ended != t.ended:
        facts["ended"] = ended
    if t.prompt is None:
        tried = 0
        for hit in _hits(chunk, b'"user"', 0, length):
            entry = decoded.at(chunk.rfind(b"\n", 0, hit) + 1)[0]
            if not isinstance(entry, dict) or entry.get("type") != "user":
                continue
            prompt = prompt_of(entry)
            if prompt:
                facts["prompt"] = prompt
                if isinstance(entry.get("cwd"), str):
                    facts["cwd"] = entry["cwd"]
                break
            tried += 1
            if tried >= PROMPT_LINES_TRIED:
                break
    waits = _wall_times(t, chunk, length, calls or {})
    if waits is not None:
        facts["waiting"], facts["waits"] = waits
    return replace(t, **facts) if facts else t


_TOOL_USE_ID = re.compile(rb'"tool_use_id"\s*:\s*"([A-Za-z0-9_.:-]{1,200})"')
NO_WAITS = Waits()
MAX_WAIT_MS = 86_400_000  # a call waiting longer than a day is a session left open, not a wait


def _epoch_ms(line: bytes) -> int | None:
    m = _TIMESTAMP.search(line)
    when = parse_time(m.group(1).decode("utf-8", "replace"), [], "") if m else None
    return round(when.timestamp() * 1000) if when else None


def _wall_times(t: Transcript, chunk, length: int, calls: dict):
    """(waiting, waits) after this chunk, or None when nothing changed. A Bash call waits
    from its entry's timestamp to that of the next entry with its tool_result. Calls and
    results are taken in file order, one byte search each, so that a file read whole and
    read in appends give the same waits. ``calls``: this chunk's Bash calls (tool id ->
    signatures); the calls still waiting carry theirs (``t.waiting``: id -> [ms, signatures])."""
    if not calls and not t.waiting:
        return None
    events = [(pos, 0, tid.decode()) for pos, tid in find_ids(chunk, 0, length) if tid.decode() in calls]
    events += [(pos, 1, tid.decode()) for pos in _hits(chunk, b'"tool_use_id"', 0, length)
               for tid in _TOOL_USE_ID.findall(_line_at(chunk, pos))]
    if not events:
        return None
    waiting = dict(t.waiting)
    waits = dict(t.waits)
    for pos, is_result, tid in sorted(events):
        when = _epoch_ms(_line_at(chunk, pos))
        if not is_result:
            if when is not None:
                waiting[tid] = [when, list(calls[tid])]
            continue
        called = waiting.pop(tid, None)
        if called is not None and when is not None and 0 <= when - called[0] <= MAX_WAIT_MS:
            for sig in called[1]:
                waits[sig] = waits.get(sig, NO_WAITS).add(when - called[0])
    return dict(sorted(waiting.items())), dict(sorted(waits.items()))


def _line_at(chunk, pos: int) -> bytes:
    return bytes(chunk[chunk.rfind(b"\n", 0, pos) + 1:chunk.find(b"\n", pos)])


def _hits(chunk, token: bytes, first: int, last: int):
    """The start of each line holding ``token`` in chunk[first:last], once per line."""
    pos = first
    while (hit := chunk.find(token, pos, last)) >= 0:
        yield hit
        end = chunk.find(b"\n", hit)
        if end < 0:
            return
        pos = end + 1


# Entries that say where a session's turn stands, found by byte search (a token in quotes is
# always real JSON), read from the last one back until one of them does.
_TURN_TOKENS = (b'"assistant"', b'"user"', b'"cost-state"')
# User entries that are no turn of the conversation: a local command (/cost, /exit) and its output
_LOCAL_COMMAND = ("<command-name>", "<command-message>", "<command-args>", "<local-command-")


def turn_ended(decoded: DecodedLines, length: int, main: bool) -> bool | None:
    """Whether the session's turn had ended at the last entry of chunk[:length] that says so
    (None: no entry of the chunk does; what an earlier read found stands). A turn ends with
    an assistant entry whose stop_reason is end_turn, or with Claude Code's cost-state (written
    as a run ends); a prompt, a tool result or any other response reopens it (a resumed
    session appends to its file). In a session's own file (``main``) a side conversation's
    entries say nothing about the session's turn. The last such entry of a file read whole is
    that of its last chunk that has one: the same answer read whole or in appends."""
    chunk, end = decoded.chunk, length
    while end > 0:
        hit = max(chunk.rfind(token, 0, end) for token in _TURN_TOKENS)
        if hit < 0:
            return None
        line_start = chunk.rfind(b"\n", 0, hit) + 1
        said = _turn_said(decoded.at(line_start, chunk.find(b"\n", hit))[0], main)
        if said is not None:
            return said
        end = line_start
    return None


def _turn_said(entry, main: bool) -> bool | None:
    """True: this entry ends a turn; False: a turn goes on after it; None: it says neither."""
    if not isinstance(entry, dict):
        return None
    kind = entry.get("type")
    if kind == "cost-state":
        return True
    msg = entry.get("message")
    if kind not in ("user", "assistant") or not isinstance(msg, dict) or (main and entry.get("isSidechain") is True):
        return None
    if kind == "assistant":
        return msg.get("stop_reason") == "end_turn" or _final_text_of_a_2_0_build(entry, msg)
    content = msg.get("content")
    if entry.get("isMeta") is True or (isinstance(content, str) and content.lstrip().startswith(_LOCAL_COMMAND)):
        return None
    return False


def _final_text_of_a_2_0_build(entry: dict, msg: dict) -> bool:
    """A text answer that Claude Code before 2.1 wrote without its stop reason. Those builds
    write a response's entry as each content block ends, copying the message as the API
    client has it then; the stop reason comes after the last block (message_delta), so it is
    in the entry only when that event had already arrived. Measured on 2.0.65 under load:
    a run that ended normally, its file's last entry its answer with `stop_reason: null`.
    (2.1.x sets the stop reason on its last entry when it arrives, and writes a cost-state.)
    A text-only entry with no stop reason is then the answer that ended the turn: a response
    with a tool call writes the call's entry after it, which says the turn goes on."""
    if msg.get("stop_reason") is not None or not str(entry.get("version", "")).startswith(("1.", "2.0.")):
        return False
    content = msg.get("content")
    return (isinstance(content, list) and bool(content)
            and all(isinstance(b, dict) and b.get("type") == "text" for b in content))


# ---------------------------------------------------------------------------------------
# where the session files are

@dataclass(frozen=True)
class SessionFile:
    store: str  # the store's name
    project: str  # the project folder's name (the working folder, encoded)
    path: str  # absolute path of <project>/<session id>.jsonl
    # Its main file is gone and its <session id>/subagents/ files remain: they are the session
    orphan: bool = False

    @property
    def worktree_of(self) -> str | None:
        """The adw_id when the session ran in an ADW worktree (.../trees/<adw_id>)."""
        m = WORKTREE_PROJECT.search(self.project)
        return m.group(1) if m else None


class SessionIndex:
    """Every session file of the configured stores, by session id: built by listing the
    stores (two folder levels), so that an ADW run's session is found without a search."""

    def __init__(self, files: dict[str, SessionFile] | None = None):
        self.files = files or {}
        self.by_worktree: dict[str, list[str]] = {}
        for sid, f in sorted(self.files.items()):
            adw_id = f.worktree_of
            if adw_id:
                self.by_worktree.setdefault(adw_id, []).append(sid)

    @classmethod
    def build(cls, stores, problems: list[str] | None = None) -> "SessionIndex":
        """List each store. A session id that two stores hold is kept in the first (config
        order) and named in ``problems``, as is a folder that cannot be listed."""
        problems = [] if problems is None else problems
        files: dict[str, SessionFile] = {}
        for store in stores:
            for project, sid, path, orphan in list_store(str(store.path), problems):
                if sid in files:
                    if files[sid].path != path:
                        problems.append(f"{path}: session {sid} is also in {files[sid].path} (store "
                                        f"{files[sid].store}); only that one is read")
                    continue
                files[sid] = SessionFile(store.name, project, path, orphan)
        return cls(files)

    def add(self, sid: str, found: SessionFile) -> None:
        """A session file that appeared since the stores were listed (the daemon, live)."""
        if sid in self.files:
            return
        self.files[sid] = found
        adw_id = found.worktree_of
        if adw_id:
            self.by_worktree.setdefault(adw_id, []).append(sid)

    def find(self, store, sid: str) -> SessionFile | None:
        """The file of ``sid`` in ``store``, looked up on disk when the index lacks it."""
        known = self.files.get(sid)
        if known is not None:
            if known.orphan and os.path.isfile(known.path):  # its main file appeared since
                known = self.files[sid] = replace(known, orphan=False)
            return known if known.store == store.name else None
        try:
            projects = [e for e in os.scandir(store.path) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return None
        for project in projects:
            path = f"{project.path}/{sid}.jsonl"
            orphan = not os.path.isfile(path)
            if not orphan or subagent_files(path):
                found = SessionFile(store.name, project.name, path, orphan)
                self.add(sid, found)
                return found
        return None

    def of_store(self, name: str) -> list[str]:
        return sorted(sid for sid, f in self.files.items() if f.store == name)


def list_store(path: str, problems: list[str]):
    """(project, session id, path, orphan) of each <project>/<session id>.jsonl under a store,
    and of each <project>/<session id>/ whose main file is gone while its subagents/ files
    remain (orphan: those files are the session, claude-session-store.md). Only folders are
    descended, never a symlink to one (a loop under projects/ cannot trap us)."""
    try:
        projects = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as e:
        problems.append(f"{path}: cannot list the session store ({e.strerror}): give the daemon's user read "
                        "access to it")
        return
    for project in projects:
        try:
            if not project.is_dir(follow_symlinks=False):
                if project.is_symlink():
                    problems.append(f"{project.path}: a symlink in the session store (not followed)")
                continue
            with os.scandir(project.path) as it:
                entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
        except OSError as e:
            problems.append(f"{project.path}: cannot list ({e.strerror}) (skipped)")
            continue
        names = {name for name, _folder in entries}
        orphans: set[str] = set()
        for name, folder in entries:
            if folder:
                main = f"{project.path}/{name}.jsonl"
                if f"{name}.jsonl" not in names and _PLAIN_SID.fullmatch(name) and subagent_files(main):
                    orphans.add(name)
                    yield project.name, name, main, True
                continue
            if name.endswith(".jsonl") and len(name) > 6:
                parent = parent_of_agent_file(project.path, name)
                if parent and f"{parent}.jsonl" not in names and parent not in orphans:
                    orphans.add(parent)  # 2.0.x's layout: its agent files are the session
                    yield project.name, parent, f"{project.path}/{parent}.jsonl", True
                if parent:
                    continue  # read with its session (subagent_files)
                file = f"{project.path}/{name}"
                try:
                    if not stat.S_ISREG(os.lstat(file).st_mode):
                        problems.append(f"{file}: not a regular file (ignored)")
                        continue
                except OSError:
                    continue
                yield project.name, name[:-6], file, False


def subagent_files(session_path: str) -> list[str]:
    """A session's sub-agent files, as paths relative to its project: <session id>/subagents/*.jsonl
    (2.1.x), then the project's agent-<id>.jsonl files that belong to it (2.0.x)."""
    sid = os.path.basename(session_path)[:-6]
    project = os.path.dirname(session_path)
    try:
        names = sorted(e.name for e in os.scandir(session_path[:-6] + "/subagents") if e.name.endswith(".jsonl"))
    except OSError:
        names = []
    found = [f"{sid}/subagents/{n}" for n in names]
    if AGENT_FILE.fullmatch(f"{sid}.jsonl"):
        return found  # an agent file read as a session of its own has no sub-agents
    try:
        beside = sorted(e.name for e in os.scandir(project) if AGENT_FILE.fullmatch(e.name))
    except OSError:
        return found
    return found + [n for n in beside if agent_session(f"{project}/{n}") == sid]


def session_of(store: str, changed_path: str) -> str | None:
    """The session a changed file of a store is: <project>/<sid>.jsonl,
    <project>/<sid>/subagents/*.jsonl, and a <project>/agent-<id>.jsonl whose entries name
    sid (2.0.x writes a session's sub-agents there, even before the session's own file: its
    warm-ups start first; None while its first entry is not written)."""
    prefix = os.path.join(os.path.abspath(store), "")
    if not changed_path.startswith(prefix) or not changed_path.endswith(".jsonl"):
        return None
    parts = changed_path[len(prefix):].split(os.sep)
    if len(parts) == 2:
        own = parts[1][:-len(".jsonl")]
        if AGENT_FILE.fullmatch(parts[1]) and (parent := agent_session(changed_path)) != own:
            return parent
        return own
    if len(parts) == 4 and parts[2] == "subagents":
        return parts[1]
    return None
