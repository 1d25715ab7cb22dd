"""OpenCode's parts -> the fold's events: what a message and its parts say, whether they come
from the database (opencode.py) or from the older JSON storage (opencode_storage.py); both
hold the same part objects (verified on 1.1.65, 1.2.27 and 1.18.33).

- One response = one ``step-finish`` part (its ``tokens``, its ``cost``); the tool parts before
  it in its message are its calls: a ``bash`` one's ``state.input.command`` is the command,
  ``state.metadata.exit`` its exit code, ``state.time.end - start`` its wait.
"""

from __future__ import annotations

from . import agent_fold as af

SHELL_TOOL = "bash"


def _int(v) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def reasoning_apart(tokens: dict) -> bool:
    """Whether ``output`` excludes ``reasoning`` (1.18: total = input + output + reasoning +
    cache) or, as 1.2.27 wrote it, includes it (total = input + output + cache)."""
    cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}
    parts = _int(tokens.get("input")) + _int(tokens.get("output")) + _int(cache.get("write")) + _int(cache.get("read"))
    return not (_int(tokens.get("reasoning")) and _int(tokens.get("total")) == parts)


def _usage(tokens: dict) -> af.Usage:
    cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}
    reasoning = _int(tokens.get("reasoning")) if reasoning_apart(tokens) else 0
    return (_int(tokens.get("input")), _int(tokens.get("output")) + reasoning,
            _int(cache.get("write")), _int(cache.get("read")))


def _own_cost(part: dict, tokens: dict) -> int | None:
    """OpenCode's cost of a step, where it is a real one: not 0, and not from a build that
    priced the reasoning twice (1.2.27 adds it to an output that already holds it)."""
    if not reasoning_apart(tokens):
        return None
    return _cost_nanos(part.get("cost"))


def _cost_nanos(cost) -> int | None:
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and 0 < cost < 1e6:
        return round(cost * 1e9)
    return None


def _unquote(text: str) -> str:
    """``opencode run`` stores its message argument quoted (``"check the repo"``)."""
    bare = text.strip()
    return bare[1:-1] if len(bare) >= 2 and bare[0] == bare[-1] == '"' and '"' not in bare[1:-1] else text


def _tool_call(part: dict) -> tuple[str, str | None]:
    state = part.get("state") if isinstance(part.get("state"), dict) else {}
    args = state.get("input") if isinstance(state.get("input"), dict) else {}
    command = args.get("command") if part.get("tool") == SHELL_TOOL else None
    return str(part.get("callID") or part.get("id")), command if isinstance(command, str) else None


def _call_end(part: dict):
    state = part.get("state") if isinstance(part.get("state"), dict) else {}
    if state.get("status") not in ("completed", "error"):
        return None
    times = state.get("time") if isinstance(state.get("time"), dict) else {}
    start, end = times.get("start"), times.get("end")
    wall = end - start if isinstance(start, int) and isinstance(end, int) and end >= start else None
    meta = state.get("metadata") if isinstance(state.get("metadata"), dict) else {}
    exit_code = meta.get("exit") if isinstance(meta.get("exit"), int) else None
    return af.CallEnd(_tool_call(part)[0], end, exit_code, wall)


def message_events(info: dict, parts: list[tuple[str, int, dict]], cursor: int):
    """The database's form: parts as (id, time_updated, part); a part is new when updated past
    the cursor, and a session's end is the time its last step-finish was updated."""
    return part_events(info, [(pid, updated, part, updated > cursor) for pid, updated, part in parts])


def part_events(info: dict, parts: list[tuple[str, object, dict, bool]]):
    """The events of one message's parts (id order), each given as (id, time, part, new):
    each new step-finish is a response, with the tool parts since the previous step-finish as
    its calls; a new user text part is a prompt. Parts not new only place the calls."""
    role = info.get("role")
    tools: list[dict] = []
    for pid, when, part, new in parts:
        kind = part.get("type")
        if role == "user" and kind == "text" and not part.get("synthetic") and new:
            yield af.Prompt(_unquote(part.get("text") or ""), (part.get("time") or {}).get("start") or info.get("time", {}).get("created"))
        elif kind == "tool":
            tools.append(part)
        elif kind == "step-finish":
            if new:
                tokens = part.get("tokens") if isinstance(part.get("tokens"), dict) else {}
                yield af.Response(pid, info.get("modelID") if isinstance(info.get("modelID"), str) else None,
                                  _usage(tokens), (info.get("time") or {}).get("created"),
                                  tuple(_tool_call(t) for t in tools), _own_cost(part, tokens))
                yield from (e for e in map(_call_end, tools) if e is not None)
                if part.get("reason") == "stop":
                    yield af.Ended(when)
            tools = []
