"""Which responses of a session store are counted already, so that none is counted twice.

A response (message id and request id) can be in more than one file of a store
(../shared/docs/claude-session-store.md):
- a side conversation replays its parent's message (same message id, another request id,
  isSidechain) in the subagent's own file: the parent's copy counts, the replay never;
- a resumed or forked conversation copies the conversation so far into the new session's
  file: the copy with the earliest timestamp counts (equal: the session whose first entry is
  earliest, then the smaller session id).
Both rules give the same answer in whichever order the files are read: a copy that ranks
before the one counted takes it over, and the workflow that held it is read again from its
files' start (the ledger does that, in the transaction that stores the new holder).

The keys of what is counted are kept in a table of their own (store/response_keys.py):
written once each, never rewritten, so that a file's state stays bounded however long it
grows. Keys are 64-bit hashes; a read asks the store only for the ids its new lines hold.
Pure apart from ``fetch``, the store's look-up, given by whoever reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from ..core.response_rank import LATEST, Held, beaten_by, file_key, key_of  # noqa: F401 (beaten_by re-exported)

def epoch_ms(timestamp) -> int:
    """An entry's ISO 8601 timestamp in milliseconds; LATEST when it has none that parses."""
    if not isinstance(timestamp, str):
        return LATEST
    try:
        return round(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return LATEST


Fetch = Callable[[list[int], tuple[int, ...]], Iterable[Held]]


class ResponseKeys:
    """One workflow's read of its session files: what is counted already (asked of the store
    by message id, ``fetch(message keys, files to leave out)``), what this read counts and
    takes over, and the files read again from their start (their stored keys are replaced).
    ``first_ms``: the session's first entry, its rank among sessions holding one copy."""

    def __init__(self, workflow_id: str, fetch: Fetch | None = None, first_ms: int = LATEST):
        self.workflow_id, self.first_ms = workflow_id, first_ms
        self._fetch = fetch
        self._held: dict[int, list[Held]] = {}  # message key -> counted copies, stored or claimed here
        self._asked: set[int] = set()
        self.counted: list[Held] = []  # claimed by this read, to store with its change
        self.taken: list[Held] = []  # stored copies this read's rank before: their holders are read again
        self.reset: list[int] = []  # files read again from their start

    def file_key(self, path: str) -> int:
        return file_key(self.workflow_id, path)

    def restart(self, path: str) -> None:
        """``path`` is read again from its start: what it claimed before is its no longer."""
        file = self.file_key(path)
        if file not in self.reset:
            self.reset.append(file)
        for mkey, held in self._held.items():
            self._held[mkey] = [h for h in held if h.file != file]

    def prepare(self, message_ids: Iterable[str]) -> None:
        """Ask the store, once, about the message ids a chunk holds."""
        wanted = sorted({key_of(m) for m in message_ids} - self._asked)
        if not wanted:
            return
        self._asked.update(wanted)
        if self._fetch is not None:
            for h in self._fetch(wanted, tuple(self.reset)):
                self._held.setdefault(h.mkey, []).append(h)

    def claim(self, path: str, message_id: str, request_id: str, sidechain: bool, at_ms: int) -> bool:
        """Whether this copy of a response counts here (the doc's two rules above). A copy
        that ranks before a stored one takes it over (``taken``). Within one read the copy
        claimed first stays: a read's sums cannot give back what they folded in."""
        mkey = key_of(message_id)
        if mkey not in self._asked:
            self.prepare((message_id,))
        mine = Held(mkey, key_of(request_id) if request_id else 0, int(sidechain), at_ms, self.first_ms,
                    self.workflow_id, self.file_key(path))
        held = self._held.get(mkey, [])
        beaten = beaten_by(mine, held)
        if beaten is None or any(h in self.counted for h in beaten):
            return False
        self._held[mkey] = [h for h in held if h not in beaten] + [mine]
        self.counted.append(mine)
        self.taken.extend(beaten)
        return True

    def keeper(self, message_id: str, request_id: str, sidechain: bool, at_ms: int) -> str:
        """The workflow whose copy of a response counts, asked after ``claim`` said this copy
        does not (the same rules as ``beaten_by``): another session's, or this one's."""
        mine = Held(key_of(message_id), key_of(request_id) if request_id else 0, int(sidechain), at_ms,
                    self.first_ms, self.workflow_id, 0)
        for h in self._held.get(mine.mkey, ()):
            if mine.side and not h.side:
                return h.workflow_id
            if h.side == mine.side and h.rkey == mine.rkey and h.rank() <= mine.rank():
                return h.workflow_id
        return self.workflow_id

