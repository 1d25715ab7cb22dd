"""The roots of every kind read by a pure reader (sources/kinds.py, shape "sessions") as a
source for the engine: each session a workflow `<root name>/<session id>`, read from its
stored state (opaque text the reader wrote, kept in agent_outputs) into the same Workflow
value as every other source.

What the engine asks of it is what it asks of every source: the names under a root, a
listing whose fingerprint says whether a session may have changed, and a read into a Change.
The daemon also asks which sessions a changed file concerns (``changed``)."""

from __future__ import annotations

import logging
import os

from ..config import Config, Root
from ..core.errors import InputRejected
from ..core.rules import detect
from ..core.said import Said
from ..core.outcome import Outcome
from . import kinds
from .agent_fold import ReadContext, SessionRef
from .files import FileStat, FolderListing
from ..core.stored import SESSION_STATE as STATE, StoredTranscript
from ..core.change import Change, Prior

log = logging.getLogger("adw_patternd")
_said = Said()  # problems of these roots already logged by this process


class AgentSource:
    def __init__(self, config: Config):
        self.config = config
        self.refs: dict[str, dict[str, SessionRef]] = {}  # root name -> session id -> where it is
        self.marks: dict[str, object] = {}  # root name -> where its kind's last look for changes ended
        self.known: dict[str, set[str]] = {}  # root name -> the files its listing or its changes named

    in_process = True  # its listing is this process's (a forked worker would not have it)

    def roots(self) -> tuple[Root, ...]:
        return self.config.homes

    def refresh(self) -> None:
        """List every root again; say once what is wrong with them."""
        for root in self.roots():
            self.relist(root)

    def relist(self, root: Root) -> None:
        problems: list[str] = []
        listed = kinds.kind(root.kind).list_sessions(str(root.path), problems)
        # A file being rewritten in place names no session for a moment (Gemini CLI's legacy
        # .json chat, truncated and written whole): a session listed before whose file is
        # still there and now names no session at all stays listed, so that it is not taken
        # for a session deleted (a file another session now names, such as a shared
        # database, says the session is gone).
        accounted = {path for ref in listed.values() for path in ref.files}
        for sid, ref in self.refs.get(root.name, {}).items():
            if sid not in listed and ref.path not in accounted and os.path.isfile(ref.path):
                listed[sid] = ref
        self.refs[root.name] = listed
        self.known[root.name] = {path for ref in self.refs[root.name].values() for path in ref.files}
        for problem in _said.each_new(problems):
            log.warning("%s", problem)

    def names(self, root: Root) -> list[str] | None:
        """The root's session ids (None when the root is not there to list)."""
        if not os.path.isdir(root.path):
            return None
        if root.name not in self.refs:
            self.relist(root)
        return sorted(self.refs[root.name])

    def watched_folders(self, root: Root) -> tuple[str, ...]:
        return kinds.kind(root.kind).watched_folders(str(root.path))

    def recursive(self, root: Root) -> bool:
        return kinds.kind(root.kind).watch_recursive

    @staticmethod
    def instead(o: Outcome, owner_of) -> str | None:
        return None

    def changed(self, root: Root, paths) -> set[str]:
        """The sessions the changed files concern. A session not listed yet is listed now, and
        so is one whose changed file is new: a session's files are its listing's (Gemini CLI
        resumed in a later minute starts a second chat file of the same session)."""
        k = kinds.kind(root.kind)
        found: set[str] = set()
        for path in sorted(paths):
            sids, self.marks[root.name] = k.sessions_changed(str(root.path), path, self.marks.get(root.name))
            found |= sids
        listed, known = self.refs.get(root.name, {}), self.known.get(root.name, set())
        if any(sid not in listed for sid in found) or (found and not known.issuperset(paths)):
            self.relist(root)
        self.known.setdefault(root.name, set()).update(paths)
        return found

    def listing(self, root: Root, sid: str) -> FolderListing | None:
        ref = self.refs.get(root.name, {}).get(sid)
        if ref is None:
            return None
        stats = []
        for path in kinds.kind(root.kind).identity_files(ref):
            try:
                st = os.stat(path)
            except OSError:
                if path == ref.path:
                    return None  # gone: the session is missing
                continue
            stats.append(FileStat(os.path.relpath(path, root.path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return FolderListing(os.path.dirname(ref.path), (0, 0), None, None, tuple(stats))

    def read(self, root: Root, sid: str, listing: FolderListing, prior: Prior, notes: list[str],
             fingerprint: str | None, fresh: bool, listed_at: int | None = None) -> Change | Outcome:
        ref = self.refs.get(root.name, {}).get(sid)
        if ref is None:
            raise InputRejected(f"{root.name}/{sid}", "session no longer listed (read again at the next sync)",
                                transient=True)
        ctx = ReadContext(root.name, self.config.prices, self.config.rules.commands, notes, fresh)
        got = kinds.kind(root.kind).read_session(ref, prior.states.get(STATE) or None, ctx)
        wf = got.workflow
        found = detect(wf, self.config.rules)
        main = next((f for f in got.files if f.path == ref.path), got.files[0] if got.files else None)
        part = wf.agents[0] if wf.agents else None
        # The read position is inside the state (opaque here); offset 0 keeps a row that
        # an incremental read and a whole one write alike.
        kept = StoredTranscript(STATE, 0, main.inode if main else 0, 0, main.size if main else 0,
                                main.mtime_ns if main else 0, "", "", part.runs if part else 0, wf.total_tokens,
                                wf.cost_nanos, 0, 0, None, wf.model, 0, got.state)
        return Change(wf, found.occurrences, found.characteristics, (kept,), fingerprint, prior.revision,
                      mentions=found.mentions)
