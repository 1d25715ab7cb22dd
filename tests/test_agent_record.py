"""`verify --files --agent-record`: each session's tokens and dollars against Claude Code's own
record (its cost-state, 2.1.3xx; ../shared/docs/claude-session-store.md), each difference
with its reason, and a difference no reason of the agent's explains failing the check.

The session files are written here as Claude Code 2.1.328 writes them (entries seen in real
files: a cost-state as a run ends, rewritten later in the file when the session is resumed;
a fork's file holding copies of its parent's responses and a record that includes them). The
records' dollars are worked out here from the published prices, not from our price table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adw_patternd.cli import main
from adw_patternd.sources.transcript import STATE_VERSION, from_json
from helpers import query, write_config

MODEL = "claude-sonnet-4-5-20250929"
TITLE_MODEL = "claude-haiku-4-5-20251001"
# Nanodollars per token: input, output, cache read, 5-minute write, 1-hour write (sonnet 4.5: 3/15
# per million, reads 0.30, writes 1.25x and 2x input; haiku 4.5: 1/5, 0.10, 1.25 and 2)
PRICE = {MODEL: (3000, 15000, 300, 3750, 6000), TITLE_MODEL: (1000, 5000, 100, 1250, 2000)}
PROJECT = "-home-dev-shop"


def usage(i: int, write_1h: int = 0) -> dict:
    """A response's usage (input, output, cache read, 5m and 1h writes), different for each i."""
    return {"input": 40 + i, "output": 15 + i, "cache_read": 900 + 7 * i, "write_5m": 120 + 3 * i, "write_1h": write_1h}


def nanos(model: str, u: dict) -> int:
    p = PRICE[model]
    return (u["input"] * p[0] + u["output"] * p[1] + u["cache_read"] * p[2] + u["write_5m"] * p[3]
            + u["write_1h"] * p[4])


class Session:
    """One session file, written entry by entry; ``served`` is what its record covers."""

    def __init__(self, store: Path, sid: str, start: int = 0):
        self.sid, self.path = sid, store / PROJECT / f"{sid}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lines: list[dict] = []
        self.clock = start
        self.served: list[tuple[str, dict]] = []  # (model, usage) of what the agent paid for since its record began

    def ts(self) -> str:
        self.clock += 1
        return f"2026-12-04T18:{self.clock // 60 % 60:02d}:{self.clock % 60:02d}.000Z"

    def prompt(self, text: str) -> "Session":
        self.lines.append({"type": "user", "sessionId": self.sid, "timestamp": self.ts(), "cwd": "/home/dev/shop",
                           "version": "2.1.328", "message": {"role": "user", "content": text}})
        return self

    def response(self, mid: str, u: dict, end: bool = True, model: str = MODEL) -> "Session":
        """A response, written as Claude Code does: one entry per content block, the last one's usage."""
        api = {"input_tokens": u["input"], "output_tokens": u["output"], "cache_read_input_tokens": u["cache_read"],
               "cache_creation_input_tokens": u["write_5m"] + u["write_1h"],
               "cache_creation": {"ephemeral_5m_input_tokens": u["write_5m"], "ephemeral_1h_input_tokens": u["write_1h"]}}
        when = self.ts()
        for block, stop in (({"type": "text", "text": "thinking it over"}, None),
                            ({"type": "text", "text": "done"}, "end_turn" if end else None)):
            self.lines.append({"type": "assistant", "sessionId": self.sid, "timestamp": when, "requestId": f"req_{mid}",
                               "isSidechain": False, "version": "2.1.328",
                               "message": {"id": f"msg_{mid}", "model": model, "role": "assistant",
                                           "content": [block], "stop_reason": stop, "usage": api}})
        self.served.append((model, u))
        return self

    def paid(self, model: str, u: dict) -> "Session":
        """A request the agent paid for and wrote no entry for (a title)."""
        self.served.append((model, u))
        return self

    def cost_state(self) -> "Session":
        by_model: dict[str, dict] = {}
        for model, u in self.served:
            m = by_model.setdefault(model, {"inputTokens": 0, "outputTokens": 0, "cacheReadInputTokens": 0,
                                            "cacheCreationInputTokens": 0, "cacheCreationEphemeral5mInputTokens": 0,
                                            "cacheCreationEphemeral1hInputTokens": 0, "costUSD": 0.0})
            m["inputTokens"] += u["input"]
            m["outputTokens"] += u["output"]
            m["cacheReadInputTokens"] += u["cache_read"]
            m["cacheCreationInputTokens"] += u["write_5m"] + u["write_1h"]
            m["cacheCreationEphemeral5mInputTokens"] += u["write_5m"]
            m["cacheCreationEphemeral1hInputTokens"] += u["write_1h"]
            m["costUSD"] += nanos(model, u) / 1e9  # a float, summed as the agent sums it
        self.lines.append({"type": "cost-state", "sessionId": self.sid,
                           "totalCostUSD": sum(m["costUSD"] for m in by_model.values()), "totalAPIDuration": 486,
                           "totalToolDuration": 82, "totalDuration": 1573, "modelUsage": by_model,
                           "hasUnknownModelCost": False})
        return self

    def killed(self) -> "Session":
        """The run is killed: what it paid for is in no record (the next starts from the last written)."""
        last = max((i for i, line in enumerate(self.lines) if line["type"] == "cost-state"), default=None)
        covered = json.loads(json.dumps(self.lines[last]["modelUsage"])) if last is not None else {}
        self.served = [(m, {"input": u["inputTokens"], "output": u["outputTokens"],
                            "cache_read": u["cacheReadInputTokens"], "write_5m": u["cacheCreationEphemeral5mInputTokens"],
                            "write_1h": u["cacheCreationEphemeral1hInputTokens"]}) for m, u in covered.items()]
        return self

    def write(self) -> "Session":
        self.path.write_text("".join(json.dumps(line) + "\n" for line in self.lines))
        return self


def fork_of(parent: Session, sid: str) -> Session:
    """``--resume <parent> --fork-session``: the parent's conversation copied into a new file
    (the same entries, ids and timestamps), and a record that starts from the parent's."""
    fork = Session(parent.path.parent.parent, sid, start=parent.clock + 100)
    fork.lines.append({"type": "queue-operation", "operation": "enqueue", "sessionId": sid, "timestamp": fork.ts()})
    fork.lines += [{**line, "sessionId": sid} for line in parent.lines if line["type"] != "cost-state"]
    fork.served = list(parent.served)
    return fork


def verify(tmp: Path, store: Path, capsys, *extra: str) -> tuple[int, str]:
    cfg = write_config(tmp, {}, str(tmp / "ledger.db"), claude_projects=[{"path": str(store), "name": "claude"}])
    assert main(["sync", "--config", str(cfg)]) == 0
    capsys.readouterr()
    code = main(["verify", "--files", "--rounds", "1", "--config", str(cfg), *extra])
    return code, capsys.readouterr().out


def report_of(out: str, sid: str) -> list[str]:
    """The lines about one session: its figures, then its reasons."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"agent record claude/{sid}:"):
            reasons = []
            for x in lines[i + 1:]:
                if not x.startswith("  "):
                    break
                reasons.append(x.strip())
            return [line] + reasons
    return []


def summary(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("agent record: "))


def test_a_session_whose_figures_equal_its_record_gets_no_line_even_resumed_with_1_hour_writes(tmp_path, capsys):
    store = tmp_path / "store"
    s = Session(store, "equal").prompt("go").response("a1", usage(0), end=False).response("a2", usage(1, write_1h=50))
    s.cost_state()
    s.prompt("go on").response("a3", usage(2)).response("a4", usage(3, write_1h=20)).cost_state().write()  # resumed
    code, out = verify(tmp_path, store, capsys, "--agent-record")
    assert code == 0, out
    assert report_of(out, "equal") == []
    assert "1 session(s) hold Claude Code's own record: 1 equal to ours, 0 differ for the agent's reasons, 0 for" in out
    # The latest record is the one kept, with its figures per model
    (state,) = query(str(tmp_path / "ledger.db"), "SELECT state_json FROM agent_outputs")
    record = from_json("equal.jsonl", 0, 0, 0, 0, 0, "", "", state[0], True).agent_record.record
    assert json.loads(state[0])["v"] == STATE_VERSION
    assert record.nanos == sum(nanos(MODEL, usage(i, w)) for i, w in ((0, 0), (1, 50), (2, 0), (3, 20)))
    assert [m for m, _s in record.models] == [MODEL]
    assert record.spend().write_1h == 70


def test_a_fork_s_record_includes_its_parent_s_cost_and_the_reason_says_so(tmp_path, capsys):
    store = tmp_path / "store"
    parent = Session(store, "parent").prompt("go").response("p1", usage(0), end=False)
    parent.response("p2", usage(1, write_1h=50)).cost_state().write()
    fork = fork_of(parent, "fork").prompt("branch off").response("f1", usage(2)).response("f2", usage(3))
    fork.cost_state().write()
    code, out = verify(tmp_path, store, capsys, "--agent-record")
    assert code == 0, out
    assert report_of(out, "parent") == []
    copied = nanos(MODEL, usage(0)) + nanos(MODEL, usage(1, write_1h=50))
    own = nanos(MODEL, usage(2)) + nanos(MODEL, usage(3))
    head, *reasons = report_of(out, "fork")
    assert f"{own} nanodollars; the record's" in head and head.endswith(f"50 cache write 1h, {own + copied} nanodollars")
    assert reasons == [f"fork: the record includes {copied} nanodollars its parent parent counted (the copies of its "
                       f"responses in this session's files: {40 + 41} input, {15 + 16} output, {900 + 907} cache read, "
                       f"{120 + 123} cache write 5m, 50 cache write 1h, {copied} nanodollars)"]
    assert "1 equal to ours, 1 differ for the agent's reasons, 0 for none" in summary(out)


def test_side_requests_that_wrote_no_entry_make_the_record_higher(tmp_path, capsys):
    store = tmp_path / "store"
    title = {"input": 300, "output": 12, "cache_read": 0, "write_5m": 0, "write_1h": 0}
    s = Session(store, "titled").prompt("go").paid(TITLE_MODEL, title).response("t1", usage(0), end=False)
    s.response("t2", usage(1)).cost_state().write()
    code, out = verify(tmp_path, store, capsys, "--agent-record")
    assert code == 0, out
    _head, *reasons = report_of(out, "titled")
    assert reasons == ["side requests the agent made without writing an entry (titles, topics, compaction summaries): "
                       f"the record is higher by +300 input, +12 output, +{nanos(TITLE_MODEL, title)} nanodollars"]


def test_a_run_killed_before_its_record_and_responses_after_the_last_record_are_the_agent_s(tmp_path, capsys):
    store = tmp_path / "store"
    s = Session(store, "killed").prompt("go").response("k1", usage(0)).cost_state()
    s.prompt("more").response("k2", usage(1), end=False).killed()  # killed mid-run: no record
    s.prompt("carry on").response("k3", usage(2)).cost_state()  # the record restarts from the first
    s.prompt("again").response("k4", usage(3), end=False).write()  # still going: after the last record
    code, out = verify(tmp_path, store, capsys, "--agent-record")
    assert code == 0, out
    _head, *reasons = report_of(out, "killed")
    assert reasons == [
        "the record was written before responses that came after it (a run still going, or cut off): the record is "
        f"lower by {nanos(MODEL, usage(3))} nanodollars",
        "1 run(s) cut off before writing a record (killed): the next record started again from the last one "
        f"written, so it lacks their {nanos(MODEL, usage(1))} nanodollars"]


def test_a_difference_no_reason_of_the_agent_s_explains_is_ours_and_fails_the_check(tmp_path, capsys):
    store = tmp_path / "store"
    s = Session(store, "wrong").prompt("go").response("w1", usage(0)).cost_state()
    s.lines[-1]["modelUsage"][MODEL]["outputTokens"] -= 5  # the record has 5 output tokens fewer than the file
    s.write()
    priced = Session(store, "priced").prompt("go").response("q1", usage(1)).cost_state()
    priced.lines[-1]["totalCostUSD"] += 0.000002  # the same tokens, another price
    priced.write()
    code, out = verify(tmp_path, store, capsys, "--agent-record")
    assert code == 1, out
    assert report_of(out, "wrong")[1:] == [
        "ours: the record differs by -5 output, and none of the agent's reasons explains it"]
    assert report_of(out, "priced")[1:] == [
        "ours: the same tokens priced +2000 nanodollars in the record (a price in our table, or `prices:` in "
        "config.yaml), and none of the agent's reasons explains it"]
    assert "0 equal to ours, 0 differ for the agent's reasons, 2 for none of them" in summary(out)
    assert "the database says what the files say" in out  # the files and the database agree: the record does not


def test_without_the_flag_or_without_files(tmp_path, capsys):
    store = tmp_path / "store"
    s = Session(store, "wrong").prompt("go").response("w1", usage(0)).cost_state()
    s.lines[-1]["modelUsage"][MODEL]["outputTokens"] -= 5
    s.write()
    code, out = verify(tmp_path, store, capsys)
    assert code == 0 and "agent record" not in out
    assert main(["verify", "--agent-record", "--config", str(tmp_path / "config.yaml")]) == 2
    assert "use it with --files" in capsys.readouterr().err


@pytest.mark.parametrize("cut", [1, 3, 5, 8])
def test_a_record_read_in_appends_is_the_one_read_whole(tmp_path, capsys, cut):
    """The daemon reads a session as it grows: the record and its reasons come out the same."""
    store = tmp_path / "store"
    s = Session(store, "grown").prompt("go").response("g1", usage(0)).cost_state()
    s.prompt("more").response("g2", usage(1), end=False).killed()
    s.prompt("carry on").paid(TITLE_MODEL, {"input": 9, "output": 1, "cache_read": 0, "write_5m": 0, "write_1h": 0})
    s.response("g3", usage(2)).cost_state()
    whole = list(s.lines)
    s.lines = whole[:cut]
    s.write()
    cfg = write_config(tmp_path, {}, str(tmp_path / "ledger.db"), claude_projects=[{"path": str(store)}])
    assert main(["sync", "--config", str(cfg)]) == 0
    s.lines = whole
    s.write()
    code, out = verify(tmp_path, store, capsys, "--agent-record")  # syncs the rest, then compares
    assert code == 0, out
    assert [r.split(":")[0] for r in report_of(out, "grown")[1:]] == [
        "1 run(s) cut off before writing a record (killed)", "side requests the agent made without writing an entry "
        "(titles, topics, compaction summaries)"]
