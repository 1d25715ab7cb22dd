"""The HTML report, as a person sees it: rendered by a real headless Chromium (Debian's
chromium package) to a PNG and to the DOM after layout, and checked against the numbers
that `status`, `patterns` and `verify --files` give. Untrusted text (issue titles, command
lines) must come out as text, in the page and in CSV."""

import json
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.config import parse_config
from adw_patternd.core.errors import ConfigError
from helpers import wait_for, write_config
from test_real_trees import FAST
from test_rewrites import start_daemon
from test_sync import make_workflow

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package "
                                                             "(apt-get install chromium; .ci/run installs it)")
HOSTILE_TITLE = "=cmd|' /C calc'!A0 <script>document.title='pwned'</script> Run backend tests with pytest"
HOSTILE_COMMAND = "npx tsc --noEmit '<img src=x onerror=\"document.body.setAttribute(1,1)\">' =cmd|' /C calc'!A0"


class Dom(HTMLParser):
    """The elements of a DOM dump, each as (tag, attributes, text inside it)."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[list] = []
        self._open: list[list] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = [tag, dict(attrs), ""]
        self.elements.append(element)
        if tag not in ("meta", "br", "link", "img", "input", "hr"):  # HTML's void elements have no end tag
            self._open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append([tag, dict(attrs), ""])

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data):
        for element in self._open:
            element[2] += data

    def find(self, tag: str, **attrs) -> list[list]:
        return [e for e in self.elements if e[0] == tag
                and all(e[1].get(k.rstrip("_")) == v for k, v in attrs.items())]

    def text(self, tag: str, **attrs) -> str:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return " ".join(found[0][2].split())


def chromium(page: Path, out: Path, height: int = 2200) -> tuple[Dom, Path]:
    """Render ``page`` from a file:// URL: the DOM after scripts and layout, and a PNG."""
    profile = out / "chromium-profile"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
              f"--user-data-dir={profile}", f"--window-size=1200,{height}"]
    env = {**os.environ, "HOME": str(out)}
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         env=env, check=True).stdout
    png = out / "report.png"
    subprocess.run([*common, f"--screenshot={png}", page.as_uri()], capture_output=True, timeout=120, env=env,
                   check=True)
    return Dom(dom), png


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data): a blank page has very few."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def cli_json(capsys, *args):
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def example(tmp_path):
    """The shipped example tree, synced into a fresh SQLite database."""
    root = tmp_path / "agents"
    shutil.copytree(REPO / "examples" / "agents", root)
    config = write_config(tmp_path, {"example": root}, str(tmp_path / "patterns.db"))
    assert main(["sync", "--config", str(config)]) == 0
    return config


@needs_chromium
def test_the_example_report_shows_the_databases_figures_in_a_real_browser(example, tmp_path, capsys):
    assert main(["review", "build:typecheck:all", "approve", "--note", "tsc costs nothing", "--by", "lead",
                 "--config", str(example)]) == 0
    page = tmp_path / "report.html"
    assert main(["report", "--html", str(page), "--config", str(example)]) == 0
    data = cli_json(capsys, "report", "--config", str(example))
    status = cli_json(capsys, "status", "--config", str(example))
    patterns = cli_json(capsys, "patterns", "--config", str(example))
    main(["verify", "--files", "--config", str(example), "--rounds", "1"]) == 0 or pytest.fail("verify --files")

    # The report's data is the database's, which is the files'.
    assert data["totals"]["spend_usd"] == pytest.approx(status["spend_usd"], abs=1e-9)
    assert data["totals"]["workflows"] == status["workflows"] == 21
    assert 0 < data["totals"]["attributed_usd"] <= data["totals"]["spend_usd"]
    assert [p["pattern_signature"] for p in data["patterns"]] == [p["pattern_signature"] for p in patterns]
    assert data["totals"]["potential_monthly_savings"] == pytest.approx(
        sum(p["potential_monthly_savings"] for p in patterns))

    dom, png = chromium(page, tmp_path)
    width, height, colours = png_facts(png)
    assert (width, height) == (1200, 2200) and colours > 50
    if os.environ.get("ADW_PATTERND_UPDATE_SCREENSHOT"):  # how docs/report-example.png is made
        shutil.copy(png, REPO / "docs" / "report-example.png")

    # Totals, as a person reads them.
    assert dom.text("div", id="total-spend") == f"${status['spend_usd']:,.2f}"
    assert dom.text("div", id="total-savings") == f"${data['totals']['potential_monthly_savings']:,.2f}"
    assert dom.text("div", id="total-attributed") == f"{data['totals']['attributed_share']:.0%}"

    # The savings chart: one bar per pattern with savings, largest first, with its figure.
    bars = [e[1] for e in dom.find("rect", class_="bar")]
    with_savings = [p for p in patterns if p["potential_monthly_savings"] > 0][:12]
    assert [b["data-signature"] for b in bars] == [p["pattern_signature"] for p in with_savings]
    assert [b["data-value"] for b in bars] == [f"{p['potential_monthly_savings']:.2f}" for p in with_savings]
    widths = [float(b["width"]) for b in bars]
    assert widths == sorted(widths, reverse=True) and widths[0] > 100
    chart_text = dom.text("svg", id="savings-chart")
    for p in with_savings[:3]:
        assert p["pattern_signature"] in chart_text and f"${p['potential_monthly_savings']:,.2f}" in chart_text

    # The weekly trend: 12 weeks, and this week's bar holds what was spent this week.
    weeks = [e[1] for e in dom.find("rect", class_="spend")]
    assert [w["data-week"] for w in weeks] == [w["week"] for w in data["weeks"]]
    assert [w["data-value"] for w in weeks] == [f"{w['spend_usd']:.2f}" for w in data["weeks"]]

    # The table: every pattern, in order, with its savings and review state.
    rows = dom.find("tr", **{"data-signature": patterns[0]["pattern_signature"]})
    assert rows and f"${patterns[0]['potential_monthly_savings']:,.2f}" in rows[0][2]
    table_rows = [e[1]["data-signature"] for e in dom.find("tr") if "data-signature" in e[1]]
    assert table_rows == [p["pattern_signature"] for p in patterns]
    typecheck = " ".join(dom.find("tr", **{"data-signature": "build:typecheck:all"})[0][2].split())
    assert "approved" in typecheck

    # One section of evidence per top pattern.
    sections = dom.find("section", class_="pattern")
    assert [s[1]["data-signature"] for s in sections] == [p["pattern_signature"] for p in patterns[:5]]
    assert not dom.find("script")


def hostile_workflow(root: Path, adw_id: str = "0bad0001") -> None:
    """A classic-layout workflow whose issue title and Bash command carry markup and formulas."""
    folder = root / adw_id
    (folder / "sdlc_planner" / "prompts").mkdir(parents=True)
    issue = {"number": 7, "title": HOSTILE_TITLE, "body": "x", "state": "open"}
    (folder / "sdlc_planner" / "prompts" / "feature.txt").write_text(f"/feature 7 adw-{adw_id} {json.dumps(issue)}\n")
    (folder / "adw_state.json").write_text(json.dumps({
        "adw_id": adw_id, "issue_number": "7", "branch_name": f"feat-issue-7-adw-{adw_id}-x",
        "plan_file": "specs/x.md", "issue_class": "/feature"}))
    lines = [
        {"type": "system", "subtype": "init", "session_id": "s-1", "model": "claude-sonnet-4-5-20250929"},
        {"type": "assistant", "session_id": "s-1", "message": {
            "id": "msg_1", "model": "claude-sonnet-4-5-20250929", "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": HOSTILE_COMMAND}}],
            "usage": {"input_tokens": 10, "output_tokens": 200, "cache_read_input_tokens": 1000}}},
        {"type": "result", "subtype": "success", "is_error": False, "session_id": "s-1", "total_cost_usd": 0.75,
         "duration_ms": 30000, "usage": {"input_tokens": 10, "output_tokens": 200}},
    ]
    (folder / "sdlc_planner" / "raw_output.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


@needs_chromium
def test_markup_and_formulas_in_titles_and_commands_come_out_as_text(tmp_path, capsys):
    root = tmp_path / "agents"
    root.mkdir()
    hostile_workflow(root)
    config = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"))
    assert main(["sync", "--config", str(config)]) == 0
    page = tmp_path / "report.html"
    assert main(["report", "--html", str(page), "--config", str(config)]) == 0
    source = page.read_text()
    assert "<script>document" not in source and "<img src" not in source
    assert "&lt;script&gt;" in source

    dom, png = chromium(page, tmp_path)
    assert png_facts(png)[2] > 20
    assert not dom.find("script") and not dom.find("img")
    assert not [e for e in dom.find("body") if "1" in e[1]]
    assert dom.find("title")[0][2].startswith("adw-patternd report")  # the page's, as written
    assert HOSTILE_TITLE in [" ".join(e[2].split()) for e in dom.find("td", class_="request")]
    commands = [e[2] for e in dom.find("code")]
    assert HOSTILE_COMMAND in commands

    # The same text in CSV cannot run as a formula: a cell starting with = + - @ is quoted. (The
    # title names pytest, which no agent ran: the workflow is the typecheck's, a mention of pytest.)
    capsys.readouterr()
    assert main(["show", "build:typecheck:all", "--csv", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "'=cmd|" in out and ",=cmd" not in out and "\n=cmd" not in out


def test_the_daemon_keeps_the_report_fresh(tmp_path, capsys):
    root = tmp_path / "agents"
    root.mkdir()
    make_workflow(root, "aaaa0001", cost=1.0)
    page = tmp_path / "site" / "report.html"  # its folder is made by the daemon
    config = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"),
                          report={"html": str(page), "every_s": 1}, **FAST)
    d = start_daemon(config)
    try:
        wait_for(lambda: page.exists() and "$1.00" in page.read_text(), timeout=30, what="the first report")
        make_workflow(root, "aaaa0002", cost=2.5)
        wait_for(lambda: "$3.50" in page.read_text(), timeout=30, what="the report with the new workflow")
        assert "spend seen in 2 workflow(s)" in page.read_text()
        assert main(["review", "test:pytest:backend", "approve", "--config", str(config)]) == 0
        wait_for(lambda: '<span class="state approved">' in page.read_text(), timeout=30, what="the review shown")
    finally:
        assert d.stop() == 0
    assert sorted(p.name for p in page.parent.iterdir()) == ["report.html"]  # renamed into place: no temporaries
    assert oct(page.stat().st_mode & 0o777) == "0o644"


def test_a_report_path_that_cannot_be_written_is_one_line_naming_it(tmp_path, capsys):
    root = tmp_path / "agents"
    root.mkdir()
    config = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"))
    assert main(["report", "--html", str(tmp_path / "missing" / "r.html"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "folder that exists" in err and "Traceback" not in err
    assert main(["report", "--config", str(config)]) == 2
    assert "--html FILE" in capsys.readouterr().err


@pytest.mark.parametrize("report, problem", [
    ({"html": "/srv/www/report.txt"}, "must end in .html"),
    ({"html": "r.html", "every_s": 0}, "every_s"),
    ({"htlm": "r.html"}, "htlm"),
])
def test_bad_report_settings_name_the_key(tmp_path, report, problem):
    with pytest.raises(ConfigError) as e:
        parse_config({"roots": [{"path": str(tmp_path)}], "database": "x.db", "report": report},
                     tmp_path / "config.yaml")
    assert problem in str(e.value) and "report" in str(e.value)


@needs_chromium
def test_the_automated_section_in_a_real_browser(tmp_path, capsys):
    """Issue 19: "Automated: predicted and realized", with its before/after chart and the
    regressions in red, as the example's session store gives them (git:commit:all automated
    on 2026-11-10: two of the developer's own sessions still commit through the LLM)."""
    root = tmp_path / "agents"
    shutil.copytree(REPO / "examples" / "agents", root)
    shutil.copytree(REPO / "examples" / "claude", tmp_path / "claude")
    config = write_config(tmp_path, {"example": root}, str(tmp_path / "patterns.db"),
                          claude_projects=[{"path": str(tmp_path / "claude" / "projects")}])
    assert main(["sync", "--config", str(config)]) == 0
    assert main(["review", "git:commit:all", "automated", "--on", "2026-11-10", "--config", str(config)]) == 0
    page = tmp_path / "report.html"
    assert main(["report", "--html", str(page), "--config", str(config)]) == 0
    data = cli_json(capsys, "report", "--config", str(config))
    [auto] = data["automated"]
    assert auto["regressions"] == 2

    dom, _png = chromium(page, tmp_path, height=3200)
    section = dom.find("section", class_="automated")
    assert len(section) == 1 and section[0][1]["data-signature"] == "git:commit:all"
    text = " ".join(section[0][2].split())
    assert "automated on 2026-11-10" in text
    assert f"${auto['realized_savings_usd_month']:,.2f}" in text and f"${auto['predicted_savings_usd_month']:,.2f}" in text
    red = sorted(" ".join(r[2].split()) for r in dom.find("tr", class_="regression"))
    wanted = sorted(r["workflow_id"] for r in auto["regressions_list"])
    assert len(red) == len(wanted) == 2 and all(row.startswith(wid) for row, wid in zip(red, wanted))
    bars = [e for e in dom.find("rect") if e[1].get("class") in ("before", "since")]
    assert [b[1]["class"] for b in bars] == ["before", "since"]
    assert float(bars[0][1]["width"]) > float(bars[1][1]["width"])  # less spent per workflow since
