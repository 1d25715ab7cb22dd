"""Cache writes come in two lifetimes (../shared/docs/claude-session-store.md): a 5-minute
write costs 1.25x the input price, a 1-hour write 2x. usage.cache_creation splits the cache
write tokens; without the split every write is a 5-minute one. The same rule holds for an
ADW transcript (stream-json) and for a session file, and the tokens counted do not change."""

import json

import pytest

from adw_patternd.config import parse_config
from adw_patternd.core.pricing import DEFAULT_PRICES, Price, cost_nanos
from adw_patternd.sources.claude_sessions import fold_chunk
from adw_patternd.sources.response_keys import ResponseKeys
from adw_patternd.sources.transcript import Transcript, from_json, scan_chunk, to_json, totals

SONNET = "claude-sonnet-4-5-20250929"  # 3 in, 15 out, 3.75 5-minute write, 6 1-hour write, 0.30 read
# input 10, cache writes 1000 (400 5-minute, 600 1-hour), cache read 2000, output 50
SPLIT = {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600}
WITH_SPLIT = (10 * 3 + 50 * 15 + 400 * 3.75 + 600 * 6 + 2000 * 0.30) * 1000  # nanodollars
ALL_5M = (10 * 3 + 50 * 15 + 1000 * 3.75 + 2000 * 0.30) * 1000
TOKENS = 10 + 1000 + 2000 + 50


def _usage(split: dict | None) -> dict:
    usage = {"input_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 2000,
             "output_tokens": 50}
    if split is not None:
        usage["cache_creation"] = split
    return usage


def _assistant(split, session: bool) -> str:
    entry = {"type": "assistant", "message": {"id": "msg_1", "model": SONNET, "role": "assistant",
                                               "content": [{"type": "text", "text": "done"}],
                                               "usage": _usage(split), "stop_reason": "end_turn"}}
    if session:
        entry.update(timestamp="2026-11-02T10:00:00.000Z", requestId="req_1", sessionId="s")
    else:
        entry["session_id"] = "s"
    return json.dumps(entry)


def _open_run(split) -> Transcript:
    lines = [json.dumps({"type": "system", "subtype": "init", "session_id": "s", "model": SONNET}),
             _assistant(split, session=False)]
    data = ("\n".join(lines) + "\n").encode()
    t, _ = scan_chunk(Transcript("builder/raw_output.jsonl"), data, 0, DEFAULT_PRICES, [], "f")
    return t


def _session(split, stored: bool = False) -> Transcript:
    data = (json.dumps({"type": "user", "timestamp": "2026-11-02T09:59:00.000Z", "message": {"content": "go"}})
            + "\n" + _assistant(split, session=True) + "\n").encode()
    t = fold_chunk(Transcript("s.jsonl", session=True), data, 0, DEFAULT_PRICES, [], "f", keys=ResponseKeys("x/s"))
    if stored:
        t = from_json(t.path, t.device, t.inode, t.offset, t.size, t.mtime_ns, t.head, t.tail, to_json(t), True)
    return t


@pytest.mark.parametrize("split, nanos", [(SPLIT, WITH_SPLIT), (None, ALL_5M),
                                          ({"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 0},
                                           ALL_5M)])
def test_an_open_runs_message_prices_each_lifetime(split, nanos):
    tot = totals(_open_run(split), DEFAULT_PRICES, [])
    assert (tot.estimated_nanos, tot.tokens) == (round(nanos), TOKENS)


@pytest.mark.parametrize("stored", [False, True])
def test_a_session_files_response_prices_its_1_hour_writes_at_twice_the_input_price(stored):
    tot = totals(_session(SPLIT, stored), DEFAULT_PRICES, [])
    assert (tot.estimated_nanos, tot.tokens) == (round(WITH_SPLIT), TOKENS)
    assert totals(_session(None, stored), DEFAULT_PRICES, []).estimated_nanos == round(ALL_5M)


def test_a_result_line_without_a_cost_prices_its_usage_with_the_split():
    lines = [json.dumps({"type": "system", "subtype": "init", "session_id": "s", "model": SONNET}),
             json.dumps({"type": "result", "subtype": "success", "session_id": "s", "usage": _usage(SPLIT),
                         "modelUsage": {SONNET: {}}})]
    t, _ = scan_chunk(Transcript("a/raw_output.jsonl"), ("\n".join(lines) + "\n").encode(), 0, DEFAULT_PRICES, [], "f")
    (run,) = t.runs
    assert (run.cost_nanos, run.tokens) == (round(WITH_SPLIT), TOKENS)


def test_the_price_table_carries_both_write_prices():
    assert cost_nanos("claude-opus-4-6", 0, 0, 1_000_000, 0, DEFAULT_PRICES, 1_000_000) == 10 * 10**9
    assert cost_nanos("claude-opus-4-6", 0, 0, 1_000_000, 0, DEFAULT_PRICES) == 6.25 * 10**9
    assert cost_nanos("claude-haiku-4-5", 0, 0, 1_000_000, 0, DEFAULT_PRICES, 1_000_000) == 2 * 10**9
    # more 1-hour writes than writes (a malformed split) never prices more than the writes
    assert cost_nanos("claude-sonnet-4-6", 0, 0, 10, 0, DEFAULT_PRICES, 10**6) == 10 * 6 * 1000


def _prices(entry: dict):
    config = parse_config({"roots": [{"path": "a", "name": "x"}], "database": "d.db",
                           "prices": {"claude-nova": entry}}, __import__("pathlib").Path("/tmp/config.yaml"))
    return config.prices


def test_a_configured_price_with_one_cache_write_price_is_the_5_minute_one_and_1_hour_is_twice_input():
    prices = _prices({"input": 2, "output": 10, "cache_write": 2.5, "cache_read": 0.2})
    rule = next(r for r in prices if r.prefix == "claude-nova")
    assert rule.price == Price(2, 10, 2.5, 0.2, 4)
    assert cost_nanos("claude-nova", 0, 0, 100, 0, prices, 60) == (40 * 2.5 + 60 * 4) * 1000


def test_a_configured_price_can_give_the_1_hour_write_price():
    prices = _prices({"input": 2, "output": 10, "cache_write": 2.5, "cache_read": 0.2, "cache_write_1h": 3})
    assert cost_nanos("claude-nova", 0, 0, 100, 0, prices, 60) == (40 * 2.5 + 60 * 3) * 1000


def test_a_session_files_older_state_is_kept_where_its_file_is_gone_and_read_again_where_it_is():
    t = _session(SPLIT)
    state = json.loads(to_json(t))
    state["v"] = 3
    for m in state["messages"].values():
        del m[8:]  # version 3 had no 1-hour writes
    old = from_json(t.path, 5, 6, t.offset, t.size, t.mtime_ns, t.head, t.tail, json.dumps(state), True)
    assert (old.device, old.inode) == (0, 0)  # another identity than any file's: a file still there is read again
    assert (old.offset, old.first_ts, len(old.messages)) == (t.offset, t.first_ts, 1)
