"""Install the agent CLIs the agent tests drive, from npm, each version in a folder of its own.

    python tests/agents/install.py [--into DIR] [--versions pinned,older,legacy|latest] [AGENT ...]

Each goes to DIR/<agent>-<version>/ (default DIR: .ci/agents beside the checkout, or
$ADW_PATTERND_AGENTS); the tests look there and skip with the reason when a CLI is missing.
A version npm cannot install is reported and skipped; the exit code says whether all went in.
``legacy``: the version of an agent whose older versions kept their sessions in another form
(agents.json names it only for such an agent; the others have none to install).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENTS = json.loads((HERE / "agents.json").read_text())
ENV = "ADW_PATTERND_AGENTS"


def agents_dir() -> Path:
    return Path(os.environ.get(ENV) or HERE.parent.parent / ".ci" / "agents")


def agent_names() -> list[str]:
    return [name for name in AGENTS if not name.startswith("_")]


VERSIONS_ENV = "ADW_PATTERND_AGENT_VERSIONS"


def versions_under_test(agent: str) -> list[str]:
    """The versions of ``agent`` the scenarios run on: its pinned and older ones, or those
    ``$ADW_PATTERND_AGENT_VERSIONS`` names (``claude=2.1.332,codex=0.171.0``: the drift
    script's newest)."""
    chosen = os.environ.get(VERSIONS_ENV, "")
    named = [pair.split("=", 1)[1] for pair in chosen.split(",") if pair.startswith(f"{agent}=")]
    if chosen:
        return named
    return [AGENTS[agent]["pinned"], AGENTS[agent]["older"]]


NAMED = ("pinned", "older", "legacy")  # the versions agents.json names


def legacy_version(agent: str) -> str | None:
    """The version of ``agent`` that still writes its older form of sessions, if it has one."""
    return AGENTS[agent].get("legacy")


def version_of(agent: str, which: str) -> str | None:
    """``which``: pinned, older, legacy (None for an agent without one), latest, or a version itself."""
    spec = AGENTS[agent]
    if which in NAMED:
        return spec.get(which)
    if which == "latest":
        out = subprocess.run(["npm", "view", spec["package"], "version"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    return which


def bin_path(agent: str, version: str, into: Path | None = None) -> Path:
    return (into or agents_dir()) / f"{agent}-{version}" / "node_modules" / ".bin" / AGENTS[agent]["bin"]


def install(agent: str, version: str, into: Path) -> bool:
    target = bin_path(agent, version, into)
    if target.exists():
        return True
    prefix = target.parents[2]
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = ["npm", "install", "--silent", "--no-fund", "--no-audit", "--prefix", str(prefix),
           f"{AGENTS[agent]['package']}@{version}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not target.exists():
        print(f"install.py: {agent} {version} did not install: {done.stderr.strip()[-400:]}", file=sys.stderr)
        shutil.rmtree(prefix, ignore_errors=True)
        return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("agents", nargs="*", help="agents to install (default: all in agents.json)")
    ap.add_argument("--into", type=Path, default=None, help=f"folder (default: ${ENV} or .ci/agents)")
    ap.add_argument("--versions", default="pinned,older,legacy",
                    help="pinned, older, legacy, latest or versions, comma-separated")
    args = ap.parse_args(argv)
    into = args.into or agents_dir()
    ok = True
    for agent in args.agents or agent_names():
        for which in args.versions.split(","):
            version = version_of(agent, which)
            if version is None:
                continue  # no legacy version for this agent
            ok = install(agent, version, into) and ok
            print(f"{agent} {version}: {bin_path(agent, version, into)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
