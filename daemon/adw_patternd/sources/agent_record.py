"""`verify --files --agent-record`: a session's tokens and dollars as we count them, against
Claude Code's own record (its latest cost-state), each difference with its reason.

The record and our count differ for reasons that are the agent's (../shared/docs/claude-session-store.md):
- fork: a forked (or resumed-into-a-new-file) session's record includes what its parent's
  responses cost; the copies in its file are counted for the parent, not again here;
- the record was written before responses that came after it (a run still going, or cut off);
- a run cut off before it wrote a record (killed): the next run's record starts again from
  the last one written, so the cut run's responses are in no record;
- side requests (titles, topics, compaction summaries) that the agent paid for and wrote no
  entry for: the record is higher, in tokens.
What none of these explains is ours: a bug. Pure: folded states in, lines out.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cost_record import KINDS, ZERO, Spend
from .transcript import Transcript, copied_spend, counted_spend


@dataclass(frozen=True)
class RecordCheck:
    """One session with a record: its figures, and each difference's reason."""

    workflow_id: str
    ours: Spend
    record: Spend
    reasons: tuple[str, ...]  # empty: the figures are equal
    unexplained: bool  # a difference none of the agent's reasons explains: ours, a bug


def tolerance(record_nanos: int) -> int:
    """The record's dollars are a float the agent summed: equal to ours within a nanodollar
    per dollar (at least one)."""
    return 1 + record_nanos // 10**9


def describe(s: Spend) -> str:
    return ", ".join(f"{v} {kind}" for kind, v in zip(KINDS, s, strict=True))


def _by(s: Spend) -> str:
    """A difference (record minus ours), its fields that are not zero."""
    return ", ".join(f"{v:+d} {kind}" for kind, v in zip(KINDS, s, strict=True) if v) or "nothing"


def _sid(workflow_id: str) -> str:
    return workflow_id.split("/", 1)[-1] if workflow_id else "(several sessions)"


def _settled(residual: Spend, tol: int) -> bool:
    return not any(residual[:5]) and abs(residual.nanos) <= tol


def check_session(workflow_id: str, files: list[Transcript], prices) -> RecordCheck | None:
    """Compare a session (its own file and its sub-agents' files) with the record in its own
    file; None when it holds none."""
    main = next((t for t in files if t.agent == "session" and t.agent_record.record), None)
    if main is None:
        return None
    state = main.agent_record
    record = state.record.spend()
    ours, copied = ZERO, {}
    for t in files:
        ours = ours.plus(counted_spend(t.closed, t.messages, prices))
        for keeper, s in copied_spend(t, prices).items():
            copied[keeper] = copied.get(keeper, ZERO).plus(s)
    tol = tolerance(record.nanos)
    residual = record.minus(ours)
    if _settled(residual, tol):
        return RecordCheck(workflow_id, ours, record, (), False)
    reasons = []
    for keeper, s in sorted(copied.items()):
        reasons.append(f"fork: the record includes {s.nanos} nanodollars its parent {_sid(keeper)} counted "
                       f"(the copies of its responses in this session's files: {describe(s)})")
        residual = residual.minus(s)
    later = counted_spend(main.closed, main.messages, prices).minus(state.baseline)
    if any(later):
        reasons.append(f"the record was written before responses that came after it (a run still going, or cut "
                       f"off): the record is lower by {later.nanos} nanodollars")
        residual = residual.plus(later)
    if any(v < 0 for v in residual) and any(state.unrecorded):
        reasons.append(f"{state.cut_runs} run(s) cut off before writing a record (killed): the next record "
                       f"started again from the last one written, so it lacks their {state.unrecorded.nanos} "
                       "nanodollars")
        residual = residual.plus(state.unrecorded)
    unexplained = False
    if _settled(residual, tol):
        pass
    elif all(v >= 0 for v in residual[:5]) and any(residual[:5]) and residual.nanos >= -tol:
        reasons.append("side requests the agent made without writing an entry (titles, topics, compaction "
                       f"summaries): the record is higher by {_by(residual)}")
    elif not any(residual[:5]) and residual.nanos < 0 and state.record.unknown:
        reasons.append(f"the agent had no price for a model it used (hasUnknownModelCost): the record is lower by "
                       f"{-residual.nanos} nanodollars")
    else:
        unexplained = True
        what = (f"the same tokens priced {_by(residual)} in the record (a price in our table, or `prices:` in "
                "config.yaml)" if not any(residual[:5]) else f"the record differs by {_by(residual)}")
        reasons.append(f"ours: {what}, and none of the agent's reasons explains it")
    return RecordCheck(workflow_id, ours, record, tuple(reasons), unexplained)


def report_lines(records) -> tuple[list[str], int]:
    """What `verify --files --agent-record` prints: each session whose figures differ from
    Claude Code's own record, with the reasons, then a summary; and how many differ for no
    reason of the agent's (ours: a bug)."""
    differ = [r for r in records if r.reasons]
    lines = []
    for r in differ:
        lines.append(f"agent record {r.workflow_id}: ours {describe(r.ours)}; the record's {describe(r.record)}")
        lines.extend(f"  {reason}" for reason in r.reasons)
    unexplained = sum(r.unexplained for r in records)
    lines.append(f"agent record: {len(records)} session(s) hold Claude Code's own record: {len(records) - len(differ)} "
                 f"equal to ours, {len(differ) - unexplained} differ for the agent's reasons, {unexplained} for none "
                 "of them (ours: a bug worth reporting)")
    return lines, unexplained
