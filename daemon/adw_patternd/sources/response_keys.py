"""Which responses of a session store are counted already, so that none is counted twice.

A response (message id and request id) can be in more than one file of a store
(../shared/docs/claude-session-store.md): a side conversation replays its parent's message
in the subagent's own file; a resumed or forked conversation copies the conversation so far
into the new session's file. Each is counted once, by the file that claimed it first, and
the keys of what was counted are kept in a table of their own (store/response_keys.py):
written once each, never rewritten, so that a file's state stays bounded however long it
grows. Keys are 64-bit hashes; a read asks the store only for the ids its new lines hold.

Pure apart from ``fetch``, the store's look-up, given by whoever reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable


def key_of(text: str) -> int:
    """A signed 64-bit hash of ``text`` (a column of either database takes it)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big",
                          signed=True)


Fetch = Callable[[list[int], tuple[int, ...]], Iterable[tuple[int, int]]]


class ResponseKeys:
    """One workflow's read of its session files: what is counted already (asked of the store
    by message id, ``fetch(message keys, files to leave out)``), what this read counts, and
    the files read again from their start (their stored keys are replaced)."""

    def __init__(self, workflow_id: str, fetch: Fetch | None = None):
        self.workflow_id = workflow_id
        self._fetch = fetch
        self._known: dict[int, set[int]] = {}  # message key -> request keys (0: no request id)
        self._asked: set[int] = set()
        self.counted: list[tuple[int, int, int]] = []  # (file, message key, request key) claimed by this read
        self.reset: list[int] = []  # files read again from their start

    def file_key(self, path: str) -> int:
        return key_of(f"{self.workflow_id}\x1f{path}")

    def restart(self, path: str) -> None:
        """``path`` is read again from its start: what it claimed before is its no longer."""
        file = self.file_key(path)
        if file not in self.reset:
            self.reset.append(file)
        self.counted = [c for c in self.counted if c[0] != file]

    def prepare(self, message_ids: Iterable[str]) -> None:
        """Ask the store, once, about the message ids a chunk holds."""
        wanted = sorted({key_of(m) for m in message_ids} - self._asked)
        if not wanted:
            return
        self._asked.update(wanted)
        if self._fetch is not None:
            for mkey, rkey in self._fetch(wanted, tuple(self.reset)):
                self._known.setdefault(mkey, set()).add(rkey)

    def claim(self, path: str, message_id: str, request_id: str, sidechain: bool) -> bool:
        """Whether this response counts here: False when it was counted already (a side
        conversation's message whose id was counted under any request: a replay of its
        parent's)."""
        mkey = key_of(message_id)
        if mkey not in self._asked:
            self.prepare((message_id,))
        rkey = key_of(request_id) if request_id else 0
        have = self._known.get(mkey)
        if have and (sidechain or rkey in have or 0 in have or rkey == 0):
            return False
        self._known.setdefault(mkey, set()).add(rkey)
        self.counted.append((self.file_key(path), mkey, rkey))
        return True
