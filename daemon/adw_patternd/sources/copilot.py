"""GitHub Copilot CLI sessions (../shared/docs/more-agents.md, section 1): a home such as
~/.copilot keeps each session's event log in `session-state/<session id>/events.jsonl`.

Only `session-state/` is listed and read. The rest of the home (config.json, settings.json,
logs/, the SQLite index session-store.db with its WAL) is never opened nor listed: it holds
the user's settings and tokens, and the index repeats what the event logs say.

What a log says, translated into agent_fold's events:
- `session.usage_record` is one model response (Copilot 1.0.102): `inputTokens` includes the
  cached ones (uncached = input − cacheRead − cacheWrite), `outputTokens` includes reasoning.
  Its `cost` is a premium-request multiplier, not dollars (0 with a user's own provider): never
  used. A record whose `accounting.sourceSessionId` names another session is a fork's copy of
  its parent's: not counted here (the parent counts it).
- `assistant.message` (joined on `apiCallId`) brings the response's tool calls: `bash` calls
  are shell commands; every tool request counts in k.
- Older builds (measured: 1.0.60) write no usage record: a message then says only its
  `outputTokens`, and `session.shutdown.modelMetrics` the session's totals per model. Each
  message counts its output; the shutdown adds what the totals hold beyond what was counted
  (input and cache reads, unknown per response): the session's sums are exact, its commands'
  shares a lower bound (their output only). Those totals cover one run (since the start or
  the last `session.resume`); 1.0.102's are cumulative, but it has usage records.
- `tool.execution_start` / `tool.execution_complete`: a shell call's wait; its exit code is
  `shellExecution.exitCode`, else the `<shellId: N completed with exit code X>` line.
- `session.shutdown` ends the session, `session.resume` goes on with it.
"""

from __future__ import annotations

import os
import re

from .agent_fold import (CallEnd, CallStart, Ended, Prompt, ReadContext, Reopened, Response, Seen, SessionRead,
                         SessionRef, read_jsonl_session)
from .transcript import count

AGENT = "copilot"
CONFIG_KEY = "copilot_homes"
DESCRIBE = "a GitHub Copilot CLI home, such as ~/.copilot"
SESSIONS = "session-state"
EVENTS = "events.jsonl"
SHELL_TOOL = "bash"
RECENT = 32  # api call ids remembered between a usage record and its message
_EXIT = re.compile(r"<shellId: [^>]*exit code (-?\d+)>")


def list_sessions(root: str, problems: list[str]) -> dict[str, SessionRef]:
    """Every session folder under `<root>/session-state` that holds an event log."""
    folder = os.path.join(root, SESSIONS)
    found: dict[str, SessionRef] = {}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return found
    except OSError as e:
        problems.append(f"{folder}: cannot be listed ({e.strerror or e})")
        return found
    for entry in entries:
        if entry.name.startswith("."):
            continue  # .session-operation-locks and the like
        path = os.path.join(entry.path, EVENTS)
        try:
            if not entry.is_dir() or not os.path.isfile(path):
                continue
        except OSError as e:
            problems.append(f"{entry.path}: cannot be read ({e.strerror or e})")
            continue
        found[entry.name] = SessionRef(entry.name, path, (path,))
    return found


def watched_folders(root: str) -> tuple[str, ...]:
    return (os.path.join(root, SESSIONS),)


def session_of(root: str, changed_path: str) -> str | None:
    """`<root>/session-state/<sid>/events.jsonl` -> sid."""
    rel = os.path.relpath(changed_path, os.path.join(root, SESSIONS))
    parts = rel.split(os.sep)
    if len(parts) == 2 and parts[1] == EVENTS and not parts[0].startswith("."):
        return parts[0]
    return None


def read_session(ref: SessionRef, stored: str | None, ctx: ReadContext) -> SessionRead:
    return read_jsonl_session(ref, stored, ctx, AGENT,
                              lambda records, state: events(records, ref.sid, state.extra, ctx.notes, ref.path))


# ---------------------------------------------------------------------------------------
# records to events

def _remember(extra: dict, key: str, value: str) -> None:
    ring = extra.setdefault(key, [])
    ring.append(value)
    del ring[:-RECENT]


def events(records, sid: str, extra: dict, notes: list[str], where: str):
    """The events of a log's records. ``extra`` (kept in the state) carries what a later record
    needs: the api calls whose usage record was read or skipped, whether the session has usage
    records at all, and what was counted per model without them."""
    for rec in records:
        data, ts = rec.get("data"), rec.get("timestamp")
        kind = rec.get("type")
        if not isinstance(data, dict):
            yield Seen(ts)
        elif kind == "session.usage_record":
            yield from _usage_record(data, ts, sid, extra, notes, where)
        elif kind == "assistant.message":
            yield from _message(data, ts, extra, notes, where)
        elif kind == "user.message":
            text = data.get("content")
            yield Prompt(text, ts) if isinstance(text, str) else Seen(ts)
        elif kind == "tool.execution_start":
            yield CallStart(str(data.get("toolCallId") or ""), ts)
        elif kind == "tool.execution_complete":
            yield CallEnd(str(data.get("toolCallId") or ""), ts, _exit_code(data))
        elif kind == "session.shutdown":
            yield from _shutdown(data, ts, extra, notes, where)
            yield Ended(ts)
        elif kind == "session.resume":
            extra.pop("partial", None)  # an old build's next shutdown totals this run alone
            yield Reopened(ts)
        else:
            yield Seen(ts)


def _usage_record(data: dict, ts, sid: str, extra: dict, notes: list[str], where: str):
    usage = data.get("usage")
    if not isinstance(usage, dict):
        yield Seen(ts)
        return
    accounting = usage.get("accounting") if isinstance(usage.get("accounting"), dict) else {}
    call = usage.get("apiCallId") or accounting.get("usageId")
    call = call if isinstance(call, str) else ""
    source = accounting.get("sourceSessionId")
    if isinstance(source, str) and source and source != sid:
        if call:
            _remember(extra, "copied", call)
        yield Seen(ts)
        return
    extra["records"] = extra.get("records", 0) + 1
    if call:
        _remember(extra, "recorded", call)
    odd: list[str] = []
    inp, out, cr, cw = (count(usage.get(k), k, odd) for k in
                        ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens"))
    notes.extend(f"{where}: {n}" for n in odd)
    model = usage.get("model") if isinstance(usage.get("model"), str) else None
    yield Response(call, model, (max(0, inp - cr - cw), out, cw, cr), ts)


def _message(data: dict, ts, extra: dict, notes: list[str], where: str):
    call = data.get("apiCallId") if isinstance(data.get("apiCallId"), str) else ""
    if call and call in extra.get("copied", ()):
        yield Seen(ts)  # a fork's copy of its parent's response
        return
    requests = data.get("toolRequests") if isinstance(data.get("toolRequests"), list) else []
    calls = tuple(_call(r) for r in requests if isinstance(r, dict))
    model = data.get("model") if isinstance(data.get("model"), str) else None
    if call and call in extra.get("recorded", ()):
        yield Response(call, model, None, ts, calls)
        return
    # No usage record for it (builds before them): its output is all it says.
    odd: list[str] = []
    out = count(data.get("outputTokens"), "outputTokens", odd)
    notes.extend(f"{where}: {n}" for n in odd)
    counted = extra.setdefault("partial", {}).setdefault(model or "", [0, 0, 0, 0])
    counted[1] += out
    yield Response(call or str(data.get("messageId") or ""), model, (0, out, 0, 0), ts, calls)


def _call(request: dict) -> tuple[str, str | None]:
    call_id = request.get("toolCallId") if isinstance(request.get("toolCallId"), str) else ""
    args = request.get("arguments")
    if request.get("name") == SHELL_TOOL and isinstance(args, dict) and isinstance(args.get("command"), str):
        return call_id, args["command"]
    return call_id, None


def _exit_code(data: dict) -> int | None:
    shell = data.get("shellExecution")
    code = shell.get("exitCode") if isinstance(shell, dict) else None
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    result = data.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    if isinstance(content, str):
        m = _EXIT.search(content[-200:])
        if m:
            return int(m.group(1))
    return None


_METRIC_KEYS = ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens")


def _shutdown(data: dict, ts, extra: dict, notes: list[str], where: str):
    """For a session without usage records: what the shutdown's per-model totals hold beyond
    what its messages counted (its input and cache reads), as one response per model without
    calls. Measured on 1.0.60: the totals cover the run since the start or the last resume (the
    builds with usage records make them cumulative instead), so what was counted restarts at
    each `session.resume`."""
    metrics = data.get("modelMetrics")
    if extra.get("records") or not isinstance(metrics, dict):
        return
    for model, m in sorted(metrics.items()):
        usage = m.get("usage") if isinstance(m, dict) else None
        if not isinstance(usage, dict):
            continue
        odd: list[str] = []
        inp, out, cr, cw = (count(usage.get(k), k, odd) for k in _METRIC_KEYS)
        notes.extend(f"{where}: shutdown {n}" for n in odd)
        counted = extra.setdefault("partial", {}).setdefault(model, [0, 0, 0, 0])
        total = [max(0, inp - cr - cw), out, cw, cr]
        more = [max(0, t - c) for t, c in zip(total, counted)]
        if any(more):
            extra["partial"][model] = [c + d for c, d in zip(counted, more)]
            extra["shutdowns"] = extra.get("shutdowns", 0) + 1
            yield Response(f"shutdown-{extra['shutdowns']}-{model}", model, tuple(more), ts)

