"""A root that goes away deletes nothing (issue 17). Each way a root goes away (renamed
away, replaced by an empty folder, replaced by a file, made unreadable, a mount over it),
with drop_deleted_workflows true and false, for `sync` and for a running daemon, on SQLite
and PostgreSQL. Each ends with the root back and the database equal to a fresh sync of it.

The unreadable case needs a user that permissions stop: as root, adw-patternd runs as
nobody (setpriv) on a tree in a folder every user can reach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from daemon_proc import DaemonProcess
from helpers import (append, normalised_dump, open_to_everyone, query, readable_packages, result_line, wait_for,
                     write_config)
from test_sync import make_workflow

WAYS = ("renamed", "empty", "file", "unreadable", "bind_mount")
SAID = {"renamed": "does not exist yet", "empty": "is empty, while the database holds workflows of it",
        "file": "is not a folder", "unreadable": "cannot be read (Permission denied)",
        "bind_mount": "is empty, while the database holds workflows of it"}
AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")
DAEMON = {"debounce_ms": 100, "reconcile_interval_s": 1, "watch": {"sweep_interval_s": 0.5}}


@pytest.fixture
def base():
    """A folder every user can reach (pytest's own tmp folder is its owner's only)."""
    folder = Path(tempfile.mkdtemp(prefix="adw-roots-", dir="/tmp"))
    os.chmod(folder, 0o777)
    yield folder
    subprocess.run(["umount", str(folder / "agents")], capture_output=True)  # a bind mount left by a failure
    if (folder / "agents").exists():
        os.chmod(folder / "agents", 0o777)
    shutil.rmtree(folder, ignore_errors=True)


class Tree:
    """Three workflows in a root, the commands run on them, and the ways the root goes away."""

    def __init__(self, base: Path, database: str, way: str, **settings):
        self.base, self.way = base, way
        self.root, self.aside, self.empty = base / "agents", base / "aside", base / "empty"
        self.prefix: tuple[str, ...] = ()
        self.env = None
        if way == "unreadable" and os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("the unreadable case as root needs setpriv to run as nobody")
            self.prefix = AS_NOBODY
            modules = ["watchdog"]
            if database.startswith("postgresql://"):
                modules += ["psycopg", "psycopg_binary", "typing_extensions"]
            (base / "env").mkdir()
            os.chmod(base / "env", 0o755)  # not left to the umask: an in-process CLI call set it to 027
            self.env = readable_packages(base / "env", modules)
        if way == "bind_mount" and os.geteuid() != 0:
            pytest.skip("a bind mount needs root")
        (base / "db").mkdir()
        self.database = database if database.startswith("postgresql://") else str(base / "db" / "p.db")
        self.config = write_config(base, {"main": self.root}, self.database, **settings)
        for i in range(1, 4):
            make_workflow(self.root, f"r000000{i}", cost=0.25 * i)
        self.share()

    def share(self) -> None:
        """Files this process wrote (umask 027 after an in-process CLI call) readable by nobody."""
        if self.prefix:
            open_to_everyone(*(p for p in (self.root, self.aside, self.base / "db", self.config.parent / "fresh")
                               if p.exists() and p.is_dir()))
            os.chmod(self.config, 0o644)

    def cli(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, sys.executable, "-m", "adw_patternd", *args, "--config",
                               str(config or self.config)], capture_output=True, text=True, timeout=120,
                              env=self.env, cwd=self.base)

    def daemon(self) -> DaemonProcess:
        return DaemonProcess(self.config, env=self.env, prefix=self.prefix)

    def go_away(self) -> None:
        if self.way in ("renamed", "empty", "file"):
            self.root.rename(self.aside)
            if self.way == "empty":
                self.root.mkdir()
            elif self.way == "file":
                self.root.write_text("a file where the root was\n")
        elif self.way == "unreadable":
            self.root.chmod(0)
        else:
            self.empty.mkdir(exist_ok=True)
            mounted = subprocess.run(["mount", "--bind", str(self.empty), str(self.root)], capture_output=True,
                                     text=True)
            if mounted.returncode != 0:
                pytest.skip(f"this machine allows no bind mount: {mounted.stderr.strip()}")

    def change_meanwhile(self) -> None:
        """While the root is away (where its files can still be reached): a new workflow, and
        a new run in an old one. Caught up when the root is back."""
        if self.way not in ("renamed", "empty", "file"):
            return
        make_workflow(self.aside, "r0000004", cost=2.0)
        append(self.aside / "r0000001" / "tester" / "raw_output.jsonl", result_line(cost=1.0))

    def come_back(self) -> None:
        if self.way in ("renamed", "empty", "file"):
            if self.way == "empty":
                self.root.rmdir()
            elif self.way == "file":
                self.root.unlink()
            self.aside.rename(self.root)
        elif self.way == "unreadable":
            self.root.chmod(0o777 if self.prefix else 0o755)
        else:
            subprocess.run(["umount", str(self.root)], check=True)
        self.share()

    def fresh_dump(self) -> dict:
        """What a sync of the root as it is now into an empty SQLite database holds."""
        folder = self.base / "fresh"
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o777)
        config = write_config(folder, {"main": self.root}, str(folder / "fresh.db"))
        os.chmod(config, 0o644)
        r = self.cli("sync", config=config)
        assert r.returncode == 0, r.stdout + r.stderr
        dump = normalised_dump(str(folder / "fresh.db"))
        shutil.rmtree(folder)
        return dump

    def stored(self) -> set[str]:
        if not self.database.startswith("postgresql://") and not os.path.exists(self.database):
            return set()  # not created yet: polling must not create it (as root, for a daemon run as nobody)
        return {r[0] for r in query(self.database, "SELECT adw_id FROM workflow_history WHERE revision > 0")}


def reconciles(d: DaemonProcess) -> int:
    return d.log().count("reconcile (changed this week):")


@pytest.mark.parametrize("drop", [True, False], ids=["drop", "keep"])
@pytest.mark.parametrize("way", WAYS)
def test_sync_of_a_root_that_went_away_deletes_nothing(way, drop, database, base):
    tree = Tree(base, database, way, drop_deleted_workflows=drop)
    r = tree.cli("sync")
    assert r.returncode == 0 and "new 3" in r.stdout, r.stdout + r.stderr
    before = normalised_dump(tree.database)
    tree.go_away()
    r = tree.cli("sync")
    assert r.returncode == 0, r.stdout + r.stderr
    assert SAID[way] in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "root(s) not available, nothing of them read or deleted: main" in r.stdout
    assert normalised_dump(tree.database) == before
    tree.change_meanwhile()
    tree.come_back()
    r = tree.cli("sync")
    assert r.returncode == 0, r.stdout + r.stderr
    assert normalised_dump(tree.database) == tree.fresh_dump()
    assert tree.cli("verify", "--files").returncode == 0


@pytest.mark.parametrize("drop", [True, False], ids=["drop", "keep"])
@pytest.mark.parametrize("way", WAYS)
def test_running_daemon_keeps_a_root_that_went_away(way, drop, database, base):
    tree = Tree(base, database, way, drop_deleted_workflows=drop, **DAEMON)
    d = tree.daemon()
    try:
        # Not a look at the database before the daemon made it: run as nobody, it must own its files.
        wait_for(lambda: "catch-up:" in d.log(), what="catch-up")
        wait_for(lambda: tree.stored() == {"r0000001", "r0000002", "r0000003"}, what="the three workflows stored")
        before = normalised_dump(tree.database)
        tree.go_away()
        wait_for(lambda: SAID[way] in d.log(), what=f"the daemon saying the root {SAID[way]}")
        seen = reconciles(d)
        wait_for(lambda: reconciles(d) >= seen + 2, what="two reconciles while the root is away")
        assert normalised_dump(tree.database) == before
        tree.change_meanwhile()
        tree.come_back()
        fresh = tree.fresh_dump()
        wait_for(lambda: normalised_dump(tree.database) == fresh, what="the database equal to a fresh sync")
        assert d.log().count(SAID[way]) == 1, d.log()  # said once, not at every reconcile
        assert "Traceback" not in d.log() + d.output()
    finally:
        assert d.stop() == 0, d.output()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_the_reported_scenario_root_renamed_away_then_a_reconcile(store, base, request):
    """Three workflows synced, drop_deleted_workflows true, the daemon running, the root
    renamed away, a reconcile: all three are kept (they were all deleted before)."""
    database = request.getfixturevalue("pg_url") if store == "postgres" else str(base / "db" / "p.db")
    tree = Tree(base, database, "renamed", drop_deleted_workflows=True, **DAEMON)
    assert tree.cli("sync").returncode == 0
    d = tree.daemon()
    try:
        wait_for(lambda: "catch-up:" in d.log(), what="catch-up")
        tree.root.rename(tree.aside)
        wait_for(lambda: "does not exist yet" in d.log(), what="the root noticed gone")
        seen = reconciles(d)
        wait_for(lambda: reconciles(d) >= seen + 1, what="a reconcile")
        assert tree.stored() == {"r0000001", "r0000002", "r0000003"}
        assert "deleted 1" not in d.log() and "dropped from the database" not in d.log()
    finally:
        assert d.stop() == 0


def test_a_root_that_is_another_folder_deletes_nothing_until_adopted(database, base):
    """Another folder at the root's path (a mount came or went, device and inode changed)
    that lacks a stored workflow: nothing is deleted, until `sync --adopt-roots`. One that
    holds every stored workflow is adopted by itself."""
    tree = Tree(base, database, "renamed", drop_deleted_workflows=True)
    assert tree.cli("sync").returncode == 0
    other = base / "other"
    shutil.copytree(tree.root, other)
    shutil.rmtree(other / "r0000003")
    tree.root.rename(tree.aside)
    other.rename(tree.root)
    r = tree.cli("sync")
    assert r.returncode == 0, r.stderr
    assert "is not the folder it was" in r.stderr and "sync --adopt-roots" in r.stderr
    assert "1 missing but kept" in r.stdout
    assert tree.stored() == {"r0000001", "r0000002", "r0000003"}
    r = tree.cli("sync", "--adopt-roots")
    assert r.returncode == 0 and "deleted 1" in r.stdout, r.stdout + r.stderr
    assert tree.stored() == {"r0000001", "r0000002"}
    # Moved again, everything there: adopted without a word from the user.
    shutil.copytree(tree.root, other)
    shutil.rmtree(tree.root)
    other.rename(tree.root)
    r = tree.cli("sync", "-v")
    assert r.returncode == 0 and "holds every stored workflow: adopted" in r.stderr, r.stderr
    assert "is not the folder it was" not in tree.cli("sync").stderr
    assert normalised_dump(tree.database) == tree.fresh_dump()


def test_a_folder_deleted_under_a_healthy_root_is_still_a_deletion(database, base):
    tree = Tree(base, database, "renamed", drop_deleted_workflows=True)
    assert tree.cli("sync").returncode == 0
    shutil.rmtree(tree.root / "r0000002")
    r = tree.cli("sync")
    assert r.returncode == 0 and "deleted 1" in r.stdout, r.stdout
    assert tree.stored() == {"r0000001", "r0000003"}
    assert tree.cli("verify", "--files").returncode == 0


def test_a_guard_sees_a_root_adopted_by_another_process_at_its_next_full_pass(base):
    """A daemon's guard caches each root's recorded identity; `sync --adopt-roots` run beside
    it records a new one, which the daemon's next full pass (refresh) must see."""
    from adw_patternd.config import load_config
    from adw_patternd.roots import RootGuard
    from adw_patternd.store import open_ledger

    tree = Tree(base, str(base / "db" / "p.db"), "renamed")
    assert tree.cli("sync").returncode == 0
    with open_ledger(load_config(tree.config)) as ledger:
        daemons = RootGuard(ledger.db)
        root = load_config(tree.config).root("main")
        assert daemons.health(root).deletions_allowed
        other = base / "other"
        shutil.copytree(tree.root, other)
        shutil.rmtree(other / "r0000003")
        tree.root.rename(tree.aside)
        other.rename(tree.root)
        assert daemons.health(root).moved_from is not None
        assert tree.cli("sync", "--adopt-roots").returncode == 0
        assert daemons.health(root).moved_from is not None  # cached until its next full pass
        daemons.refresh()
        assert daemons.health(root).deletions_allowed
