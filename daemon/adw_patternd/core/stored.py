"""What the store keeps of one read file or session (one agent_outputs row), as plain
values: shared by the readers, which make it, and the store, which writes it and gives it
back. Its ``state_json`` is each reader's own, opaque to the store."""

from __future__ import annotations

from typing import NamedTuple


class StoredTranscript(NamedTuple):
    """A transcript as the store keeps it (one agent_outputs row): what the file looked like
    at the read, the totals a person can query (overwritten runs included), and the fold's
    state. Made in the reading process, so that only plain values travel to the writer."""

    path: str
    device: int
    inode: int
    offset: int
    size: int
    mtime_ns: int
    head: str
    tail: str
    results: int
    tokens: int
    cost_nanos: int
    duration_ms: int
    error_results: int
    last_error: str | None
    model: str | None
    overwritten_runs: int
    state_json: str

    def content(self) -> tuple:
        """All but where the file is and when it was written: equal content, nothing to apply."""
        return (self.path, self.offset, self.tail) + tuple(self[8:])


STORED_COLUMNS = ("agent_name", "device", "inode", "offset_bytes", "size_bytes", "mtime_ns", "head_session", "tail",
                  "results", "tokens", "cost_nanos", "duration_ms", "error_results", "last_error", "model",
                  "overwritten_runs", "state_json")


SESSION_STATE = "session"  # the row of a session read by a pure reader (agent_source.py): its state, opaque
# The rows whose state holds what their reads counted and priced (a Codex rollout's, a pure
# reader's session): dropped when every file is read again, so that their sessions are read whole.
WHOLE_AGAIN = ("rollout.jsonl", SESSION_STATE)
