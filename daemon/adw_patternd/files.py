"""Reading a workflow folder from disk, safely and cheaply.

Nothing outside a root is opened: a symlink is followed only when its target lies inside
the root. Files are opened non-blocking (a FIFO named adw_state.json must not hang the
daemon) and must be regular files. raw_output.jsonl is read from where the last read
stopped; the rest is never read again.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
from dataclasses import dataclass

from .errors import InputRejected
from .model import AgentSummary
from .parse import scan_output_chunk
from .pricing import PriceRule

STATE_FILE = "adw_state.json"
ERROR_LOG = "error.log"
RAW_OUTPUT = "raw_output.jsonl"
ERROR_TAIL_BYTES = 2000
MMAP_FROM = 1 << 20
TAIL_BYTES = 32


@dataclass(frozen=True)
class FileStat:
    name: str  # relative to the workflow folder: adw_state.json, error.log, <agent>/raw_output.jsonl
    device: int
    inode: int
    size: int
    mtime_ns: int

    def token(self) -> str:
        return f"{self.name}:{self.inode}:{self.size}:{self.mtime_ns}"


# A Snapshot is cheap evidence that a dormant workflow is unchanged: the stat of its folder
# (which changes when a file is added, removed or renamed in it) and of its state file (which
# changes on an in-place rewrite), as a flat tuple of ints:
#   (folder inode, folder mtime_ns, state inode, state size, state mtime_ns)
# Two stat calls, where a fingerprint needs a listing.
Snapshot = tuple


@dataclass(frozen=True)
class FolderListing:
    """The files of one workflow folder that adw-patternd reads, with their stat results."""

    path: str
    folder: tuple  # (inode, mtime_ns) of the folder itself
    state: FileStat | None
    error_log: FileStat | None
    outputs: tuple[FileStat, ...]  # one per agent folder with a raw_output.jsonl, in name order
    problems: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        parts = [f.token() for f in (self.state, self.error_log) if f] + [f.token() for f in self.outputs]
        return "|".join(parts)

    def newest_mtime_ns(self) -> int:
        files = [f for f in (self.state, self.error_log, *self.outputs) if f]
        return max([self.folder[1], *(f.mtime_ns for f in files)])


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
    return (f.st_ino, f.st_mtime_ns, *state_stat(folder, dir_fd))


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
    state = error_log = None
    outputs = []
    for entry in entries:
        name = entry.name
        if name == STATE_FILE:
            state = _regular(entry.path, name, root_real, problems)
        elif name == ERROR_LOG:
            error_log = _regular(entry.path, name, root_real, problems)
        else:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if not is_dir and entry.is_symlink():
                    if not inside(root_real, entry.path):
                        problems.append(f"{entry.path}: symlink leads outside the root (not followed)")
                        continue
                    is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                out = _regular(entry.path + "/" + RAW_OUTPUT, name + "/" + RAW_OUTPUT, root_real, problems)
                if out:
                    outputs.append(out)
    outputs.sort(key=lambda f: f.name)
    return FolderListing(folder, (st.st_ino, st.st_mtime_ns), state, error_log, tuple(outputs), tuple(problems))


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
    fd = _open(path)
    try:
        size = os.fstat(fd).st_size
        os.lseek(fd, max(0, size - nbytes), os.SEEK_SET)
        data = os.read(fd, nbytes)
    except OSError as e:
        raise InputRejected(path, f"cannot read ({e.strerror})") from None
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace").strip()


def _tail(fd: int, offset: int) -> str:
    n = min(TAIL_BYTES, offset)
    return os.pread(fd, n, offset - n).hex() if n else ""


def read_output(path: str, prior: AgentSummary, prices: tuple[PriceRule, ...], notes: list[str]) -> AgentSummary:
    """Bring an agent's totals up to date with its raw_output.jsonl.

    Reads only the bytes appended since ``prior.offset``. A file that was replaced (new
    inode), shrank, or was rewritten in place (the bytes before the offset differ) is read
    again from the start with fresh totals.
    """
    fd = _open(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputRejected(path, "not a regular file")
        agent = prior
        if ((prior.inode, prior.device) != (st.st_ino, st.st_dev) or st.st_size < prior.offset
                or _tail(fd, prior.offset) != prior.tail):
            agent = AgentSummary(prior.name, st.st_dev, st.st_ino)
        start = agent.offset
        size = st.st_size
        if size <= start:
            return agent
        length = size - start
        if length >= MMAP_FROM:
            aligned = start - start % mmap.ALLOCATIONGRANULARITY
            with mmap.mmap(fd, size - aligned, access=mmap.ACCESS_READ, offset=aligned) as mm:
                agent = scan_output_chunk(agent, _MappedChunk(mm, start - aligned), start, prices, notes, path)
        else:
            data = os.pread(fd, length, start)
            agent = scan_output_chunk(agent, data, start, prices, notes, path)
        return AgentSummary(agent.name, agent.device, agent.inode, agent.offset, agent.results, agent.tokens,
                            agent.cost_nanos, agent.duration_ms, agent.error_results, agent.last_error, agent.model,
                            _tail(fd, agent.offset))
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

    def __getitem__(self, s: slice) -> bytes:
        start = self.base + (s.start or 0)
        stop = len(self.mm) if s.stop is None else self.base + s.stop
        if s.stop is not None and s.stop < 0:
            stop = len(self.mm) + s.stop
        return self.mm[start:stop]
