"""The command line: help text, one-line errors that name the key and the file, status."""

import json

import pytest

from adw_patternd.cli import build_parser, main
from helpers import write_config
from test_sync import make_workflow

COMMANDS = ("sync", "patterns", "show", "review", "report", "verify", "check-config", "status", "run", "serve")


def test_the_help_test_knows_every_command():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and len(out.splitlines()) > 3
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    assert sub.description


@pytest.mark.parametrize("text, expected", [
    ("roots: [{path: a, name: x}]\ndatabase: d.db\nbogus: 1\n", "bogus: unknown key"),
    ("roots: [{path: a, name: x}]\ndatabase: d.db\ndebounce_ms: soon\n", "debounce_ms: expected int"),
    ("roots: [{path: a, name: x}]\ndatabase: d.db\nlog: {level: LOUD}\n", "log.level: must be"),
    ("roots: [{path: a, name: x}]\ndatabase: d.db\nwatch: {colour: red}\n", "watch.colour: unknown key"),
    ("database: d.db\n", "roots: at least one root (a list of {path, name}), session store (claude_projects) or Codex home "
                        "(codex_homes) is required"),
    ("roots: [{name: x}]\ndatabase: d.db\n", "roots[0].path: required"),
    ("roots: [{path: a, name: x}, {path: b, name: x}]\ndatabase: d.db\n", "roots[1].name: 'x' is used by two roots"),
    ("roots: [{path: a, name: 'a/b'}]\ndatabase: d.db\n", "roots[0].name: 'a/b' must be"),
    ("roots: [{path: a, name: x}]\n", "database: required"),
    ("roots: [{path: a\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
    ("roots: [{path: a, name: x}]\ndatabase: d.db\nprices: {sonnet: {input: 1}}\n", "prices.sonnet.input: all of"),
])
def test_bad_config_fails_with_one_line_naming_key_and_file(tmp_path, capsys, text, expected):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert expected in err and str(cfg) in err


def test_missing_config_file_says_how_to_point_at_one(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ADW_PATTERND_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["sync"]) == 2
    err = capsys.readouterr().err
    assert "config file not found: config.yaml" in err and "--config" in err


def test_config_path_from_environment(tmp_path, root, capsys, monkeypatch):
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "x.db"))
    monkeypatch.setenv("ADW_PATTERND_CONFIG", str(cfg))
    assert main(["check-config"]) == 0
    assert str(cfg) in capsys.readouterr().out


def test_unreachable_database_is_one_line(tmp_path, root, capsys):
    (tmp_path / "blocker").write_text("a file, not a folder")
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "blocker" / "x.db"))
    assert main(["sync", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adw-patternd: cannot open SQLite database") and len(err.splitlines()) == 1


def test_status(tmp_path, root, database, capsys):
    cfg = write_config(tmp_path, {"main": root}, database)
    make_workflow(root, "s0000001")
    make_workflow(root, "s0000002", nl="Typecheck the frontend")
    main(["sync", "--config", str(cfg)])
    capsys.readouterr()
    assert main(["status", "--json", "--config", str(cfg)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["workflows"] == 2 and status["patterns"] == 2
    assert status["roots"]["main"]["workflows"] == 2
    assert status["last_processed"]["workflow_id"].startswith("main/")
    assert status["database_bytes"] > 0
    assert main(["status", "--config", str(cfg)]) == 0
    assert "workflows: 2" in capsys.readouterr().out


def test_json_log_lines(tmp_path, root, capsys):
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "x.db"), log={"file": str(tmp_path / "j.log"),
                                                                             "format": "json", "level": "INFO"})
    make_workflow(root, "j0000001")
    (root / "j0000002").mkdir()
    (root / "j0000002" / "adw_state.json").write_text("{broken")
    assert main(["sync", "--config", str(cfg), "-v"]) == 1
    lines = [json.loads(line) for line in (tmp_path / "j.log").read_text().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert any(r["level"] == "WARNING" and "j0000002/adw_state.json" in r["message"] for r in lines)
    assert any(r["level"] == "INFO" and "main/j0000001 new" in r["message"] for r in lines)


def test_unreachable_postgresql_is_one_line(tmp_path, root, capsys):
    cfg = write_config(tmp_path, {"main": root}, "postgresql://nobody@127.0.0.1:1/nothing")
    assert main(["status", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("adw-patternd: cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1:1/nothing")


def test_a_root_that_cannot_be_used_is_named_with_the_reason(tmp_path):
    from adw_patternd.sources.files import root_problem

    (tmp_path / "file").write_text("x")
    assert root_problem(tmp_path / "nope") == "does not exist yet"
    assert root_problem(tmp_path / "file") == "is not a folder"
    assert root_problem(tmp_path / "file" / "below").startswith("cannot be reached (Not a directory)")
    assert root_problem(tmp_path) is None


def test_a_reader_that_goes_away_is_not_a_traceback(tmp_path, root):
    """`adw-patternd patterns | head -3`: the pipe closes before the report is written."""
    import subprocess
    import sys

    for n in range(40):
        make_workflow(root, f"aaaa{n:04d}", nl=f"Run backend tests with pytest, case {n}")
    config = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"))
    assert main(["sync", "--config", str(config)]) == 0
    for reader in ("true", "head -c 1"):  # gone before the first write; gone after the first byte
        gone = subprocess.run(f"{sys.executable} -m adw_patternd show test:pytest:backend --limit 40 "
                              f"--config {config} | {reader}", shell=True, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in gone.stderr and "Error" not in gone.stderr, gone.stderr
