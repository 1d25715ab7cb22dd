"""Format drift, measured: the agent scenarios on the newest agent CLIs npm has.

    python bench/agents.py [--agents claude,codex] [--versions latest|pinned|older|X.Y.Z]

Installs each agent's chosen version into bench/out/agents/, runs the scenario tests of
tests/agents/ (test_<agent>_*.py) on it alone (the same tests CI runs on the pinned and older versions), and
prints a table: agent, version, scenario, and "pass" or the first line of what differed
(the whole of it in bench/out/agents/<agent>-<version>.xml).
Exit code 0 when every scenario passed (skips are listed with their reason).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "agents"))

import install  # noqa: E402


def run_scenarios(agent: str, version: str, into: Path) -> list[tuple[str, str]]:
    """(scenario, outcome) for each scenario test of ``agent`` on ``version``."""
    env = dict(os.environ, ADW_PATTERND_AGENTS=str(into), ADW_PATTERND_AGENT_VERSIONS=f"{agent}={version}")
    # The whole report stays beside the installs: a failure's full message is in it.
    report = into / f"{agent}-{version}.xml"
    report.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                    *sorted(str(p) for p in (ROOT / "tests" / "agents").glob(f"test_{agent}_*.py"))], cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not report.exists():
        return [("(all)", "pytest wrote no report")]
    return [_outcome(case) for case in ET.parse(report).getroot().iter("testcase")]


def _outcome(case) -> tuple[str, str]:
    name = case.get("name", "?")
    for kind in ("failure", "error"):
        found = case.find(kind)
        if found is not None:
            first = (found.get("message") or found.text or kind).strip().splitlines()
            return name, f"FAIL: {first[0][:120] if first else kind}"
    skipped = case.find("skipped")
    if skipped is not None:
        return name, f"skip: {(skipped.get('message') or '').strip()[:120]}"
    return name, "pass"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", default=",".join(install.agent_names()))
    ap.add_argument("--versions", default="latest", help="latest, pinned, older or a version")
    ap.add_argument("--into", type=Path, default=ROOT / "bench" / "out" / "agents")
    args = ap.parse_args(argv)
    rows, ok = [], True
    for agent in args.agents.split(","):
        version = install.version_of(agent, args.versions)
        if not install.install(agent, version, args.into):
            rows.append((agent, version, "(install)", "FAIL: npm could not install it"))
            ok = False
            continue
        for scenario, outcome in run_scenarios(agent, version, args.into):
            rows.append((agent, version, scenario, outcome))
            ok = ok and not outcome.startswith("FAIL")
    widths = [max(len(r[i]) for r in rows + [("agent", "version", "scenario", "")]) for i in range(3)]
    print(f"{'agent':<{widths[0]}}  {'version':<{widths[1]}}  {'scenario':<{widths[2]}}  result")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
