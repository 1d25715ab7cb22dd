"""Reading a workflow folder (sources/adw_folders.py) or a session (its root's source) into a
change, and committing changes to the ledger: the one code path from workflow files to the
database, for `sync`, the daemon's catch-up, its live updates and its reconcile (whole roots
are planned in sync.py).

A workflow is read only when its files' fingerprint (inode, size, mtime of each file)
differs from the one stored with it; transcripts are read from the stored offset. A
fingerprint taken while a file was still being written is not stored (as git does with
"racy" index entries), so a second write within the same clock tick is never mistaken for
no change.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Iterable

from .config import Config, Root
from .core.change import Change, Prior
from .core.errors import InputRejected, StopRequested, WriteRefused
from .core.model import workflow_id
from .core.outcome import Kind, Outcome
from .sources.adw_folders import AdwFolders, fingerprint_of, is_fresh
from .sources.files import RACY_NS, FolderListing, snapshot
from .sources.shapes import ATTRIBUTES, make_sources
from .sources.transcript import from_json as stored_transcript
from .store.cross_file import CrossFileReader
from .store.ledger import Ledger

log = logging.getLogger("adw_patternd")
MAX_REREADS = 3  # a workflow read again at once because another writer got there first, at most this deep


# What a sync passes as the known fingerprint of a folder that its listing of the stored
# ones does not have: nothing is stored for it, so there is no prior to ask the database for
# (a concurrent writer that stores it meanwhile is caught by the revision check at commit).
NOT_STORED = "<not stored>"


def decoded(prior: Prior) -> Prior:
    """What the store holds for a workflow, its transcripts' states decoded by their reader."""
    return replace(prior, transcripts={name: stored_transcript(name, *row) for name, row in prior.rows.items()})


class Engine:
    def __init__(self, config: Config, ledger: Ledger, carried: dict[tuple[str, str], tuple] | None = None,
                 indexes: dict | None = None):
        """``carried``: overwritten runs, by (workflow id, transcript path), to start a transcript
        with when this database holds none (verify --files: the runs only the ledger knows).
        ``indexes``: what the sources listed, by shape (sources/shapes.py: a forked worker's start)."""
        # Each shape of session source (sources/kinds.py, sources/shapes.py) by the name of its shape;
        # ``source`` is the one ADW workflows join their sessions with.
        self.sources = make_sources(config, ledger.counted_keys, CrossFileReader(ledger.db), indexes)
        for attribute, shape in ATTRIBUTES.items():
            setattr(self, attribute, self.sources[shape])
        self.carried = carried or {}
        self.folders = AdwFolders(config, self.source, self.carried)  # ADW roots' workflow folders
        self.config = config
        self.ledger = ledger
        self._rereads = 0  # how deep _again is nested

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, config: Config) -> None:  # a reload: the sources follow
        self._config = config
        for source in (*self.sources.values(), self.folders):
            source.config = config

    # -- reading --------------------------------------------------------------
    def look(self, root: Root, adw_id: str, joined: tuple[str, ...] = ()):
        """stat a workflow folder (with the session files ``joined`` to it), or a session of a
        store: (listing, listed_at), or an Outcome when it is gone."""
        listed_at = time.time_ns()
        if root.kind:
            listing = self.sources[root.shape].listing(root, adw_id)
        else:
            listing = self.folders.listing(root, adw_id, joined)
        if listing is None:
            return Outcome(Kind.MISSING, root.name, adw_id)
        return listing, listed_at

    def read(self, root: Root, adw_id: str, listing: FolderListing, listed_at: int, prior: Prior,
             notes: list[str], fingerprint: str | None) -> Change | Outcome:
        """Read one listed workflow folder into a Change (or say why there is nothing to apply).
        Problems in usable files are added to ``notes``; a state or summary file that cannot
        be used rejects the workflow, which keeps its last good data. ``fingerprint`` is
        stored with the change (None while the files are too new to trust one)."""
        if root.kind:  # a session of a source, read by its shape's source
            return self.sources[root.shape].read(root, adw_id, listing, prior, notes, fingerprint,
                                                 self.fresh(listing, listed_at), listed_at)
        return self.folders.read(root, adw_id, listing, listed_at, prior, notes, fingerprint)

    def fresh(self, listing: FolderListing, now_ns: int) -> bool:
        return is_fresh(listing, now_ns, self.config.stale_after_s)

    def fingerprint(self, listing: FolderListing, now_ns: int) -> str:
        return fingerprint_of(listing, now_ns, self.config.stale_after_s)

    # -- processing -------------------------------------------------------------
    def process(self, root: Root, adw_id: str, *, force: bool = False) -> Outcome:
        """Read and apply one workflow now (the daemon's path). Never raises for bad input."""
        return self.process_many([(root, adw_id, None)], force=force)[0]

    def process_many(self, items: Iterable[tuple[Root, str, str | None]], *, force: bool = False) -> list[Outcome]:
        """Read the given workflows and apply the changed ones in one transaction.

        Each item is (root, adw_id, known fingerprint or None). A known fingerprint equal to
        the files' skips the workflow without a query or a parse (the sync's fast path).
        """
        return self.commit(self.prepare(items, force=force))

    def prepare(self, items: Iterable[tuple[Root, str, str | None]], *, force: bool = False,
                snapshots: bool = True) -> list[Outcome]:
        """The read half of process_many: outcomes, the changed workflows' PENDING with their
        change; nothing written. Safe to run in a worker process with its own connection.
        A known fingerprint of NOT_STORED: nothing is stored for it (no query for its prior).

        Each outcome carries the folder's snapshot taken before its files were listed (for
        the daemon's sweep). With ``snapshots`` False (the daemon's reconcile, which has them
        already) an unchanged workflow gets none: two stat calls saved per workflow."""
        return [self._prepare_one(root, adw_id, known, force, snapshots) for root, adw_id, known in items]

    def _prepare_one(self, root: Root, adw_id: str, known: str | None, force: bool, snapshots: bool) -> Outcome:
        started = time.perf_counter()
        notes: list[str] = []
        folder = os.path.join(root.path, adw_id)
        store = bool(root.kind)  # sessions, not a workflow folder of a root
        seen: dict = {"snapshot": snapshot(folder) if snapshots and not store else None, "racy": True}
        prior = None
        if known == NOT_STORED:
            prior, known = Prior(), None
        try:
            joined: tuple[str, ...] = ()
            if self.config.joining and not root.kind:
                if known is None and prior is None:
                    prior = decoded(self.ledger.prior(workflow_id(root.name, adw_id)))
                joined = self.source.named_in(known if known is not None else prior.fingerprint)
            looked = self.look(root, adw_id, joined)
            if isinstance(looked, Outcome):
                return looked
            listing, listed_at = looked
            seen["racy"] = listing.newest_mtime_ns() >= listed_at - RACY_NS
            fingerprint = seen["fingerprint"] = self.fingerprint(listing, listed_at)
            seen["changed_at"] = listing.newest_file_mtime_ns() / 1e9
            if self.fresh(listing, listed_at):
                seen["stale_at"] = seen["changed_at"] + self.config.stale_after_s
            if not force and known is not None and fingerprint == known:
                return Outcome(Kind.UNCHANGED, root.name, adw_id, **seen)
            prior = prior or decoded(self.ledger.prior(workflow_id(root.name, adw_id)))
            if not force and prior.fingerprint is not None and fingerprint == prior.fingerprint:
                return Outcome(Kind.UNCHANGED, root.name, adw_id, **seen)
            if seen["snapshot"] is None and not store:
                seen["snapshot"] = snapshot(folder)  # before the read: a later write differs from it
            result = self.read(root, adw_id, listing, listed_at, prior, notes, None if seen["racy"] else fingerprint)
            if isinstance(result, Outcome):
                return replace(result, **seen)
            return Outcome(Kind.PENDING, root.name, adw_id, notes=tuple(notes), change=result, started=started, **seen)
        except InputRejected as e:
            return Outcome(Kind.FAILED, root.name, adw_id, reason=str(e), transient=e.transient, **seen)
        except Exception as e:  # a bug: say so loudly, keep going with the other workflows
            log.exception("internal error processing %s/%s", root.name, adw_id)
            return Outcome(Kind.FAILED, root.name, adw_id, reason=f"internal error: {e!r}", **seen)

    def commit(self, prepared: list[Outcome]) -> list[Outcome]:
        """The write half: apply every PENDING change of ``prepared`` in one transaction.
        A database that cannot take the write (disk full...) leaves the whole batch NOT_STORED."""
        pending = [o for o in prepared if o.kind is Kind.PENDING]
        if not pending:
            return prepared
        try:
            applied = iter(self._apply(pending))
        except WriteRefused as e:  # said once by the database; each workflow keeps its last stored version
            applied = iter([replace(o, kind=Kind.NOT_STORED, reason=e.cause, change=None) for o in pending])
        return [next(applied) if o.kind is Kind.PENDING else o for o in prepared]

    def _apply(self, pending: list[Outcome]) -> list[Outcome]:
        try:
            results = self.ledger.apply([o.change for o in pending])
        except (WriteRefused, StopRequested):
            raise
        except Exception:
            if len(pending) == 1:
                o = pending[0]
                log.exception("internal error storing %s/%s", o.root, o.adw_id)
                return [replace(o, kind=Kind.FAILED, reason="internal error while storing", change=None)]
            # Isolate the one that fails; the others still land.
            return [done for o in pending for done in self._apply([o])]
        by_id = {r.workflow_id: r for r in results}
        outcomes = []
        for o in pending:
            r = by_id[o.change.workflow.workflow_id]
            if r.conflict:
                # Another writer (a concurrent sync) updated it since we read: read again.
                outcomes.append(self._again(o.root, o.adw_id))
                continue
            if r.claimed_by:
                outcomes.append(replace(o, kind=Kind.SKIPPED, joined_to=r.claimed_by, change=None))
                continue
            kind = Kind.UNCHANGED if r.unchanged else Kind.NEW if r.was_new else Kind.UPDATED
            # The same content gave the same warnings when it was first read: not again.
            outcomes.append(replace(o, kind=kind, patterns=r.pattern_ids, new_patterns=r.new_patterns, change=None,
                                    ms=(time.perf_counter() - o.started) * 1000, notes=() if r.unchanged else o.notes))
        return outcomes + self._read_again(sorted({w for r in results for w in r.read_again}))

    def _read_again(self, workflow_ids: list[str]) -> list[Outcome]:
        """Sessions that lost a response to a copy ranked before theirs (response_keys.py):
        read again from their files' start, now, so that no response counts twice meanwhile."""
        named = {r.name for r in self.config.all_roots}
        return [self._again(*wid.partition("/")[::2]) for wid in workflow_ids
                if wid.partition("/")[0] in named]  # a store no longer configured: its next sync reads it

    def _again(self, root_name: str, adw_id: str) -> Outcome:
        """Read a workflow again now, nested at most MAX_REREADS deep: one that keeps being
        changed by others while it is stored waits for the next pass (transient)."""
        if self._rereads >= MAX_REREADS:
            return Outcome(Kind.FAILED, root_name, adw_id, transient=True,
                           reason=f"{root_name}/{adw_id}: changed by another writer while stored; read at the next pass")
        self._rereads += 1
        try:
            return self.process(self.config.root(root_name), adw_id)
        finally:
            self._rereads -= 1

    def report(self, o: Outcome) -> None:
        """Log what processing a workflow found: its notes, why it failed, or what it stored."""
        log_outcome(o, self.config.all_roots)


def log_outcome(o: Outcome, roots) -> None:
    """Log what processing a workflow found: its notes, why it failed, or what it stored
    (``roots``: the configured roots, and the session sources, to say where)."""
    if o.notes:
        root = next((r for r in roots if r.name == o.root), None)
        where = os.path.join(root.path, o.adw_id) if root else f"{o.root}/{o.adw_id}"
        if root is not None and root.kind:
            where = f"session {o.root}/{o.adw_id}"  # the notes name its files
        log.warning("%s: %s", where, "; ".join(dict.fromkeys(o.notes)))
    if o.kind is Kind.FAILED:
        log.warning("%s", o.reason)
    elif o.kind.stored:
        log.info("%s/%s %s: %d pattern(s), %d new%s, %.1f ms", o.root, o.adw_id, o.kind.value, len(o.patterns),
                 len(o.new_patterns), f" ({', '.join(o.new_patterns)})" if o.new_patterns else "", o.ms)
