"""`patterns --since/--until`: statistics over the workflows started in a window, computed
from the occurrences (not the running sums), with a 30-day spend trend."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from adw_patternd.cli import main
from test_sync import make_workflow, sync

NOW = datetime.now(timezone.utc)


def started(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def patterns(config_path, capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["patterns", "--json", "--config", str(config_path), *args]) == 0
    return {p["pattern_signature"]: p for p in json.loads(capsys.readouterr().out)}


def test_a_window_counts_the_workflows_started_in_it_and_the_trend_compares_months(config_path, root, database,
                                                                                  capsys):
    # pytest runs: 2 this month ($1 + $2), 1 last month ($4), 1 a year ago ($8)
    for adw_id, days, cost in (("w1", 3, 1.0), ("w2", 20, 2.0), ("w3", 45, 4.0), ("w4", 365, 8.0)):
        make_workflow(root, adw_id, nl="Run backend tests with pytest", cost=cost,
                      start_time=started(days), end_time=started(days - 0.01))
    assert sync(config_path) == 0
    everything = patterns(config_path, capsys)["test:pytest:backend"]
    window = patterns(config_path, capsys, "--since", "400d")["test:pytest:backend"]
    for key in ("occurrence_count", "sum_units", "avg_tokens_with_llm", "avg_cost_with_llm", "confidence_score"):
        assert window[key] == everything[key], key
    last_60 = patterns(config_path, capsys, "--since", "60d")["test:pytest:backend"]
    assert last_60["occurrence_count"] == 3
    assert last_60["avg_cost_with_llm"] == pytest.approx(7.0 / 3)
    assert (last_60["spend_last_30d_usd"], last_60["spend_prior_30d_usd"]) == (3.0, 4.0)
    assert last_60["trend"] == pytest.approx(-0.25)
    # --until closes the window: the year-old run alone
    old = patterns(config_path, capsys, "--since", started(400)[:10], "--until", started(100)[:10])
    assert old["test:pytest:backend"]["occurrence_count"] == 1
    assert old["test:pytest:backend"]["avg_cost_with_llm"] == pytest.approx(8.0)
    # the window's figures are the database's, which are the files'
    assert main(["verify", "--files", "--config", str(config_path), "--rounds", "1"]) == 0


def test_a_window_edge_that_is_not_a_date_names_the_option_and_the_fix(config_path, capsys):
    assert main(["patterns", "--config", str(config_path), "--since", "last week"]) == 2
    assert "--since 'last week': give a number of days (30d) or a date" in capsys.readouterr().err
