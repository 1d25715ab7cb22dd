"""A Codex session's folded state (sources/codex.py: CodexState) as a Workflow: one agent,
"codex", whose spend is all estimated from usage, and whose shell calls' shares are its
layer-4 command parts, as a Claude Code session's Bash calls are."""

from __future__ import annotations

from ..core.model import AgentPart, CommandPart, Workflow, workflow_id
from .codex import CodexState
from .parse import MAX_DURATION_S, epoch_us, iso, parse_time, unmatched_parts

AGENT = "codex"


def codex_status(turn: str, fresh: bool, call_open: bool = False) -> str:
    """A session's state from its last turn event (docs/choices.md): ended with task_complete,
    completed; with turn_aborted, interrupted; a turn started and not ended, running while its
    file changed within stale_after_s, else interrupted. A rollout with no turn event (builds
    before they were written, such as 0.77) says less: running while fresh; then interrupted
    when a shell call was written without its output (the process stopped while the command
    ran: measured on 0.77 killed mid-run), else completed."""
    if turn == "complete":
        return "completed"
    if turn == "aborted":
        return "interrupted"
    if fresh:
        return "running"
    return "interrupted" if turn == "started" or call_open else "completed"


def codex_workflow(home: str, sid: str, s: CodexState, fresh: bool) -> Workflow:
    """Pure: the same state gives the same Workflow. ``fresh``: its file changed within
    stale_after_s (the session may still be going)."""
    start = parse_time(s.first_ts, [], "") if s.first_ts else None
    end = parse_time(s.last_ts, [], "") if s.last_ts else None
    duration = 0
    if start and end and 0 <= (end - start).total_seconds() <= MAX_DURATION_S:
        duration = int((end - start).total_seconds() + 0.5)
    commands = tuple(CommandPart(sig, c.cost_nanos, c.tokens, c.calls, c.lines) for sig, c in sorted(s.commands.items()))
    agent = AgentPart(AGENT, runs=1, tokens=s.tokens, estimated_nanos=s.nanos, duration_ms=duration * 1000,
                      commands=commands, unmatched=unmatched_parts(s.unmatched))
    spent = sorted(((m.tokens, name) for name, m in s.models.items() if name), reverse=True)
    return Workflow(
        workflow_id=workflow_id(home, sid), root_name=home, adw_id=sid, request=s.request,
        model=spent[0][1] if spent else s.model, status=codex_status(s.turn, fresh, s.calls_open > 0),
        start_time=iso(start), end_time=iso(end), seen_us=epoch_us(start or end), duration_seconds=duration,
        total_tokens=s.tokens, cost_nanos=s.nanos, request_source="session" if s.request else None,
        time_source="session" if start else None, estimated_nanos=s.nanos, agents=(agent,),
        waits=tuple((sig, w) for sig, w in sorted(s.waits.items()) if w.calls))
