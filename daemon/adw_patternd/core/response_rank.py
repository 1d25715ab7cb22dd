"""Which of two copies of one response counts (the rule the readers of a session store apply
and the store keeps: ../shared/docs/claude-session-store.md): the counted copy's key and rank
as the store keeps them (Held), and which held copies a new one takes over (beaten_by). Pure."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

LATEST = 2**62  # the rank of a copy without a timestamp: after every copy that has one


def key_of(text: str) -> int:
    """A signed 64-bit hash of ``text`` (a column of either database takes it)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big",
                          signed=True)


def file_key(workflow_id: str, path: str) -> int:
    """The key of one file of a workflow, as its counted responses are stored under."""
    return key_of(f"{workflow_id}\x1f{path}")


class Held(NamedTuple):
    """A counted response as the store keeps it, with what ranks it against another copy."""

    mkey: int
    rkey: int  # 0: the response had no request id
    side: int  # 1: a side conversation's (isSidechain)
    at_ms: int  # its first entry's time in the file that holds it
    first_ms: int  # the holding session's first entry
    workflow_id: str
    file: int

    def rank(self) -> tuple:
        return (self.at_ms, self.first_ms, self.workflow_id)


def beaten_by(mine: Held, held) -> list[Held] | None:
    """The counted copies ``mine`` takes over, or None when one of them keeps the response.
    A side conversation's copy never beats its parent's (same message id, any request); a
    parent's beats every side copy; copies of one response rank by time, session, id."""
    beaten = []
    for h in held:
        same_response = h.rkey == mine.rkey  # the key is the message id and the request id, absent or not
        if mine.side and not h.side:
            return None  # a replay of a counted parent message
        if h.side and not mine.side:
            beaten.append(h)  # the parent's copy: the replay counted before it goes
        elif same_response:
            if h.rank() <= mine.rank():
                return None
            beaten.append(h)
    return beaten
