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

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, write_to_textfile
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger("adw_patternd")

disable_created_metrics()  # the *_created series say when the process started counting: noise in a file

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class _PatternCollector:
    """Per pattern (label: signature): occurrences, potential monthly savings, attributed spend."""

    def __init__(self, ledger):
        self.ledger = ledger

    def collect(self):
        occurrences = GaugeMetricFamily("adw_patternd_pattern_occurrences",
                                        "Workflows in which the pattern was found", labels=["signature"])
        savings = GaugeMetricFamily("adw_patternd_pattern_potential_monthly_savings_usd",
                                    "Potential monthly savings if a tool did it, USD", labels=["signature"])
        spend = GaugeMetricFamily("adw_patternd_pattern_spend_usd",
                                  "Spend attributed to the pattern, USD (estimates included)", labels=["signature"])
        for sig, n, monthly, nanos in self.ledger.pattern_figures():
            occurrences.add_metric([sig], n)
            savings.add_metric([sig], monthly)
            spend.add_metric([sig], nanos / 1e9)
        yield from (occurrences, savings, spend)


class Metrics:
    def __init__(self, path, ledger):
        self.path = str(path) if path else None
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
        r.register(_PatternCollector(ledger))
        self._db_waited = 0.0

    def outcome(self, o, *, live: bool = False) -> None:
        if o.kind in ("new", "updated"):
            self.processed.labels(o.root).inc()
            self.last_commit.set(time.time())
            if live and o.changed_at:
                self.latency.observe(max(0.0, time.time() - o.changed_at))
        elif o.kind == "failed":
            if o.transient:
                self.mid_write.inc()
            else:
                self.failed.labels(o.root).inc()

    def write(self, db=None) -> None:
        """Rewrite the file (atomically). A failure is logged, never raised: metrics are not
        worth stopping for."""
        if not self.path:
            return
        if db is not None and db.waited_s > self._db_waited:
            self.db_wait.inc(db.waited_s - self._db_waited)
            self._db_waited = db.waited_s
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            write_to_textfile(self.path, self.registry)
        except Exception as e:  # a full disk, a folder we cannot write, the database gone
            log.warning("metrics: cannot write %s (%s); will try again", self.path, e)
