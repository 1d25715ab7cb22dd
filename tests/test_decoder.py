"""The compiled decoder (msgspec, jsonline.loads) against the stdlib's json, the reference:
the same value for every line, or the same refusal; and so the same fold, notes included,
for transcripts and session files made of lines chosen to tell two decoders apart."""

import base64
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adw_patternd.core.jsonline import loads
from adw_patternd.core.pricing import DEFAULT_PRICES
from adw_patternd.sources.claude_sessions import fold_chunk
from adw_patternd.sources.response_keys import ResponseKeys
from adw_patternd.sources.transcript import Transcript, to_json, totals
from helpers import stdlib_json

MODEL = "claude-sonnet-4-5-20250929"
BIG = 123456789012345678901234567890  # past 64 bits: orjson would make it a float


def _bash_line(mid: str, usage: str, extra: str = "") -> bytes:
    return ('{"type":"assistant",%s"message":{"id":"%s","model":"%s","content":[{"type":"tool_use","id":"t_%s",'
            '"name":"Bash","input":{"command":"npx tsc --noEmit"}}],"usage":%s}}' % (extra, mid, MODEL, mid, usage)
            ).encode()


ADVERSARIAL = {
    "escaped keys": b'{"typ\\u0065":"assistant","m\\u0065ssage":{"id":"m1","usage":{"output_tokens":5}}}',
    "duplicate keys": b'{"type":"user","type":"assistant","message":{"id":"m2","usage":{"output_tokens":1,'
                      b'"output_tokens":7}}}',
    "int past 64 bits": _bash_line("m3", '{"input_tokens":%d,"output_tokens":2}' % BIG),
    "int at 2**64": _bash_line("m4", '{"input_tokens":18446744073709551616}'),
    "negative past 64 bits": _bash_line("m5", '{"output_tokens":-9223372036854775809}'),
    "float past a double": b'{"type":"result","total_cost_usd":1e400,"usage":{"output_tokens":3},"session_id":"s"}',
    "tiny float": b'{"type":"result","total_cost_usd":1e-400,"session_id":"s2"}',
    "NaN": b'{"type":"result","total_cost_usd":NaN,"session_id":"s3"}',
    "Infinity": _bash_line("m6", '{"output_tokens":Infinity}'),
    "negative zero": _bash_line("m7", '{"output_tokens":-0.0}'),
    "exponent int": _bash_line("m8", '{"output_tokens":1E2}'),
    "lone surrogate escape": _bash_line("m9", '{"output_tokens":1}', '"note":"\\ud800",'),
    "surrogate pair escape": _bash_line("m10", '{"output_tokens":1}', '"note":"\\ud83d\\ude00",'),
    "UTF-8 encoded surrogate": b'{"type":"assistant","note":"\xed\xa0\x80","message":{"id":"m11","usage":{"output_tokens":1}}}',
    "invalid UTF-8": b'{"type":"assistant","note":"\xff\xfe","message":{"id":"m12","usage":{"output_tokens":1}}}',
    "overlong UTF-8": b'{"type":"assistant","note":"\xc0\xaf","message":{"id":"m13"}}',
    "byte-order mark": b'\xef\xbb\xbf' + _bash_line("m14", '{"output_tokens":4}'),
    "UTF-16": '{"type":"assistant","message":{"id":"m15","usage":{"output_tokens":4}}}'.encode("utf-16"),
    "control character": b'{"type":"assistant","note":"a\tb","message":{"id":"m16"}}',
    "escaped NUL": _bash_line("m17", '{"output_tokens":1}', '"note":"\\u0000",'),
    "deep nesting": b'{"type":"assistant","x":' + b"[" * 300 + b"]" * 300 + b',"message":{"id":"m18"}}',
    "too deep": b'{"type":"assistant","x":' + b"[" * 5000 + b"]" * 5000 + b',"message":{"id":"m19"}}',
    "trailing data": _bash_line("m20", '{"output_tokens":1}') + b" x",
    "truncated": _bash_line("m21", '{"output_tokens":1}')[:-5],
    "empty object": b"{}",
    "not an object": b'["assistant","result"]',
    "2 MB of base64": ('{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t_m3",'
                       '"content":[{"type":"image","source":{"type":"base64","data":"%s"}}]}]}}'
                       % base64.b64encode(random.Random(3).randbytes(1_500_000)).decode()).encode(),
    "tokens as a string": _bash_line("m22", '{"output_tokens":"12"}'),
    "cost as a string": b'{"type":"result","total_cost_usd":"0.5","session_id":"s4"}',
}


def _same(raw: bytes) -> None:
    try:
        expected = ("value", json.loads(raw))
    except (ValueError, RecursionError) as e:
        expected = ("refused", isinstance(e, RecursionError))
    try:
        got = ("value", loads(raw))
    except (ValueError, RecursionError) as e:
        got = ("refused", isinstance(e, RecursionError))
    # repr: NaN equals nothing, and 0.0 == -0.0 == 0 would hide a different value
    assert repr(got) == repr(expected), raw[:80]
    if got[0] == "value":
        assert _types(got[1]) == _types(expected[1]), raw[:80]


def _types(value):
    """The value's shape with the type of every leaf: 5 and 5.0 are not the same to a fold."""
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_each_adversarial_line_decodes_as_the_stdlib_decodes_it(name):
    _same(ADVERSARIAL[name])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_any_json_text_decodes_as_the_stdlib_decodes_it(value, ascii_only):
    _same(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60), st.sampled_from([b"", b'{"a":', b'"', b"[1,"]))
def test_any_bytes_decode_or_fail_as_with_the_stdlib(data, prefix):
    _same(prefix + data)


def _fold(data: bytes, session: bool, cuts=()):
    notes: list[str] = []
    t = Transcript("s.jsonl" if session else "agent/raw_output.jsonl", session=session)
    keys = ResponseKeys("people/s")  # what the store keeps between reads: the responses counted
    for size in sorted(set(cuts)) + [len(data)]:
        t = fold_chunk(t, data[t.offset:size], t.offset, DEFAULT_PRICES, notes, "f", keys=keys)
    return to_json(t), totals(t, DEFAULT_PRICES, []), notes


@pytest.mark.parametrize("session", [False, True], ids=["transcript", "session file"])
def test_a_file_of_adversarial_lines_folds_the_same_with_either_decoder(session):
    first = (b'{"type":"user","timestamp":"2026-11-02T10:00:00.000Z","message":{"content":"start"}}' if session else
             b'{"type":"system","subtype":"init","session_id":"s0","model":"%s"}' % MODEL.encode())
    lines = [first] + [ADVERSARIAL[name] for name in sorted(ADVERSARIAL)]
    # once as an open run, once closed by a result line (its Bash messages then kept as command costs)
    for tail in ([], [b'{"type":"result","total_cost_usd":0.25,"session_id":"s0"}', _bash_line("m99", "{}")]):
        data = b"\n".join(lines + tail) + b"\n"
        cuts = [len(data) // 3, len(data) // 2]
        compiled, compiled_appended = _fold(data, session), _fold(data, session, cuts)
        with stdlib_json():
            reference = _fold(data, session)
        assert compiled == reference
        assert compiled_appended[:2] == compiled[:2]
        assert compiled[2], "the adversarial lines give notes (numbers out of range, lines not JSON)"
