"""Logging to the configured file (and stderr on a terminal), as text or JSON lines.

The file is reopened on SIGHUP (logrotate), and a log file that cannot be written never
stops processing: the handler says so once on stderr and carries on.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from ..config import LogConfig
from ..core.said import Said

LOGGER = "adw_patternd"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ReopenableFileHandler(logging.Handler):
    """A file handler that can reopen its file and that survives a file it cannot write."""

    def __init__(self, path: str):
        super().__init__()
        self.stream = None
        self.path = path
        self._said = Said()  # a file it could not open or write, said once on stderr
        self.reopen()

    def reopen(self) -> None:
        self.acquire()
        try:
            old = self.stream
            try:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
                self.stream = os.fdopen(fd, "a", encoding="utf-8")
                self._said.over(self.path)
            except OSError as e:
                self.stream = None
                self._complain(f"cannot open log file {self.path}: {e.strerror}; logging to stderr only")
            if old is not None:
                try:
                    old.close()
                except OSError:
                    pass
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except Exception as e:  # disk full, file gone read-only: keep processing
            self._complain(f"cannot write log file {self.path}: {e}; continuing without it")

    def _complain(self, text: str) -> None:
        if self._said.new(self.path):
            try:
                sys.stderr.write(f"adw-patternd: {text}\n")
            except Exception:
                pass

    def close(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                try:
                    self.stream.close()
                except OSError:
                    pass
                self.stream = None
        finally:
            self.release()
        logging.Handler.close(self)


def setup_logging(cfg: LogConfig | None, *, stderr: bool | None = None, level: str | None = None) -> logging.Logger:
    """(Re)configure the adw_patternd logger. stderr defaults to "when attached to a terminal"."""
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = JsonFormatter() if cfg and cfg.format == "json" else logging.Formatter(TEXT_FORMAT)
    logger.setLevel(level or (cfg.level if cfg else "INFO"))
    logger.propagate = False
    if cfg and cfg.file:
        fh = ReopenableFileHandler(str(cfg.file))
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    if stderr is None:
        stderr = sys.stderr.isatty() or not (cfg and cfg.file)
    if stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        logger.addHandler(sh)
    return logger


def reopen_logs() -> None:
    for h in logging.getLogger(LOGGER).handlers:
        if isinstance(h, ReopenableFileHandler):
            h.reopen()
