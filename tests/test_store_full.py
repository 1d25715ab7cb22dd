"""A database that cannot take a write (issue 17): a full disk, SQLite's max_page_count, a
read-only PostgreSQL. One ERROR line naming the database and the cause, no traceback; the
batch rolled back whole; `sync` exits 1 saying how many were read but not stored; the daemon
waits, says so in its STATUS, and catches up by itself when it can write again.

Without root, SQLite's PRAGMA max_page_count fills the database; as root, a real tmpfs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adw_patternd.synth import trees as synth
from adw_patternd.cli import main
from adw_patternd.config import load_config
from adw_patternd.live.logs import setup_logging
from adw_patternd.live.daemon import Daemon
from adw_patternd.store import db as db_module
from adw_patternd.store import open_ledger
from helpers import query, wait_for, write_config

WORKFLOWS = 96


@pytest.fixture
def tree(tmp_path) -> Path:
    """96 workflows in the five real layouts, as the issue's report had."""
    root = tmp_path / "agents"
    synth.make_real_tree(str(root), WORKFLOWS, seed=17)
    return root


def stored(database: str) -> int:
    if not database.startswith("postgresql://") and not os.path.exists(database):
        return 0
    return query(database, "SELECT COUNT(*) FROM workflow_history WHERE revision > 0")[0][0]


def pages(database: str) -> int:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()


def a_quarter_of_the_pages(tmp_path: Path, root: Path) -> int:
    """A max_page_count that fills after about a quarter of the tree: measured on a scratch
    database, from the schema's pages and the whole tree's."""
    folder = tmp_path / "measure"
    folder.mkdir()
    cfg = write_config(folder, {"main": root}, str(folder / "m.db"))
    with open_ledger(load_config(cfg)):
        pass
    empty = pages(str(folder / "m.db"))
    assert main(["sync", "--config", str(cfg)]) == 0
    return empty + (pages(str(folder / "m.db")) - empty) // 4


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line]


@pytest.fixture
def page_limit(monkeypatch):
    """SQLite connections opened by adw-patternd get PRAGMA max_page_count = limit["pages"]."""
    limit: dict = {"pages": None}
    real = db_module._sqlite_connect

    def connect(path):
        conn = real(path)
        if limit["pages"] is not None:
            conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        return conn

    monkeypatch.setattr(db_module, "_sqlite_connect", connect)
    return limit


def test_sync_into_a_database_that_fills_up(tmp_path, tree, page_limit, capsys):
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": tree}, database, sync_batch_size=8)
    with open_ledger(load_config(cfg)):
        pass  # the schema, before the limit
    page_limit["pages"] = a_quarter_of_the_pages(tmp_path, tree)
    capsys.readouterr()
    assert main(["sync", "--config", str(cfg)]) == 1
    out, err = capsys.readouterr()
    kept = stored(database)
    assert 0 < kept < WORKFLOWS
    assert f"{WORKFLOWS - kept} read but not stored" in out, out
    assert f"sync: {WORKFLOWS - kept} workflow(s) read but not stored: " in err and "SQLITE_FULL" in err, err
    assert "could not be read" not in err  # they were read: the database could not take them
    log = (tmp_path / "daemon.log").read_text()
    errors = error_lines(log)
    assert len(errors) == 1 and database in errors[0] and "SQLITE_FULL" in errors[0], log
    assert "Traceback" not in log + err
    # Nothing half-written: what is stored adds up.
    assert main(["verify", "--config", str(cfg)]) == 0
    page_limit["pages"] = None  # space came back
    assert main(["sync", "--config", str(cfg)]) == 0
    assert stored(database) == WORKFLOWS
    assert main(["verify", "--files", "--config", str(cfg)]) == 0


def test_a_running_daemon_waits_for_the_database_and_catches_up(tmp_path, tree):
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": tree}, database, sync_batch_size=8, debounce_ms=100,
                       watch={"sweep_interval_s": 0.5})
    config = load_config(cfg)
    limit = a_quarter_of_the_pages(tmp_path, tree)
    setup_logging(config.log)
    with open_ledger(config) as ledger:
        ledger.db.conn.execute(f"PRAGMA max_page_count = {limit}")
        daemon = Daemon(config, ledger)
        runner = threading.Thread(target=daemon.run, name="daemon")
        runner.start()
        try:
            wait_for(lambda: "catch-up:" in (tmp_path / "daemon.log").read_text(), what="catch-up")
            assert 0 < stored(database) < WORKFLOWS
            assert daemon._status_text().startswith("waiting for the database (the disk (or the database's "
                                                    "max_page_count) is full (SQLITE_FULL)")
            # Still waiting after a few retries, and still running.
            retry_at = daemon.backlog.retry_at
            wait_for(lambda: daemon.backlog.retry_at > retry_at, what="a retry, refused again")
            assert runner.is_alive() and stored(database) < WORKFLOWS
            ledger.db.conn.execute("PRAGMA max_page_count = 1073741823")  # space came back
            wait_for(lambda: stored(database) == WORKFLOWS, timeout=90, what="the rest stored without a restart")
            wait_for(lambda: not daemon._status_text().startswith("waiting"), what="STATUS no longer waiting")
        finally:
            daemon.signals.stop = True
            daemon.signals.wake()
            runner.join(timeout=20)
    assert not runner.is_alive()
    log = (tmp_path / "daemon.log").read_text()
    errors = error_lines(log)
    assert len(errors) == 1 and database in errors[0], log
    assert "Traceback" not in log
    assert "takes writes again" in log
    assert main(["verify", "--files", "--config", str(cfg)]) == 0


def test_sync_onto_a_full_tmpfs(tmp_path, tree):
    """As root: the database on a real 400 KB file system."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the max_page_count tests cover this without it)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine allows no tmpfs mount: {mounted.stderr.strip()}")
    try:
        database = str(disk / "p.db")
        cfg = write_config(tmp_path, {"main": tree}, database, sync_batch_size=8)
        command = [sys.executable, "-m", "adw_patternd", "sync", "--config", str(cfg)]
        r = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r.stdout + r.stderr
        kept = stored(database)
        assert kept < WORKFLOWS and f"{WORKFLOWS - kept} read but not stored" in r.stdout, r.stdout
        assert "read but not stored: " in r.stderr and "full" in r.stderr, r.stderr
        log = (tmp_path / "daemon.log").read_text()
        assert len(error_lines(log)) == 1 and "Traceback" not in log + r.stderr, log
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        r = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert stored(database) == WORKFLOWS
        r = subprocess.run([*command[:3], "verify", "--files", "--config", str(cfg)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        for _ in range(50):  # a child that just exited may hold the mount a moment longer
            if subprocess.run(["umount", str(disk)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


def test_sync_into_a_read_only_postgresql(tmp_path, tree, pg_url, capsys):
    """A server that takes only read-only transactions (a standby, default_transaction_read_only)."""
    cfg = write_config(tmp_path, {"main": tree}, pg_url)
    with open_ledger(load_config(cfg)):
        pass  # the schema
    (tmp_path / "ro").mkdir()
    read_only = write_config(tmp_path / "ro", {"main": tree}, pg_url + "%20-cdefault_transaction_read_only%3Don")
    assert main(["sync", "--config", str(read_only)]) == 1
    out, err = capsys.readouterr()
    assert f"{WORKFLOWS} read but not stored" in out and "read-only transactions (25006" in err, out + err
    log = (tmp_path / "ro" / "daemon.log").read_text()
    assert len(error_lines(log)) == 1 and "Traceback" not in log, log
    assert stored(pg_url) == 0
    assert main(["sync", "--config", str(cfg)]) == 0
    assert stored(pg_url) == WORKFLOWS
    assert main(["verify", "--files", "--config", str(cfg)]) == 0

