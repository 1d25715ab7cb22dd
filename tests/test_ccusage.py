"""ccusage (npm), the cost reporter most Claude Code users know, reads the same session
store: run beside us on the same files, people's own sessions must agree with it.

ccusage 18 groups its `session` report by project folder (subagent files apart, as
"subagents" under <project>/<session id>). It keeps the first entry of a response where we
keep the last (output tokens grow over a response's entries), so our output tokens are at
least its; input and cache tokens are equal. It counts a side conversation's replay of its
parent's message again (its issue 913), which we drop: on a store with replays its input
exceeds ours by exactly the replayed entries' tokens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.synth.sessions import INTERACTIVE_PROJECT, make_joined_tree, project_folder
from helpers import query, write_config

KINDS = ("input", "cache_write", "cache_read", "output")
CCUSAGE_KEYS = ("inputTokens", "cacheCreationTokens", "cacheReadTokens", "outputTokens")


def ccusage_command() -> list[str]:
    found = os.environ.get("ADW_PATTERND_CCUSAGE") or shutil.which("ccusage")
    if not found:
        pytest.skip("needs ccusage 18 from npm (npm install -g ccusage@18, or ADW_PATTERND_CCUSAGE=path; "
                    ".ci/run installs it)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=120).stdout.strip()
    assert version.startswith("18."), f"ccusage {version!r}: these comparisons are for version 18"
    return [found]


def run_ccusage(config_dir: Path) -> dict[str, list[int]]:
    """ccusage's session report: tokens by project folder (subagents under their own key)."""
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(config_dir), "HOME": str(config_dir), "NO_COLOR": "1",
           "TZ": "UTC"}
    done = subprocess.run([*ccusage_command(), "session", "--json", "--offline"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for s in json.loads(done.stdout)["sessions"]:  # one row per folder; per session's subagents folder
        key = s["sessionId"] if s["sessionId"] != "subagents" else "subagents:" + s["projectPath"].split("/")[0]
        out[key] = [a + s[k] for a, k in zip(out[key], CCUSAGE_KEYS)]
    return dict(out)


def ours_by_folder(database: str) -> dict[str, list[int]]:
    """Our tokens of people's own sessions, by project folder, main files and subagent files
    apart: summed from each session file's stored fold (its closed messages' sums, and one
    usage per open response that is not a copy of one counted elsewhere)."""
    folder = project_folder(INTERACTIVE_PROJECT)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for workflow_id, name, state in query(database, "SELECT workflow_id, agent_name, state_json FROM agent_outputs"):
        if not workflow_id.startswith("claude/"):
            continue
        key = f"subagents:{folder}" if "/subagents/" in name else folder
        fold = json.loads(state)
        usages = [fold["closed"][:4]] + [m[1] for m in fold["messages"].values() if not m[7]]  # not duplicates
        for usage in usages:
            for i, v in enumerate(usage):
                out[key][i] += v
    return dict(out)


def replayed(store: Path) -> list[int]:
    """The tokens of entries that replay a message already seen in their file (isSidechain)."""
    total = [0, 0, 0, 0]
    for path in store.rglob("*.jsonl"):
        seen = set()
        for line in path.read_text().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("type") != "assistant":
                continue
            mid = e["message"]["id"]
            if e.get("isSidechain") and mid in seen and e["requestId"] not in seen:
                u = e["message"]["usage"]
                for i, k in enumerate(("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                                       "output_tokens")):
                    total[i] += u[k]
                seen.add(e["requestId"])
            seen.update((mid, e["requestId"]))
    return total


def synced(tmp_path: Path, replays: bool) -> tuple[Path, str]:
    config_dir = tmp_path / "claude"
    make_joined_tree(str(tmp_path / "agents"), str(config_dir / "projects"), 10, interactive=8, replays=replays)
    then = time.time() - 7200
    for p in config_dir.rglob("*.jsonl"):
        os.utime(p, (then, then))
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"adw": tmp_path / "agents"}, database,
                       claude_projects=[{"path": str(config_dir / "projects")}])
    assert main(["sync", "--config", str(cfg)]) == 0
    return config_dir, database


def test_people_s_sessions_agree_with_ccusage(tmp_path):
    command = ccusage_command()  # skip before writing anything when it is not there
    assert command
    config_dir, database = synced(tmp_path, replays=False)
    theirs, ours = run_ccusage(config_dir), ours_by_folder(database)
    assert set(ours) <= set(theirs) and ours
    for folder, (inp, cw, cr, out) in ours.items():
        t_inp, t_cw, t_cr, t_out = theirs[folder]
        assert (inp, cw, cr) == (t_inp, t_cw, t_cr), folder
        assert out >= t_out, folder
    # ... and the workflow rows hold those tokens: nothing added or lost between fold and row.
    stored = sum(n for (n,) in query(database, "SELECT total_tokens FROM workflow_history "
                                               "WHERE substr(workflow_id, 1, 7) = 'claude/'"))
    assert stored == sum(sum(v) for v in ours.values())


def test_ccusage_counts_sidechain_replays_that_we_drop(tmp_path):
    command = ccusage_command()
    assert command
    config_dir, database = synced(tmp_path, replays=True)
    theirs, ours = run_ccusage(config_dir), ours_by_folder(database)
    extra = replayed(config_dir / "projects" / project_folder(INTERACTIVE_PROJECT))
    assert extra[0] > 0, "the store must hold replays for this comparison"
    folder = project_folder(INTERACTIVE_PROJECT)
    assert theirs[folder][:3] == [a + b for a, b in zip(ours[folder][:3], extra[:3])]
