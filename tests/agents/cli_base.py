"""What every agent CLI driver does the same way: find the installed binary (or say why it
is missing), give the CLI a scratch environment (HOME, git identity, no network), make the
scratch git repository it works in, and run it in a process group of its own so a SIGKILL
takes its tools too. The agent-specific parts (settings, flags, outputs) stay in each driver.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .install import bin_path

# How the skip reasons name each agent.
TITLES = {"claude": "Claude Code", "codex": "Codex CLI", "copilot": "GitHub Copilot CLI", "gemini": "Gemini CLI",
          "qwen": "Qwen Code", "opencode": "OpenCode"}

# Only these of the caller's variables reach a CLI: its config must come from the scratch HOME.
KEPT = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")

GIT_IDENTITY = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Scripted", "GIT_AUTHOR_EMAIL": "scripted@example.invalid",
    "GIT_COMMITTER_NAME": "Scripted", "GIT_COMMITTER_EMAIL": "scripted@example.invalid",
}

# No network: anything not for the model server (on 127.0.0.1) goes to a closed port.
CLOSED_PROXY = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
LOCAL_DIRECT = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
NO_NETWORK = {**CLOSED_PROXY, **LOCAL_DIRECT}

# A plain terminal-less user, for CLIs that look at who and where they run.
PLAIN_USER = {"USER": "tester", "TERM": "dumb", "SHELL": "/bin/bash"}


def installed(agent: str, version: str) -> Path | None:
    """The CLI of ``agent`` ``version``, if it is installed."""
    path = bin_path(agent, version)
    return path if path.exists() else None


def missing_reason(agent: str, version: str) -> str | None:
    """Why the CLI of ``agent`` ``version`` cannot run here, or None."""
    if installed(agent, version):
        return None
    return (f"{TITLES[agent]} {version} is not installed at {bin_path(agent, version)}: "
            f"run `python tests/agents/install.py {agent}` (or set ADW_PATTERND_AGENTS)")


def require(agent: str, version: str) -> str:
    """``version``, or skip the test saying how to install it."""
    reason = missing_reason(agent, version)
    if reason:
        pytest.skip(reason)
    return version


def scratch_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """The caller's locale and PATH, the scratch HOME, a git identity, and ``extra``."""
    keep = {k: v for k, v in os.environ.items() if k in KEPT}
    return {**keep, "HOME": str(home), **GIT_IDENTITY, **extra}


def git_repo(repo: Path, env: dict[str, str], files: dict[str, str], *, message: str | None = "init",
             init: tuple[str, ...] = ()) -> None:
    """A scratch git repository holding ``files``, committed with ``message`` (None: not committed)."""
    repo.mkdir(parents=True, exist_ok=True)
    git = lambda *args: subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)  # noqa: E731
    git("init", "-q", *init)
    for name, text in files.items():
        (repo / name).write_text(text)
    if message is not None:
        git("add", *files)
        git("commit", "-q", "-m", message)


def start_group(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """The CLI running in a session (process group) of its own, so ``kill_group`` takes its
    children (a node launcher's real CLI, its shell commands) too."""
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the run and every process it started, as a crash or an OOM kill would."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _processes() -> dict[int, tuple[int, bytes]]:
    """Each process: its parent and its command line (NUL-separated)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().rstrip(b"\0")
        except OSError:  # ended while we looked
            continue
        out[int(entry.name)] = (int(stat[stat.rindex(")") + 2:].split()[1]), cmdline)
    return out


def descendants(pid: int) -> dict[int, bytes]:
    """The processes ``pid`` started, and theirs (a pty-based shell of the CLI may sit in a
    session of its own, out of the CLI's process group), by their command lines."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in procs.items():
        children.setdefault(parent, []).append(child)
    found, todo = {}, list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        found[child] = procs[child][1]
        todo += children.get(child, ())
    return found


def runs_command(proc: subprocess.Popen, argv: tuple[str, ...]) -> bool:
    """Whether the CLI is in the middle of the shell command ``argv`` (such as ("sleep", "60")):
    a process it started runs it."""
    want = "\0".join(argv).encode()
    return want in descendants(proc.pid).values()


def killed(proc: subprocess.Popen) -> "Run":
    """SIGKILL the run's group and whatever else it started, as a crash or an OOM kill would;
    the run as it ended."""
    others = descendants(proc.pid)
    kill_group(proc)
    for pid in others:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    out, err = proc.communicate(timeout=10)
    return Run(proc.returncode, out, err)


def finish(proc: subprocess.Popen, timeout: float, what: str) -> tuple[str, str]:
    """The run's stdout and stderr once it ends; past ``timeout`` it is killed and the test fails."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(f"{what} ran over {timeout}s\n{out[-2000:]}\n{err[-2000:]}") from None


@dataclass
class Run:
    """One finished run of a CLI; each driver's subclass reads its output format."""
    returncode: int
    stdout: str
    stderr: str
