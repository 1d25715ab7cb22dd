"""A Codex home, live (issue 28, item 4): a real daemon with a real watchdog observer on a
synthetic home. An appended response with a `git status` call shows in `show
git:status:summary` within a second of the debounce; a session in a new day folder is read;
a rollout compressed in place or archived changes nothing; afterwards verify --files is
clean. Every wait has a deadline; nothing sleeps to assert."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import zstandard

from adw_patternd.cli import main
from adw_patternd.synth.codex import make_codex_home
from helpers import query, wait_for, write_config
from test_codex_sync import append_git_status

DEBOUNCE_S = 0.1
FAST = {"debounce_ms": int(DEBOUNCE_S * 1000), "reconcile_interval_s": 0, "watch": {"sweep_interval_s": 0.5}}


def row(database: str, workflow_id: str):
    got = query(database, "SELECT total_tokens, cost_nanos FROM workflow_history WHERE workflow_id = ? "
                          "AND revision > 0", (workflow_id,))
    return tuple(int(v) for v in got[0]) if got else None


def git_status_calls(database: str, workflow_id: str) -> int:
    got = query(database, "SELECT o.units FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
                          "WHERE p.pattern_signature = 'git:status:summary' AND o.workflow_id = ?", (workflow_id,))
    return int(got[0][0]) if got else 0


def test_a_codex_home_is_read_live(tmp_path, database, daemon, capsys):
    home = tmp_path / "codex-home"
    plan = make_codex_home(str(home))
    then = time.time() - 7200
    for p in home.rglob("rollout-*"):
        os.utime(p, (then, then))
    cfg = write_config(tmp_path, {}, database, codex_homes=[{"path": str(home), "name": "cx"}], **FAST)
    d = daemon(cfg)
    wait_for(lambda: "catch-up:" in d.log(), what="catch-up")
    plain = [p for p in plan.sessions.values() if p.kind == "session" and not p.compressed and not p.archived
             and "git:status:summary" not in p.commands]
    appended, compressed, archived = plain[0], plain[1], plain[2]
    assert row(database, f"cx/{appended.sid}") == (appended.tokens, appended.nanos)

    # A rollout compressed in place, and one archived: nothing changes.
    zst = Path(compressed.path + ".zst")
    zst.write_bytes(zstandard.ZstdCompressor().compress(Path(compressed.path).read_bytes()))
    os.unlink(compressed.path)
    shutil.move(archived.path, home / "archived_sessions" / os.path.basename(archived.path))

    # An appended response with a git status call: in `show git:status:summary` within a
    # second of the debounce.
    wid = f"cx/{appended.sid}"
    before = query(database, "SELECT occurrence_count FROM operation_patterns "
                             "WHERE pattern_signature = 'git:status:summary'")[0][0]
    append_git_status(appended.path)
    started = time.monotonic()
    wait_for(lambda: git_status_calls(database, wid) == 1, timeout=DEBOUNCE_S + 1.0,
             what="the appended git status call stored within a second of the debounce")
    assert time.monotonic() - started <= DEBOUNCE_S + 1.0
    capsys.readouterr()
    assert main(["show", "git:status:summary", "--config", str(cfg)]) == 0
    assert f"occurrences {int(before) + 1} " in capsys.readouterr().out

    # A session in a new day folder.
    sid = "0d0d0d0d-1111-4222-8333-444455556666"
    day = home / "sessions" / "2026" / "12" / "01"
    day.mkdir(parents=True)
    source = Path(plain[3].path).read_text().replace(plain[3].sid, sid)
    (day / f"rollout-2026-12-01T09-00-00-{sid}.jsonl").write_text(source)
    wait_for(lambda: row(database, f"cx/{sid}") is not None, what="a session in a new day folder")

    assert row(database, f"cx/{compressed.sid}") == (compressed.tokens, compressed.nanos)
    assert row(database, f"cx/{archived.sid}") == (archived.tokens, archived.nanos)
    assert d.stop() == 0
    assert "Traceback" not in d.log()
    assert main(["verify", "--files", "--config", str(cfg)]) == 0
