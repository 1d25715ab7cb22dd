"""The files a database of the release before issue 26 (commit 6d1ce8c) was made from, and how
it was made: tests/golden/release-6d1ce8c.db, read by tests/test_migration.py.

It imports nothing of adw_patternd, so that the code of that release can run it:

    git worktree add /tmp/old 6d1ce8c && python3 -m venv /tmp/oldenv && /tmp/oldenv/bin/pip install -e /tmp/old
    /tmp/oldenv/bin/python tests/old_release.py tests/golden/release-6d1ce8c.db

The example tree and its session store are synced, then one agent is run again (its
transcript rewritten by a retry) and synced again: the first run is then known only to the
database (an overwritten run), which a migration must keep.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RETRIED = "0b94a014/reviewer/raw_output.jsonl"
WHEN = 1_780_000_000  # every file's mtime: old enough that no read is "racy"


def lay_out(dst: Path) -> None:
    """The example tree and session store under ``dst`` (agents/, claude/projects/)."""
    shutil.copytree(EXAMPLES / "agents", dst / "agents")
    shutil.copytree(EXAMPLES / "claude", dst / "claude")
    _settle(dst)


def retry(dst: Path) -> None:
    """The reviewer of 0b94a014 runs again: its transcript is rewritten by a new session."""
    path = dst / "agents" / RETRIED
    text = path.read_text().replace("0b94a014-reviewer-0", "0b94a014-reviewer-1").replace('"duration_ms": 12572',
                                                                                         '"duration_ms": 9000')
    path.write_text(text)
    _settle(dst)


def _settle(dst: Path) -> None:
    for p in dst.rglob("*"):
        os.utime(p, (WHEN, WHEN), follow_symlinks=False)


def config_text(dst: Path, database: str) -> str:
    return (f"roots:\n  - path: {dst / 'agents'}\n    name: example\n"
            f"claude_projects:\n  - path: {dst / 'claude' / 'projects'}\n    name: claude\n"
            f"database: {database}\nlog:\n  file: {dst / 'log.txt'}\n")


def make(database: str) -> None:
    """Run the installed adw-patternd (the old release) over the tree, before and after the retry."""
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp)
        lay_out(dst)
        cfg = dst / "config.yaml"
        cfg.write_text(config_text(dst, os.path.abspath(database)))
        run = [sys.executable, "-m", "adw_patternd", "sync", "--config", str(cfg)]
        subprocess.run(run, check=True)
        retry(dst)
        subprocess.run(run, check=True)


if __name__ == "__main__":
    make(sys.argv[1])
