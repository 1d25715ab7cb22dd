"""A Gemini CLI session killed while a shell call runs (sources/gemini.py, issue 33): Gemini CLI
0.61 writes a response before its calls, with no text, and writes it again with its calls
once they end. A chat that ends on such a line ends in a call, not in an answer: the session
is interrupted once its file is stale, never completed. A database that stored such a
session as completed (the readers' state version 2) reads it again once (m018), and
`verify --files` then agrees with it.

The chat is examples/gemini's (written by the real Gemini CLI 0.61 against the scripted
model), cut where the kill would have cut it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

from adw_patternd.cli import main
from adw_patternd.config import load_config
from adw_patternd.sources.agent_fold import STATE_VERSION
from adw_patternd.sources.agent_source import AgentSource
from adw_patternd.store.schema import MIGRATIONS
from helpers import query

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "gemini"
LONG_AGO = 1_780_000_000  # every file's mtime: long stale


def _killed_home(tmp: Path) -> tuple[Path, str]:
    """The example home with a chat that calls a shell cut after the first response written
    without its calls; its other chats as they are."""
    home = tmp / "gemini"
    shutil.copytree(EXAMPLE, home)
    chat = next(p for p in sorted(home.glob("tmp/*/chats/*.jsonl")) if '"toolCalls"' in p.read_text())
    lines = chat.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if (o := json.loads(line)).get("type") == "gemini"
               and not o.get("toolCalls") and not o.get("content"))
    assert any(json.loads(line).get("toolCalls") for line in lines[cut + 1:]), "its calls come after it"
    chat.write_text("".join(lines[:cut + 1]))
    for path in home.rglob("*"):
        os.utime(path, (LONG_AGO, LONG_AGO))
    return home, json.loads(lines[0])["sessionId"]


def _config(tmp: Path, home: Path) -> Path:
    cfg = tmp / "config.yaml"
    cfg.write_text(f"database: {tmp / 'db.sqlite'}\ngemini_homes:\n  - path: {home}\n")
    return cfg


def _write(database: str, *statements: tuple) -> None:
    conn = sqlite3.connect(database)
    with conn:
        for sql, *params in statements:
            conn.execute(sql, *params)
    conn.close()


def _status(tmp: Path, sid: str) -> str:
    return query(str(tmp / "db.sqlite"), "SELECT status FROM workflow_history WHERE workflow_id = ?",
                 (f"gemini/{sid}",))[0][0]


def test_a_session_killed_in_a_call_is_interrupted(tmp_path):
    home, sid = _killed_home(tmp_path)
    cfg = _config(tmp_path, home)
    assert main(["sync", "--config", str(cfg)]) == 0
    assert _status(tmp_path, sid) == "interrupted"
    assert main(["verify", "--files", "--config", str(cfg), "--rounds", "1"]) == 0


def test_a_session_stored_completed_by_the_state_before_is_read_again(tmp_path):
    home, sid = _killed_home(tmp_path)
    cfg = _config(tmp_path, home)
    assert main(["sync", "--config", str(cfg)]) == 0
    db = str(tmp_path / "db.sqlite")
    # What the release before stored: the session completed, its state of version 2, and m018 not applied.
    wid = f"gemini/{sid}"
    state = json.loads(query(db, "SELECT state_json FROM agent_outputs WHERE workflow_id = ?", (wid,))[0][0])
    _write(db, ("UPDATE agent_outputs SET state_json = ? WHERE workflow_id = ?", (json.dumps({**state, "v": 2}), wid)),
           ("UPDATE workflow_history SET status = 'completed' WHERE workflow_id = ?", (wid,)),
           ("DELETE FROM schema_migrations WHERE name = 'm018_agent_state_v3'",),
           (f"PRAGMA user_version = {len(MIGRATIONS) - 1}",))
    assert main(["verify", "--files", "--config", str(cfg), "--rounds", "1"]) != 0  # the stale status is seen

    assert main(["sync", "--config", str(cfg)]) == 0  # migrates, then reads the session again
    assert _status(tmp_path, sid) == "interrupted"
    assert json.loads(query(db, "SELECT state_json FROM agent_outputs WHERE workflow_id = ?", (wid,))[0][0])["v"] == STATE_VERSION
    assert main(["verify", "--files", "--config", str(cfg), "--rounds", "1"]) == 0


def test_a_chat_being_rewritten_is_not_a_session_deleted(tmp_path):
    """Gemini CLI 0.24 writes its legacy .json whole again at each message: for a moment the
    file names no session. The daemon's listing keeps the session it knew (else the next
    read would find it missing and drop its workflow); a file gone drops it."""
    home, sid = _killed_home(tmp_path)
    config = load_config(_config(tmp_path, home))
    (root,) = config.homes
    source = AgentSource(config)
    assert sid in source.names(root)
    chat = next(p for p in home.glob("tmp/*/chats/*.jsonl") if sid in p.read_text())
    chat.write_text("")  # truncated, not written yet
    source.relist(root)
    assert sid in source.names(root) and source.listing(root, sid) is not None
    chat.unlink()
    source.relist(root)
    assert sid not in source.names(root)
