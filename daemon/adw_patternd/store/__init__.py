"""Persistence: one ledger of exact pattern statistics over SQLite or PostgreSQL."""

from .db import Db, open_db
from .ledger import Change, Ledger, Prior

__all__ = ["Db", "open_db", "Change", "Ledger", "Prior"]
