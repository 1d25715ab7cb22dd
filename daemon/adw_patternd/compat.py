"""The reference design's public functions, with its names, arguments and return shapes,
over the exact ledger. They take a sqlite3 connection, migrate it in place on first use,
and commit what they do (as the reference's did), one transaction per call.

Unlike the reference, calling them again with the same workflow changes nothing, and a
workflow's new values replace its old contribution instead of adding to it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from .config import load_config
from .engine import Engine
from .sources.parse import workflow_from_record
from .core.rules import characteristics, detect
from .core.model import Contribution, Occurrence
from .store.db import wrap_sqlite
from .store.queries import signature_of
from .store import Ledger, open_ledger
from .store.rows import Change
from .sync import Syncer

log = logging.getLogger("adw_patternd")


def _ledger(db_connection: sqlite3.Connection) -> Ledger:
    return Ledger.open(wrap_sqlite(db_connection))


def record_pattern_occurrence(pattern_signature: str, workflow: dict, db_connection: sqlite3.Connection):
    """Link the workflow to the pattern (creating it if new) and update the pattern's statistics.

    Returns (pattern_id, is_new_pattern), or (None, False) when the workflow has no workflow_id.
    The workflow's other links are kept; its values replace what it contributed before.
    """
    wf = workflow_from_record(workflow)
    if wf is None:
        log.warning("workflow has no workflow_id; cannot record pattern %s", pattern_signature)
        return None, False
    link = (Occurrence(pattern_signature, "workflow", Contribution.of(wf)),)
    result = _ledger(db_connection).apply([Change(wf, link, characteristics(wf), mode="add")])[0]
    # In "add" mode the requested pattern comes first in the workflow's links.
    return result.pattern_ids[0], pattern_signature in result.new_patterns


def update_pattern_statistics(pattern_id: int, workflow: dict, db_connection: sqlite3.Connection) -> None:
    """Bring pattern ``pattern_id``'s statistics up to date with this workflow (linking it if
    it was not linked yet). Statistics are exact means over the linked workflows."""
    signature = signature_of(wrap_sqlite(db_connection), pattern_id)
    if signature is None:
        log.warning("pattern %s not found for statistics update", pattern_id)
        return
    wf = workflow_from_record(workflow)
    if wf is None:
        log.warning("workflow has no workflow_id; cannot update pattern %s", pattern_id)
        return
    link = (Occurrence(signature, "workflow", Contribution.of(wf)),)
    _ledger(db_connection).apply([Change(wf, link, characteristics(wf), mode="add")])


def process_and_persist_workflow(workflow: dict, db_connection: sqlite3.Connection) -> dict:
    """Detect the workflow's patterns and store it with exactly those links.

    Returns {'patterns_detected': n, 'new_patterns': n, 'pattern_ids': [...]}.
    """
    wf = workflow_from_record(workflow)
    if wf is None:
        log.warning("workflow has no workflow_id; not persisted")
        return {"patterns_detected": 0, "new_patterns": 0, "pattern_ids": []}
    found = detect(wf)
    result = _ledger(db_connection).apply([Change(wf, found.occurrences, found.characteristics)])[0]
    return {"patterns_detected": len(found.signatures), "new_patterns": len(result.new_patterns),
            "pattern_ids": list(result.pattern_ids)}


def batch_process_workflows(workflows: list[dict], db_connection: sqlite3.Connection) -> dict:
    """process_and_persist_workflow over a list; one failing workflow does not stop the rest."""
    total = new = processed = errors = 0
    for workflow in workflows:
        try:
            r = process_and_persist_workflow(workflow, db_connection)
        except Exception as e:  # noqa: BLE001 - the reference's contract: count it and go on
            log.error("failed to process workflow %s: %s", (workflow or {}).get("workflow_id"), e)
            errors += 1
            continue
        total += r["patterns_detected"]
        new += r["new_patterns"]
        processed += 1
    return {"total_workflows": len(workflows), "processed": processed, "total_patterns": total,
            "new_patterns": new, "errors": errors}


def sync_workflow_history(config_path: str | Path | None = None) -> int:
    """Scan every configured root once and bring the database up to date.

    Returns the number of workflows stored or updated (the reference returned its synced count).
    """
    config = load_config(config_path)
    with open_ledger(config) as ledger:
        summary = Syncer(Engine(config, ledger)).run()
    return summary.new + summary.updated
