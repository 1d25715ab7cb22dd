"""Reading a sync's batches in forked worker processes while the parent writes: each worker
opens its own database connection, reads a batch (Engine.prepare) and hands the prepared
outcomes back in order. The parent (sync.py) commits them.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import threading
from typing import Iterator

from .config import Config
from .engine import Engine
from .sources.shapes import indexes_of
from .store.db import open_db
from .store.ledger import Ledger

log = logging.getLogger("adw_patternd")

WORKER_TIMEOUT_S = 300  # far beyond the time to read one batch of 256 workflows


def read_jobs(engine: Engine, jobs: list, workers: int, snapshots: bool) -> Iterator:
    """Each job's prepared outcomes, in order: here, or in ``workers`` forked processes
    (only where no other thread runs: forking a threaded process is unsafe)."""
    if workers <= 1 or len(jobs) <= 2 or threading.active_count() != 1:
        yield from (engine.prepare(job, snapshots=snapshots) for job in jobs)
        return
    pool = multiprocessing.get_context("fork").Pool(workers, _worker_init,
                                                    (engine.config, engine.carried, indexes_of(engine.sources)))
    try:
        yield from _read_in_workers(engine, pool, jobs, snapshots)
    finally:
        pool.terminate()
        pool.join()


def _read_in_workers(engine: Engine, pool, jobs: list, snapshots: bool) -> Iterator:
    """A worker that dies (the OOM killer) would leave its batch unanswered for ever:
    after WORKER_TIMEOUT_S the rest is read here."""
    results = pool.imap(_worker_prepare, jobs)
    for i in range(len(jobs)):
        try:
            yield results.next(timeout=WORKER_TIMEOUT_S)
        except multiprocessing.TimeoutError:
            log.error("a reading worker gave no answer in %d s; reading the remaining %d batches in one process",
                      WORKER_TIMEOUT_S, len(jobs) - i)
            pool.terminate()
            for job in jobs[i:]:
                yield engine.prepare(job, snapshots=snapshots)
            return


# -- in a worker process ----------------------------------------------------------------
_worker: Engine | None = None


def _worker_init(config: Config, carried: dict, indexes: dict) -> None:
    """In a forked worker: its own database connection (for read offsets), never the
    parent's. The parent opened the ledger (migrations, derivation): this one only reads."""
    global _worker
    # Reading makes many short-lived objects (parsed JSON lines) and no cycles to speak of;
    # collecting the young generation every 700 allocations cost about a tenth of the time.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    _worker = Engine(config, Ledger(open_db(config.database), config.tool_cost_ratio, config.host), carried, indexes)


def _worker_prepare(job):
    return _worker.prepare(job)
