"""`adw-patternd run`: catch up, then keep the database current as workflow files change.

One worker (the main thread) does all reading and writing; watchdog's threads only mark
workflows dirty. Signals set flags that the loop acts on between workflows: SIGTERM and
SIGINT stop after the workflow in hand is committed, SIGHUP reloads config.yaml and
reopens the log file.

The Daemon is the loop and the order of things; each of its rooms has one job: what is done
with an outcome (outcomes.py: counted and logged as the sync does, after the daemon's own
bookkeeping of the folder), the roots' lifecycle (roots.py), automations and their
regressions (automations.py), the metrics file and the HTML report (publish.py), the
workflows waiting for a database that refused writes (backlog.py), the stat sweep
(sweep.py), the watches and their debouncer (watcher.py).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time

from ..config import Config, load_config
from ..core.errors import PatterndError, StopRequested
from ..engine import Engine
from ..core.outcome import Kind, Outcome
from ..outputs.metrics import Metrics
from ..store import Ledger, open_ledger
from ..sync import Syncer, SyncSummary
from .automations import Automations
from .backlog import Backlog
from .logs import reopen_logs, setup_logging
from .outcomes import Outcomes
from .publish import Publisher
from .roots import LiveRoots
from .session_roots import LiveSources
from .sdnotify import notify, watchdog_interval
from .stores import UnwatchedStores
from .sweep import UNKNOWN, Sweep, Tracked
from .watcher import Debouncer, Key, Watches

log = logging.getLogger("adw_patternd")

SWEEP_TICK_S = 0.25  # the sweep runs in slices this often; each workflow once per its tier's interval


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
        self.backlog = Backlog()
        # Workflows without a live watch are found changed by a stat sweep (sweep.py).
        self.sweep = Sweep(config.watch, self.tracked, self.watches, self.debouncer.touch, self._look_live)
        self.live_fingerprints = self.sweep.live_fingerprints
        self.live_roots = LiveRoots(config.roots, self.syncer.guard, self.watches, self.sweep, self.tracked,
                                    self.debouncer.touch, self._sync)
        self.roots, self.missing_roots = self.live_roots.roots, self.live_roots.missing
        self._status_at = 0.0
        self.metrics = Metrics(config.metrics.textfile, self.ledger, config.agent_of)
        self.publisher = Publisher(config, self.ledger, self.metrics)
        self.automations = Automations(self.db)
        self.sources = LiveSources(config, self.engine, self.watches, self.roots, self.ledger.session_owner,
                                   self._record, self.debouncer.touch)
        self.outcomes = Outcomes(lambda: self.config, self.roots, self.engine, self.syncer, self.sweep, self.backlog,
                                 self.metrics, self.automations)
        self.unwatched = UnwatchedStores(self.watches, lambda: self.config.watch.sweep_interval_s,
                                         lambda: self._sync(self._sources(), reconcile=True), bool(self._sources()))

    @property
    def processed(self) -> int:
        """Workflows stored since start (new or updated), counted as the sync counts them."""
        return self.outcomes.totals.new + self.outcomes.totals.updated

    # -- main loop ------------------------------------------------------------------
    def run(self) -> int:
        log.info("adw-patternd starting: %d root(s), database %s, pid %d", len(self.roots), self.db.label, os.getpid())
        self.watches.start()
        try:
            for root in list(self.roots.values()):
                self.live_roots.add(root, catch_up=False)
            self.sources.watch()
            summary = self._sync([*self.roots.values(), *self._sources()])
            self.automations.record_declared(self.config.automated)
            self.automations.refresh()
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
            self.publisher.write_metrics(**self._watched())
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
            looked = self.engine.look(root, key[1], self.engine.source.named_in(stored))
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
                self.live_roots.sweep_roots()
                self.sweep.tick(SWEEP_TICK_S)
                next_sweep = time.monotonic() + SWEEP_TICK_S
                self.metrics.swept(next_sweep - SWEEP_TICK_S - now)
                self.unwatched.read_if_due(now)
            if now >= next_reconcile or now >= next_reconcile_all:
                everything = now >= next_reconcile_all
                done = self._reconcile(now, everything)
                next_reconcile = done + interval if interval else float("inf")
                if everything:
                    next_reconcile_all = done + all_interval
            self.automations.refresh_if_due(now)
            self.publisher.due(now, **self._watched())
            if now - self._status_at >= 2:
                self._status_at = now
                notify("STATUS=" + self._status_text())

    def _reconcile(self, now: float, everything: bool) -> float:
        """Every workflow's fingerprint now and then; between, only those that changed this
        week: a reconcile of folders unchanged for months would find nothing. When it ended."""
        only = None if everything else self._recent_keys()
        log.info("reconcile%s: %s", "" if everything else " (changed this week)",
                 self._sync(self.roots.values(), reconcile=True, only=only).line())
        if self._sources():  # what inotify may have dropped; a listing and a stat a session
            log.info("reconcile of the session stores: %s", self._sync(self._sources(), reconcile=True).line())
        done = time.monotonic()
        self.metrics.reconciled(done - now)
        return done

    def _sources(self) -> list:
        return list(self.sources.roots.values())

    def _watched(self) -> dict[str, int]:
        live = len(self.watches.workflows)
        return {"live": live, "dormant": len(self.tracked) - live}

    def _store_backlog(self, only: dict[str, set[str]]) -> None:
        """Try again to store what the database refused; what it refuses again goes back."""
        waiting = sum(len(ids) for ids in only.values())
        summary = self._sync([self.roots[name] for name in only if name in self.roots], only=only)
        if not self.backlog.keys:
            log.info("the database takes writes again: stored the %d workflow(s) read while it could not (%s)",
                     waiting, summary.line())
            self.backlog.clear()

    def _status_text(self) -> str:
        text = (f"{len(self.tracked)} workflows tracked, {len(self.watches.workflows)} live; "
                f"{self.processed} processed, {self.outcomes.totals.failed} failed since start")
        if self.backlog.cause:
            text = (f"waiting for the database ({self.backlog.cause}): {len(self.backlog.keys)} workflow(s) to store; "
                    + text)
        return text

    # -- one workflow -------------------------------------------------------------------
    def _handle(self, key: Key) -> None:
        if key[0] in self.sources.roots:
            self.sources.handle(key)
            return
        root = self.roots.get(key[0])
        if root is None or key[0] in self.missing_roots:
            return  # a root that went away: its catch-up reads everything when it is back
        if self.backlog.cause is not None:
            self.backlog.add(key, self.backlog.cause)  # the database refuses writes: no use reading it now
            return
        self.outcomes.track(key).last_change = time.monotonic()
        self.watches.activate(root, key[1])  # it changed: watch it live while it is active
        self._record(key, self.engine.process(root, key[1]))

    def _record(self, key: Key, o: Outcome) -> None:
        self.outcomes.live(key, o)

    def _seen(self, o: Outcome) -> None:
        self.outcomes.seen(o)

    # -- reload -------------------------------------------------------------------------
    def _reload(self) -> None:
        reopen_logs()
        try:
            new = load_config(self.config.path)
        except PatterndError as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            return
        _say_what_needs_a_restart(new, self.config, self.db.label)
        setup_logging(new.log)
        old_roots = self.live_roots.remove_others(new.roots)
        self.config = _keep_store_settings(new, self.config)
        self.engine.config = self.publisher.config = self.config
        self.metrics.retarget(self.config.metrics.textfile)
        self.debouncer.delay = self.config.debounce_ms / 1000
        self.watches.max_active = self.config.watch.max_active_workflows
        self.sweep.watch = self.config.watch
        self.live_roots.add_new(new.roots, old_roots)
        log.info("reload: configuration reloaded from %s; %d root(s)", new.path, len(self.roots))


def _say_what_needs_a_restart(new: Config, old: Config, database: str) -> None:
    if new.database != old.database:
        log.warning("reload: a new database takes effect only after a restart (keeping %s)", database)
    if new.derivation_key() != old.derivation_key() or new.max_file_bytes != old.max_file_bytes:
        log.warning("reload: rules, prices, tool_cost_ratio and max_file_bytes take effect after a restart")
    if new.sources != old.sources:
        log.warning("reload: the folders of agent sessions (session stores, agents' homes) take effect after a "
                    "restart")


def _keep_store_settings(new: Config, old: Config) -> Config:
    """Settings that need a restart stay as they were in the running daemon."""
    from dataclasses import replace

    return replace(new.with_sources_of(old), database=old.database, prices=old.prices, rules=old.rules,
                   tool_cost_ratio=old.tool_cost_ratio, max_file_bytes=old.max_file_bytes)


def _serve_beside(config: Config):
    """config.yaml's `serve: {in_daemon: true}`: the live page from a thread of the daemon,
    on its own read-only connection (after the migration: open_ledger has run)."""
    if not config.serve.in_daemon:
        return None
    from .serve import Running

    page = Running(config)
    log.info("serving the live page at %s", page.url)
    return page


def run_service(config: Config) -> int:
    setup_logging(config.log)
    signals = Signals()
    signals.install()
    ping = watchdog_interval()
    try:
        # Waiting for the database (locked, unreachable) is not a hang, and a stop ends the wait.
        with open_ledger(config, on_wait=(lambda: notify("WATCHDOG=1")) if ping else None,
                         give_up=lambda: signals.stop) as ledger:
            page = _serve_beside(config)
            try:
                return Daemon(config, ledger, signals).run()
            finally:
                if page is not None:
                    page.stop()
    except StopRequested:
        log.info("stopped while opening the database")
        return 0
    except PatterndError as e:
        log.error("%s", e)
        raise
