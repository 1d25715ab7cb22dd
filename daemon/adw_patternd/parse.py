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
from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import InputRejected
from .model import AgentSummary, Workflow
from .pricing import PriceRule, cost_nanos

MAX_COST_USD = 100_000.0  # a single agent run costing more is not a real number
MAX_TOKENS = 10_000_000_000
MAX_DURATION_S = 30 * 86_400  # longer durations come from broken clocks, not real runs
ERROR_TEXT_LIMIT = 2000

_TEXT_FIELDS = ("adw_id", "nl_input", "workflow_template", "workflow", "issue_class", "issue_number",
                "model_used", "model", "status", "current_phase", "branch_name", "plan_file")


@dataclass(frozen=True)
class StateFields:
    """The fields of adw_state.json that adw-patternd uses, normalised."""

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


_ISO_FIX = re.compile(r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)\s*(Z|[+-]\d\d:?\d\d|UTC)?$", re.I)


def parse_time(value, notes: list[str], key: str) -> datetime | None:
    """ISO 8601 (zone optional, naive read as UTC) or epoch seconds/milliseconds."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
            x = float(value)
            if x > 1e11:  # milliseconds
                x /= 1000
            return datetime.fromtimestamp(x, tz=timezone.utc)
        if isinstance(value, str):
            s = value.strip()
            m = _ISO_FIX.match(s)
            if m:
                zone = m.group(3) or ""
                zone = "+00:00" if zone.upper() in ("Z", "UTC") else zone
                s = f"{m.group(1)}T{m.group(2).replace(',', '.')}{zone}"
            t = datetime.fromisoformat(s)
            return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    notes.append(f"{key} {str(value)[:60]!r} is not an ISO 8601 time (ignored)")
    return None


def parse_state(path: str, data: bytes, notes: list[str]) -> StateFields:
    state = decode_json_object(path, data, notes)
    text = {k: _text(path, state, k) for k in _TEXT_FIELDS}
    for key in ("start_time", "end_time"):
        if isinstance(state.get(key), (list, dict)):
            raise InputRejected(path, f"field {key!r} should be a time, found {type(state[key]).__name__}")
    return StateFields(
        nl_input=text["nl_input"],
        workflow_template=text["workflow_template"] or text["workflow"],
        issue_class=text["issue_class"],
        issue_number=text["issue_number"],
        model=text["model_used"] or text["model"],
        status=text["status"],
        start_time=parse_time(state.get("start_time"), notes, "start_time"),
        end_time=parse_time(state.get("end_time"), notes, "end_time"),
        branch_name=text["branch_name"],
        plan_file=text["plan_file"],
    )


# ---------------------------------------------------------------------------
# raw_output.jsonl result lines

def _count(value, what: str, notes: list[str], limit: float) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            notes.append(f"{what} {value[:30]!r} is not a number (counted as 0)")
            return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        notes.append(f"{what} is not a number (counted as 0)")
        return 0
    if value < 0 or value > limit:
        notes.append(f"{what} {value} is out of range (counted as 0)")
        return 0
    return int(value)


def _reported_cost(result: dict, notes: list[str]) -> float | None:
    for key in ("total_cost_usd", "cost_usd", "total_cost"):
        v = result.get(key)
        if v is None:
            continue
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                notes.append(f"{key} {v[:30]!r} is not a number (priced from usage)")
                return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            notes.append(f"{key} is not a number (priced from usage)")
            return None
        if v < 0 or v > MAX_COST_USD:
            notes.append(f"{key} {v} is out of range (priced from usage)")
            return None
        return float(v)
    return None


def result_model(result: dict) -> str | None:
    usage = result.get("modelUsage")
    if isinstance(usage, dict):
        for key in usage:
            if isinstance(key, str) and key:
                return key
    return None


@dataclass(frozen=True)
class RunTotals:
    """What one result line (one run of an agent) adds to the agent's totals."""

    tokens: int
    cost_nanos: int
    duration_ms: int
    is_error: bool
    text: str | None
    model: str | None


def result_totals(result: dict, prices: tuple[PriceRule, ...], fallback_model: str | None,
                  notes: list[str]) -> RunTotals:
    usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
    inp = _count(usage.get("input_tokens"), "input_tokens", notes, MAX_TOKENS)
    cw = _count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens", notes, MAX_TOKENS)
    cr = _count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens", notes, MAX_TOKENS)
    out = _count(usage.get("output_tokens"), "output_tokens", notes, MAX_TOKENS)
    model = result_model(result) or fallback_model
    cost = _reported_cost(result, notes)
    if cost is not None:
        nanos = round(cost * 1e9)
    else:
        priced = cost_nanos(model, inp, out, cw, cr, prices)
        if priced is None and (inp or out or cw or cr):
            notes.append(f"no cost reported and no price for model {model!r} (counted as $0)")
        nanos = priced or 0
    is_error = result.get("is_error") is True or str(result.get("subtype", "")).startswith("error")
    text = None
    if is_error:
        t = result.get("result")
        text = (t if isinstance(t, str) and t else str(result.get("subtype") or "error"))[-ERROR_TEXT_LIMIT:]
    duration = _count(result.get("duration_ms"), "duration_ms", notes, MAX_DURATION_S * 1000)
    return RunTotals(inp + cw + cr + out, nanos, duration, is_error, text, model)


def _init_model(first_line: bytes) -> str | None:
    """The model named by a transcript's first (system init) line."""
    if b'"init"' not in first_line:
        return None
    try:
        init = json.loads(first_line)
    except ValueError:
        return None
    return init.get("model") if isinstance(init, dict) and isinstance(init.get("model"), str) else None


def scan_output_chunk(agent: AgentSummary, chunk, start: int, prices: tuple[PriceRule, ...],
                      notes: list[str], where: str) -> AgentSummary:
    """Fold the complete lines of ``chunk`` (bytes or mmap; the file's bytes from ``agent.offset``)
    into the agent's totals. Only lines that mention "result" are parsed: the rest of a
    multi-megabyte transcript is skipped at memory speed. The offset moves to just after
    the last newline, so a line still being written is read next time, whole.
    """
    end = chunk.rfind(b"\n")
    if end < 0:
        return agent
    model = agent.model
    look_at_init = agent.offset == 0 and model is None  # parsed only if a result names no model
    results, tokens, nanos, duration, errors = agent.results, agent.tokens, agent.cost_nanos, agent.duration_ms, agent.error_results
    last_error = agent.last_error
    pos = 0
    while True:
        hit = chunk.find(b'"result"', pos, end)
        if hit < 0:
            break
        line_start = chunk.rfind(b"\n", 0, hit) + 1
        line_end = chunk.find(b"\n", hit)
        pos = line_end + 1
        line = bytes(chunk[line_start:line_end])
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            notes.append(f"{where}: line at byte {start + line_start} is not valid JSON (skipped)")
            continue
        if isinstance(obj, dict) and obj.get("type") == "result":
            if look_at_init and model is None and result_model(obj) is None:
                look_at_init = False
                model = _init_model(bytes(chunk[: chunk.find(b"\n")]))
            run = result_totals(obj, prices, model, notes)
            results += 1
            tokens += run.tokens
            nanos += run.cost_nanos
            duration += run.duration_ms
            model = run.model
            if run.is_error:
                errors += 1
                last_error = run.text
    return AgentSummary(agent.name, agent.device, agent.inode, start + end + 1, results, tokens, nanos, duration,
                        errors, last_error, model, agent.tail)


# ---------------------------------------------------------------------------
# the workflow

def iso(t: datetime | None) -> str | None:
    return t.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z") if t else None


def epoch_us(t: datetime | None) -> int | None:
    if t is None:
        return None
    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


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


def build_workflow(root_name: str, adw_id: str, state: StateFields, agents: list[AgentSummary],
                   error_log_tail: str | None) -> Workflow:
    """Derive a Workflow from its parsed parts. ``agents`` in name order; ``error_log_tail``
    is the end of a non-empty error.log, or None."""
    results = [a for a in agents if a.results]
    tokens = sum(a.tokens for a in results)
    nanos = sum(a.cost_nanos for a in results)
    error_results = sum(a.error_results for a in results)
    error_count = error_results + (1 if error_log_tail is not None else 0)
    retry_count = sum(a.retries for a in results)
    failing = [a.last_error for a in results if a.last_error]
    error_message = failing[-1] if failing else (error_log_tail or None)

    duration = 0
    if state.start_time and state.end_time:
        span = (state.end_time - state.start_time).total_seconds()
        if 0 <= span <= MAX_DURATION_S:
            duration = _round_seconds(span)
    if not duration:
        ms = sum(a.duration_ms for a in results)
        if 0 < ms <= MAX_DURATION_S * 1000:
            duration = _round_seconds(ms / 1000)

    declared = (state.status or "").lower()
    if error_count > 0 or declared in ("failed", "error", "errored"):
        status = "failed"
    elif state.end_time is not None or declared in ("completed", "complete", "success", "succeeded", "done"):
        status = "completed"
    else:
        status = "running"

    model = state.model or next((a.model for a in results if a.model), None)
    seen = state.start_time or state.end_time
    workflow_id = f"{root_name}/{adw_id}" if root_name else adw_id
    return Workflow(
        workflow_id=workflow_id, root_name=root_name, adw_id=adw_id,
        nl_input=state.nl_input,
        request=state.nl_input if state.nl_input and state.nl_input.strip() else request_fallback(adw_id, state),
        workflow_template=state.workflow_template, issue_class=state.issue_class,
        issue_number=state.issue_number, model=model, status=status,
        start_time=iso(state.start_time), end_time=iso(state.end_time), seen_us=epoch_us(seen),
        duration_seconds=duration, total_tokens=tokens, cost_nanos=nanos,
        error_count=error_count, retry_count=retry_count, error_message=error_message,
    )


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
