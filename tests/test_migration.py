"""A database written by the release before issue 26 (tests/old_release.py made it, with that
release's code) carries over: migration m011 adds the response keys, session files are read
again once (their state becomes the bounded one), and what only the ledger knew (a run seen
before its transcript was rewritten) is still counted; `verify --files` then finds nothing."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from adw_patternd.cli import main
from adw_patternd.sources.transcript import OPEN_MESSAGES, STATE_VERSION
from helpers import normalised_dump, query
from old_release import config_text, lay_out, retry

OLD = Path(__file__).parent / "golden" / "release-6d1ce8c.db"


def _synced(tmp: Path, database: Path) -> Path:
    cfg = tmp / "config.yaml"
    cfg.write_text(config_text(tmp, str(database)))
    assert main(["sync", "--config", str(cfg)]) == 0
    return cfg


def test_a_database_of_the_release_before_carries_over(tmp_path):
    old = sqlite3.connect(OLD)
    before = dict(old.execute("SELECT workflow_id, overwritten_nanos FROM workflow_history").fetchall())
    assert old.execute("PRAGMA user_version").fetchone()[0] == 10  # made before m011
    old.close()
    assert before["example/0b94a014"] > 0, "the fixture must hold a run only the ledger knows"

    files = tmp_path / "files"
    lay_out(files)
    retry(files)
    database = tmp_path / "old.db"
    shutil.copy(OLD, database)
    database.chmod(0o644)
    cfg = _synced(files, database)

    wf = {r[0]: r[1:] for r in query(str(database), "SELECT workflow_id, overwritten_runs, overwritten_nanos "
                                                    "FROM workflow_history")}
    assert wf["example/0b94a014"] == (1, before["example/0b94a014"])  # the run only the ledger knew
    states = [json.loads(s) for (s,) in query(str(database), "SELECT state_json FROM agent_outputs")]
    assert {s["v"] for s in states} == {STATE_VERSION}
    assert max(len(s["messages"]) for s in states) <= OPEN_MESSAGES
    assert query(str(database), "SELECT count(*) FROM response_keys")[0][0] > 0
    assert main(["verify", "--files", "--config", str(cfg), "--rounds", "1"]) == 0

    # The people's own sessions now say what a fresh read of the same files says. A fresh
    # database lacks one thing only: the overwritten run named session 0b94a014-reviewer-0,
    # so the ledger joins it to its workflow where the files alone make it a session of its own.
    fresh = tmp_path / "fresh.db"
    _synced(files, fresh)
    mine, theirs = normalised_dump(str(database)), normalised_dump(str(fresh))
    ours = {r[0] for r in mine["workflow_history"] if r[0].startswith("claude/")}
    alone = {r[0] for r in theirs["workflow_history"] if r[0].startswith("claude/")} - ours
    assert alone == {"claude/0b94a014-reviewer-0"} and len(ours) == 3  # the three people's sessions of the example store
    for table in ("workflow_history", "pattern_occurrences"):
        key = 0 if table == "workflow_history" else 1
        assert [r for r in mine[table] if r[key] in ours] == [r for r in theirs[table] if r[key] in ours]
