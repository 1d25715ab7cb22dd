"""Drive the real OpenCode CLI against the scripted model server (Chat Completions), offline.

``OpenCode(version, base, server_url)`` makes a scratch HOME with XDG folders of its own,
a scratch git repository with an ``opencode.json`` whose only provider is the model server
(``@ai-sdk/openai-compatible``, model ``mock/mock-model`` priced in the config), and runs
``opencode run`` there:

    oc = OpenCode("1.18.33", tmp_path, server.url)
    oc.run("check the repo")                   # a new session, waits for the end
    oc.run("again", session=sid)               # opencode run --session <id>

The database is ``oc.data / "opencode.db"`` (with its -wal and -shm). Nothing leaves
127.0.0.1: the catalog fetch, autoupdate, sharing and LSP downloads are off; the background
plugin install (registry.npmjs.org) goes to a closed proxy port and only logs a warning.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

from . import cli_base
from .cli_base import NO_NETWORK, PLAIN_USER, git_repo, scratch_env, start_group
from .install import bin_path

# USD per million tokens, as the config gives them: OpenCode's own cost field uses them.
PRICE = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}


def opencode_bin(version: str) -> Path:
    return bin_path("opencode", version)


def missing_reason(version: str) -> str | None:
    return cli_base.missing_reason("opencode", version)


def config(base_url: str) -> dict:
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {"mock": {"npm": "@ai-sdk/openai-compatible", "name": "Mock",
                              "options": {"baseURL": base_url + "/v1", "apiKey": "sk-mock"},
                              "models": {"mock-model": {"name": "Mock Model",
                                                        "limit": {"context": 200000, "output": 8192},
                                                        "cost": PRICE}}}},
        "model": "mock/mock-model", "small_model": "mock/mock-model", "autoupdate": False, "share": "disabled",
        "permission": {"bash": "allow", "edit": "allow"},
    }


class Run(cli_base.Run):
    @property
    def events(self) -> list[dict]:
        out = []
        for line in self.stdout.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    @property
    def session_id(self) -> str | None:
        return next((e.get("sessionID") for e in self.events if e.get("sessionID")), None)


class OpenCode:
    def __init__(self, version: str, base: Path, server_url: str):
        self.version = version
        self.bin = opencode_bin(version)
        self.home = base / "home"
        self.data = self.home / ".local" / "share" / "opencode"
        self.repo = base / "repo"
        self.home.mkdir(parents=True, exist_ok=True)
        git_repo(self.repo, self.env(), {"opencode.json": json.dumps(config(server_url), indent=2)})

    def env(self) -> dict[str, str]:
        home = self.home
        return scratch_env(home, {
            **PLAIN_USER, "NO_COLOR": "1",
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".local" / "state"),
            "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_SHARE": "1",
            "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", **NO_NETWORK,
        })

    def start(self, prompt: str, session: str | None = None) -> subprocess.Popen:
        argv = [str(self.bin), "run", "--format", "json"]
        if session:
            argv += ["--session", session]
        return start_group([*argv, prompt], self.repo, self.env())

    def run(self, prompt: str, session: str | None = None, timeout: float = 120) -> Run:
        proc = self.start(prompt, session)
        out, err = cli_base.finish(proc, timeout, f"opencode {self.version}")
        return Run(proc.returncode, out, err)

    def as_version(self, version: str) -> "OpenCode":
        """The same home and repository driven by another version (an upgrade, a downgrade)."""
        other = copy.copy(self)
        other.version, other.bin = version, opencode_bin(version)
        return other

    def storage(self) -> Path:
        """The JSON storage versions before the database wrote (1.1.65)."""
        return self.data / "storage"

    def databases(self) -> list[Path]:
        return sorted(self.data.glob("opencode*.db"))
