"""The metrics file: Prometheus text format for node_exporter's textfile collector, written
by the daemon every metrics.interval_s and by sync when it ends; its figures are the
database's."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adw_patternd.cli import main
from adw_patternd.config import parse_config
from adw_patternd.core.errors import ConfigError
from adw_patternd.synth.trees import make_real_tree
from helpers import wait_for, write_config
from test_real_trees import FAST
from test_rewrites import rewrite, run_lines, start_daemon


def samples(path) -> dict:
    """{(name, labels as a sorted tuple): value} of every sample in the file."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_sync_writes_the_file_with_the_databases_figures(tmp_path, root, database, capsys):
    prom = tmp_path / "textfile" / "adw-patternd.prom"
    config = write_config(tmp_path, {"main": root}, database, metrics={"textfile": str(prom)})
    make_real_tree(str(root), 25, seed=3)
    assert main(["sync", "--config", str(config)]) == 0
    got = samples(prom)
    stored = int(got[("adw_patternd_workflows_processed_total", (("root", "main"),))])
    capsys.readouterr()
    assert main(["patterns", "--json", "--config", str(config)]) == 0
    patterns = json.loads(capsys.readouterr().out)
    assert stored == 25 and patterns
    for p in patterns:
        label = (("signature", p["pattern_signature"]),)
        assert got[("adw_patternd_pattern_occurrences", label)] == p["occurrence_count"]
        assert got[("adw_patternd_pattern_potential_monthly_savings_usd", label)] == pytest.approx(
            p["potential_monthly_savings"])
    assert not [p for p in prom.parent.iterdir() if p != prom]  # written by rename: no temporary left
    families = {f.name for f in text_string_to_metric_families(prom.read_text())}
    assert families >= {
        "adw_patternd_workflows_processed", "adw_patternd_workflows_failed", "adw_patternd_files_caught_mid_write",
        "adw_patternd_change_to_commit_seconds", "adw_patternd_live_watches", "adw_patternd_dormant_workflows",
        "adw_patternd_sweep_seconds", "adw_patternd_reconcile_seconds", "adw_patternd_database_wait_seconds",
        "adw_patternd_last_commit_timestamp_seconds", "adw_patternd_pattern_occurrences",
        "adw_patternd_pattern_potential_monthly_savings_usd", "adw_patternd_pattern_spend_usd"}, families


def test_the_daemon_keeps_the_file_current(tmp_path, root, database):
    prom = tmp_path / "adw-patternd.prom"
    config = write_config(tmp_path, {"main": root}, database, metrics={"textfile": str(prom), "interval_s": 1},
                          **FAST)
    d = start_daemon(config)
    try:
        rewrite(root / "0000a001" / "tester" / "raw_output.jsonl", run_lines("s1", "1.500000"))
        got = wait_for(lambda: (lambda m: m if m.get(("adw_patternd_change_to_commit_seconds_count", ())) else None)(
            samples(prom) if prom.exists() else {}), timeout=30, what="a live commit in the metrics file")
        assert got[("adw_patternd_workflows_processed_total", (("root", "main"),))] >= 1
        assert got[("adw_patternd_last_commit_timestamp_seconds", ())] > 0
        assert got[("adw_patternd_live_watches", ())] >= 1
        assert ("adw_patternd_dormant_workflows", ()) in got
        assert got[("adw_patternd_pattern_spend_usd", (("signature", "git:status:summary"),))] > 0
        assert got[("adw_patternd_change_to_commit_seconds_bucket", (("le", "+Inf"),))] >= 1
    finally:
        assert d.stop() == 0


@pytest.mark.parametrize("metrics, problem", [
    ({"textfile": "/var/lib/x/metrics.txt"}, "must end in .prom"),
    ({"textfile": "m.prom", "interval_s": 0}, "interval_s"),
    ({"textfle": "m.prom"}, "textfle"),
])
def test_bad_metrics_settings_name_the_key(tmp_path, metrics, problem):
    with pytest.raises(ConfigError) as e:
        parse_config({"roots": [{"path": str(tmp_path)}], "database": "x.db", "metrics": metrics},
                     tmp_path / "config.yaml")
    assert problem in str(e.value) and "config.yaml" in str(e.value)
