"""Reading a workflow folder from disk, safely and cheaply.

Nothing outside a root is opened: a symlink is followed only when its target lies inside
the root. Files are opened non-blocking (a FIFO named adw_state.json must not hang the
daemon) and must be regular files. Agent transcripts are read from where the last read
stopped; the rest is never read again.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import time
import zlib
from dataclasses import dataclass, replace

from ..core.commands import BUILTIN_COMMAND_RULES, CommandRule
from ..core.errors import InputRejected
from ..core.folders import STATE_FILE, Snapshot  # noqa: F401 (re-exported)
from ..core.jsonline import loads
from ..core.pricing import PriceRule
from .claude_sessions import fold_chunk, subagent_files
from .parse import issue_title, log_times
from .response_keys import ResponseKeys
from .transcript import TAIL_BYTES, Transcript, head_session

SUMMARY_FILE = "workflow_summary.json"
ERROR_LOG = "error.log"
EXECUTION_LOG = "execution.log"
TRANSCRIPT_SUFFIX = "output.jsonl"  # raw_output.jsonl, cc_raw_output.jsonl, quick_plan_output.jsonl, ...
# Any other *.jsonl in an agent folder is a transcript when its first complete line is a
# stream-json event (some ADWs name the file after its session id).
STREAM_JSON_TYPES = frozenset(("system", "assistant", "user", "result"))
FIRST_LINE_MAX = 1 << 20  # an init line lists the tools and servers: tens of KB, not megabytes
PROMPTS = "prompts"
ERROR_TAIL_BYTES = 2000
LOG_EDGE_BYTES = 4096
MMAP_FROM = 1 << 20
HEAD_BYTES = 4096  # where the first line's session_id is looked for (it comes early in an init line)
# A file modified this recently may change again within the same mtime tick
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class FileStat:
    name: str  # relative to the workflow folder: adw_state.json, <agent>/raw_output.jsonl, ...
    device: int
    inode: int
    size: int
    mtime_ns: int

    def token(self) -> str:
        return f"{self.name}:{self.inode}:{self.size}:{self.mtime_ns}"


@dataclass(frozen=True)
class FolderListing:
    """The files of one workflow folder that adw-patternd reads, with their stat results."""

    path: str
    folder: tuple  # (inode, mtime_ns) of the folder itself
    state: FileStat | None
    error_log: FileStat | None
    outputs: tuple[FileStat, ...]  # agent transcripts, in name order
    problems: tuple[str, ...] = ()
    summary: FileStat | None = None  # workflow_summary.json
    execution_logs: tuple[FileStat, ...] = ()  # <script>/execution.log, in name order
    agent_folders: tuple[str, ...] = ()  # subfolders, in name order (their prompts/ are read on demand)
    sessions: tuple[FileStat, ...] = ()  # session store files joined to the workflow: @<store>/<sid>.jsonl

    @property
    def is_workflow(self) -> bool:
        """A folder with a state file, a workflow summary or an agent transcript."""
        return bool(self.state or self.summary or self.outputs)

    def files(self) -> list[FileStat]:
        return ([f for f in (self.state, self.summary, self.error_log) if f]
                + [*self.outputs, *self.execution_logs, *self.sessions])

    def fingerprint(self) -> str:
        return "|".join(f.token() for f in self.files())

    def newest_mtime_ns(self) -> int:
        return max([self.folder[1], *(f.mtime_ns for f in self.files())])

    def oldest_mtime_ns(self) -> int:
        return min([f.mtime_ns for f in self.files()] or [self.folder[1]])

    def newest_file_mtime_ns(self) -> int:
        """The last write to a file (the folder's own mtime moves when a reader-side tool
        touches the tree; only file writes say that an agent is still working)."""
        return max([f.mtime_ns for f in self.files()] or [self.folder[1]])


def state_stat(folder: str, dir_fd: int | None = None) -> tuple:
    """(inode, size, mtime_ns) of the folder's state file, zeros when it has none."""
    try:
        s = os.stat(folder + "/" + STATE_FILE, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return (0, 0, 0)
    return (s.st_ino, s.st_size, s.st_mtime_ns)


def snapshot(folder: str, dir_fd: int | None = None) -> Snapshot | None:
    """The folder's Snapshot now; None when it is gone. ``folder`` may be relative to
    ``dir_fd`` (the sweep keeps each root open: shorter path walks). The engine takes one
    before each read and the sweep compares with the same calls, so a folder compares
    equal exactly when neither its entries nor its state file changed."""
    try:
        f = os.stat(folder, dir_fd=dir_fd)
    except OSError:
        return None
    return Snapshot(f.st_ino, f.st_mtime_ns, *state_stat(folder, dir_fd))


def root_problem(path) -> str | None:
    """Why a root folder cannot be used now (None when it can), in words for a log line."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "does not exist yet"
    except OSError as e:
        return (f"cannot be reached ({e.strerror}): give the daemon's user read access to it and to the "
                "folders above it")
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if not os.access(path, os.R_OK | os.X_OK):
        return "cannot be read (Permission denied): give the daemon's user read access to it"
    return None


def inside(root_real: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real + os.sep)


def _regular(path: str, name: str, root_real: str, problems: list[str]) -> FileStat | None:
    """stat a file we may read: a regular file, or a symlink to one inside the root."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        problems.append(f"{path}: cannot stat ({e.strerror})")
        return None
    if stat.S_ISLNK(st.st_mode):
        if not inside(root_real, path):
            problems.append(f"{path}: symlink leads outside the root (not followed)")
            return None
        try:
            st = os.stat(path)
        except OSError as e:
            problems.append(f"{path}: broken or looping symlink ({e.strerror})")
            return None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        problems.append(f"{path}: is {kind}, not a regular file (ignored)")
        return None
    return FileStat(name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def list_folder(folder: str, root_real: str) -> FolderListing | None:
    """stat what a workflow folder holds; None when the folder is gone or is not a folder.
    A folder that is a symlink is listed only when it leads somewhere inside the root."""
    problems: list[str] = []
    try:
        st = os.lstat(folder)
        if stat.S_ISLNK(st.st_mode):
            if not inside(root_real, folder):
                raise InputRejected(folder, "symlink leads outside the root (not followed)")
            st = os.stat(folder)
        if not stat.S_ISDIR(st.st_mode):
            return None
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise InputRejected(folder, f"cannot list folder ({e.strerror})") from None
    state = error_log = summary = None
    outputs: list[FileStat] = []
    logs: list[FileStat] = []
    agents: list[str] = []
    for entry in entries:
        name = entry.name
        if name == STATE_FILE:
            state = _regular(entry.path, name, root_real, problems)
        elif name == SUMMARY_FILE:
            summary = _regular(entry.path, name, root_real, problems)
        elif name == ERROR_LOG:
            error_log = _regular(entry.path, name, root_real, problems)
        elif _is_folder(entry, root_real, problems):
            agents.append(name)
            _list_agent(entry.path, name, root_real, problems, outputs, logs)
    outputs.sort(key=lambda f: f.name)
    logs.sort(key=lambda f: f.name)
    agents.sort()
    return FolderListing(folder, (st.st_ino, st.st_mtime_ns), state, error_log, tuple(outputs), tuple(problems),
                         summary, tuple(logs), tuple(agents))


def _is_folder(entry: os.DirEntry, root_real: str, problems: list[str]) -> bool:
    try:
        if entry.is_dir(follow_symlinks=False):
            return True
        if entry.is_symlink():
            if not inside(root_real, entry.path):
                problems.append(f"{entry.path}: symlink leads outside the root (not followed)")
                return False
            return entry.is_dir()
    except OSError:
        pass
    return False


def _list_agent(path: str, name: str, root_real: str, problems: list[str], outputs: list, logs: list) -> None:
    """An agent (or ADW script) folder: its transcripts and its execution.log. raw_output.json,
    the array copy of the same messages, is never read."""
    try:
        with os.scandir(path) as it:
            names = [e.name for e in it]
    except OSError:
        return
    for child in names:
        if child.endswith(".jsonl"):
            f = _regular(path + "/" + child, name + "/" + child, root_real, problems)
            if f and (child.endswith(TRANSCRIPT_SUFFIX) or _starts_stream_json(path + "/" + child)):
                outputs.append(f)
        elif child == EXECUTION_LOG:
            f = _regular(path + "/" + child, name + "/" + child, root_real, problems)
            if f:
                logs.append(f)


def _starts_stream_json(path: str) -> bool:
    """Whether the file's first complete line is a stream-json event. One still without a
    whole first line is not a transcript yet: its next write changes the folder's listing."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
            while b"\n" not in head and len(head) < FIRST_LINE_MAX:
                more = f.read(65536)
                if not more:
                    return False
                head += more
    except OSError:
        return False
    line = head.split(b"\n", 1)[0]
    if b'"type"' not in line:
        return False
    try:
        event = loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(event, dict) and event.get("type") in STREAM_JSON_TYPES


def list_session(path: str, sid: str) -> FolderListing | None:
    """A session store's session as a listing: its file (<sid>.jsonl) and its subagents'
    files (<sid>/subagents/*.jsonl), relative to its project folder. None when it is gone."""
    folder = os.path.dirname(path)
    problems: list[str] = []
    main = _regular(path, f"{sid}.jsonl", folder, problems)
    subagents = [f for name in subagent_files(path) if (f := _regular(f"{folder}/{name}", name, folder, problems))]
    if main is None and not subagents:
        return None
    # A main file gone while its subagents' files remain: they are the session
    outputs = ([main] if main is not None else []) + subagents
    return FolderListing(folder, (outputs[0].inode, outputs[0].mtime_ns), None, None, tuple(outputs), tuple(problems))


def session_stat(sid: str, store: str, path: str | None) -> FileStat:
    """A joined session file's stat, named @<store>/<sid>.jsonl; zeros when it is not there
    (its appearance then changes the workflow's fingerprint)."""
    name = f"@{store}/{sid}.jsonl"
    try:
        st = os.stat(path) if path else None
    except OSError:
        st = None
    return FileStat(name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) if st else FileStat(name, 0, 0, 0, 0)


def list_prompts(folder: str, agent_folders: tuple[str, ...], root_real: str) -> list[tuple[str, FileStat]]:
    """(path, stat) of every readable <agent>/prompts/*.txt, in name order."""
    found = []
    for agent in agent_folders:
        base = f"{folder}/{agent}/{PROMPTS}"
        try:
            with os.scandir(base) as it:
                names = sorted(e.name for e in it if e.name.endswith(".txt"))
        except OSError:
            continue
        problems: list[str] = []
        for n in names:
            f = _regular(f"{base}/{n}", f"{agent}/{PROMPTS}/{n}", root_real, problems)
            if f:
                found.append((f"{base}/{n}", f))
    return found


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise InputRejected(path, "disappeared while being read", transient=True) from None
        raise InputRejected(path, f"cannot open ({e.strerror})") from None


def read_small(path: str, expected: FileStat, max_bytes: int) -> bytes:
    """Read a whole state file, refusing anything larger than max_bytes or not regular."""
    if expected.size > max_bytes:
        raise InputRejected(path, f"{expected.size} bytes exceeds max_file_bytes ({max_bytes})")
    fd = _open(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputRejected(path, "not a regular file")
        if st.st_size > max_bytes:
            raise InputRejected(path, f"{st.st_size} bytes exceeds max_file_bytes ({max_bytes})")
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise InputRejected(path, f"grew past max_file_bytes ({max_bytes}) while being read", transient=True)
        return data
    except OSError as e:
        raise InputRejected(path, f"cannot read ({e.strerror})") from None
    finally:
        os.close(fd)


def read_tail(path: str, nbytes: int = ERROR_TAIL_BYTES) -> str:
    return read_edges(path, 0, nbytes)[1].decode("utf-8", errors="replace").strip()


def read_edges(path: str, head: int, tail: int) -> tuple[bytes, bytes]:
    """The first ``head`` and the last ``tail`` bytes of a file (an execution.log's first and
    last timestamps; an error.log's last lines)."""
    fd = _open(path)
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, head, 0) if head else b"", os.pread(fd, tail, max(0, size - tail)) if tail else b""
    except OSError as e:
        raise InputRejected(path, f"cannot read ({e.strerror})") from None
    finally:
        os.close(fd)


def _tail(fd: int, offset: int) -> str:
    n = min(TAIL_BYTES, offset)
    return os.pread(fd, n, offset - n).hex() if n else ""


def _head(fd: int) -> str:
    first = os.pread(fd, HEAD_BYTES, 0)
    return head_session(first[: first.find(b"\n")] if b"\n" in first else first)


def _same_results(fd: int, t: Transcript) -> bool:
    """Whether the result lines read before are still there, byte for byte: a run's cost is in
    its result line, and a rewrite may change it without changing the file's end or start."""
    return all(zlib.crc32(os.pread(fd, end - start, start)) == crc for start, end, crc in t.results_at)


def read_transcript(path: str, prior: Transcript, prices: tuple[PriceRule, ...], notes: list[str],
                    rules: tuple[CommandRule, ...] = BUILTIN_COMMAND_RULES, now_ns: int | None = None,
                    keys: ResponseKeys | None = None) -> Transcript:
    """Bring a transcript up to date with its file.

    Reads only the bytes appended since ``prior.offset``, unless the file was rewritten
    (ADW runners open it with "w" for every run and retry): then it is read again from the
    start, its earlier runs kept as overwritten until the file shows their sessions again.
    Rewritten means: another inode, a smaller size, other bytes just before the offset or in
    a result line read before, another session on the first line, or the same size with
    another mtime. ``keys``: a session file's counted responses (response_keys.py).
    """
    fd = _open(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputRejected(path, "not a regular file")
        t = prior
        size = st.st_size
        if ((prior.inode, prior.device) != (st.st_ino, st.st_dev) or size < prior.offset
                or (prior.offset and (_tail(fd, prior.offset) != prior.tail or _head(fd) != prior.head
                                      or not _same_results(fd, prior)))
                or (size == prior.size and st.st_mtime_ns != prior.mtime_ns)):
            t = prior.restarted(st.st_dev, st.st_ino)
        start = t.offset
        if start == 0 and keys is not None:
            keys.restart(t.path)
        if size > start:
            length = size - start
            if length >= MMAP_FROM:
                aligned = start - start % mmap.ALLOCATIONGRANULARITY
                with mmap.mmap(fd, size - aligned, access=mmap.ACCESS_READ, offset=aligned) as mm:
                    t = fold_chunk(t, _MappedChunk(mm, start - aligned), start, prices, notes, path, rules, keys)
            else:
                t = fold_chunk(t, os.pread(fd, length, start), start, prices, notes, path, rules, keys)
        # An mtime within the racy window may be shared by a later write of the same size:
        # store none, so that the next read with an unchanged size starts again.
        now_ns = time.time_ns() if now_ns is None else now_ns
        mtime_ns = st.st_mtime_ns if st.st_mtime_ns < now_ns - RACY_NS else 0
        head = _head(fd) if t.offset and not t.head else t.head
        if (t.size, t.mtime_ns, t.head) != (size, mtime_ns, head):  # one copy: a Transcript has many fields
            t = replace(t, size=size, mtime_ns=mtime_ns, head=head)
        return t
    except OSError as e:
        raise InputRejected(path, f"cannot read ({e.strerror})") from None
    finally:
        os.close(fd)


class _MappedChunk:
    """The bytes of an mmap from ``base`` on, with the find/rfind/slice calls the scanner uses."""

    def __init__(self, mm: mmap.mmap, base: int):
        self.mm, self.base = mm, base

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        end = len(self.mm) if end is None else self.base + end
        i = self.mm.find(sub, self.base + start, end)
        return i - self.base if i >= 0 else -1

    def rfind(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        end = len(self.mm) if end is None else self.base + end
        i = self.mm.rfind(sub, self.base + start, end)
        return i - self.base if i >= 0 else -1

    def finditer(self, pattern, start: int, end: int):
        """(position, group 1) of each match of a bytes pattern in [start, end)."""
        return ((m.start() - self.base, m.group(1)) for m in pattern.finditer(self.mm, self.base + start, self.base + end))

    def __getitem__(self, s: slice) -> bytes:
        start = self.base + (s.start or 0)
        stop = len(self.mm) if s.stop is None else self.base + s.stop
        if s.stop is not None and s.stop < 0:
            stop = len(self.mm) + s.stop
        return self.mm[start:stop]


def execution_log_times(folder: str, listing: FolderListing):
    """(start, end) from the first and last lines of the workflow's execution logs."""
    starts, ends = [], []
    for log_file in listing.execution_logs:
        head, tail = read_edges(os.path.join(folder, log_file.name), LOG_EDGE_BYTES, LOG_EDGE_BYTES)
        start, end = log_times(head, tail)
        if start:
            starts.append(start)
        if end:
            ends.append(end)
    return (min(starts) if starts else None), (max(ends) if ends else None)


def issue_title_in(folder: str, listing: FolderListing, root_real: str, max_bytes: int,
                   notes: list[str]) -> str | None:
    """The issue title in the first prompt file that carries the issue's JSON."""
    for path, found in list_prompts(folder, listing.agent_folders, root_real):
        try:
            data = read_small(path, found, max_bytes)
        except InputRejected as e:
            notes.append(f"{path}: {e.reason} (prompt file skipped)")
            continue
        title = issue_title(data.decode("utf-8", errors="replace"))
        if title:
            return title
    return None
