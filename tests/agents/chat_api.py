"""The OpenAI Chat Completions API (``POST .../chat/completions``), as OpenAI streams it.

GitHub Copilot CLI (with a user's own provider), Qwen Code and OpenCode speak it. A scripted
reply becomes one completion: with ``stream: true``, ``chat.completion.chunk`` events (the
role, the text in deltas, each tool call's id and name then its arguments, a last chunk with
the finish reason), then, when ``stream_options.include_usage`` asks for it, a chunk with no
choices and the usage, then ``data: [DONE]``; without ``stream``, one ``chat.completion``.

The usage, in OpenAI's terms: ``prompt_tokens`` INCLUDES the cached ones
(``prompt_tokens_details.cached_tokens``) and any cache writes
(``prompt_tokens_details.cache_write_tokens``, sent only when scripted);
``completion_tokens`` INCLUDES the reasoning ones (``completion_tokens_details.
reasoning_tokens``).

Each of ``Reply.calls`` is one ``function`` tool call of the response, through the shell tool
the request offers (Copilot's ``bash``, Qwen Code's ``run_shell_command``, OpenCode's
``bash``), with the arguments that tool's JSON schema asks for: ``command``, and a
``description`` or other required fields where the schema requires them. A request that
offers no tools is a side request (a title, a summary) and gets ``script.side_reply``.
``Reply.error`` answers with that HTTP status and an OpenAI error body instead.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Iterator

from .script import Reply, Script, Served, Usage
from .server import Answer

# The shell tools the agents offer, best first.
SHELL_TOOLS = ("bash", "run_shell_command", "shell", "shell_command", "exec_command")


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def _function(tool: dict) -> dict:
    fn = tool.get("function") if isinstance(tool, dict) else None
    return fn if isinstance(fn, dict) else {}


def offered_tools(request: dict) -> list[str]:
    return [_function(t).get("name") or "" for t in request.get("tools") or []]


def shell_tool(request: dict) -> dict:
    """The function spec of the shell tool the request offers."""
    tools = {(_function(t).get("name") or ""): _function(t) for t in request.get("tools") or []}
    for name in SHELL_TOOLS:
        if name in tools:
            return tools[name]
    raise ValueError(f"the request offers no shell tool: {sorted(tools)}")


def _filler(name: str, spec: dict, command: str):
    """A value for a required argument other than the command, as its schema allows."""
    if name == "description":
        return f"run {command}"[:80]
    if "default" in spec:
        return spec["default"]
    if spec.get("enum"):
        return spec["enum"][0]
    kind = spec.get("type")
    return {"boolean": False, "integer": 0, "number": 0, "array": [], "object": {}}.get(kind, "")


def shell_arguments(tool: dict, command: str) -> dict:
    """The arguments of one call of ``tool`` running ``command``."""
    schema = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    args = {"command": command}
    if "description" in props:
        args["description"] = f"run {command}"[:80]
    for name in schema.get("required") or ():
        if name not in args:
            args[name] = _filler(name, props.get(name) or {}, command)
    return args


def wire_usage(usage: Usage) -> dict:
    prompt = usage.input + usage.cache_read + usage.cache_write
    details = {"cached_tokens": usage.cache_read}
    if usage.cache_write:
        details["cache_write_tokens"] = usage.cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def _tool_calls(reply: Reply, request: dict) -> list[dict]:
    if not reply.calls:
        return []
    tool = shell_tool(request)
    return [{"id": _new_id("call_"), "type": "function",
             "function": {"name": tool["name"], "arguments": json.dumps(shell_arguments(tool, command))}}
            for command in reply.calls]


def _chunk(base: dict, delta: dict | None, finish: str | None = None, **more) -> bytes:
    body = {**base, "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
            **more}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _stream(base: dict, text: str, calls: list[dict], finish: str, usage: dict | None) -> Iterator[bytes]:
    yield _chunk(base, {"role": "assistant", "content": ""})
    for start in range(0, len(text), 16):
        yield _chunk(base, {"content": text[start:start + 16]})
    for index, call in enumerate(calls):
        head = {"index": index, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}
        yield _chunk(base, {"tool_calls": [head]})
        yield _chunk(base, {"tool_calls": [{"index": index, "function": {"arguments": call["function"]["arguments"]}}]})
    yield _chunk(base, {}, finish)
    if usage is not None:
        yield _chunk(base, None, usage=usage)
    yield b"data: [DONE]\n\n"


def _error(status: int) -> Answer:
    kinds = {429: "rate_limit_exceeded", 500: "server_error", 502: "server_error", 503: "server_error"}
    body = {"error": {"message": f"Scripted error {status}.", "type": kinds.get(status, "invalid_request_error"),
                      "param": None, "code": kinds.get(status)}}
    return Answer(status, {"Content-Type": "application/json"}, [json.dumps(body).encode()])


def handle(path: str, request: dict, script: Script) -> Answer:
    side = not request.get("tools")
    reply = script.take(side)
    model = request.get("model") or ""
    if reply.error:
        script.record(Served("chat", path, "", model, Usage(), (), status=reply.error, side=side))
        return _error(reply.error)
    calls = _tool_calls(reply, request)
    text = reply.text or ("" if calls else "Done.")
    finish = reply.stop or ("tool_calls" if calls else "stop")
    response_id = _new_id("chatcmpl-")
    usage = wire_usage(reply.usage)
    script.record(Served("chat", path, response_id, model, reply.usage, reply.calls, side=side))
    base = {"id": response_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "system_fingerprint": "fp_scripted"}
    if request.get("stream"):
        options = request.get("stream_options") or {}
        include = bool(options.get("include_usage")) if isinstance(options, dict) else False
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        return Answer(200, headers, _stream(base, text, calls, finish, usage if include else None))
    message = {"role": "assistant", "content": text or None, **({"tool_calls": calls} if calls else {})}
    body = {**base, "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
    return Answer(200, {"Content-Type": "application/json"}, [json.dumps(body).encode()])

