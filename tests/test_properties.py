"""Property: for any sequence of workflow versions, applied in any order, in any batches and
with repeats, the stored statistics equal a from-scratch recomputation."""

import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adw_patternd.core.model import AgentPart, CommandPart, Workflow
from adw_patternd.core.rules import detect
from adw_patternd.store.db import wrap_sqlite
from adw_patternd.store.ledger import Ledger
from adw_patternd.store.rows import Change
from adw_patternd.store.verify import verify

REQUESTS = ["Run backend tests with pytest", "Typecheck the frontend with tsc", "Build the project",
            "Show git status", "Add a feature", None]
TEMPLATES = ["adw_test_iso", "adw_sdlc_iso", "adw_review_iso", None]
ERRORS = [None, "2 tests failed", "eslint: 3 problems", "type error in x.ts"]

# Agents as real ADWs have them: git plumbing agents (layer 0) and big agents whose Bash calls
# carry command patterns (layer 4), so links carry attributed amounts, not only whole workflows.
commands = st.builds(CommandPart, st.sampled_from(["git:diff:summary", "build:typecheck:all", "test:pytest:backend",
                                                   "git:commit:all"]),
                     st.integers(0, 10**10), st.integers(0, 10**6), st.integers(1, 30))
agents = st.builds(
    AgentPart, st.sampled_from(["branch_generator", "sdlc_planner_committer", "sdlc_implementor", "pr_creator",
                                "e2e_test_runner_0_1"]),
    st.integers(0, 3), st.integers(0, 1), st.integers(0, 10**7), st.integers(0, 10**10), st.integers(0, 10**9),
    st.integers(0, 10**7), st.integers(0, 2), st.integers(0, 2),
    st.lists(commands, max_size=3, unique_by=lambda c: c.signature).map(tuple))

versions = st.builds(
    lambda wid, nl, template, err, tokens, nanos, duration, errors, retries, seen, parts: Workflow(
        workflow_id=f"r/{wid}", root_name="r", adw_id=wid, nl_input=nl, request=nl, workflow_template=template,
        error_message=err, total_tokens=tokens, cost_nanos=nanos, duration_seconds=duration, error_count=errors,
        retry_count=retries, seen_us=seen, agents=parts),
    st.sampled_from(["a", "b", "c", "d", "e"]), st.sampled_from(REQUESTS), st.sampled_from(TEMPLATES),
    st.sampled_from(ERRORS), st.integers(0, 10**9), st.integers(0, 10**13), st.integers(0, 10**6),
    st.integers(0, 20), st.integers(0, 20), st.none() | st.integers(1_700_000_000_000_000, 1_800_000_000_000_000),
    st.lists(agents, max_size=4, unique_by=lambda a: a.name).map(tuple))


def change(wf: Workflow) -> Change:
    found = detect(wf)
    return Change(wf, found.occurrences, found.characteristics)


def facts(conn):
    patterns = conn.execute("SELECT pattern_signature, occurrence_count, sum_units, sum_estimated_nanos, "
                            "avg_tokens_with_llm, avg_cost_with_llm, "
                            "avg_tokens_with_tool, avg_cost_with_tool, potential_monthly_savings, confidence_score, "
                            "first_seen, last_seen, typical_input_pattern FROM operation_patterns "
                            "WHERE occurrence_count > 0 ORDER BY pattern_signature").fetchall()
    links = conn.execute("SELECT p.pattern_signature, o.workflow_id, o.layer, o.tokens, o.cost_nanos, o.units, "
                         "o.estimated_nanos FROM pattern_occurrences o "
                         "JOIN operation_patterns p ON p.id = o.pattern_id ORDER BY 1, 2").fetchall()
    return patterns, links


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(versions, min_size=1, max_size=25), st.lists(st.integers(1, 4), min_size=1, max_size=25))
def test_any_sequence_of_versions_equals_a_recomputation(sequence, batch_sizes):
    live = sqlite3.connect(":memory:", isolation_level=None)
    ledger = Ledger.open(wrap_sqlite(live))
    i = 0
    for size in batch_sizes * 25:
        if i >= len(sequence):
            break
        batch = {wf.workflow_id: wf for wf in sequence[i : i + size]}  # a batch holds one version per workflow
        ledger.apply([change(wf) for wf in batch.values()])
        i += size
    assert verify(ledger) == []
    # From scratch: only the last version of each workflow, applied once.
    final = {wf.workflow_id: wf for wf in sequence}
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    Ledger.open(wrap_sqlite(fresh)).apply([change(wf) for wf in final.values()])
    assert facts(live) == facts(fresh)
