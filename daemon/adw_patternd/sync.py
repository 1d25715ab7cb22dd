"""Whole roots: which workflow folders to read, reading them (in forked worker processes for
`sync`: sync_workers.py), committing in batches, reading a file caught mid-write again, and
what to do about folders that are gone. The one path for `sync`, the daemon's catch-up and
its reconciles; live updates use the engine directly and come here for a folder that went
away.

A folder missing from a root is a deletion only while the root is healthy (roots.py).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .config import Config, Root
from .core.model import workflow_id
from .engine import NOT_STORED, Engine
from .core.errors import WriteRefused
from .core.outcome import Kind, Outcome
from .roots import RootGuard, RootHealth
from .sync_workers import read_jobs

log = logging.getLogger("adw_patternd")

TRANSIENT_PAUSES_S = (0.2, 0.5, 1.0)  # before each new read of a file a sync caught mid-write


@dataclass
class SyncSummary:
    scanned: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    deleted: int = 0
    not_stored: int = 0  # read, but the database could not take the write
    store_problem: str | None = None  # ... and why
    unavailable: list[str] = field(default_factory=list)  # roots not read: missing, unreadable, empty...
    kept: int = 0  # missing from a root that is not the folder it was: not deleted
    joined: int = 0  # sessions of a store that belong to an ADW workflow (not workflows of their own)
    seconds: float = 0.0

    def count(self, o: Outcome) -> None:
        self.scanned += 1
        if o.kind is Kind.MISSING:
            self.deleted += 1
        elif o.joined_to is not None:
            self.joined += 1
        elif o.kind is Kind.NOT_STORED:
            self.not_stored += 1
            self.store_problem = o.reason
        else:
            setattr(self, o.kind.value, getattr(self, o.kind.value) + 1)

    def line(self) -> str:
        text = (f"scanned {self.scanned}, new {self.new}, updated {self.updated}, unchanged {self.unchanged}, "
                f"failed {self.failed}, skipped {self.skipped} (not a workflow folder), deleted {self.deleted} "
                f"in {self.seconds:.2f} s")
        if self.joined:
            text += f"; {self.joined} session(s) joined to their ADW workflows"
        if self.not_stored:
            text += f"; {self.not_stored} read but not stored (the database could not take the write)"
        if self.kept:
            text += f"; {self.kept} missing but kept (their root is not the folder it was)"
        if self.unavailable:
            text += f"; root(s) not available, nothing of them read or deleted: {', '.join(self.unavailable)}"
        return text


def list_workflows(root: Root) -> list[str] | None:
    """The workflow folder names in a root (symlinks included: reading them checks where they
    lead), sorted; None when the root cannot be listed."""
    try:
        entries = list(os.scandir(root.path))
    except OSError:
        return None
    names = []
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False) or (e.is_symlink() and e.is_dir()):
                names.append(e.name)
        except OSError:
            continue
    names.sort()
    return names


class Syncer:
    def __init__(self, engine: Engine, *, adopt_roots: bool = False):
        self.engine = engine
        self.guard = RootGuard(engine.ledger.db, adopt=adopt_roots)

    @property
    def config(self) -> Config:
        return self.engine.config

    def run(self, roots: Iterable[Root] | None = None, *, progress: Callable[[int, int], None] | None = None,
            on_outcome: Callable[[Outcome], None] | None = None, should_stop: Callable[[], bool] | None = None,
            quiet_transient: bool = False, workers: int = 1, snapshots: bool = True,
            only: dict[str, set[str]] | None = None) -> SyncSummary:
        """Scan roots once (None: every configured root; an empty list: none).
        ``quiet_transient``: the daemon retries files caught mid-write itself, so they are not
        reported yet. ``workers`` > 1 reads in that many forked processes while this one
        writes (only where no other thread runs: forking a threaded process is unsafe).
        ``only``: just these workflow folders of each root (by root name), without listing
        the roots; deleted folders are then not looked for."""
        summary = SyncSummary()
        started = time.perf_counter()
        if only is None:
            self.guard.refresh()  # a full pass: another process may have adopted a root meanwhile
            for source in self.engine.sources.values():
                source.refresh()
        # ADW roots first: the sessions their runs claim are then known when the stores are read.
        plan = self._plan(self.config.all_roots if roots is None else roots, only, summary)
        jobs, ordered_jobs = self._jobs(plan, only)
        total = sum(len(job) for job in jobs + ordered_jobs)
        done = 0
        # Some sources' sessions are read here, in order (a home's parents first): a read
        # needs what those before it counted.
        ordered = (self.engine.prepare(job, snapshots=snapshots) for job in ordered_jobs)
        # A file caught mid-write (an agent rewriting a whole .json chat) is read again a
        # moment later before it counts as failed; the daemon does that itself (quiet_transient).
        pauses = () if quiet_transient else TRANSIENT_PAUSES_S
        held: list[Outcome] = []
        for prepared in itertools.chain(read_jobs(self.engine, jobs, workers, snapshots), ordered):
            if should_stop and should_stop():
                break
            for o in self.engine.commit(prepared):
                if o.transient and pauses:
                    held.append(o)
                else:
                    self._settle(o, summary, quiet_transient, on_outcome)
                done += 1
            if progress:
                progress(done, total)
        for pause in pauses:
            if not held or (should_stop and should_stop()):
                break
            time.sleep(pause)
            held = self._read_again(held, snapshots, summary, on_outcome)
        for o in held:
            self._settle(o, summary, quiet_transient, on_outcome)
        if only is None and not (should_stop and should_stop()):
            for root, names, health in plan:
                self._deleted(root, names, health, summary)
        summary.seconds = time.perf_counter() - started
        return summary

    def _settle(self, o: Outcome, summary: SyncSummary, quiet_transient: bool, on_outcome) -> None:
        """Count and report one outcome that is final."""
        summary.count(o)
        if not (quiet_transient and o.transient):
            self.engine.report(o)
        if on_outcome:
            on_outcome(o)

    def _read_again(self, held: list[Outcome], snapshots: bool, summary: SyncSummary, on_outcome) -> list[Outcome]:
        """Read the workflows of ``held`` (transient failures) again, here; settle what is
        final now and return the outcomes still transient."""
        only: dict[str, set[str]] = {}
        for o in held:
            only.setdefault(o.root, set()).add(o.adw_id)
        roots = [r for r in self.config.all_roots if r.name in only]
        jobs, ordered_jobs = self._jobs(self._plan(roots, only, SyncSummary()), only)
        still = {(o.root, o.adw_id): o for o in held}  # a root unreadable now keeps its first outcomes
        for job in jobs + ordered_jobs:
            for o in self.engine.commit(self.engine.prepare(job, snapshots=snapshots)):
                if o.transient:
                    still[o.root, o.adw_id] = o
                else:
                    still.pop((o.root, o.adw_id), None)
                    self._settle(o, summary, False, on_outcome)
        return list(still.values())

    def _jobs(self, plan, only) -> tuple[list, list]:
        """Batches of (root, name, known fingerprint): those any process may read, and the
        sources' that keep what they listed in this process (read here, in order)."""
        batch = self.config.sync_batch_size
        jobs: list = []
        ordered_jobs: list = []
        for root, names, _health in plan:
            known = self.engine.ledger.fingerprints(root.name, names if only is not None else None)
            here = bool(root.kind) and self.engine.sources[root.shape].in_process
            (ordered_jobs if here else jobs).extend(
                [(root, n, known.get(n, NOT_STORED)) for n in names[i : i + batch]]
                for i in range(0, len(names), batch))
        return jobs, ordered_jobs

    def _plan(self, roots: Iterable[Root], only: dict[str, set[str]] | None,
              summary: SyncSummary) -> list[tuple[Root, list[str], RootHealth]]:
        """Each readable root with the folders to read in it."""
        plan = []
        for root in roots:
            if only is not None:
                names = None
            elif root.kind:
                names = self.engine.sources[root.shape].names(root)
            else:
                names = list_workflows(root)
            health = self.guard.health(root, names)
            if not health.readable or (only is None and names is None):  # None: it went away just now
                summary.unavailable.append(root.name)
                continue
            plan.append((root, names if names is not None else sorted(only.get(root.name, ())), health))
        return plan

    # -- folders that are gone -----------------------------------------------------------
    def _deleted(self, root: Root, names: list[str], health: RootHealth, summary: SyncSummary) -> None:
        """The stored workflows of a fully listed root whose folders are not in it."""
        gone = sorted(set(self.engine.ledger.fingerprints(root.name)) - set(names))
        if gone and not health.deletions_allowed:
            summary.kept += len(gone)  # the guard said why, once
        else:
            for adw_id in gone:
                summary.deleted += 1
                self._forget(root, adw_id, say_kept=False)
        self.guard.settle(root, health, absent=len(gone))

    def folder_gone(self, root: Root, adw_id: str) -> bool:
        """A workflow folder found missing (live, or by a reconcile of known folders): a
        deletion only if its root is healthy now. Returns whether it counted as one."""
        if not self.guard.health(root).deletions_allowed:
            log.debug("%s/%s: folder not found, but its root is not available: kept", root.name, adw_id)
            return False
        self._forget(root, adw_id, say_kept=True)
        return True

    def _forget(self, root: Root, adw_id: str, *, say_kept: bool) -> None:
        if not self.config.drop_deleted_workflows:
            if say_kept:
                log.info("%s/%s: folder deleted; its history is kept", root.name, adw_id)
            return
        try:
            self.engine.ledger.forget(workflow_id(root.name, adw_id))
        except WriteRefused:
            return  # said by the database; the next pass finds it gone again
        log.info("%s/%s: folder deleted; dropped from the database", root.name, adw_id)
