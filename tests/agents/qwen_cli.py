"""Drive the real Qwen Code CLI against the scripted model server, offline.

``Qwen(version, root, server_url)`` makes a scratch ``HOME`` (the CLI's home is
``HOME/.qwen``, with the settings that turn off usage statistics, telemetry and update
checks) and a scratch git repository, and runs ``qwen -p`` in it with the OpenAI auth type
(``OPENAI_BASE_URL``: the model server, Chat Completions):

    qwen = Qwen("0.24.4", tmp_path, server.url)
    sid = qwen.run("check the repo")             # a new session; its id
    qwen.run("again", resume=sid)                # qwen --resume <id> -p ...
    qwen.run("fork", resume=sid, fork=True)      # a new session copying sid's (--fork-session)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import cli_base
from .cli_base import scratch_env, start_group
from .copilot_cli import scratch_repo
from .install import bin_path

MODEL = "mock-model"
SETTINGS = {"privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
            "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
            "security": {"auth": {"selectedType": "openai"}}}


def missing_reason(version: str) -> str | None:
    return cli_base.missing_reason("qwen", version)


class Qwen:
    """One scratch Qwen Code installation (HOME, repository) talking to one model server."""

    def __init__(self, version: str, root: Path, server_url: str):
        self.version = version
        self.bin = bin_path("qwen", version)
        self.user_home = root / "user-home"
        self.home = self.user_home / ".qwen"
        self.repo = root / "repo"
        self.server_url = server_url
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "settings.json").write_text(json.dumps(SETTINGS))
        scratch_repo(self.repo, self.env())

    def env(self) -> dict[str, str]:
        return scratch_env(self.user_home, {"NO_COLOR": "1", "OPENAI_BASE_URL": self.server_url + "/v1",
                                            "OPENAI_API_KEY": "sk-scripted", "OPENAI_MODEL": MODEL,
                                            "QWEN_CODE_SUPPRESS_YOLO_WARNING": "1"})

    def start(self, prompt: str, resume: str | None = None, *, fork: bool = False) -> subprocess.Popen:
        """`qwen -p` started in a process group of its own (cli_base.start_group); ``fork``:
        a new session that copies ``resume``'s (--fork-session)."""
        argv = [str(self.bin), *(["--resume", resume] if resume else []), *(["--fork-session"] if fork else []),
                "-p", prompt, "--yolo", "--auth-type", "openai", "-o", "json"]
        return start_group(argv, self.repo, self.env())

    def run(self, prompt: str, resume: str | None = None, timeout: float = 240, *, fork: bool = False) -> str:
        """One `qwen -p` run to its end; the session id (from its JSON output)."""
        proc = self.start(prompt, resume, fork=fork)
        out, err = cli_base.finish(proc, timeout, f"qwen {self.version}")
        if proc.returncode != 0:
            raise AssertionError(f"qwen {self.version} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
        sids = {m.get("session_id") for m in _messages(out) if isinstance(m, dict)} - {None}
        assert len(sids) == 1, (sids, out[-500:])
        return sids.pop()

    def sessions(self) -> list[str]:
        """The ids of the sessions the CLI wrote (its chat files' names)."""
        return sorted(p.stem for p in (self.home / "projects").glob("*/chats/*.jsonl"))


def _messages(stdout: str) -> list:
    text = stdout.strip()
    try:
        got = json.loads(text)
    except ValueError:
        got = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return got if isinstance(got, list) else [got]
