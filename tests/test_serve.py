"""`adw-patternd serve`, the live page: over HTTP its JSON equals what the command line
prints for the same database (patterns, show, status, report), bad requests get a 404 or
400 page and never a traceback, a token guards it beyond loopback, and it writes nothing.
The browser tests (test_serve_browser.py) load the pages in a real Chromium."""

import json
import shutil
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.config import load_config
from adw_patternd.core.errors import PatterndError
from adw_patternd.live.serve import Running
from helpers import write_config
from test_html_report import HOSTILE_COMMAND, HOSTILE_TITLE, hostile_workflow

REPO = Path(__file__).resolve().parent.parent


def example_config(tmp_path: Path, database: str, **extra) -> Path:
    """The shipped examples (an ADW tree, its session store, a Codex home) in ``database``."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    examples = tmp_path / "examples"
    config = write_config(tmp_path, {"example": examples / "agents"}, database,
                          claude_projects=[{"path": str(examples / "claude" / "projects"), "name": "claude"}],
                          codex_homes=[{"path": str(examples / "codex"), "name": "codex"}], **extra)
    assert main(["sync", "--config", str(config)]) == 0
    return config


@pytest.fixture
def served():
    running = []

    def start(config: Path, **kw) -> Running:
        running.append(Running(load_config(config), port=0, **kw))
        return running[-1]

    yield start
    for r in running:
        r.stop()


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def api(page: Running, path: str):
    status, _headers, body = get(page.url + path.lstrip("/"))
    assert status == 200, (path, body[:300])
    return json.loads(body)


def cli_json(capsys, *args):
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_pages_json_is_the_command_lines(tmp_path, database, served, capsys):
    config = example_config(tmp_path, database)
    assert main(["review", "build:typecheck:all", "approve", "--note", "<b>tsc</b> costs nothing", "--by", "lead",
                 "--config", str(config)]) == 0
    page = served(config)
    cfg = str(config)

    patterns = cli_json(capsys, "patterns", "--config", cfg)
    assert api(page, "/api/patterns") == patterns
    for query, args in (("agent=codex", ("--agent", "codex")), ("agent=claude", ("--agent", "claude")),
                        ("state=approved", ("--status", "approved")), ("sort=impact", ("--sort", "impact")),
                        ("sort=occurrences", ("--sort", "occurrences")),
                        (f"host={load_config(config).host}", ("--host", load_config(config).host))):
        assert api(page, f"/api/patterns?{query}") == cli_json(capsys, "patterns", "--config", cfg, *args), query

    automated = {p["pattern_signature"] for p in patterns if p["review_state"] == "automated"}
    for p in patterns[:6]:
        sig = p["pattern_signature"]
        if sig in automated:  # its since-window runs to now: a microsecond apart, not equal
            continue
        assert api(page, f"/api/pattern/{sig}") == cli_json(capsys, "show", sig, "--config", cfg)

    status = cli_json(capsys, "status", "--config", cfg)
    assert api(page, "/api/status") == status
    assert status["workflows"] == 38 and set(status["by_agent"]) == {"claude", "codex"}

    report = cli_json(capsys, "report", "--config", cfg)
    overview = api(page, "/api/overview")
    for key in ("totals", "patterns", "weeks", "weeks_end", "database", "tool_cost_ratio"):
        assert overview[key] == report[key], key
    by_agent = overview["weeks_by_agent"]
    for i, week in enumerate(overview["weeks"]):
        assert sum(spend[i] for spend in by_agent.values()) == pytest.approx(week["spend_usd"], abs=1e-9)

    listed = api(page, "/api/workflows")
    assert listed["total"] == status["workflows"]
    assert sum(w["spend_usd"] for w in listed["workflows"]) == pytest.approx(status["spend_usd"], abs=1e-6)
    codex = api(page, "/api/workflows?agent=codex&sort=spend")
    assert codex["total"] == status["by_agent"]["codex"]["workflows"]
    spends = [w["spend_usd"] for w in codex["workflows"]]
    assert spends == sorted(spends, reverse=True)

    shown = cli_json(capsys, "show", "build:typecheck:all", "--config", cfg)
    one = shown["workflows"][0]
    wf = api(page, "/api/workflow/" + urllib.request.quote(one["workflow_id"], safe=""))
    assert wf["workflow_id"] == one["workflow_id"] and wf["status"] == one["status"]
    link = [p for p in wf["patterns"] if p["pattern_signature"] == "build:typecheck:all"]
    assert link and link[0]["attributed_usd"] == pytest.approx(one["attributed_usd"], abs=1e-12)


def test_bad_requests_get_a_404_or_400_page_never_a_traceback(tmp_path, served):
    config = example_config(tmp_path, str(tmp_path / "p.db"))
    page = served(config)
    for path, code in (("pattern/no:such:pattern", 404), ("api/pattern/no:such:pattern", 404), ("nowhere", 404),
                       ("workflow/example%2Fnope", 404), ("patterns?agent=nobody", 400),
                       ("patterns?sort=drop%20table", 400), ("patterns?state=maybe", 400),
                       ("workflows?offset=-1", 400), ("api/workflows?host=nobody", 400),
                       ("patterns?agent=claude&agent=codex", 400), ("api/nothing", 404)):
        status, headers, body = get(page.url + path)
        text = body.decode()
        assert status == code, (path, status, text[:200])
        assert "Traceback" not in text and "File \"" not in text
        if path.startswith("api/"):
            assert json.loads(text)["status"] == code
        else:
            assert "<h1>" in text and headers["Content-Type"].startswith("text/html")
    status, _h, body = get(page.url + "pattern/no:such:pattern")
    assert "no pattern &#39;no:such:pattern&#39;" in body.decode()
    request = urllib.request.Request(page.url + "patterns", data=b"x=1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 405


def test_beyond_loopback_it_needs_a_token_and_answers_401_without_it(tmp_path, served, monkeypatch):
    db = str(tmp_path / "p.db")
    config = example_config(tmp_path, db)
    monkeypatch.delenv("ADW_PATTERND_SERVE_TOKEN", raising=False)
    with pytest.raises(PatterndError, match="needs a token"):
        served(config, bind="0.0.0.0")
    token = "s3cret-token-of-some-length"
    monkeypatch.setenv("ADW_PATTERND_SERVE_TOKEN", token)
    page = served(config, bind="0.0.0.0")
    for path in ("", "patterns", "api/patterns", "api/revision", "static/live.js"):
        status, headers, body = get(page.url + path)
        assert status == 401, path
        assert "Bearer" in headers["WWW-Authenticate"] and b"Traceback" not in body
    assert get(page.url + "api/patterns", {"Authorization": "Bearer wrong-token-of-some-length"})[0] == 401
    assert get(page.url + "api/patterns", {"Authorization": f"Bearer {token}"})[0] == 200
    # ?token= once: a cookie, and the address without it.
    status, headers, _ = get(page.url + f"patterns?agent=codex&token={token}")
    assert status == 303 and headers["Location"] == "/patterns?agent=codex"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert get(page.url + "patterns?agent=codex", {"Cookie": cookie})[0] == 200
    # In config.yaml instead of the environment, the same.
    monkeypatch.delenv("ADW_PATTERND_SERVE_TOKEN")
    config = write_config(tmp_path, {"example": tmp_path / "examples" / "agents"}, db,
                          serve={"bind": "0.0.0.0", "token": token})
    page = served(config)
    assert get(page.url + "api/status")[0] == 401
    assert get(page.url + "api/status", {"Authorization": f"Bearer {token}"})[0] == 200


def test_a_short_token_or_a_bad_port_is_refused_by_name(tmp_path, capsys):
    for serve, problem in (({"token": "short"}, "serve.token: must be at least 16"),
                           ({"port": 70000}, "serve.port: must be a TCP port"),
                           ({"colour": "red"}, "serve.colour: unknown key")):
        config = write_config(tmp_path, {"main": tmp_path}, str(tmp_path / "p.db"), serve=serve)
        assert main(["serve", "--config", str(config)]) == 2
        assert problem in capsys.readouterr().err


def test_it_writes_nothing_and_cannot(tmp_path, served):
    db = tmp_path / "p.db"
    config = example_config(tmp_path, str(db))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("p.db*") if p.name != "p.db-shm"}
    page = served(config)
    for path in ("", "patterns", "workflows", "pattern/build:typecheck:all", "api/status", "api/revision"):
        assert get(page.url + path)[0] == 200
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        page.site.db.execute("CREATE TABLE t (a)")
    after = {p.name: p.read_bytes() for p in tmp_path.glob("p.db*") if p.name != "p.db-shm"}
    assert after == before


def test_a_database_not_made_yet_is_one_line(tmp_path, capsys):
    config = write_config(tmp_path, {"main": tmp_path}, str(tmp_path / "none.db"))
    assert main(["serve", "--config", str(config), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "no SQLite database" in err and "sync" in err and "Traceback" not in err


def test_markup_in_requests_and_commands_is_escaped(tmp_path, served):
    root = tmp_path / "agents"
    root.mkdir()
    hostile_workflow(root)
    config = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"))
    assert main(["sync", "--config", str(config)]) == 0
    page = served(config)
    for path in ("workflows", "workflow/main%2F0bad0001", "pattern/build:typecheck:all"):
        status, headers, body = get(page.url + path)
        html = body.decode()
        assert status == 200
        assert "<script>document" not in html and "<img src" not in html, path
        assert "script-src 'self'" in headers["Content-Security-Policy"]
    html = get(page.url + "workflow/main%2F0bad0001")[2].decode()
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    assert HOSTILE_TITLE and HOSTILE_COMMAND  # the payloads the browser test checks as text
