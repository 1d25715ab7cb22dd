"""Synthetic ADW workflow folders, written the way ADWs write them.

Used by the tests, the benchmark and to make examples/. Each writer call produces what a
real ADW leaves behind: adw_state.json, <agent>/raw_output.jsonl in Claude Code stream-json
(init line, assistant and user lines, a result line per run), and error.log on failure.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field

REQUESTS = (
    ("Run backend tests with pytest", "adw_test_iso"),
    ("Run pytest on the api", "adw_test_iso"),
    ("Typecheck the frontend with tsc", "adw_build_iso"),
    ("Build the project", "adw_plan_build_iso"),
    ("Update to the latest npm packages", "adw_patch_iso"),
    ("Format all code with prettier", "adw_patch_iso"),
    ("Show git status and summarize the diff", "adw_plan_iso"),
    ("Generate docs for the client module", "adw_sdlc_iso"),
    ("Run tests for the rapid prototype", "adw_test_iso"),
    ("Add a dark mode toggle to the settings page", "adw_sdlc_iso"),
    ("Fix the flaky login redirect", "adw_sdlc_iso"),
    (None, "adw_review_iso"),
    ("Ship the release", "adw_ship_iso"),
)
AGENTS = ("sdlc_planner", "sdlc_implementor", "tester", "reviewer", "documenter")
MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5")


@dataclass
class AgentRun:
    name: str
    cost: float | None
    usage: dict
    duration_ms: int
    is_error: bool = False
    text: str = "Done."
    model: str = MODELS[0]
    filler_bytes: int = 2000
    bash_every: float = 0  # every so many assistant messages is a Bash call, split over two lines


@dataclass
class WorkflowSpec:
    adw_id: str
    nl_input: str | None
    template: str
    start: str = "2026-10-01T09:00:00Z"
    end: str | None = "2026-10-01T09:05:00Z"
    model: str = "sonnet"
    issue_number: int | str = 1
    runs: list[AgentRun] = field(default_factory=list)
    error_log: str | None = None


def state_doc(spec: WorkflowSpec) -> dict:
    doc = {
        "adw_id": spec.adw_id,
        "issue_number": spec.issue_number,
        "issue_class": "/chore",
        "nl_input": spec.nl_input,
        "workflow_template": spec.template,
        "model_used": spec.model,
        "branch_name": f"chore-issue-{spec.issue_number}-adw-{spec.adw_id}-{(spec.nl_input or 'review').lower().replace(' ', '-')[:40]}",
        "start_time": spec.start,
        "all_adws": ["adw_plan_iso", spec.template],
    }
    if spec.end:
        doc["end_time"] = spec.end
    return doc


def result_line(run: AgentRun, session: str) -> dict:
    line = {
        "type": "result", "subtype": "error_during_execution" if run.is_error else "success",
        "is_error": run.is_error, "duration_ms": run.duration_ms, "duration_api_ms": run.duration_ms - 100,
        "num_turns": 7, "session_id": session, "usage": run.usage,
        "modelUsage": {run.model: {"inputTokens": run.usage.get("input_tokens", 0),
                                   "outputTokens": run.usage.get("output_tokens", 0)}},
    }
    if not run.is_error:
        line["result"] = run.text
    else:
        line["result"] = run.text
    if run.cost is not None:
        line["total_cost_usd"] = run.cost
    return line


_PROSE = ('I ran `uv run pytest tests/` and the result was "3 passed, 1 failed"; the "result" key in '
          'response.json holds {"status": "ok", "items": [1, 2, 3]}. Next: fix app/server/core/x.py line 42.\n')


BENCH_COMMANDS = ("git status", "git diff HEAD", "cd app/server && uv run pytest -q", "npx tsc --noEmit",
                  "npm run build", "git add -A && git commit -m 'wip'", "ls -la")


def transcript_lines(run: AgentRun, session: str, rng: random.Random) -> list[str]:
    """An init line, assistant/user lines up to about filler_bytes, then the result line."""
    lines = [json.dumps({"type": "system", "subtype": "init", "session_id": session, "model": run.model,
                         "cwd": "/work/trees/x", "tools": ["Bash", "Read", "Edit"]})]
    size = len(lines[0])
    n = 0
    while size < run.filler_bytes:
        n += 1
        body = (_PROSE * (1 + min(4000, run.filler_bytes - size) // len(_PROSE)))[: max(50, min(4000, run.filler_bytes - size))]
        if n % 2 and run.bash_every and n // 2 % run.bash_every < 1:  # a float: one in bash_every on average
            # As Claude Code writes it: the text block, then the tool call, same id, more output
            lines.append(json.dumps({"type": "assistant", "session_id": session, "message": {
                "id": f"msg_{n}", "model": run.model, "content": [{"type": "text", "text": body[:300]}],
                "usage": {"input_tokens": 10, "output_tokens": 2}}}))
            obj = {"type": "assistant", "session_id": session, "message": {
                "id": f"msg_{n}", "model": run.model, "content": [{"type": "tool_use", "id": f"toolu_{n}",
                                                                   "name": "Bash", "input": {
                                                                       "command": rng.choice(BENCH_COMMANDS)}}],
                "usage": {"input_tokens": 10, "output_tokens": 20}}}
            size += len(lines[-1]) + 1
        elif n % 2:
            obj = {"type": "assistant", "session_id": session, "message": {
                "id": f"msg_{n}", "model": run.model, "content": [{"type": "text", "text": body}],
                "usage": {"input_tokens": 10, "output_tokens": 20}}}
        else:
            obj = {"type": "user", "session_id": session, "message": {"content": [
                {"type": "tool_result", "tool_use_id": f"t{n}", "content": body}]}}
        s = json.dumps(obj)
        lines.append(s)
        size += len(s) + 1
    lines.append(json.dumps(result_line(run, session)))
    return lines


def write_json_in_place(path: str, doc) -> None:
    """How most ADW code writes state: open('w') + json.dump, visible half-written."""
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)


def write_json_atomic(path: str, doc) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, path)


def write_workflow(root: str, spec: WorkflowSpec, rng: random.Random | None = None) -> str:
    rng = rng or random.Random(spec.adw_id)
    folder = os.path.join(root, spec.adw_id)
    os.makedirs(folder, exist_ok=True)
    write_json_in_place(os.path.join(folder, "adw_state.json"), state_doc(spec))
    by_agent: dict[str, list[AgentRun]] = {}
    for run in spec.runs:
        by_agent.setdefault(run.name, []).append(run)
    for name, runs in by_agent.items():
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        with open(os.path.join(folder, name, "raw_output.jsonl"), "w") as f:
            for i, run in enumerate(runs):
                for line in transcript_lines(run, f"{spec.adw_id}-{name}-{i}", rng):
                    f.write(line + "\n")
    if spec.error_log:
        with open(os.path.join(folder, "error.log"), "w") as f:
            f.write(spec.error_log)
    return folder


def random_spec(rng: random.Random, adw_id: str, *, filler: tuple[int, int] = (1000, 20000), day: int | None = None,
                agents: int | None = None, filler_size=None, bash_every: float = 0) -> WorkflowSpec:
    """A random but realistic workflow. ``filler_size(rng)``, when given, picks each agent
    transcript's size instead of ``filler``; ``bash_every`` puts Bash calls in the runs."""
    nl, template = rng.choice(REQUESTS)
    d = day if day is not None else rng.randrange(0, 90)
    start_min = rng.randrange(0, 600)
    dur = rng.randrange(60, 1500)
    start = f"2026-{8 + d // 30:02d}-{1 + d % 30:02d}T{start_min // 60:02d}:{start_min % 60:02d}:00Z"
    end_total = start_min * 60 + dur
    end = f"2026-{8 + d // 30:02d}-{1 + d % 30:02d}T{end_total // 3600:02d}:{end_total % 3600 // 60:02d}:{end_total % 60:02d}Z"
    runs = []
    for name in AGENTS[: agents or rng.randrange(2, 5)]:
        usage = {"input_tokens": rng.randrange(10, 5000), "cache_creation_input_tokens": rng.randrange(0, 20000),
                 "cache_read_input_tokens": rng.randrange(0, 200000), "output_tokens": rng.randrange(100, 8000)}
        cost = None if rng.random() < 0.1 else round(rng.uniform(0.05, 3.0), 6)
        failed = rng.random() < 0.08
        runs.append(AgentRun(name, cost, usage, rng.randrange(10_000, 400_000), is_error=failed,
                             text="2 tests failed: pytest exited 1" if failed else "Done.",
                             model=rng.choice(MODELS),
                             filler_bytes=filler_size(rng) if filler_size else rng.randrange(*filler),
                             bash_every=bash_every))
        if failed and rng.random() < 0.5:  # a resolver retried it
            runs.append(AgentRun(name, round(rng.uniform(0.05, 1.0), 6), usage, 20_000, model=runs[-1].model,
                                 filler_bytes=500))
    error_log = "Traceback (most recent call last):\nRuntimeError: typecheck failed: tsc exit 2\n" if rng.random() < 0.05 else None
    return WorkflowSpec(adw_id, nl, template, start, end, rng.choice(("sonnet", "opus", "claude-haiku-4-5")),
                        rng.choice((rng.randrange(1, 500), str(rng.randrange(1, 500)))), runs, error_log)


def make_tree(root: str, n: int, seed: int = 7, **kw) -> list[str]:
    rng = random.Random(seed)
    ids = []
    for _i in range(n):
        adw_id = f"{rng.getrandbits(32):08x}"
        write_workflow(root, random_spec(rng, adw_id, **kw), rng)
        ids.append(adw_id)
    return ids


# =========================================================================================
# Trees as real ADWs leave them (../shared/docs/real-adw-trees.md): five layouts, most
# without adw_state.json, agents that only run git plumbing, Bash calls inside big agents,
# and the quirks of real transcripts. Written from those facts, not copied from any tree.

LAYOUTS = ("classic", "isolated", "phase", "summary", "bare")
PRICES_PER_MTOK = {  # (input, output, cache write, cache read), as in adw-input-formats.md
    "claude-sonnet-4-5-20250929": (3, 15, 3.75, 0.30),
    "claude-haiku-4-5-20251001": (1, 5, 1.25, 0.10),
    "claude-opus-4-5-20251101": (5, 25, 6.25, 0.50),
}
BIG_AGENT_COMMANDS = (
    "git diff", "git diff --stat", "git status", "git status --porcelain",
    "cd app/server && uv run pytest tests/ -q", "npx tsc --noEmit", "npx tsc --noEmit 2>&1 | head -40",
    "cd app/client && npm run build 2>&1 | tail -20", "npm run lint", "ls -la app/", "cat README.md",
    "uv run ruff check .", "cd app/server && uv run python -m pytest -x", "npx vite build",
    "git add -A && git commit -m \"$(cat <<'EOF'\nfeat: wire the settings page\n\nRun npm run build && pytest before merging.\nEOF\n)\"",
    "FOO=1 timeout 120 npx vitest run src/ui/settings.test.ts",
)
ROLE_COMMANDS = {
    "branch_generator": ("git checkout main", "git pull", "git checkout -b {branch}"),
    "committer": ("git diff HEAD", "git status", "git add -A", "git commit -m \"{title}\""),
    "pr_creator": ("git diff origin/main...HEAD --stat", "git log --oneline -5", "git push -u origin {branch}",
                   "gh pr create --title \"{title}\" --body \"Implements #{number}\""),
}
ISSUE_TITLES = ("Add a dark mode toggle to the settings page", "Fix tile size stability on resize",
                "Show the version in the CLI", "Typecheck errors in the upload form",
                "Speed up the export of large boards")


def price_usd(model: str, usage: tuple[int, int, int, int]) -> float:
    """What the doc's price table says a message costs (the tests' independent check)."""
    p = PRICES_PER_MTOK[model]
    inp, cw, cr, out = usage
    return (inp * p[0] + out * p[1] + cw * p[2] + cr * p[3]) / 1e6


@dataclass
class Turn:
    """One assistant message: its usage (of its last line), Bash calls and other tool calls."""

    mid: str
    model: str
    usage: tuple[int, int, int, int]
    bash: list[str] = field(default_factory=list)
    other_tools: int = 0
    subagent: bool = False


@dataclass
class RunPlan:
    session: str
    model: str
    turns: list[Turn]
    cost: float | None  # None: cut off before its result line
    is_error: bool = False
    duration_ms: int = 60_000
    base64_bytes: int = 0


@dataclass
class Written:
    """What a realistic workflow folder holds, for tests to check against the database."""

    adw_id: str
    layout: str
    folder: str
    reported_usd: float = 0.0
    estimated_usd: float = 0.0
    unfinished_runs: int = 0
    agents: dict = field(default_factory=dict)  # agent folder -> list[RunPlan]
    title: str | None = None


def _turns(rng: random.Random, session: str, model: str, commands: list[str], subagents: bool) -> list[Turn]:
    turns = []
    pending = list(commands)
    i = 0
    while pending or i < 2:
        i += 1
        bash = [pending.pop(0)] if pending else []
        if bash and pending and rng.random() < 0.3:
            bash.append(pending.pop(0))  # two calls in one message: each gets half
        usage = (rng.randrange(3, 40), rng.randrange(0, 4000), rng.randrange(1000, 60000), rng.randrange(20, 900))
        turns.append(Turn(f"msg_{session[:8]}_{i:03d}", model, usage, bash, rng.randrange(0, 2),
                          subagent=subagents and rng.random() < 0.2))
    return turns


def _run_lines(plan: RunPlan, rng: random.Random, cwd: str) -> list[dict]:
    lines: list[dict] = [{"type": "system", "subtype": "init", "cwd": cwd, "session_id": plan.session,
                          "tools": ["Task", "Bash", "Read", "Edit", "Write"], "model": plan.model,
                          "permissionMode": "bypassPermissions", "claude_code_version": "2.1.12"}]
    for turn in plan.turns:
        blocks: list[dict] = [{"type": "text", "text": "Let me check the current state of the code."}]
        tool_ids = []
        for cmd in turn.bash:
            tid = f"toolu_{rng.getrandbits(48):012x}"
            tool_ids.append(tid)
            blocks.append({"type": "tool_use", "id": tid, "name": "Bash",
                           "input": {"command": cmd, "description": "Run " + cmd.split()[0]}})
        for _ in range(turn.other_tools):
            tid = f"toolu_{rng.getrandbits(48):012x}"
            tool_ids.append(tid)
            blocks.append({"type": "tool_use", "id": tid, "name": "Read",
                           "input": {"file_path": cwd + "/app/server/main.py"}})
        inp, cw, cr, out = turn.usage
        for n, block in enumerate(blocks):  # one line per content block, the same message id
            partial = out if n == len(blocks) - 1 else max(1, out * (n + 1) // (len(blocks) + 1))
            lines.append({"type": "assistant", "message": {
                "model": turn.model, "id": turn.mid, "type": "message", "role": "assistant", "content": [block],
                "stop_reason": None, "usage": {"input_tokens": inp, "cache_creation_input_tokens": cw,
                                               "cache_read_input_tokens": cr, "output_tokens": partial,
                                               "service_tier": "standard"}},
                "parent_tool_use_id": "toolu_parent0001" if turn.subagent else None,
                "session_id": plan.session, "uuid": f"{rng.getrandbits(64):016x}"})
        for tid in tool_ids:
            content: object = "ok\n" * rng.randrange(1, 20)
            if plan.base64_bytes and rng.random() < 0.3:
                content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                        "data": "iVBORw0KGgo" + "A" * plan.base64_bytes}}]
            lines.append({"type": "user", "message": {"role": "user", "content": [
                {"tool_use_id": tid, "type": "tool_result", "content": content, "is_error": False}]},
                "parent_tool_use_id": None, "session_id": plan.session, "uuid": f"{rng.getrandbits(64):016x}"})
    if plan.cost is not None:
        total = [sum(t.usage[i] for t in plan.turns) for i in range(4)]
        lines.append({
            "type": "result", "subtype": "error_max_turns" if plan.is_error else "success",
            "is_error": plan.is_error, "duration_ms": plan.duration_ms, "duration_api_ms": plan.duration_ms - 900,
            "num_turns": len(plan.turns), "result": "Done." if not plan.is_error else "Reached max turns",
            "session_id": plan.session, "total_cost_usd": plan.cost,
            "usage": {"input_tokens": total[0], "cache_creation_input_tokens": total[1],
                      "cache_read_input_tokens": total[2], "output_tokens": total[3],
                      "cache_creation": {"ephemeral_5m_input_tokens": total[1], "ephemeral_1h_input_tokens": 0}},
            "modelUsage": {plan.model: {"inputTokens": total[0], "outputTokens": total[3], "costUSD": plan.cost},
                           "claude-haiku-4-5-20251001": {"inputTokens": 300, "outputTokens": 40, "costUSD": 0.0005}},
        })
    return lines


def write_transcript(path: str, plans: list[RunPlan], rng: random.Random, *, cwd: str = "/home/dev/proj",
                     python_style: bool = False, array_copy: bool = False) -> None:
    """Write each run as the ADW runner does: open(path, "w") per run, so only the last run
    of a retried agent is left on disk (the earlier ones are what the daemon alone may see)."""
    seps = (", ", ": ") if python_style else (",", ":")
    for plan in plans:
        lines = _run_lines(plan, rng, cwd)
        with open(path, "w") as f:
            for obj in lines:
                f.write(json.dumps(obj, separators=seps) + "\n")
        if array_copy:
            with open(os.path.join(os.path.dirname(path), "raw_output.json"), "w") as f:
                json.dump(lines, f)


def _issue(rng: random.Random) -> dict:
    number = rng.randrange(1, 400)
    title = rng.choice(ISSUE_TITLES)
    body = ("We need to build this properly: the test suite, the npm build and the format step all run "
            "in CI. Update the docs when done.\n\n## Notes\n- keep the api stable\n")
    return {"number": number, "title": title, "body": body, "state": "open", "author": {"login": "dev"},
            "labels": [], "url": f"https://example.invalid/issues/{number}"}


def _agent_plans(rng: random.Random, agent: str, branch: str, title: str, number: int,
                 model: str, *, cut_off: bool = False, retried: bool = False) -> list[RunPlan]:
    role = "committer" if agent.endswith("_committer") else agent
    if role in ROLE_COMMANDS:
        commands = [c.format(branch=branch, title=title.replace('"', "'"), number=number) for c in ROLE_COMMANDS[role]]
        model = "claude-sonnet-4-5-20250929"
    elif agent == "issue_classifier":
        commands, model = [], "claude-haiku-4-5-20251001"
    else:
        commands = rng.sample(BIG_AGENT_COMMANDS, rng.randrange(3, 8))
    plans = []
    for attempt in range(2 if retried else 1):
        session = f"{rng.getrandbits(128):032x}"
        turns = _turns(rng, session, model, commands, subagents=role not in ROLE_COMMANDS)
        cost = round(sum(price_usd(t.model, t.usage) for t in turns) * rng.uniform(1.0, 1.3), 6)
        last = attempt == (1 if retried else 0)
        plans.append(RunPlan(session, model, turns, None if (cut_off and last) else cost,
                             is_error=retried and not last, duration_ms=rng.randrange(5_000, 400_000),
                             base64_bytes=rng.choice((0, 0, 2000, 60_000))))
    return plans


def _record(w: Written, agent: str, plans: list[RunPlan]) -> None:
    w.agents[agent] = plans
    last = plans[-1]  # what stays on disk
    if last.cost is None:
        w.unfinished_runs += 1
        w.estimated_usd += sum(price_usd(t.model, t.usage) for t in last.turns)
    else:
        w.reported_usd += last.cost


def _write_folder_files(folder: str, layout: str, adw_id: str, issue: dict, branch: str, agents: list[str],
                        rng: random.Random, *, cut_off: bool, with_state: bool) -> None:
    """What a layout keeps beside its agents' folders: state, execution logs, summary."""
    slug = issue["title"].lower().replace(" ", "-")
    if layout == "classic" or (layout == "isolated" and with_state):
        state = {"adw_id": adw_id, "issue_number": str(issue["number"]), "branch_name": branch,
                 "plan_file": f"specs/issue-{issue['number']}-adw-{adw_id}-sdlc_planner-{slug}.md",
                 "issue_class": "/feature"}
        if layout == "isolated":
            state.update({"worktree_path": f"/home/dev/trees/{adw_id}", "backend_port": 9100 + rng.randrange(15),
                          "frontend_port": 9200 + rng.randrange(15), "model_set": "base",
                          "all_adws": ["adw_plan_iso", "adw_build_iso"]})
        write_json_in_place(os.path.join(folder, "adw_state.json"), state)
    if layout == "isolated":
        for n, script in enumerate(("adw_plan_iso", "adw_build_iso")):
            os.makedirs(os.path.join(folder, script), exist_ok=True)
            with open(os.path.join(folder, script, "execution.log"), "w") as f:
                f.write(f"2025-10-17 19:{4 + 10 * n:02d}:18 - INFO - ADW ID: {adw_id}\n"
                        f"2025-10-17 19:{9 + 10 * n:02d}:51 - INFO - {script} completed\n")
    if layout == "phase":
        write_json_in_place(os.path.join(folder, "adw_state.json"), {
            "adw_id": adw_id, "task_description": f"{issue['title']}\n\nDetails: {issue['body']}",
            "created_at": "2025-11-03T14:02:11.120000", "status": "failed" if cut_off else "completed",
            "current_phase": "validate", "completed_phases": ["plan", "build"],
            "phase_results": [{"phase": p, "success": True, "started_at": f"2025-11-03T14:{10 + 5 * i:02d}:00",
                               "completed_at": f"2025-11-03T14:{14 + 5 * i:02d}:30",
                               "output_file": f"C:\\Users\\dev\\proj\\agents\\{adw_id}\\{p}\\{p}_output.jsonl",
                               "error_message": None} for i, p in enumerate(agents)],
            "spec_file": f"specs\\{slug}.md", "project_path": "C:\\Users\\dev\\proj"})
    if layout == "summary":
        with open(os.path.join(folder, "workflow_summary.json"), "w") as f:
            json.dump({"workflow": "chore_implement", "adw_id": adw_id,
                       "prompt": f"{issue['title']}\nMore context follows.", "model": "sonnet",
                       "working_dir": "/home/dev/proj"}, f, indent=2)


def write_layout(root: str, layout: str, adw_id: str, rng: random.Random, *, cut_off: bool = False,
                 empty_transcript: bool = False, with_state: bool = True, retried: bool = False) -> Written:
    """One workflow folder in ``layout`` (classic, isolated, phase, summary or bare)."""
    folder = os.path.join(root, adw_id)
    os.makedirs(folder, exist_ok=True)
    issue = _issue(rng)
    slug = issue["title"].lower().replace(" ", "-")
    branch = f"feat-issue-{issue['number']}-adw-{adw_id}-{slug}"
    w = Written(adw_id, layout, folder, title=issue["title"])
    model = "claude-sonnet-4-5-20250929"
    if layout in ("classic", "isolated"):
        agents = ["issue_classifier", "branch_generator", "sdlc_planner", "sdlc_planner_committer",
                  "sdlc_implementor", "sdlc_implementor_committer", "pr_creator"]
    elif layout == "phase":
        agents = ["plan", "build", "validate"]
    elif layout == "summary":
        agents = ["planner", "builder"]
    else:
        agents = rng.choice((["sdlc_planner", "sdlc_implementor"], ["oneoff"], ["e2e_test_runner_0_1", "builder"]))
    transcript_name = {"phase": None, "summary": "cc_raw_output.jsonl"}.get(layout, "raw_output.jsonl")
    cwd = "C:\\Users\\dev\\proj" if layout == "phase" else f"/home/dev/trees/{adw_id}"
    for n, agent in enumerate(agents):
        path = os.path.join(folder, agent)
        os.makedirs(path, exist_ok=True)
        name = transcript_name or f"{'quick_plan' if agent == 'plan' else agent}_output.jsonl"
        if empty_transcript and n == 1:
            open(os.path.join(path, name), "w").close()
            continue
        plans = _agent_plans(rng, agent, branch, issue["title"], issue["number"], model,
                             cut_off=cut_off and n == len(agents) - 1, retried=retried and n == len(agents) - 1)
        write_transcript(os.path.join(path, name), plans, rng, cwd=cwd, python_style=layout == "phase",
                         array_copy=layout in ("classic", "isolated"))
        _record(w, agent, plans)
        if layout in ("classic", "isolated"):
            os.makedirs(os.path.join(path, "prompts"), exist_ok=True)
            command = {"issue_classifier": "classify_issue", "branch_generator": "generate_branch_name"}.get(agent)
            with open(os.path.join(path, "prompts", f"{command or 'feature'}.txt"), "w") as f:
                if command or agent == "sdlc_planner":
                    f.write(f"/{command or 'feature'} {issue['number']} adw-{adw_id} {json.dumps(issue)}\n")
                else:
                    f.write(f"/implement specs/issue-{issue['number']}-adw-{adw_id}-sdlc_planner-{slug}.md\n")
        if layout == "summary":
            with open(os.path.join(path, "cc_final_object.json"), "w") as f:
                json.dump({"result": "Done.", "session_id": plans[-1].session}, f)
    _write_folder_files(folder, layout, adw_id, issue, branch, agents, rng, cut_off=cut_off, with_state=with_state)
    return w


def make_real_tree(root: str, n: int, seed: int = 11) -> list[Written]:
    """A tree that mixes the five layouts and their quirks, in the proportions seen."""
    return make_real_tree_with(root, n, random.Random(seed))


def make_real_tree_with(root: str, n: int, rng: random.Random, retried=lambda i, layout: False) -> list[Written]:
    """make_real_tree from a given generator; ``retried(i, layout)``: whether the last agent
    of the i-th workflow ran twice (its transcript keeping only the second run)."""
    written = []
    weights = (("summary", 33), ("bare", 22), ("classic", 20), ("isolated", 14), ("phase", 5))
    for i in range(n):
        layout = LAYOUTS[i % 5] if i < 5 else rng.choices([l for l, _ in weights], [w for _, w in weights])[0]
        written.append(write_layout(root, layout, f"{rng.getrandbits(32):08x}", rng,
                                    cut_off=rng.random() < 0.15, empty_transcript=rng.random() < 0.1,
                                    with_state=rng.random() < 0.4, retried=retried(i, layout)))
    return written
