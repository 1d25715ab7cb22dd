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


def transcript_lines(run: AgentRun, session: str, rng: random.Random) -> list[str]:
    """An init line, assistant/user lines up to about filler_bytes, then the result line."""
    lines = [json.dumps({"type": "system", "subtype": "init", "session_id": session, "model": run.model,
                         "cwd": "/work/trees/x", "tools": ["Bash", "Read", "Edit"]})]
    size = len(lines[0])
    n = 0
    while size < run.filler_bytes:
        n += 1
        body = (_PROSE * (1 + min(4000, run.filler_bytes - size) // len(_PROSE)))[: max(50, min(4000, run.filler_bytes - size))]
        if n % 2:
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
                agents: int | None = None, filler_size=None) -> WorkflowSpec:
    """A random but realistic workflow. ``filler_size(rng)``, when given, picks each agent
    transcript's size instead of ``filler``."""
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
                             filler_bytes=filler_size(rng) if filler_size else rng.randrange(*filler)))
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
