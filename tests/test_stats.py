"""Confidence and savings formulas over running sums."""

from adw_patternd.core.model import Contribution, PatternSums
from adw_patternd.core.stats import DAY_US, confidence, derive, monthly_frequency


def sums(*workflows):
    s = PatternSums()
    for duration, errors, retries in workflows:
        s = s.plus(Contribution(100, 1_000_000_000, duration, errors, retries))
    return s


def test_no_workflow_scores_10():
    assert confidence(PatternSums()) == 10


def test_frequency_buckets():
    # durations all equal (variance 0 -> 30), no errors (30)
    assert confidence(sums(*[(100, 0, 0)] * 2)) == 10 + 30 + 30
    assert confidence(sums(*[(100, 0, 0)] * 3)) == 20 + 30 + 30
    assert confidence(sums(*[(100, 0, 0)] * 5)) == 30 + 30 + 30
    assert confidence(sums(*[(100, 0, 0)] * 10)) == 40 + 30 + 30


def test_consistency_uses_population_variance_of_nonzero_durations():
    assert confidence(sums((100, 0, 0))) == 10 + 15 + 30  # fewer than two durations
    assert confidence(sums((100, 0, 0), (0, 0, 0))) == 10 + 15 + 30  # zero is unknown, left out
    # durations 0..19 around 100: variance of (90, 110) = 100 -> not under 100 -> 20
    assert confidence(sums((90, 0, 0), (110, 0, 0))) == 10 + 20 + 30
    assert confidence(sums((91, 0, 0), (109, 0, 0))) == 10 + 30 + 30  # variance 81
    assert confidence(sums((100, 0, 0), (163, 0, 0))) == 10 + 20 + 30  # variance 992.25
    assert confidence(sums((100, 0, 0), (164, 0, 0))) == 10 + 10 + 30  # variance 1024


def test_success_buckets():
    assert confidence(sums((100, 0, 0), (100, 0, 1))) == 10 + 30 + 20  # errors 0 < 1, retries 0.5 < 2
    assert confidence(sums((100, 1, 0), (100, 1, 0))) == 10 + 30 + 10  # mean errors 1: not < 1
    assert confidence(sums((100, 0, 2), (100, 0, 2))) == 10 + 30 + 10  # mean retries 2: not < 2
    assert confidence(sums((100, 3, 0), (100, 3, 0))) == 10 + 30 + 5


def test_monthly_frequency_uses_the_span_not_the_all_time_count():
    assert monthly_frequency(10, 0, 0) == 10  # all on one day: a month's worth at most
    assert monthly_frequency(10, 0, 60 * DAY_US) == 5  # 10 over 60 days: 5 a month
    assert monthly_frequency(10, None, None) == 10


def test_derive():
    s = sums((100, 0, 0), (100, 0, 0))  # 2 workflows, $1 each
    d = derive(s, 0, 90 * DAY_US, 0.05)
    assert d.occurrence_count == 2 and d.avg_tokens_with_llm == 100 and d.avg_cost_with_llm == 1.0
    assert d.avg_tokens_with_tool == 5 and abs(d.avg_cost_with_tool - 0.05) < 1e-12
    assert abs(d.potential_monthly_savings - 0.95 * 2 * 30 / 90) < 1e-12


def test_sums_add_and_subtract_exactly():
    a = Contribution(123, 456_789_012, 77, 1, 2)
    s = PatternSums().plus(a).plus(a).plus(a, -1)
    assert s == PatternSums().plus(a)
