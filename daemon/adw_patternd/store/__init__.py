"""Persistence: one ledger of exact pattern statistics over SQLite or PostgreSQL."""

from .db import Db, open_db
from .ledger import Ledger, open_ledger
from .rows import Change, Prior

__all__ = ["Db", "open_db", "Change", "Ledger", "Prior", "open_ledger"]
