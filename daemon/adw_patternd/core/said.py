"""Saying a lasting problem once: what was last said of each thing, so that a problem that
stays is one line, not one a pass, and its end can be said too. The daemon's report writer,
the roots' guard and the log file's handler say their problems through it."""

from __future__ import annotations

from typing import Hashable


class Said:
    def __init__(self):
        self._said: dict[Hashable, object] = {}

    def new(self, key: Hashable, text: object = True) -> bool:
        """Whether ``text`` is not what was last said of ``key`` (then say it: it is now)."""
        if key in self._said and self._said[key] == text:
            return False
        self._said[key] = text
        return True

    def each_new(self, problems) -> list:
        """The problems of a pass not said before (then they are)."""
        return [p for p in dict.fromkeys(problems) if self.new(p)]

    def over(self, key: Hashable) -> bool:
        """The problem of ``key`` is over: whether one had been said (then say that it is over)."""
        return self._said.pop(key, None) is not None
