"""What a read of one workflow gives the ledger, and what the ledger held before it: the
values that cross between the sources, the engine and the store (Prior, Change)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Occurrence, Workflow
from .stored import StoredTranscript


@dataclass(frozen=True)
class Prior:
    """What the database holds for a workflow before we read its files again."""

    revision: int = 0
    fingerprint: str | None = None
    transcripts: dict = field(default_factory=dict)  # relative path -> Transcript as last read (Engine.prior)
    states: dict = field(default_factory=dict)  # relative path -> its stored state JSON, as stored
    # relative path -> (device, inode, offset, size, mtime_ns, head, tail, state JSON): each
    # agent_outputs row as stored; the store does not know the shape of a reader's state
    rows: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CrossFileFacts:
    """What one session's read counted that the reads of other files need (a home whose
    forks copy their parents' events): the usage events' keys and the cumulative totals (as
    text), and whether the session was read from its start (its earlier rows go)."""

    session_id: str
    keys: tuple[str, ...] = ()
    totals: tuple[str, ...] = ()
    reset: bool = False


@dataclass(frozen=True)
class Change:
    """One workflow version to apply.

    mode "replace": its links become exactly ``occurrences``. mode "add": ``occurrences``
    are added to its existing links (the reference's record_pattern_occurrence). With
    ``expected_revision`` set, the change is refused if another writer got there first.
    ``transcripts`` None leaves agent_outputs alone (reference-style dicts have no files).
    """

    workflow: Workflow
    occurrences: tuple[Occurrence, ...]
    characteristics: dict
    transcripts: tuple[StoredTranscript, ...] | None = None
    fingerprint: str | None = None
    expected_revision: int | None = None
    mode: str = "replace"
    mentions: tuple[str, ...] = ()  # named by layers 1-3, done by no agent: not occurrences
    # Session ids of the session store that belong to this ADW workflow (its runs name them,
    # or they ran in its worktree), and those sessions' own workflows, dropped when applied.
    claims: tuple[str, ...] | None = None  # None: no session store configured, nothing to claim
    absorbs: tuple[str, ...] = ()
    # A session store's session as a workflow of its own: stored only while no ADW workflow claims it.
    own_session: str | None = None
    # The responses its session files counted (core/response_rank.py: Held), the files read
    # again from their start, whose earlier keys go, and the session's first entry (epoch ms).
    keys_counted: tuple = ()
    keys_reset: tuple[int, ...] = ()
    keys_first_ms: int = 0
    cross_file: CrossFileFacts | None = None  # what other files' reads need (store/cross_file.py)

    @property
    def signatures(self) -> tuple[str, ...]:
        return tuple(o.signature for o in self.occurrences)
