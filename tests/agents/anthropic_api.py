"""The Anthropic Messages API as the scripted model speaks it to Claude Code.

``handle(path, request, script)`` answers POST /v1/messages: streaming (SSE) when the
request asks for it, as the real service does (message_start with the whole usage,
content blocks with their deltas, message_delta with the stop reason and the final output
tokens, message_stop), plain JSON otherwise. /v1/messages/count_tokens gets a count.

Which reply a request gets: a request that offers no tools is a side request (a title, a
bash output summary in 2.0.x) and gets the script's side reply; so does 2.0.x's warm-up
sub-agent (its one user message is ``Warmup``, offering no tools either), recorded apart
because its answer, unlike a side request's, is written to an agent-<id>.jsonl file.
Every other request takes the next scripted reply. Every answer is recorded as a Served.
"""

from __future__ import annotations

import json
import re
import secrets
import string

from .script import Reply, Script, Served, Usage
from .server import Answer

_ALNUM = string.ascii_letters + string.digits
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
JSON_HEADERS = {"Content-Type": "application/json"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}
SUBAGENT_TOOLS = ("Task", "Agent")
# metadata.user_id: "user_<hash>_account__session_<uuid>" (2.0.x), a JSON text with "session_id" (2.1.x)
_SESSION = re.compile(r'session(?:_id)?[_"\\:]*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})')  # 2.1.x renamed the Task tool to Agent; take whichever is offered


def _id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(24))


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def is_warmup(request: dict) -> bool:
    """2.0.x's warm-up sub-agents: one user message saying ``Warmup``."""
    messages = request.get("messages") or []
    return len(messages) == 1 and _text_of(messages[0].get("content")).strip() == "Warmup"


def is_compaction(request: dict) -> bool:
    """The summary request of a compaction: its last user message asks for the summary."""
    messages = request.get("messages") or []
    last = _text_of(messages[-1].get("content")) if messages else ""
    return "create a detailed summary of" in last


def kind(request: dict) -> str:
    """``warmup``, ``compact``, ``side`` (no tools offered), or ``step`` (a scripted turn)."""
    if is_warmup(request):
        return "warmup"
    if is_compaction(request):
        return "compact"
    if not request.get("tools"):
        return "side"
    return "step"


def session_of(request: dict) -> str | None:
    found = _SESSION.search(str((request.get("metadata") or {}).get("user_id") or ""))
    return found.group(1) if found else None


def subagent_of(request: dict, script: Script) -> str | None:
    """The scripted sub-agent whose conversation this is: its prompt is the first user message."""
    messages = request.get("messages") or []
    first = _text_of(messages[0].get("content")) if messages else ""
    return next((prompt for prompt in script.agents if prompt in first), None)


def usage_json(usage: Usage, output: int | None = None) -> dict:
    return {"input_tokens": usage.input,
            "cache_creation_input_tokens": usage.cache_write,
            "cache_read_input_tokens": usage.cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": usage.cache_write_5m,
                               "ephemeral_1h_input_tokens": usage.cache_write_1h},
            "output_tokens": usage.output if output is None else output,
            "service_tier": "standard"}


def _subagent_tool(request: dict) -> str:
    offered = {t.get("name") for t in request.get("tools") or []}
    return next((n for n in SUBAGENT_TOOLS if n in offered), SUBAGENT_TOOLS[0])


def content_blocks(reply: Reply, request: dict) -> list[dict]:
    """The response's content: its text, one Bash tool_use per call, a sub-agent call."""
    blocks: list[dict] = []
    if reply.text or not (reply.calls or reply.subagent):
        blocks.append({"type": "text", "text": reply.text or "Done."})
    for command in reply.calls:
        blocks.append({"type": "tool_use", "id": _id("toolu_"), "name": "Bash",
                       "input": {"command": command, "description": "Run " + command[:40]}})
    if reply.subagent is not None:
        blocks.append({"type": "tool_use", "id": _id("toolu_"), "name": _subagent_tool(request),
                       "input": {"description": "Scripted sub-agent", "prompt": reply.subagent,
                                 "subagent_type": "general-purpose"}})
    return blocks


def stop_reason(reply: Reply, blocks: list[dict]) -> str:
    if reply.stop:
        return reply.stop
    return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _stream(message: dict, usage: Usage, blocks: list[dict], stop: str):
    """The SSE events of one response, as the real service sends them: usage whole in
    message_start (output_tokens there is a first count), the final output in message_delta."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": usage_json(usage, output=min(usage.output, 1))}
    yield _event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            yield _event("content_block_start", {"type": "content_block_start", "index": index,
                                                 "content_block": {"type": "text", "text": ""}})
            text = block["text"]
            for i in range(0, len(text), 16):
                yield _event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                     "delta": {"type": "text_delta", "text": text[i:i + 16]}})
        else:
            yield _event("content_block_start", {"type": "content_block_start", "index": index,
                                                 "content_block": {**block, "input": {}}})
            raw = json.dumps(block["input"])
            for i in range(0, len(raw), 24):
                yield _event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                     "delta": {"type": "input_json_delta",
                                                               "partial_json": raw[i:i + 24]}})
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _event("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": stop, "stop_sequence": None},
                                   "usage": {"output_tokens": usage.output}})
    yield _event("message_stop", {"type": "message_stop"})


def _error(status: int, path: str, request: dict, script: Script) -> Answer:
    script.record(Served(api="anthropic", path=path, response_id="", model=str(request.get("model", "")),
                         usage=Usage(), calls=(), status=status, session=session_of(request)))
    body = {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"),
                                       "message": f"Scripted error {status}."}}
    return Answer(status, {**JSON_HEADERS, "request-id": _id("req_")}, [json.dumps(body).encode()])


def _count_tokens(request: dict) -> Answer:
    size = len(json.dumps(request.get("messages") or [])) // 4 + 1
    return Answer(200, JSON_HEADERS, [json.dumps({"input_tokens": size}).encode()])


def handle(path: str, request: dict, script: Script) -> Answer:
    if path.split("?", 1)[0].rstrip("/").endswith("/count_tokens"):
        return _count_tokens(request)
    what = kind(request)
    reply = script.take(side=what != "step", agent=subagent_of(request, script) if what == "step" else None,
                        compact=what == "compact")
    if reply.error:
        return _error(reply.error, path, request, script)
    model = str(request.get("model") or "claude-sonnet-4-5-20250929")
    blocks = content_blocks(reply, request)
    stop = stop_reason(reply, blocks)
    message = {"id": _id("msg_"), "type": "message", "role": "assistant", "model": model}
    script.record(Served(api="anthropic", path=path, response_id=message["id"], model=model, usage=reply.usage,
                         calls=reply.calls, side=what == "side", subagent=reply.subagent,
                         warmup=what == "warmup", compact=what == "compact", session=session_of(request)))
    headers = {"request-id": _id("req_")}
    if request.get("stream"):
        return Answer(200, {**SSE_HEADERS, **headers}, _stream(message, reply.usage, blocks, stop))
    whole = {**message, "content": blocks, "stop_reason": stop, "stop_sequence": None,
             "usage": usage_json(reply.usage)}
    return Answer(200, {**JSON_HEADERS, **headers}, [json.dumps(whole).encode()])
