"""Crash test: a writer updates workflows the way ADWs do while the daemon is killed with
SIGKILL at random moments and restarted. At the end the database must equal a fresh sync
of the same files into an empty database, table by table, and verify must be clean.

Sized down for CI; the full run:  ADW_PATTERND_CRASH_FULL=1 python -m pytest tests/test_crash.py -s
"""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from adw_patternd.cli import main
from daemon_proc import DaemonProcess
from helpers import diff_dumps, normalised_dump, wait_for, write_config
from test_sync import fresh_sync_dump

FULL = os.environ.get("ADW_PATTERND_CRASH_FULL") == "1"
WORKFLOWS = 3000 if FULL else 300
KILLS = 40 if FULL else 20
WRITE_SECONDS = 60 if FULL else 15


def test_kill_9_at_random_moments_loses_nothing_and_counts_nothing_twice(tmp_path):
    root = tmp_path / "agents"
    root.mkdir()
    database = str(tmp_path / "crash.db")
    cfg = write_config(tmp_path, {"main": root}, database, debounce_ms=50, reconcile_interval_s=0,
                       watch={"sweep_interval_s": 0.5})
    writer = subprocess.Popen([sys.executable, str(Path(__file__).parent / "crash_writer.py"), str(root),
                               str(WORKFLOWS), str(WRITE_SECONDS), "1234"], stdout=subprocess.PIPE, text=True)
    rng = random.Random(99)
    kills = 0
    try:
        while kills < KILLS or writer.poll() is None:
            d = DaemonProcess(cfg)
            time.sleep(rng.uniform(0.2, 1.2))  # a random moment: starting, catching up or watching
            d.kill()
            kills += 1
        written = writer.communicate(timeout=60)[0].strip()
    finally:
        if writer.poll() is None:
            writer.kill()
    log = (tmp_path / "daemon.log").read_text()
    commits_before_last_kill = log.count(" new: ") + log.count(" updated: ")
    want = fresh_sync_dump(tmp_path, {"main": root})
    d = DaemonProcess(cfg)
    lives = log.count("catch-up:")
    try:
        wait_for(lambda: d.log().count("catch-up:") > lives, timeout=60, what="the last start's catch-up")
        wait_for(lambda: not diff_dumps(normalised_dump(database), want), timeout=120,
                 what="the restarted daemon to equal a fresh sync")
        assert d.stop() == 0
    finally:
        if d.alive():
            d.kill()
    differences = diff_dumps(normalised_dump(database), want)
    assert main(["verify", "--config", str(cfg)]) == 0
    print(f"\ncrash test: kills survived {kills}, workflows {len(want['workflow_history'])} ({written}), "
          f"workflow commits by the killed daemons {commits_before_last_kill}, differences found {len(differences)}")
    assert commits_before_last_kill > WORKFLOWS  # the kills landed while it was working
    assert differences == []
    assert len(want["workflow_history"]) == WORKFLOWS
