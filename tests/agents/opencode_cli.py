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

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .install import bin_path

# USD per million tokens, as the config gives them: OpenCode's own cost field uses them.
PRICE = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}


def opencode_bin(version: str) -> Path:
    return bin_path("opencode", version)


def missing_reason(version: str) -> str | None:
    path = opencode_bin(version)
    if not path.exists():
        return (f"OpenCode {version} is not installed at {path}: "
                f"run `python tests/agents/install.py opencode` (or set ADW_PATTERND_AGENTS)")
    return None


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


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

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
        self.repo.mkdir(parents=True, exist_ok=True)
        (self.repo / "opencode.json").write_text(json.dumps(config(server_url), indent=2))
        for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
            subprocess.run(argv, cwd=self.repo, check=True, env=self.env(), capture_output=True)

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")}
        home = self.home
        return {
            **keep, "HOME": str(home), "USER": "tester", "TERM": "dumb", "SHELL": "/bin/bash", "NO_COLOR": "1",
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".local" / "state"),
            "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_SHARE": "1",
            "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
            "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Scripted", "GIT_AUTHOR_EMAIL": "scripted@example.invalid",
            "GIT_COMMITTER_NAME": "Scripted", "GIT_COMMITTER_EMAIL": "scripted@example.invalid",
        }

    def start(self, prompt: str, session: str | None = None) -> subprocess.Popen:
        argv = [str(self.bin), "run", "--format", "json"]
        if session:
            argv += ["--session", session]
        return subprocess.Popen([*argv, prompt], cwd=self.repo, env=self.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def run(self, prompt: str, session: str | None = None, timeout: float = 120) -> Run:
        proc = self.start(prompt, session)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(f"opencode {self.version} ran over {timeout}s\n{out[-2000:]}\n{err[-2000:]}")
        return Run(proc.returncode, out, err)

    def databases(self) -> list[Path]:
        return sorted(self.data.glob("opencode*.db"))
