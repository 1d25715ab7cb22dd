"""What a test scripts its model to say, and what the model served.

The agent tests (issue 31) run the real Claude Code and Codex CLI against a scripted model
server on 127.0.0.1. The only thing faked is the model, and what it served is the oracle:
a test works out its expected tokens, dollars and calls from the ``Served`` log, never from
our output or from the files the agent wrote.

These are plain values shared by the server (server.py), the two wire formats
(anthropic_api.py, openai_api.py) and the scenarios.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Usage:
    """A response's usage, in the terms both APIs share.

    Anthropic sends input, cache writes and reads apart; OpenAI's input_tokens include the
    cached ones (sent as input_tokens_details.cached_tokens), and its output_tokens include
    the reasoning ones. ``input`` here is always the uncached input."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0  # Anthropic only
    cache_write_1h: int = 0  # Anthropic only: usage.cache_creation.ephemeral_1h_input_tokens
    reasoning: int = 0  # OpenAI only: part of output

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h


@dataclass(frozen=True)
class Reply:
    """One scripted model response.

    ``calls``: shell commands, each one tool call of this one response (Claude's Bash tool,
    Codex's shell/exec_command). ``subagent``: a prompt for a Claude sub-agent (the Task
    tool) in this response. ``error``: answer the request with this HTTP status and no
    response instead (the agent retries; the next reply answers the retry)."""

    text: str = ""
    calls: tuple[str, ...] = ()
    subagent: str | None = None
    usage: Usage = Usage(input=100, output=20)
    error: int | None = None
    stop: str | None = None  # a stop reason to force; by default tool_use/end_turn as the content says


@dataclass(frozen=True)
class Served:
    """One request the server answered, as the oracle sees it."""

    api: str  # "anthropic" or "openai"
    path: str
    response_id: str  # the message id (msg_...) or response id (resp_...); "" for an error
    model: str
    usage: Usage
    calls: tuple[str, ...]
    status: int = 200
    side: bool = False  # a request the script did not answer (no tools: a title, a topic, a warm-up)
    subagent: str | None = None
    # Claude Code 2.0.x's warm-up sub-agent (a first message ``Warmup``): answered with the
    # side reply, yet written to an agent-<id>.jsonl file, so it is part of the session.
    warmup: bool = False
    compact: bool = False  # the agent's request to summarise the conversation (automatic compaction)
    session: str | None = None  # the session id the agent sent with the request (Claude: metadata.user_id)


@dataclass
class Script:
    """Replies handed out in order to the agent's requests; side requests (a request that
    offers no tools) get ``side_reply`` and do not consume the script."""

    replies: list[Reply]
    side_reply: Reply = Reply(text="Scripted side answer.", usage=Usage(input=12, output=3))
    # The answer to a compaction's summary request, which does not consume the script either.
    compact_reply: Reply = Reply(text="<summary>The scripted conversation so far: commands ran.</summary>",
                                 usage=Usage(input=3000, output=400, cache_read=150_000))
    served: list[Served] = field(default_factory=list)
    # A sub-agent's own conversation, by the prompt its Reply.subagent gave it: its requests
    # take these replies, not the main conversation's (Claude Code 2.1.x runs a sub-agent in
    # the background, so its requests and the main agent's interleave).
    agents: dict[str, list[Reply]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _next: int = 0

    def take(self, side: bool, agent: str | None = None, compact: bool = False) -> Reply:
        with self._lock:
            if compact:
                return self.compact_reply
            if side:
                return self.side_reply
            if agent is not None:
                queue = self.agents[agent]
                return queue.pop(0) if queue else Reply(text="Sub-agent done.", usage=Usage(input=11, output=2))
            if self._next >= len(self.replies):
                return Reply(text="Done.", usage=Usage(input=10, output=2))
            reply = self.replies[self._next]
            self._next += 1
            return reply

    def record(self, served: Served) -> None:
        with self._lock:
            self.served.append(served)

    @property
    def left(self) -> int:
        """Scripted replies not yet taken, the sub-agents' included."""
        return len(self.replies) - self._next + sum(len(q) for q in self.agents.values())
