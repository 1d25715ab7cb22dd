"""Drive the real Codex CLI against the scripted model server, offline.

``Codex(version, root, server_url)`` makes a scratch ``CODEX_HOME`` (a ``config.toml``
whose only provider is the model server, wire API ``responses``), a scratch ``HOME`` and
a scratch git repository, and runs ``codex exec`` in it:

    codex = Codex("0.169.0", tmp_path, server.url)
    codex.exec("run the tests")              # a new session, waits for the end
    codex.resume_last("again")               # codex exec resume --last
    codex.fork(session_id, "try another")    # codex exec fork (0.169; not in 0.77)
    proc = codex.start("long"); codex.kill(proc)  # SIGKILL mid-run

The rollouts land under ``codex.home / "sessions"``. Nothing leaves 127.0.0.1: the provider
is ours, update checks, analytics, feedback and web search are off, and there is no auth.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import cli_base
from .cli_base import git_repo, kill_group, scratch_env, start_group
from .install import bin_path

PROVIDER = "scripted"
KEY_ENV = "SCRIPTED_MODEL_KEY"
MODEL = "gpt-5-codex"  # a model core/pricing.py prices


def codex_bin(version: str) -> Path:
    return bin_path("codex", version)


def missing_reason(version: str) -> str | None:
    """Why the CLI of ``version`` cannot run here, or None."""
    return cli_base.missing_reason("codex", version)


def has_exec_fork(version: str) -> bool:
    """``codex exec fork`` came after 0.77 (0.77 forks only from the interactive TUI)."""
    return tuple(int(p) for p in version.split(".")[:2]) >= (0, 100)


def writes_task_complete(version: str) -> bool:
    """Whether the rollout of a finished ``codex exec`` says so (an ``event_msg`` of type
    ``task_complete``). Measured: 0.169 writes it; 0.77 persists no task event at all, so
    its finished run looks, in its file, like one still going."""
    return tuple(int(p) for p in version.split(".")[:2]) >= (0, 100)


def config_toml(base_url: str, *, context_window: int | None = None, auto_compact: int | None = None,
                retries: int = 2) -> str:
    lines = [
        f'model = "{MODEL}"',
        f'model_provider = "{PROVIDER}"',
        "check_for_update_on_startup = false",
        'web_search = "disabled"',
        "show_raw_agent_reasoning = false",
        'history.persistence = "none"',
    ]
    if context_window:
        lines.append(f"model_context_window = {context_window}")
    if auto_compact:
        lines.append(f"model_auto_compact_token_limit = {auto_compact}")
    lines += [
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[feedback]",
        "enabled = false",
        "",
        f"[model_providers.{PROVIDER}]",
        'name = "Scripted model"',
        f'base_url = "{base_url}"',
        'wire_api = "responses"',
        f'env_key = "{KEY_ENV}"',
        f"request_max_retries = {retries}",
        f"stream_max_retries = {retries}",
        "stream_idle_timeout_ms = 30000",
    ]
    return "\n".join(lines) + "\n"


class Codex:
    """One scratch Codex installation (home, HOME, repository) talking to one model server."""

    def __init__(self, version: str, root: Path, server_url: str, **config):
        self.version = version
        self.bin = codex_bin(version)
        self.home = root / "codex-home"
        self.user_home = root / "user-home"
        self.repo = root / "repo"
        for folder in (self.home, self.user_home):
            folder.mkdir(parents=True, exist_ok=True)
        (self.home / "config.toml").write_text(config_toml(server_url + "/v1", **config))
        git_repo(self.repo, self.env(), {"README.md": "A scratch repository for a Codex run.\n"}, message=None)

    def env(self) -> dict[str, str]:
        return scratch_env(self.user_home, {"CODEX_HOME": str(self.home), KEY_ENV: "scripted-key", "NO_COLOR": "1",
                                            "RUST_LOG": "error"})

    def _argv(self, *args: str) -> list[str]:
        return [str(self.bin), "exec", *args]

    def _common(self) -> list[str]:
        return ["--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]

    def start(self, prompt: str) -> subprocess.Popen:
        """A new session, running: the caller waits or kills it."""
        return self._popen(self._argv(*self._common(), prompt))

    def _popen(self, argv: list[str]) -> subprocess.Popen:
        # A session of its own: `codex` is a node launcher with the real (Rust) CLI as its
        # child, so a SIGKILL mid-run goes to the whole group (kill()).
        return start_group(argv, self.repo, self.env())

    @staticmethod
    def kill(proc: subprocess.Popen) -> subprocess.CompletedProcess:
        """SIGKILL the run and everything it started (its shell commands too)."""
        kill_group(proc)
        out, err = proc.communicate(timeout=10)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        proc = self._popen(argv)
        out, err = cli_base.finish(proc, timeout, f"codex {self.version} {argv[2:]}")
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def exec(self, prompt: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self._run(self._argv(*self._common(), prompt), timeout)

    # The exec flags go before the subcommand: 0.77's `exec resume` refuses them after it.
    def resume_last(self, prompt: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self._run(self._argv(*self._common(), "resume", "--last", prompt), timeout)

    def fork(self, session_id: str, prompt: str, timeout: float = 60) -> subprocess.CompletedProcess:
        if not has_exec_fork(self.version):
            raise AssertionError(f"Codex {self.version} has no `codex exec fork`")
        return self._run(self._argv(*self._common(), "fork", session_id, prompt), timeout)

    def rollouts(self) -> list[Path]:
        """The session files Codex wrote, oldest first."""
        return sorted((self.home / "sessions").rglob("rollout-*.jsonl"), key=lambda p: p.name)

    def responses_with_usage(self) -> int:
        """How many responses the rollouts hold tokens for: 0.169's ``token_usage_record``
        lines, or 0.77's distinct ``token_count`` totals. Codex may start a response's call
        before it writes that response's usage (docs/compatibility.md), so a test that
        kills a run in a call waits for this, not only for the call."""
        records, totals = 0, set()
        for rollout in self.rollouts():
            for line in rollout.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # the line being written
                payload = record.get("payload") or {}
                if record.get("type") == "token_usage_record":  # a line type of its own, like session_meta
                    records += 1
                elif payload.get("type") == "token_count" and payload.get("info"):
                    totals.add(json.dumps(payload["info"].get("total_token_usage"), sort_keys=True))
        return max(records, len(totals))
