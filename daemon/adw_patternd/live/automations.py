"""Automated patterns, as the daemon watches them: a stored workflow that does what a tool
was to do since its automation day is a regression, warned about once per (workflow,
signature); what was warned is kept in the database (no repeat on a re-read or a restart).
The automated patterns are read again every AUTOMATIONS_S (reviews are recorded by another
process)."""

from __future__ import annotations

import logging
import time

from ..core.errors import WriteRefused
from ..core.model import workflow_id
from ..core.outcome import Outcome
from ..store import automation
from ..store.db import Db

log = logging.getLogger("adw_patternd")

AUTOMATIONS_S = 10.0  # automated patterns (for regression warnings) are read again this often


class Automations:
    def __init__(self, db: Db):
        self.db = db
        self._automations: dict[str, tuple[int, int]] = {}  # signature -> (pattern id, effective day in us)
        self._read_at = float("-inf")

    def record_declared(self, declared) -> None:
        """config.yaml's `automated:` entries, recorded in the review trail (at start)."""
        try:
            for sig in automation.record_declared(self.db, declared):
                log.info("%s recorded as automated, as config.yaml declares", sig)
        except WriteRefused:
            pass  # said by the database; recorded at the next start

    def refresh_if_due(self, now: float | None = None) -> None:
        if (time.monotonic() if now is None else now) - self._read_at >= AUTOMATIONS_S:
            self.refresh()

    def refresh(self) -> None:
        """Read the automated patterns again. A pattern automated since the last look may have
        regressions stored already: each is warned about now, once. A database that cannot
        take the write leaves it for later."""
        old, self._automations = self._automations, automation.automated(self.db)
        self._read_at = time.monotonic()
        try:
            for sig, (pid, on) in self._automations.items():
                if old.get(sig) != (pid, on):
                    for r in automation.regressions(self.db, pid, on):
                        self._warn(automation.new_regressions(self.db, r["workflow_id"], [pid], {sig: (pid, on)}))
        except WriteRefused:
            self._automations = old  # warned about when the database takes writes again

    def check(self, o: Outcome) -> None:
        """Warn about the regressions of a workflow just stored."""
        self.refresh_if_due()
        if self._automations and o.patterns:
            try:
                self._warn(automation.new_regressions(self.db, workflow_id(o.root, o.adw_id), o.patterns,
                                                      self._automations))
            except WriteRefused:
                pass  # said by the database; this warning is lost with the write (show still lists it)

    def _warn(self, regressions: list[dict]) -> None:
        for r in regressions:
            on = self._automations[r["signature"]][1]
            log.warning("regression: %s did %s, automated on %s (agent %s; command %s): an agent is doing "
                        "through the LLM what a tool was to do", r["workflow_id"], r["signature"],
                        time.strftime("%Y-%m-%d", time.gmtime(on / 1e6)), ", ".join(r["agents"]) or "-",
                        "; ".join(r["command_lines"]) or "-")
