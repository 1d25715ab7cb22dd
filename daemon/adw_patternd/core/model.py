"""Immutable values that flow through the engine: parsed workflows, what their agents
spent, and detected patterns. Nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CommandPart:
    """What one signature's Bash calls cost inside one agent (layer 4): a lower bound."""

    signature: str
    cost_nanos: int
    tokens: int
    calls: int
    lines: tuple[tuple[str, int], ...] = ()  # (command line, calls); "" gathers the rarest


@dataclass(frozen=True)
class AgentPart:
    """What one agent folder spent: its finished runs (reported by their result lines) and
    its unfinished runs (estimated from their messages' usage)."""

    name: str
    runs: int = 0
    unfinished: int = 0
    tokens: int = 0
    reported_nanos: int = 0
    estimated_nanos: int = 0
    duration_ms: int = 0
    errors: int = 0
    retries: int = 0
    commands: tuple[CommandPart, ...] = ()
    # Layer 4's simple commands that match no row, by head ("cargo bench"; "" gathers the
    # rarest): their calls' shares, as for a signature, but no pattern (no lines kept).
    unmatched: tuple[CommandPart, ...] = ()

    @property
    def cost_nanos(self) -> int:
        return self.reported_nanos + self.estimated_nanos


def workflow_id(root_name: str, adw_id: str) -> str:
    """A workflow's id in the database: its root's name and its folder (or session) name."""
    return f"{root_name}/{adw_id}" if root_name else adw_id


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
    # Where the request and the times came from (nl_input, task_description, prompt,
    # issue_title, slug; state, execution_log, mtime), so that nobody mistakes a guess for a record.
    request_source: str | None = None
    time_source: str | None = None
    estimated_nanos: int = 0  # the part of cost_nanos estimated from unfinished runs' usage
    unfinished_runs: int = 0
    # Runs seen in earlier versions of a transcript that a later run rewrote: counted in the
    # totals above (and as retries), though no file holds them any more.
    overwritten_runs: int = 0
    overwritten_nanos: int = 0
    # Attempts the ADW folder lost that the session store kept (counted in the totals above,
    # as retries, their spend estimated from usage).
    session_runs: int = 0
    agents: tuple[AgentPart, ...] = ()
    # How long agents waited on each command signature's Bash calls (core/waits.py: Waits),
    # where a session store gave the times of the call and of its result.
    waits: tuple = ()

    @property
    def reported_nanos(self) -> int:
        return self.cost_nanos - self.estimated_nanos

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
    units: int = 1  # the workflow, or the runs or calls behind an agent's or a command's share
    estimated_nanos: int = 0  # the part of cost_nanos that is an estimate, not a reported cost

    @classmethod
    def of(cls, wf: Workflow) -> "Contribution":
        return cls(wf.total_tokens, wf.cost_nanos, wf.duration_seconds, wf.error_count, wf.retry_count, 1,
                   wf.estimated_nanos)

    def __add__(self, other: "Contribution") -> "Contribution":
        """Two disjoint parts of one workflow (an agent's runs and a command's calls) as one."""
        return Contribution(self.tokens + other.tokens, self.cost_nanos + other.cost_nanos,
                            self.duration + other.duration, self.errors + other.errors, self.retries + other.retries,
                            self.units + other.units, self.estimated_nanos + other.estimated_nanos)


@dataclass(frozen=True)
class PatternSums:
    """Running sums over the workflows linked to one pattern: enough to derive every statistic.

    ``plus`` is the one place where a link enters (sign +1) or leaves (sign -1) the sums:
    the ledger's deltas, verify's recomputation and the window queries all go through it."""

    count: int = 0
    tokens: int = 0
    cost_nanos: int = 0
    duration_n: int = 0
    duration_sum: int = 0
    duration_sumsq: int = 0
    errors: int = 0
    retries: int = 0
    units: int = 0
    estimated_nanos: int = 0

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
            units=self.units + sign * c.units,
            estimated_nanos=self.estimated_nanos + sign * c.estimated_nanos,
        )

    def row(self) -> tuple[int, ...]:
        """The sums in field order (the ledger's SUM_COLUMNS)."""
        return (self.count, self.tokens, self.cost_nanos, self.duration_n, self.duration_sum, self.duration_sumsq,
                self.errors, self.retries, self.units, self.estimated_nanos)


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
class Occurrence:
    """One pattern found in one workflow, with what it cost there.

    layer: "workflow" (layers 1-3: the whole workflow's totals), "agent" (layer 0: the agent's
    runs), "command" (layer 4: the Bash calls' share of their messages) or "agent+command".
    """

    signature: str
    layer: str
    contribution: Contribution
    # What a person checks it against: ("agent", folder, runs or calls) and ("command",
    # line, calls), sorted. Empty for whole-workflow links: the workflow is the evidence.
    evidence: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True)
class Detection:
    """What detection found in one workflow: occurrences in layer order, and its characteristics.

    ``mentions``: signatures its request, error or template names (layers 1-3) that no agent
    was seen doing (layers 0 and 4), where the request is not the reference's nl_input: no
    occurrence, no cost, only a note for `show`."""

    occurrences: tuple[Occurrence, ...]
    characteristics: dict = field(default_factory=dict, compare=False, hash=False)
    mentions: tuple[str, ...] = ()

    @property
    def signatures(self) -> tuple[str, ...]:
        return tuple(o.signature for o in self.occurrences)
