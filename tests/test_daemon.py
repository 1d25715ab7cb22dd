"""The daemon, driven through a real watchdog observer on real folders. Every test polls
the database with a deadline; nothing sleeps to make an assertion true."""

import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from adw_patternd.synth.trees import make_tree, random_spec, write_json_atomic, write_workflow
from daemon_proc import DaemonProcess
from helpers import (age, append, diff_dumps, exclusive_lock, normalised_dump, pattern_counts, query, result_line, wait_for,
                     write_config, write_state)
from test_sync import fresh_sync_dump, make_workflow

FAST = {"debounce_ms": 100, "reconcile_interval_s": 0, "watch": {"sweep_interval_s": 0.5}}


@pytest.fixture
def daemon_config(tmp_path, root, database):
    return write_config(tmp_path, {"main": root}, database, **FAST)


@pytest.fixture
def start_daemon():
    procs = []

    def start(config, **kw):
        d = DaemonProcess(config, **kw)
        procs.append(d)
        return d

    yield start
    for d in procs:
        if d.alive():
            d.kill()


def stored_cost(database, adw_id):
    rows = query(database, "SELECT cost_nanos FROM workflow_history WHERE adw_id = ? AND revision > 0", (adw_id,))
    return rows[0][0] if rows else None


def ready(d: DaemonProcess) -> bool:
    return "catch-up:" in d.log()


def test_new_workflow_then_edit(daemon_config, root, database, start_daemon):
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    folder = make_workflow(root, "a0000001", cost=1.0)
    wait_for(lambda: stored_cost(database, "a0000001") == 1_000_000_000, what="new workflow stored")
    append(folder / "tester" / "raw_output.jsonl", result_line(cost=2.0))
    wait_for(lambda: stored_cost(database, "a0000001") == 3_000_000_000, what="edit applied")
    write_state(folder, nl_input="Typecheck the frontend with tsc", workflow_template="adw_plan_iso",
                start_time="2026-10-01T10:00:00Z")
    wait_for(lambda: pattern_counts(database) == {"test:pytest:backend": 0, "build:typecheck:frontend": 1},
             what="patterns follow the edited request")
    assert d.stop() == 0
    log = d.log()
    assert "main/a0000001 new: 1 pattern(s), 1 new (test:pytest:backend)" in log
    assert "ms" in log.split("main/a0000001 new")[1].splitlines()[0]


def test_burst_of_500_writes_ends_as_final_state(daemon_config, root, database, start_daemon):
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    folder = make_workflow(root, "b0000001", cost=0.0)
    state = folder / "adw_state.json"
    for i in range(500):
        with open(state, "w") as f:  # in place, as ADWs write it
            json.dump({"adw_id": "b0000001", "nl_input": "Run backend tests with pytest", "issue_number": i,
                       "start_time": "2026-10-01T10:00:00Z"}, f)
    wait_for(lambda: query(database, "SELECT issue_number FROM workflow_history WHERE adw_id = 'b0000001'")
             == [("499",)], what="final state stored")
    assert d.stop() == 0
    times = d.log().count("main/b0000001 ")
    assert 1 <= times <= 30, f"processed {times} times for 500 writes"


def test_300_workflows_created_at_once(daemon_config, root, database, start_daemon, tmp_path):
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    make_tree(str(root), 300, seed=11, filler=(200, 2000))
    wait_for(lambda: query(database, "SELECT COUNT(*) FROM workflow_history WHERE revision > 0")[0][0] == 300,
             timeout=60, what="300 workflows stored")
    want = fresh_sync_dump(tmp_path, {"main": root})
    wait_for(lambda: not diff_dumps(normalised_dump(database), want), timeout=30, what="equal to a fresh sync")
    assert d.stop() == 0


def test_folder_created_with_files_inside_or_moved_in(daemon_config, root, database, start_daemon, tmp_path):
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    elsewhere = tmp_path / "elsewhere"
    make_workflow(elsewhere, "c0000001", cost=1.0)
    os.rename(elsewhere / "c0000001", root / "c0000001")  # mv: watchdog adds no watch for it
    wait_for(lambda: stored_cost(database, "c0000001") == 1_000_000_000, what="moved-in folder stored")
    # ... and it is watched from then on
    append(root / "c0000001" / "tester" / "raw_output.jsonl", result_line(cost=1.0))
    wait_for(lambda: stored_cost(database, "c0000001") == 2_000_000_000, what="moved-in folder watched")
    make_workflow(root, "c0000002", cost=4.0)  # created with its files at once
    wait_for(lambda: stored_cost(database, "c0000002") == 4_000_000_000, what="created folder stored")
    assert d.stop() == 0


def test_truncated_then_completed_and_renamed_writes(daemon_config, root, database, start_daemon):
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    folder = make_workflow(root, "d0000001", cost=1.0)
    wait_for(lambda: stored_cost(database, "d0000001") == 1_000_000_000, what="stored")
    state = folder / "adw_state.json"
    full = json.dumps({"adw_id": "d0000001", "nl_input": "Typecheck the frontend with tsc",
                       "start_time": "2026-10-01T10:00:00Z"})
    state.write_text(full[:25])  # a writer caught mid-write
    time.sleep(0.4)  # the writer's pause; the assertions below poll
    state.write_text(full)
    wait_for(lambda: set(k for k, v in pattern_counts(database).items() if v) == {"build:typecheck:frontend"},
             what="completed write stored")
    write_json_atomic(str(state), {"adw_id": "d0000001", "nl_input": "Show git status",
                                   "start_time": "2026-10-01T10:00:00Z"})
    wait_for(lambda: set(k for k, v in pattern_counts(database).items() if v) == {"git:status:summary"},
             what="renamed write stored")
    assert d.stop() == 0
    assert "truncated JSON" not in d.log()  # a transient half-write is retried, not reported


def test_deleted_folder_keeps_history(daemon_config, root, database, start_daemon):
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    make_workflow(root, "e0000001")
    make_workflow(root, "e0000002")  # the root stays non-empty: an empty one is a mount not there yet
    wait_for(lambda: stored_cost(database, "e0000001") is not None and stored_cost(database, "e0000002") is not None,
             what="stored")
    shutil.rmtree(root / "e0000001")
    wait_for(lambda: "main/e0000001: folder deleted; its history is kept" in d.log(), what="deletion noticed")
    assert pattern_counts(database) == {"test:pytest:backend": 2}
    assert d.stop() == 0


def test_root_appearing_after_start(tmp_path, database, start_daemon):
    late = tmp_path / "late"
    cfg = write_config(tmp_path, {"late": late}, database, **FAST)
    d = start_daemon(cfg)
    wait_for(lambda: ready(d), what="catch-up")
    assert d.log().count("does not exist yet") == 1
    make_workflow(late, "f0000001")
    wait_for(lambda: stored_cost(database, "f0000001") is not None, what="late root picked up")
    make_workflow(late, "f0000002")
    wait_for(lambda: stored_cost(database, "f0000002") is not None, what="late root watched")
    assert d.stop() == 0


def test_sigterm_mid_burst_then_restart(daemon_config, root, database, start_daemon, tmp_path):
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    rng = __import__("random").Random(5)
    stop_writing = threading.Event()

    def writer():
        i = 0
        while not stop_writing.is_set() and i < 400:
            write_workflow(str(root), random_spec(rng, f"g{i:07d}", filler=(200, 1500)), rng)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    wait_for(lambda: query(database, "SELECT COUNT(*) FROM workflow_history WHERE revision > 0")[0][0] >= 20,
             what="some workflows stored")
    started = time.monotonic()
    assert d.stop(signal.SIGTERM, timeout=5) == 0
    assert time.monotonic() - started < 5
    t.join()  # the writer finishes its burst while the daemon is down
    for i in range(5):  # and edits some stored workflows
        append(root / f"g{i:07d}" / "extra" / "raw_output.jsonl", result_line(cost=10.0))
    d2 = start_daemon(daemon_config)
    want = fresh_sync_dump(tmp_path, {"main": root})
    wait_for(lambda: not diff_dumps(normalised_dump(database), want), timeout=60, what="caught up after restart")
    assert d2.stop() == 0
    from adw_patternd.cli import main
    assert main(["verify", "--config", str(daemon_config)]) == 0


def test_sighup_adds_a_root(tmp_path, root, database, start_daemon):
    cfg = write_config(tmp_path, {"main": root}, database, **FAST)
    d = start_daemon(cfg)
    wait_for(lambda: ready(d), what="catch-up")
    other = tmp_path / "other"
    make_workflow(other, "h0000001")
    write_config(tmp_path, {"main": root, "other": other}, database, **FAST)
    d.send(signal.SIGHUP)
    wait_for(lambda: stored_cost(database, "h0000001") is not None, what="added root caught up")
    make_workflow(other, "h0000002")
    wait_for(lambda: stored_cost(database, "h0000002") is not None, what="added root watched")
    # A bad config is refused; the running one is kept.
    (tmp_path / "config.yaml").write_text("roots: [{path: x, name: a}]\ndatabase: y\nbogus: 1\n")
    d.send(signal.SIGHUP)
    wait_for(lambda: "reload refused" in d.log(), what="bad reload refused")
    make_workflow(root, "h0000003")
    wait_for(lambda: stored_cost(database, "h0000003") is not None, what="still running on the old config")
    assert d.stop() == 0
    assert "bogus: unknown key" in d.log()


def test_locked_database_loses_nothing(tmp_path, root, start_daemon):
    database = str(tmp_path / "locked.db")
    cfg = write_config(tmp_path, {"main": root}, database, **FAST)
    d = start_daemon(cfg)
    wait_for(lambda: ready(d), what="catch-up")
    with exclusive_lock(database):
        for i in range(20):
            make_workflow(root, f"i{i:07d}", cost=1.0)
        wait_for(lambda: "is locked by another process" in d.log(), what="the daemon says it waits")
    wait_for(lambda: query(database, "SELECT COUNT(*) FROM workflow_history WHERE revision > 0")[0][0] == 20,
             what="all stored after the lock")
    assert pattern_counts(database) == {"test:pytest:backend": 20}
    assert d.stop() == 0
    assert "database available again" in d.log()


def test_systemd_notify_protocol(daemon_config, root, start_daemon, tmp_path):
    make_workflow(root, "j0000001")
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(20)
    try:
        d = start_daemon(daemon_config, env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "1000000"})
        messages = []
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert "catch-up:" in d.log()  # READY comes after the catch-up
        while not any(m.startswith("WATCHDOG=1") for m in messages):
            messages.append(sock.recv(4096).decode())
        d.send(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert d.stop() == 0
        assert any("STATUS=" in m and "workflows tracked" in m for m in messages)
    finally:
        sock.close()


def test_files_are_not_world_readable_and_no_port_is_open(daemon_config, root, database, start_daemon, tmp_path):
    if not database.endswith(".db"):
        pytest.skip("file modes concern the SQLite store")
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    make_workflow(root, "k0000001")
    wait_for(lambda: stored_cost(database, "k0000001") is not None, what="stored")
    for path in [Path(database), tmp_path / "daemon.log", *Path(database).parent.glob("*.db-*")]:
        assert path.stat().st_mode & 0o007 == 0, f"{path} is world-accessible"
    inodes = {os.readlink(f"/proc/{d.proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{d.proc.pid}/fd")}
    sockets = {i[len("socket:["):-1] for i in inodes if i.startswith("socket:[")}
    listening = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/net/{table}") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] in ("0A", "07"):  # LISTEN, or an unconnected UDP socket
                    listening.add(cols[9])
    assert not sockets & listening
    assert d.stop() == 0


@pytest.mark.parametrize("log_file", ["/dev/full", "{tmp}/not-a-folder/daemon.log"])
def test_a_log_file_that_cannot_be_written_does_not_stop_processing(tmp_path, root, start_daemon, log_file):
    (tmp_path / "not-a-folder").write_text("a file where the log folder should be")
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database, **FAST)
    text = cfg.read_text().replace(str(tmp_path / "daemon.log"), log_file.format(tmp=tmp_path))
    cfg.write_text(text)
    d = start_daemon(cfg)
    make_workflow(root, "l0000001", cost=2.0)
    wait_for(lambda: stored_cost(database, "l0000001") == 2_000_000_000, what="stored despite the log")
    make_workflow(root, "l0000002", cost=3.0)
    wait_for(lambda: stored_cost(database, "l0000002") == 3_000_000_000, what="still processing")
    assert d.stop() == 0
    out = d.output()
    assert out.count("adw-patternd: cannot") == 1, out  # said once on stderr, not per line


def test_dormant_workflow_without_a_live_watch_is_found_by_the_sweep(daemon_config, root, database, start_daemon):
    """A workflow unchanged for longer than active_window_s gets no inotify watch; an
    in-place rewrite of its state file (which the root's watch cannot see) is found by the
    stat sweep."""
    folder = make_workflow(root, "m0000001", cost=1.0)
    for p in [folder / "adw_state.json", folder / "tester" / "raw_output.jsonl", folder / "tester", folder]:
        age(p, 3600)
    d = start_daemon(daemon_config)
    wait_for(lambda: stored_cost(database, "m0000001") == 1_000_000_000, what="catch-up")
    write_state(folder, nl_input="Typecheck the frontend with tsc", workflow_template="adw_plan_iso",
                start_time="2026-10-01T10:00:00Z")
    wait_for(lambda: pattern_counts(database).get("build:typecheck:frontend") == 1, what="the sweep to see it")
    assert d.stop() == 0
    assert "1 live watches" in d.log()  # the root only: the workflow was dormant


def test_workflows_dormant_for_months_are_swept_less_often_and_still_found(tmp_path, root, database, start_daemon):
    """Sweep tiers by age: a workflow unchanged for months is stat-checked every
    dormant_sweep_interval_s, one changed today every sweep_interval_s. Both are found."""
    old, recent = make_workflow(root, "m0000010", cost=1.0), make_workflow(root, "m0000011", cost=1.0)
    for folder, seconds in ((old, 90 * 86_400), (recent, 3 * 3600)):
        for p in [*folder.rglob("*"), folder]:
            age(p, seconds)
    cfg = write_config(tmp_path, {"main": root}, database, debounce_ms=100, reconcile_interval_s=0,
                       reconcile_all_interval_s=0, watch={"sweep_interval_s": 0.5, "dormant_sweep_interval_s": 2})
    d = start_daemon(cfg)
    wait_for(lambda: stored_cost(database, "m0000010") and stored_cost(database, "m0000011"), what="catch-up")
    for folder in (old, recent):
        write_state(folder, nl_input="Typecheck the frontend with tsc", workflow_template="adw_plan_iso",
                    start_time="2026-10-01T10:00:00Z")
    wait_for(lambda: pattern_counts(database).get("build:typecheck:frontend") == 2, timeout=30,
             what="the sweep to find both")
    assert d.stop() == 0


def test_sweep_tiers_follow_the_age_of_the_files(tmp_path, root):
    from adw_patternd.config import load_config
    from adw_patternd.live.daemon import Daemon
    from adw_patternd.store import open_ledger

    for adw_id, seconds in (("t0000001", 3600), ("t0000002", 3 * 86_400), ("t0000003", 60 * 86_400)):
        folder = make_workflow(root, adw_id)
        for p in [*folder.rglob("*"), folder]:
            age(p, seconds)
    config = load_config(write_config(tmp_path, {"main": root}, str(tmp_path / "t.db")))
    with open_ledger(config) as ledger:
        d = Daemon(config, ledger)
        d.watches.start()
        try:
            d.syncer.run(on_outcome=d.outcomes.seen)
            d._classify()
            assert {k[1]: t.tier for k, t in d.tracked.items()} == {"t0000001": 0, "t0000002": 1, "t0000003": 2}
            assert [d._tier_interval(i) for i in range(3)] == [9.0, 34.5, 60.0]
            assert d._recent_keys() == {"main": {"t0000001", "t0000002"}}
        finally:
            d.watches.stop()


def test_sigterm_while_the_database_is_locked_stops_cleanly(tmp_path, root, start_daemon):
    database = str(tmp_path / "locked.db")
    cfg = write_config(tmp_path, {"main": root}, database, **FAST)
    d = start_daemon(cfg)
    wait_for(lambda: ready(d), what="catch-up")
    with exclusive_lock(database):
        make_workflow(root, "n0000001")
        wait_for(lambda: "is locked by another process" in d.log(), what="the daemon waiting")
        assert d.stop(signal.SIGTERM, timeout=5) == 0
    assert "will be redone at the next start" in d.log()
    d2 = start_daemon(cfg)  # ... and it is
    wait_for(lambda: stored_cost(database, "n0000001") is not None, what="redone after the restart")
    assert d2.stop() == 0


MAX_WATCHES = "/proc/sys/fs/inotify/max_user_watches"


def _watches_held_by(uid: int) -> int:
    held = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            for fd in os.listdir(f"/proc/{pid}/fdinfo"):
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    held += sum(1 for line in f if line.startswith("inotify wd:"))
        except OSError:
            continue
    return held


CODEX_SID = "0d0d0d0d-1111-4222-8333-444455556667"


def _codex_rollout(folder: Path) -> None:
    """A finished Codex session, written in a new day folder of a Codex home's sessions/."""
    folder.mkdir(parents=True)
    ts = "2026-12-01T09:00:00.000Z"
    lines = [{"timestamp": ts, "type": "session_meta", "payload": {"id": CODEX_SID, "cwd": "/home/dev/shop"}},
             {"timestamp": ts, "type": "turn_context", "payload": {"model": "gpt-5-codex", "cwd": "/home/dev/shop"}},
             {"timestamp": ts, "type": "event_msg", "payload": {"type": "task_started"}},
             {"timestamp": ts, "type": "event_msg", "payload": {"type": "task_complete"}}]
    (folder / f"rollout-2026-12-01T09-00-00-{CODEX_SID}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_inotify_watch_limit_is_reported_and_covered_by_the_sweep(tmp_path, root, start_daemon):
    """A real ENOSPC: the kernel's limit is lowered so that the root, a Codex home's sessions/
    and two more folders fit. A Codex session in a new day folder (three new folders: the
    last gets no watch, in watchdog's thread) is still read, and so are workflows without a
    watch."""
    if os.geteuid() != 0 or not os.access(MAX_WATCHES, os.W_OK):
        pytest.skip(f"lowering {MAX_WATCHES} needs root")
    database = str(tmp_path / "p.db")
    home = tmp_path / "codex-home"
    (home / "sessions").mkdir(parents=True)
    cfg = write_config(tmp_path, {"main": root}, database, codex_homes=[{"path": str(home), "name": "cx"}], **FAST)
    with open(MAX_WATCHES) as f:
        saved = f.read().strip()
    try:
        with open(MAX_WATCHES, "w") as f:
            f.write(str(_watches_held_by(os.geteuid()) + 4))
        d = start_daemon(cfg)
        wait_for(lambda: ready(d), what="catch-up")
        _codex_rollout(home / "sessions" / "2026" / "12" / "01")
        wait_for(lambda: "inotify watch limit reached (fs.inotify.max_user_watches" in d.log(),
                 what="the error, from the folder watchdog could not watch")
        wait_for(lambda: query(database, "SELECT status FROM workflow_history WHERE workflow_id = ?",
                               (f"cx/{CODEX_SID}",)) == [("completed",)], what="the session in the unwatched folder")
        for i in range(3):
            make_workflow(root, f"w000000{i}", cost=1.0)
        wait_for(lambda: "inotify watch limit reached (fs.inotify.max_user_watches" in d.log(), what="the error")
        wait_for(lambda: all(stored_cost(database, f"w000000{i}") for i in range(3)), what="all three stored")
        # None of them got a watch (the day folders took the last ones); they are still followed, by the sweep.
        for i in range(3):
            write_state(root / f"w000000{i}", nl_input="Typecheck the frontend with tsc",
                        start_time="2026-10-01T10:00:00Z")
        wait_for(lambda: pattern_counts(database).get("build:typecheck:frontend") == 3, what="the unwatched changes")
        assert d.stop() == 0
    finally:
        with open(MAX_WATCHES, "w") as f:
            f.write(saved)
    log = d.log()
    assert log.count("inotify watch limit reached") == 1 and "sysctl -w fs.inotify.max_user_watches=" in log
    assert "session roots are read every" in log


def test_sigint_stops_cleanly_and_sighup_reopens_the_log(daemon_config, root, database, start_daemon, tmp_path):
    d = start_daemon(daemon_config)
    wait_for(lambda: ready(d), what="catch-up")
    log = tmp_path / "daemon.log"
    os.rename(log, tmp_path / "daemon.log.1")  # what logrotate does
    d.send(signal.SIGHUP)
    wait_for(lambda: log.exists() and "reload: configuration reloaded" in log.read_text(), what="a reopened log")
    make_workflow(root, "o0000001")
    wait_for(lambda: "main/o0000001 new" in log.read_text(), what="new lines in the new file")
    assert d.stop(signal.SIGINT) == 0
    assert "main/o0000001" not in (tmp_path / "daemon.log.1").read_text()
