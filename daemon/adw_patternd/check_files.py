"""verify --files: does the database say what the files say?

Everything is recomputed from the files into a scratch SQLite database, by the same path as
`sync`, and compared table by table with the live database. The runs that only the ledger
knows (seen in a transcript that a later run of its agent rewrote) cannot come from the
files: they are carried into the scratch database from the live one and listed apart.

The live database is read on one snapshot, without a write lock, so this works while the
daemon runs. A daemon may be a moment behind the files (debounce, a burst of writes): a
difference is reported only if it is still there after ``rounds`` looks, ``settle_s`` apart.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, replace

from .config import Config
from .engine import Engine
from .store.db import Db
from .store import Ledger, open_ledger
from .store.contents import TABLES, dump, overwritten_states, session_record_states, stored_workflows
from .sync import Syncer
from .sources.agent_record import RecordCheck, check_session
from .sources.transcript import Run, from_json

@dataclass(frozen=True)
class Overwritten:
    workflow_id: str
    transcript: str
    runs: int
    cost_nanos: int


@dataclass(frozen=True)
class FilesCheck:
    differences: tuple[str, ...]
    overwritten: tuple[Overwritten, ...]  # runs only the ledger knows, listed apart
    workflows: int
    rounds: int
    seconds: float
    # With agent_record: each session holding Claude Code's own record, against ours
    records: tuple[RecordCheck, ...] = ()


def overwritten_runs(db: Db) -> dict[tuple[str, str], tuple[Run, ...]]:
    found = {}
    for workflow_id, path, state in overwritten_states(db):
        runs = tuple(Run(*r) for r in json.loads(state or "{}").get("overwritten", ()))
        if runs:
            found[(workflow_id, path)] = runs
    return found


def compare(live: dict, files: dict) -> list[str]:
    """One line per difference: table, key, and the column that differs (or the row that is
    only on one side)."""
    out = []
    for table, (_query, _key_len, columns) in TABLES.items():
        a, b = live[table], files[table]
        for key in sorted(a.keys() | b.keys(), key=repr):
            name = "/".join(str(k) for k in key) if table != "workflow_history" else key[0]
            if key not in b:
                out.append(f"{table} {name}: in the database, not in the files")
            elif key not in a:
                out.append(f"{table} {name}: in the files, not in the database")
            else:
                for column, x, y in zip(columns, a[key], b[key], strict=True):
                    if x != y:
                        out.append(f"{table} {name}: {column} is {_short(x)} in the database, "
                                   f"{_short(y)} from the files")
    return out


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def agent_records(db: Db, prices) -> tuple[RecordCheck, ...]:
    """Each session of its own that holds Claude Code's cost-state, compared with our count."""
    checks = []
    for workflow_id, files in sorted(session_record_states(db).items()):
        folds = [from_json(name, 0, 0, 0, 0, 0, "", "", state, True) for name, state in files]
        found = check_session(workflow_id, folds, prices)
        if found is not None:
            checks.append(found)
    return tuple(checks)


def check_files(config: Config, *, rounds: int = 3, settle_s: float = 2.0, workers: int = 1,
                agent_record: bool = False) -> FilesCheck:
    """``agent_record``: also compare each session's figures with the agent's own record, as
    the files give them (the scratch database: what the files say, at this version's state)."""
    started = time.monotonic()
    records: tuple[RecordCheck, ...] = ()
    with open_ledger(config) as live, tempfile.TemporaryDirectory(prefix="adw-patternd-verify-") as tmp:
        # The scratch database is named in a config of its own: sync's forked readers open it from there.
        scratch_config = replace(config, database=os.path.join(tmp, "files.db"))
        with open_ledger(scratch_config) as scratch:
            differences, done = _look(live, scratch, scratch_config, rounds, settle_s, workers)
            workflows = stored_workflows(scratch.db)
            if agent_record:
                records = agent_records(scratch.db, config.prices)
        carried = overwritten_runs(live.db)
    listed = tuple(Overwritten(w, p, len(runs), sum(r.cost_nanos for r in runs))
                   for (w, p), runs in sorted(carried.items()))
    return FilesCheck(tuple(differences), listed, int(workflows), done, time.monotonic() - started, records)


def _look(live: Ledger, scratch: Ledger, scratch_config: Config, rounds: int, settle_s: float,
          workers: int) -> tuple[list[str], int]:
    """Recompute from the files and compare, up to ``rounds`` times: (differences, looks)."""
    quiet = logging.getLogger("adw_patternd")
    differences: list[str] = []
    done = 0
    for done in range(1, rounds + 1):
        # Bad files were reported when they were read; the recomputation says nothing new.
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            Syncer(Engine(scratch_config, scratch, overwritten_runs(live.db))).run(workers=workers)
        finally:
            quiet.setLevel(level)
        differences = compare(dump(live.db), dump(scratch.db))
        if not differences or done == rounds:
            break
        time.sleep(settle_s)  # a running daemon may be a moment behind the files
    return differences, done
