"""Watching roots with watchdog, within the kernel's inotify budget.

Live inotify watches go only where changes are likely: each root (not recursive: it sees
workflow folders appear, move in and disappear) and each *active* workflow (recursive:
its state file, error.log and agents' raw_output.jsonl). A workflow that has not changed
for ``active_window_s`` becomes *dormant*: its watch is dropped and a stat sweep of its
folder and state file every ``sweep_interval_s`` notices when it wakes up. 100,000
workflow folders therefore need a few hundred watches, not half a million.

Events only mark a workflow dirty in the Debouncer; the daemon's one worker thread reads
and stores it once the debounce delay has passed.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time

from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileClosedEvent, FileCreatedEvent,
                             FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileSystemEventHandler)
from watchdog.observers import Observer

from ..config import Root

log = logging.getLogger("adw_patternd")

# Our own reads open and close files: subscribing to those events would feed back.
WATCHED_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent, FileClosedEvent,
                  DirCreatedEvent, DirMovedEvent, DirDeletedEvent]

Key = tuple[str, str]  # (root name, adw_id)


class Debouncer:
    """Dirty keys with deadlines. A key is due ``delay`` after its *first* event since it was
    last taken, so a workflow written without pause is still processed every ``delay``
    (throttled), and a burst of 500 writes becomes a handful of reads."""

    def __init__(self, delay_s: float):
        self.delay = delay_s
        self._due: dict[Key, float] = {}
        self._cond = threading.Condition()

    def touch(self, key: Key, *, delay: float | None = None) -> None:
        with self._cond:
            when = time.monotonic() + (self.delay if delay is None else delay)
            if key not in self._due or when < self._due[key]:
                self._due[key] = when
            self._cond.notify()

    def take_due(self, timeout: float) -> list[Key]:
        """Wait up to ``timeout`` for keys to fall due; return them, oldest first."""
        with self._cond:
            now = time.monotonic()
            nearest = min(self._due.values(), default=now + timeout)
            if nearest > now:
                self._cond.wait(min(timeout, nearest - now))
                now = time.monotonic()
            due = sorted((k for k, t in self._due.items() if t <= now), key=self._due.get)
            for k in due:
                del self._due[k]
            return due

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()


class _Handler(FileSystemEventHandler):
    """Maps a watchdog event to the workflow it concerns. Runs in the observer's thread."""

    def __init__(self, root: Root, debouncer: Debouncer):
        self.root = root
        self.prefix = os.path.join(os.path.abspath(root.path), "")
        self.debouncer = debouncer

    def on_any_event(self, event) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if not path:
                continue
            path = os.fsdecode(path)
            if not path.startswith(self.prefix):
                continue
            rel = path[len(self.prefix):]
            adw_id = rel.partition(os.sep)[0]
            if adw_id:
                # A folder that appears in the root (created, or moved in: watchdog adds no
                # watch for those) is handled like any change: the worker schedules its
                # watch first, then lists it, so files already inside are not missed.
                self.debouncer.touch((self.root.name, adw_id))


class _SessionsHandler(_Handler):
    """Maps any event under a root's session folders to the root's pending paths (``paths``):
    the worker asks the root's kind which sessions they are (that may read a file or a
    database: not in the observer's thread), after one debounce for the whole root."""

    def __init__(self, root: Root, debouncer: Debouncer, paths: dict):
        super().__init__(root, debouncer)
        self.paths = paths

    def on_any_event(self, event) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(path) if path else ""
            if path.startswith(self.prefix):
                self.paths.setdefault(self.root.name, set()).add(path)
                self.debouncer.touch(changed_files(self.root))


def changed_files(root: Root) -> Key:
    """The key of a root's changed files, as a whole (no session is named "")."""
    return (root.name, "")


class _Unwatched(logging.Handler):
    """watchdog's own word that a folder could not be watched. A folder that appears under a
    recursive watch (a new project in a session store, a new day's folder of dated sessions)
    gets its watch in watchdog's thread, which only logs a failure there ("Unable to watch
    <path>: [Errno 28] ..."): nothing would ever announce that folder's files.
    ``on_failure(path)`` is called, in that thread, for each such folder."""

    def __init__(self, on_failure):
        super().__init__(logging.WARNING)
        self.on_failure = on_failure

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        error = next((a for a in args if isinstance(a, OSError)), None)
        if error is not None and error.errno in (errno.ENOSPC, errno.EMFILE):
            path = next((a for a in args if isinstance(a, (bytes, str))), "")
            self.on_failure(os.fsdecode(path))


class Watches:
    """The live inotify watches: roots and active workflows. Owned by the worker thread."""

    def __init__(self, debouncer: Debouncer, max_active: int):
        self.debouncer = debouncer
        self.max_active = max_active
        self.observer = Observer(timeout=0.5)
        self.observer.daemon = True
        self.roots: dict[str, object] = {}  # root name -> ObservedWatch
        self.workflows: dict[Key, object] = {}  # active workflow -> ObservedWatch
        self.limit_hit = False
        # A watch could not be added (the inotify limit, or refused): a folder of a session root
        # may have none, so the daemon reads them every sweep interval (stores.py), as the stat
        # sweep covers the ADW roots' workflows.
        self.stores_unwatched = False
        self._handlers: dict[str, _Handler] = {}
        self.changed_paths: dict[str, set[str]] = {}  # paths seen in a root's session folders, by root name
        self._unwatched = _Unwatched(self._subfolder_unwatched)

    def start(self) -> None:
        logging.getLogger("watchdog").addHandler(self._unwatched)
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=10)
        logging.getLogger("watchdog").removeHandler(self._unwatched)

    def _subfolder_unwatched(self, path: str) -> None:
        """In watchdog's thread: a folder that appeared under a watch got none."""
        self._limit_reached(path)
        self.debouncer.wake()

    def _schedule(self, handler: _Handler, path: str, recursive: bool):
        try:
            return self.observer.schedule(handler, path, recursive=recursive, event_filter=WATCHED_EVENTS)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                self._limit_reached(path)
                return None
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            log.warning("cannot watch %s (%s); it is covered by the stat sweep", path, e.strerror or e)
            self.stores_unwatched = True
            return None

    def _limit_reached(self, path: str) -> None:
        self.stores_unwatched = True  # a folder that appears in a session root from now on may get no watch
        if self.limit_hit:
            return
        self.limit_hit = True
        try:
            with open("/proc/sys/fs/inotify/max_user_watches") as f:
                current = int(f.read().strip())
        except (OSError, ValueError):  # hidden from a hardened service (ProcSubset=pid)
            current = None
        needed = max(524_288, 2 * (current or 0))
        log.error("inotify watch limit reached (fs.inotify.max_user_watches = %s) while watching %s: it and any "
                  "further folders are covered by the stat sweep instead (slower, never blind). "
                  "Raise the limit with: sysctl -w fs.inotify.max_user_watches=%d (and persist it in "
                  "/etc/sysctl.d/), or lower watch.max_active_workflows.", current or "unreadable here", path, needed)

    def watch_root(self, root: Root) -> bool:
        handler = self._handlers.setdefault(root.name, _Handler(root, self.debouncer))
        watch = self._schedule(handler, str(root.path), recursive=False)
        if watch is not None:
            self.roots[root.name] = watch
        return watch is not None

    def watch_sessions(self, root: Root, folders: tuple[str, ...], recursive: bool) -> bool:
        """A root's session folders (never the home that holds them: credentials live
        there). Whether every one is watched."""
        handler = _SessionsHandler(root, self.debouncer, self.changed_paths)
        watched = 0
        for folder in folders:
            watch = self._schedule(handler, folder, recursive=recursive)
            if watch is not None:
                self.roots[f"{root.name}/{folder}"] = watch
                watched += 1
        return watched == len(folders)

    def unwatch_root(self, name: str) -> None:
        watch = self.roots.pop(name, None)
        if watch is not None:
            self._unschedule(watch)
        for key in [k for k in self.workflows if k[0] == name]:
            self.deactivate(key)
        self._handlers.pop(name, None)

    def activate(self, root: Root, adw_id: str) -> bool:
        key = (root.name, adw_id)
        if key in self.workflows:
            return True
        if len(self.workflows) >= self.max_active:
            return False
        handler = self._handlers.setdefault(root.name, _Handler(root, self.debouncer))
        watch = self._schedule(handler, os.path.join(str(root.path), adw_id), recursive=True)
        if watch is None:
            return False
        self.workflows[key] = watch
        return True

    def deactivate(self, key: Key) -> None:
        watch = self.workflows.pop(key, None)
        if watch is not None:
            self._unschedule(watch)

    def _unschedule(self, watch) -> None:
        try:
            self.observer.unschedule(watch)
        except (KeyError, ValueError, OSError):
            pass  # its folder was deleted and the kernel dropped the watch already

    def count(self) -> int:
        return len(self.roots) + len(self.workflows)
