"""ADW workflow folders: one folder of a root is one workflow (its adw_state.json, its
summary, each agent's raw_output.jsonl read from the stored offset, its logs), joined to
the sessions of Claude Code's store that its runs name. The engine lists a folder, decides
whether it changed, and hands it here to be read into a Change.
"""

from __future__ import annotations

import os
from dataclasses import replace

from ..config import Config, Root
from ..core.change import Change, Prior
from ..core.errors import InputRejected
from ..core.model import workflow_id
from ..core.outcome import Kind, Outcome
from ..core.rules import detect
from .files import (ERROR_LOG, RACY_NS, STATE_FILE, SUMMARY_FILE, FolderListing, execution_log_times,
                    issue_title_in, list_folder, read_small, read_tail, read_transcript)
from .parse import Observed, build_workflow, merge_summary, needs_issue_title, parse_state, recorded_since
from .session_source import Joining
from .transcript import Transcript, stored


def is_fresh(listing: FolderListing, now_ns: int, stale_after_s: float) -> bool:
    """A file changed within stale_after_s: a run without a result line may still be going."""
    return now_ns - listing.newest_file_mtime_ns() < stale_after_s * 1e9


def fingerprint_of(listing: FolderListing, now_ns: int, stale_after_s: float) -> str:
    """The files' identity, plus whether they are still fresh: a workflow whose unfinished
    run goes stale is read once more (to become `interrupted`) without any file changing."""
    return listing.fingerprint() + ("|fresh" if is_fresh(listing, now_ns, stale_after_s) else "")


class AdwFolders:
    """The reader of the workflow folders of ADW roots (roots without a kind)."""

    def __init__(self, config: Config, sessions, carried: dict[tuple[str, str], tuple]):
        """``sessions``: the source of Claude Code's session store, which the folders' runs
        join; ``carried``: overwritten runs to start a transcript with (Engine's)."""
        self.config = config
        self.sessions = sessions
        self.carried = carried
        self._root_real: dict[str, str] = {}

    def root_real(self, root: Root) -> str:
        real = self._root_real.get(root.name)
        if real is None:
            real = self._root_real[root.name] = os.path.realpath(root.path)
        return real

    def listing(self, root: Root, adw_id: str, joined: tuple[str, ...]) -> FolderListing | None:
        """stat a workflow folder, with the session files ``joined`` to it; None when it is gone."""
        listing = list_folder(os.path.join(root.path, adw_id), self.root_real(root))
        if listing is not None and (joined or self.config.joining):
            listing = replace(listing, sessions=self.sessions.stats(adw_id, joined))
        return listing

    def read(self, root: Root, adw_id: str, listing: FolderListing, listed_at: int, prior: Prior,
             notes: list[str], fingerprint: str | None) -> Change | Outcome:
        """Read one listed workflow folder into a Change (or say why there is nothing to apply).
        Problems in usable files are added to ``notes``; a state or summary file that cannot
        be used rejects the workflow, which keeps its last good data. ``fingerprint`` is
        stored with the change (None while the files are too new to trust one)."""
        folder = listing.path
        notes.extend(listing.problems)
        for name in (STATE_FILE, SUMMARY_FILE):  # there, but not a file we can read
            path = os.path.join(folder, name)
            bad = next((p for p in listing.problems if p.startswith(path + ":")), None)
            if bad:
                raise InputRejected(path, bad[len(path) + 2:])
        if not listing.is_workflow:
            return Outcome(Kind.SKIPPED, root.name, adw_id)
        max_bytes = self.config.max_file_bytes
        state = summary = None
        if listing.state is not None:
            path = os.path.join(folder, STATE_FILE)
            state = parse_state(path, read_small(path, listing.state, max_bytes), notes)
        if listing.summary is not None:
            path = os.path.join(folder, SUMMARY_FILE)
            summary = parse_state(path, read_small(path, listing.summary, max_bytes), notes)
        fields = merge_summary(state, summary)
        rules = self.config.rules.commands
        transcripts = tuple(
            read_transcript(os.path.join(folder, out.name), prior.transcripts.get(out.name) or Transcript(
                out.name, overwritten=self.carried.get((workflow_id(root.name, adw_id), out.name), ())),
                            self.config.prices, notes, rules, listed_at)
            for out in listing.outputs)
        error_tail = None
        if listing.error_log is not None and listing.error_log.size > 0:
            error_tail = read_tail(os.path.join(folder, ERROR_LOG)) or None
        log_start = log_end = None
        if fields.start_time is None and fields.end_time is None and listing.execution_logs:
            log_start, log_end = execution_log_times(folder, listing)
        title = issue_title_in(folder, listing, self.root_real(root), self.config.max_file_bytes,
                               notes) if needs_issue_title(fields) else None
        joined = Joining()
        if self.config.joining:
            joined = self.sessions.join(adw_id, transcripts, prior, notes)
            final = replace(listing, sessions=joined.stats)
            if fingerprint is not None and final.sessions != listing.sessions:  # its runs named other sessions
                racy = final.newest_mtime_ns() >= listed_at - RACY_NS
                fingerprint = None if racy else self.fingerprint(final, listed_at)
        observed = Observed(fields, transcripts, error_tail, log_start, log_end, listing.oldest_mtime_ns(),
                            listing.newest_file_mtime_ns(), self.going(listing, listed_at, joined), title,
                            joined.sessions)
        wf = build_workflow(root.name, adw_id, observed, self.config.prices, notes)
        found = detect(wf, self.config.rules)
        kept = tuple(stored(t) for t in transcripts) + tuple(stored(s.transcript) for s in joined.sessions)
        return Change(wf, found.occurrences, found.characteristics, kept, fingerprint, prior.revision,
                      mentions=found.mentions, claims=joined.claims, absorbs=joined.absorbs)

    def going(self, listing: FolderListing, now_ns: int, joined: Joining) -> bool:
        """fresh, and its sessions' last recorded entry too: a copied tree has new mtimes and
        old entries, and no run of it is going on."""
        last = max((s.transcript.last_ts for s in joined.sessions), default="")
        return is_fresh(listing, now_ns, self.config.stale_after_s) and recorded_since(last, now_ns,
                                                                                    self.config.stale_after_s)

    def fingerprint(self, listing: FolderListing, now_ns: int) -> str:
        return fingerprint_of(listing, now_ns, self.config.stale_after_s)
