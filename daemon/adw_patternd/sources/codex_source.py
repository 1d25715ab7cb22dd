"""The Codex homes as a source for the engine: each session a workflow `<home>/<session id>`
(docs/codex.md). A plain rollout is read from where its last read ended; a `.jsonl.zst`
(it no longer grows) is decompressed and read from the same offset, so a file compressed
or archived in place adds nothing. What spans files (the usage events counted anywhere, the
totals a fork's parent counted) comes from this process's earlier reads and from the store
(store/cross_file.py), and goes to the store with the session's change."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from ..config import Config, Root
from ..core.errors import InputRejected
from ..core.model import workflow_id
from ..core.said import Said
from ..core.rules import detect
from ..core.jsonline import loads
from .codex import (ROLLOUT, CodexState, Counted, NotARollout, RolloutFile, fold, from_json, parent_of,
                            read_rollout, to_json)
from .codex_index import SUBFOLDERS, CodexIndex, session_of
from .codex_workflow import codex_workflow
from .files import FileStat, FolderListing
from .parse import recorded_since
from .transcript import StoredTranscript
from ..core.outcome import Kind, Outcome
from ..core.change import Change, CrossFileFacts, Prior

log = logging.getLogger("adw_patternd")
MAX_LINEAGE = 32  # forks of forks followed this far back
_said = Said()  # Codex home problems already logged by this process


def key_text(key: tuple) -> str:
    return "|".join(str(v) for v in key)


def total_text(total: tuple) -> str:
    return ",".join(str(v) for v in total)


class _Seen:
    """The usage events counted in any file: by this process's reads, else in the store.
    ``own``: this session's own earlier counts are counted (an append), or not (a whole read)."""

    def __init__(self, source: "CodexSource", wid: str, own: bool):
        self.source, self.wid, self.own = source, wid, own

    def __contains__(self, key) -> bool:
        text = key_text(key)
        holder = self.source.held.get(text)
        if (holder is None or holder == self.wid) and self.source.facts is not None:
            # The store says who holds it: this session's own earlier count in memory may have
            # lost to another's stored since, or never have been stored (a refused commit).
            holder = self.source.facts.key_holder_of(text)
            if holder is not None and holder != self.wid:
                self.source.held[text] = holder
        return holder is not None and (self.own or holder != self.wid)


class CodexSource:
    def __init__(self, config: Config, facts=None, index: CodexIndex | None = None):
        """``facts``: the store's record of what other reads counted (store/cross_file.py:
        CrossFileReader; None: only this process's)."""
        self.config, self.facts = config, facts
        self.index = index or CodexIndex()
        self.held: dict[str, str] = {}  # event key -> the workflow that counted it (this process's reads)
        self.totals: dict[str, frozenset] = {}  # session id -> the totals it counted (this process's reads)

    def refresh(self) -> None:
        """List the homes again; say once what is wrong with them."""
        if not self.config.codex_homes:
            return
        problems: list[str] = []
        self.index = CodexIndex.build(self.config.codex_homes, problems)
        for problem in _said.each_new(problems):
            log.warning("%s", problem)

    def relist(self, home: Root) -> None:
        """List one home again (a session's file went away: compressed, archived or deleted)."""
        problems: list[str] = []
        self.index.homes[home.name] = CodexIndex.build((home,), problems).homes[home.name]
        for problem in _said.each_new(problems):
            log.warning("%s", problem)

    in_process = True  # read here, parents first: a fork's read needs what its parent counted

    def names(self, home: Root) -> list[str] | None:
        return self.index.of_home(home.name) if os.path.isdir(home.path) else None

    # -- live: what the daemon asks of every shape of source ----------------------------------
    def watched_folders(self, home: Root) -> tuple[str, ...]:
        return tuple(os.path.join(str(home.path), sub) for sub in SUBFOLDERS)

    def recursive(self, home: Root) -> bool:
        return True

    def changed(self, home: Root, paths) -> set[str]:
        """A rollout changed, appeared, or moved (compressed, archived): the index learns where
        its session is now (a file gone: the home is listed again)."""
        problems: list[str] = []
        sids = set()
        for path in sorted(paths):
            sid = session_of(str(home.path), path)
            if sid is None:
                continue
            if os.path.isfile(path):
                self.index.add(home.name, path, problems)
            sids.add(sid)
        for problem in problems:
            log.warning("%s", problem)
        if any((f := self.index.file(home.name, sid)) is None or not os.path.exists(f.path) for sid in sids):
            self.relist(home)
        return sids

    @staticmethod
    def instead(o: Outcome, owner_of) -> str | None:
        return None

    def listing(self, home: Root, sid: str) -> FolderListing | None:
        f = self.index.file(home.name, sid)
        try:
            st = os.stat(f.path) if f else None
        except OSError:
            st = None
        if st is None:
            return None
        out = FileStat(ROLLOUT, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        return FolderListing(os.path.dirname(f.path), (st.st_ino, st.st_mtime_ns), None, None, (out,))

    def lineage(self, sid: str | None, depth: int = 0) -> frozenset | None:
        """The totals a session and those it copied from counted; None when it is in no home."""
        f = self.index.find(sid) if sid else None
        if f is None:
            return None
        own = self.totals.get(sid)
        if own is None:
            own = self.facts.totals(sid) if self.facts is not None else frozenset()
        if f.parent_id and depth < MAX_LINEAGE:
            return own | (self.lineage(f.parent_id, depth + 1) or frozenset())
        return own

    def read(self, home: Root, sid: str, listing: FolderListing, prior: Prior, notes: list[str],
             fingerprint: str | None, fresh: bool, listed_at: int | None = None) -> Change | Outcome:
        """``fresh``: its file changed within stale_after_s; ``listed_at``: when (epoch ns) it
        was listed, against which its last recorded entry is judged too (parse.recorded_since)."""
        f = self.index.file(home.name, sid)
        if not home.include_sessions:  # no Codex session belongs to an ADW run: none is read
            return Outcome(Kind.SKIPPED, home.name, sid)
        if f is None:
            raise InputRejected(f"{home.name}/{sid}", "session no longer listed (read again at the next sync)",
                                transient=True)
        wid = workflow_id(home.name, sid)
        state = from_json(prior.states.get(ROLLOUT, ""))
        chunk = _chunk(f, state.offset)
        if chunk is None:  # shorter than what was read: another file now; read it whole
            state, chunk = CodexState(), _chunk(f, 0) or b""
        whole = state.offset == 0
        parent = state.parent_id or f.parent_id or (_parent_in(chunk) if whole else None)
        parent_totals = self.lineage(parent) if whole or state.copying else None
        try:
            state, counted = fold(state, chunk, self.config.prices, notes, f.path, self.config.rules.commands,
                                  parent_totals=parent_totals, seen=_Seen(self, wid, own=not whole))
        except NotARollout as e:  # not a session: said, and skipped as a folder that is no workflow is
            return Outcome(Kind.SKIPPED, home.name, sid, notes=(*notes, str(e)))
        if state.session_id is None:
            state = replace(state, session_id=sid)
        facts = self._remember(wid, sid, counted, reset=whole)
        going = fresh and not f.compressed and (  # a .zst no longer grows
            listed_at is None or recorded_since(state.last_ts, listed_at, self.config.stale_after_s))
        wf = codex_workflow(home.name, sid, state, going)
        found = detect(wf, self.config.rules)
        out = listing.outputs[0]
        kept = StoredTranscript(ROLLOUT, out.device, out.inode, state.offset, out.size, out.mtime_ns, "", "",
                                sum(m.responses for m in state.models.values()), state.tokens, state.nanos, 0, 0,
                                None, wf.model, 0, to_json(state))
        return Change(wf, found.occurrences, found.characteristics, (kept,), fingerprint, prior.revision,
                      mentions=found.mentions, cross_file=facts)

    def _remember(self, wid: str, sid: str, counted: tuple[Counted, ...], reset: bool) -> CrossFileFacts:
        keys = tuple(key_text(c.key) for c in counted)
        totals = frozenset(c.total for c in counted if c.total is not None)
        for k in keys:
            if self.held.get(k) is None:
                self.held[k] = wid
        if totals:
            self.totals[sid] = (self.totals.get(sid) or frozenset()) | totals
        return CrossFileFacts(sid, keys, tuple(total_text(t) for t in sorted(totals)), reset)


def _parent_in(chunk: bytes) -> str | None:
    """The parent a rollout's session_meta names (its first line), when the index did not
    know it (a file indexed live while that line was being written)."""
    try:
        obj = loads(chunk.split(b"\n", 1)[0])
    except (ValueError, RecursionError):
        return None
    payload = obj.get("payload") if isinstance(obj, dict) and obj.get("type") == "session_meta" else None
    return parent_of(payload) if isinstance(payload, dict) else None


def _chunk(f: RolloutFile, offset: int) -> bytes | None:
    """The rollout's bytes from ``offset``; None when it holds fewer."""
    try:
        if f.compressed:
            data = read_rollout(f.path)
            return data[offset:] if len(data) >= offset else None
        with open(f.path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < offset:
                return None
            fh.seek(offset)
            return fh.read()
    except OSError as e:
        raise InputRejected(f.path, f"cannot read ({e.strerror})", transient=True) from None
