"""`show` (the evidence behind a pattern), `review` (an append-only trail of decisions) and
`patterns --status/--sort impact`, on trees in the real layouts, in both stores. Every
figure is checked against what the files say (`verify --files`) and against what the
synthetic tree wrote."""

import csv
import io
import json
import sqlite3
from collections import Counter

import pytest

from adw_patternd.cli import main
from adw_patternd.core.commands import BUILTIN_COMMAND_RULES, call_signatures
from adw_patternd.core.rules import agent_role
from adw_patternd.synth.trees import make_real_tree
from helpers import connect, query, write_config
from test_sync import make_workflow, sync


def run_json(capsys, *args) -> object:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def patterns_by_signature(capsys, config, *args) -> dict:
    return {p["pattern_signature"]: p for p in run_json(capsys, "patterns", "--config", str(config), *args)}


def files_agree(config) -> None:
    assert main(["verify", "--files", "--config", str(config), "--rounds", "1"]) == 0


@pytest.fixture
def real_tree(root, config_path):
    written = make_real_tree(str(root), 40, seed=12)
    assert sync(config_path) == 0
    return written


def calls_on_disk(written, signature: str) -> tuple[Counter, Counter]:
    """(command line -> calls, agent -> calls) of ``signature``'s Bash calls in the runs the
    files hold, outside role agents: what the synthetic tree wrote."""
    lines, agents = Counter(), Counter()
    for w in written:
        for agent, plans in w.agents.items():
            if agent_role(agent) is not None:
                continue
            for turn in plans[-1].turns:
                for cmd in turn.bash:
                    if signature in call_signatures(cmd, BUILTIN_COMMAND_RULES):
                        lines[cmd.split("\n")[0] + (" …" if "\n" in cmd else "")] += 1
                        agents[agent] += 1
    return lines, agents


def test_show_gives_a_command_patterns_lines_agents_workflows_and_weeks(real_tree, config_path, capsys):
    everything = patterns_by_signature(capsys, config_path)
    sig = "build:typecheck:all"
    d = run_json(capsys, "show", sig, "--config", str(config_path), "--limit", "1000")
    st = d["statistics"]
    row = everything[sig]
    assert (st["occurrence_count"], st["runs_or_calls"], st["potential_monthly_savings"]) == (
        row["occurrence_count"], row["sum_units"], row["potential_monthly_savings"])
    assert st["attributed_usd"] == pytest.approx(row["sum_cost_nanos"] / 1e9, abs=1e-9)
    conf = d["confidence"]
    assert conf["frequency"] + conf["consistency"] + conf["success"] == conf["score"] == row["confidence_score"]

    # The command lines and agents are what the tree's runs called, call for call (also in
    # workflows whose request names the pattern: a whole-workflow link shows them too).
    lines, agents = calls_on_disk(real_tree, sig)
    assert {e["item"]: e["count"] for e in d["command_lines"]} == dict(lines)
    assert {e["item"]: e["count"] for e in d["agents"]} == dict(agents)

    # Every workflow behind it, newest first, whose attributed costs add up to the pattern's.
    wfs = d["workflows"]
    assert len(wfs) == st["occurrence_count"] == d["workflows_shown"]
    starts = [w["start_time"] for w in wfs]
    assert starts == sorted(starts, reverse=True)
    assert sum(round(w["attributed_usd"] * 1e9) for w in wfs) == row["sum_cost_nanos"]
    assert sum(w["units"] for w in wfs) == st["runs_or_calls"]
    # Calls only: on these trees no request is nl_input, so a request naming the pattern counts
    # only where an agent's command did it (issue 18, item 6); the others are mentions.
    assert {w["layer"] for w in wfs} == {"command"}
    assert not {m["workflow_id"] for m in d["mentions"]} & {w["workflow_id"] for w in wfs}
    assert {w["time_source"] for w in wfs} <= {"state", "execution_log", "mtime"}
    # --limit keeps the newest
    assert [w["workflow_id"] for w in run_json(capsys, "show", sig, "--config", str(config_path),
                                              "--limit", "3")["workflows"]] == [w["workflow_id"] for w in wfs[:3]]

    # 12 weeks, Monday to Monday; the tree's mtimes are today, so this week holds those workflows.
    weeks = d["weeks"]
    assert len(weeks) == 12 and weeks == sorted(weeks, key=lambda w: w["week"])
    recent = [w for w in wfs if w["start_time"] >= weeks[0]["week"]]
    assert sum(w["workflows"] for w in weeks) == len(recent)
    assert sum(round(w["spend_usd"] * 1e9) for w in weeks) == sum(round(w["attributed_usd"] * 1e9) for w in recent)
    assert d["review"] == {"state": "pending", "recheck": None, "history": []}
    files_agree(config_path)


def test_show_gives_a_role_patterns_agents_and_a_whole_workflow_patterns_requests(real_tree, config_path, capsys):
    d = run_json(capsys, "show", "git:branch:create", "--config", str(config_path))
    expected = sum(1 for w in real_tree if "branch_generator" in w.agents)
    assert expected and d["agents"] == [{"item": "branch_generator", "count": expected, "workflows": expected}]
    assert d["command_lines"] == []  # a role's commands are the role's
    assert {w["layer"] for w in d["workflows"]} == {"agent"}

    # A whole-workflow pattern: its workflows' requests are their issue titles or prompts.
    titles = {w.adw_id: w.title for w in real_tree}
    for p in run_json(capsys, "patterns", "--config", str(config_path)):
        d = run_json(capsys, "show", p["pattern_signature"], "--config", str(config_path), "--limit", "1000")
        for w in d["workflows"]:
            if w["layer"] == "workflow" and w["request_source"] in ("issue_title", "prompt", "task_description"):
                assert w["request"] == titles[w["adw_id"]]


def test_show_names_an_unknown_pattern_and_where_to_find_the_right_one(config_path, capsys):
    assert main(["show", "test:nothing:here", "--config", str(config_path)]) == 2
    assert "no pattern 'test:nothing:here'" in capsys.readouterr().err


def test_reviews_are_an_append_only_trail_whose_latest_decision_is_the_state(root, config_path, database, capsys):
    for n in range(3):
        make_workflow(root, f"aaaa000{n}", nl="Run backend tests with pytest", cost=1.0)
    make_workflow(root, "bbbb0001", nl="Typecheck the frontend with tsc", cost=2.0)
    assert sync(config_path) == 0
    sig = "test:pytest:backend"
    first = run_json(capsys, "review", sig, "approve", "--note", "pytest is deterministic", "--by", "alice",
                     "--config", str(config_path))
    assert (first["state"], first["by"], first["occurrences_then"]) == ("approved", "alice", 3)
    second = run_json(capsys, "review", sig, "defer", "--config", str(config_path))  # by the OS user
    import getpass

    assert second["by"] == getpass.getuser() and second["note"] is None

    d = run_json(capsys, "show", sig, "--config", str(config_path))
    assert d["review"]["state"] == "deferred"
    assert [(r["state"], r["by"], r["note"]) for r in d["review"]["history"]] == [
        ("approved", "alice", "pytest is deterministic"), ("deferred", getpass.getuser(), None)]
    assert set(patterns_by_signature(capsys, config_path, "--status", "deferred")) == {sig}
    assert set(patterns_by_signature(capsys, config_path, "--status", "pending")) == {"build:typecheck:frontend"}
    assert patterns_by_signature(capsys, config_path, "--status", "approved") == {}
    # the reference's own column follows the latest decision
    assert query(database, "SELECT automation_status FROM operation_patterns WHERE pattern_signature = ?",
                 (sig,)) == [("deferred",)]

    # Append-only: the database itself refuses to change or remove a decision.
    conn = connect(database)
    try:
        for statement in ("UPDATE pattern_reviews SET decision = 'approved'", "DELETE FROM pattern_reviews"):
            with pytest.raises((sqlite3.DatabaseError, Exception), match="append-only"):
                conn.execute(statement)
            conn.rollback()
    finally:
        conn.close()
    assert len(query(database, "SELECT id FROM pattern_reviews")) == 2

    # A pattern nobody has seen cannot be decided on; a bad decision is refused by argparse.
    assert main(["review", "test:nothing:here", "approve", "--config", str(config_path)]) == 2
    assert "no pattern 'test:nothing:here'" in capsys.readouterr().err
    files_agree(config_path)


def test_a_pattern_whose_savings_doubled_after_a_decision_is_flagged(root, config_path, capsys):
    for n in range(2):
        make_workflow(root, f"aaaa000{n}", nl="Run backend tests with pytest", cost=1.0)
    assert sync(config_path) == 0
    sig = "test:pytest:backend"
    assert main(["review", sig, "reject", "--note", "too rare", "--config", str(config_path)]) == 0
    assert patterns_by_signature(capsys, config_path)[sig]["recheck"] is None
    for n in range(2, 4):  # two more runs of the same month: occurrences and savings double
        make_workflow(root, f"aaaa000{n}", nl="Run backend tests with pytest", cost=1.0)
    assert sync(config_path) == 0
    row = patterns_by_signature(capsys, config_path)[sig]
    assert row["review_state"] == "rejected"
    assert "when rejected, now" in row["recheck"] and "2 occurrences when rejected, now 4" in row["recheck"]
    assert set(patterns_by_signature(capsys, config_path, "--status", "recheck")) == {sig}
    capsys.readouterr()
    assert main(["show", sig, "--config", str(config_path)]) == 0
    assert "another look: savings $1.90/month when rejected, now $3.80" in capsys.readouterr().out


def test_sort_by_impact_ranks_pending_patterns_by_confidence_occurrences_and_savings(real_tree, config_path, capsys):
    rows = run_json(capsys, "patterns", "--config", str(config_path), "--status", "pending", "--sort", "impact")
    assert len(rows) >= 5
    impact = [r["confidence_score"] / 100 * r["occurrence_count"] * r["potential_monthly_savings"] for r in rows]
    assert [r["impact"] for r in rows] == pytest.approx(impact)
    assert impact == sorted(impact, reverse=True)
    top = run_json(capsys, "patterns", "--config", str(config_path), "--sort", "impact", "--limit", "2")
    assert [r["pattern_signature"] for r in top] == [r["pattern_signature"] for r in rows[:2]]


def test_show_csv_is_safe_to_open_in_a_spreadsheet(root, config_path, capsys):
    make_workflow(root, "aaaa0001", nl="=cmd|' /C calc'!A0 run backend tests with pytest", cost=1.0)
    assert sync(config_path) == 0
    capsys.readouterr()
    assert main(["show", "test:pytest:backend", "--csv", "--config", str(config_path)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["request"] == "'=cmd|' /C calc'!A0 run backend tests with pytest"
    assert rows[0]["workflow_id"] == "main/aaaa0001"


def test_report_json_says_what_status_patterns_and_show_say_in_both_stores(real_tree, config_path, capsys):
    data = run_json(capsys, "report", "--config", str(config_path), "--top", "3")
    status = run_json(capsys, "status", "--config", str(config_path))
    rows = run_json(capsys, "patterns", "--config", str(config_path))
    totals = data["totals"]
    assert (totals["workflows"], totals["patterns"]) == (status["workflows"], len(rows)) == (40, len(rows))
    assert totals["spend_usd"] == pytest.approx(status["spend_usd"], abs=1e-9)
    assert totals["estimated_usd"] == pytest.approx(status["estimated_usd"], abs=1e-9)
    # each dollar once: no more than the spend, and at least the largest whole-workflow pattern
    assert max(r["sum_cost_nanos"] for r in rows) / 1e9 <= totals["attributed_usd"] <= totals["spend_usd"]
    assert [p["pattern_signature"] for p in data["patterns"]] == [r["pattern_signature"] for r in rows]
    assert [p["potential_monthly_savings"] for p in data["patterns"]] == [r["potential_monthly_savings"] for r in rows]
    for section in data["sections"]:
        alone = run_json(capsys, "show", section["pattern_signature"], "--config", str(config_path), "--limit", "10")
        assert section == alone
    assert len(data["sections"]) == 3 and sum(w["workflows"] for w in data["weeks"]) <= 40
    files_agree(config_path)


def test_verify_finds_and_repairs_evidence_whose_link_is_gone(real_tree, config_path, database, capsys):
    conn = connect(database)
    try:
        pid = conn.execute("SELECT id FROM operation_patterns WHERE pattern_signature = 'git:branch:create'").fetchone()[0]
        conn.execute(f"DELETE FROM pattern_occurrences WHERE pattern_id = {int(pid)}")  # evidence left behind
        if not database.startswith("postgresql://"):
            conn.commit()
    finally:
        conn.close()
    capsys.readouterr()
    assert main(["verify", "--config", str(config_path)]) == 1
    assert "pattern_evidence rows belong to no pattern_occurrences row" in capsys.readouterr().out
    assert main(["verify", "--repair", "--config", str(config_path)]) == 0
    assert query(database, "SELECT COUNT(*) FROM pattern_evidence WHERE pattern_id = ?", (pid,)) == [(0,)]


def test_weeks_end_where_the_data_ends(tmp_path, capsys):
    """A history that ended months ago shows its own last 12 weeks, not 12 empty ones up to
    today; --until moves the end; both say which (issue 18, item 8)."""
    from test_sync import make_workflow

    root = tmp_path / "agents"
    for adw_id, day in (("w0000001", "2026-03-02"), ("w0000002", "2026-03-04"), ("w0000003", "2026-02-03")):
        make_workflow(root, adw_id, start_time=f"{day}T10:00:00Z", end_time=f"{day}T10:05:00Z")
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"))
    assert main(["sync", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["show", "test:pytest:backend", "--json", "--config", str(cfg)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["weeks_end"], d["weeks_end_from"]) == ("2026-03-02", "the pattern's newest workflow")
    assert [(w["week"], w["workflows"]) for w in d["weeks"] if w["workflows"]] == [("2026-02-02", 1), ("2026-03-02", 2)]
    assert main(["show", "test:pytest:backend", "--until", "2026-02-09", "--json", "--config", str(cfg)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["weeks_end"], d["weeks_end_from"]) == ("2026-02-02", "--until")
    assert sum(w["workflows"] for w in d["weeks"]) == 1
    assert main(["show", "test:pytest:backend", "--config", str(cfg)]) == 0
    assert "12 weeks to the week of 2026-03-02, that of the pattern's newest workflow" in capsys.readouterr().out
    assert main(["report", "--json", "--config", str(cfg)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["weeks_end"], r["weeks_end_from"]) == ("2026-03-02", "the newest workflow with spend")
    assert r["sections"][0]["weeks_end"] == "2026-03-02"
    assert sum(w["workflows"] for w in r["weeks"]) == 3


def test_weeks_end_at_their_own_data_not_at_a_free_workflow_dated_today(tmp_path, capsys):
    """Issue 28, item 5: a $0 workflow dated by its files' times (today) is the newest one
    stored; a pattern last seen months before still shows its own last 12 weeks, and the
    report's chart the weeks of the spend."""
    from test_sync import make_workflow

    root = tmp_path / "agents"
    for adw_id, day in (("w0000001", "2026-03-02"), ("w0000002", "2026-03-04")):
        make_workflow(root, adw_id, start_time=f"{day}T10:00:00Z", end_time=f"{day}T10:05:00Z")
    free = root / "w0000009"  # no state, no run yet: $0, dated by its files (today)
    (free / "planner").mkdir(parents=True)
    (free / "planner" / "raw_output.jsonl").write_text('{"type":"system","subtype":"init","session_id":"s9"}\n')
    cfg = write_config(tmp_path, {"main": root}, str(tmp_path / "p.db"))
    assert main(["sync", "--config", str(cfg)]) == 0
    today_week = query(str(tmp_path / "p.db"), "SELECT MAX(seen_us) FROM workflow_history")[0][0]
    assert today_week > 1_790_000_000_000_000  # the free workflow is the newest stored
    capsys.readouterr()
    assert main(["show", "test:pytest:backend", "--json", "--config", str(cfg)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["weeks_end"], d["weeks_end_from"]) == ("2026-03-02", "the pattern's newest workflow")
    assert d["weeks"][-1]["workflows"] == 2
    assert main(["report", "--json", "--config", str(cfg)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["weeks_end"], r["weeks_end_from"]) == ("2026-03-02", "the newest workflow with spend")
    assert r["weeks"][-1]["spend_usd"] == 1.0 and r["sections"][0]["weeks_end"] == "2026-03-02"
