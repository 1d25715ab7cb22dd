"""The real Codex CLI, offline, against the scripted model (issue 31): each scenario on the
pinned and the older version. The oracle is what the model served (codex_oracle.py); the
daemon watched while Codex ran, and a fresh sync must agree with it and with the oracle."""

from __future__ import annotations

import pytest

from .codex_cli import missing_reason
from .codex_rig import CodexRig
from .install import AGENTS
from .script import Reply, Script, Usage

VERSIONS = [pytest.param(AGENTS["codex"][which], id=f"codex-{AGENTS['codex'][which]}")
            for which in ("pinned", "older")]


@pytest.fixture(params=VERSIONS)
def version(request):
    reason = missing_reason(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


def test_calls_one_after_another(version, tmp_path):
    script = Script([
        Reply(calls=("git status",), usage=Usage(input=1200, cache_read=800, output=60, reasoning=20)),
        Reply(calls=("git log --oneline",), usage=Usage(input=300, cache_read=2100, output=45)),
        Reply(calls=("git diff",), usage=Usage(input=250, cache_read=2500, output=35, reasoning=10)),
        Reply(text="Looked around.", usage=Usage(input=200, cache_read=2800, output=25)),
    ])
    with CodexRig(version, tmp_path, script) as rig:
        sid = rig.run(rig.codex.exec, "Look at the repository")
        rig.add(sid)
        assert rig.oracle.sessions[sid].responses == 4
        rig.check()
