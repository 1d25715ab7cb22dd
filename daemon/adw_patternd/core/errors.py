"""The few exceptions the core raises; the CLI turns each into one line."""


class PatterndError(Exception):
    """Base class: an error a user can cause and fix."""


class ConfigError(PatterndError):
    """config.yaml is missing, unreadable or wrong. The message names the key and the file."""


class InputRejected(PatterndError):
    """A workflow file cannot be used. The message names the file and the reason.

    ``transient`` marks a file that is probably mid-write (empty or truncated JSON):
    the daemon retries it shortly instead of warning at once.
    """

    def __init__(self, path: str, reason: str, *, transient: bool = False):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.transient = transient


class StoreError(PatterndError):
    """The database cannot be opened or used (bad URL, missing driver, unreachable server)."""


class WriteRefused(StoreError):
    """The database cannot take a write now (a full disk, a quota, a read-only file system
    or server). The transaction was rolled back whole; the same write succeeds once the
    cause is gone, so the daemon waits and retries, and sync says what it could not store."""

    def __init__(self, database: str, cause: str):
        super().__init__(f"database {database} cannot take a write: {cause}")
        self.database = database
        self.cause = cause


class RevisionConflict(Exception):
    """Another writer changed the workflow between our read and our write; read again."""


class StopRequested(BaseException):
    """The daemon was asked to stop while waiting for the database. A BaseException, like
    KeyboardInterrupt, so that no per-workflow error handler mistakes it for a bad file."""
