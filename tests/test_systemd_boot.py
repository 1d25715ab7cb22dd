"""The unit under a real, booted systemd: a minimal Debian 12 built with debootstrap, booted
with systemd-nspawn, adw-patternd installed into it from a wheel of this checkout and laid
out exactly as docs/service.md says, then driven from outside with
nsenter: start, STATUS, a workflow caught live, reload after logrotate, kill -9 and the
catch-up, a bad config, the watchdog, a clean stop.

Needs root, debootstrap and systemd-nspawn (.ci/run installs them). The Debian root is
built once from the archive in this machine's apt sources and cached under build/nspawn/
(about 2 minutes and 250 MB); each run boots a copy of it.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import wait_for

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build" / "nspawn"
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,logrotate"
UNIT = "adw-patternd.service"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="booting a container with systemd-nspawn needs root"),
    pytest.mark.skipif(not (shutil.which("systemd-nspawn") and shutil.which("debootstrap")),
                       reason="needs systemd-nspawn and debootstrap (apt-get install systemd-container debootstrap)"),
]


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        text = path.read_text() if path.is_file() else ""
        m = re.search(r"^URIs:\s*(\S*debian)/?\s*$", text, re.M) or re.search(r"^deb\s+(\S+/debian)/?\s+bookworm", text, re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def base_root() -> Path:
    """Debian 12 with systemd, dbus, python3-venv and logrotate: built once, then reused."""
    root = CACHE / "bookworm"
    if (root / "etc" / "os-release").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / "bookworm.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(tmp),
                    debian_mirror()], check=True, stdout=subprocess.DEVNULL)
    tmp.rename(root)
    return root


def nspawn_run(root: Path, script: str) -> None:
    """Run a shell script in the (not booted) container."""
    subprocess.run(["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", str(root), "--bind-ro",
                    f"{root.parent / 'wheels'}:/tmp/wheels", "/bin/sh", "-euc", script], check=True)


class Container:
    def __init__(self, root: Path, console: Path):
        self.root = root
        self.console = open(console, "w")
        self.proc = subprocess.Popen(["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "-D", str(root),
                                      f"--machine=adwtest{os.getpid()}", "--console=pipe"],
                                     stdout=self.console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.init = wait_for(self._init_pid, timeout=60, what="the container's init")

    def _init_pid(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.proc.returncode}")
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            children = (task / "children").read_text().split()
            if children:
                return int(children[0])
        return None

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        r = subprocess.run(["nsenter", "-t", str(self.init), "-m", "-u", "-i", "-n", "-p", "--", *cmd],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}: {r.stdout}{r.stderr}")
        return r

    def show(self, prop: str) -> str:
        return self.run("systemctl", "show", "-p", prop, "--value", UNIT).stdout.strip()

    def journal(self) -> str:
        return self.run("journalctl", "-u", UNIT, "--no-pager", "-o", "cat", check=False).stdout

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.run("systemctl", "poweroff", check=False)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        self.console.close()


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    work = tmp_path_factory.mktemp("nspawn")
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "-w", str(wheels), str(REPO)], check=True)
    root = work / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(base_root()), str(root)], check=True)
    (root / "etc" / "machine-id").write_text("")  # a fresh one at boot
    (root / "root" / "unit").mkdir(parents=True)  # not /tmp: nspawn mounts a tmpfs there
    shutil.copy(REPO / "systemd" / UNIT, root / "root" / "unit" / UNIT)
    shutil.copy(REPO / "systemd" / "adw-patternd.logrotate", root / "root" / "unit" / "adw-patternd.logrotate")
    # docs/service.md's steps 1 to 4, as written there (pip from the wheels of this checkout).
    nspawn_run(root, """
        python3 -m venv /opt/adw-patternd
        /opt/adw-patternd/bin/pip install --quiet --no-index --find-links /tmp/wheels adw-patternd
        useradd --system --no-create-home --shell /usr/sbin/nologin adw-patternd
        mkdir -p /srv/repo/agents  # the ADW root, as a host has it (made here: the test's own umask may be 027)
        chgrp -R adw-patternd /srv/repo/agents && chmod -R g+rX /srv/repo/agents
        mkdir -p /etc/adw-patternd
        cat > /etc/adw-patternd/config.yaml <<'EOF'
roots:
  - {path: /srv/repo/agents, name: repo}
database: /var/lib/adw-patternd/patterns.db
log: {file: /var/log/adw-patternd/adw-patternd.log, level: INFO}
debounce_ms: 200
EOF
        cp /root/unit/adw-patternd.service /etc/systemd/system/
        cp /root/unit/adw-patternd.logrotate /etc/logrotate.d/adw-patternd
    """)
    c = Container(root, work / "console.log")
    try:
        wait_for(lambda: c.run("systemctl", "is-system-running", check=False).stdout.strip()
                 in ("running", "degraded") or None, timeout=120, interval=0.5, what="the container to boot")
        r = c.run("sh", "-c", "systemctl daemon-reload && systemctl enable --now adw-patternd", check=False)
        assert r.returncode == 0, r.stdout + r.stderr + c.journal()[-3000:]
        yield c
    finally:
        c.stop()
    assert c.proc.returncode is not None  # nothing left running


def write_workflow(container: Container, adw_id: str, cost: float) -> None:
    folder = container.root / "srv" / "repo" / "agents" / adw_id
    (folder / "tester").mkdir(parents=True)
    (folder / "adw_state.json").write_text(json.dumps({"adw_id": adw_id, "nl_input": "Run backend tests with pytest",
                                                        "start_time": "2026-11-01T10:00:00Z"}))
    (folder / "tester" / "raw_output.jsonl").write_text(
        json.dumps({"type": "system", "subtype": "init", "session_id": f"s-{adw_id}", "model": "claude-sonnet-4-5"})
        + "\n" + json.dumps({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 1000,
                             "session_id": f"s-{adw_id}", "total_cost_usd": cost}) + "\n")
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)


def stored(container: Container) -> dict:
    r = container.run("/opt/adw-patternd/bin/adw-patternd", "patterns", "--json", "--config",
                      "/etc/adw-patternd/config.yaml", check=False)
    if r.returncode != 0:
        return {}
    return {p["pattern_signature"]: p["occurrence_count"] for p in json.loads(r.stdout)}


def test_the_service_starts_reports_and_catches_a_workflow_live(container):
    wait_for(lambda: container.show("ActiveState") == "active" or None, timeout=60, what="the unit to be active")
    assert container.run("systemctl", "is-active", UNIT).stdout.strip() == "active"
    status = wait_for(lambda: container.show("StatusText") or None, what="a STATUS line")
    assert re.fullmatch(r"\d+ workflows tracked, \d+ live; \d+ processed, \d+ failed since start", status), status
    write_workflow(container, "0000b001", 0.5)
    wait_for(lambda: stored(container).get("test:pytest:backend") == 1, timeout=30, what="the workflow in patterns")


def test_reload_reopens_the_log_after_logrotate(container):
    """With the unit's old ExecReload=/bin/kill -HUP $MAINPID this fails here: a minimal
    Debian has no /bin/kill ("Failed to locate executable /bin/kill")."""
    log = container.root / "var" / "log" / "adw-patternd" / "adw-patternd.log"
    wait_for(log.exists, what="the log file")
    container.run("logrotate", "--force", "/etc/logrotate.d/adw-patternd")
    r = container.run("systemctl", "reload", UNIT, check=False)
    assert r.returncode == 0, r.stdout + r.stderr + container.journal()[-2000:]
    write_workflow(container, "0000b002", 0.25)
    wait_for(lambda: log.exists() and "0000b002" in log.read_text(), timeout=30,
             what="the new workflow's line in the reopened log")


def test_kill_9_is_followed_by_a_restart_that_catches_up(container):
    restarts = int(container.show("NRestarts"))
    main_pid = container.show("MainPID")
    container.run("sh", "-c", f"kill -9 {main_pid}")  # the shell's kill: a minimal Debian has no /bin/kill
    write_workflow(container, "0000b003", 0.75)  # while it is down (RestartSec=5s)
    wait_for(lambda: int(container.show("NRestarts")) > restarts and container.show("ActiveState") == "active"
             or None, timeout=60, what="the restart")
    wait_for(lambda: stored(container).get("test:pytest:backend") == 3, timeout=60, what="the catch-up")


def test_watchdog_pings_keep_it_alive_past_watchdogsec(container):
    dropin = container.root / "etc" / "systemd" / "system" / f"{UNIT}.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "watchdog.conf").write_text("[Service]\nWatchdogSec=3s\n")
    container.run("sh", "-c", f"systemctl daemon-reload && systemctl restart {UNIT}")
    wait_for(lambda: container.show("ActiveState") == "active" or None, timeout=60, what="active again")
    restarts, pid = container.show("NRestarts"), container.show("MainPID")
    started = time.monotonic()
    wait_for(lambda: time.monotonic() - started > 10, timeout=20, what="three watchdog periods")
    assert (container.show("NRestarts"), container.show("MainPID"), container.show("ActiveState")) == (
        restarts, pid, "active")
    assert "Watchdog timeout" not in container.journal()
    (dropin / "watchdog.conf").unlink()
    container.run("systemctl", "daemon-reload")


def test_a_bad_config_fails_the_start_with_one_line_in_the_journal(container):
    config = container.root / "etc" / "adw-patternd" / "config.yaml"
    good = config.read_text()
    try:
        config.write_text(good + "sweeep_interval: 3\n")
        r = container.run("systemctl", "restart", UNIT, check=False)
        assert r.returncode != 0
        journal = container.journal()
        assert re.search(r"adw-patternd: .*sweeep_interval.*config\.yaml", journal), journal[-2000:]
    finally:
        config.write_text(good)
        container.run("systemctl", "reset-failed", UNIT, check=False)
        container.run("systemctl", "start", UNIT)


def test_stop_ends_cleanly_within_the_stop_timeout(container):
    wait_for(lambda: container.show("ActiveState") == "active" or None, timeout=60, what="active")
    started = time.monotonic()
    container.run("systemctl", "stop", UNIT)
    assert time.monotonic() - started < 15
    assert container.show("Result") == "success"
    assert "SIGKILL" not in container.journal()
