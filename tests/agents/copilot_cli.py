"""Drive the real GitHub Copilot CLI against the scripted model server, offline.

``Copilot(version, root, server_url)`` makes a scratch ``HOME`` (the CLI's home is
``HOME/.copilot``) and a scratch git repository, and runs ``copilot -p`` in it with a user's
own provider (``COPILOT_PROVIDER_BASE_URL``: the model server, Chat Completions):

    copilot = Copilot("1.0.102", tmp_path, server.url)
    sid = copilot.run("check the repo")           # a new session; its id
    copilot.run("again", resume=sid)              # copilot --resume=<id> -p ...
    proc = copilot.start("long")                  # running; cli_base.killed(proc) kills it

Nothing leaves 127.0.0.1: ``COPILOT_OFFLINE`` stops the GitHub lookups, auto-update is off,
and the binary unpacks its JS package into the scratch folder (``COPILOT_PKG_CACHE_HOME``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from . import cli_base
from .cli_base import git_repo, scratch_env, start_group
from .install import bin_path

MODEL = "mock-model"
_RESUME = re.compile(r"--resume=([0-9a-f-]{36})")


def missing_reason(version: str) -> str | None:
    return cli_base.missing_reason("copilot", version)


def scratch_repo(repo: Path, env: dict[str, str]) -> None:
    """A git repository with one commit, for the scripted commands to look at."""
    git_repo(repo, env, {"README.md": "A scratch repository for an agent run.\n"})


class Copilot:
    """One scratch Copilot installation (HOME, repository) talking to one model server."""

    def __init__(self, version: str, root: Path, server_url: str):
        self.version = version
        self.bin = bin_path("copilot", version)
        self.user_home = root / "user-home"
        self.home = self.user_home / ".copilot"
        self.repo = root / "repo"
        self.pkg = root / "pkg-cache"
        self.server_url = server_url
        self.user_home.mkdir(parents=True, exist_ok=True)
        scratch_repo(self.repo, self.env())

    def env(self) -> dict[str, str]:
        return scratch_env(self.user_home, {
            "NO_COLOR": "1", "COPILOT_OFFLINE": "true", "COPILOT_AUTO_UPDATE": "false",
            "COPILOT_PKG_CACHE_HOME": str(self.pkg), "COPILOT_PROVIDER_BASE_URL": self.server_url + "/v1",
            "COPILOT_PROVIDER_API_KEY": "sk-scripted", "COPILOT_MODEL": MODEL})

    def start(self, prompt: str, resume: str | None = None) -> subprocess.Popen:
        """`copilot -p` started in a process group of its own (cli_base.start_group)."""
        argv = [str(self.bin), *([f"--resume={resume}"] if resume else []), "-p", prompt,
                "--allow-all-tools", "--no-auto-update"]
        return start_group(argv, self.repo, self.env())

    def run(self, prompt: str, resume: str | None = None, timeout: float = 240) -> str:
        """One `copilot -p` run to its end; the session id it printed."""
        proc = self.start(prompt, resume)
        out, err = cli_base.finish(proc, timeout, f"copilot {self.version}")
        if proc.returncode != 0:
            raise AssertionError(f"copilot {self.version} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
        found = _RESUME.findall(out + err)
        if found:
            return found[-1]
        return resume or self.only_session()

    def only_session(self) -> str:
        sessions = [p.name for p in (self.home / "session-state").iterdir() if not p.name.startswith(".")]
        assert len(sessions) == 1, sessions
        return sessions[0]
