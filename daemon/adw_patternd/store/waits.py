"""command_waits rows: how long agents waited on each command signature's Bash calls in a
workflow (tool_use to tool_result), where a session store gave those times; for `show`."""

from __future__ import annotations

import json

from ..core.model import Workflow
from ..core.waits import Waits
from .batch import BatchWrites
from .db import Db


def store_waits(db: Db, wf: Workflow, writes: BatchWrites, *, replace: bool) -> None:
    """Make the workflow's rows exactly its waits (``replace``: it may have had some before)."""
    if replace:
        db.execute("DELETE FROM command_waits WHERE workflow_id = ?", (wf.workflow_id,))
    writes.add("command_waits", ("workflow_id", "signature", "calls", "total_ms", "waits_ms"),
               [(wf.workflow_id, sig, w.calls, w.total_ms, json.dumps(w.to_json())) for sig, w in wf.waits])


def waits_of(db: Db, signature: str) -> dict | None:
    """The median and total wall time of the signature's timed calls, over the workflows it
    occurs in; None when no session store timed any. The median is an estimate (and says so)
    where a workflow made more such calls than core/waits.py keeps one by one."""
    rows = db.all("SELECT c.waits_ms FROM command_waits c JOIN operation_patterns p ON p.pattern_signature = "
                  "c.signature JOIN pattern_occurrences o ON o.pattern_id = p.id AND o.workflow_id = c.workflow_id "
                  "WHERE c.signature = ?", (signature,))
    waits = Waits()
    for (text,) in rows:
        waits = waits.plus(Waits.from_json(json.loads(text)))
    if not waits.calls:
        return None
    return {"timed_calls": waits.calls, "workflows": len(rows), "median_s": waits.median_ms() / 1000,
            "total_s": waits.total_ms / 1000, "median_estimated": not waits.exact}
