"""Immutable values that flow through the engine: parsed workflows, agent output summaries
and detected patterns. Nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AgentSummary:
    """What one agent's raw_output.jsonl has produced so far, up to ``offset``.

    The file identity and offset let the next read start where this one stopped; the
    totals are stored in the same transaction as the offset, so a crash never loses or
    doubles a line.
    """

    name: str
    device: int = 0
    inode: int = 0
    offset: int = 0
    results: int = 0  # result lines seen: each one is one run of the agent
    tokens: int = 0
    cost_nanos: int = 0
    duration_ms: int = 0
    error_results: int = 0
    last_error: str | None = None
    model: str | None = None
    tail: str = ""  # hex of the bytes just before ``offset``: tells an append from a rewrite

    @property
    def retries(self) -> int:
        return max(0, self.results - 1)


@dataclass(frozen=True)
class Workflow:
    """One workflow run, as derived from its files (or from a reference-style dict).

    Costs are kept as integer nano-dollars so that sums can be added and subtracted any
    number of times and still equal a from-scratch recomputation.
    """

    workflow_id: str
    root_name: str
    adw_id: str
    nl_input: str | None = None
    request: str | None = None  # nl_input, or the branch/plan slug when nl_input is empty
    workflow_template: str | None = None
    issue_class: str | None = None
    issue_number: str | None = None
    model: str | None = None
    status: str = "running"
    start_time: str | None = None  # normalised ISO 8601, UTC
    end_time: str | None = None
    seen_us: int | None = None  # start (else end) time in epoch microseconds
    duration_seconds: int = 0
    total_tokens: int = 0
    cost_nanos: int = 0
    error_count: int = 0
    retry_count: int = 0
    error_message: str | None = None

    @property
    def actual_cost_total(self) -> float:
        return self.cost_nanos / 1e9


@dataclass(frozen=True)
class Contribution:
    """The part of a workflow that enters a pattern's running sums."""

    tokens: int = 0
    cost_nanos: int = 0
    duration: int = 0  # whole seconds; 0 means unknown and is left out of the variance
    errors: int = 0
    retries: int = 0

    @classmethod
    def of(cls, wf: Workflow) -> "Contribution":
        return cls(wf.total_tokens, wf.cost_nanos, wf.duration_seconds, wf.error_count, wf.retry_count)


@dataclass(frozen=True)
class PatternSums:
    """Running sums over the workflows linked to one pattern: enough to derive every statistic."""

    count: int = 0
    tokens: int = 0
    cost_nanos: int = 0
    duration_n: int = 0
    duration_sum: int = 0
    duration_sumsq: int = 0
    errors: int = 0
    retries: int = 0

    def plus(self, c: Contribution, sign: int = 1) -> "PatternSums":
        d = c.duration if c.duration > 0 else 0
        return PatternSums(
            count=self.count + sign,
            tokens=self.tokens + sign * c.tokens,
            cost_nanos=self.cost_nanos + sign * c.cost_nanos,
            duration_n=self.duration_n + sign * (1 if d else 0),
            duration_sum=self.duration_sum + sign * d,
            duration_sumsq=self.duration_sumsq + sign * d * d,
            errors=self.errors + sign * c.errors,
            retries=self.retries + sign * c.retries,
        )


@dataclass(frozen=True)
class PatternStats:
    """The statistics shown to people, derived from PatternSums and the seen-time span."""

    occurrence_count: int
    avg_tokens_with_llm: int
    avg_cost_with_llm: float
    avg_tokens_with_tool: int
    avg_cost_with_tool: float
    potential_monthly_savings: float
    confidence_score: float


@dataclass(frozen=True)
class Detection:
    """What detection found in one workflow: signatures in layer order, and its characteristics."""

    signatures: tuple[str, ...]
    characteristics: dict = field(default_factory=dict, compare=False, hash=False)
