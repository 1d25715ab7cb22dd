"""ccusage 20 (npm `ccusage@20.0.24` with `@ccusage/ccusage-linux-x64@20.0.24`), the cost
reporter Codex users know, run beside us on the synthetic Codex home.

How ccusage 20 reports Codex sessions offline: `ccusage codex session --json --offline
--speed standard`, with CODEX_HOME pointing at the home (HOME too, so that nothing of the
machine's own ~/.codex is read; `--speed standard` so that it does not look for the
service tier in the home's config.toml). Each row is one rollout file, named by its path
relative to sessions/ or archived_sessions/ (`sessionFile` ends with the session id).
Its token fields differ from ours in one documented way: its `inputTokens` are the
non-cached input (Codex's input_tokens less cached_input_tokens), where ours include the
cached ones, as Codex writes them; `cacheReadTokens` are the cached ones. So ours equal
its inputTokens + cacheReadTokens, its cacheReadTokens, outputTokens (reasoning inside),
reasoningOutputTokens and totalTokens (input + output).

Where ccusage 20.0.24 differs by its rules, and why:
- It reads only `*.jsonl`: every compressed rollout (`.jsonl.zst`, in sessions/ or
  archived_sessions/) is invisible to it. The test names them.
- A session that repeats another session's usage events verbatim (same timestamps, same
  model, same tokens; the synthetic home's "duplicate", not a fork) is counted by ccusage in
  both files: 20.0.24 does not apply the cross-file (timestamp, model, tokens) key that
  later ccusage sources and section 9 of codex-sessions.md use, so for that session its
  tokens are exactly ours plus all the usage the repeated session counted. We count each
  such event once, in the session read first. (Checked apart: two rollouts holding one
  identical token_count event each are 105 tokens each in its report, 210 in all.)
Dollars agree too (to a float's rounding) on every session whose models both price; the
one model section 9 leaves unpriced (gpt-5.6-luna: $0 and a note here) has a price in
ccusage's offline table. Forks, the sub-agent and the fork whose parent is absent agree exactly: ccusage 20 skips
their copied usage as we do. Re-emitted token_count events (an unchanged total) are
skipped by both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from adw_patternd.core.pricing import DEFAULT_PRICES
from adw_patternd.sources.codex import read_home
from adw_patternd.synth.codex import make_codex_home

FIELDS = ("input", "cached", "output", "reasoning", "total")


def ccusage20() -> str:
    found = os.environ.get("ADW_PATTERND_CCUSAGE20")
    if not found or not shutil.which(found):
        pytest.skip("needs ccusage 20 from npm: npm install --prefix .ci/node20 ccusage@20.0.24 "
                    "@ccusage/ccusage-linux-x64@20.0.24, then ADW_PATTERND_CCUSAGE20=.ci/node20/node_modules/.bin/"
                    "ccusage (.ci/run does both)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=120).stdout.strip()
    assert version.split()[-1].startswith("20."), f"ccusage {version!r}: these comparisons are for version 20"
    return found


def run_ccusage(home: str) -> dict[str, list[int]]:
    """ccusage's tokens by session id, in our fields (input with the cached ones in it)."""
    env = {**os.environ, "CODEX_HOME": home, "HOME": home, "NO_COLOR": "1", "TZ": "UTC"}
    done = subprocess.run([ccusage20(), "codex", "session", "--json", "--offline", "--speed", "standard"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    out: dict[str, list[int]] = {}
    for row in json.loads(done.stdout)["sessions"]:
        sid = row["sessionFile"][-36:]
        assert sid not in out, f"ccusage shows session {sid} twice"
        out[sid] = [row["inputTokens"] + row["cacheReadTokens"], row["cacheReadTokens"], row["outputTokens"],
                    row["reasoningOutputTokens"], row["totalTokens"], row["costUSD"]]
    return out


def ours(state) -> list[int]:
    m = state.models.values()
    return [sum(x.input for x in m), sum(x.cached for x in m), sum(x.output for x in m),
            sum(x.reasoning for x in m), state.tokens]


def test_ccusage_20_agrees_on_every_plain_rollout(tmp_path, record_property):
    theirs_cmd = ccusage20()  # skip before writing anything
    assert theirs_cmd
    plan = make_codex_home(str(tmp_path))
    read = read_home(str(tmp_path), DEFAULT_PRICES, [])
    theirs = run_ccusage(str(tmp_path))

    plain = {sid for sid, p in plan.sessions.items() if not p.compressed}
    compressed = {sid for sid, p in plan.sessions.items() if p.compressed}
    assert len(plain) >= 50 and len(compressed) >= 4
    for sid in sorted(plain):
        p = plan.sessions[sid]
        expected = ours(read.states[sid])
        if p.repeats:  # counted by ccusage in both files (see the docstring)
            expected = [a + b for a, b in zip(expected, ours(read.states[p.repeats]))]
        got = theirs.get(sid)
        assert got is not None and got[:5] == expected, (p.kind, p.path, dict(zip(FIELDS, expected)))
        # Dollars too, where we have a price for every model (its offline table prices
        # gpt-5.6-luna, which section 9 leaves unpriced: $0 and a note here).
        nanos = read.states[sid].nanos + (read.states[p.repeats].nanos if p.repeats else 0)
        if "gpt-5.6-luna" not in read.states[sid].models:
            assert abs(got[5] - nanos / 1e9) < 1e-6, (p.kind, p.path, got[5], nanos)

    unseen = sorted(os.path.relpath(plan.sessions[sid].path, tmp_path) for sid in set(plan.sessions) - set(theirs))
    record_property("sessions ccusage 20 cannot see", ", ".join(unseen))
    assert set(plan.sessions) - set(theirs) == compressed, unseen
    assert all(name.endswith(".jsonl.zst") for name in unseen)
    # and we read them: tokens for every compressed session
    assert all(read.states[sid].tokens > 0 for sid in compressed)
    assert set(theirs) <= set(plan.sessions)
