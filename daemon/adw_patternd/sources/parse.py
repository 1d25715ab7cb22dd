"""Parsing ADW files into values. Pure: bytes in, values (or InputRejected) out.

Real files vary between ADW generations, so known variants are accepted (issue_number as
text or number, `workflow` for `workflow_template`, `model` for `model_used`, timestamps
with or without a zone or as epoch numbers). A scalar of the other kind is coerced; a
list or object where a scalar belongs rejects the file, naming the field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ..core.errors import InputRejected
from ..core.times import epoch_us, iso, parse_time  # noqa: F401 (re-exported: the readers' times)
from ..core.model import AgentPart, CommandPart, Workflow, workflow_id
from ..core.pricing import PriceRule
from ..core.waits import Waits
from .transcript import MAX_COST_USD, CommandCost, Transcript, Totals, add_unmatched, totals

MAX_DURATION_S = 30 * 86_400  # longer durations come from broken clocks, not real runs

_TEXT_FIELDS = ("adw_id", "nl_input", "workflow_template", "workflow", "issue_class", "issue_number",
                "model_used", "model", "status", "current_phase", "branch_name", "plan_file",
                "task_description", "prompt")
_START_KEYS = ("start_time", "created_at", "started_at")
_END_KEYS = ("end_time", "completed_at")


@dataclass(frozen=True)
class StateFields:
    """The fields of adw_state.json (or workflow_summary.json) that adw-patternd uses, normalised."""

    nl_input: str | None = None
    workflow_template: str | None = None
    issue_class: str | None = None
    issue_number: str | None = None
    model: str | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    branch_name: str | None = None
    plan_file: str | None = None
    task_description: str | None = None  # phase-state layout
    prompt: str | None = None  # workflow_summary.json


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def decode_json_object(path: str, data: bytes, notes: list[str]) -> dict:
    """Decode a JSON object; raise InputRejected with the reason when it is not one."""
    if not data.strip():
        raise InputRejected(path, "empty file (probably being written)", transient=True)
    if data.startswith(b"\xef\xbb\xbf"):
        notes.append("starts with a UTF-8 byte order mark (ignored)")
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputRejected(path, f"not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})") from None
    duplicates: list[str] = []

    def pairs(items):
        obj = dict(items)
        if len(obj) != len(items):
            seen = set()
            duplicates.extend(k for k, _ in items if k in seen or seen.add(k))
        return obj

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=_reject_constant)
    except RecursionError:
        raise InputRejected(path, "JSON nested too deeply") from None
    except ValueError as e:
        msg = str(e)
        truncated = isinstance(e, json.JSONDecodeError) and (
            e.pos >= len(text.rstrip()) - 1 or e.msg.startswith("Unterminated string"))
        if truncated:
            raise InputRejected(path, f"truncated JSON ({msg}; probably being written)", transient=True) from None
        raise InputRejected(path, f"not valid JSON ({msg})") from None
    if not isinstance(value, dict):
        raise InputRejected(path, f"expected a JSON object, found {type(value).__name__}")
    if duplicates:
        notes.append(f"duplicate keys {sorted(set(duplicates))[:5]} (the last value is used)")
    return value


def _text(path: str, state: dict, key: str) -> str | None:
    v = state.get(key)
    if v is None or isinstance(v, str):
        return v or None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return str(v)
    raise InputRejected(path, f"field {key!r} should be text, found {type(v).__name__}")


def _first_time(path: str, state: dict, keys: tuple[str, ...], notes: list[str]) -> datetime | None:
    for key in keys:
        if isinstance(state.get(key), (list, dict)):
            raise InputRejected(path, f"field {key!r} should be a time, found {type(state[key]).__name__}")
        t = parse_time(state.get(key), notes, key)
        if t is not None:
            return t
    return None


def _phase_times(state: dict, notes: list[str]) -> tuple[datetime | None, datetime | None]:
    """The earliest start and the latest end among phase_results[] (phase-state layout)."""
    phases = state.get("phase_results")
    if not isinstance(phases, list):
        return None, None
    starts, ends = [], []
    for p in phases:
        if isinstance(p, dict):
            for key, into in (("started_at", starts), ("completed_at", ends)):
                if not isinstance(p.get(key), (list, dict)):
                    t = parse_time(p.get(key), notes, f"phase_results[].{key}")
                    if t is not None:
                        into.append(t)
    return (min(starts) if starts else None), (max(ends) if ends else None)


def parse_state(path: str, data: bytes, notes: list[str]) -> StateFields:
    """adw_state.json in any of its generations (classic, isolated, phase state, reference)."""
    state = decode_json_object(path, data, notes)
    text = {k: _text(path, state, k) for k in _TEXT_FIELDS}
    start = _first_time(path, state, _START_KEYS, notes)
    end = _first_time(path, state, _END_KEYS, notes)
    if start is None and end is None:
        start, end = _phase_times(state, notes)
    return StateFields(
        nl_input=text["nl_input"],
        workflow_template=text["workflow_template"] or text["workflow"],
        issue_class=text["issue_class"],
        issue_number=text["issue_number"],
        model=text["model_used"] or text["model"],
        status=text["status"],
        start_time=start,
        end_time=end,
        branch_name=text["branch_name"],
        plan_file=text["plan_file"],
        task_description=text["task_description"],
        prompt=text["prompt"],
    )


def merge_summary(state: StateFields | None, summary: StateFields | None) -> StateFields:
    """The state file's fields, with workflow_summary.json filling what it lacks."""
    if state is None or summary is None:
        return state or summary or StateFields()
    return StateFields(*(a if a is not None else b for a, b in zip(
        (getattr(state, f) for f in StateFields.__dataclass_fields__),
        (getattr(summary, f) for f in StateFields.__dataclass_fields__), strict=True)))


def issue_title(text: str) -> str | None:
    """The GitHub issue's title in a prompt file: `/<command> <args...> {"number": N, "title": ...}`,
    the issue JSON being the last argument."""
    decoder = json.JSONDecoder()
    pos = text.find("{")
    tries = 0
    while pos >= 0 and tries < 200:
        tries += 1
        try:
            obj, _end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("title"), str) and obj["title"].strip():
            return obj["title"].strip()
        pos = text.find("{", pos + 1)
    return None


_LOG_TIME = re.compile(rb"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)", re.M)


def log_times(head: bytes, tail: bytes) -> tuple[datetime | None, datetime | None]:
    """The first timestamp at the head of an execution.log and the last one at its tail
    (`2025-10-17 19:04:18 - INFO - ...`, the host's local time without a zone: read as UTC)."""
    notes: list[str] = []
    first = _LOG_TIME.search(head)
    lasts = _LOG_TIME.findall(tail)
    start = parse_time(first.group(1).decode(), notes, "execution.log") if first else None
    end = parse_time(lasts[-1].decode(), notes, "execution.log") if lasts else None
    return start, end or start


# ---------------------------------------------------------------------------
# the workflow

_SLUG = re.compile(r"adw-[0-9a-z]+-(?:[a-z]+_[a-z_]+-)?(.+?)(?:\.md)?$", re.I)


def request_fallback(adw_id: str, state: StateFields) -> str | None:
    """nl_input is often null: fall back to the request slug in the branch or plan name
    (feat-issue-5-adw-8035e781-add-version-info-cli -> "add version info cli")."""
    for source in (state.branch_name, state.plan_file):
        if source:
            tail = source.rsplit("/", 1)[-1]
            marker = f"adw-{adw_id}-"
            i = tail.find(marker)
            slug = tail[i + len(marker):] if i >= 0 else None
            if slug is None:
                m = _SLUG.search(tail)
                slug = m.group(1) if m else None
            if slug:
                slug = re.sub(r"^[a-z]+_[a-z_]+-", "", slug)  # an agent name (sdlc_planner-)
                slug = re.sub(r"\.md$", "", slug)
                return slug.replace("-", " ").replace("_", " ").strip() or None
    return None


def _round_seconds(x: float) -> int:
    return int(x + 0.5)


@dataclass(frozen=True)
class Joined:
    """A session store's file joined to an ADW workflow: named by one of its runs (it adds
    times, never dollars: the run's result line has them), or an attempt the ADW folder lost
    (run in the workflow's worktree, named by no run: a retry, its spend from usage)."""

    sid: str
    named: bool
    transcript: Transcript


@dataclass(frozen=True)
class Observed:
    """Everything read from one workflow folder, parsed: the input of build_workflow."""

    state: StateFields
    transcripts: tuple[Transcript, ...] = ()
    error_log_tail: str | None = None  # the end of a non-empty error.log
    log_start: datetime | None = None  # first and last execution.log timestamps
    log_end: datetime | None = None
    oldest_mtime_ns: int = 0
    newest_mtime_ns: int = 0
    fresh: bool = True  # a file changed within stale_after_s: a run without a result may still be going
    issue_title: str | None = None
    sessions: tuple[Joined, ...] = ()


_DECLARED = {
    "completed": "completed", "complete": "completed", "success": "completed", "succeeded": "completed",
    "done": "completed", "failed": "failed", "failure": "failed", "error": "failed", "errored": "failed",
    "running": "running", "in_progress": "running", "started": "running", "pending": "running", "active": "running",
}


def first_line(text: str | None) -> str | None:
    """The first non-blank line of a text, stripped."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return None


def needs_issue_title(state: StateFields) -> bool:
    """Only then are prompt files read: the request has no better source."""
    return not ((state.nl_input or "").strip() or first_line(state.task_description) or first_line(state.prompt))


def request_of(adw_id: str, state: StateFields, title: str | None) -> tuple[str | None, str | None, str | None]:
    """(nl_input, request, source), by the order of real-adw-trees.md. A slug is a guess:
    it becomes the request, never nl_input."""
    if state.nl_input and state.nl_input.strip():
        return state.nl_input, state.nl_input, "nl_input"
    for source in ("task_description", "prompt"):
        line = first_line(getattr(state, source))
        if line:
            return line, line, source
    if title:
        return title, title, "issue_title"
    slug = request_fallback(adw_id, state)
    return None, slug, "slug" if slug else None


def agent_parts(read: list[tuple[str, Totals]]) -> tuple[AgentPart, ...]:
    """One AgentPart per agent folder, from the totals of its transcripts."""
    by_agent: dict[str, list[Totals]] = {}
    for agent, tot in read:
        by_agent.setdefault(agent, []).append(tot)
    parts = []
    for name in sorted(by_agent):
        ts = by_agent[name]
        commands: dict[str, CommandCost] = {}
        unmatched: dict[str, CommandCost] = {}
        for tot in ts:
            for sig, c in tot.commands.items():
                commands[sig] = commands.get(sig, CommandCost()).plus(c)
            for head, c in tot.unmatched.items():
                add_unmatched(unmatched, head, c)
        parts.append(AgentPart(
            name, sum(t.runs for t in ts), sum(t.unfinished for t in ts), sum(t.tokens for t in ts),
            sum(t.reported_nanos for t in ts), sum(t.estimated_nanos for t in ts), sum(t.duration_ms for t in ts),
            sum(t.errors for t in ts), sum(max(0, t.runs - 1 - t.lost) + t.lost for t in ts),
            tuple(CommandPart(sig, c.cost_nanos, c.tokens, c.calls, c.lines) for sig, c in sorted(commands.items())),
            unmatched_parts(unmatched)))
    return tuple(parts)


def unmatched_parts(unmatched: dict) -> tuple[CommandPart, ...]:
    """An agent's unmatched heads (head -> CommandCost) as CommandParts, by head."""
    return tuple(CommandPart(head, c.cost_nanos, c.tokens, c.calls) for head, c in sorted(unmatched.items()))


def _status(state: StateFields, transcripts: tuple[Transcript, ...], error_count: int, fresh: bool) -> str:
    declared = (state.status or "").strip().lower()
    if declared:
        return _DECLARED.get(declared, declared)
    if error_count > 0:
        return "failed"
    if state.end_time is not None:
        return "completed"
    sessions = [t for t in transcripts if t.session]
    if sessions:  # a session store's session (docs/choices.md: a session's state)
        main = [t for t in sessions if t.agent == "session"] or sessions  # its subagents' when its file is gone
        if all(t.ended for t in main):
            return "completed"
        return "running" if fresh else "interrupted"
    written = [t for t in transcripts if t.runs or t.open]
    if written and all(t.runs and not t.open for t in written):
        return "completed"
    return "running" if fresh else "interrupted"


def recorded_since(last_ts: str, now_ns: int, window_s: float) -> bool:
    """Whether a session's last recorded entry (its timestamp) is within ``window_s`` of
    ``now_ns``; True where it has none that parses (its files' mtimes decide alone). A store
    copied or restored has new mtimes and old entries: its sessions are not going on."""
    when = parse_time(last_ts, [], "") if last_ts else None
    return when is None or now_ns / 1e9 - when.timestamp() < window_s


def _ns_time(ns: int) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc) if ns > 0 else None


def _times(obs: Observed, timed: list[Transcript], status: str) -> tuple:
    """(start, end, time source): from the sessions' own timestamps, else the state file,
    else the execution logs, else the files' mtimes."""
    state = obs.state
    firsts = [x for x in (parse_time(t.first_ts, [], "") for t in timed if t.first_ts) if x]
    lasts = [x for x in (parse_time(t.last_ts, [], "") for t in timed if t.last_ts) if x]
    if firsts:
        return min(firsts), max(lasts), "session"
    if state.start_time or state.end_time:
        return state.start_time, state.end_time, "state"
    if obs.log_start or obs.log_end:
        return obs.log_start, obs.log_end, "execution_log"
    start = _ns_time(obs.oldest_mtime_ns)
    end = None if status == "running" else _ns_time(obs.newest_mtime_ns)
    return start, end, "mtime" if start else None


def _duration(start, end, time_source: str | None, agents: tuple[AgentPart, ...]) -> int:
    """The span between start and end when it is a real one, else the agents' own durations."""
    duration = 0
    if start and end and time_source != "mtime":
        span = (end - start).total_seconds()
        if 0 <= span <= MAX_DURATION_S:
            duration = _round_seconds(span)
    if not duration:
        ms = sum(a.duration_ms for a in agents)
        if 0 < ms <= MAX_DURATION_S * 1000:
            duration = _round_seconds(ms / 1000)
    return duration


def build_workflow(root_name: str, adw_id: str, obs: Observed, prices: tuple[PriceRule, ...],
                   notes: list[str]) -> Workflow:
    """Derive a Workflow from what was read. Pure: the same Observed gives the same Workflow."""
    state = obs.state
    read = [(t, totals(t, prices, notes)) for t in obs.transcripts]
    lost = lost_attempts(obs, read, prices, notes)
    agents = agent_parts([(t.agent, tot) for t, tot in read] + lost)
    tokens = sum(a.tokens for a in agents)
    nanos = sum(a.cost_nanos for a in agents)
    estimated = sum(a.estimated_nanos for a in agents)
    error_count = sum(a.errors for a in agents) + (1 if obs.error_log_tail is not None else 0)
    retry_count = sum(a.retries for a in agents)
    failing = [tot.last_error for _t, tot in read if tot.last_error]
    error_message = failing[-1] if failing else (obs.error_log_tail or None)
    status = _status(state, obs.transcripts, error_count, obs.fresh)

    timed = [t for t in obs.transcripts if t.session] + [j.transcript for j in obs.sessions]
    start, end, time_source = _times(obs, timed, status)
    duration = _duration(start, end, time_source, agents)
    nl_input, request, request_source = request_of(adw_id, state, obs.issue_title)
    if request_source in (None, "slug"):
        first = min((t for t in timed if t.prompt), key=lambda t: parse_time(t.first_ts, [], "") or _NEVER, default=None)
        if first is not None:
            request, request_source = first.prompt, "session"
    model = state.model or next((tot.model for _t, tot in read if tot.model), None)
    return Workflow(
        workflow_id=workflow_id(root_name, adw_id), root_name=root_name, adw_id=adw_id,
        nl_input=nl_input, request=request,
        workflow_template=state.workflow_template, issue_class=state.issue_class,
        issue_number=state.issue_number, model=model, status=status,
        start_time=iso(start), end_time=iso(end), seen_us=epoch_us(start or end),
        duration_seconds=duration, total_tokens=tokens, cost_nanos=nanos,
        error_count=error_count, retry_count=retry_count, error_message=error_message,
        request_source=request_source, time_source=time_source, estimated_nanos=estimated,
        unfinished_runs=sum(a.unfinished for a in agents), agents=agents,
        overwritten_runs=sum(tot.overwritten for _t, tot in read),
        overwritten_nanos=sum(tot.overwritten_nanos for _t, tot in read),
        session_runs=len(lost),
        waits=_waits(timed),
    )


def _waits(sessions) -> tuple[tuple[str, Waits], ...]:
    merged: dict[str, Waits] = {}
    for t in sessions:
        for sig, w in t.waits.items():
            merged[sig] = merged.get(sig, Waits()).plus(w)
    return tuple((sig, w) for sig, w in sorted(merged.items()) if w.calls)


_NEVER = datetime.max.replace(tzinfo=timezone.utc)


def lost_attempts(obs: Observed, read, prices, notes: list[str]) -> list[tuple[str, Totals]]:
    """(agent, totals) of each joined session no run names: an earlier attempt whose
    transcript a retry overwrote. It belongs to the agent whose named session began with the
    same slash command, else to an agent called "session"; it counts as one run and one
    retry, its spend estimated from its usage."""
    if not any(not j.named for j in obs.sessions):
        return []
    agent_of_session = {sid: t.agent for t, _tot in read for sid in _sessions_of(t)}
    by_command = {}
    for j in obs.sessions:
        if j.named and j.transcript.prompt and j.sid in agent_of_session:
            by_command.setdefault(j.transcript.prompt.split()[0], agent_of_session[j.sid])
    lost = []
    for j in obs.sessions:
        if j.named:
            continue
        tot = totals(j.transcript, prices, notes)
        command = (j.transcript.prompt or "").split()[:1]
        agent = by_command.get(command[0], "session") if command else "session"
        lost.append((agent, replace(tot, runs=1, unfinished=0, lost=1)))
    return lost


def _sessions_of(t: Transcript):
    yield from (r.session_id for r in t.overwritten + t.runs if r.session_id)
    yield from (x for x in (t.session_id, t.head) if x)


def _int_field(d: dict, key: str) -> int:
    v = d.get(key)
    try:
        return max(0, int(float(v))) if v is not None and not isinstance(v, bool) else 0
    except (TypeError, ValueError):
        return 0


def workflow_from_record(record: dict) -> Workflow | None:
    """A Workflow from a reference-style dict (workflow_id, nl_input, total_tokens, ...).
    None when it has no workflow_id."""
    workflow_id = record.get("workflow_id") or record.get("adw_id")
    if not workflow_id:
        return None
    notes: list[str] = []
    start = parse_time(record.get("start_time"), notes, "start_time")
    end = parse_time(record.get("end_time"), notes, "end_time")
    cost = record.get("actual_cost_total")
    try:
        cost = float(cost) if cost is not None else 0.0
    except (TypeError, ValueError):
        cost = 0.0
    nl = record.get("nl_input")
    duration = record.get("duration_seconds")
    try:
        duration = _round_seconds(float(duration)) if duration is not None else 0
    except (TypeError, ValueError):
        duration = 0
    return Workflow(
        workflow_id=str(workflow_id), root_name=str(record.get("root_name") or ""),
        adw_id=str(record.get("adw_id") or workflow_id),
        nl_input=nl if isinstance(nl, str) else None,
        request=nl if isinstance(nl, str) else None,
        workflow_template=record.get("workflow_template") or record.get("workflow"),
        issue_class=record.get("issue_class"),
        issue_number=None if record.get("issue_number") is None else str(record.get("issue_number")),
        model=record.get("model_used") or record.get("model"),
        status=str(record.get("status") or "completed"),
        start_time=iso(start), end_time=iso(end), seen_us=epoch_us(start or end),
        duration_seconds=max(0, min(duration, MAX_DURATION_S)),
        total_tokens=_int_field(record, "total_tokens"),
        cost_nanos=round(cost * 1e9) if math.isfinite(cost) and 0 <= cost <= MAX_COST_USD * 1000 else 0,
        error_count=_int_field(record, "error_count"),
        retry_count=_int_field(record, "retry_count"),
        error_message=record.get("error_message") if isinstance(record.get("error_message"), str) else None,
    )
