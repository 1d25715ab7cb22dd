"""The ledger's rows as values: which columns say what, how a value becomes a row and back,
and what applying a change did (Applied). What a read gives the ledger (Prior, Change) is
in core/change.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..core.change import Change, CrossFileFacts, Prior  # noqa: F401 (the values the ledger takes)
from ..core.model import Contribution, Occurrence, PatternSums, Workflow

# A pattern's running sums, in PatternSums' field order.
SUM_COLUMNS = ("occurrence_count", "sum_tokens", "sum_cost_nanos", "duration_n", "duration_sum",
               "duration_sumsq", "sum_errors", "sum_retries", "sum_units", "sum_estimated_nanos")
DERIVED_COLUMNS = ("avg_tokens_with_llm", "avg_cost_with_llm", "avg_tokens_with_tool", "avg_cost_with_tool",
                   "potential_monthly_savings", "confidence_score", "first_seen", "last_seen",
                   "first_seen_us", "last_seen_us", "typical_input_pattern")
# What a workflow_history row says about its workflow (all but its bookkeeping).
WORKFLOW_COLUMNS = ("root_name", "adw_id", "nl_input", "workflow_template", "issue_class", "issue_number", "model",
                    "status", "start_time", "end_time", "seen_us", "duration_seconds", "total_tokens", "cost_nanos",
                    "actual_cost_total", "error_count", "retry_count", "error_message", "request", "request_source",
                    "time_source", "estimated_nanos", "unfinished_runs", "overwritten_runs", "overwritten_nanos",
                    "attributed_nanos", "session_runs")
# What one link (pattern, workflow) adds to its pattern's sums, stored with the link: the
# whole workflow's totals for layers 1-3, an agent's runs or a command's calls for 0 and 4.
LINK_COLUMNS = ("tokens", "cost_nanos", "duration_seconds", "error_count", "retry_count", "units", "estimated_nanos")
LINK = ", ".join(LINK_COLUMNS)


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def now_us() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1_000_000)


def us_to_iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def workflow_values(wf: Workflow, attributed: int) -> tuple:
    """A workflow as the values of WORKFLOW_COLUMNS."""
    return (wf.root_name, wf.adw_id, wf.nl_input, wf.workflow_template, wf.issue_class, wf.issue_number, wf.model,
            wf.status, wf.start_time, wf.end_time, wf.seen_us, wf.duration_seconds, wf.total_tokens, wf.cost_nanos,
            wf.actual_cost_total, wf.error_count, wf.retry_count, wf.error_message, wf.request, wf.request_source,
            wf.time_source, wf.estimated_nanos, wf.unfinished_runs, wf.overwritten_runs, wf.overwritten_nanos,
            attributed, wf.session_runs)


def contribution_of(row) -> Contribution:
    """A link's LINK_COLUMNS values as a Contribution."""
    return Contribution(*(int(v or 0) for v in row))


def link_values(c: Contribution) -> tuple:
    return (c.tokens, c.cost_nanos, c.duration, c.errors, c.retries, c.units, c.estimated_nanos)


def sums_of(row) -> PatternSums:
    """A pattern's SUM_COLUMNS values as PatternSums."""
    return PatternSums(*(int(v or 0) for v in row))


def evidence_rows(workflow_id: str, links: dict[int, Occurrence]) -> list[tuple]:
    return [(pid, workflow_id, kind, item, n) for pid, o in links.items() for kind, item, n in o.evidence]


def same_value(a, b) -> bool:
    """Stored and recomputed values compare equal (PostgreSQL may return a float as Decimal)."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    return a == b


@dataclass(frozen=True)
class Applied:
    workflow_id: str
    pattern_ids: tuple[int, ...]
    new_patterns: tuple[str, ...]
    was_new: bool
    conflict: bool = False
    unchanged: bool = False  # read again and found the same: nothing but read positions written
    claimed_by: str | None = None  # an own session that an ADW workflow claims: not stored
    read_again: tuple[str, ...] = ()  # workflows that lost a response to this one's copy: read them again
