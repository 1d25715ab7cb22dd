"""Drive the real Gemini CLI against the scripted model server, offline.

``GeminiCli(version, base, server_url)`` makes a scratch HOME (its ``.gemini/settings.json``
turns off usage statistics, telemetry, updates and folder trust, and picks API-key auth)
and a scratch git repository, and runs ``gemini -p`` there:

    cli = GeminiCli("0.61.0", tmp_path, server.url)
    run = cli.run("check the repo")            # a new session, waits for the end
    cli.run("again", resume="latest")          # gemini --resume latest -p ...
    proc = cli.start("long"); cli.kill(proc)   # SIGKILL mid-run

The chats land under ``cli.gemini_home / "tmp" / <project slug> / "chats"``. Nothing leaves
127.0.0.1: the model is ours (``GOOGLE_GEMINI_BASE_URL``), usage statistics are off (with
them on, the CLI looks up play.googleapis.com), and any other connection goes to a closed
proxy port.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import cli_base
from .cli_base import CLOSED_PROXY, LOCAL_DIRECT, PLAIN_USER, git_repo, kill_group, scratch_env, start_group
from .install import bin_path

SETTINGS = {
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    "security": {"folderTrust": {"enabled": False}, "auth": {"selectedType": "gemini-api-key"}},
}


def gemini_bin(version: str) -> Path:
    return bin_path("gemini", version)


def missing_reason(version: str) -> str | None:
    return cli_base.missing_reason("gemini", version)


class Run(cli_base.Run):

    @property
    def result(self) -> dict:
        """The ``-o json`` document ({session_id, response, stats}), or {}."""
        text = self.stdout.strip()
        start = text.find("{")
        try:
            return json.loads(text[start:]) if start >= 0 else {}
        except ValueError:
            return {}


class GeminiCli:
    """One scratch Gemini CLI installation (HOME, repository) talking to one model server."""

    def __init__(self, version: str, base: Path, server_url: str, model: str | None = None):
        self.version = version
        self.bin = gemini_bin(version)
        self.model = model
        self.home = base / "home"
        self.gemini_home = self.home / ".gemini"
        self.repo = base / "repo"
        self.gemini_home.mkdir(parents=True, exist_ok=True)
        (self.gemini_home / "settings.json").write_text(json.dumps(SETTINGS, indent=2))
        self.server_url = server_url
        git_repo(self.repo, self.env(), {"README.md": "A scratch repository for a Gemini CLI run.\n"})

    def env(self) -> dict[str, str]:
        return scratch_env(self.home, {
            **PLAIN_USER, "NO_COLOR": "1",
            "GOOGLE_GEMINI_BASE_URL": self.server_url, "GEMINI_API_KEY": "scripted-key",
            "GEMINI_CLI_NO_RELAUNCH": "true",
            **self._proxy(), **LOCAL_DIRECT,
        })

    def _proxy(self) -> dict[str, str]:
        # Anything not for the model server goes to a closed port. Gemini CLI 0.24 sends the
        # model's requests through the proxy too (NO_PROXY ignored), so it runs without one:
        # with usage statistics off it made no other connection.
        if not self.version_at_least(0, 40):
            return {}
        return CLOSED_PROXY

    def _argv(self, prompt: str, resume: str | None) -> list[str]:
        argv = [str(self.bin), "-p", prompt, "--yolo", "-o", "json"]
        if self.version_at_least(0, 40):
            argv.append("--skip-trust")
        if self.model:
            argv += ["-m", self.model]
        if resume:
            argv += ["--resume", resume]
        return argv

    def version_at_least(self, major: int, minor: int) -> bool:
        return tuple(int(p) for p in self.version.split(".")[:2]) >= (major, minor)

    def start(self, prompt: str, resume: str | None = None) -> subprocess.Popen:
        # A session of its own, so a SIGKILL reaches the CLI's children (its shell commands) too.
        return start_group(self._argv(prompt, resume), self.repo, self.env())

    @staticmethod
    def kill(proc: subprocess.Popen) -> Run:
        kill_group(proc)
        out, err = proc.communicate(timeout=10)
        return Run(proc.returncode, out, err)

    def run(self, prompt: str, resume: str | None = None, timeout: float = 90) -> Run:
        proc = self.start(prompt, resume)
        out, err = cli_base.finish(proc, timeout, f"gemini {self.version}")
        return Run(proc.returncode, out, err)

    def chats(self) -> list[Path]:
        """The chat files the CLI wrote (.jsonl, and the legacy .json), by name."""
        tmp = self.gemini_home / "tmp"
        return sorted([*tmp.glob("*/chats/*.jsonl"), *tmp.glob("*/chats/*.json")], key=lambda p: p.name)
