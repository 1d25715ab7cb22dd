"""One Codex scenario's rig: the scripted model server, a scratch Codex, and a real
`adw-patternd run` watching the Codex home while the agent runs.

    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "look around")      # the session id Codex printed
        rig.oracle.add(sid, rig.served_by_last_run)
        rig.check()      # daemon caught up == oracle == a fresh sync; verify --files clean

``check`` lists every difference before failing, so a run shows all that differs at once.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from adw_patternd.cli import main

from .codex_cli import Codex
from .codex_oracle import Oracle
from .script import Script, Served
from .server import ModelServer

HOME_NAME = "cx"
_SESSION = re.compile(r"session id: ([0-9a-f-]{36})")


def session_id(run: subprocess.CompletedProcess) -> str:
    found = _SESSION.findall(run.stdout + run.stderr)
    if not found:
        raise AssertionError(f"Codex printed no session id (exit {run.returncode}):\n{run.stdout[-2000:]}\n"
                             f"{run.stderr[-3000:]}")
    return found[-1]


def write_config(folder: Path, home: Path, database: str, **extra) -> Path:
    doc = {
        "codex_homes": [{"path": str(home), "name": HOME_NAME}],
        "database": database,
        "log": {"file": str(folder / "daemon.log"), "level": "INFO"},
        "debounce_ms": 100,
        "reconcile_interval_s": 0,
        "watch": {"sweep_interval_s": 0.5},
        **extra,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class CodexRig:
    def __init__(self, version: str, tmp_path: Path, script: Script, **codex_config):
        self.tmp = tmp_path
        self.script = script
        self.oracle = Oracle()
        self.server = ModelServer(script)
        self.codex_config = codex_config
        self.version = version
        self.served_by_last_run: list[Served] = []
        self.daemon = None

    def __enter__(self) -> "CodexRig":
        from daemon_proc import DaemonProcess
        from helpers import wait_for

        self.server.__enter__()
        self.codex = Codex(self.version, self.tmp / "agent", self.server.url, **self.codex_config)
        (self.codex.home / "sessions").mkdir(exist_ok=True)
        live = self.tmp / "live"
        live.mkdir()
        self.database = str(live / "patterns.db")
        self.config = write_config(live, self.codex.home, self.database)
        self.daemon = DaemonProcess(self.config)
        wait_for(lambda: "catch-up:" in self.daemon.log(), what="the daemon's catch-up")
        return self

    def __exit__(self, *exc) -> None:
        if self.daemon and self.daemon.alive():
            self.daemon.stop()
        self.server.__exit__(*exc)

    def run(self, command, *args, ok: bool = True, **kwargs) -> str:
        """Run one Codex command; returns the session id it printed, and keeps what the
        model served meanwhile in ``served_by_last_run``."""
        before = len(self.script.served)
        done = command(*args, **kwargs)
        self.served_by_last_run = list(self.script.served[before:])
        if ok and done.returncode != 0:
            raise AssertionError(f"codex {self.version} exited {done.returncode}:\n{done.stdout[-2000:]}\n"
                                 f"{done.stderr[-3000:]}\nunrouted: {self.server.unrouted}")
        return session_id(done)

    def add(self, sid: str, state: str = "completed"):
        """The last run's responses were session ``sid``'s, which is now in ``state``."""
        s = self.oracle.add(sid, self.served_by_last_run)
        self.oracle.state(sid, state)
        return s

    # -- checks ----------------------------------------------------------------------

    def check(self, **config) -> None:
        """The daemon (caught up) and a fresh sync each hold what the model served; the two
        databases are equal; verify --files is clean. Every difference is listed."""
        from helpers import diff_dumps, normalised_dump

        from .codex_db import differences, wait_equal

        assert not self.server.unrouted, f"Codex asked what the server does not answer: {self.server.unrouted}"
        fresh_dir = self.tmp / f"fresh-{len(list(self.tmp.glob('fresh-*')))}"
        fresh_dir.mkdir()
        fresh_db = str(fresh_dir / "patterns.db")
        fresh_cfg = write_config(fresh_dir, self.codex.home, fresh_db, **config)
        assert main(["sync", "--config", str(fresh_cfg)]) == 0
        wait_equal(lambda: normalised_dump(self.database), normalised_dump(fresh_db))
        problems = [f"daemon: {d}" for d in differences(self.database, self.oracle, HOME_NAME)]
        problems += [f"fresh sync: {d}" for d in differences(fresh_db, self.oracle, HOME_NAME)]
        problems += [f"daemon db vs fresh sync: {d}" for d in
                     diff_dumps(normalised_dump(self.database), normalised_dump(fresh_db))]
        verify = subprocess.run([sys.executable, "-m", "adw_patternd", "verify", "--files", "--config",
                                 str(self.config)], capture_output=True, text=True)
        if verify.returncode != 0:
            problems.append(f"verify --files: exit {verify.returncode}: {verify.stdout[-1500:]} {verify.stderr[-1500:]}")
        assert not problems, "\n".join(problems)

    def check_interrupted(self, sid: str) -> None:
        """A session whose file stopped without an end (the agent killed) is interrupted
        once it is older than stale_after_s: a fresh sync with stale_after_s of 1 s, once
        the file is that old, says so."""
        from helpers import wait_for

        from .codex_db import session_rows

        files = [p for p in self.codex.rollouts() if sid in p.name]
        wait_for(lambda: all(time.time() - p.stat().st_mtime > 1.5 for p in files), timeout=10,
                 what="the killed session's file to be older than stale_after_s")
        folder = self.tmp / f"stale-{sid[:8]}"
        folder.mkdir()
        database = str(folder / "patterns.db")
        assert main(["sync", "--config", str(write_config(folder, self.codex.home, database, stale_after_s=1))]) == 0
        state = session_rows(database, HOME_NAME)[f"{HOME_NAME}/{sid}"][2]
        assert state == "interrupted", f"{HOME_NAME}/{sid}: a killed session's state {state!r}, expected 'interrupted'"
