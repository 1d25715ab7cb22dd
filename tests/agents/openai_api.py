"""The OpenAI Responses API (``POST .../v1/responses``), streamed as OpenAI streams it.

A scripted reply becomes one response: ``response.created``, then for each output item
``response.output_item.added``, its deltas (``response.output_text.delta`` for a message,
``response.function_call_arguments.delta`` for a call), ``response.output_item.done``, and
last ``response.completed`` with the usage the script gave, in OpenAI's terms:
``input_tokens`` INCLUDES the cached ones (``input_tokens_details.cached_tokens``) and
``output_tokens`` INCLUDES the reasoning ones (``output_tokens_details.reasoning_tokens``).

Each of ``Reply.calls`` is one shell function call of that response, through the shell tool
the agent offered in the request (Codex 0.169 offers ``exec_command``, 0.77
``shell_command``; older builds ``shell``). Codex's summary request when it compacts
(no tools, a request for a summary) gets ``script.compact_reply``; any other request
without tools is a side request and gets ``script.side_reply``.
``Reply.error`` answers with that HTTP status and an OpenAI error body instead.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Iterator

from .script import Reply, Script, Served, Usage
from .server import Answer

_ids = itertools.count(1)

# The shell tools a Codex build may offer, best first, and how each takes its command.
_SHELL_TOOLS = {
    "exec_command": lambda cmd: {"cmd": cmd},
    "shell_command": lambda cmd: {"command": cmd},
    "shell": lambda cmd: {"command": ["bash", "-lc", cmd]},
}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}{int(time.time() * 1000) % 10**9:09d}"


def offered_tools(request: dict) -> list[str]:
    """The names (or types, for built-ins like ``local_shell``) of the tools the request offers."""
    return [t.get("name") or t.get("type") or "" for t in request.get("tools") or []]


def shell_tool(request: dict) -> str:
    """The shell tool to call: the first of ours the agent offered."""
    offered = offered_tools(request)
    for name in (*_SHELL_TOOLS, "local_shell"):
        if name in offered:
            return name
    raise ValueError(f"the request offers no shell tool: {offered}")


def wire_usage(usage: Usage) -> dict:
    """``usage`` in the Responses API's terms (input and output totals include their parts).
    Cache writes, when scripted, are part of the input too and named in
    ``input_tokens_details.cache_write_tokens`` (Codex 0.169 records them as
    ``cache_write_input_tokens``); OpenAI bills them as ordinary input."""
    input_tokens = usage.input + usage.cache_read + usage.cache_write
    details = {"cached_tokens": usage.cache_read}
    if usage.cache_write:
        details["cache_write_tokens"] = usage.cache_write
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": details,
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": input_tokens + usage.output,
    }


def _call_item(tool: str, command: str) -> dict:
    call_id = _new_id("call")
    if tool == "local_shell":
        return {"id": _new_id("lsh"), "type": "local_shell_call", "status": "completed", "call_id": call_id,
                "action": {"type": "exec", "command": ["bash", "-lc", command]}}
    return {"id": _new_id("fc"), "type": "function_call", "status": "completed", "call_id": call_id,
            "name": tool, "arguments": json.dumps(_SHELL_TOOLS[tool](command))}


def _items(reply: Reply, tool: str | None) -> list[dict]:
    items = []
    if reply.text or not reply.calls:
        items.append({"id": _new_id("msg"), "type": "message", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": reply.text or "Done.", "annotations": []}]})
    items.extend(_call_item(tool, command) for command in reply.calls)
    return items


def _event(kind: str, seq: itertools.count, **fields) -> bytes:
    data = {"type": kind, "sequence_number": next(seq), **fields}
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def _item_events(index: int, item: dict, seq: itertools.count) -> Iterator[bytes]:
    if item["type"] == "message":
        text = item["content"][0]["text"]
        yield _event("response.output_item.added", seq, output_index=index,
                     item={**item, "status": "in_progress", "content": []})
        part = {"type": "output_text", "text": "", "annotations": []}
        yield _event("response.content_part.added", seq, item_id=item["id"], output_index=index,
                     content_index=0, part=part)
        for start in range(0, len(text), 16):
            yield _event("response.output_text.delta", seq, item_id=item["id"], output_index=index,
                         content_index=0, delta=text[start:start + 16])
        yield _event("response.output_text.done", seq, item_id=item["id"], output_index=index,
                     content_index=0, text=text)
        yield _event("response.content_part.done", seq, item_id=item["id"], output_index=index,
                     content_index=0, part={**part, "text": text})
    elif item["type"] == "function_call":
        yield _event("response.output_item.added", seq, output_index=index,
                     item={**item, "status": "in_progress", "arguments": ""})
        yield _event("response.function_call_arguments.delta", seq, item_id=item["id"], output_index=index,
                     delta=item["arguments"])
        yield _event("response.function_call_arguments.done", seq, item_id=item["id"], output_index=index,
                     arguments=item["arguments"])
    else:
        yield _event("response.output_item.added", seq, output_index=index, item=item)
    yield _event("response.output_item.done", seq, output_index=index, item=item)


def _stream(response: dict, items: list[dict], usage: dict) -> Iterator[bytes]:
    seq = itertools.count()
    yield _event("response.created", seq, response=response)
    yield _event("response.in_progress", seq, response=response)
    for index, item in enumerate(items):
        yield from _item_events(index, item, seq)
    done = {**response, "status": "completed", "output": items, "usage": usage}
    yield _event("response.completed", seq, response=done)


def _error(status: int) -> Answer:
    kinds = {429: "rate_limit_exceeded", 500: "server_error", 502: "server_error", 503: "server_error"}
    body = {"error": {"message": f"Scripted error {status}.", "type": kinds.get(status, "invalid_request_error"),
                      "param": None, "code": kinds.get(status)}}
    return Answer(status, {"Content-Type": "application/json"}, [json.dumps(body).encode()])


def _last_text(request: dict) -> str:
    items = request.get("input") or []
    content = items[-1].get("content") if items and isinstance(items[-1], dict) else None
    parts = content if isinstance(content, list) else []
    return " ".join(p.get("text", "") for p in parts if isinstance(p, dict))


def is_compaction(request: dict) -> bool:
    """Codex's summary request when it compacts: no tools, and its last input asks for a
    summary of the conversation (a handoff for the next model)."""
    return not request.get("tools") and "summar" in _last_text(request).lower()


def handle(path: str, request: dict, script: Script) -> Answer:
    compact = is_compaction(request)
    side = not request.get("tools") and not compact
    reply = script.take(side, compact=compact)
    model = request.get("model") or ""
    # Codex keys the prompt cache on its session (thread) id: a fork's requests carry the
    # fork's, a resumed run's the session it resumed.
    session = request.get("prompt_cache_key") or None
    if reply.error:
        script.record(Served("openai", path, "", model, Usage(), (), status=reply.error, side=side,
                             compact=compact, session=session))
        return _error(reply.error)
    tool = shell_tool(request) if reply.calls else None
    items = _items(reply, tool)
    response_id = _new_id("resp")
    response = {"id": response_id, "object": "response", "created_at": int(time.time()), "status": "in_progress",
                "model": model, "output": [], "usage": None, "error": None}
    script.record(Served("openai", path, response_id, model, reply.usage, reply.calls, side=side,
                         compact=compact, session=session))
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-request-id": _new_id("req")}
    return Answer(200, headers, _stream(response, items, wire_usage(reply.usage)))
