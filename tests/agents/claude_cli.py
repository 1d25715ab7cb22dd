"""Running the real Claude Code CLI against the scripted model server, offline.

``ClaudeCode(version, base, server_url)`` makes a scratch git repository and a scratch
HOME under ``base`` (so the session store is ``HOME/.claude/projects``), and runs
``claude -p`` there: ``run`` to the end, ``start`` + ``kill`` to cut a run short with
SIGKILL. Nothing needs root: tools are allowed with ``--allowedTools`` (the CLI refuses
``--dangerously-skip-permissions`` as root), and every file it writes is under ``base``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from . import cli_base
from .cli_base import NO_NETWORK, PLAIN_USER, git_repo, kill_group, start_group

# One model for every scenario and version: the pinned 2.1.x asks for a newer default than
# the price table knows, and the oracle prices what was served, so keep it one we both price.
MODEL = "claude-sonnet-4-5-20250929"


def claude_bin(version: str) -> Path:
    """The installed CLI, or skip the test saying how to install it."""
    return cli_base.installed("claude", cli_base.require("claude", version))


class Run(cli_base.Run):
    @property
    def result(self) -> dict | None:
        """The --output-format json result object, if the run printed one."""
        for line in reversed(self.stdout.strip().splitlines()):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("type") == "result":
                return doc
            if isinstance(doc, list):  # some versions print the whole message list
                found = [d for d in doc if isinstance(d, dict) and d.get("type") == "result"]
                if found:
                    return found[-1]
        return None

    @property
    def session_id(self) -> str | None:
        return (self.result or {}).get("session_id")


class ClaudeCode:
    def __init__(self, version: str, base: Path, server_url: str):
        self.version = version
        self.bin = claude_bin(version)
        self.home = base / "home"
        self.repo = base / "repo"
        self.projects = self.home / ".claude" / "projects"
        self.projects.mkdir(parents=True, exist_ok=True)
        self.repo.mkdir(parents=True, exist_ok=True)
        tmp = base / "tmp"  # Claude Code leaves a claude-*-cwd file a Bash call there: not in /tmp
        tmp.mkdir(exist_ok=True)
        self.env = {
            "TMPDIR": str(tmp),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), **PLAIN_USER,
            "LANG": "C.UTF-8",
            "ANTHROPIC_BASE_URL": server_url, "ANTHROPIC_API_KEY": "test",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1", "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
            **NO_NETWORK,
            "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "tester@example.com",
            "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "tester@example.com",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        git_repo(self.repo, self.env, {"README.md": "A scratch repository for an agent test.\n"}, message="first",
                 init=("-b", "main"))

    def argv(self, prompt: str, *extra: str) -> list[str]:
        return [str(self.bin), "-p", prompt, "--allowedTools", "Bash,Task", "--output-format", "json",
                "--model", MODEL, *extra]

    def run(self, prompt: str, *extra: str, timeout: float = 90, env: dict | None = None) -> Run:
        proc = self.start(prompt, *extra, env=env)
        out, err = cli_base.finish(proc, timeout, f"claude {self.version}")
        return Run(proc.returncode, out, err)

    def start(self, prompt: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
        """A run in a session (process group) of its own, so ``kill`` takes its tools too;
        ``env``: variables to add for this run (CLAUDE_CODE_MAX_RETRIES, ...)."""
        return start_group(self.argv(prompt, *extra), self.repo, {**self.env, **(env or {})})

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the run and every process it started, as a crash or an OOM kill would."""
        kill_group(proc)
        proc.wait()

    def session_files(self) -> list[Path]:
        return sorted(self.projects.rglob("*.jsonl"))
