"""Drive the real Qwen Code CLI against the scripted model server, offline.

``Qwen(version, root, server_url)`` makes a scratch ``HOME`` (the CLI's home is
``HOME/.qwen``, with the settings that turn off usage statistics, telemetry and update
checks) and a scratch git repository, and runs ``qwen -p`` in it with the OpenAI auth type
(``OPENAI_BASE_URL``: the model server, Chat Completions):

    qwen = Qwen("0.24.4", tmp_path, server.url)
    sid = qwen.run("check the repo")             # a new session; its id
    qwen.run("again", resume=sid)                # qwen --resume <id> -p ...
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import cli_base
from .cli_base import scratch_env
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

    def run(self, prompt: str, resume: str | None = None, timeout: float = 240) -> str:
        """One `qwen -p` run to its end; the session id (from its JSON output)."""
        argv = [str(self.bin), *(["--resume", resume] if resume else []), "-p", prompt, "--yolo",
                "--auth-type", "openai", "-o", "json"]
        done = subprocess.run(argv, cwd=self.repo, env=self.env(), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"qwen {self.version} failed ({done.returncode}):\n"
                                 f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        sids = {m.get("session_id") for m in _messages(done.stdout) if isinstance(m, dict)} - {None}
        assert len(sids) == 1, (sids, done.stdout[-500:])
        return sids.pop()


def _messages(stdout: str) -> list:
    text = stdout.strip()
    try:
        got = json.loads(text)
    except ValueError:
        got = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return got if isinstance(got, list) else [got]
