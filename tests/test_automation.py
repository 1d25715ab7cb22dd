"""Closing the loop (issue 19): a pattern automated on a day, the savings measured since,
and the regressions (an agent still doing it after that day), warned about once each.

The tree: workflows in the five layouts, timed by their sessions (a session store), twenty
to two days before the automation day and one to eight days after. Its pattern is
classify:issue:all, whose cost in a workflow is exactly its issue_classifier agent's
reported run cost, so the expected figures are worked out here from what was written."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adw_patternd.cli import main
from adw_patternd.synth.trees import write_layout
from adw_patternd.synth.sessions import write_adw_sessions
from daemon_proc import DaemonProcess
from helpers import query, wait_for, write_config

SIG = "classify:issue:all"
TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
DAY_ON = TODAY - timedelta(days=10)  # the automation day: ten days of history since
BEFORE = [("classic", 20), ("isolated", 17), ("phase", 15), ("summary", 12), ("bare", 9), ("classic", 6),
          ("isolated", 4), ("summary", 2)]  # (layout, days before DAY_ON)
AFTER = [("phase", 1), ("summary", 2), ("bare", 3), ("classic", 4), ("phase", 5), ("isolated", 6), ("bare", 8)]


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def tree(tmp_path):
    rng = random.Random(19)
    root, store = tmp_path / "agents", tmp_path / "projects"
    written = []
    for layout, days in BEFORE:
        written.append((write_layout(str(root), layout, f"{rng.getrandbits(32):08x}", rng),
                        DAY_ON - timedelta(days=days, hours=-9)))
    for layout, days in AFTER:
        written.append((write_layout(str(root), layout, f"{rng.getrandbits(32):08x}", rng),
                        DAY_ON + timedelta(days=days, hours=9)))
    starts = {}
    for w, when in written:
        sessions, _ = write_adw_sessions(str(store), w, when, rng)
        starts[w.adw_id] = min(_iso(s.first) for s in sessions)
    return root, store, [w for w, _ in written], starts


def expected(workflows, starts) -> dict:
    """The figures worked out from what was written."""
    on = DAY_ON
    cost = {w.adw_id: (w.agents["issue_classifier"][-1].cost if "issue_classifier" in w.agents else 0.0)
            for w in workflows}
    before = [w.adw_id for w in workflows if starts[w.adw_id] < on]
    since = [w.adw_id for w in workflows if starts[w.adw_id] >= on]
    before_days = (on - min(starts.values())).total_seconds() / 86400
    since_days = (datetime.now(timezone.utc) - on).total_seconds() / 86400
    rate_before = sum(cost[a] for a in before) / len(before)
    rate_since = sum(cost[a] for a in since) / len(since)
    return {"rate_before": rate_before, "rate_since": rate_since, "before_days": before_days,
            "realized": (rate_before - rate_since) * len(since) / since_days * 30,
            "regressions": sorted(a for a in since if cost[a] > 0)}


def test_realized_savings_and_regressions_worked_by_hand(tmp_path, tree, database, capsys):
    root, store, workflows, starts = tree
    want = expected(workflows, starts)
    assert len(want["regressions"]) == 2, "the tree must hold two regressions"
    metrics = tmp_path / "m.prom"
    cfg = write_config(tmp_path, {"adw": root}, database, claude_projects=[{"path": str(store)}],
                       debounce_ms=100, reconcile_interval_s=0, metrics={"textfile": str(metrics), "interval_s": 1})
    assert main(["sync", "--config", str(cfg)]) == 0
    assert main(["review", SIG, "automated", "--on", DAY_ON.date().isoformat(), "--note", "label lookup",
                 "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["patterns", "--status", "automated", "--json", "--config", str(cfg)]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["automated_on"] == DAY_ON.date().isoformat() and row["regressions"] == 2
    assert row["spend_per_workflow_before_usd"] == pytest.approx(want["rate_before"], abs=1e-9)
    assert row["spend_per_workflow_since_usd"] == pytest.approx(want["rate_since"], abs=1e-9)
    assert row["window_before_days"] == pytest.approx(want["before_days"], abs=0.01)
    assert row["realized_savings_usd_month"] == pytest.approx(want["realized"], rel=1e-3)  # "since" runs to now
    assert row["predicted_savings_usd_month"] > 0 and not row["too_early"]
    assert main(["patterns", "--status", "automated", "--csv", "--config", str(cfg)]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert {"automated_on", "spend_per_workflow_before_usd", "spend_per_workflow_since_usd", "window_before_days",
            "window_since_days", "realized_savings_usd_month", "predicted_savings_usd_month",
            "regressions"} <= set(header)
    assert main(["show", SIG, "--json", "--config", str(cfg)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(r["workflow_id"] for r in shown["regressions"]) == [f"adw/{a}" for a in want["regressions"]]
    assert all(r["agents"] == ["issue_classifier"] for r in shown["regressions"])

    # A running daemon warns once per regression, counts them in the metrics file...
    d = DaemonProcess(cfg)
    try:
        wait_for(lambda: d.log().count("regression: ") == 2, what="two regression warnings")
        for adw_id in want["regressions"]:
            assert re.search(rf"regression: adw/{adw_id} did {SIG}, automated on {DAY_ON.date()} "
                             r"\(agent issue_classifier; command -\)", d.log())

        def families():
            if not metrics.exists():
                return None
            return {(s.name, s.labels.get("signature")): s.value
                    for f in text_string_to_metric_families(metrics.read_text()) for s in f.samples}

        wait_for(lambda: (families() or {}).get(("adw_patternd_regressions_total", SIG)) == 2, what="the counter")
        realized = families()[("adw_patternd_realized_savings_usd_month", SIG)]
        assert realized == pytest.approx(want["realized"], rel=1e-3)
    finally:
        assert d.stop() == 0
    # ... and not again after a restart and a sync.
    d = DaemonProcess(cfg)
    try:
        wait_for(lambda: d.log().count("catch-up:") == 2, what="the second daemon's catch-up")  # one log file
        assert main(["sync", "--config", str(cfg)]) == 0
        assert d.log().count("regression: ") == 2
    finally:
        assert d.stop() == 0
    assert main(["verify", "--files", "--config", str(cfg)]) == 0
    for sql in ("UPDATE pattern_reviews SET note = 'x'", "DELETE FROM pattern_reviews"):
        with pytest.raises(Exception, match="append-only"):
            query(database, sql)


def test_automation_mistakes_are_one_line_and_write_nothing(tmp_path, tree, capsys):
    root, store, _workflows, _starts = tree
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"adw": root}, database, claude_projects=[{"path": str(store)}])
    assert main(["sync", "--config", str(cfg)]) == 0
    rows = lambda: query(database, "SELECT COUNT(*) FROM pattern_reviews")[0][0]  # noqa: E731
    tomorrow = (TODAY + timedelta(days=1)).date().isoformat()
    for args, problem in (
        ([SIG, "automated", "--on", tomorrow], "is in the future"),
        ([SIG, "automated", "--on", "last tuesday"], "is not a date; give the UTC day the tool took over"),
        (["lint:stylelint:all", "automated"], "no pattern 'lint:stylelint:all' in the database"),
        ([SIG, "approve", "--on", "2026-01-01"], "--on and --force go with `automated` only"),
    ):
        capsys.readouterr()
        assert main(["review", *args, "--config", str(cfg)]) == 2
        err = capsys.readouterr().err.strip()
        assert problem in err and len(err.splitlines()) == 1, err
    assert rows() == 0
    assert main(["review", SIG, "automated", "--on", DAY_ON.date().isoformat(), "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["review", SIG, "automated", "--on", (DAY_ON - timedelta(days=1)).date().isoformat(),
                 "--config", str(cfg)]) == 2
    assert f"already automated on {DAY_ON.date()}; pass --force" in capsys.readouterr().err
    assert rows() == 1
    assert main(["review", "lint:stylelint:all", "automated", "--force", "--config", str(cfg)]) == 0
    assert "never seen in this database; recorded as automated ahead of time" in capsys.readouterr().err
    assert rows() == 2


def test_config_declares_an_automation(tmp_path, tree, capsys):
    root, store, _workflows, _starts = tree
    cfg = write_config(tmp_path, {"adw": root}, str(tmp_path / "p.db"), claude_projects=[{"path": str(store)}],
                       automated=[{"signature": SIG, "date": DAY_ON.date().isoformat(), "note": "labels"}])
    assert main(["sync", "--config", str(cfg)]) == 0
    assert f"{SIG} recorded as automated, as config.yaml declares" in capsys.readouterr().out
    assert main(["sync", "--config", str(cfg)]) == 0
    assert "recorded as automated" not in capsys.readouterr().out  # once
    assert main(["patterns", "--status", "automated", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert SIG in out and DAY_ON.date().isoformat() in out


@pytest.mark.parametrize("entry, problem", [({"date": "soon"}, "is not a date"),
                                            ({"date": "2999-01-01"}, "is in the future"),
                                            ({True: "2026-11-10"}, "write the day as `date:`")])
def test_a_bad_declared_automation_is_one_line(tmp_path, root, capsys, entry, problem):
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"), automated=[{"signature": SIG, **entry}])
    assert main(["check-config", "--config", str(cfg)]) == 2
    assert problem in capsys.readouterr().err


def test_show_says_when_workflows_are_dated_by_file_mtimes(tmp_path, tree, capsys):
    """Without the session store most of these layouts have no recorded time: their start is
    a file mtime (today), so they fall after the day; show says that this is a guess."""
    root, _store, _workflows, _starts = tree
    cfg = write_config(tmp_path, {"adw": root}, str(tmp_path / "p.db"))
    assert main(["sync", "--config", str(cfg)]) == 0
    assert main(["review", SIG, "automated", "--on", DAY_ON.date().isoformat(), "--config", str(cfg)]) == 0
    mtime_dated = query(str(tmp_path / "p.db"), "SELECT COUNT(*) FROM workflow_history WHERE time_source = 'mtime'")
    capsys.readouterr()
    assert main(["show", SIG, "--config", str(cfg)]) == 0
    assert (f"{mtime_dated[0][0]} of these workflows are dated by file mtimes (no recorded time): they are put "
            "before or after the day by that guess") in capsys.readouterr().out
    assert mtime_dated[0][0] > 0
