"""command_waits rows: how long agents waited on each command signature's Bash calls in a
workflow (tool_use to tool_result), where a session store gave those times; for `show`."""

from __future__ import annotations

import json
import statistics

from ..core.model import Workflow
from .batch import BatchWrites
from .db import Db


def store_waits(db: Db, wf: Workflow, writes: BatchWrites, *, replace: bool) -> None:
    """Make the workflow's rows exactly its waits (``replace``: it may have had some before)."""
    if replace:
        db.execute("DELETE FROM command_waits WHERE workflow_id = ?", (wf.workflow_id,))
    writes.add("command_waits", ("workflow_id", "signature", "calls", "total_ms", "waits_ms"),
               [(wf.workflow_id, sig, len(ms), sum(ms), json.dumps(list(ms))) for sig, ms in wf.waits])


def waits_of(db: Db, signature: str) -> dict | None:
    """The median and total wall time of the signature's timed calls, over the workflows it
    occurs in; None when no session store timed any."""
    rows = db.all("SELECT c.waits_ms FROM command_waits c JOIN operation_patterns p ON p.pattern_signature = "
                  "c.signature JOIN pattern_occurrences o ON o.pattern_id = p.id AND o.workflow_id = c.workflow_id "
                  "WHERE c.signature = ?", (signature,))
    ms = sorted(m for (text,) in rows for m in json.loads(text))
    if not ms:
        return None
    return {"timed_calls": len(ms), "workflows": len(rows), "median_s": statistics.median(ms) / 1000,
            "total_s": sum(ms) / 1000}
