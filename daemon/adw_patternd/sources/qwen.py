"""Qwen Code sessions (../shared/docs/more-agents.md, section 3): a home such as ~/.qwen keeps
each session's log in `projects/<sanitised cwd>/chats/<session id>.jsonl` (archived ones in
`chats/archive/`).

Only `projects/*/chats/` is listed and read. The rest of the home (settings.json,
oauth_creds.json, usage_record.jsonl, usage/, tmp/, extensions) is never opened: it holds the
user's settings and credentials, and the usage files repeat what the chat logs say.

What a log says, translated into agent_fold's events:
- an `assistant` record with `usageMetadata` is one model response. On the OpenAI path (the
  one measured) `promptTokenCount` includes the cached tokens and `candidatesTokenCount` the
  reasoning ones; where `totalTokenCount` shows the thoughts outside the candidates (Gemini's
  way), they are added to the output. Its `functionCall` parts are its tool calls:
  `run_shell_command` ones are shell commands. The `ui_telemetry` `qwen-code.api_response`
  record mirrors the same response: never counted.
- `tool_result`: a call's end; its exit code is `resultDisplay.exitCode` (0.24), else the
  `Exit Code: N` line of its output (0.15). Its wait is the `qwen-code.tool_call` telemetry's
  `duration_ms` (keyed by `call_id`; 0.15 gives none, so by its command), else result − response.
- an assistant record without a tool call ends the turn (the session is then ended, as a
  Claude Code session whose last message ended its turn); a user prompt goes on with it.
- records carrying `forkedFrom` are a fork's copies of another session's: not counted here.
"""

from __future__ import annotations

import os
import re

from .agent_fold import (CallEnd, Ended, Prompt, ReadContext, Response, Seen, SessionRead, SessionRef,
                         read_jsonl_session)
from .transcript import count

AGENT = "qwen"
CONFIG_KEY = "qwen_homes"
DESCRIBE = "a Qwen Code home, such as ~/.qwen"
PROJECTS = "projects"
CHATS = "chats"
ARCHIVE = "archive"
SHELL_TOOL = "run_shell_command"
MAX_DURATIONS = 64  # tool durations remembered until their result record
_EXIT = re.compile(r"(?m)^Exit Code: (-?\d+)")


def _chat_files(folder: str, problems: list[str]):
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    except OSError as e:
        problems.append(f"{folder}: cannot be listed ({e.strerror or e})")
        return
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name.endswith(".jsonl") and not entry.name.startswith("."):
            try:
                if entry.is_file():
                    yield entry.name[: -len(".jsonl")], entry.path
            except OSError as e:
                problems.append(f"{entry.path}: cannot be read ({e.strerror or e})")


def list_sessions(root: str, problems: list[str]) -> dict[str, SessionRef]:
    """Every chat log under `<root>/projects/*/chats/` (and `chats/archive/`)."""
    base = os.path.join(root, PROJECTS)
    found: dict[str, SessionRef] = {}
    try:
        projects = sorted(e.path for e in os.scandir(base) if e.is_dir())
    except FileNotFoundError:
        return found
    except OSError as e:
        problems.append(f"{base}: cannot be listed ({e.strerror or e})")
        return found
    for project in projects:
        chats = os.path.join(project, CHATS)
        for folder in (chats, os.path.join(chats, ARCHIVE)):
            for sid, path in _chat_files(folder, problems):
                found.setdefault(sid, SessionRef(sid, path, (path,)))
    return found


def watched_folders(root: str) -> tuple[str, ...]:
    return (os.path.join(root, PROJECTS),)


def session_of(root: str, changed_path: str) -> str | None:
    """`<root>/projects/<project>/chats/[archive/]<sid>.jsonl` -> sid."""
    parts = os.path.relpath(changed_path, os.path.join(root, PROJECTS)).split(os.sep)
    if len(parts) in (3, 4) and parts[1] == CHATS and parts[-1].endswith(".jsonl") and (
            len(parts) == 3 or parts[2] == ARCHIVE):
        return parts[-1][: -len(".jsonl")]
    return None


def read_session(ref: SessionRef, stored: str | None, ctx: ReadContext) -> SessionRead:
    return read_jsonl_session(ref, stored, ctx, AGENT,
                              lambda records, state: events(records, state.extra, ctx.notes, ref.path))


# ---------------------------------------------------------------------------------------
# records to events

def events(records, extra: dict, notes: list[str], where: str):
    """The events of a chat log's records. ``extra`` (kept in the state) carries the tool
    durations the telemetry gave, until their result record comes."""
    for rec in records:
        ts, kind = rec.get("timestamp"), rec.get("type")
        if "forkedFrom" in rec:
            yield Seen(ts)
        elif kind == "assistant":
            yield from _assistant(rec, ts, notes, where)
        elif kind == "tool_result":
            yield _tool_result(rec, ts, extra)
        elif kind == "user":
            text = _user_text(rec)
            yield Prompt(text, ts) if text else Seen(ts)
        elif kind == "system" and rec.get("subtype") == "ui_telemetry":
            _telemetry(rec, extra)
            yield Seen(ts)
        else:
            yield Seen(ts)


def _parts(rec: dict) -> list:
    msg = rec.get("message")
    parts = msg.get("parts") if isinstance(msg, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _user_text(rec: dict) -> str | None:
    if rec.get("provenance") not in (None, "real_user"):
        return None
    for part in _parts(rec):
        if isinstance(part.get("text"), str) and part["text"].strip():
            return part["text"]
    return None


def usage_of(meta, notes: list[str], where: str):
    """(uncached input, output with reasoning, cache write, cache read) of a usageMetadata."""
    if not isinstance(meta, dict):
        return None
    odd: list[str] = []
    prompt, cand, thoughts, total, cached = (count(meta.get(k), k, odd) for k in (
        "promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount",
        "cachedContentTokenCount"))
    notes.extend(f"{where}: {n}" for n in odd)
    cached = min(cached, prompt)
    output = cand
    if thoughts and total == prompt + cand + thoughts:
        output += thoughts  # thoughts outside the candidates (Gemini's way): billed as output
    return (prompt - cached, output, 0, cached)


def _assistant(rec: dict, ts, notes: list[str], where: str):
    calls = []
    for part in _parts(rec):
        fc = part.get("functionCall")
        if not isinstance(fc, dict):
            continue
        args = fc.get("args") if isinstance(fc.get("args"), dict) else {}
        command = args.get("command") if fc.get("name") == SHELL_TOOL else None
        calls.append((str(fc.get("id") or ""), command if isinstance(command, str) else None))
    usage = usage_of(rec.get("usageMetadata"), notes, where)
    model = rec.get("model") if isinstance(rec.get("model"), str) else None
    rid = rec.get("uuid") if isinstance(rec.get("uuid"), str) else ""
    yield Response(rid, model, usage or (0, 0, 0, 0), ts, tuple(calls))
    if not calls:
        yield Ended(ts)


def _telemetry(rec: dict, extra: dict) -> None:
    payload = rec.get("systemPayload")
    event = payload.get("uiEvent") if isinstance(payload, dict) else None
    if not isinstance(event, dict) or event.get("event.name") != "qwen-code.tool_call":
        return
    ms = event.get("duration_ms")
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
        return
    args = event.get("function_args") if isinstance(event.get("function_args"), dict) else {}
    key = event.get("call_id") or ("command:" + str(args.get("command")))
    durations = extra.setdefault("durations", [])
    durations.append([str(key), ms])
    del durations[:-MAX_DURATIONS]


def _duration(extra: dict, call_id: str, command: str | None) -> int | None:
    durations = extra.get("durations") or []
    for key in (call_id, "command:" + str(command)):
        for i, (k, ms) in enumerate(durations):
            if k == key:
                del durations[i]
                return ms
    return None


def _tool_result(rec: dict, ts, extra: dict) -> CallEnd:
    result = rec.get("toolCallResult") if isinstance(rec.get("toolCallResult"), dict) else {}
    response = next((p["functionResponse"] for p in _parts(rec) if isinstance(p.get("functionResponse"), dict)), {})
    call_id = str(result.get("callId") or response.get("id") or "")
    display = result.get("resultDisplay")
    code = display.get("exitCode") if isinstance(display, dict) else None
    output = response.get("response", {}).get("output") if isinstance(response.get("response"), dict) else None
    if not (isinstance(code, int) and not isinstance(code, bool)):
        m = _EXIT.search(output) if isinstance(output, str) else None
        code = int(m.group(1)) if m else None
    command = None
    if isinstance(output, str) and output.startswith("Command: "):
        command = output[len("Command: "):].split("\nDirectory:", 1)[0]
    return CallEnd(call_id, ts, code, _duration(extra, call_id, command))
