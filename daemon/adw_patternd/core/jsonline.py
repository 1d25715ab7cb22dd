"""Decoding JSON lines: msgspec's compiled decoder, with the stdlib as the reference.

Most of a sync's time went into decoding transcript lines with the stdlib's `json` (see
docs/performance.md for the measurement that chose msgspec over orjson). ``loads`` gives
exactly what ``json.loads`` gives, for every input: msgspec decodes the lines it can decode
to the same value, and refuses the rest (NaN and Infinity, numbers past a double's range,
lone surrogates, a byte-order mark, UTF-16, invalid UTF-8, deep nesting...), which then go
to ``json.loads``: decoded its way, or refused with its own error. orjson was about as fast
but turns integers past 64 bits into floats without a word, so its values would differ
from the reference's where a transcript holds such a number.
"""

from __future__ import annotations

import json

import msgspec

_decode = msgspec.json.Decoder().decode
INVALID = object()  # what DecodedLines holds for a line that is not JSON


def loads(raw: bytes):
    """The value of one JSON text, equal to ``json.loads(raw)``; raises what it raises
    (ValueError, RecursionError) for text that is not JSON."""
    try:
        return _decode(raw)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return json.loads(raw)


class DecodedLines:
    """The lines of one chunk of a file, each decoded at most once: the transcript scan and
    a session file's facts ask for some of the same lines (one pass over the bytes)."""

    def __init__(self, chunk):
        self.chunk = chunk  # bytes, or a mapped chunk with find and slicing
        self._lines: dict[int, tuple[object, bytes, int]] = {}

    def at(self, line_start: int, line_end: int | None = None) -> tuple[object, bytes, int]:
        """(value or INVALID, raw bytes, line end) of the line starting at ``line_start``."""
        got = self._lines.get(line_start)
        if got is None:
            if line_end is None:
                line_end = self.chunk.find(b"\n", line_start)
            raw = bytes(self.chunk[line_start:line_end])
            try:
                value = loads(raw)
            except (ValueError, RecursionError):
                value = INVALID
            got = self._lines[line_start] = (value, raw, line_end)
        return got
