"""A writer that behaves like a busy ADW host, for the crash test.

    python crash_writer.py ROOT WORKFLOWS SECONDS SEED

Creates and updates WORKFLOWS workflows over about SECONDS, in the layouts real ADWs
leave (classic with adw_state.json, summary with workflow_summary.json, phase state, bare
agent folders): in-place (non-atomic) rewrites of state files, some temp-file-and-rename
writes, transcripts growing line by line (sometimes half a line at a time) with assistant
messages split over lines that repeat their id, Bash calls and result lines, agents run
again (the transcript truncated and rewritten with a new session, as ADW runners do on a
retry), results rewritten with another cost of the same length, error.log files, and
requests that change (so workflows move between patterns). At the end every file is
complete and valid.
"""

import json
import os
import random
import sys
import time

REQUESTS = ["Run backend tests with pytest", "Typecheck the frontend with tsc", "Build the project",
            "Update to the latest npm packages", "Format all code with prettier", "Show git status",
            "Add a settings page", None]
TEMPLATES = ["adw_test_iso", "adw_plan_build_iso", "adw_sdlc_iso", "adw_review_iso", "adw_plan_iso"]
LAYOUTS = {  # layout -> (state file, agent transcripts)
    "classic": ("adw_state.json", ["sdlc_planner/raw_output.jsonl", "tester/raw_output.jsonl",
                                   "branch_generator/raw_output.jsonl", "sdlc_implementor_committer/raw_output.jsonl"]),
    "summary": ("workflow_summary.json", ["planner/cc_raw_output.jsonl", "builder/cc_raw_output.jsonl"]),
    "phase": ("adw_state.json", ["plan/quick_plan_output.jsonl", "build/build_output.jsonl"]),
    "bare": (None, ["oneoff/cc_raw_output.jsonl", "pr_creator/raw_output.jsonl"]),
}
COMMANDS = ["git diff", "git status", "cd app/server && uv run pytest -q", "npx tsc --noEmit",
            "cd app/client && npm run build", "git add -A && git commit -m 'x'", "ls -la"]


class Workflow:
    def __init__(self, root, adw_id, rng):
        self.folder = os.path.join(root, adw_id)
        self.adw_id = adw_id
        self.rng = rng
        self.layout = rng.choice(list(LAYOUTS))
        self.state_file, self.agents = LAYOUTS[self.layout]
        start = f"2026-{rng.randrange(8, 11):02d}-{rng.randrange(1, 28):02d}T10:00:00Z"
        if self.layout == "summary":
            self.state = {"workflow": "chore_implement", "adw_id": adw_id, "prompt": rng.choice(REQUESTS),
                          "model": "sonnet", "working_dir": "/home/dev/proj"}
        elif self.layout == "phase":
            self.state = {"adw_id": adw_id, "task_description": rng.choice(REQUESTS) or "Add a page",
                          "created_at": start, "status": "in_progress", "phase_results": []}
        else:
            self.state = {"adw_id": adw_id, "nl_input": rng.choice(REQUESTS), "workflow_template": rng.choice(TEMPLATES),
                          "model_used": "sonnet", "issue_number": rng.randrange(1, 999), "start_time": start}
        self.pending = {}  # agent -> the rest of a half-written line
        self.message = 0

    def create(self):
        os.makedirs(self.folder, exist_ok=True)
        if self.state_file:
            self.write_state()
        else:  # a bare workflow is its transcripts
            self.append(self.agents[0], init=True)

    def write_state(self, atomic=False):
        if not self.state_file:
            return
        path = os.path.join(self.folder, self.state_file)
        if atomic:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.state, f)
            os.replace(tmp, path)
        else:
            text = json.dumps(self.state)
            cut = self.rng.randrange(1, len(text))
            with open(path, "w") as f:  # in place, in two writes: a reader may see it empty or cut short
                f.write(text[:cut])
                f.flush()
                f.write(text[cut:])

    def append(self, agent, init=False):
        path = os.path.join(self.folder, agent)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        rng = self.rng
        if agent in self.pending:
            with open(path, "a") as f:
                f.write(self.pending.pop(agent))
            return
        r = rng.random()
        if init:
            line = {"type": "system", "subtype": "init", "session_id": f"s{rng.random()}", "model": "claude-sonnet-4-5"}
        elif r < 0.3:
            line = {"type": "result", "subtype": "success", "is_error": rng.random() < 0.1,
                    "duration_ms": rng.randrange(1000, 300000), "result": rng.choice(["Done.", "2 tests failed"]),
                    "usage": {"input_tokens": rng.randrange(100, 9000), "output_tokens": rng.randrange(10, 900),
                              "cache_read_input_tokens": rng.randrange(0, 50000)}}
            if rng.random() < 0.8:
                line["total_cost_usd"] = round(rng.uniform(0.01, 2.0), 6)
            else:
                line["modelUsage"] = {"claude-sonnet-4-5": {}}
        elif r < 0.4:
            line = {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t",
                                                             "content": "A" * rng.randrange(10, 5000)}]}}
        else:
            if rng.random() < 0.7:  # a new message; else the same id again, as stream-json splits a response
                self.message += 1
            block = ({"type": "tool_use", "id": f"t{rng.random()}", "name": "Bash",
                      "input": {"command": rng.choice(COMMANDS)}} if rng.random() < 0.6 else
                     {"type": "text", "text": "x" * rng.randrange(10, 400)})
            line = {"type": "assistant", "message": {
                "id": f"m{self.message}", "model": rng.choice(["claude-sonnet-4-5", "claude-haiku-4-5"]),
                "content": [block], "usage": {"input_tokens": rng.randrange(1, 50), "output_tokens": rng.randrange(1, 900),
                                              "cache_read_input_tokens": rng.randrange(0, 50000)}}}
        text = json.dumps(line, separators=(", ", ": ") if self.layout == "phase" else (",", ":")) + "\n"
        with open(path, "a") as f:
            if rng.random() < 0.3:  # half a line now, the rest on the next append
                cut = rng.randrange(1, len(text) - 1)
                f.write(text[:cut])
                self.pending[agent] = text[cut:]
            else:
                f.write(text)

    def step(self):
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            self.append(rng.choice(self.agents))
        elif r < 0.55:
            self.state["issue_number"] = rng.randrange(1, 999)
            self.write_state(atomic=rng.random() < 0.3)
        elif r < 0.65:
            self.state["nl_input" if self.layout == "classic" else "prompt"] = rng.choice(REQUESTS)
            self.write_state(atomic=rng.random() < 0.3)
        elif r < 0.7:
            if "start_time" in self.state:
                self.state["end_time"] = self.state["start_time"].replace(
                    "10:00", f"1{rng.randrange(0, 9)}:{rng.randrange(10, 59)}")
            self.write_state()
        elif r < 0.73:
            with open(os.path.join(self.folder, "error.log"), "a") as f:
                f.write(rng.choice(["tsc: type error in app.ts\n", "RuntimeError: boom\n", "eslint failed\n"]))
        elif r < 0.77:
            self.rerun(rng.choice(self.agents))
        elif r < 0.79:
            self.rewrite_cost_same_length(rng.choice(self.agents))
        else:
            self.append(rng.choice(self.agents))

    def rerun(self, agent):
        """The agent run again (a retry), as ADW runners do it: open("w"), a new session, the
        old runs gone from the file."""
        path = os.path.join(self.folder, agent)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.pending.pop(agent, None)
        with open(path, "w") as f:
            f.write(json.dumps({"type": "system", "subtype": "init", "session_id": f"r{self.rng.random()}",
                                "model": "claude-sonnet-4-5"}) + "\n")
        for _ in range(self.rng.randrange(1, 4)):
            self.append(agent)
        for agent_ in list(self.pending):
            if agent_ == agent:
                self.append(agent)

    def rewrite_cost_same_length(self, agent):
        """The same run written again with another cost of the same width: same size, new bytes."""
        path = os.path.join(self.folder, agent)
        if agent in self.pending or not os.path.exists(path):
            return
        with open(path) as f:
            text = f.read()
        at = text.rfind('"total_cost_usd":')
        if at < 0:
            return
        start = at + len('"total_cost_usd":')
        end = start
        while end < len(text) and (text[end].isdigit() or text[end] in ". "):
            end += 1
        value = "".join(str((int(c) + 1) % 10) if c.isdigit() else c for c in text[start:end])
        with open(path, "w") as f:
            f.write(text[:start] + value + text[end:])

    def finish(self):
        for agent in list(self.pending):
            self.append(agent)
        self.write_state()


def main():
    root, n, seconds, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    workflows = []
    deadline = time.monotonic() + seconds
    steps = 0
    create_every = max(1, int(seconds * 50 / max(n, 1)))
    while time.monotonic() < deadline or len(workflows) < n:
        if len(workflows) < n and (steps % create_every == 0 or time.monotonic() >= deadline):
            wf = Workflow(root, f"{rng.getrandbits(32):08x}", rng)
            wf.create()
            workflows.append(wf)
        elif workflows:
            rng.choice(workflows).step()
        steps += 1
        if steps % 50 == 0:
            time.sleep(0.02)
    for wf in workflows:
        wf.finish()
    print(f"{len(workflows)} workflows, {steps} steps", flush=True)


if __name__ == "__main__":
    main()
