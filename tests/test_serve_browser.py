"""The live page in a real headless Chromium (Debian's chromium package), driven over the
DevTools protocol: over SQLite and over PostgreSQL, with `adw-patternd run` and
`adw-patternd serve` as two processes beside each other, the numbers on the pages are the
command line's, a workflow the daemon stores while a page is open appears on it within 2 s
without a reload, and markup in a request or a command line stays text."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.config import load_config
from adw_patternd.live.serve import Running
from cdp import CHROMIUM, Browser
from helpers import wait_for, write_config
from test_html_report import HOSTILE_COMMAND, HOSTILE_TITLE, hostile_workflow, png_facts
from test_serve import cli_json, example_config
from test_sync import make_workflow

REPO = Path(__file__).resolve().parent.parent
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package "
                                                             "(apt-get install chromium; .ci/run installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`adw-patternd serve` as its own process, as beside the daemon on a host."""

    def __init__(self, config: Path):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "adw_patternd", "serve", "--config", str(config),
                                      "--port", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        assert line.startswith("serve: http://127.0.0.1:"), line
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        assert self.proc.wait(timeout=10) == 0
        self.proc.stdout.close()


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "chromium-profile")
    yield b
    b.close()


@needs_chromium
def test_a_page_shows_the_cli_figures_and_updates_itself(tmp_path, database, daemon, browser, capsys):
    root = tmp_path / "agents"
    root.mkdir()
    make_workflow(root, "aaaa0001", cost=0.5)
    make_workflow(root, "aaaa0002", nl="Typecheck the frontend with tsc", cost=1.25)
    hostile_workflow(root)
    config = write_config(tmp_path, {"main": root}, database, **{"stale_after_s": 60})
    runner = daemon(config)
    wait_for(lambda: cli_json(capsys, "status", "--config", str(config))["workflows"] == 3, timeout=60,
             what="the daemon's catch-up")
    serve = ServeProcess(config)
    try:
        status = cli_json(capsys, "status", "--config", str(config))
        patterns = cli_json(capsys, "patterns", "--config", str(config))

        browser.open(serve.url)
        assert browser.eval("document.getElementById('total-spend').textContent") == f"${status['spend_usd']:,.2f}"
        assert browser.eval("document.getElementById('total-workflows').textContent") == "3"
        browser.open(serve.url + "patterns")
        rows = browser.eval("[...document.querySelectorAll('#patterns tbody tr')].map(r => "
                            "[r.dataset.signature, r.querySelector('.occurrences').textContent, "
                            "r.querySelector('.savings').textContent])")
        assert rows == [[p["pattern_signature"], str(p["occurrence_count"]), f"${p['potential_monthly_savings']:,.2f}"]
                        for p in patterns]
        sig = patterns[0]["pattern_signature"]
        shown = cli_json(capsys, "show", sig, "--config", str(config))
        browser.open(serve.url + "pattern/" + sig)
        assert browser.eval("document.getElementById('occurrences').textContent") == \
            str(shown["statistics"]["occurrence_count"])
        assert browser.eval("document.querySelectorAll('#workflows tbody tr').length") == shown["workflows_shown"]

        # The script payloads stay text: nothing ran, no element came of them.
        browser.open(serve.url + "workflow/main%2F0bad0001")
        assert "pwned" not in browser.eval("document.title")
        assert browser.eval("document.body.hasAttribute('1')") is False
        assert browser.eval("document.querySelectorAll('img').length") == 0
        assert browser.eval("[...document.scripts].map(s => s.getAttribute('src'))") == ["/static/live.js"]
        assert HOSTILE_TITLE in browser.eval("document.getElementById('request').textContent")
        assert HOSTILE_COMMAND in browser.eval("[...document.querySelectorAll('#commands code')]"
                                               ".map(c => c.textContent)")

        # Live: a workflow the daemon stores while the page is open appears on it, no reload.
        browser.open(serve.url + "workflows")
        browser.eval("window.stillThisPage = 42")
        assert browser.eval("document.querySelectorAll('#workflow-list tbody tr').length") == 3
        make_workflow(root, "aaaa0003", nl="Run backend tests with pytest", cost=2.0)
        wait_for(lambda: cli_json(capsys, "status", "--config", str(config))["workflows"] == 4, timeout=60,
                 what="the daemon storing the new workflow")
        committed = time.monotonic()
        wait_for(lambda: browser.eval("!!document.querySelector('tr[data-workflow=\"main/aaaa0003\"]')"),
                 timeout=10, what="the new workflow on the open page")
        assert time.monotonic() - committed < 2.0
        assert browser.eval("window.stillThisPage") == 42
    finally:
        serve.stop()
        assert runner.stop() == 0


@needs_chromium
def test_screenshots_of_the_example(tmp_path, served_example, browser):
    """The overview and a pattern page of the example, as the README shows them
    (ADW_PATTERND_UPDATE_SCREENSHOT=1 writes them into docs/)."""
    update = os.environ.get("ADW_PATTERND_UPDATE_SCREENSHOT") == "1"
    for path, name in (("", "serve-overview.png"), ("pattern/build:typecheck:all", "serve-pattern.png")):
        browser.open(served_example.url + path)
        out = (REPO / "docs" / name) if update else tmp_path / name
        browser.screenshot(out)
        width, height, colours = png_facts(out)
        assert (width, height) == (1280, 1400) and colours > 50


@pytest.fixture
def served_example(tmp_path):
    config = example_config(tmp_path, str(tmp_path / "patterns.db"), host="dev-laptop", automated=[
        {"signature": "git:commit:all", "date": "2026-11-22", "note": "the ADW commits with scripts/commit.sh"}])
    running = Running(load_config(config), port=0)
    yield running
    running.stop()


def test_the_daemon_serves_the_page_when_config_says_so(tmp_path, daemon, capsys):
    import json
    import urllib.request

    root = tmp_path / "agents"
    root.mkdir()
    make_workflow(root, "dddd0001")
    port = free_port()
    config = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"), serve={"in_daemon": True, "port": port})
    runner = daemon(config)

    def answered():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as r:
            return json.loads(r.read())["workflows"] == 1

    wait_for(answered, timeout=60, what="the daemon's page")
    assert runner.stop() == 0
    assert re.search(r"serving the live page at http://127\.0\.0\.1:\d+/", runner.log())
    assert main(["status", "--config", str(config)]) == 0
