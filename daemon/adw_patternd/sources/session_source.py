"""The session stores as a source for the engine: where their files are, the sessions that
belong to an ADW workflow (joined to it), and a session that is a workflow of its own.

The engine asks; this reads. Which session belongs where (docs/session-store.md):
- named by one of the workflow's runs (its transcript's session_id): times and request;
- run in the workflow's worktree and named by no run: an attempt the ADW folder lost;
- anything else: a workflow of its own, unless an ADW workflow claims it when it is applied
  (the ledger checks session_claims in the same transaction).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ..config import Config, Root
from ..core.errors import InputRejected
from ..core.model import workflow_id
from ..core.said import Said
from .files import FileStat, FolderListing, list_session, read_transcript, session_stat
from ..core.outcome import Kind, Outcome
from .parse import Joined, Observed, StateFields, build_workflow, recorded_since
from ..core.rules import detect
from .claude_sessions import SessionIndex, first_timestamp, joined_in, named_sessions, session_of
from .response_keys import Fetch, ResponseKeys, epoch_ms
from ..core.change import Change, Prior
from .transcript import Transcript, stored

log = logging.getLogger("adw_patternd")
_said = Said()  # session store problems already logged by this process


@dataclass(frozen=True)
class Joining:
    """What the session stores add to one ADW workflow."""

    stats: tuple[FileStat, ...] = ()  # its session files' stats, for its fingerprint
    sessions: tuple[Joined, ...] = ()
    claims: tuple[str, ...] | None = None  # None: no session store configured
    absorbs: tuple[str, ...] = ()  # the claimed sessions' own workflows, dropped when applied


class SessionSource:
    def __init__(self, config: Config, index: SessionIndex | None = None, fetch_keys: Fetch | None = None):
        """``fetch_keys``: the store's look-up of responses counted already (response_keys.py)."""
        self.config = config
        self.index = index or SessionIndex()
        self.fetch_keys = fetch_keys

    def refresh(self) -> None:
        """List the session stores again; say once what is wrong with them."""
        if not self.config.claude_projects:
            return
        problems: list[str] = []
        self.index = SessionIndex.build(self.config.claude_projects, problems)
        for problem in _said.each_new(problems):
            log.warning("%s", problem)

    in_process = False  # any process reads a session: what the others counted is asked of the store

    def names(self, store: Root) -> list[str] | None:
        return self.index.of_store(store.name) if os.path.isdir(store.path) else None

    # -- live: what the daemon asks of every shape of source ----------------------------------
    def watched_folders(self, store: Root) -> tuple[str, ...]:
        return (str(store.path),)  # a few folders per project, every line appended live

    def recursive(self, store: Root) -> bool:
        return True

    def changed(self, store: Root, paths) -> set[str]:
        """The sessions the changed files are (those the store holds)."""
        sids = {session_of(str(store.path), p) for p in paths} - {None}
        return {sid for sid in sids if self.index.find(store, sid) is not None}

    @staticmethod
    def instead(o: Outcome, owner_of) -> str | None:
        """The ADW workflow to read instead of a session that belongs to it (with
        include_sessions false, a run's session is skipped unread)."""
        return (o.joined_to or owner_of(o.adw_id)) if o.kind is Kind.SKIPPED else None

    @staticmethod
    def named_in(fingerprint: str | None) -> tuple[str, ...]:
        """The sessions an ADW workflow's fingerprint says are joined to it."""
        return joined_in(fingerprint)

    def listing(self, store: Root, sid: str) -> FolderListing | None:
        found = self.index.files.get(sid)
        return list_session(found.path, sid) if found and found.store == store.name else None

    def stats(self, adw_id: str, named) -> tuple[FileStat, ...]:
        """The session files of a workflow: those its runs name, and those run in its worktree."""
        stats = []
        for sid in sorted(set(named) | set(self.index.by_worktree.get(adw_id, ()))):
            found = self.index.files.get(sid)
            stats.append(session_stat(sid, found.store if found else "", found.path if found else None))
        return tuple(stats)

    # -- an ADW workflow's sessions ---------------------------------------------------------
    def join(self, adw_id: str, transcripts: tuple[Transcript, ...], prior: Prior, notes: list[str]) -> Joining:
        named = named_sessions(transcripts)
        stats = self.stats(adw_id, named)
        sessions = self._read_joined(stats, named, prior, notes)
        claims = tuple(sorted(named | {s.sid for s in sessions}))
        absorbs = tuple(workflow_id(self.index.files[sid].store, sid) for sid in claims if sid in self.index.files)
        return Joining(stats, sessions, claims, absorbs)

    def _read_joined(self, stats: tuple[FileStat, ...], named: set[str], prior: Prior,
                     notes: list[str]) -> tuple[Joined, ...]:
        """The session files of an ADW workflow's runs, read from where the last read ended. A
        file the store no longer holds keeps what was read of it (Claude Code deletes old
        sessions; the times they gave stay true)."""
        joined = []
        for f in stats:
            sid = f.name.rsplit("/", 1)[-1][:-len(".jsonl")]
            found = self.index.files.get(sid)
            if found is not None and found.orphan:
                found = None  # no main file to read (a lost attempt's subagents alone are not counted)
            before = prior.transcripts.get(f.name) if found else next(
                (t for name, t in prior.transcripts.items() if name.startswith("@") and name.endswith(f"/{sid}.jsonl")),
                None)
            if found is None:
                if before is not None:
                    joined.append(Joined(sid, sid in named, before))
                continue
            start = before if before is not None and before.session else Transcript(f.name, session=True)
            try:
                t = read_transcript(found.path, start, self.config.prices, notes, self.config.rules.commands)
            except InputRejected as e:
                notes.append(f"{e} (session kept as last read)")
                if before is None:
                    continue
                t = before
            joined.append(Joined(sid, sid in named, t))
        return tuple(joined)

    # -- a session of its own ------------------------------------------------------------------
    def read(self, store: Root, sid: str, listing: FolderListing, prior: Prior, notes: list[str],
                 fingerprint: str | None, fresh: bool, listed_at: int) -> Change | Outcome:
        """A session of a store as a workflow of its own: unless an ADW workflow claims it, by
        its worktree here or (in the ledger, when applied) by a transcript naming it."""
        worktree = self.index.files[sid].worktree_of
        home = next((workflow_id(r.name, worktree) for r in self.config.roots
                     if worktree and os.path.isdir(os.path.join(r.path, worktree))), None)
        if home or not store.include_sessions:
            return Outcome(Kind.SKIPPED, store.name, sid, joined_to=home)
        notes.extend(listing.problems)
        main = prior.transcripts.get(listing.outputs[0].name)
        first = main.first_ts if main is not None and main.first_ts and main.inode else first_timestamp(
            os.path.join(listing.path, listing.outputs[0].name))
        # A session ranks by its first entry among sessions holding one response: one whose
        # first entry shows only now is read again whole (a copy it lost may now be its).
        whole = main is not None and not main.first_ts and bool(first)
        first_ms = epoch_ms(first)
        keys = ResponseKeys(workflow_id(store.name, sid), self.fetch_keys, first_ms)
        transcripts = []
        for out in listing.outputs:  # the session's own file first, then its subagents'
            start = prior.transcripts.get(out.name)
            if whole or start is None or not start.session:
                start = Transcript(out.name, session=True)
            transcripts.append(read_transcript(os.path.join(listing.path, out.name), start, self.config.prices,
                                               notes, self.config.rules.commands, listed_at, keys))
        last = max((t.last_ts for t in transcripts), default="")
        observed = Observed(StateFields(), tuple(transcripts), oldest_mtime_ns=listing.oldest_mtime_ns(),
                            newest_mtime_ns=listing.newest_file_mtime_ns(),
                            fresh=fresh and recorded_since(last, listed_at, self.config.stale_after_s))
        wf = build_workflow(store.name, sid, observed, self.config.prices, notes)
        found = detect(wf, self.config.rules)
        return Change(wf, found.occurrences, found.characteristics, tuple(stored(t) for t in transcripts),
                      fingerprint, prior.revision, mentions=found.mentions, own_session=sid,
                      keys_counted=tuple(keys.counted), keys_reset=tuple(keys.reset), keys_first_ms=first_ms)
