"""The shared fold of the issue-33 readers (sources/agent_fold.py): each response priced
once, its shell calls' shares by the 1/k rule, copies of a response counted once, waits per
signature, a bounded state, and a log read in appends equal to the log read whole."""

import json
import os
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from adw_patternd.core.commands import call_signatures
from adw_patternd.core.errors import InputRejected
from adw_patternd.core.pricing import DEFAULT_PRICES, cost_nanos
from adw_patternd.sources.agent_fold import (OPEN_RESPONSES, CallEnd, CallStart, Ended, JsonlReader, Prompt,
                                             ReadContext, Reopened, Response, Seen, fold, from_json, new_state, to_json,
                                             to_workflow)

MODEL = "gpt-5"
GIT, PYTEST = call_signatures("git status")[0], call_signatures("pytest -q")[0]


def ctx(fresh=False):
    return ReadContext("home", DEFAULT_PRICES, notes=[], fresh=fresh)


def price(usage):
    inp, out, cw, cr = usage
    return cost_nanos(MODEL, inp, out, cw, cr, DEFAULT_PRICES)


def run(events, c=None, state=None):
    c = c or ctx()
    s = fold(state or new_state(), events, c)
    return to_workflow("home", "sid", "copilot", s, c.fresh), s, c


def by_sig(wf):
    return {p.signature: p for p in wf.agents[0].commands}


def test_one_response_calls_share_by_k_over_all_tool_calls():
    u = (600, 40, 0, 1500)
    wf, _, _ = run([
        Prompt("check the repo\nmore", "2026-12-04T18:05:33.000Z"),
        Response("r1", MODEL, u, "2026-12-04T18:05:34.000Z",
                 (("c1", "git status"), ("c2", None), ("c3", "pytest -q"))),
        Ended("2026-12-04T18:05:40.000Z"),
    ])
    nanos = price(u)
    assert wf.total_tokens == sum(u) and wf.cost_nanos == nanos == wf.estimated_nanos
    assert wf.request == "check the repo" and wf.status == "completed" and wf.duration_seconds == 7
    assert wf.workflow_id == "home/sid" and wf.agents[0].name == "copilot" and wf.model == MODEL
    sigs = by_sig(wf)
    assert set(sigs) == {GIT, PYTEST}, sigs
    for part in sigs.values():
        assert (part.cost_nanos, part.tokens, part.calls) == (nanos // 3, sum(u) // 3, 1)
    assert sigs[GIT].lines == (("git status", 1),)


def test_a_copy_with_the_same_id_counts_once_with_the_last_usage_and_all_calls():
    first, last = (100, 10, 0, 50), (100, 12, 0, 50)
    wf, _, _ = run([Response("r1", MODEL, first, None, ()),
                    Response("r1", MODEL, last, None, (("c1", "git status"),)),
                    Response("r1", MODEL, last, None, (("c1", "git status"),))])
    assert wf.total_tokens == sum(last) and wf.cost_nanos == price(last)
    assert by_sig(wf)[GIT].calls == 1


def test_a_copy_without_usage_adds_its_calls_and_keeps_the_usage():
    u = (100, 10, 0, 50)
    wf, _, _ = run([Seen("2026-12-04T18:00:00.000Z"), Response("r1", MODEL, u, "2026-12-04T18:00:01.000Z"),
                    Response("r1", MODEL, None, "2026-12-04T18:00:02.000Z", (("c1", "git status"),)),
                    Response("r2", MODEL, None, None, (("c2", "git status"),))])
    assert wf.total_tokens == sum(u) and wf.cost_nanos == price(u) and wf.duration_seconds == 2
    assert by_sig(wf)[GIT].calls == 2 and by_sig(wf)[GIT].cost_nanos == price(u)


def test_a_late_copy_of_a_closed_response_is_not_counted_again():
    events = [Response(f"r{i}", MODEL, (10, 1, 0, 0)) for i in range(OPEN_RESPONSES + 5)]
    wf, s, _ = run(events + [Response("r0", MODEL, (10, 1, 0, 0))])
    assert wf.total_tokens == 11 * (OPEN_RESPONSES + 5)
    assert len(s.open) == OPEN_RESPONSES


def test_responses_without_ids_are_each_counted():
    wf, _, _ = run([Response("", MODEL, (10, 1, 0, 0)), Response("", MODEL, (10, 1, 0, 0))])
    assert wf.total_tokens == 22


def test_unknown_model_counts_tokens_not_dollars_and_says_so_once():
    c = ctx()
    wf, s, _ = run([Response("a", "mock-model", (10, 1, 0, 0)), Response("b", "mock-model", (10, 1, 0, 0))], c)
    assert wf.total_tokens == 22 and wf.cost_nanos == 0
    assert [n for n in c.notes if "mock-model" in n and "no price" in n] == [c.notes[0]] and len(c.notes) == 1


def test_recorded_cost_is_reported_not_estimated():
    wf, _, _ = run([Response("a", MODEL, (10, 1, 0, 0), None, (("c", "git status"),), recorded_nanos=5000)])
    assert wf.cost_nanos == 5000 and wf.estimated_nanos == 0 and wf.agents[0].reported_nanos == 5000
    assert by_sig(wf)[GIT].cost_nanos == 5000


def test_bad_numbers_count_zero_with_a_note():
    c = ctx()
    wf, _, _ = run([Response("a", MODEL, (-5, "x", 3, None))], c)
    assert wf.total_tokens == 3 and len(c.notes) == 2


def test_waits_from_the_response_or_the_tool_start_or_the_recorded_wall_time():
    wf, s, _ = run([
        Response("a", MODEL, (10, 1, 0, 0), "2026-12-04T18:00:00.000Z", (("c1", "git status"), ("c2", "ls -la"),
                                                                         ("c3", "pytest"))),
        CallStart("c1", "2026-12-04T18:00:01.000Z"),
        CallEnd("c1", "2026-12-04T18:00:01.250Z", 0),
        CallEnd("c2", "2026-12-04T18:00:02.000Z", 0, wall_ms=40),
        CallEnd("c3", "2026-12-04T18:00:03.000Z", 1),
        CallEnd("unknown", "2026-12-04T18:00:03.000Z", 1),
    ])
    waits = dict(wf.waits)
    assert waits[GIT].values == (250,)
    assert waits[PYTEST].values == (3000,)
    assert s.failed == {PYTEST: 1} and not s.waiting


def test_status_words():
    assert run([Prompt("x", 1)], ctx(fresh=True))[0].status == "running"
    assert run([Prompt("x", 1)], ctx(fresh=False))[0].status == "interrupted"
    assert run([Prompt("x", 1), Ended(2)], ctx(fresh=True))[0].status == "completed"
    assert run([Ended(2), Reopened(3)], ctx(fresh=False))[0].status == "interrupted"
    assert run([Ended(2), Response("a", MODEL, (1, 1, 0, 0))], ctx(fresh=True))[0].status == "running"


def test_a_long_session_keeps_a_small_state_and_exact_sums():
    n = 100_000
    events = (Response(f"r{i}", MODEL, (100, 10, 0, 900), None, (("c%d" % i, "git status"), ("x%d" % i, None)))
              for i in range(n))
    wf, s, _ = run(events)
    one = price((100, 10, 0, 900))
    assert wf.total_tokens == n * 1010 and wf.cost_nanos == n * one
    part = by_sig(wf)[GIT]
    assert (part.calls, part.cost_nanos, part.tokens) == (n, n * (one // 2), n * 505)
    assert len(to_json(s)) < 20_000


def _events():
    ts = st.integers(1_700_000_000_000, 1_700_000_100_000)
    cmd = st.sampled_from([None, "git status", "pytest -q", "ls -la", "npm test && git diff"])
    resp = st.builds(lambda i, u, t, calls: Response(f"r{i}", MODEL, u, t, calls),
                     st.integers(0, 30), st.tuples(*[st.integers(0, 5000)] * 4), ts,
                     st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3", "c4"]), cmd), max_size=3).map(tuple))
    end = st.builds(CallEnd, st.sampled_from(["c1", "c2", "c3", "c4"]), ts, st.sampled_from([0, 1, None]))
    other = st.sampled_from([Prompt("do it", 5), Ended(6), Reopened(7)])
    return st.lists(st.one_of(resp, end, other), max_size=60)


@settings(max_examples=60, deadline=None)
@given(_events(), st.integers(0, 60))
def test_folding_in_two_reads_through_the_stored_state_equals_one_read(events, cut):
    whole, _, _ = run(events)
    _, s, _ = run(events[:cut])
    again = from_json(to_json(s))
    split, _, _ = run(events[cut:], state=again)
    assert split == whole


def test_a_state_of_another_version_starts_afresh():
    assert from_json(json.dumps({"v": 99})).files == {}
    assert from_json("not json").open == {}
    assert from_json(None).tokens == 0


# ---------------------------------------------------------------------------------------
# JsonlReader

def read(path, cursor, notes=None):
    notes = [] if notes is None else notes
    with JsonlReader(str(path), cursor, notes) as r:
        got = list(r)
        return got, r.cursor, r.whole


def test_reader_reads_appends_and_leaves_a_cut_last_line(tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_bytes(b'{"a":1}\n{"a":2}\n{"a":')
    got, cur, whole = read(p, None)
    assert got == [{"a": 1}, {"a": 2}] and not whole and cur[0] == 16
    with open(p, "ab") as f:
        f.write(b'3}\nnot json\n[1]\n{"a":4}\n')
    notes = []
    got, cur, whole = read(p, cur, notes)
    assert got == [{"a": 3}, {"a": 4}] and not whole and len(notes) == 2
    assert read(p, cur)[0] == []


def test_reader_reads_a_replaced_file_whole_and_a_shrunk_one_from_its_end(tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_bytes(b'{"id":"first"}\n{"a":2}\n{"a":3}\n')
    _, cur, _ = read(p, None)
    p.write_bytes(b'{"id":"first"}\n{"a":2}\n')  # rewound: the same head, fewer lines
    notes = []
    got, cur2, whole = read(p, cur, notes)
    assert got == [] and not whole and cur2[0] == p.stat().st_size and "rewound" in notes[0]
    with open(p, "ab") as f:
        f.write(b'{"a":9}\n')
    assert read(p, cur2)[0] == [{"a": 9}]
    p.write_bytes(b'{"id":"other"}\n{"a":2}\n{"a":3}\n{"a":4}\n')
    got, _, whole = read(p, cur2)
    assert whole and got[0] == {"id": "other"} and len(got) == 4


def test_reader_refuses_a_fifo_without_waiting(tmp_path):
    p = tmp_path / "events.jsonl"
    os.mkfifo(p)
    done = []

    def attempt():
        try:
            read(p, None)
        except InputRejected as e:
            done.append(str(e))

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout=10)
    assert done and "not a regular file" in done[0]
