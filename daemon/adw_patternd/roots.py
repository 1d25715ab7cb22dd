"""Whether a root can be read now, and whether a workflow folder missing from it may count
as deleted.

An unavailable root is never evidence of deletion. A root that is missing, unreadable or
not a folder is not read at all; nor is one whose listing is empty while the store holds
workflows of it (a share not mounted yet, a mount point that came up empty). A root that
is not the folder it was at the last full pass on this host (its device and inode changed:
a mount came or went) is read, but nothing missing from it is deleted. The new identity is
adopted once every stored workflow is in it again, or by `sync --adopt-roots` when the
root moved for good. Each state is said once, when it begins, and again when it ends.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from .config import Root
from .core.errors import WriteRefused
from .core.said import Said
from .sources.files import root_problem
from .store.db import Db
from .store.roots import holds_workflows, record_root_identity, root_identity

log = logging.getLogger("adw_patternd")

EMPTY = "is empty, while the database holds workflows of it (a mount not there yet?)"


def identity_of(path) -> str | None:
    """The folder's device:inode, which changes when a mount comes or goes over it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def _has_folder(path) -> bool:
    """Whether the root lists at least one folder (stops at the first: cheap at 100,000)."""
    try:
        with os.scandir(path) as entries:
            return any(e.is_dir() for e in entries)
    except OSError:
        return False


@dataclass(frozen=True)
class RootHealth:
    problem: str | None = None  # why it cannot be read now (None: it can)
    identity: str | None = None  # device:inode now
    moved_from: str | None = None  # the identity of the last full pass, when it differs

    @property
    def readable(self) -> bool:
        return self.problem is None

    @property
    def deletions_allowed(self) -> bool:
        return self.problem is None and self.moved_from is None


class RootGuard:
    def __init__(self, db: Db, *, adopt: bool = False, host: str | None = None):
        """``adopt``: take each root's identity as it is now (`sync --adopt-roots`)."""
        self.db = db
        self.adopt = adopt
        self.host = host or socket.gethostname()
        self._recorded: dict[str, str | None] = {}
        self._said = Said()  # each root's problem, as said

    def health(self, root: Root, names: list[str] | None = None) -> RootHealth:
        """How the root is now. ``names``: its listing, when the caller has one."""
        problem = root_problem(root.path)
        identity = moved_from = None
        if problem is None:
            identity = identity_of(root.path)
            empty = not names if names is not None else not _has_folder(root.path)
            if empty and holds_workflows(self.db, root.name):
                problem = EMPTY
        if problem is None and not self.adopt:
            recorded = self._recorded_identity(root.name)
            if recorded is not None and recorded != identity:
                moved_from = recorded
        health = RootHealth(problem, identity, moved_from)
        self._say(root, health)
        return health

    def refresh(self) -> None:
        """Read the recorded identities again (another process may have adopted a root)."""
        self._recorded.clear()

    def settle(self, root: Root, health: RootHealth, absent: int) -> None:
        """After a full pass over a readable root, in which ``absent`` stored workflows were
        not found: record its identity when there is none yet, or adopt a new one that
        loses nothing (or that --adopt-roots accepts)."""
        if not health.readable or health.identity == self._recorded_identity(root.name):
            return
        if health.moved_from is not None and absent:
            return  # deletions stay withheld; said when the move was seen
        try:
            record_root_identity(self.db, self.host, root.name, health.identity)
        except WriteRefused:
            return  # the database said why; the next pass records it
        if health.moved_from is not None:
            log.info("root %s: folder %s is now %s (was %s) and holds every stored workflow: adopted",
                     root.name, root.path, health.identity, health.moved_from)
        self._recorded[root.name] = health.identity
        self._said.over(root.name)

    def _recorded_identity(self, name: str) -> str | None:
        if name not in self._recorded:
            self._recorded[name] = root_identity(self.db, self.host, name)
        return self._recorded[name]

    def _say(self, root: Root, health: RootHealth) -> None:
        if health.problem is not None:
            text = (f"root {root.name}: folder {root.path} {health.problem}; "
                    "nothing of it is read or deleted until it is back")
        elif health.moved_from is not None:
            text = (f"root {root.name}: folder {root.path} is not the folder it was (device:inode {health.identity}, "
                    f"was {health.moved_from}: a mount came or went?); its workflows are read, but none missing from "
                    "it is deleted; if the root moved for good, run `adw-patternd sync --adopt-roots`")
        else:
            text = None
        if text is not None:
            if self._said.new(root.name, text):
                log.warning("%s", text)
        elif self._said.over(root.name):
            log.info("root %s: folder %s is available again", root.name, root.path)
