"""Pattern statistics as pure functions of running sums.

Every input is an integer (tokens, nano-dollars, whole seconds, counts) or an epoch
microsecond, so the stored sums can be updated by adding and subtracting contributions in
any order and still equal a from-scratch recomputation, bit for bit.
"""

from __future__ import annotations

from .model import PatternStats, PatternSums

DAY_US = 86_400 * 1_000_000
NO_WORKFLOW_CONFIDENCE = 10.0


def confidence_parts(s: PatternSums) -> tuple[int, int, int]:
    """(frequency, consistency, success): the three parts of the confidence score, out of
    40, 30 and 30 (see detection-rules.md)."""
    n = s.count
    frequency = 40 if n >= 10 else 30 if n >= 5 else 20 if n >= 3 else 10

    # Population variance of the non-zero durations, compared without division:
    # var < k  <=>  n*sumsq - sum^2 < k*n^2
    d = s.duration_n
    if d < 2:
        consistency = 15
    else:
        scaled = d * s.duration_sumsq - s.duration_sum * s.duration_sum
        consistency = 30 if scaled < 100 * d * d else 20 if scaled < 1000 * d * d else 10

    # Mean errors and retries, compared as sum < k*n.
    if s.errors == 0 and s.retries == 0:
        success = 30
    elif s.errors < n and s.retries < 2 * n:
        success = 20
    elif s.errors < 3 * n:
        success = 10
    else:
        success = 5
    return frequency, consistency, success


def confidence(s: PatternSums) -> float:
    """0-100: frequency + consistency of durations + success (see detection-rules.md)."""
    if s.count <= 0:
        return NO_WORKFLOW_CONFIDENCE
    return float(sum(confidence_parts(s)))


def monthly_frequency(count: int, first_seen_us: int | None, last_seen_us: int | None) -> float:
    """Workflows per 30 days: count x 30 / max(30, span in days of the seen times)."""
    span_days = 0.0
    if first_seen_us is not None and last_seen_us is not None:
        span_days = (last_seen_us - first_seen_us) / DAY_US
    return count * 30 / max(30.0, span_days)


def derive(s: PatternSums, first_seen_us: int | None, last_seen_us: int | None, tool_cost_ratio: float) -> PatternStats:
    n = s.count
    if n <= 0:
        return PatternStats(0, 0, 0.0, 0, 0.0, 0.0, NO_WORKFLOW_CONFIDENCE)
    avg_tokens = s.tokens // n
    avg_cost = s.cost_nanos / n / 1e9
    tool_cost = avg_cost * tool_cost_ratio
    savings = (avg_cost - tool_cost) * monthly_frequency(n, first_seen_us, last_seen_us)
    return PatternStats(
        occurrence_count=n,
        avg_tokens_with_llm=avg_tokens,
        avg_cost_with_llm=avg_cost,
        avg_tokens_with_tool=int(avg_tokens * tool_cost_ratio),
        avg_cost_with_tool=tool_cost,
        potential_monthly_savings=savings,
        confidence_score=confidence(s),
    )
