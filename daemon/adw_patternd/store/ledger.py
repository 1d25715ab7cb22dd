"""The ledger: exact, incremental pattern statistics.

Each pattern row keeps running sums over the workflows linked to it. Applying a workflow
subtracts what its previous version contributed and adds what the new one contributes, in
one transaction with its links, its workflow_history row and its agents' read offsets. So
re-reading a workflow changes nothing, an edited workflow replaces its old contribution,
and an update touches only index lookups: its cost does not grow with the history.

Opening is a step of its own (`Ledger.open`, or `open_ledger(config)` as a context
manager): it migrates the schema and re-derives what changed settings invalidate. The
constructor only wraps a connection.
"""

from __future__ import annotations

import json
import logging
import socket

from ..core.model import Contribution, Occurrence, PatternSums
from ..core.rules import attributed_nanos
from ..core.response_rank import Held
from .agent_outputs import same_transcripts, store_transcripts
from .batch import BatchReads, BatchWrites
from .claims import claim, session_owner
from .waits import store_waits
from .mentions import same_mentions, store_mentions
from .response_keys import fetch_keys, forget_files, read_again, store_keys
from .db import Db
from .derived import write_derived_many
from .rows import (LINK, LINK_COLUMNS, SUM_COLUMNS, WORKFLOW_COLUMNS, Applied, Change, Prior, contribution_of,
                   evidence_rows, link_values, now_text, sums_of, workflow_values)
from .schema import migrate
from .unmatched import same_unmatched, store_unmatched
from .verify import rederive_if_needed

TIME_SOURCE = WORKFLOW_COLUMNS.index("time_source")

log = logging.getLogger("adw_patternd.store")


class Ledger:
    def __init__(self, db: Db, tool_cost_ratio: float = 0.05, host: str | None = None):
        self.db = db
        self.tool_cost_ratio = tool_cost_ratio
        self.host = host or socket.gethostname()  # recorded on each workflow row this ledger writes
        self._pattern_ids: dict[str, int] = {}

    @classmethod
    def open(cls, db: Db, tool_cost_ratio: float = 0.05, derivation_key: str | None = None,
             host: str | None = None) -> "Ledger":
        """A ledger over ``db`` with its schema current and its statistics derived under
        these settings (``derivation_key`` None: whatever they were derived under).
        ``host``: what its workflow rows record as the machine that wrote them."""
        ledger = cls(db, tool_cost_ratio, host)
        migrate(db, ledger.host)
        rederive_if_needed(ledger, derivation_key)
        return ledger

    # -- what the engine reads before a change ---------------------------------------
    def prior(self, workflow_id: str) -> Prior:
        return self.db.retrying(lambda: self._prior(workflow_id))

    def _prior(self, workflow_id: str) -> Prior:
        row = self.db.one("SELECT revision, fingerprint FROM workflow_history WHERE workflow_id = ?", (workflow_id,))
        if not row or not row[0]:
            return Prior()
        rows = self.db.all("SELECT agent_name, device, inode, offset_bytes, size_bytes, mtime_ns, head_session, "
                           "tail, state_json FROM agent_outputs WHERE workflow_id = ?", (workflow_id,))
        # Each row as stored: the reader that wrote its state decodes it (Engine.prior).
        stored = {r[0]: (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), int(r[5] or 0), r[6] or "",
                         r[7] or "", r[8]) for r in rows}
        return Prior(int(row[0]), row[1], {}, {r[0]: r[8] or "" for r in rows}, stored)

    def counted_keys(self, message_keys: list[int], left_out: tuple[int, ...]) -> list[Held]:
        """The responses of session files counted already, by message key (response_keys)."""
        return self.db.retrying(lambda: fetch_keys(self.db, message_keys, left_out))

    def fingerprints(self, root_name: str, adw_ids: list[str] | None = None) -> dict[str, str | None]:
        """The stored fingerprint of each workflow of a root (or of just ``adw_ids``)."""
        if adw_ids is None:
            return self.db.retrying(lambda: dict(self.db.all(
                "SELECT adw_id, fingerprint FROM workflow_history WHERE root_name = ? AND revision > 0",
                (root_name,))))
        found: dict[str, str | None] = {}
        for i in range(0, len(adw_ids), 500):
            chunk = adw_ids[i : i + 500]
            found.update(self.db.retrying(lambda c=chunk: self.db.all(
                f"SELECT adw_id, fingerprint FROM workflow_history WHERE root_name = ? AND revision > 0 "
                f"AND adw_id IN ({', '.join('?' for _ in c)})", (root_name, *c))))
        return found

    # -- writing ----------------------------------------------------------------
    def apply(self, changes: list[Change]) -> list[Applied]:
        """Apply whole workflows in one transaction (retried while the database is busy)."""
        created: dict[str, int] = {}

        ordered = sorted(changes, key=lambda c: c.workflow.workflow_id)
        ids = [c.workflow.workflow_id for c in ordered]
        # A change that absorbs a session drops that session's workflow: if the batch holds
        # it too, what was read for it is stale, so such a batch reads one workflow at a time.
        # (A session's own change that an ADW workflow claims drops only itself.)
        absorbed = {a for c in ordered for a in c.absorbs}
        whole_batch = len(set(ids)) == len(ids) and not absorbed.intersection(ids)

        def work():
            created.clear()
            deltas: dict[int, PatternSums] = {}
            writes = BatchWrites()
            reads = BatchReads.load(self.db, ids) if whole_batch else None
            results = []
            for change in ordered:
                results.append(self._apply_one(change, deltas, created, writes, reads))
                if reads is None:  # read one at a time: written one at a time (a later one may drop it)
                    writes.flush(self.db)
            writes.flush(self.db)
            read_again(self.db, sorted({w for r in results for w in r.read_again}))
            self._settle_patterns(deltas)
            return results

        results = self.db.transaction(work, what=f"{len(changes)} workflow(s)")
        self._pattern_ids.update(created)
        return results

    def _pattern_id(self, signature: str, characteristics: dict, created: dict[str, int]) -> tuple[int, bool]:
        pid = self._pattern_ids.get(signature) or created.get(signature)
        if pid:
            return pid, False
        row = self.db.one(
            "INSERT INTO operation_patterns (pattern_signature, pattern_type, typical_input_pattern, occurrence_count, "
            "automation_status, confidence_score, created_at) VALUES (?, ?, ?, 0, 'detected', 10.0, ?) "
            "ON CONFLICT (pattern_signature) DO NOTHING RETURNING id",
            (signature, signature.split(":")[0], json.dumps(characteristics), now_text()))
        is_new = row is not None
        if row is None:
            row = self.db.one("SELECT id FROM operation_patterns WHERE pattern_signature = ?", (signature,))
        created[signature] = int(row[0])
        return int(row[0]), is_new

    def _apply_one(self, change: Change, deltas: dict[int, PatternSums], created: dict[str, int],
                   writes: BatchWrites, reads: BatchReads | None) -> Applied:
        db, wf = self.db, change.workflow
        if change.own_session is not None:
            owner = self.session_owner(change.own_session)
            if owner:  # an ADW run's session: its times are that workflow's, its dollars its result line's
                self._drop(wf.workflow_id, deltas)
                return Applied(wf.workflow_id, (), (), False, claimed_by=owner)
        claims_changed = change.claims is not None and claim(self.db, wf.workflow_id, change.claims)
        for absorbed in change.absorbs if change.claims is not None else ():
            self._drop(absorbed, deltas)
        reads = reads or BatchReads.load(db, [wf.workflow_id])
        row = reads.row(wf.workflow_id)
        revision = int(row[0] or 0)
        if change.expected_revision is not None and revision != change.expected_revision:
            return Applied(wf.workflow_id, (), (), False, conflict=True)
        lost_to_us = store_keys(db, change)  # the responses its session files counted (response_keys.py)
        if lost_to_us is None:
            return Applied(wf.workflow_id, (), (), False, conflict=True)  # a copy ranked first came: read again
        old_links = reads.links(wf.workflow_id)
        new_links, new_patterns = self._links_of(change, old_links, created)
        mentioned = sorted({self._pattern_id(sig, change.characteristics, created)[0] for sig in change.mentions})
        chars = json.dumps(change.characteristics)
        values = workflow_values(wf, attributed_nanos(wf, new_links.values()))
        if (revision and change.mode == "replace" and tuple(row[1:]) == values and not claims_changed
                and self._same_content(change, old_links, new_links, chars)
                and same_mentions(db, wf.workflow_id, mentioned) and same_unmatched(db, wf)):
            # Read again, found the same: refresh only what tells the next read where to start.
            db.execute("UPDATE workflow_history SET fingerprint = COALESCE(?, fingerprint) WHERE workflow_id = ?",
                       (change.fingerprint, wf.workflow_id))
            if change.transcripts is not None:
                store_transcripts(self.db, wf.workflow_id, change.transcripts, reads.output_names(wf.workflow_id),
                                  writes)
            return Applied(wf.workflow_id, tuple(new_links), (), False, unchanged=True, read_again=lost_to_us)
        detected = now_text()
        for pid in old_links.keys() | new_links.keys():
            d = deltas.get(pid, PatternSums())
            if pid in old_links and revision:
                d = d.plus(old_links[pid], -1)
            if pid in new_links:
                d = d.plus(new_links[pid].contribution)
            deltas[pid] = d
        self._write_links(wf, old_links, new_links, chars, detected, writes)
        if change.mode == "replace":
            replace_rows(db, wf, new_links, mentioned, row, writes)
        writes.update("workflow_history", "workflow_id",
                      (*WORKFLOW_COLUMNS, "fingerprint", "revision", "updated_at", "host"),
                      (wf.workflow_id, *values, change.fingerprint, revision + 1, detected, self.host),
                      keep_if_null=("fingerprint",))
        if change.transcripts is not None:
            store_transcripts(self.db, wf.workflow_id, change.transcripts, reads.output_names(wf.workflow_id),
                              writes)
        return Applied(wf.workflow_id, tuple(new_links), tuple(new_patterns), was_new=revision == 0,
                       read_again=lost_to_us)

    def _links_of(self, change: Change, old_links: dict, created: dict[str, int]) -> tuple[dict, list[str]]:
        """The workflow's links after the change, by pattern id, and the signatures seen first here."""
        new_links: dict[int, Occurrence] = {}
        new_patterns = []
        for occ in change.occurrences:
            pid, is_new = self._pattern_id(occ.signature, change.characteristics, created)
            new_links.setdefault(pid, occ)
            if is_new:
                new_patterns.append(occ.signature)
        if change.mode == "add":  # the reference's links describe the whole workflow
            whole = Contribution.of(change.workflow)
            for pid in sorted(old_links):
                new_links.setdefault(pid, Occurrence("", "workflow", whole))
        return new_links, new_patterns

    def _write_links(self, wf, old_links: dict, new_links: dict, chars: str, detected: str,
                     writes: BatchWrites) -> None:
        gone = old_links.keys() - new_links.keys()
        if gone:
            self.db.executemany("DELETE FROM pattern_occurrences WHERE pattern_id = ? AND workflow_id = ?",
                                [(pid, wf.workflow_id) for pid in sorted(gone)])
        writes.add(
            "pattern_occurrences", ("pattern_id", "workflow_id", "similarity_score", "matched_characteristics",
                                    "detected_at", "seen_us", "layer", *LINK_COLUMNS),
            [(pid, wf.workflow_id, 100.0, chars, detected, wf.seen_us, o.layer, *link_values(o.contribution))
             for pid, o in new_links.items()],
            "ON CONFLICT (pattern_id, workflow_id) DO UPDATE SET matched_characteristics = excluded.matched_characteristics, "
            "seen_us = excluded.seen_us, layer = excluded.layer, "
            + ", ".join(f"{c} = excluded.{c}" for c in LINK_COLUMNS))

    def _same_content(self, change: Change, old_links: dict, new_links: dict, chars: str) -> bool:
        """Whether applying ``change``, whose workflow row equals the stored one, would write
        what is stored already (times of writing aside). Asked only when the rows are equal,
        so an ordinary update pays nothing for it."""
        wf = change.workflow
        if old_links.keys() != new_links.keys():
            return False
        stored_links = {int(r[0]): tuple(r[1:]) for r in self.db.all(
            "SELECT pattern_id, layer, seen_us, matched_characteristics FROM pattern_occurrences WHERE workflow_id = ?",
            (wf.workflow_id,))}
        for pid, occ in new_links.items():
            if (stored_links.get(pid), old_links[pid]) != ((occ.layer, wf.seen_us, chars), occ.contribution):
                return False
        evidence = self.db.all("SELECT pattern_id, workflow_id, kind, item, n FROM pattern_evidence WHERE workflow_id = ?",
                               (wf.workflow_id,))
        if sorted((int(r[0]), *r[1:4], int(r[4])) for r in evidence) != sorted(evidence_rows(wf.workflow_id, new_links)):
            return False
        return change.transcripts is None or same_transcripts(self.db, wf.workflow_id, change.transcripts)

    def _settle_patterns(self, deltas: dict[int, PatternSums]) -> None:
        """Add each pattern's delta to its sums (locking its row), then re-derive its
        statistics. Rows are locked in id order, one lock order for every writer: no
        deadlocks between daemons. Once a pattern is locked no other writer can commit links
        to it, so its seen times may be read after all are locked (Db.one_each: the locks
        are held for a few waits, not for three a pattern)."""
        pids = sorted(deltas)
        sets = ", ".join(f"{c} = COALESCE({c}, 0) + ?" for c in SUM_COLUMNS)
        rows = self.db.one_each([(f"UPDATE operation_patterns SET {sets} WHERE id = ? RETURNING "
                                  f"{', '.join(SUM_COLUMNS)}", (*deltas[pid].row(), pid)) for pid in pids])
        write_derived_many(self.db, {pid: sums_of(row) for pid, row in zip(pids, rows)}, self.tool_cost_ratio)

    def forget(self, workflow_id: str) -> None:
        """Remove a workflow and its contribution (drop_deleted_workflows)."""
        def work():
            deltas: dict[int, PatternSums] = {}
            self._drop(workflow_id, deltas)
            self._settle_patterns(deltas)

        self.db.transaction(work, what=f"forget {workflow_id}")

    def _drop(self, workflow_id: str, deltas: dict[int, PatternSums]) -> None:
        """Remove a workflow inside the current transaction; what it gave its patterns
        leaves them through ``deltas``."""
        row = self.db.one(f"SELECT revision FROM workflow_history WHERE workflow_id = ?{self.db.for_update}",
                          (workflow_id,))
        if not row:
            return
        links = sorted((int(r[0]), contribution_of(r[1:])) for r in self.db.all(
            f"SELECT pattern_id, {LINK} FROM pattern_occurrences WHERE workflow_id = ?", (workflow_id,)))
        forget_files(self.db, workflow_id, [r[0] for r in self.db.all(
            "SELECT agent_name FROM agent_outputs WHERE workflow_id = ?", (workflow_id,))])
        for table in ("pattern_occurrences", "pattern_evidence", "pattern_mentions", "agent_outputs", "session_claims",
                      "command_waits", "command_unmatched", "counted_events", "counted_totals", "workflow_history"):
            self.db.execute(f"DELETE FROM {table} WHERE workflow_id = ?", (workflow_id,))
        for pid, old in links:
            d = deltas.get(pid, PatternSums())
            deltas[pid] = d.plus(old, -1) if row[0] else d

    def session_owner(self, session_id: str) -> str | None:
        """The ADW workflow that claims a session of a store, if one does."""
        return session_owner(self.db, session_id)


def replace_rows(db: Db, wf, new_links: dict, mentioned: list[int], row: tuple, writes: BatchWrites) -> None:
    """A workflow's evidence, mentions, waits and unmatched commands become exactly what it
    says now (``row``: its stored row, revision first)."""
    revision = int(row[0] or 0)
    if revision:
        db.execute("DELETE FROM pattern_evidence WHERE workflow_id = ?", (wf.workflow_id,))
    writes.add("pattern_evidence", ("pattern_id", "workflow_id", "kind", "item", "n"),
               evidence_rows(wf.workflow_id, new_links))
    store_mentions(db, wf.workflow_id, mentioned, writes, replace=bool(revision))
    # Only a workflow timed by a session store has waits: before, or now.
    store_waits(db, wf, writes, replace=bool(revision) and "session" in (row[1 + TIME_SOURCE], wf.time_source))
    store_unmatched(db, wf, writes, replace=bool(revision))
