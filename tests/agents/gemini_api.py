"""The Gemini API (``POST .../v1beta/models/<model>:generateContent`` and
``:streamGenerateContent?alt=sse``), as the scripted model speaks it to Gemini CLI.

A scripted reply becomes one response: its text, and each of ``Reply.calls`` as one
``functionCall`` part calling ``run_shell_command`` (Gemini CLI's shell tool), with
``finishReason: STOP`` and the usage in Gemini's terms:

- ``promptTokenCount`` INCLUDES the cached tokens (``cachedContentTokenCount``);
- ``candidatesTokenCount`` EXCLUDES the thoughts (``thoughtsTokenCount``).

``Usage.output`` is the billable output (thoughts included) and ``Usage.reasoning`` the
thoughts, so candidates = output - reasoning; Gemini has no cache writes.

A request that offers no tools is a side request, recorded with ``side=True``: Gemini CLI
never writes those to its chat file (its model router asks ``:generateContent`` for a JSON
model choice, with ``responseMimeType``/``responseJsonSchema``; the other utility roles
too). Such a request gets what it asks for: a JSON value of its schema, or the side reply's
text. ``Reply.error`` answers with that HTTP status and a Google error body instead.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Iterator

from .script import Reply, Script, Served, Usage
from .server import Answer

SHELL_TOOL = "run_shell_command"
_ids = itertools.count(1)
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
           500: "INTERNAL", 503: "UNAVAILABLE"}


def _new_id() -> str:
    return f"scripted{next(_ids):06d}{int(time.time() * 1000) % 10**9:09d}"


def model_of(path: str) -> str:
    """``.../models/gemini-2.5-flash:streamGenerateContent`` -> ``gemini-2.5-flash``."""
    bare = path.split("?", 1)[0]
    return bare.rsplit("/", 1)[-1].split(":", 1)[0]


def offered_tools(request: dict) -> list[str]:
    names = []
    for tool in request.get("tools") or []:
        for decl in (tool or {}).get("functionDeclarations") or ():
            names.append(decl.get("name") or "")
    return names


def wire_usage(usage: Usage) -> dict:
    prompt = usage.input + usage.cache_read
    candidates = usage.output - usage.reasoning
    meta = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + usage.output}
    if usage.cache_read:
        meta["cachedContentTokenCount"] = usage.cache_read
    if usage.reasoning:
        meta["thoughtsTokenCount"] = usage.reasoning
    return meta


def _schema_value(schema: dict | None, name: str = ""):
    """A value of the JSON schema the router asks for (``model_choice``: flash;
    ``complexity_score``: 10, a simple task)."""
    schema = schema or {}
    kind = schema.get("type")
    kind = (kind[0] if isinstance(kind, list) else kind or "object").lower()
    if schema.get("enum"):
        options = schema["enum"]
        return "flash" if "flash" in options else options[0]
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: _schema_value(sub, key) for key, sub in props.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 10  # the classifier's complexity score (1-100): low, so the router picks flash
    if kind == "boolean":
        return False
    return f"Scripted {name or 'answer'}."


def _wants_json(request: dict) -> dict | None:
    config = request.get("generationConfig") or request.get("config") or {}
    if config.get("responseMimeType") == "application/json":
        return config.get("responseJsonSchema") or config.get("responseSchema") or {}
    return None


def _parts(reply: Reply, request: dict, side: bool) -> list[dict]:
    schema = _wants_json(request) if side else None
    if schema is not None:
        return [{"text": json.dumps(_schema_value(schema))}]
    parts = []
    if reply.text or not reply.calls:
        parts.append({"text": reply.text or "Done."})
    if reply.calls and SHELL_TOOL not in offered_tools(request):
        raise ValueError(f"the request offers no {SHELL_TOOL}: {offered_tools(request)}")
    for n, command in enumerate(reply.calls):
        parts.append({"functionCall": {"name": SHELL_TOOL,
                                       "args": {"command": command, "description": f"step {n}: {command}"}}})
    return parts


def _chunks(parts: list[dict], usage: dict, model: str, response_id: str) -> list[dict]:
    """The response as stream chunks: text in pieces, the calls, then the finish and usage."""
    chunks = []
    for part in parts:
        if "text" in part:
            text = part["text"]
            pieces = [text[i:i + 24] for i in range(0, len(text), 24)] or [""]
            chunks.extend([{"text": piece}] for piece in pieces)
        else:
            chunks.append([part])
    out = []
    for n, chunk_parts in enumerate(chunks):
        candidate = {"content": {"role": "model", "parts": chunk_parts}, "index": 0}
        doc = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
        if n == len(chunks) - 1:
            candidate["finishReason"] = "STOP"
            doc["usageMetadata"] = usage
        out.append(doc)
    return out


def _error(status: int) -> Answer:
    body = {"error": {"code": status, "message": f"Scripted error {status}.",
                      "status": _STATUS.get(status, "UNKNOWN")}}
    return Answer(status, {"Content-Type": "application/json"}, [json.dumps(body).encode()])


def handle(path: str, request: dict, script: Script) -> Answer:
    side = not offered_tools(request)
    reply = script.take(side)
    model = model_of(path)
    if reply.error:
        script.record(Served("gemini", path, "", model, Usage(), (), status=reply.error, side=side))
        return _error(reply.error)
    parts = _parts(reply, request, side)
    response_id = _new_id()
    calls = () if side else reply.calls
    script.record(Served("gemini", path, response_id, model, reply.usage, calls, side=side))
    chunks = _chunks(parts, wire_usage(reply.usage), model, response_id)
    if ":streamGenerateContent" not in path:
        whole = {**chunks[-1], "candidates": [{**chunks[-1]["candidates"][0],
                                               "content": {"role": "model", "parts": parts}}]}
        return Answer(200, {"Content-Type": "application/json"}, [json.dumps(whole).encode()])
    body = (f"data: {json.dumps(chunk)}\r\n\r\n".encode() for chunk in chunks)
    return Answer(200, {"Content-Type": "text/event-stream"}, body)
