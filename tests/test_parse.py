"""Pure parsing: fallbacks, times, prices."""

import pytest

from adw_patternd.sources.parse import StateFields, epoch_us, iso, parse_time, request_fallback
from adw_patternd.core.pricing import DEFAULT_PRICES, cost_nanos


@pytest.mark.parametrize("branch, plan, expected", [
    ("feat-issue-5-adw-8035e781-add-version-info-cli", None, "add version info cli"),
    (None, "specs/issue-5-adw-8035e781-sdlc_planner-add-version-info-cli.md", "add version info cli"),
    ("chore-issue-9-adw-8035e781-run-backend-tests", "x.md", "run backend tests"),
    ("main", None, None),
    (None, None, None),
])
def test_request_falls_back_to_the_branch_or_plan_slug(branch, plan, expected):
    assert request_fallback("8035e781", StateFields(branch_name=branch, plan_file=plan)) == expected


@pytest.mark.parametrize("value, expected", [
    ("2026-10-01T10:00:00Z", "2026-10-01T10:00:00.000000Z"),
    ("2026-10-01T12:00:00+02:00", "2026-10-01T10:00:00.000000Z"),
    ("2026-10-01 10:00:00", "2026-10-01T10:00:00.000000Z"),  # naive: UTC
    ("2026-10-01T10:00:00.123456", "2026-10-01T10:00:00.123456Z"),
    (1790848800, "2026-10-01T10:00:00.000000Z"),  # epoch seconds
    (1790848800000, "2026-10-01T10:00:00.000000Z"),  # epoch milliseconds
    ("1790848800", "2026-10-01T10:00:00.000000Z"),
])
def test_times(value, expected):
    notes = []
    assert iso(parse_time(value, notes, "start_time")) == expected
    assert notes == []


def test_odd_times_are_ignored_with_a_note():
    notes = []
    assert parse_time("yesterday", notes, "start_time") is None
    assert parse_time(1e20, notes, "end_time") is None
    assert len(notes) == 2 and "not an ISO 8601 time" in notes[0]
    assert epoch_us(parse_time("1970-01-01T00:00:01Z", [], "t")) == 1_000_000


def test_prices_per_million_tokens_and_the_long_context_tier():
    # claude-sonnet-4-5: $3 in / $15 out per million; above 200k input tokens $6 / $22.50
    assert cost_nanos("claude-sonnet-4-5-20250929", 1_000_000, 0, 0, 0, DEFAULT_PRICES) == 6_000_000_000
    assert cost_nanos("claude-sonnet-4-5-20250929", 100_000, 100_000, 0, 0, DEFAULT_PRICES) == 1_800_000_000
    assert cost_nanos("claude-haiku-4-5", 0, 0, 0, 1_000_000, DEFAULT_PRICES) == 100_000_000
    assert cost_nanos("claude-opus-4-20250514", 1_000_000, 0, 0, 0, DEFAULT_PRICES) == 15_000_000_000
    assert cost_nanos("claude-opus-4-5-20251101", 1_000_000, 0, 0, 0, DEFAULT_PRICES) == 5_000_000_000
    assert cost_nanos("gpt-4o", 1000, 1000, 0, 0, DEFAULT_PRICES) is None
