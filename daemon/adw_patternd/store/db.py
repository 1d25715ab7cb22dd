"""A thin DB-API wrapper that hides the two differences that matter between SQLite and
PostgreSQL here: parameter style and how a write transaction starts. Retries on a busy
database or a dropped connection live here too, so that the ledger above is written once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import time
from typing import Callable, TypeVar
from urllib.parse import quote

from ..core.errors import StopRequested, StoreError, WriteRefused

log = logging.getLogger("adw_patternd.store")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 200  # short, so that our own retry loop can say that it waits
REFUSED_REPEAT_S = 600.0  # a database still refusing writes for the same cause is said again this often
_INTEGER_TYPES = ("bigint", "integer", "smallint")


def _as_int(v) -> int:
    return v if type(v) is int else round(v)


class Db:
    """One connection and its dialect ("sqlite" or "postgres")."""

    def __init__(self, conn, dialect: str, reconnect: Callable[[], object] | None = None, label: str = ""):
        self.conn = conn
        self.dialect = dialect
        self.reconnect = reconnect
        self.label = label
        self.for_update = " FOR UPDATE" if dialect == "postgres" else ""
        self.on_wait: Callable[[], None] | None = None  # called while waiting (systemd watchdog pings)
        self.give_up: Callable[[], bool] | None = None  # true when a stop was requested: stop waiting
        self.waited_s = 0.0  # time spent waiting for a locked or unreachable database, in all
        self.refused: str | None = None  # why a write was last refused (disk full...)
        self._types: dict[str, dict[str, str]] = {}  # PostgreSQL: table -> column -> type (_arrays)
        self._refused_said_at = float("-inf")

    # -- statements ---------------------------------------------------------
    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.dialect == "postgres" else text

    def execute(self, text: str, params=()):
        return self.conn.execute(self.sql(text), params)

    def executemany(self, text: str, rows):
        if self.dialect == "postgres":
            with self.conn.cursor() as cur:
                cur.executemany(self.sql(text), rows)
        else:
            self.conn.executemany(text, rows)

    def insert_many(self, table: str, columns: tuple[str, ...], rows: list[tuple], tail: str = "") -> None:
        """INSERT each row into ``table`` (``tail``: an ON CONFLICT clause); no two rows may
        share a key. PostgreSQL: one statement with an array a column (unnest), where
        executemany sends a statement a row and many-row VALUES lists cost the driver more to
        build than the server to run; SQLite: executemany (it has no round trips to save)."""
        if not rows:
            return
        names = ", ".join(columns)
        if self.dialect != "postgres":
            self.conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)}) {tail}",
                                  rows)
            return
        arrays, casts = self._arrays(table, columns, rows)
        self.conn.execute(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({casts}) {tail}", arrays)

    def update_many(self, table: str, key: str, columns: tuple[str, ...], rows: list[tuple],
                    keep_if_null: tuple[str, ...] = ()) -> None:
        """UPDATE ``table`` SET ``columns`` for each row (key, *values); a column of
        ``keep_if_null`` keeps its value where the row's is NULL. One statement on PostgreSQL
        (UPDATE ... FROM unnest), executemany on SQLite; no two rows may share a key."""
        if not rows:
            return
        if self.dialect != "postgres":
            sets = ", ".join(f"{c} = COALESCE(?, {c})" if c in keep_if_null else f"{c} = ?" for c in columns)
            self.conn.executemany(f"UPDATE {table} SET {sets} WHERE {key} = ?", [(*r[1:], r[0]) for r in rows])
            return
        arrays, casts = self._arrays(table, (key, *columns), rows)
        sets = ", ".join(f"{c} = COALESCE(v.{c}, t.{c})" if c in keep_if_null else f"{c} = v.{c}" for c in columns)
        self.conn.execute(f"UPDATE {table} AS t SET {sets} FROM unnest({casts}) AS v({key}, {', '.join(columns)}) "
                          f"WHERE t.{key} = v.{key}", arrays)

    def _arrays(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> tuple[list[list], str]:
        """PostgreSQL: the rows as one array a column, each of one Python type as the column's
        SQL type asks (a float for an integer column rounds half to even, as the server's cast
        does), and the placeholders that cast them. %b: binary arrays (the text form escapes
        each string: slower by far)."""
        types = self._column_types(table)
        arrays = []
        for name, values in zip(columns, zip(*rows)):
            kind = types[name]
            as_type = float if kind in ("double precision", "real") else _as_int if kind in _INTEGER_TYPES else None
            arrays.append([v if v is None or as_type is None else as_type(v) for v in values])
        return arrays, ", ".join(f"%b::{types[name]}[]" for name in columns)

    def _column_types(self, table: str) -> dict[str, str]:
        """PostgreSQL: each column's type, as SQL spells it (bigint, text...)."""
        known = self._types.get(table)
        if known is None:
            known = self._types[table] = dict(self.conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())
        return known

    def one(self, text: str, params=()):
        return self.execute(text, params).fetchone()

    def one_each(self, statements: list[tuple[str, tuple]]) -> list:
        """The first row (or None) of each (text, params), run in order. In a PostgreSQL
        transaction (pipeline mode) all are sent before the first answer is awaited: one
        wait for all, not one each."""
        if self.dialect != "postgres":
            return [self.one(text, params) for text, params in statements]
        cursors = [self.execute(text, params) for text, params in statements]
        return [cur.fetchone() for cur in cursors]

    def all(self, text: str, params=()) -> list:
        return self.execute(text, params).fetchall()

    # -- transactions -------------------------------------------------------
    def begin(self):
        if self.dialect == "sqlite":
            if self.conn.in_transaction:
                self.conn.commit()  # a caller's pending work: the reference API commits it too
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn.execute("BEGIN")

    def commit(self):
        if self.dialect == "sqlite":
            self.conn.commit()
        else:
            self.conn.execute("COMMIT")

    def rollback(self):
        try:
            if self.dialect == "sqlite":
                self.conn.rollback()
            else:
                self.conn.execute("ROLLBACK")
        except Exception:  # the connection may be gone; reconnect handles that
            pass

    def transaction(self, work: Callable[[], T], *, what: str = "write") -> T:
        """Run ``work`` in one write transaction, retrying while the database is locked,
        a deadlock is detected or the connection dropped. Other errors propagate."""

        def whole():
            try:
                with self._pipelined():  # its end waits for every answer: an error surfaces by then
                    self.begin()
                    result = work()
                    self.commit()
            except BaseException:
                self.rollback()  # out of the pipeline: an aborted one would ignore it
                raise
            return result

        try:
            result = self.retrying(whole, what=what)
        except Exception as e:
            cause = _write_refusal(e, self.dialect)
            if cause is None:
                raise
            now = time.monotonic()
            # One line an outage, not one a workflow. A small write may still fit while big
            # ones fail, so a success does not end the outage: the same cause is said again
            # only after REFUSED_REPEAT_S.
            if cause != self.refused or now - self._refused_said_at >= REFUSED_REPEAT_S:
                log.error("database %s cannot take a write: %s; the transaction (%s) was rolled back whole, "
                          "and will be redone when the database takes writes again", self.label, cause, what)
                self._refused_said_at = now
            self.refused = cause
            raise WriteRefused(self.label, cause) from None
        return result

    def _pipelined(self):
        """PostgreSQL: send a transaction's statements without waiting for each one's answer
        (psycopg's pipeline mode); only a statement whose rows are read waits. A sync then
        costs the server's time, not one network round trip per statement."""
        if self.dialect == "postgres":
            return self.conn.pipeline()
        return contextlib.nullcontext()

    def snapshot(self, work: Callable[[], T]) -> T:
        """Run the reads of ``work`` on one consistent snapshot, taking no write lock (a
        daemon may keep writing meanwhile)."""

        def whole():
            if self.dialect == "sqlite":
                if self.conn.in_transaction:
                    self.conn.commit()
                self.conn.execute("BEGIN")  # deferred: in WAL mode, a snapshot from the first read on
            else:
                self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                return work()
            finally:
                self.rollback()

        return self.retrying(whole, what="read")

    def retrying(self, work: Callable[[], T], *, what: str = "read") -> T:
        """Run ``work``, retrying with backoff on a busy database or a dropped connection."""
        delay = 0.05
        waited_since = None
        last_note = 0.0
        while True:
            try:
                result = work()
                if waited_since is not None:
                    self.waited_s += time.monotonic() - waited_since
                    log.info("database available again after %.1f s; %s done", time.monotonic() - waited_since, what)
                return result
            except Exception as e:
                kind = None if _write_refusal(e, self.dialect) else self._retryable(e)
                if kind is None:
                    raise
                now = time.monotonic()
                if waited_since is None:
                    waited_since = now
                if now - last_note > 30:
                    last_note = now
                    log.warning("database %s (%s); waiting and retrying (%s)", kind, _first_line(e), what)
                if self.on_wait:
                    self.on_wait()
                if self.give_up and self.give_up():
                    raise StopRequested() from e
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                if kind == "connection lost" and self.reconnect:
                    try:
                        self.conn = self.reconnect()
                    except Exception as again:  # still down: keep waiting
                        log.debug("reconnect failed: %s", again)

    def _retryable(self, e: Exception) -> str | None:
        if isinstance(e, sqlite3.OperationalError):
            msg = str(e).lower()
            if "locked" in msg or "busy" in msg:
                return "is locked by another process"
            return None
        if self.dialect == "postgres":
            import psycopg

            if isinstance(e, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure,
                              psycopg.errors.LockNotAvailable)):
                return "reported a conflict with a concurrent writer"
            if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError)) or getattr(self.conn, "closed", False):
                return "connection lost"
        return None

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def _write_refusal(e: Exception, dialect: str) -> str | None:
    """Why the database refused a write that will succeed later unchanged (no space, a
    quota, read-only), in words for a log line; None for any other error."""
    if isinstance(e, sqlite3.Error):
        name = getattr(e, "sqlite_errorname", "") or ""
        if name == "SQLITE_FULL":
            return "the disk (or the database's max_page_count) is full (SQLITE_FULL): free some space"
        if name.startswith("SQLITE_READONLY"):
            return f"the file or its file system is read-only ({name})"
        if name.startswith("SQLITE_IOERR"):
            return f"disk I/O error ({name}): a full disk, a quota, or a failing disk"
        return None
    if dialect == "postgres":
        import psycopg

        if isinstance(e, psycopg.errors.InsufficientResources):  # 53xxx, disk_full among them
            return f"the server is out of resources ({e.sqlstate}: {_first_line(e)})"
        if isinstance(e, psycopg.errors.ReadOnlySqlTransaction):
            return f"the server only allows read-only transactions ({e.sqlstate}: {_first_line(e)})"
    return None


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]


def _sqlite_connect(path: str):
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        if not os.path.exists(path):
            # Created private: the database holds request texts and costs.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o640))
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"cannot open SQLite database {path}: {e}") from None
    conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    for _attempt in range(200):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError:
            time.sleep(0.05)  # another process holds it locked; WAL can wait
    # WAL + NORMAL is durable against a killed process (our crash model), not a power cut.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def _postgres_connect(url: str):
    try:
        import psycopg
    except ImportError:
        raise StoreError("database is a postgresql:// URL but psycopg is not installed: "
                         "pip install 'adw-patternd[postgres]'") from None
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        reason = " ".join(str(e).split())  # libpq's message spans lines; ours is one
        raise StoreError(f"cannot connect to PostgreSQL at {_redact(url)}: {reason} "
                         "(check the database URL in config.yaml and that the server is up)") from None


def _redact(url: str) -> str:
    """A URL fit for logs and shared reports: no password, in the user part or the query."""
    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url)
    if "@" in url and ":" in url.split("@")[0].split("//")[-1]:
        scheme, rest = url.split("//", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}//{creds.split(':')[0]}:***@{host}"
    return url


def _sqlite_read_only(path: str):
    """A connection that cannot write (the live page's): SQLite opens the file with
    mode=ro, so no statement of ours, or of a bug, can change it."""
    if not os.path.exists(path):
        raise StoreError(f"no SQLite database at {path}: run `adw-patternd sync` (or start the daemon) first")
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as e:
        raise StoreError(f"cannot open SQLite database {path} to read: {e}") from None
    return conn


def open_db(database: str, *, read_only: bool = False) -> Db:
    """A connection to ``database`` (a SQLite path or a postgresql:// URL); ``read_only``:
    one that refuses every write (SQLite mode=ro; PostgreSQL read-only transactions)."""
    if database.startswith(("postgresql://", "postgres://")):
        def reconnect():
            conn = _postgres_connect(database)
            if read_only:
                conn.execute("SET default_transaction_read_only = on")
            return conn

        return Db(reconnect(), "postgres", reconnect, _redact(database))
    if read_only:
        return Db(_sqlite_read_only(database), "sqlite", None, database)
    return Db(_sqlite_connect(database), "sqlite", None, database)


def wrap_sqlite(conn: sqlite3.Connection) -> Db:
    """A caller's own sqlite3 connection (the reference API)."""
    return Db(conn, "sqlite", None, "sqlite connection")
