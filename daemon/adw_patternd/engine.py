"""The one code path from workflow files to the ledger, shared by `sync`, the daemon's
catch-up, its live updates and its reconcile.

A workflow is read only when its files' fingerprint (inode, size, mtime of each file)
differs from the one stored with it; raw_output.jsonl files are read from the stored
offset. A fingerprint taken while a file was still being written is not stored (as git
does with "racy" index entries), so a second write within the same clock tick is never
mistaken for no change.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from .config import Config, Root
from .errors import InputRejected
from .files import (ERROR_LOG, LOG_EDGE_BYTES, RACY_NS, STATE_FILE, SUMMARY_FILE, FolderListing, Snapshot,
                    list_folder, list_prompts, read_edges, read_small, read_tail, read_transcript, snapshot)
from .parse import Observed, build_workflow, issue_title, log_times, merge_summary, needs_issue_title, parse_state
from .transcript import Transcript, stored
from .rules import detect
from .store.ledger import Change, Ledger, Prior

log = logging.getLogger("adw_patternd")

WORKER_TIMEOUT_S = 300  # far beyond the time to read one batch of 256 workflows


@dataclass(frozen=True)
class Outcome:
    """What processing one workflow did. kind: new, updated, unchanged, failed, skipped, missing."""

    kind: str
    root: str
    adw_id: str
    patterns: tuple[int, ...] = ()
    new_patterns: tuple[str, ...] = ()
    reason: str | None = None
    transient: bool = False
    ms: float = 0.0
    notes: tuple[str, ...] = ()  # problems found in usable files, logged as one warning
    # The folder as listed before reading (for the daemon's sweep), whether its newest file
    # was too fresh for its mtime to prove that a later write changed it, and its fingerprint.
    snapshot: Snapshot | None = None
    racy: bool = True
    fingerprint: str | None = None
    # While a file is fresh, a run without its result line counts as running; at this wall
    # time (epoch seconds) it turns stale, and a read then says interrupted.
    stale_at: float | None = None
    changed_at: float | None = None  # the newest file's mtime (epoch seconds): for change-to-commit latency


@dataclass
class SyncSummary:
    scanned: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    deleted: int = 0
    seconds: float = 0.0

    def count(self, o: Outcome) -> None:
        self.scanned += 1
        if o.kind in ("new", "updated", "unchanged", "failed", "skipped"):
            setattr(self, o.kind, getattr(self, o.kind) + 1)
        elif o.kind == "missing":
            self.deleted += 1

    def line(self) -> str:
        return (f"scanned {self.scanned}, new {self.new}, updated {self.updated}, unchanged {self.unchanged}, "
                f"failed {self.failed}, skipped {self.skipped} (not a workflow folder), deleted {self.deleted} "
                f"in {self.seconds:.2f} s")


@dataclass
class _Pending:
    """A change read from the files, waiting for its transaction."""

    root: Root
    adw_id: str
    change: Change
    started: float
    notes: tuple[str, ...] = ()
    snapshot: Snapshot | None = None
    racy: bool = True
    fingerprint: str | None = None
    stale_at: float | None = None
    changed_at: float | None = None


def workflow_id_of(root: Root, adw_id: str) -> str:
    return f"{root.name}/{adw_id}"


class Engine:
    def __init__(self, config: Config, ledger: Ledger, carried: dict[tuple[str, str], tuple] | None = None):
        """``carried``: overwritten runs, by (workflow id, transcript path), to start a transcript
        with when this database holds none (verify --files: the runs only the ledger knows)."""
        self.config = config
        self.ledger = ledger
        self.carried = carried or {}
        self._root_real: dict[str, str] = {}

    def root_real(self, root: Root) -> str:
        real = self._root_real.get(root.name)
        if real is None:
            real = self._root_real[root.name] = os.path.realpath(root.path)
        return real

    # -- reading --------------------------------------------------------------
    def look(self, root: Root, adw_id: str):
        """stat a workflow folder: (listing, listed_at), or an Outcome when it is gone."""
        folder = os.path.join(root.path, adw_id)
        listed_at = time.time_ns()
        listing = list_folder(folder, self.root_real(root))
        if listing is None:
            return Outcome("missing", root.name, adw_id)
        return listing, listed_at

    def read(self, root: Root, adw_id: str, listing: FolderListing, listed_at: int, prior: Prior,
             notes: list[str], fingerprint: str | None) -> Change | Outcome:
        """Read one listed workflow folder into a Change (or say why there is nothing to apply).
        Problems in usable files are added to ``notes``; a state or summary file that cannot
        be used rejects the workflow, which keeps its last good data. ``fingerprint`` is
        stored with the change (None while the files are too new to trust one)."""
        folder = listing.path
        notes.extend(listing.problems)
        for name in (STATE_FILE, SUMMARY_FILE):  # there, but not a file we can read
            path = os.path.join(folder, name)
            bad = next((p for p in listing.problems if p.startswith(path + ":")), None)
            if bad:
                raise InputRejected(path, bad[len(path) + 2:])
        if not listing.is_workflow:
            return Outcome("skipped", root.name, adw_id)
        max_bytes = self.config.max_file_bytes
        state = summary = None
        if listing.state is not None:
            path = os.path.join(folder, STATE_FILE)
            state = parse_state(path, read_small(path, listing.state, max_bytes), notes)
        if listing.summary is not None:
            path = os.path.join(folder, SUMMARY_FILE)
            summary = parse_state(path, read_small(path, listing.summary, max_bytes), notes)
        fields = merge_summary(state, summary)
        rules = self.config.rules.commands
        transcripts = tuple(
            read_transcript(os.path.join(folder, out.name), prior.transcripts.get(out.name) or Transcript(
                out.name, overwritten=self.carried.get((workflow_id_of(root, adw_id), out.name), ())),
                            self.config.prices, notes, rules, listed_at)
            for out in listing.outputs)
        error_tail = None
        if listing.error_log is not None and listing.error_log.size > 0:
            error_tail = read_tail(os.path.join(folder, ERROR_LOG)) or None
        log_start = log_end = None
        if fields.start_time is None and fields.end_time is None and listing.execution_logs:
            log_start, log_end = self._log_times(folder, listing)
        title = self._issue_title(folder, listing, root, notes) if needs_issue_title(fields) else None
        observed = Observed(fields, transcripts, error_tail, log_start, log_end, listing.oldest_mtime_ns(),
                            listing.newest_file_mtime_ns(), self.fresh(listing, listed_at), title)
        wf = build_workflow(root.name, adw_id, observed, self.config.prices, notes)
        found = detect(wf, self.config.rules)
        return Change(wf, found.occurrences, found.characteristics, tuple(stored(t) for t in transcripts),
                      fingerprint, prior.revision)

    def fresh(self, listing: FolderListing, now_ns: int) -> bool:
        """A file changed within stale_after_s: a run without a result line may still be going."""
        return now_ns - listing.newest_file_mtime_ns() < self.config.stale_after_s * 1e9

    def fingerprint(self, listing: FolderListing, now_ns: int) -> str:
        """The files' identity, plus whether they are still fresh: a workflow whose unfinished
        run goes stale is read once more (to become `interrupted`) without any file changing."""
        return listing.fingerprint() + ("|fresh" if self.fresh(listing, now_ns) else "")

    def _log_times(self, folder: str, listing: FolderListing):
        starts, ends = [], []
        for log_file in listing.execution_logs:
            head, tail = read_edges(os.path.join(folder, log_file.name), LOG_EDGE_BYTES, LOG_EDGE_BYTES)
            start, end = log_times(head, tail)
            if start:
                starts.append(start)
            if end:
                ends.append(end)
        return (min(starts) if starts else None), (max(ends) if ends else None)

    def _issue_title(self, folder: str, listing: FolderListing, root: Root, notes: list[str]) -> str | None:
        """The issue title in the first prompt file that carries the issue's JSON."""
        for path, found in list_prompts(folder, listing.agent_folders, self.root_real(root)):
            try:
                data = read_small(path, found, self.config.max_file_bytes)
            except InputRejected as e:
                notes.append(f"{path}: {e.reason} (prompt file skipped)")
                continue
            title = issue_title(data.decode("utf-8", errors="replace"))
            if title:
                return title
        return None

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
                snapshots: bool = True) -> list:
        """The read half of process_many: Outcomes and _Pending changes, nothing written.
        Safe to run in a worker process with its own database connection.

        Each outcome carries the folder's snapshot taken before its files were listed (for
        the daemon's sweep). With ``snapshots`` False (the daemon's reconcile, which has them
        already) an unchanged workflow gets none: two stat calls saved per workflow."""
        prepared: list[Outcome | _Pending] = []
        for root, adw_id, known in items:
            started = time.perf_counter()
            notes: list[str] = []
            folder = os.path.join(root.path, adw_id)
            seen = {"snapshot": snapshot(folder) if snapshots else None, "racy": True}
            try:
                looked = self.look(root, adw_id)
                if isinstance(looked, Outcome):
                    prepared.append(looked)
                    continue
                listing, listed_at = looked
                seen["racy"] = listing.newest_mtime_ns() >= listed_at - RACY_NS
                fingerprint = seen["fingerprint"] = self.fingerprint(listing, listed_at)
                seen["changed_at"] = listing.newest_file_mtime_ns() / 1e9
                if self.fresh(listing, listed_at):
                    seen["stale_at"] = seen["changed_at"] + self.config.stale_after_s
                if not force and known is not None and fingerprint == known:
                    prepared.append(Outcome("unchanged", root.name, adw_id, **seen))
                    continue
                prior = self.ledger.prior(workflow_id_of(root, adw_id))
                if not force and prior.fingerprint is not None and fingerprint == prior.fingerprint:
                    prepared.append(Outcome("unchanged", root.name, adw_id, **seen))
                    continue
                if seen["snapshot"] is None:
                    seen["snapshot"] = snapshot(folder)  # before the read: a later write differs from it
                result = self.read(root, adw_id, listing, listed_at, prior, notes,
                                   None if seen["racy"] else fingerprint)
                if isinstance(result, Outcome):
                    prepared.append(replace(result, **seen))
                else:
                    prepared.append(_Pending(root, adw_id, result, started, tuple(notes), **seen))
            except InputRejected as e:
                prepared.append(Outcome("failed", root.name, adw_id, reason=str(e), transient=e.transient, **seen))
            except Exception as e:  # a bug: say so loudly, keep going with the other workflows
                log.exception("internal error processing %s/%s", root.name, adw_id)
                prepared.append(Outcome("failed", root.name, adw_id, reason=f"internal error: {e!r}", **seen))
        return prepared

    def commit(self, prepared: list) -> list[Outcome]:
        """The write half: apply every pending change of ``prepared`` in one transaction."""
        pending = [p for p in prepared if isinstance(p, _Pending)]
        if not pending:
            return prepared
        applied = iter(self._apply(pending))
        return [next(applied) if isinstance(p, _Pending) else p for p in prepared]

    def _apply(self, pending: list[_Pending]) -> list[Outcome]:
        try:
            results = self.ledger.apply([p.change for p in pending])
        except Exception:
            if len(pending) == 1:
                p = pending[0]
                log.exception("internal error storing %s/%s", p.root.name, p.adw_id)
                return [Outcome("failed", p.root.name, p.adw_id, reason="internal error while storing")]
            # Isolate the one that fails; the others still land.
            return [o for p in pending for o in self._apply([p])]
        by_id = {r.workflow_id: r for r in results}
        outcomes = []
        for p in pending:
            r = by_id[p.change.workflow.workflow_id]
            if r.conflict:
                # Another writer (a concurrent sync) updated it since we read: read again.
                outcomes.append(self.process(p.root, p.adw_id))
                continue
            kind = "unchanged" if r.unchanged else "new" if r.was_new else "updated"
            # The same content gave the same warnings when it was first read: not again.
            outcomes.append(Outcome(kind, p.root.name, p.adw_id, r.pattern_ids, r.new_patterns,
                                    ms=(time.perf_counter() - p.started) * 1000, notes=() if r.unchanged else p.notes,
                                    snapshot=p.snapshot, racy=p.racy, fingerprint=p.fingerprint,
                                    stale_at=p.stale_at, changed_at=p.changed_at))
        return outcomes

    # -- whole roots --------------------------------------------------------------
    def list_workflows(self, root: Root) -> list[str] | None:
        """The workflow folder names in a root (symlinks included: reading them checks
        where they lead); None when the root does not exist."""
        try:
            entries = list(os.scandir(root.path))
        except (FileNotFoundError, NotADirectoryError):
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

    def sync(self, roots: Iterable[Root] | None = None, *, progress: Callable[[int, int], None] | None = None,
             on_outcome: Callable[[Outcome], None] | None = None,
             should_stop: Callable[[], bool] | None = None, quiet_transient: bool = False,
             workers: int = 1, snapshots: bool = True, only: dict[str, set[str]] | None = None) -> SyncSummary:
        """Scan roots once. ``quiet_transient``: the daemon retries files caught mid-write
        itself, so they are not reported yet. ``workers`` > 1 reads in that many forked
        processes while this one writes (only where no other thread runs: forking a
        threaded process is unsafe). ``only``: just these workflow folders of each root (by
        root name), without listing the roots; deleted folders are then not looked for."""
        summary = SyncSummary()
        started = time.perf_counter()
        plan = []
        for root in roots or self.config.roots:
            if only is not None:
                plan.append((root, sorted(only.get(root.name, ()))))
                continue
            names = self.list_workflows(root)
            if names is None:
                log.warning("root %s: folder %s does not exist (skipped)", root.name, root.path)
                continue
            plan.append((root, names))
        total = sum(len(n) for _, n in plan)
        batch = self.config.sync_batch_size
        jobs = []
        for root, names in plan:
            known = self.ledger.fingerprints(root.name, names if only is not None else None)
            jobs += [[(root, n, known.get(n)) for n in names[i : i + batch]] for i in range(0, len(names), batch)]
        pool = None
        if workers > 1 and len(jobs) > 2 and threading.active_count() == 1:
            pool = multiprocessing.get_context("fork").Pool(workers, _worker_init, (self.config, self.carried))
        done = 0
        try:
            batches = self._read_in_workers(pool, jobs) if pool else (self.prepare(job, snapshots=snapshots)
                                                                      for job in jobs)
            for prepared in batches:
                if should_stop and should_stop():
                    break
                for o in self.commit(prepared):
                    summary.count(o)
                    if not (quiet_transient and o.transient):
                        self.report(o)
                    if on_outcome:
                        on_outcome(o)
                    done += 1
                if progress:
                    progress(done, total)
        finally:
            if pool:
                pool.terminate()
                pool.join()
        if only is None and not (should_stop and should_stop()):
            for root, names in plan:
                present = set(names)
                for adw_id in sorted(set(self.ledger.fingerprints(root.name)) - present):
                    summary.deleted += 1
                    if self.config.drop_deleted_workflows:
                        self.ledger.forget(workflow_id_of(root, adw_id))
                        log.info("%s/%s: folder deleted; dropped from the database", root.name, adw_id)
        summary.seconds = time.perf_counter() - started
        return summary

    def _read_in_workers(self, pool, jobs: list):
        """The workers' prepared batches, in order. A worker that dies (the OOM killer) would
        leave its batch unanswered for ever: after WORKER_TIMEOUT_S the rest is read here."""
        results = pool.imap(_worker_prepare, jobs)
        for i in range(len(jobs)):
            try:
                yield results.next(timeout=WORKER_TIMEOUT_S)
            except multiprocessing.TimeoutError:
                log.error("a reading worker gave no answer in %d s; reading the remaining %d batches in one process",
                          WORKER_TIMEOUT_S, len(jobs) - i)
                pool.terminate()
                for job in jobs[i:]:
                    yield self.prepare(job)
                return

    def report(self, o: Outcome) -> None:
        if o.notes:
            root = next((r for r in self.config.roots if r.name == o.root), None)
            where = os.path.join(root.path, o.adw_id) if root else f"{o.root}/{o.adw_id}"
            log.warning("%s: %s", where, "; ".join(dict.fromkeys(o.notes)))
        if o.kind == "failed":
            log.warning("%s", o.reason)
        elif o.kind in ("new", "updated"):
            log.info("%s/%s %s: %d pattern(s), %d new%s, %.1f ms", o.root, o.adw_id, o.kind, len(o.patterns),
                     len(o.new_patterns), f" ({', '.join(o.new_patterns)})" if o.new_patterns else "", o.ms)


# -- the sync's worker processes ------------------------------------------------------------
_worker: Engine | None = None


def _worker_init(config: Config, carried: dict) -> None:
    """In a forked worker: its own database connection (for read offsets), never the parent's."""
    global _worker
    from .store.db import open_db

    # Reading makes many short-lived objects (parsed JSON lines) and no cycles to speak of;
    # collecting the young generation every 700 allocations cost about a tenth of the time.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)

    _worker = Engine(config, Ledger(open_db(config.database), config.tool_cost_ratio, config.derivation_key()),
                     carried)


def _worker_prepare(job):
    return _worker.prepare(job)
