"""Persistence: one ledger of exact pattern statistics over SQLite or PostgreSQL.

`open_ledger(config)` is the way in: the CLI, the daemon, compat and verify --files open
the ledger through it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from .db import Db, open_db
from .ledger import Ledger
from .rows import Change, Prior

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["Db", "open_db", "Change", "Ledger", "Prior", "open_ledger"]


@contextmanager
def open_ledger(config: "Config", *, on_wait: Callable[[], None] | None = None,
                give_up: Callable[[], bool] | None = None) -> Iterator[Ledger]:
    """The one way the CLI, the daemon, compat and verify --files open a ledger: connected,
    migrated and derived under ``config``'s settings; closed when the block ends.
    ``on_wait`` and ``give_up`` are the daemon's hooks while the database is locked or
    unreachable (watchdog pings; a stop ends the wait)."""
    db = open_db(config.database)
    db.on_wait, db.give_up = on_wait, give_up
    try:
        yield Ledger.open(db, config.tool_cost_ratio, config.derivation_key(), config.host)
    finally:
        db.close()
