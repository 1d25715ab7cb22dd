"""Where each session of the configured Codex homes is (sources/codex.py: list_home), in
the order a sync reads them: a fork or sub-agent after the session it copied from, the rest
in the order of their file names (which start with the session's start time)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .codex import RolloutFile, list_home, rollout_head

SUBFOLDERS = ("sessions", "archived_sessions")  # what is watched of a home: never the home (credentials)
_SID_IN_NAME = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
                          r"\.jsonl(?:\.zst)?$")


def session_of(home: str, changed_path: str) -> str | None:
    """The session a rollout is (the id in its name), for a path under the home's folders."""
    name = os.path.basename(changed_path)
    m = _SID_IN_NAME.search(name) if name.startswith("rollout-") else None
    inside = any(changed_path.startswith(os.path.join(os.path.abspath(home), sub, "")) for sub in SUBFOLDERS)
    return m.group(1).lower() if m and inside else None


@dataclass
class CodexIndex:
    homes: dict[str, dict[str, RolloutFile]] = field(default_factory=dict)  # home name -> session id -> file

    @classmethod
    def build(cls, homes, problems: list[str]) -> "CodexIndex":
        """``homes``: the configured Codex homes (each with a name and a path)."""
        return cls({h.name: list_home(str(h.path), problems) for h in homes})

    def file(self, home: str, sid: str) -> RolloutFile | None:
        return self.homes.get(home, {}).get(sid)

    def find(self, sid: str) -> RolloutFile | None:
        """A session in any configured home."""
        return next((files[sid] for files in self.homes.values() if sid in files), None)

    def of_home(self, home: str) -> list[str]:
        """The home's session ids, parents before their forks and sub-agents."""
        files = self.homes.get(home, {})
        order: list[str] = []
        placed: set[str] = set()

        def place(sid: str, stack: tuple[str, ...] = ()) -> None:
            if sid in placed or sid in stack:
                return
            parent = files[sid].parent_id
            if parent in files:
                place(parent, stack + (sid,))
            placed.add(sid)
            order.append(sid)

        for sid in sorted(files, key=lambda s: (os.path.basename(files[s].path), s)):
            place(sid)
        return order

    def add(self, home: str, path: str, problems: list[str]) -> str | None:
        """A rollout seen live (a new file, one compressed or archived): its session id, now
        found at ``path`` unless a file that ranks before it holds the session."""
        head = rollout_head(path, problems)
        if head is None:
            return None
        sid, parent = head
        archived = "/archived_sessions/" in path
        f = RolloutFile(path, sid, parent, path.endswith(".zst"), archived)
        files = self.homes.setdefault(home, {})
        held = files.get(sid)
        if held is None or not os.path.exists(held.path) or f.rank < held.rank:
            files[sid] = f
        return sid
