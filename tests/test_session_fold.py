"""Property: a session file folds to the same value, its times, prompt, waits and sidechain
replays included, whether it is read whole or as any series of appends."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adw_patternd.core.pricing import DEFAULT_PRICES
from adw_patternd.sources.claude_sessions import fold_chunk
from adw_patternd.sources.response_keys import ResponseKeys
from adw_patternd.sources.transcript import OPEN_MESSAGES, Transcript, from_json, to_json, totals
from helpers import stdlib_json

MODEL = "claude-sonnet-4-5-20250929"


def _ts(i: int) -> str:
    return f"2026-11-02T10:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"


def _assistant(i: int, block: dict, sidechain=False, request=None) -> str:
    usage = {"input_tokens": 3, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 100, "output_tokens": i}
    if i % 2:  # a 1-hour cache write (priced apart): kept through the stored form too
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 6}
    return json.dumps({"type": "assistant", "isSidechain": sidechain, "timestamp": _ts(i),
                       "requestId": request or f"req_{i % 3}",
                       "message": {"id": f"msg_{i % 3}", "model": MODEL, "content": [block], "usage": usage,
                                   "stop_reason": "end_turn"}})


LINES = {
    "prompt": lambda i: json.dumps({"type": "user", "timestamp": _ts(i), "cwd": "/home/dev/shop",
                                    "message": {"role": "user", "content": f"do thing {i}\nmore"}}),
    "text": lambda i: _assistant(i, {"type": "text", "text": 'said "Bash" and "timestamp"'}),
    "bash": lambda i: _assistant(i, {"type": "tool_use", "id": f"toolu_{i % 5}", "name": "Bash",
                                     "input": {"command": "npx tsc --noEmit"}}),
    "replay": lambda i: _assistant(i, {"type": "text", "text": "again"}, sidechain=True, request=f"req_side{i}"),
    "result": lambda i: json.dumps({"type": "user", "timestamp": _ts(i), "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": f"toolu_{i % 5}", "content": "ok"}]}}),
    "summary": lambda i: json.dumps({"type": "summary", "summary": "A title", "leafUuid": str(i)}),
    "bad time": lambda i: json.dumps({"type": "user", "timestamp": "soon", "message": {"content": "x"}}),
    "garbage": lambda i: '{"type":"assistant","message":{"id":"msg_1"',
    # a response of its own (its own id and request): enough of them close the oldest open ones
    "own response": lambda i: _assistant(i, {"type": "tool_use", "id": f"toolu_own{i}", "name": "Bash",
                                             "input": {"command": "git status"}}, request=f"req_own{i}")
    .replace(f'"msg_{i % 3}"', f'"msg_own{i}"'),
    # Claude Code's own record (2.1.3xx), rewritten later in the file: the latest is kept
    "cost-state": lambda i: json.dumps({"type": "cost-state", "sessionId": "s", "totalCostUSD": i / 1e6,
                                        "modelUsage": {MODEL: {"inputTokens": i, "outputTokens": 2 * i,
                                                               "cacheCreationEphemeral1hInputTokens": 3,
                                                               "costUSD": i / 1e6}}}),
    # a response still streaming (no end of turn): a prompt after it means its run was cut off
    "streaming": lambda i: _assistant(i, {"type": "text", "text": "..."}, request=f"req_open{i}")
    .replace(f'"msg_{i % 3}"', f'"msg_open{i}"').replace('"end_turn"', "null"),
    # a copy of an earlier response later in the file (same id and request): counted once
    "copy": lambda i: _assistant(i, {"type": "text", "text": "again"}, request=f"req_own{i % 7}")
    .replace(f'"msg_{i % 3}"', f'"msg_own{i % 7}"'),
}

sessions = st.lists(st.tuples(st.sampled_from(sorted(LINES)), st.integers(1, 3000)), min_size=1, max_size=50)


def fold(data: bytes, cuts: list[int], notes: list[str] | None = None, stored: bool = False) -> Transcript:
    """Read ``data`` as if the file had grown to each cut in turn; with ``stored``, through
    the stored form between reads (as the next read starts from it)."""
    t = Transcript("s.jsonl", session=True)
    keys = ResponseKeys("people/s")  # what the store keeps between reads: the responses counted
    for size in sorted(set(cuts)) + [len(data)]:
        t = fold_chunk(t, data[t.offset:size], t.offset, DEFAULT_PRICES, [] if notes is None else notes, "f",
                       keys=keys)
        if stored:
            t = from_json(t.path, t.device, t.inode, t.offset, t.size, t.mtime_ns, t.head, t.tail, to_json(t), True)
    return t


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions, st.lists(st.integers(0, 4000), max_size=6))
def test_whole_or_in_appends_the_same(lines, cuts):
    first = json.dumps({"type": "user", "timestamp": _ts(0), "message": {"content": "start"}})
    data = "\n".join([first] + [LINES[kind](i) for kind, i in lines]).encode() + b"\n"
    notes, reference_notes = [], []
    whole = fold(data, [], notes)
    appended = fold(data, [c for c in cuts if c < len(data)])
    assert to_json(appended) == to_json(whole)
    assert fold(data, [c for c in cuts if c < len(data)], stored=True) == whole
    assert len(whole.messages) <= OPEN_MESSAGES  # what the state keeps is bounded, whatever the file's length
    assert totals(appended, DEFAULT_PRICES, []) == totals(whole, DEFAULT_PRICES, [])
    with stdlib_json():  # the compiled decoder changes nothing: the stdlib's json folds the same
        reference = fold(data, [], reference_notes)
    assert (to_json(reference), reference_notes) == (to_json(whole), notes)


def test_a_replay_of_a_parent_message_is_dropped_and_a_side_conversation_s_own_counts():
    lines = [json.dumps({"type": "user", "timestamp": _ts(0), "message": {"content": "go"}}),
             _assistant(1, {"type": "text", "text": "a"}),  # msg_1, the parent's
             _assistant(1, {"type": "text", "text": "a"}, sidechain=True, request="req_side"),  # its replay
             _assistant(2, {"type": "text", "text": "b"}, sidechain=True, request="req_side2")]  # msg_2, its own
    t = fold(("\n".join(lines) + "\n").encode(), [])
    counted = sorted(k.split("\x1f")[0] for k, m in t.messages.items() if not m.duplicate)
    assert counted == ["msg_1", "msg_2"]
    assert totals(t, DEFAULT_PRICES, []).tokens == (3 + 10 + 100 + 1) + (3 + 10 + 100 + 2)
    assert (t.prompt, t.first_ts, t.last_ts) == ("go", _ts(0), _ts(2))
