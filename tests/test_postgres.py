"""Fleets: several daemons on several hosts writing one PostgreSQL database.

These run against a real server when ADW_PATTERND_TEST_POSTGRES is set (as .ci/run does)."""

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from adw_patternd.cli import main
from adw_patternd.synth.trees import make_tree
from daemon_proc import DaemonProcess
from helpers import diff_dumps, normalised_dump, query, wait_for, write_config
from test_daemon import FAST, stored_cost
from test_sync import fresh_sync_dump, make_workflow


def test_four_hosts_syncing_at_once_share_patterns_exactly(tmp_path, pg_url):
    roots = {}
    for i in range(4):
        root = tmp_path / f"host{i}"
        make_tree(str(root), 2000, seed=100 + i, filler=(150, 600), agents=2)  # the same requests: shared patterns
        roots[f"host{i}"] = root
    configs = []
    for name, root in roots.items():
        folder = tmp_path / f"cfg-{name}"
        folder.mkdir()
        configs.append(write_config(folder, {name: root}, pg_url, sync_batch_size=64))
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "adw_patternd", "sync", "--config", str(c)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in configs]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    elapsed = time.monotonic() - started
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    print(f"\n4 concurrent syncs of 2,000 workflows each into PostgreSQL: {8000 / elapsed:.0f} workflows/s")
    assert query(pg_url, "SELECT COUNT(*) FROM workflow_history WHERE revision > 0")[0][0] == 8000
    assert main(["verify", "--config", str(configs[0])]) == 0
    # The shared totals equal one from-scratch sync of all four roots into SQLite.
    assert diff_dumps(normalised_dump(pg_url), fresh_sync_dump(tmp_path, roots)) == []


def test_concurrent_writers_on_the_same_workflow_never_double_count(tmp_path, pg_url):
    root = tmp_path / "agents"
    make_tree(str(root), 200, seed=9, filler=(150, 600), agents=2)
    cfg = write_config(tmp_path, {"same": root}, pg_url, sync_batch_size=16)
    # Four processes race over the same root: every workflow is applied by several of them.
    procs = [subprocess.Popen([sys.executable, "-m", "adw_patternd", "sync", "--config", str(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    assert main(["verify", "--config", str(cfg)]) == 0
    assert diff_dumps(normalised_dump(pg_url), fresh_sync_dump(tmp_path, {"same": root})) == []


def _restart_command():
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster") or not os.path.isdir("/etc/postgresql"):
        return None
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]


def test_server_restart_during_a_burst_loses_nothing(tmp_path, pg_url):
    restart = _restart_command()
    if restart is None:
        pytest.skip("restarting the PostgreSQL server needs root and pg_ctlcluster (a local Debian cluster)")
    root = tmp_path / "agents"
    root.mkdir()
    cfg = write_config(tmp_path, {"main": root}, pg_url, **FAST)
    d = DaemonProcess(cfg)
    try:
        wait_for(lambda: "catch-up:" in d.log(), what="catch-up")

        def burst():
            for i in range(150):
                make_workflow(root, f"r{i:07d}", cost=1.0)
                time.sleep(0.01)  # a steady stream of writes across the restart

        t = threading.Thread(target=burst)
        t.start()
        wait_for(lambda: stored_cost(pg_url, "r0000010") is not None, what="burst under way")
        subprocess.run(restart, check=True, capture_output=True, timeout=120)
        t.join()
        wait_for(lambda: query(pg_url, "SELECT COUNT(*) FROM workflow_history WHERE revision > 0")[0][0] == 150,
                 timeout=60, what="all 150 stored after the restart")
        assert d.alive()
        assert d.stop() == 0
    finally:
        if d.alive():
            d.kill()
    log = d.log()
    assert "connection lost" in log and "database available again" in log
    assert main(["verify", "--config", str(cfg)]) == 0


@pytest.mark.parametrize("url, shown", [
    ("postgresql://ci:s3cret@db.internal/patterns", "postgresql://ci:***@db.internal/patterns"),
    ("postgresql://ci@db.internal/patterns?sslmode=require&password=s3cret",
     "postgresql://ci@db.internal/patterns?sslmode=require&password=***"),
])
def test_a_database_url_is_shown_without_its_password(url, shown):
    """Logs, `status` and the shared HTML report name the database, never its password."""
    from adw_patternd.store.db import _redact

    assert _redact(url) == shown
