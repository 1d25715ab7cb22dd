"""What the daemon does with an outcome, after a live read (`live`) or a sync's (`seen`):
counted as the sync counts one (SyncSummary.count) and logged as it logs one
(Engine.report), after the daemon's own bookkeeping of the folder (the sweep's record of
it, a retry of a file caught mid-write, a read again when its files turn stale, a watch
while it is active, the backlog while the database refuses writes) and the regression
warnings of a stored workflow."""

from __future__ import annotations

import logging
import time
from typing import Callable

from ..config import Config, Root
from ..engine import Engine
from ..core.outcome import Kind, Outcome
from ..outputs.metrics import Metrics
from ..sync import Syncer, SyncSummary
from .automations import Automations
from .backlog import Backlog
from .sweep import Sweep, Tracked
from .watcher import Key

log = logging.getLogger("adw_patternd")

TRANSIENT_RETRY_S = 0.5  # a state file caught mid-write is read again this much later
TRANSIENT_ATTEMPTS = 8  # ... this many times before it is reported as bad


class Outcomes:
    """``config()``: the running configuration (a reload replaces it); ``roots``: the
    daemon's roots by name (shared)."""

    def __init__(self, config: Callable[[], Config], roots: dict[str, Root], engine: Engine, syncer: Syncer,
                 sweep: Sweep, backlog: Backlog, metrics: Metrics, automations: Automations):
        self.config = config
        self.roots = roots
        self.engine = engine
        self.syncer = syncer
        self.sweep = sweep
        self.tracked = sweep.tracked
        self.watches = sweep.watches
        self.backlog = backlog
        self.metrics = metrics
        self.automations = automations
        self.totals = SyncSummary()  # since start: the stored and the failed are what STATUS says

    def live(self, key: Key, o: Outcome) -> None:
        """A live read's outcome. A file caught mid-write is read again shortly (the last good
        data kept, nothing said yet); the same bad files are said once."""
        self.metrics.outcome(o, live=True)
        tracked = self.track(key)  # before a MISSING: the folder was known, its root's health decides
        if self._gone_or_refused(key, o):
            return
        self._recheck_when_stale(key, o)
        if o.kind is Kind.FAILED and o.transient and tracked.transient_failures < TRANSIENT_ATTEMPTS:
            tracked.transient_failures += 1
            tracked.snapshot = None
            log.debug("%s (retrying in %.1f s)", o.reason, TRANSIENT_RETRY_S)
            self.sweep.touch(key, delay=TRANSIENT_RETRY_S)
            return
        tracked.transient_failures = 0
        self._remember(key, tracked, o)
        if o.kind is Kind.FAILED:
            if tracked.failure == (o.reason, o.snapshot):
                return  # the same bad files again (a late event): said once already
            tracked.failure = (o.reason, o.snapshot)
        else:
            tracked.failure = None
        self._count(o)
        self.engine.report(o)

    def seen(self, o: Outcome) -> None:
        """What a sync (catch-up, reconcile) saw, counted and logged by the sync: remember it
        so the sweep can tell changes, and watch what changed lately."""
        key = (o.root, o.adw_id)
        self.metrics.outcome(o)
        if self._gone_or_refused(key, o):
            return
        tracked = self.track(key)
        self._remember(key, tracked, o)
        self._recheck_when_stale(key, o)
        self._count(o)
        if o.kind.stored:
            active_ns = self.config().watch.active_window_s * 1e9
            if o.snapshot and time.time_ns() - o.snapshot.state_mtime_ns < active_ns:
                tracked.last_change = time.monotonic()
                if self.watches.activate(self.roots[o.root], o.adw_id):
                    # Read once more now that the watch exists: a write between the read and
                    # the watch would otherwise be announced by nothing.
                    self.sweep.touch(key)
        elif o.kind is Kind.FAILED and o.transient:
            self.sweep.touch(key, delay=TRANSIENT_RETRY_S)

    def track(self, key: Key) -> Tracked:
        tracked = self.tracked.get(key)
        if tracked is None:
            tracked = self.tracked[key] = Tracked()
            self.sweep.add(key)
        return tracked

    def _gone_or_refused(self, key: Key, o: Outcome) -> bool:
        """A folder gone, or a database that could not take the write: handled here."""
        if o.kind is Kind.MISSING:
            self._folder_gone(key)
            return True
        if o.kind is Kind.NOT_STORED:
            self.backlog.add(key, o.reason)
            return True
        return False

    def _count(self, o: Outcome) -> None:
        """Counted as the sync counts it; a stored workflow's regressions are warned about."""
        if o.kind.stored or o.kind is Kind.FAILED:
            self.totals.count(o)
        if o.kind.stored:
            self.automations.check(o)

    def _remember(self, key: Key, tracked: Tracked, o: Outcome) -> None:
        """Keep the folder's snapshot as listed before the read. A file too fresh to trust
        leaves None, so the next sweep reads it again; a bad version is remembered as seen
        (it is not reported again until its files change). Live workflows also keep their
        fingerprint, for the round's check of what inotify may have missed."""
        if o.snapshot is None and o.kind is Kind.UNCHANGED:
            return  # a reconcile found it unchanged: what the daemon remembers still holds
        tracked.snapshot = o.snapshot if (o.kind is Kind.FAILED or not o.racy) else None
        if key in self.watches.workflows:
            self.sweep.live_fingerprints[key] = o.fingerprint if not o.racy else None

    def _recheck_when_stale(self, key: Key, o: Outcome) -> None:
        """Read a workflow again when its files turn stale: a run still without its result line
        then becomes `interrupted`, though no file changed to say so."""
        if o.stale_at is not None:
            self.sweep.touch(key, delay=max(0.0, o.stale_at - time.time()) + 1.0)

    def _folder_gone(self, key: Key) -> None:
        """Forget the folder here; whether it counts as a deletion is the root's health's call."""
        self.watches.deactivate(key)
        self.sweep.live_fingerprints.pop(key, None)
        if self.tracked.pop(key, None) is None or key[0] not in self.roots:
            return
        self.syncer.folder_gone(self.roots[key[0]], key[1])
