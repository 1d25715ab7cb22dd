"""The shipped unit file, checked by systemd's own tools where they exist."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parent.parent / "systemd" / "adw-patternd.service"
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")


def installed_unit(tmp_path) -> Path:
    """The unit with ExecStart pointing at this environment's adw-patternd (verify checks it exists)."""
    exe = Path(sys.executable).parent / "adw-patternd"
    assert exe.exists(), "install the package first (pip install -e .)"
    text = UNIT.read_text().replace("/opt/adw-patternd/bin/adw-patternd", str(exe))
    path = tmp_path / "adw-patternd.service"
    path.write_text(text)
    return path


def test_unit_passes_systemd_analyze_verify(tmp_path):
    r = subprocess.run([ANALYZE, "verify", str(installed_unit(tmp_path))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "adw-patternd.service" not in r.stderr, r.stderr  # no warnings about our unit


def test_unit_exposure_score_is_at_most_2(tmp_path):
    r = subprocess.run([ANALYZE, "security", "--offline=true", str(installed_unit(tmp_path))],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for adw-patternd\.service: ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0


def test_unit_is_a_notify_service_with_watchdog_and_restart():
    text = UNIT.read_text()
    for line in ("Type=notify", "Restart=on-failure", "WatchdogSec=", "StateDirectory=adw-patternd",
                 "LogsDirectory=adw-patternd", "User=adw-patternd", "ExecReload=/bin/sh -c 'kill -HUP \"$MAINPID\"'"):
        assert line in text


def test_the_codex_drop_in_grants_the_two_session_folders_not_the_home(tmp_path):
    """systemd/codex-home.conf: an empty file system over the home, its two session folders
    bound back read-only; with the unit, systemd-analyze verify finds nothing to say."""
    drop_in = (UNIT.parent / "codex-home.conf").read_text()
    settings = [line for line in drop_in.splitlines() if line and not line.startswith(("#", "["))]
    assert settings == ["TemporaryFileSystem=/home/dev/.codex:ro",
                        "BindReadOnlyPaths=/home/dev/.codex/sessions /home/dev/.codex/archived_sessions"]
    unit = installed_unit(tmp_path)
    folder = tmp_path / "adw-patternd.service.d"
    folder.mkdir()
    (folder / "codex-home.conf").write_text(drop_in)
    r = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "codex-home.conf" not in r.stderr and "adw-patternd.service" not in r.stderr, r.stderr


SERVE_UNIT = UNIT.with_name("adw-patternd-serve.service")


def test_the_live_page_unit_passes_verify_and_runs_serve_read_only(tmp_path):
    exe = Path(sys.executable).parent / "adw-patternd"
    text = SERVE_UNIT.read_text()
    assert "adw-patternd serve --config /etc/adw-patternd/config.yaml" in text
    assert "User=adw-patternd" in text and "ProtectSystem=strict" in text
    path = tmp_path / "adw-patternd-serve.service"
    path.write_text(text.replace("/opt/adw-patternd/bin/adw-patternd", str(exe)))
    r = subprocess.run([ANALYZE, "verify", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "adw-patternd-serve.service" not in r.stderr, r.stderr


# One drop-in a kind of agent home (issue 33): (file, what it must say besides comments).
AGENT_DROP_INS = {
    "copilot-home.conf": ["TemporaryFileSystem=/home/dev/.copilot:ro", "BindReadOnlyPaths=/home/dev/.copilot/session-state"],
    "gemini-home.conf": ["TemporaryFileSystem=/home/dev/.gemini:ro", "BindReadOnlyPaths=/home/dev/.gemini/tmp"],
    "qwen-home.conf": ["TemporaryFileSystem=/home/dev/.qwen:ro", "BindReadOnlyPaths=/home/dev/.qwen/projects"],
    "opencode-data.conf": ["BindReadOnlyPaths=/home/dev/.local/share/opencode",
                           "InaccessiblePaths=-/home/dev/.local/share/opencode/auth.json"],
}


@pytest.mark.parametrize("name", sorted(AGENT_DROP_INS))
def test_each_agent_drop_in_grants_its_session_folders_not_the_credentials(tmp_path, name):
    """Each agent's drop-in grants what its kind watches (sources/kinds.py) and hides its home's
    credentials; with the unit, systemd-analyze verify finds nothing to say."""
    drop_in = (UNIT.parent / name).read_text()
    settings = [line for line in drop_in.splitlines() if line and not line.startswith(("#", "["))]
    assert settings == AGENT_DROP_INS[name]
    unit = installed_unit(tmp_path)
    folder = tmp_path / "adw-patternd.service.d"
    folder.mkdir()
    (folder / name).write_text(drop_in)
    r = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert name not in r.stderr and "adw-patternd.service" not in r.stderr, r.stderr


def test_the_drop_ins_grant_what_each_kind_watches():
    """The folder each drop-in binds is the one its kind's reader watches under that home."""
    from adw_patternd.sources import kinds

    for k in kinds.KINDS:
        if k.reader is None:
            continue
        name = next(n for n in AGENT_DROP_INS if n.startswith(k.agent))
        granted = AGENT_DROP_INS[name][-1] if k.agent != "opencode" else AGENT_DROP_INS[name][0]
        home = granted.split("=", 1)[1].split(" ")[0]
        home = home if k.agent == "opencode" else home.rsplit("/", 1)[0]
        assert [f"BindReadOnlyPaths={f}" for f in k.watched_folders(home)][0] in AGENT_DROP_INS[name]
