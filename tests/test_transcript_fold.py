"""Property: a transcript folds to the same value whether it is read whole or as any series of
appends. The scanner parses only the lines that can matter (found by byte search), so the
lines here are chosen to tempt it: Bash calls split over lines that share a message id,
escaped ids and names, ids that are not plain, "result" keys inside tool inputs, init lines
in odd places, garbage, and runs cut off before their result line."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adw_patternd.core.pricing import DEFAULT_PRICES
from adw_patternd.sources.transcript import OPEN_MESSAGES, Transcript, from_json, scan_chunk, to_json, totals
from helpers import stdlib_json

MODEL = "claude-sonnet-4-5-20250929"


def _usage(out: int) -> dict:
    return {"input_tokens": 3, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000,
            "output_tokens": out}


def _assistant(mid, block, out, escape=False) -> str:
    line = json.dumps({"type": "assistant", "message": {"id": mid, "model": MODEL, "content": [block],
                                                         "usage": _usage(out)}, "session_id": "s"},
                      separators=(",", ":"))
    if escape:  # the same JSON, spelled with \u escapes where a byte search would look
        line = line.replace('"Bash"', '"Bas\\u0068"').replace(f'"id":"{mid}"', f'"\\u0069d":"{mid}"')
    return line


def _bash(i, command="git status && npm run build"):
    return {"type": "tool_use", "id": f"toolu_{i}", "name": "Bash", "input": {"command": command}}


LINES = {
    "init": lambda i: json.dumps({"type": "system", "subtype": "init", "session_id": f"s{i}", "model": MODEL,
                                  "tools": ["Bash", "Read"]}),
    "text": lambda i: _assistant(f"msg_{i % 4}", {"type": "text", "text": 'said "Bash" and "result"'}, i),
    "bash": lambda i: _assistant(f"msg_{i % 4}", _bash(i), i),
    "read": lambda i: _assistant(f"msg_{i % 4}", {"type": "tool_use", "id": f"toolu_{i}", "name": "Read",
                                                  "input": {"file_path": "a.py", "result": 1}}, i),
    "escaped": lambda i: _assistant(f"msg_{i % 4}", _bash(i, "npx tsc --noEmit"), i, escape=True),
    "odd id": lambda i: _assistant(f"msg/{i % 2}", _bash(i, "uv run pytest"), i),
    "no id": lambda i: _assistant(None, _bash(i, "git diff"), i),
    "user": lambda i: json.dumps({"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "x" * (i * 37 % 900)}]}}),
    "result": lambda i: json.dumps({"type": "result", "subtype": "success", "is_error": False,
                                    "total_cost_usd": i / 1000, "usage": _usage(i), "session_id": f"s{i}",
                                    "duration_ms": 1000 + i}),
    "assistant init": lambda i: json.dumps({"type": "system", "subtype": "init", "session_id": f"x{i}",
                                            "model": "claude-haiku-4-5", "note": "assistant"}),
    "garbage": lambda i: '{"type":"assistant","message":{"id":"msg_1"',
    # a message of its own: enough of them close the oldest open ones (OPEN_MESSAGES)
    "own message": lambda i: _assistant(f"msg_own{i}", _bash(i, "git status"), i),
}

transcripts = st.lists(st.tuples(st.sampled_from(sorted(LINES)), st.integers(1, 400)), min_size=1, max_size=60)


def fold(data: bytes, cuts: list[int], notes: list[str] | None = None, stored: bool = False) -> Transcript:
    """Read ``data`` as the daemon would if the file had grown to each cut in turn; with
    ``stored``, through the stored form between reads (as the next read starts from it)."""
    t = Transcript("agent/raw_output.jsonl")
    for size in sorted(set(cuts)) + [len(data)]:
        t, _ = scan_chunk(t, data[t.offset:size], t.offset, DEFAULT_PRICES, [] if notes is None else notes, "f")
        if stored:
            t = from_json(t.path, t.device, t.inode, t.offset, t.size, t.mtime_ns, t.head, t.tail, to_json(t))
    return t


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transcripts, st.lists(st.floats(0, 1), max_size=6))
def test_read_whole_or_in_appends_folds_the_same(lines, cut_fractions):
    data = "".join(LINES[kind](i) + "\n" for kind, i in lines).encode()
    notes, reference_notes = [], []
    whole = fold(data, [], notes)
    parts = fold(data, [int(f * len(data)) for f in cut_fractions])
    assert to_json(parts) == to_json(whole)
    assert fold(data, [int(f * len(data)) for f in cut_fractions], stored=True) == whole
    assert len(whole.messages) <= OPEN_MESSAGES  # what the state keeps is bounded, whatever the run's length
    assert (parts.offset, parts.tail) == (whole.offset, whole.tail)
    assert totals(parts, DEFAULT_PRICES, []) == totals(whole, DEFAULT_PRICES, [])
    with stdlib_json():  # the compiled decoder changes nothing: the stdlib's json folds the same
        reference = fold(data, [], reference_notes)
    assert (to_json(reference), reference_notes) == (to_json(whole), notes)


def test_a_closed_runs_bash_message_keeps_its_last_lines_usage_and_all_its_tool_calls():
    # One message over three lines: a Read call, a Bash call, then a text line with the final
    # usage. The run is closed by a result line, so the scanner skips what it can: not these.
    lines = [LINES["init"](1),
             _assistant("msg_9", {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}, 10),
             _assistant("msg_9", _bash(2, "npx tsc --noEmit"), 20),
             _assistant("msg_9", {"type": "text", "text": "done"}, 30),
             _assistant("msg_8", {"type": "text", "text": "other"}, 5000),
             LINES["result"](7)]
    t = fold(("\n".join(lines) + "\n").encode(), [])
    (sig, cost), = t.commands.items()
    assert sig.startswith("build:typecheck")
    # the message's usage is its last line's (output 30), shared by its two tool calls
    assert cost.calls == 1 and cost.tokens == (3 + 100 + 1000 + 30) // 2


def test_a_state_stored_by_an_older_version_is_read_again_keeping_the_runs_only_the_ledger_knows():
    from adw_patternd.sources.transcript import STATE_VERSION, Run, from_json

    gone = Run("s-old", 1200, 2_000_000_000, 60_000, False, None, MODEL)
    kept = Transcript("tester/raw_output.jsonl", 1, 2, offset=500, runs=(Run("s-new", 10, 1, 1, False, None, MODEL),),
                      overwritten=(gone,), after_result=500)
    state = json.loads(to_json(kept))
    assert state["v"] == STATE_VERSION
    assert from_json(kept.path, 1, 2, 500, 500, 0, "s-new", "", json.dumps(state)).runs == kept.runs
    del state["v"]  # as an older version stored it
    old = from_json(kept.path, 1, 2, 500, 500, 0, "s-new", "", json.dumps(state))
    assert (old.offset, old.runs, old.overwritten) == (0, (), (gone,))
    assert from_json(kept.path, 1, 2, 500, 500, 0, "", "", None) == Transcript(kept.path)


@given(st.lists(st.tuples(st.sampled_from([f"npx tsc --noEmit -p app/{i}" for i in range(70)] + [""]),
                          st.integers(1, 3)), max_size=200), st.randoms(use_true_random=False))
def test_command_lines_past_the_cap_add_up_and_do_not_depend_on_the_order_seen(seen, rng):
    from adw_patternd.sources.transcript import MAX_LINES, merge_lines

    def fold(items):
        out = ()
        for line, n in items:
            out = merge_lines(out, ((line, n),))
        return out

    shuffled = list(seen)
    rng.shuffle(shuffled)
    a, b = fold(seen), fold(shuffled)
    assert a == b
    assert sum(n for _, n in a) == sum(n for _, n in seen)
    assert len(a) <= MAX_LINES
    exact = {}
    for line, n in seen:
        exact[line] = exact.get(line, 0) + n
    assert all(exact[line] == n for line, n in a if line)  # a line shown has its exact count
