"""The ledger: exact, incremental pattern statistics.

Each pattern row keeps running sums over the workflows linked to it. Applying a workflow
subtracts what its previous version contributed and adds what the new one contributes, in
one transaction with its links, its workflow_history row and its agents' read offsets. So
re-reading a workflow changes nothing, an edited workflow replaces its old contribution,
and an update touches only index lookups: its cost does not grow with the history.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..model import Contribution, Occurrence, PatternSums, Workflow
from ..rules import attributed_nanos
from ..stats import derive
from ..transcript import STORED_COLUMNS, StoredTranscript, from_json
from .db import Db
from .schema import migrate

log = logging.getLogger("adw_patternd.store")

SUM_COLUMNS = ("occurrence_count", "sum_tokens", "sum_cost_nanos", "duration_n", "duration_sum",
               "duration_sumsq", "sum_errors", "sum_retries", "sum_units", "sum_estimated_nanos")
DERIVED_COLUMNS = ("avg_tokens_with_llm", "avg_cost_with_llm", "avg_tokens_with_tool", "avg_cost_with_tool",
                   "potential_monthly_savings", "confidence_score", "first_seen", "last_seen",
                   "first_seen_us", "last_seen_us", "typical_input_pattern")
# What one link (pattern, workflow) adds to its pattern's sums, stored with the link: the
# whole workflow's totals for layers 1-3, an agent's runs or a command's calls for 0 and 4.
# What a workflow_history row says about its workflow (all but its bookkeeping).
WORKFLOW_COLUMNS = ("root_name", "adw_id", "nl_input", "workflow_template", "issue_class", "issue_number", "model",
                    "status", "start_time", "end_time", "seen_us", "duration_seconds", "total_tokens", "cost_nanos",
                    "actual_cost_total", "error_count", "retry_count", "error_message", "request", "request_source",
                    "time_source", "estimated_nanos", "unfinished_runs", "overwritten_runs", "overwritten_nanos",
                    "attributed_nanos")
LINK_COLUMNS = ("tokens", "cost_nanos", "duration_seconds", "error_count", "retry_count", "units", "estimated_nanos")
_LINK = ", ".join(LINK_COLUMNS)


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def now_us() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1_000_000)


def us_to_iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _workflow_values(wf: Workflow, attributed: int) -> tuple:
    return (wf.root_name, wf.adw_id, wf.nl_input, wf.workflow_template, wf.issue_class, wf.issue_number, wf.model,
            wf.status, wf.start_time, wf.end_time, wf.seen_us, wf.duration_seconds, wf.total_tokens, wf.cost_nanos,
            wf.actual_cost_total, wf.error_count, wf.retry_count, wf.error_message, wf.request, wf.request_source,
            wf.time_source, wf.estimated_nanos, wf.unfinished_runs, wf.overwritten_runs, wf.overwritten_nanos,
            attributed)


def _contribution(row) -> Contribution:
    return Contribution(*(int(v or 0) for v in row))


def sums_of(row) -> PatternSums:
    return PatternSums(*(int(v or 0) for v in row))


@dataclass(frozen=True)
class Prior:
    """What the database holds for a workflow before we read its files again."""

    revision: int = 0
    fingerprint: str | None = None
    transcripts: dict = field(default_factory=dict)  # relative path -> Transcript as last read


@dataclass(frozen=True)
class Change:
    """One workflow version to apply.

    mode "replace": its links become exactly ``occurrences``. mode "add": ``occurrences``
    are added to its existing links (the reference's record_pattern_occurrence). With
    ``expected_revision`` set, the change is refused if another writer got there first.
    ``transcripts`` None leaves agent_outputs alone (reference-style dicts have no files).
    """

    workflow: Workflow
    occurrences: tuple[Occurrence, ...]
    characteristics: dict
    transcripts: tuple[StoredTranscript, ...] | None = None
    fingerprint: str | None = None
    expected_revision: int | None = None
    mode: str = "replace"

    @property
    def signatures(self) -> tuple[str, ...]:
        return tuple(o.signature for o in self.occurrences)


@dataclass(frozen=True)
class Applied:
    workflow_id: str
    pattern_ids: tuple[int, ...]
    new_patterns: tuple[str, ...]
    was_new: bool
    conflict: bool = False
    unchanged: bool = False  # read again and found the same: nothing but read positions written


class Ledger:
    def __init__(self, db: Db, tool_cost_ratio: float = 0.05, derivation_key: str | None = None):
        self.db = db
        self.tool_cost_ratio = tool_cost_ratio
        self._pattern_ids: dict[str, int] = {}
        migrate(db)
        self._check_derivation(derivation_key)

    # -- reading ------------------------------------------------------------
    def prior(self, workflow_id: str) -> Prior:
        return self.db.retrying(lambda: self._prior(workflow_id))

    def _prior(self, workflow_id: str) -> Prior:
        row = self.db.one("SELECT revision, fingerprint FROM workflow_history WHERE workflow_id = ?", (workflow_id,))
        if not row or not row[0]:
            return Prior()
        transcripts = {
            r[0]: from_json(r[0], int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), int(r[5] or 0),
                            r[6] or "", r[7] or "", r[8])
            for r in self.db.all("SELECT agent_name, device, inode, offset_bytes, size_bytes, mtime_ns, head_session, "
                                 "tail, state_json FROM agent_outputs WHERE workflow_id = ?", (workflow_id,))
        }
        return Prior(int(row[0]), row[1], transcripts)

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

    # -- writing ------------------------------------------------------------
    def apply(self, changes: list[Change]) -> list[Applied]:
        """Apply whole workflows in one transaction (retried while the database is busy)."""
        created: dict[str, int] = {}

        def work():
            created.clear()
            deltas: dict[int, list[int]] = {}
            evidence: list[tuple] = []  # inserted once for the batch: one round trip, not one per workflow
            results = [self._apply_one(c, deltas, created, evidence)
                       for c in sorted(changes, key=lambda c: c.workflow.workflow_id)]
            if evidence:
                self.db.executemany("INSERT INTO pattern_evidence (pattern_id, workflow_id, kind, item, n) "
                                    "VALUES (?, ?, ?, ?, ?)", evidence)
            for pid in sorted(deltas):  # one lock order for every writer: no deadlocks between daemons
                self._settle_pattern(pid, deltas[pid])
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

    def _apply_one(self, change: Change, deltas: dict[int, list[int]], created: dict[str, int],
                   evidence: list[tuple]) -> Applied:
        db, wf = self.db, change.workflow
        db.execute("INSERT INTO workflow_history (workflow_id, revision) VALUES (?, 0) ON CONFLICT (workflow_id) DO NOTHING",
                   (wf.workflow_id,))
        row = db.one(f"SELECT revision, {', '.join(WORKFLOW_COLUMNS)} FROM workflow_history "
                     f"WHERE workflow_id = ?{db.for_update}", (wf.workflow_id,))
        revision = int(row[0] or 0)
        stored_values = tuple(row[1:])
        if change.expected_revision is not None and revision != change.expected_revision:
            return Applied(wf.workflow_id, (), (), False, conflict=True)
        old_links = {int(r[0]): _contribution(r[1:]) for r in db.all(
            f"SELECT pattern_id, {_LINK} FROM pattern_occurrences WHERE workflow_id = ?", (wf.workflow_id,))}
        new_links: dict[int, Occurrence] = {}
        new_patterns = []
        for occ in change.occurrences:
            pid, is_new = self._pattern_id(occ.signature, change.characteristics, created)
            new_links.setdefault(pid, occ)
            if is_new:
                new_patterns.append(occ.signature)
        if change.mode == "add":  # the reference's links describe the whole workflow
            whole = Contribution.of(wf)
            for pid in sorted(old_links):
                new_links.setdefault(pid, Occurrence("", "workflow", whole))
        chars = json.dumps(change.characteristics)
        values = _workflow_values(wf, attributed_nanos(wf, new_links.values()))
        if (revision and change.mode == "replace" and stored_values == values
                and self._same_content(change, old_links, new_links, chars)):
            # Read again, found the same: refresh only what tells the next read where to start.
            db.execute("UPDATE workflow_history SET fingerprint = COALESCE(?, fingerprint) WHERE workflow_id = ?",
                       (change.fingerprint, wf.workflow_id))
            if change.transcripts is not None:
                self._store_transcripts(wf.workflow_id, change.transcripts)
            return Applied(wf.workflow_id, tuple(new_links), (), False, unchanged=True)
        detected = now_text()
        for pid in old_links.keys() | new_links.keys():
            d = deltas.setdefault(pid, [0] * len(SUM_COLUMNS))
            if pid in old_links and revision:
                _accumulate(d, old_links[pid], -1)
            if pid in new_links:
                _accumulate(d, new_links[pid].contribution, +1)
        gone = old_links.keys() - new_links.keys()
        if gone:
            db.executemany("DELETE FROM pattern_occurrences WHERE pattern_id = ? AND workflow_id = ?",
                           [(pid, wf.workflow_id) for pid in sorted(gone)])
        db.executemany(
            f"INSERT INTO pattern_occurrences (pattern_id, workflow_id, similarity_score, matched_characteristics, "
            f"detected_at, seen_us, layer, {_LINK}) VALUES (?, ?, 100.0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (pattern_id, workflow_id) DO UPDATE SET matched_characteristics = excluded.matched_characteristics, "
            "seen_us = excluded.seen_us, layer = excluded.layer, "
            + ", ".join(f"{c} = excluded.{c}" for c in LINK_COLUMNS),
            [(pid, wf.workflow_id, chars, detected, wf.seen_us, o.layer, *_link_values(o.contribution))
             for pid, o in new_links.items()])
        if change.mode == "replace":
            if revision:
                db.execute("DELETE FROM pattern_evidence WHERE workflow_id = ?", (wf.workflow_id,))
            evidence += _evidence_rows(wf.workflow_id, new_links)
        db.execute(
            f"UPDATE workflow_history SET {', '.join(c + ' = ?' for c in WORKFLOW_COLUMNS)}, "
            "fingerprint = COALESCE(?, fingerprint), revision = ?, updated_at = ? WHERE workflow_id = ?",
            (*values, change.fingerprint, revision + 1, detected, wf.workflow_id))
        if change.transcripts is not None:
            self._store_transcripts(wf.workflow_id, change.transcripts)
        return Applied(wf.workflow_id, tuple(new_links), tuple(new_patterns), was_new=revision == 0)

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
        if sorted((int(r[0]), *r[1:4], int(r[4])) for r in evidence) != sorted(_evidence_rows(wf.workflow_id, new_links)):
            return False
        if change.transcripts is None:
            return True
        stored = self.db.all(f"SELECT {', '.join(STORED_COLUMNS)} FROM agent_outputs WHERE workflow_id = ?",
                             (wf.workflow_id,))
        return (sorted(StoredTranscript(*r).content() for r in stored)
                == sorted(t.content() for t in change.transcripts))

    def _store_transcripts(self, workflow_id: str, transcripts: tuple[StoredTranscript, ...]) -> None:
        db = self.db
        names = {t.path for t in transcripts}
        stale = [r[0] for r in db.all("SELECT agent_name FROM agent_outputs WHERE workflow_id = ?", (workflow_id,))
                 if r[0] not in names]
        if stale:
            db.executemany("DELETE FROM agent_outputs WHERE workflow_id = ? AND agent_name = ?",
                           [(workflow_id, n) for n in stale])
        db.executemany(
            f"INSERT INTO agent_outputs (workflow_id, {', '.join(STORED_COLUMNS)}) "
            f"VALUES (?, {', '.join('?' for _ in STORED_COLUMNS)}) ON CONFLICT (workflow_id, agent_name) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in STORED_COLUMNS[1:]), [(workflow_id, *t) for t in transcripts])

    def _settle_pattern(self, pid: int, delta: list[int]) -> None:
        """Add the batch's deltas to a pattern's sums (locking its row), then re-derive its statistics."""
        sets = ", ".join(f"{c} = COALESCE({c}, 0) + ?" for c in SUM_COLUMNS)
        row = self.db.one(f"UPDATE operation_patterns SET {sets} WHERE id = ? RETURNING {', '.join(SUM_COLUMNS)}",
                          (*delta, pid))
        self._write_derived(pid, sums_of(row))

    def _seen(self, pid: int) -> tuple[int | None, int | None, str | None]:
        """First and last seen times and the typical characteristics (of the earliest workflow):
        index lookups on (pattern_id, seen_us, workflow_id), whatever the pattern's size."""
        db = self.db
        first = db.one("SELECT seen_us, matched_characteristics FROM pattern_occurrences WHERE pattern_id = ? "
                       "AND seen_us IS NOT NULL ORDER BY seen_us, workflow_id LIMIT 1", (pid,))
        if first is None:
            row = db.one("SELECT matched_characteristics FROM pattern_occurrences WHERE pattern_id = ? "
                         "ORDER BY workflow_id LIMIT 1", (pid,))
            return None, None, row[0] if row else None
        last = db.one("SELECT seen_us FROM pattern_occurrences WHERE pattern_id = ? AND seen_us IS NOT NULL "
                      "ORDER BY seen_us DESC LIMIT 1", (pid,))
        return int(first[0]), int(last[0]), first[1]

    def derived_values(self, pid: int, sums: PatternSums) -> tuple:
        first_us, last_us, typical = self._seen(pid)
        s = derive(sums, first_us, last_us, self.tool_cost_ratio)
        return (s.avg_tokens_with_llm, s.avg_cost_with_llm, s.avg_tokens_with_tool, s.avg_cost_with_tool,
                s.potential_monthly_savings, s.confidence_score, us_to_iso(first_us), us_to_iso(last_us),
                first_us, last_us, typical)

    def _write_derived(self, pid: int, sums: PatternSums) -> None:
        values = self.derived_values(pid, sums)
        sets = ", ".join(f"{c} = ?" for c in DERIVED_COLUMNS)
        if values[-1] is None:  # no workflow left: keep the pattern's last characteristics
            sets = sets.replace(", typical_input_pattern = ?", "")
            values = values[:-1]
        self.db.execute(f"UPDATE operation_patterns SET {sets} WHERE id = ?", (*values, pid))

    def forget(self, workflow_id: str) -> None:
        """Remove a workflow and its contribution (drop_deleted_workflows)."""
        def work():
            row = self.db.one(f"SELECT revision FROM workflow_history WHERE workflow_id = ?{self.db.for_update}",
                              (workflow_id,))
            if not row:
                return
            links = sorted((int(r[0]), _contribution(r[1:])) for r in self.db.all(
                f"SELECT pattern_id, {_LINK} FROM pattern_occurrences WHERE workflow_id = ?", (workflow_id,)))
            self.db.execute("DELETE FROM pattern_occurrences WHERE workflow_id = ?", (workflow_id,))
            self.db.execute("DELETE FROM pattern_evidence WHERE workflow_id = ?", (workflow_id,))
            self.db.execute("DELETE FROM agent_outputs WHERE workflow_id = ?", (workflow_id,))
            self.db.execute("DELETE FROM workflow_history WHERE workflow_id = ?", (workflow_id,))
            for pid, old in links:
                d = [0] * len(SUM_COLUMNS)
                if row[0]:
                    _accumulate(d, old, -1)
                self._settle_pattern(pid, d)

        self.db.transaction(work, what=f"forget {workflow_id}")

    def pattern_figures(self) -> list[tuple[str, int, float, int]]:
        """(signature, occurrences, potential monthly savings, attributed nano-dollars) of each
        pattern found at least once: what the metrics file shows."""
        return self.db.retrying(lambda: [(r[0], int(r[1]), float(r[2] or 0), int(r[3] or 0)) for r in self.db.all(
            "SELECT pattern_signature, occurrence_count, potential_monthly_savings, sum_cost_nanos "
            "FROM operation_patterns WHERE occurrence_count > 0 ORDER BY pattern_signature")])

    # -- whole-database checks ----------------------------------------------
    def recompute(self) -> dict[int, tuple[PatternSums, tuple]]:
        """Every pattern's sums and derived values, recomputed from the links of stored workflows."""
        sums: dict[int, PatternSums] = {int(r[0]): PatternSums() for r in self.db.all("SELECT id FROM operation_patterns")}
        for r in self.db.all(f"SELECT po.pattern_id, {', '.join('po.' + c for c in LINK_COLUMNS)} "
                             "FROM pattern_occurrences po JOIN workflow_history w ON w.workflow_id = po.workflow_id "
                             "WHERE w.revision > 0"):
            pid = int(r[0])
            sums[pid] = sums.get(pid, PatternSums()).plus(_contribution(r[1:]))
        return {pid: (s, self.derived_values(pid, s)) for pid, s in sums.items()}

    def verify(self, repair: bool = False) -> list[str]:
        """Differences between the stored statistics and a recomputation; empty means healthy."""
        problems: list[str] = []

        def work():
            problems.clear()
            db = self.db
            def orphans(table: str, owner: str, what: str) -> None:
                where = f"WHERE NOT EXISTS ({owner})"
                n = db.one(f"SELECT COUNT(*) FROM {table} {where}")[0]
                if n:
                    problems.append(f"{n} {table} rows {what}")
                    if repair:
                        db.execute(f"DELETE FROM {table} {where}")

            orphans("pattern_occurrences", "SELECT 1 FROM workflow_history w WHERE "
                    "w.workflow_id = pattern_occurrences.workflow_id AND w.revision > 0", "link to no stored workflow")
            orphans("pattern_evidence", "SELECT 1 FROM pattern_occurrences po WHERE po.pattern_id = "
                    "pattern_evidence.pattern_id AND po.workflow_id = pattern_evidence.workflow_id",
                    "belong to no pattern_occurrences row")
            n = db.one("SELECT COUNT(*) FROM pattern_occurrences po JOIN workflow_history w ON w.workflow_id = po.workflow_id "
                       "WHERE po.seen_us IS DISTINCT FROM w.seen_us" if db.dialect == "postgres" else
                       "SELECT COUNT(*) FROM pattern_occurrences po JOIN workflow_history w ON w.workflow_id = po.workflow_id "
                       "WHERE po.seen_us IS NOT w.seen_us")[0]
            if n:
                problems.append(f"{n} pattern_occurrences rows disagree with their workflow's seen time")
                if repair:
                    db.execute("UPDATE pattern_occurrences SET seen_us = (SELECT w.seen_us FROM workflow_history w "
                               "WHERE w.workflow_id = pattern_occurrences.workflow_id)")
            # A whole-workflow link (layers 1-3) carries exactly its workflow's totals.
            whole = ("w.total_tokens", "w.cost_nanos", "w.duration_seconds", "w.error_count", "w.retry_count", "1",
                     "w.estimated_nanos")
            differs = " OR ".join(f"COALESCE(po.{c}, 0) <> COALESCE({w}, 0)" for c, w in zip(LINK_COLUMNS, whole, strict=True))
            n = db.one("SELECT COUNT(*) FROM pattern_occurrences po JOIN workflow_history w ON w.workflow_id = po.workflow_id "
                       f"WHERE po.layer = 'workflow' AND ({differs})")[0]
            if n:
                problems.append(f"{n} whole-workflow pattern_occurrences rows disagree with their workflow's totals")
                if repair:
                    sets = ", ".join(f"{c} = (SELECT COALESCE({w}, 0) FROM workflow_history w "
                                     "WHERE w.workflow_id = pattern_occurrences.workflow_id)"
                                     for c, w in zip(LINK_COLUMNS, whole, strict=True))
                    db.execute(f"UPDATE pattern_occurrences SET {sets} WHERE layer = 'workflow'")
            stored = {int(r[0]): r[1:] for r in db.all(
                f"SELECT id, pattern_signature, {', '.join(SUM_COLUMNS)}, {', '.join(DERIVED_COLUMNS)} FROM operation_patterns")}
            for pid, (sums, derived) in sorted(self.recompute().items()):
                row = stored[pid]
                sig = row[0]
                want = (*(getattr(sums, f) for f in PatternSums.__dataclass_fields__), *derived)
                have = row[1:]
                names = SUM_COLUMNS + DERIVED_COLUMNS
                bad = [(name, h, w) for name, h, w in zip(names, have, want, strict=True)
                       if not (name == "typical_input_pattern" and w is None) and not _same(h, w)]
                for name, h, w in bad:
                    problems.append(f"{sig}: {name} stored {h!r}, recomputed {w!r}")
                if bad and repair:
                    db.execute(f"UPDATE operation_patterns SET {', '.join(c + ' = ?' for c in SUM_COLUMNS)} WHERE id = ?",
                               (*want[:len(SUM_COLUMNS)], pid))
                    self._write_derived(pid, sums)
            return problems

        if repair:
            return list(self.db.transaction(work, what="verify --repair"))
        return work()

    def _check_derivation(self, key: str | None) -> None:
        """Recompute or re-read when the tool ratio, prices or rules changed since the last run."""
        db = self.db
        flag = db.one("SELECT value FROM meta WHERE key = 'recompute_all'")
        if flag and flag[0] == "1":
            fixed = self.verify(repair=True)
            db.transaction(lambda: db.execute("UPDATE meta SET value = '0' WHERE key = 'recompute_all'"))
            if fixed:
                log.info("recomputed pattern statistics after migration (%d values corrected)", len(fixed))
        if key is None:
            return
        row = db.one("SELECT value FROM meta WHERE key = 'derivation'")
        if row and row[0] == key:
            return

        def work():
            if row is not None:
                # Prices or rules changed: every workflow must be read again from its files.
                db.execute("UPDATE workflow_history SET fingerprint = NULL")
                db.execute("DELETE FROM agent_outputs")
            db.execute("INSERT INTO meta (key, value) VALUES ('derivation', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (key,))

        db.transaction(work, what="derivation settings")
        if row is not None:
            log.info("detection rules, prices or tool_cost_ratio changed: every workflow will be read again")
            self.verify(repair=True)

    # -- reports --------------------------------------------------------------
    def patterns(self, sort: str = "savings", limit: int | None = None) -> list[dict]:
        order = {"savings": "potential_monthly_savings DESC", "occurrences": "occurrence_count DESC",
                 "confidence": "confidence_score DESC"}[sort]
        cur = self.db.execute(f"SELECT * FROM operation_patterns WHERE occurrence_count > 0 ORDER BY {order}, "
                              f"pattern_signature" + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def window(self, since_us: int, until_us: int, sort: str = "savings", limit: int | None = None) -> list[dict]:
        """The patterns' statistics over the workflows seen (started) in [since, until): a query
        over the links, not the running sums. Monthly savings use the window's length. Each
        row also has its spend in the 30 days before ``until`` and in the 30 before those."""
        month = 30 * 86_400 * 1_000_000
        dur = "CASE WHEN o.duration_seconds > 0 THEN o.duration_seconds ELSE 0 END"
        rows = self.db.all(
            "SELECT p.pattern_signature, COUNT(*), SUM(o.tokens), SUM(o.cost_nanos), "
            "SUM(CASE WHEN o.duration_seconds > 0 THEN 1 ELSE 0 END), "
            f"SUM({dur}), SUM({dur} * {dur}), SUM(o.error_count), SUM(o.retry_count), SUM(o.units), "
            "SUM(o.estimated_nanos), MIN(o.seen_us), MAX(o.seen_us) "
            "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
            "JOIN workflow_history w ON w.workflow_id = o.workflow_id AND w.revision > 0 "
            "WHERE o.seen_us >= ? AND o.seen_us < ? GROUP BY p.pattern_signature", (since_us, until_us))
        trend = {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in self.db.all(
            "SELECT p.pattern_signature, SUM(CASE WHEN o.seen_us >= ? THEN o.cost_nanos ELSE 0 END), "
            "SUM(CASE WHEN o.seen_us < ? THEN o.cost_nanos ELSE 0 END) "
            "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
            "JOIN workflow_history w ON w.workflow_id = o.workflow_id AND w.revision > 0 "
            "WHERE o.seen_us >= ? AND o.seen_us < ? GROUP BY p.pattern_signature",
            (until_us - month, until_us - month, until_us - 2 * month, until_us))}
        out = []
        for r in rows:
            sums = PatternSums(*(int(v or 0) for v in r[1:11]))
            s = derive(sums, since_us, until_us, self.tool_cost_ratio)
            last30, prior30 = trend.get(r[0], (0, 0))
            out.append({
                "pattern_signature": r[0], "occurrence_count": s.occurrence_count, "sum_units": sums.units,
                "sum_cost_nanos": sums.cost_nanos, "sum_estimated_nanos": sums.estimated_nanos,
                "avg_tokens_with_llm": s.avg_tokens_with_llm, "avg_cost_with_llm": s.avg_cost_with_llm,
                "avg_tokens_with_tool": s.avg_tokens_with_tool, "avg_cost_with_tool": s.avg_cost_with_tool,
                "potential_monthly_savings": s.potential_monthly_savings, "confidence_score": s.confidence_score,
                "first_seen": us_to_iso(int(r[11])), "last_seen": us_to_iso(int(r[12])),
                "spend_last_30d_usd": last30 / 1e9, "spend_prior_30d_usd": prior30 / 1e9,
                "trend": (None if not prior30 else (last30 - prior30) / prior30),
            })
        key = {"savings": "potential_monthly_savings", "occurrences": "occurrence_count",
               "confidence": "confidence_score"}[sort]
        out.sort(key=lambda row: (-row[key], row["pattern_signature"]))
        return out[:limit] if limit else out

    def status(self) -> dict:
        db = self.db
        roots = {r[0]: {"workflows": int(r[1]), "last_updated": r[2]} for r in db.all(
            "SELECT root_name, COUNT(*), MAX(updated_at) FROM workflow_history WHERE revision > 0 GROUP BY root_name")}
        last = db.one("SELECT workflow_id, updated_at FROM workflow_history WHERE revision > 0 "
                      "ORDER BY updated_at DESC, workflow_id LIMIT 1")
        if db.dialect == "sqlite":
            pages = db.one("PRAGMA page_count")[0] * db.one("PRAGMA page_size")[0]
        else:
            pages = db.one("SELECT pg_total_relation_size('operation_patterns') + pg_total_relation_size('pattern_occurrences')"
                           " + pg_total_relation_size('workflow_history') + pg_total_relation_size('agent_outputs')")[0]
        def counts(column: str) -> dict:
            return {str(r[0]): int(r[1]) for r in db.all(
                f"SELECT COALESCE({column}, 'none'), COUNT(*) FROM workflow_history WHERE revision > 0 "
                f"GROUP BY COALESCE({column}, 'none') ORDER BY 1")}

        spend = db.one("SELECT COALESCE(SUM(cost_nanos), 0), COALESCE(SUM(estimated_nanos), 0), "
                       "COALESCE(SUM(unfinished_runs), 0), COALESCE(SUM(overwritten_runs), 0), "
                       "COALESCE(SUM(overwritten_nanos), 0) FROM workflow_history WHERE revision > 0")
        return {
            "workflows": sum(v["workflows"] for v in roots.values()),
            "by_status": counts("status"),
            "time_source": counts("time_source"),
            "request_source": counts("request_source"),
            "spend_usd": int(spend[0]) / 1e9,
            "estimated_usd": int(spend[1]) / 1e9,
            "unfinished_runs": int(spend[2]),
            "overwritten_runs": int(spend[3]),  # seen live, since overwritten: kept, not in the files
            "overwritten_usd": int(spend[4]) / 1e9,
            "patterns": db.one("SELECT COUNT(*) FROM operation_patterns WHERE occurrence_count > 0")[0],
            "roots": roots,
            "last_processed": {"workflow_id": last[0], "at": last[1]} if last else None,
            "database": db.label,
            "database_bytes": int(pages or 0),
        }


def _accumulate(d: list[int], c: Contribution, sign: int) -> None:
    dur = c.duration if c.duration > 0 else 0
    for i, v in enumerate((1, c.tokens, c.cost_nanos, 1 if dur else 0, dur, dur * dur, c.errors, c.retries,
                           c.units, c.estimated_nanos)):
        d[i] += sign * v


def _evidence_rows(workflow_id: str, links: dict[int, Occurrence]) -> list[tuple]:
    return [(pid, workflow_id, kind, item, n) for pid, o in links.items() for kind, item, n in o.evidence]


def _link_values(c: Contribution) -> tuple:
    return (c.tokens, c.cost_nanos, c.duration, c.errors, c.retries, c.units, c.estimated_nanos)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    return a == b
