"""One Codex scenario's rig: the scripted model server, a scratch Codex (codex_cli.py), and
check.py's ``Watched``: a real `adw-patternd run` watching the Codex home while Codex runs.

    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "look around")   # the session id Codex printed
        rig.check({sid: "completed"})                   # check.py: oracle == daemon == fresh sync

The oracle is check.py's: what the model served, per session by the session id Codex sent
(``prompt_cache_key``), priced from the published prices.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from .check import Oracle, Watched, stored_status
from .codex_cli import Codex
from .script import Script
from .server import ModelServer

_SESSION = re.compile(r"session id: ([0-9a-f-]{36})")


def session_id(run: subprocess.CompletedProcess) -> str:
    found = _SESSION.findall(run.stdout + run.stderr)
    if not found:
        raise AssertionError(f"Codex printed no session id (exit {run.returncode}):\n{run.stdout[-2000:]}\n"
                             f"{run.stderr[-3000:]}")
    return found[-1]


class CodexRig:
    def __init__(self, version: str, tmp_path: Path, script: Script, **codex_config):
        self.tmp, self.version, self.script = tmp_path, version, script
        self.server = ModelServer(script)
        self.codex_config = codex_config
        self.watched: Watched | None = None

    def __enter__(self) -> "CodexRig":
        self.server.__enter__()
        try:  # a rig that fails to start stops its server: the failure is said once, not as a leaked thread too
            self.codex = Codex(self.version, self.tmp / "agent", self.server.url, **self.codex_config)
            (self.codex.home / "sessions").mkdir(exist_ok=True)
            self.watched = Watched(self.tmp, self.codex.home, kind="codex_homes").__enter__()
        except BaseException:
            self.server.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.watched:
            self.watched.__exit__(*exc)
        self.server.__exit__(*exc)

    def run(self, command, *args, **kwargs) -> str:
        """Run one Codex command to its end; the session id it printed."""
        done = command(*args, **kwargs)
        if done.returncode != 0:
            raise AssertionError(f"codex {self.version} exited {done.returncode}:\n{done.stdout[-2000:]}\n"
                                 f"{done.stderr[-3000:]}\nunrouted: {self.server.unrouted}")
        return session_id(done)

    def check(self, status: dict[str, str | tuple[str, ...]]) -> None:
        """What the model served so far == the daemon's database == a fresh sync's;
        verify --files clean; each session in ``status`` in that state."""
        assert not self.server.unrouted, f"Codex asked what the server does not answer: {self.server.unrouted}"
        oracle = Oracle.of(self.script.served)
        assert set(oracle.sessions) == set(status), (oracle.sessions, status)
        self.watched.check(oracle, status=status)

    def check_interrupted(self, sid: str) -> None:
        """A session whose file stopped without an end (Codex killed) is interrupted once
        it is older than stale_after_s: a fresh sync with stale_after_s of 1 s, once the file
        is that old, says so."""
        from helpers import wait_for

        files = [p for p in self.codex.rollouts() if sid in p.name]
        wait_for(lambda: all(time.time() - p.stat().st_mtime > 1.5 for p in files), timeout=10,
                 what="the killed session's file to be older than stale_after_s")
        state = stored_status(self.watched.fresh_sync(stale_after_s=1), self.watched.prefix).get(f"{sid}")
        assert state == "interrupted", f"codex/{sid}: a killed session's state {state!r}, expected 'interrupted'"
