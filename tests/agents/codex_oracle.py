"""What a Codex session must cost, worked out from what the scripted model served.

Never from our output, never from the files Codex wrote: the test says which served
responses belong to which session (it ran the commands), and this prices them with the
published OpenAI prices (../shared/docs/codex-sessions.md, section 9) and splits each
response's dollars equally among its calls (detection-rules.md, layer 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .script import Served

# Nano-dollars per token (USD per million tokens x 1000): input (uncached), cached input, output.
PRICES = {"gpt-5-codex": (1250, 125, 10_000)}

# The commands the scenarios script, and the signature each gets (detection-rules.md, layer 4).
SIGNATURES = {
    "git status": "git:status:summary",
    "git log --oneline": "git:log:summary",
    "git diff": "git:diff:summary",
    "git add README.md": "git:commit:all",
}


def response_nanos(served: Served) -> int:
    uncached, cached, output = PRICES[served.model]
    u = served.usage
    return u.input * uncached + u.cache_read * cached + u.output * output


def response_tokens(served: Served) -> int:
    """Input (cached included) plus output (reasoning included), as OpenAI totals them."""
    return served.usage.input + served.usage.cache_read + served.usage.output


@dataclass
class Command:
    calls: int = 0
    nanos: int = 0


@dataclass
class Session:
    """The expected figures of one session."""

    tokens: int = 0
    nanos: int = 0
    responses: int = 0
    state: str = "completed"  # completed (ended), interrupted (killed), running
    commands: dict[str, Command] = field(default_factory=dict)


@dataclass
class Oracle:
    sessions: dict[str, Session] = field(default_factory=dict)

    def add(self, session_id: str, served: list[Served]) -> Session:
        """The responses ``served`` were that session's: each answered request counts once,
        a failed one (an error status) counts nothing."""
        s = self.sessions.setdefault(session_id, Session())
        for one in served:
            if one.status != 200:
                continue
            nanos = response_nanos(one)
            s.tokens += response_tokens(one)
            s.nanos += nanos
            s.responses += 1
            for command in one.calls:
                if command not in SIGNATURES:
                    continue  # a command no signature names (sleep): paid for, in no pattern
                c = s.commands.setdefault(SIGNATURES[command], Command())
                c.calls += 1
                c.nanos += nanos // len(one.calls)
        return s

    def state(self, session_id: str, state: str) -> None:
        self.sessions.setdefault(session_id, Session()).state = state
