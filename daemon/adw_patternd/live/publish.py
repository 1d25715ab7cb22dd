"""What the daemon writes for others to read, each on its own schedule: the metrics textfile
(every metrics.interval_s, and once more at the end) and the HTML report (every
report.every_s: not only after a change here, since reviews and other hosts' daemons change
what it says too). A file that cannot be written is said once, and again when it can be."""

from __future__ import annotations

import logging
import time

from ..config import Config
from ..core.said import Said
from ..outputs.metrics import Metrics
from ..store import Ledger

log = logging.getLogger("adw_patternd")


class Publisher:
    def __init__(self, config: Config, ledger: Ledger, metrics: Metrics):
        self.config = config  # a reload replaces it
        self.ledger = ledger
        self.metrics = metrics
        self._next_metrics = self._next_report = float("-inf")
        self._said = Said()

    def due(self, now: float, *, live: int, dormant: int) -> None:
        """Write what is due at ``now`` (monotonic); ``live`` and ``dormant``: the workflows
        with and without a live watch."""
        if self.metrics.path and now >= self._next_metrics:
            self.write_metrics(live=live, dormant=dormant)
            self._next_metrics = time.monotonic() + self.config.metrics.interval_s
        if self.config.report.html and now >= self._next_report:
            self.write_report()
            self._next_report = time.monotonic() + self.config.report.every_s

    def write_metrics(self, *, live: int, dormant: int) -> None:
        self.metrics.write(self.ledger.db, live_watches=live, dormant=dormant)

    def write_report(self) -> None:
        """Rewrite the HTML report, as sync does; a failure is said once and tried again later."""
        from ..outputs.html import write_configured_report

        path = self.config.report.html
        started = time.monotonic()
        try:
            problem = write_configured_report(self.config, self.ledger)
        except Exception:
            log.exception("writing the HTML report %s failed (a bug; the daemon goes on)", path)
            return
        if problem is not None:
            if self._said.new("report", problem):
                log.warning("%s (the daemon goes on and tries again in %.0f s)", problem, self.config.report.every_s)
            return
        if self._said.over("report"):
            log.info("report: %s written again", path)
        log.debug("report: wrote %s in %.2f s", path, time.monotonic() - started)
