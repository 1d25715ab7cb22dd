"""Metrics in the Prometheus text format, written to a file for node_exporter's textfile
collector: the service listens on no port (PrivateNetwork, IPAddressDeny). prometheus_client
does the exposition format and the atomic write (a temporary file, then a rename), so a
scrape never sees half a file.

The daemon counts as it goes and rewrites the file every `metrics.interval_s`; `sync` writes
it once when it ends. The per-pattern figures are read from the database at each write.
"""

from __future__ import annotations

import logging
import os
import time

from ..core.outcome import Kind
from ..sources import kinds
from ..store.queries import pattern_figures, spend_by_agent

log = logging.getLogger("adw_patternd")

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class _PatternCollector:
    """Per pattern (label: signature): occurrences, potential monthly savings, attributed spend;
    and the spend seen by agent (label: agent)."""

    def __init__(self, ledger, agent_of):
        self.ledger, self.agent_of = ledger, agent_of

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        occurrences = GaugeMetricFamily("adw_patternd_pattern_occurrences",
                                        "Workflows in which the pattern was found", labels=["signature"])
        savings = GaugeMetricFamily("adw_patternd_pattern_potential_monthly_savings_usd",
                                    "Potential monthly savings if a tool did it, USD", labels=["signature"])
        spend = GaugeMetricFamily("adw_patternd_pattern_spend_usd",
                                  "Spend attributed to the pattern, USD (estimates included)", labels=["signature"])
        for sig, n, monthly, nanos in pattern_figures(self.ledger.db):
            occurrences.add_metric([sig], n)
            savings.add_metric([sig], monthly)
            spend.add_metric([sig], nanos / 1e9)
        by_agent = GaugeMetricFamily("adw_patternd_spend_usd", "Spend seen, by the agent that ran the workflows "
                                     "(the agent of each root's kind), USD (estimates included)", labels=["agent"])
        for agent, seen in spend_by_agent(self.ledger.db, self.agent_of).items():
            by_agent.add_metric([agent], seen["spend_usd"])
        yield from (occurrences, savings, spend, by_agent)
        yield from self._automated()

    def _automated(self):
        """Automated patterns: regressions warned about (they survive restarts and only grow
        while the automation stands) and the savings measured since."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from ..store import automation
        from ..store.reviews import latest_reviews
        from ..store.rows import now_us

        db = self.ledger.db
        regressions = CounterMetricFamily("adw_patternd_regressions", "Workflows in which an agent did an automated "
                                          "pattern's operation after its automation day", labels=["signature"])
        realized = GaugeMetricFamily("adw_patternd_realized_savings_usd_month", "Savings measured since the pattern "
                                     "was automated, USD a month", labels=["signature"])
        counts = automation.regression_counts(db)
        stamp = now_us()
        for sig, review in sorted(latest_reviews(db).items()):
            if review.state != "automated" or not review.effective_on:
                continue
            regressions.add_metric([sig], counts.get(sig, 0))
            figures = automation.figures(db, sig, review, stamp)
            if figures["realized_savings_usd_month"] is not None:
                realized.add_metric([sig], figures["realized_savings_usd_month"])
        yield from (regressions, realized)


class _Registry:
    """The metrics themselves. Built only when a metrics file is configured, so that a daemon
    without one does not carry prometheus_client."""

    def __init__(self, ledger, agent_of):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created series say when the process started counting: noise
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.processed = Counter("adw_patternd_workflows_processed", "Workflow versions stored (new or updated)",
                                 ["root"], registry=r)
        self.failed = Counter("adw_patternd_workflows_failed", "Workflow reads that failed (bad or unreadable files)",
                              ["root"], registry=r)
        self.mid_write = Counter("adw_patternd_files_caught_mid_write",
                                 "Reads that found a file being written, and were tried again", registry=r)
        self.latency = Histogram("adw_patternd_change_to_commit_seconds",
                                 "From a workflow file's last write to its commit, for live changes",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.live_watches = Gauge("adw_patternd_live_watches", "Workflows watched live with inotify", registry=r)
        self.dormant = Gauge("adw_patternd_dormant_workflows", "Workflows followed by the stat sweep only",
                             registry=r)
        self.sweep = Counter("adw_patternd_sweep_seconds", "Time spent sweeping dormant workflows", registry=r)
        self.reconcile = Histogram("adw_patternd_reconcile_seconds", "Duration of reconcile passes",
                                   buckets=(1, 5, 15, 60, 300, 900), registry=r)
        self.db_wait = Counter("adw_patternd_database_wait_seconds",
                               "Time spent waiting for a locked or unreachable database", registry=r)
        self.last_commit = Gauge("adw_patternd_last_commit_timestamp_seconds",
                                 "When a workflow was last committed (Unix time)", registry=r)
        r.register(_PatternCollector(ledger, agent_of))
        self.db_waited = 0.0


class Metrics:
    """What the daemon and sync count, and the file they write. Without a file configured,
    every method does nothing."""

    def __init__(self, path, ledger, agent_of=lambda root: kinds.ADW_AGENT):
        """``agent_of``: which agent a root's workflows ran on (Config.agent_of)."""
        self.path = str(path) if path else None
        self.ledger, self.agent_of = ledger, agent_of
        self._m = _Registry(ledger, agent_of) if self.path else None

    def retarget(self, path) -> None:
        """A reload named another file (or none): keep counting, write there."""
        self.path = str(path) if path else None
        if self.path and self._m is None:
            self._m = _Registry(self.ledger, self.agent_of)

    def outcome(self, o, *, live: bool = False) -> None:
        m = self._m
        if m is None:
            return
        if o.kind.stored:
            m.processed.labels(o.root).inc()
            m.last_commit.set(time.time())
            if live and o.changed_at:
                m.latency.observe(max(0.0, time.time() - o.changed_at))
        elif o.kind is Kind.FAILED:
            if o.transient:
                m.mid_write.inc()
            else:
                m.failed.labels(o.root).inc()

    def swept(self, seconds: float) -> None:
        if self._m:
            self._m.sweep.inc(max(0.0, seconds))

    def reconciled(self, seconds: float) -> None:
        if self._m:
            self._m.reconcile.observe(seconds)

    def write(self, db=None, *, live_watches: int | None = None, dormant: int | None = None) -> None:
        """Rewrite the file (atomically). A failure is logged, never raised: metrics are not
        worth stopping for."""
        m = self._m
        if not self.path or m is None:
            return
        from prometheus_client import write_to_textfile

        if live_watches is not None:
            m.live_watches.set(live_watches)
        if dormant is not None:
            m.dormant.set(dormant)
        if db is not None and db.waited_s > m.db_waited:
            m.db_wait.inc(db.waited_s - m.db_waited)
            m.db_waited = db.waited_s
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            write_to_textfile(self.path, m.registry)
        except Exception as e:  # a full disk, a folder we cannot write, the database gone
            log.warning("metrics: cannot write %s (%s); will try again", self.path, e)
