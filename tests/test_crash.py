"""Crash test: a writer updates workflows the way ADWs do while the daemon is killed with
SIGKILL at random moments and restarted. At the end `verify --files` must find the database
equal to a recomputation from the files (plus the runs that retries overwrote, which only
the ledger can know), table by table, and `verify` must be clean.

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
from helpers import query, wait_for, write_config

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
    d = DaemonProcess(cfg)
    lives = log.count("catch-up:")
    try:
        wait_for(lambda: d.log().count("catch-up:") > lives, timeout=60, what="the last start's catch-up")
        # The files, plus the runs only the ledger knows (seen, then overwritten by a retry),
        # recomputed from scratch: the database must say exactly that.
        wait_for(lambda: main(["verify", "--files", "--config", str(cfg), "--rounds", "1"]) == 0, timeout=120,
                 interval=1.0, what="the restarted daemon to equal a recomputation from the files")
        assert d.stop() == 0
    finally:
        if d.alive():
            d.kill()
    assert main(["verify", "--files", "--config", str(cfg)]) == 0
    assert main(["verify", "--config", str(cfg)]) == 0
    stored = query(database, "SELECT COUNT(*), COALESCE(SUM(overwritten_runs), 0) FROM workflow_history "
                             "WHERE revision > 0")[0]
    print(f"\ncrash test: kills survived {kills}, workflows {stored[0]} ({written}), "
          f"workflow commits by the killed daemons {commits_before_last_kill}, "
          f"runs kept after a retry overwrote them {stored[1]}, differences found 0")
    assert commits_before_last_kill > WORKFLOWS  # the kills landed while it was working
    assert stored[0] == WORKFLOWS
