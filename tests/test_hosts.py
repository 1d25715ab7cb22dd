"""Hosts for a team: every workflow row records the machine that wrote it (config.yaml's
host:), and `status`, `patterns` and the report filter and split by it. Two real daemons
with different hosts write into one PostgreSQL database; what each host wrote adds up to
the whole."""

import json
import sqlite3

import pytest

from adw_patternd.cli import main
from helpers import wait_for, write_config
from test_sync import make_workflow


def cli_json(capsys, *args):
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def two_hosts(tmp_path, database: str) -> tuple:
    """Two machines' configs over one database: each its own root and host name."""
    configs = []
    for host, adw_ids, cost in (("alpha", ("a0000001", "a0000002"), 0.5), ("beta", ("b0000001",), 2.25)):
        folder = tmp_path / host
        root = folder / "agents"
        root.mkdir(parents=True)
        for n, adw_id in enumerate(adw_ids):
            make_workflow(root, adw_id, cost=cost + n, nl="Run backend tests with pytest" if n == 0
                          else "Typecheck the frontend with tsc")
        configs.append(write_config(folder, {f"{host}-agents": root}, database, host=host))
    return tuple(configs)


def test_two_daemons_with_their_hosts_split_one_postgresql_database(tmp_path, pg_url, daemon, capsys):
    alpha, beta = two_hosts(tmp_path, pg_url)
    daemons = [daemon(alpha), daemon(beta)]
    wait_for(lambda: cli_json(capsys, "status", "--config", str(alpha))["workflows"] == 3, timeout=60,
             what="both daemons' workflows stored")
    for d in daemons:
        assert d.stop() == 0

    whole = cli_json(capsys, "status", "--config", str(alpha))
    assert set(whole["by_host"]) == {"alpha", "beta"}
    parts = {h: cli_json(capsys, "status", "--config", str(alpha), "--host", h) for h in ("alpha", "beta")}
    assert parts["alpha"]["workflows"] == 2 and parts["beta"]["workflows"] == 1
    assert sum(p["workflows"] for p in parts.values()) == whole["workflows"]
    assert sum(p["spend_usd"] for p in parts.values()) == pytest.approx(whole["spend_usd"], abs=1e-9)
    assert parts["beta"]["spend_usd"] == pytest.approx(2.25)
    for h, p in parts.items():
        assert whole["by_host"][h]["spend_usd"] == pytest.approx(p["spend_usd"], abs=1e-9)
        assert set(p["roots"]) == {f"{h}-agents"}

    # Each pattern's occurrences and attributed cost: the hosts' add up to the whole.
    every = {p["pattern_signature"]: p for p in cli_json(capsys, "patterns", "--config", str(beta))}
    per_host = [{p["pattern_signature"]: p for p in cli_json(capsys, "patterns", "--config", str(beta), "--host", h)}
                for h in ("alpha", "beta")]
    for sig, p in every.items():
        assert sum(part.get(sig, {}).get("occurrence_count", 0) for part in per_host) == p["occurrence_count"]
        assert sum(part.get(sig, {}).get("sum_cost_nanos", 0) for part in per_host) == p["sum_cost_nanos"]

    report = cli_json(capsys, "report", "--config", str(alpha))
    assert report["totals"]["by_host"] == whole["by_host"]
    only_beta = cli_json(capsys, "report", "--config", str(alpha), "--host", "beta")
    assert only_beta["totals"]["workflows"] == 1 and only_beta["host"] == "beta"
    assert only_beta["totals"]["spend_usd"] == pytest.approx(2.25)
    assert sum(w["spend_usd"] for w in only_beta["weeks"]) == pytest.approx(2.25)


def test_the_migration_gives_old_rows_the_configured_host(tmp_path, capsys):
    root = tmp_path / "agents"
    root.mkdir()
    make_workflow(root, "c0000001")
    db = str(tmp_path / "p.db")
    config = write_config(tmp_path, {"main": root}, db, host="first-host")
    assert main(["sync", "--config", str(config)]) == 0
    # As a database made before the host column was: no column, migration not recorded.
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX wh_host")
        conn.execute("ALTER TABLE workflow_history DROP COLUMN host")
        conn.execute("DELETE FROM schema_migrations WHERE name = 'm014_workflow_host'")
        conn.execute("PRAGMA user_version = 12")
    config = write_config(tmp_path, {"main": root}, db, host="upgraded")
    status = cli_json(capsys, "status", "--config", str(config))
    assert status["by_host"] == {"upgraded": {"workflows": 1, "spend_usd": 0.5, "attributed_usd": 0.5}}


def test_a_blank_host_is_refused_by_name(tmp_path, capsys):
    config = write_config(tmp_path, {"main": tmp_path}, str(tmp_path / "p.db"), host="  ")
    assert main(["status", "--config", str(config)]) == 2
    assert "host: must name this machine" in capsys.readouterr().err
