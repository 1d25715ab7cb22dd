import os
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from daemon_proc import DaemonProcess  # noqa: E402
from helpers import write_config  # noqa: E402

PG_ENV = "ADW_PATTERND_TEST_POSTGRES"


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves threads running (an observer not stopped, a worker not joined)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not extra, f"test leaked threads: {[t.name for t in extra]}"


def _postgres_url():
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}=postgresql://... (a real server); not set")
    return url


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import psycopg

    base = _postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    """Each store: a real SQLite file, and a real PostgreSQL schema when the server is configured."""
    if request.param == "sqlite":
        return str(tmp_path / "patterns.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "agents"
    r.mkdir()
    return r


@pytest.fixture
def config_path(tmp_path, root, database) -> Path:
    return write_config(tmp_path, {"main": root}, database)


@pytest.fixture
def daemon():
    """Start `adw-patternd run` on a config (a real process); each is killed if still alive."""
    procs = []
    yield lambda cfg: procs.append(DaemonProcess(cfg)) or procs[-1]
    for d in procs:
        if d.alive():
            d.kill()
