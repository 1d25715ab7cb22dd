"""What applying changes reads before it writes, for a whole batch at once.

Applying a workflow needs its stored row (locked), its links to patterns and the names of
its stored transcripts. Asked one workflow at a time, that is three queries a workflow; on
PostgreSQL each is a network round trip that the pipeline cannot hide, since the writes
depend on the answers. Here they are three queries for the batch. The rows are locked in
workflow id order, as one at a time did, so two writers still cannot deadlock.
"""

from __future__ import annotations

from .db import Db
from .rows import LINK, WORKFLOW_COLUMNS, contribution_of

CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


class BatchReads:
    """The stored state of some workflows, read in the current write transaction."""

    def __init__(self, rows: dict, links: dict, outputs: dict):
        self._rows, self._links, self._outputs = rows, links, outputs

    @classmethod
    def load(cls, db: Db, workflow_ids) -> "BatchReads":
        """Create the workflows' rows where missing (revision 0), lock them and read them."""
        ids = sorted(set(workflow_ids))
        db.insert_many("workflow_history", ("workflow_id", "revision"), [(w, 0) for w in ids],
                       "ON CONFLICT (workflow_id) DO NOTHING")
        rows: dict[str, tuple] = {}
        links: dict[str, dict] = {w: {} for w in ids}
        outputs: dict[str, set[str]] = {w: set() for w in ids}
        for i in range(0, len(ids), CHUNK):
            part = ids[i : i + CHUNK]
            marks = ", ".join("?" for _ in part)
            for r in db.all(f"SELECT workflow_id, revision, {', '.join(WORKFLOW_COLUMNS)} FROM workflow_history "
                            f"WHERE workflow_id IN ({marks}) ORDER BY workflow_id{db.for_update}", part):
                rows[r[0]] = tuple(r[1:])
            for r in db.all(f"SELECT workflow_id, pattern_id, {LINK} FROM pattern_occurrences "
                            f"WHERE workflow_id IN ({marks})", part):
                links[r[0]][int(r[1])] = contribution_of(r[2:])
            for r in db.all(f"SELECT workflow_id, agent_name FROM agent_outputs WHERE workflow_id IN ({marks})", part):
                outputs[r[0]].add(r[1])
        return cls(rows, links, outputs)

    def row(self, workflow_id: str) -> tuple:
        """(revision, *WORKFLOW_COLUMNS) as stored."""
        return self._rows[workflow_id]

    def links(self, workflow_id: str) -> dict:
        """pattern id -> the Contribution stored for the workflow."""
        return self._links[workflow_id]

    def output_names(self, workflow_id: str) -> set[str]:
        """The agent_name of each of the workflow's agent_outputs rows."""
        return self._outputs[workflow_id]


class BatchWrites:
    """The rows a batch inserts (links, transcripts, evidence, mentions, waits) and the
    workflow rows it updates, collected while its workflows are applied and written
    together: on PostgreSQL one statement for many rows, instead of one a row. Deletes are
    not deferred: they run at once, so a workflow's old rows are gone before its new ones
    land. Flushed before anything reads what was collected (a pattern's first and last
    seen, when its statistics are derived)."""

    def __init__(self):
        self._rows: dict[tuple, list[tuple]] = {}  # (table, columns, tail) -> rows, in the order added
        self._updates: dict[tuple, list[tuple]] = {}  # (table, key, columns, keep_if_null) -> rows

    def add(self, table: str, columns: tuple[str, ...], rows: list[tuple], tail: str = "") -> None:
        if rows:
            self._rows.setdefault((table, columns, tail), []).extend(rows)

    def update(self, table: str, key: str, columns: tuple[str, ...], row: tuple,
               keep_if_null: tuple[str, ...] = ()) -> None:
        """Set ``columns`` of the row whose ``key`` is row[0] to row[1:] (Db.update_many)."""
        self._updates.setdefault((table, key, columns, keep_if_null), []).append(row)

    def flush(self, db: Db) -> None:
        for (table, columns, tail), rows in self._rows.items():
            db.insert_many(table, columns, rows, tail)
        for (table, key, columns, keep_if_null), rows in self._updates.items():
            db.update_many(table, key, columns, rows, keep_if_null)
        self._rows.clear()
        self._updates.clear()
