"""Synthetic Claude Code session stores (../shared/docs/claude-session-store.md), joined to
the synthetic ADW trees of trees.py: each agent run's conversation written again with a
timestamp on every entry, as Claude Code does beside the stream-json copy an ADW keeps.

What the store holds, and tests check against: split responses (one entry per content
block, output_tokens growing), sidechain replays of a parent message, subagent files, a
line cut short, people's own sessions with Bash calls, and the first attempt of a retried
agent, which its ADW folder lost when the retry rewrote its transcript.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .trees import RunPlan, Turn, Written, _turns, make_real_tree_with, price_usd

START = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
INTERACTIVE_PROJECT = "/home/dev/shop"
PEOPLE_ASK = ("why does the build fail on main?", "Run the tests and fix what breaks",
              "what changed since yesterday?\nShow me the diff first.", "typecheck the client and fix the errors",
              "commit this with a good message")
PEOPLE_RUN = ("git diff", "git status", "npm run build", "cd app/server && uv run pytest tests/ -q",
              "npx tsc --noEmit", "git log --oneline -10", "git add -A && git commit -m \"fix: tidy\"")


def project_folder(cwd: str) -> str:
    """Claude Code's project folder name for a working folder: every character that is not
    a letter or a digit becomes '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass
class SessionWritten:
    """One session file as written: what a test checks the database against."""

    sid: str
    path: str
    first: str  # first and last timestamps
    last: str
    prompt: str
    usage: tuple[int, int, int, int] = (0, 0, 0, 0)  # the sum over its messages (last line of each)
    usd: float = 0.0  # its usage priced
    bash: list[str] = field(default_factory=list)
    cut_short: bool = False


def session_lines(plan: RunPlan, prompt: str, cwd: str, t: datetime, rng: random.Random,
                  *, sidechain_replays: bool = True) -> tuple[list[dict], datetime]:
    """The entries of one run's session file, from ``t`` on; and the time after the last."""
    base = {"userType": "external", "cwd": cwd, "sessionId": plan.session, "version": "2.1.12",
            "gitBranch": "main", "isSidechain": False}
    parent = None
    lines: list[dict] = []

    def entry(kind: str, message: dict, **extra) -> dict:
        nonlocal parent, t
        t += timedelta(milliseconds=rng.randrange(200, 9000))
        uid = f"{rng.getrandbits(128):032x}"
        e = {"parentUuid": parent, **base, "type": kind, "message": message, "uuid": uid, "timestamp": stamp(t),
             **extra}
        parent = uid
        lines.append(e)
        return e

    entry("user", {"role": "user", "content": prompt})
    for turn in plan.turns:
        request = f"req_{rng.getrandbits(64):016x}"
        blocks: list[dict] = [{"type": "text", "text": "Looking at the code first."}]
        ids = []
        for cmd in turn.bash:
            ids.append(f"toolu_{rng.getrandbits(48):012x}")
            blocks.append({"type": "tool_use", "id": ids[-1], "name": "Bash", "input": {"command": cmd}})
        for _ in range(turn.other_tools):
            ids.append(f"toolu_{rng.getrandbits(48):012x}")
            blocks.append({"type": "tool_use", "id": ids[-1], "name": "Read", "input": {"file_path": cwd + "/x.py"}})
        inp, cw, cr, out = turn.usage
        for n, block in enumerate(blocks):
            partial = out if n == len(blocks) - 1 else max(1, out * (n + 1) // (len(blocks) + 1))
            entry("assistant", {"model": turn.model, "id": turn.mid, "type": "message", "role": "assistant",
                                "content": [block], "stop_reason": "tool_use" if ids else "end_turn",
                                "usage": {"input_tokens": inp, "cache_creation_input_tokens": cw,
                                          "cache_read_input_tokens": cr, "output_tokens": partial}},
                  requestId=request)
        if sidechain_replays and turn.subagent:
            # A side conversation replays the parent's message: same id, another request.
            replay = dict(lines[-1], isSidechain=True, requestId=f"req_{rng.getrandbits(64):016x}",
                          uuid=f"{rng.getrandbits(128):032x}")
            lines.append(replay)
        for tid in ids:
            entry("user", {"role": "user", "content": [{"tool_use_id": tid, "type": "tool_result",
                                                        "content": "ok\n" * rng.randrange(1, 5), "is_error": False}]},
                  toolUseResult={"stdout": "ok", "stderr": "", "interrupted": False})
    return lines, t


def _write(path: str, lines: list[dict], *, cut_short: bool = False) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for obj in lines:
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        if cut_short:  # a session still being written: half an entry, no newline
            f.write('{"parentUuid":"x","type":"assistant","message":{"id":"msg_cut')


def _written(plan: RunPlan, path: str, lines: list[dict], prompt: str) -> SessionWritten:
    usage = tuple(sum(t.usage[i] for t in plan.turns) for i in range(4))
    return SessionWritten(plan.session, path, lines[0]["timestamp"], lines[-1]["timestamp"], prompt, usage,
                          sum(price_usd(t.model, t.usage) for t in plan.turns),
                          [c for t in plan.turns for c in t.bash])


AGENT_COMMAND = {"issue_classifier": "/classify_issue", "branch_generator": "/generate_branch_name",
                 "sdlc_planner": "/feature", "sdlc_implementor": "/implement", "pr_creator": "/pull_request",
                 "plan": "/quick_plan", "build": "/implement", "validate": "/test"}


def write_adw_sessions(store: str, w: Written, t: datetime, rng: random.Random) -> tuple[list[SessionWritten], datetime]:
    """Every run of every agent of one synthetic workflow, as session files (lost attempts too)."""
    cwd = "C:\\Users\\dev\\proj" if w.layout == "phase" else f"/home/dev/trees/{w.adw_id}"
    out = []
    for agent, plans in w.agents.items():
        command = AGENT_COMMAND.get(agent, "/commit" if agent.endswith("_committer") else f"/{agent}")
        for plan in plans:
            prompt = f"{command} {w.adw_id} {w.title or ''}".strip()
            lines, t = session_lines(plan, prompt, cwd, t, rng)
            path = os.path.join(store, project_folder(cwd), plan.session + ".jsonl")
            _write(path, lines)
            out.append(_written(plan, path, lines, prompt))
    return out, t


def write_interactive(store: str, n: int, rng: random.Random, t: datetime = START, *,
                      replays: bool = True) -> list[SessionWritten]:
    """People's own sessions in one repository: questions, Bash calls, subagent files, and
    the last one still being written (its last line cut short)."""
    out = []
    for i in range(n):
        sid = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-8{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}"
        commands = rng.sample(PEOPLE_RUN, rng.randrange(1, 5))
        model = "claude-sonnet-4-5-20250929"
        turns = _turns(rng, sid, model, commands, subagents=True)
        plan = RunPlan(sid, model, turns, None)
        prompt = rng.choice(PEOPLE_ASK)
        lines, t = session_lines(plan, prompt, INTERACTIVE_PROJECT, t + timedelta(hours=rng.randrange(1, 30)), rng,
                                 sidechain_replays=replays)
        cut = i == n - 1
        path = os.path.join(store, project_folder(INTERACTIVE_PROJECT), sid + ".jsonl")
        _write(path, lines, cut_short=cut)
        w = _written(plan, path, lines, prompt.splitlines()[0])
        w.cut_short = cut
        if any(turn.subagent for turn in turns):
            sub = RunPlan(sid, model, [Turn(f"msg_sub{rng.getrandbits(40):010x}", model,
                                            (rng.randrange(3, 40), rng.randrange(0, 900), rng.randrange(100, 9000),
                                             rng.randrange(20, 300)), ["git log --oneline -10"])], None)
            sub_lines, _ = session_lines(sub, "Find where the version is set", INTERACTIVE_PROJECT, t, rng)
            for e in sub_lines:
                e["isSidechain"] = True
            _write(os.path.join(store, project_folder(INTERACTIVE_PROJECT), sid, "subagents",
                                f"agent-{rng.getrandbits(32):08x}.jsonl"), sub_lines)
            w.usage = tuple(a + b for a, b in zip(w.usage, sub.turns[0].usage))
            w.usd += price_usd(model, sub.turns[0].usage)
            w.bash += ["git log --oneline -10"]
            w.last = max(w.last, sub_lines[-1]["timestamp"])  # the workflow spans its subagents' entries
        out.append(w)
    return out


@dataclass
class JoinedTree:
    """A synthetic ADW tree and the session store that goes with it."""

    workflows: list[Written]
    adw_sessions: dict[str, list[SessionWritten]]  # adw_id -> its sessions (lost attempts included)
    lost: dict[str, list[SessionWritten]]  # adw_id -> the attempts its folder lost
    interactive: list[SessionWritten]


def make_joined_tree(root: str, store: str, n: int, interactive: int = 4, seed: int = 5, *,
                     replays: bool = True) -> JoinedTree:
    """``n`` workflows in the five layouts (a retried agent in some, in a worktree), each
    run's session in ``store``, and ``interactive`` people's sessions."""
    rng = random.Random(seed)
    written = make_real_tree_with(root, n, rng, retried=lambda i, layout: layout != "phase" and i % 3 == 1)
    t = START
    adw_sessions, lost = {}, {}
    for w in written:
        sessions, t = write_adw_sessions(store, w, t + timedelta(hours=1), rng)
        adw_sessions[w.adw_id] = sessions
        on_disk = {plans[-1].session for plans in w.agents.values()}
        lost[w.adw_id] = [s for s in sessions if s.sid not in on_disk]
    return JoinedTree(written, adw_sessions, lost, write_interactive(store, interactive, rng, t, replays=replays))


# ---------------------------------------------------------------------------------------
# a session store for an existing tree (examples/)

def sessions_from_tree(root: str, store: str, rng: random.Random, t: datetime = START) -> list[SessionWritten]:
    """The session file of every run in the transcripts under ``root``, as Claude Code
    would have written it beside them (tool results shortened: they are not read)."""
    out = []
    for adw_id in sorted(os.listdir(root)):
        folder = os.path.join(root, adw_id)
        if not os.path.isdir(folder):
            continue
        t += timedelta(hours=5)
        for agent in sorted(os.listdir(folder)):
            for name in sorted(os.listdir(os.path.join(folder, agent)) if os.path.isdir(os.path.join(folder, agent))
                               else ()):
                if name.endswith(".jsonl"):
                    written, t = _convert(os.path.join(folder, agent, name), agent, store, rng, t)
                    out += written
    return out


def _prompt_of_agent(agent_folder: str, agent: str) -> str:
    prompts = os.path.join(agent_folder, "prompts")
    for name in sorted(os.listdir(prompts)) if os.path.isdir(prompts) else ():
        with open(os.path.join(prompts, name)) as f:
            first = f.readline().strip()
        if first:
            return first[:200]
    return f"/{agent}"


def _convert(path: str, agent: str, store: str, rng: random.Random, t: datetime):
    prompt = _prompt_of_agent(os.path.dirname(path), agent)
    out, lines, sid, cwd, parent = [], [], None, "/home/dev/shop", None

    def close():
        if sid and lines:
            file = os.path.join(store, project_folder(cwd), sid + ".jsonl")
            _write(file, lines)
            out.append(SessionWritten(sid, file, lines[0]["timestamp"], lines[-1]["timestamp"], prompt))

    for raw in open(path):
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            close()
            sid, cwd, lines = event.get("session_id"), event.get("cwd") or cwd, []
            kind, message = "user", {"role": "user", "content": prompt}
        elif kind in ("assistant", "user") and isinstance(event.get("message"), dict):
            message = dict(event["message"])
            if kind == "user" and isinstance(message.get("content"), list):
                message["content"] = [dict(b, content="ok") if b.get("type") == "tool_result" else b
                                      for b in message["content"] if isinstance(b, dict)]
        else:
            continue
        t += timedelta(milliseconds=rng.randrange(300, 12000))
        uid = f"{rng.getrandbits(128):032x}"
        entry = {"parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": cwd, "sessionId": sid,
                 "version": "2.1.12", "type": kind, "message": message, "uuid": uid, "timestamp": stamp(t)}
        if kind == "assistant":
            entry["requestId"] = "req_" + str(message.get("id", uid))
        parent = uid
        lines.append(entry)
    close()
    return out, t


def write_examples(root: str, store: str, seed: int = 18) -> None:
    """examples/claude/projects: the sessions of the example tree's runs, an attempt a retry
    lost (in a worktree), and a developer's own sessions."""
    rng = random.Random(seed)
    sessions_from_tree(root, store, rng, datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc))
    worktree = next(d for d in sorted(os.listdir(store)) if "-trees-" in d)
    adw_id = worktree.rsplit("-", 1)[1]
    plan = RunPlan(f"{rng.getrandbits(128):032x}", "claude-sonnet-4-5-20250929",
                   _turns(rng, "lost0001", "claude-sonnet-4-5-20250929", ["git status", "git diff HEAD"], False), None)
    lines, _ = session_lines(plan, f"/commit {adw_id} first attempt", f"/home/dev/trees/{adw_id}",
                             datetime(2026, 11, 2, 7, 30, tzinfo=timezone.utc), rng)
    _write(os.path.join(store, worktree, plan.session + ".jsonl"), lines)
    write_interactive(store, 3, rng, datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc))


if __name__ == "__main__":  # python -m adw_patternd.synth.sessions examples/agents examples/claude/projects
    import sys

    write_examples(sys.argv[1], sys.argv[2])
