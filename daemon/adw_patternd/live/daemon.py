"""`adw-patternd run`: catch up, then keep the database current as workflow files change.

One worker (the main thread) does all reading and writing; watchdog's threads only mark
workflows dirty. Signals set flags that the loop acts on between workflows: SIGTERM and
SIGINT stop after the workflow in hand is committed, SIGHUP reloads config.yaml and
reopens the log file.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from dataclasses import dataclass, field

from ..config import Config, Root, load_config
from ..engine import Engine
from ..core.errors import PatterndError, StopRequested, WriteRefused
from .logs import reopen_logs, setup_logging
from ..outputs.metrics import Metrics
from ..outcome import Kind, Outcome
from .sdnotify import notify, watchdog_interval
from ..store import Ledger, open_ledger
from ..store import automation
from ..store.rows import now_us
from ..sources.claude_sessions import joined_in
from .sweep import UNKNOWN, Sweep, Tracked
from ..sync import Syncer, SyncSummary, list_workflows
from .watcher import Debouncer, Key, Watches

log = logging.getLogger("adw_patternd")

TRANSIENT_RETRY_S = 0.5  # a state file caught mid-write is read again this much later
TRANSIENT_ATTEMPTS = 8  # ... this many times before it is reported as bad
SWEEP_TICK_S = 0.25  # the sweep runs in slices this often; each workflow once per its tier's interval
AUTOMATIONS_S = 10.0  # automated patterns (for regression warnings) are read again this often
STORE_RETRY_S = (1.0, 60.0)  # a database that refused a write is tried again after 1 s, doubling to 60 s


class Signals:
    """SIGTERM/SIGINT and SIGHUP as flags, installed before anything slow (opening and
    migrating the database) so that a stop during start-up is a clean stop too."""

    def __init__(self):
        self.stop = False
        self.reload = False
        self.wake = lambda: None  # the daemon points this at its debouncer

    def install(self) -> None:
        def stop(signum, frame):
            self.stop = True
            self.wake()

        def reload(signum, frame):
            self.reload = True
            self.wake()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)


@dataclass(slots=True)
class Backlog:
    """Workflows read while the database could not take a write (disk full, read-only):
    tried again after a backoff, until a retry stores them; the cause is what STATUS says."""

    keys: set = field(default_factory=set)
    cause: str | None = None
    delay: float = 0.0
    retry_at: float = 0.0

    def add(self, key: Key, cause: str) -> None:
        now = time.monotonic()
        if now >= self.retry_at:  # the first refusal, or a retry refused again: back off further
            self.delay = min(max(self.delay * 2, STORE_RETRY_S[0]), STORE_RETRY_S[1])
            self.retry_at = now + self.delay
        self.cause = cause
        self.keys.add(key)

    def due(self) -> dict[str, set[str]] | None:
        """The workflows to try again now, by root; None before their time."""
        if not self.keys or time.monotonic() < self.retry_at:
            return None
        only: dict[str, set[str]] = {}
        for root, adw_id in self.keys:
            only.setdefault(root, set()).add(adw_id)
        self.keys = set()
        return only


class Daemon:
    def __init__(self, config: Config, ledger: Ledger, signals: Signals | None = None):
        """``ledger``: opened by open_ledger (run_service) with the wait hooks below."""
        self.config = config
        self.signals = signals or Signals()
        self.ledger = ledger
        self.db = ledger.db
        self.engine = Engine(config, self.ledger)
        self.syncer = Syncer(self.engine)
        self.debouncer = Debouncer(config.debounce_ms / 1000)
        self.signals.wake = self.debouncer.wake
        self.watches = Watches(self.debouncer, config.watch.max_active_workflows)
        self.tracked: dict[Key, Tracked] = {}
        self.roots: dict[str, Root] = {r.name: r for r in config.roots}
        self.stores: dict[str, Root] = {s.name: s for s in config.claude_projects}  # session stores
        self.missing_roots: set[str] = set()
        self.root_stats: dict[str, tuple | None] = {}  # each root folder's stat as last swept
        self.root_identities: dict[str, str | None] = {}  # each root folder's device:inode while watched
        self.backlog = Backlog()
        # Workflows without a live watch are found changed by a stat sweep (sweep.py).
        self.sweep = Sweep(config.watch, self.tracked, self.watches, self.debouncer.touch, self._look_live)
        self.live_fingerprints = self.sweep.live_fingerprints
        self.processed = 0
        self.failed = 0
        self._status_at = 0.0
        self.metrics = Metrics(config.metrics.textfile, self.ledger)
        self._automations: dict[str, tuple[int, int]] = {}  # automated patterns, re-read every AUTOMATIONS_S
        self._automations_at = float("-inf")
        self._report_problem: str | None = None  # the last failure to write the report, said once

    # -- main loop ------------------------------------------------------------------
    def run(self) -> int:
        log.info("adw-patternd starting: %d root(s), database %s, pid %d", len(self.roots), self.db.label, os.getpid())
        self.watches.start()
        try:
            for root in list(self.roots.values()):
                self._add_root(root, catch_up=False)
            for store in self.stores.values():
                if not self.watches.watch_store(store):
                    log.warning("session store %s: no live watch on %s; it is read again at each reconcile",
                                store.name, store.path)
            summary = self._sync([*self.roots.values(), *self.stores.values()])
            self._declared_automations()
            self._refresh_automations()
            log.info("catch-up: %s; %d live watches", summary.line(), self.watches.count())
            # What the catch-up built (one record per workflow) lives as long as the daemon:
            # keep it out of the garbage collector's scans, which would otherwise walk
            # hundreds of thousands of objects again and again while idle.
            gc.collect()
            gc.freeze()
            notify("READY=1\nSTATUS=" + self._status_text())
            self._loop()
        except StopRequested:
            log.info("stopping while waiting for the database; the transaction in hand was rolled back "
                     "and will be redone at the next start")
        finally:
            notify("STOPPING=1")
            self._write_metrics()
            self.watches.stop()
            self.sweep.close_all()
            log.info("adw-patternd stopped after processing %d workflow(s)", self.processed)
        return 0

    def _sync(self, roots, *, reconcile: bool = False, only: dict[str, set[str]] | None = None) -> SyncSummary:
        """Catch-up, reconcile and a root that appeared: the sync's path, remembering what it
        saw. A reconcile keeps the snapshots the daemon already has for unchanged folders."""
        return self.syncer.run([r for r in roots if r.name not in self.missing_roots], on_outcome=self._seen,
                               should_stop=lambda: self.signals.stop, quiet_transient=True, snapshots=not reconcile,
                               only=only)

    def _recent_keys(self) -> dict[str, set[str]]:
        return self.sweep.recent(self.roots)

    def _classify(self) -> None:
        self.sweep.classify()

    def _tier_interval(self, index: int) -> float:
        return self.sweep.tier_interval(index)

    def _look_live(self, key: Key, stored: str | None):
        """A live workflow's fingerprint now (for the sweep's check of what inotify missed)."""
        root = self.roots.get(key[0])
        if root is None:
            return UNKNOWN
        try:
            looked = self.engine.look(root, key[1], joined_in(stored))
        except PatterndError:
            return UNKNOWN
        return None if isinstance(looked, Outcome) else self.engine.fingerprint(*looked)

    def _loop(self) -> None:
        now = time.monotonic()
        next_sweep = now + SWEEP_TICK_S
        interval = self.config.reconcile_interval_s
        next_reconcile = now + interval if interval else float("inf")
        all_interval = self.config.reconcile_all_interval_s
        next_reconcile_all = now + all_interval if all_interval else float("inf")
        ping = watchdog_interval()
        next_ping = now
        next_metrics = now
        next_report = now
        while not self.signals.stop:
            now = time.monotonic()
            wait = min(next_sweep, next_reconcile, next_ping if ping else float("inf")) - now
            for key in self.debouncer.take_due(max(0.0, min(wait, 0.5))):
                if self.signals.stop:
                    break  # the rest is left for the next start's catch-up
                self._handle(key)
            now = time.monotonic()
            if self.signals.reload:
                self.signals.reload = False
                self._reload()
            if ping and now >= next_ping:
                notify("WATCHDOG=1")
                next_ping = now + ping
            retry = self.backlog.due()
            if retry is not None:
                self._store_backlog(retry)
            if now >= next_sweep:
                self._sweep_roots()
                self.sweep.tick(SWEEP_TICK_S)
                next_sweep = time.monotonic() + SWEEP_TICK_S
                self.metrics.swept(next_sweep - SWEEP_TICK_S - now)
            if now >= next_reconcile or now >= next_reconcile_all:
                # Every workflow's fingerprint now and then; between, only those that changed
                # this week: a reconcile of folders unchanged for months would find nothing.
                everything = now >= next_reconcile_all
                only = None if everything else self._recent_keys()
                log.info("reconcile%s: %s", "" if everything else " (changed this week)",
                         self._sync(self.roots.values(), reconcile=True, only=only).line())
                if self.stores:  # what inotify may have dropped; a listing and a stat a session
                    log.info("reconcile of the session stores: %s", self._sync(self.stores.values(),
                                                                              reconcile=True).line())
                done = time.monotonic()
                self.metrics.reconciled(done - now)
                next_reconcile = done + interval if interval else float("inf")
                if everything:
                    next_reconcile_all = done + all_interval
            if now - self._automations_at >= AUTOMATIONS_S:
                self._refresh_automations()
            if self.metrics.path and now >= next_metrics:
                self._write_metrics()
                next_metrics = time.monotonic() + self.config.metrics.interval_s
            if self.config.report.html and now >= next_report:
                self._write_report(self.config.report.html)
                next_report = time.monotonic() + self.config.report.every_s
            if now - self._status_at >= 2:
                self._status_at = now
                notify("STATUS=" + self._status_text())

    def _write_metrics(self) -> None:
        live = len(self.watches.workflows)
        self.metrics.write(self.db, live_watches=live, dormant=len(self.tracked) - live)

    def _write_report(self, path) -> None:
        """Rewrite the HTML report. Every time, not only after a change here: reviews and
        other hosts' daemons change what it says too."""
        started = time.monotonic()
        try:
            from ..outputs.html import write_report

            write_report(self.ledger, str(path), now_us=now_us(), recipes=self.config.recipes)
        except PatterndError as e:
            if self._report_problem != str(e):
                log.warning("%s (the daemon goes on and tries again in %.0f s)", e, self.config.report.every_s)
            self._report_problem = str(e)
            return
        except StopRequested:
            raise
        except Exception:
            log.exception("writing the HTML report %s failed (a bug; the daemon goes on)", path)
            return
        if self._report_problem is not None:
            log.info("report: %s written again", path)
        self._report_problem = None
        log.debug("report: wrote %s in %.2f s", path, time.monotonic() - started)

    def _store_backlog(self, only: dict[str, set[str]]) -> None:
        """Try again to store what the database refused; what it refuses again goes back."""
        waiting = sum(len(ids) for ids in only.values())
        summary = self._sync([self.roots[name] for name in only if name in self.roots], only=only)
        if not self.backlog.keys:
            log.info("the database takes writes again: stored the %d workflow(s) read while it could not (%s)",
                     waiting, summary.line())
            self.backlog = Backlog()

    def _status_text(self) -> str:
        text = (f"{len(self.tracked)} workflows tracked, {len(self.watches.workflows)} live; "
                f"{self.processed} processed, {self.failed} failed since start")
        if self.backlog.cause:
            text = (f"waiting for the database ({self.backlog.cause}): {len(self.backlog.keys)} workflow(s) to store; "
                    + text)
        return text

    # -- one workflow -------------------------------------------------------------------
    def _handle(self, key: Key) -> None:
        if key[0] in self.stores:
            self._handle_session(key)
            return
        root = self.roots.get(key[0])
        if root is None or key[0] in self.missing_roots:
            return  # a root that went away: its catch-up reads everything when it is back
        if self.backlog.cause is not None:
            self.backlog.add(key, self.backlog.cause)  # the database refuses writes: no use reading it now
            return
        tracked = self._track(key)
        tracked.last_change = time.monotonic()
        self.watches.activate(root, key[1])  # it changed: watch it live while it is active
        self._record(key, self.engine.process(root, key[1]))

    def _handle_session(self, key: Key) -> None:
        """A session file changed: read it as a workflow of its own, or, when it belongs to an
        ADW workflow, read that workflow again (its fingerprint holds the session's stat)."""
        store = self.stores[key[0]]
        found = self.engine.source.index.find(store, key[1])
        if found is None:
            return  # gone again, or never a session file
        o = self.engine.process(store, key[1])
        if o.kind is Kind.SKIPPED:  # with include_sessions false, a run's session is skipped unread
            owner = o.joined_to or self.ledger.session_owner(key[1])
            root, _, adw_id = (owner or "").partition("/")
            if root in self.roots:
                self.debouncer.touch((root, adw_id), delay=0)
                return
        self._record(key, o)

    def _remember(self, key: Key, tracked: Tracked, o: Outcome) -> None:
        """Keep the folder's snapshot as listed before the read. A file too fresh to trust
        leaves None, so the next sweep reads it again; a bad version is remembered as seen
        (it is not reported again until its files change). Live workflows also keep their
        fingerprint, for the round's check of what inotify may have missed."""
        if o.snapshot is None and o.kind is Kind.UNCHANGED:
            return  # a reconcile found it unchanged: what the daemon remembers still holds
        tracked.snapshot = o.snapshot if (o.kind is Kind.FAILED or not o.racy) else None
        if key in self.watches.workflows:
            self.live_fingerprints[key] = o.fingerprint if not o.racy else None

    def _recheck_when_stale(self, key: Key, o: Outcome) -> None:
        """Read a workflow again when its files turn stale: a run still without its result line
        then becomes `interrupted`, though no file changed to say so."""
        if o.stale_at is not None:
            self.debouncer.touch(key, delay=max(0.0, o.stale_at - time.time()) + 1.0)

    def _track(self, key: Key) -> Tracked:
        tracked = self.tracked.get(key)
        if tracked is None:
            tracked = self.tracked[key] = Tracked()
            self.sweep.add(key)
        return tracked

    def _record(self, key: Key, o: Outcome) -> None:
        self.metrics.outcome(o, live=True)
        tracked = self._track(key)
        if o.kind is Kind.MISSING:
            self._folder_gone(key)
            return
        if o.kind is Kind.NOT_STORED:
            self.backlog.add(key, o.reason)
            return
        self._recheck_when_stale(key, o)
        if o.kind is Kind.FAILED and o.transient and tracked.transient_failures < TRANSIENT_ATTEMPTS:
            # Probably caught mid-write: try again shortly, keep the last good data, say nothing yet.
            tracked.transient_failures += 1
            tracked.snapshot = None
            log.debug("%s (retrying in %.1f s)", o.reason, TRANSIENT_RETRY_S)
            self.debouncer.touch(key, delay=TRANSIENT_RETRY_S)
            return
        tracked.transient_failures = 0
        self._remember(key, tracked, o)
        if o.kind is Kind.FAILED:
            if tracked.failure == (o.reason, o.snapshot):
                return  # the same bad files again (a late event): said once already
            tracked.failure = (o.reason, o.snapshot)
            self.failed += 1
        else:
            tracked.failure = None
            if o.kind.stored:
                self.processed += 1
                self._regressions(o)
        self.engine.report(o)

    def _seen(self, o: Outcome) -> None:
        """What a sync (catch-up, reconcile) saw: remember it so the sweep can tell changes."""
        key = (o.root, o.adw_id)
        self.metrics.outcome(o)
        if o.kind is Kind.MISSING:
            self._folder_gone(key)
            return
        if o.kind is Kind.NOT_STORED:
            self.backlog.add(key, o.reason)
            return
        tracked = self._track(key)
        self._remember(key, tracked, o)
        self._recheck_when_stale(key, o)
        if o.kind.stored:
            self.processed += 1
            self._regressions(o)
            if o.snapshot and time.time_ns() - o.snapshot.state_mtime_ns < self.config.watch.active_window_s * 1e9:
                tracked.last_change = time.monotonic()
                if self.watches.activate(self.roots[o.root], o.adw_id):
                    # Read once more now that the watch exists: a write between the read and
                    # the watch would otherwise be announced by nothing.
                    self.debouncer.touch(key)
        elif o.kind is Kind.FAILED:
            self.failed += 1
            if o.transient:
                self.debouncer.touch(key, delay=TRANSIENT_RETRY_S)

    def _regressions(self, o: Outcome) -> None:
        """Warn once per (workflow, signature) when a stored workflow does what a tool was to do
        since its automation day; what was warned is kept in the database (no repeat on a
        re-read or a restart)."""
        if time.monotonic() - self._automations_at >= AUTOMATIONS_S:
            self._refresh_automations()
        if self._automations and o.patterns:
            try:
                self._warn(automation.new_regressions(self.db, f"{o.root}/{o.adw_id}", o.patterns, self._automations))
            except WriteRefused:
                pass  # said by the database; this warning is lost with the write (show still lists it)

    def _declared_automations(self) -> None:
        try:
            for sig in automation.record_declared(self.db, self.config.automated):
                log.info("%s recorded as automated, as config.yaml declares", sig)
        except WriteRefused:
            pass  # said by the database; recorded at the next start

    def _refresh_automations(self) -> None:
        """Read the automated patterns again (reviews are recorded by another process). A
        pattern automated since the last look may have regressions stored already: each is
        warned about now, once. A database that cannot take the write leaves it for later."""
        old, self._automations = self._automations, automation.automated(self.db)
        self._automations_at = time.monotonic()
        try:
            for sig, (pid, on) in self._automations.items():
                if old.get(sig) != (pid, on):
                    for r in automation.regressions(self.db, pid, on):
                        self._warn(automation.new_regressions(self.db, r["workflow_id"], [pid], {sig: (pid, on)}))
        except WriteRefused:
            self._automations = old  # warned about when the database takes writes again

    def _warn(self, regressions: list[dict]) -> None:
        for r in regressions:
            on = self._automations[r["signature"]][1]
            log.warning("regression: %s did %s, automated on %s (agent %s; command %s): an agent is doing "
                        "through the LLM what a tool was to do", r["workflow_id"], r["signature"],
                        time.strftime("%Y-%m-%d", time.gmtime(on / 1e6)), ", ".join(r["agents"]) or "-",
                        "; ".join(r["command_lines"]) or "-")

    def _folder_gone(self, key: Key) -> None:
        """Forget the folder here; whether it counts as a deletion is the root's health's call."""
        self.watches.deactivate(key)
        self.live_fingerprints.pop(key, None)
        if self.tracked.pop(key, None) is None or key[0] not in self.roots:
            return
        self.syncer.folder_gone(self.roots[key[0]], key[1])

    # -- roots --------------------------------------------------------------------------
    def _add_root(self, root: Root, *, catch_up: bool) -> None:
        """Watch a root if it can be read now (else wait for it: the guard said why)."""
        self.roots[root.name] = root
        health = self.syncer.guard.health(root)
        if not health.readable:
            self.missing_roots.add(root.name)
            return
        self.missing_roots.discard(root.name)
        self.root_identities[root.name] = health.identity
        self.sweep.open_root(root)
        if not self.watches.watch_root(root):
            log.warning("root %s: no live watch; new workflow folders are found by the sweep", root.name)
        self.root_stats[root.name] = _root_stat(root)
        if catch_up:
            log.info("root %s: %s", root.name, self._sync([root]).line())

    def _drop_root(self, name: str) -> None:
        """Stop watching a root that went away; its workflows and their data stay."""
        self.watches.unwatch_root(name)
        self.sweep.close_root(name)
        self.missing_roots.add(name)

    def _sweep_roots(self) -> None:
        """Roots that went away or came back (the guard says which, and why, once), a root
        folder replaced by another (a mount came or went: its watch and its open fd see the
        old one), and new folders in a root without a live watch. One stat a root a tick:
        the guard looks only when the root folder's own stat changed (device and inode for
        a mount or a replacement, mtime for folders added or removed, ctime for a chmod)."""
        for name, root in list(self.roots.items()):
            seen = _root_stat(root)
            if seen == self.root_stats.get(name):
                continue
            self.root_stats[name] = seen
            health = self.syncer.guard.health(root)
            if name in self.missing_roots:
                if health.readable:
                    self._add_root(root, catch_up=True)
                continue
            if not health.readable or health.identity != self.root_identities.get(name):
                self._drop_root(name)
                if health.readable:
                    log.info("root %s: folder %s was replaced (now %s); watching the new one", name, root.path,
                             health.identity)
                    self._add_root(root, catch_up=True)
                continue
            for adw_id in list_workflows(root) or ():  # a folder came or went (watched root or not)
                if (name, adw_id) not in self.tracked:
                    self.debouncer.touch((name, adw_id))

    # -- reload -------------------------------------------------------------------------
    def _reload(self) -> None:
        reopen_logs()
        try:
            new = load_config(self.config.path)
        except PatterndError as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            return
        if new.database != self.config.database:
            log.warning("reload: a new database takes effect only after a restart (keeping %s)", self.db.label)
        if new.derivation_key() != self.config.derivation_key() or new.max_file_bytes != self.config.max_file_bytes:
            log.warning("reload: rules, prices, tool_cost_ratio and max_file_bytes take effect after a restart")
        if new.claude_projects != self.config.claude_projects:
            log.warning("reload: claude_projects (session stores) take effect after a restart")
        setup_logging(new.log)
        old_roots = dict(self.roots)
        for name in set(old_roots) - {r.name for r in new.roots}:
            self.watches.unwatch_root(name)
            self.sweep.close_root(name)
            self.roots.pop(name, None)
            self.missing_roots.discard(name)
            for key in [k for k in self.tracked if k[0] == name]:
                del self.tracked[key]
            log.info("reload: root %s removed", name)
        self.config = _keep_store_settings(new, self.config)
        self.engine.config = self.config
        self.metrics.retarget(self.config.metrics.textfile)
        self.debouncer.delay = self.config.debounce_ms / 1000
        self.watches.max_active = self.config.watch.max_active_workflows
        self.sweep.watch = self.config.watch
        for root in new.roots:
            if root.name not in old_roots or old_roots[root.name].path != root.path:
                if root.name in old_roots:
                    self.watches.unwatch_root(root.name)
                log.info("reload: root %s added (%s)", root.name, root.path)
                self._add_root(root, catch_up=True)
        log.info("reload: configuration reloaded from %s; %d root(s)", new.path, len(self.roots))


def _root_stat(root: Root) -> tuple | None:
    try:
        st = os.stat(root.path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


def _keep_store_settings(new: Config, old: Config) -> Config:
    """Settings that need a restart stay as they were in the running daemon."""
    from dataclasses import replace

    return replace(new, database=old.database, prices=old.prices, rules=old.rules,
                   tool_cost_ratio=old.tool_cost_ratio, max_file_bytes=old.max_file_bytes,
                   claude_projects=old.claude_projects)


def run_service(config: Config) -> int:
    setup_logging(config.log)
    signals = Signals()
    signals.install()
    ping = watchdog_interval()
    try:
        # Waiting for the database (locked, unreachable) is not a hang, and a stop ends the wait.
        with open_ledger(config, on_wait=(lambda: notify("WATCHDOG=1")) if ping else None,
                         give_up=lambda: signals.stop) as ledger:
            return Daemon(config, ledger, signals).run()
    except StopRequested:
        log.info("stopped while opening the database")
        return 0
    except PatterndError as e:
        log.error("%s", e)
        raise
