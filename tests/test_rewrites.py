"""Runs, not bytes. ADW runners open an agent's raw_output.jsonl with "w" for every run and
every retry, so a transcript is rewritten, not only appended to: sometimes with the same
length, sometimes shorter, often while the daemon watches. Whatever happens, the stored
figures equal a recomputation over what was observed, and `verify --files` checks that."""

import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adw_patternd.cli import main
from adw_patternd.synth.trees import make_real_tree
from helpers import age, query, wait_for, write_config
from test_real_trees import FAST
from test_sync import sync

SONNET = "claude-sonnet-4-5-20250929"


def run_lines(session: str, cost: str, *, finished: bool = True) -> str:
    """One agent run as Claude Code writes it; ``cost`` as text (1.250000), so that two runs
    can differ in cost and not in length."""
    text = (json.dumps({"type": "system", "subtype": "init", "session_id": session, "model": SONNET}) + "\n"
            + json.dumps({"type": "assistant", "session_id": session, "message": {
                "id": f"msg_{session}", "model": SONNET, "content": [
                    {"type": "tool_use", "id": f"toolu_{session}", "name": "Bash",
                     "input": {"command": "git status"}}],
                "usage": {"input_tokens": 5, "output_tokens": 40}}}) + "\n")
    if finished:
        # The cost early in the line: a rewrite changes bytes well before the end of the file.
        text += (f'{{"type":"result","total_cost_usd":{cost},"subtype":"success","is_error":false,'
                 f'"duration_ms":61000,"session_id":"{session}","result":"Done: the tests pass and the branch is pushed."}}\n')
    return text


def rewrite(path: Path, text: str) -> None:
    """As an ADW runner does: open("w"), same inode, the old content gone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def workflow(database: str, adw_id: str) -> dict:
    cols = ("cost_nanos", "retry_count", "overwritten_runs", "overwritten_nanos", "revision", "status")
    rows = query(database, f"SELECT {', '.join(cols)} FROM workflow_history WHERE adw_id = ?", (adw_id,))
    return dict(zip(cols, rows[0])) if rows else {}


def cost(database: str, adw_id: str):
    return workflow(database, adw_id).get("cost_nanos")


def verify_files(config_path, capsys, *extra) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", "--files", "--config", str(config_path), "--settle", "0.2", *extra])
    return code, capsys.readouterr().out


# -- the same-length rewrite ----------------------------------------------------------------

def test_a_same_length_rewrite_is_seen_by_sync(config_path, root, database, capsys):
    path = root / "0000aaaa" / "tester" / "raw_output.jsonl"
    rewrite(path, run_lines("s1", "1.250000"))
    age(path, 30)
    assert sync(config_path) == 0
    assert cost(database, "0000aaaa") == 1_250_000_000
    size = path.stat().st_size
    rewrite(path, run_lines("s1", "3.750000"))  # the same session, run again: same length, other cost
    assert path.stat().st_size == size
    assert sync(config_path) == 0
    assert cost(database, "0000aaaa") == 3_750_000_000
    # once more, the rewrite dated in the past, as a catch-up would find it
    rewrite(path, run_lines("s1", "2.500000"))
    age(path, 20)
    assert sync(config_path) == 0
    assert cost(database, "0000aaaa") == 2_500_000_000
    assert workflow(database, "0000aaaa")["overwritten_runs"] == 0  # the same session: replaced, not kept
    assert verify_files(config_path, capsys)[0] == 0


def test_verify_files_finds_what_the_database_missed(config_path, root, database, capsys):
    # A rewrite that keeps size and mtime cannot be told from no change by looking at the
    # file's metadata; reading the bytes again can.
    path = root / "0000bbbb" / "tester" / "raw_output.jsonl"
    rewrite(path, run_lines("s1", "1.250000"))
    age(path, 30)
    assert sync(config_path) == 0
    st = path.stat()
    rewrite(path, run_lines("s1", "3.750000"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, out = verify_files(config_path, capsys, "--rounds", "2")
    assert code == 1
    assert "workflow_history main/0000bbbb: cost_nanos is 1250000000 in the database, 3750000000 from the files" in out
    assert "took" not in out and "recomputed from the files and compared in" in out


def test_a_second_sync_of_a_freshly_written_tree_updates_nothing(tmp_path, config_path, root, database, capsys):
    written_at = time.time()
    make_real_tree(str(root), 30, seed=5)
    capsys.readouterr()
    assert sync(config_path) == 0  # right after writing: every file is too new to fingerprint
    n = len(query(database, "SELECT workflow_id FROM workflow_history WHERE revision > 0"))
    revisions = dict(query(database, "SELECT workflow_id, revision FROM workflow_history"))
    wait_for(lambda: time.time() > written_at + 2.5, what="the racy window to pass")
    capsys.readouterr()
    assert sync(config_path) == 0
    assert f"new 0, updated 0, unchanged {n}," in capsys.readouterr().out
    assert dict(query(database, "SELECT workflow_id, revision FROM workflow_history")) == revisions
    # Touched without change (a backup restore, `touch`): read again, nothing updated. Only
    # workflows with recorded times: where times come from file mtimes, a touch changes them.
    recorded = [adw for adw, source in query(database, "SELECT adw_id, time_source FROM workflow_history")
                if source != "mtime"]
    assert len(recorded) >= 5
    for adw_id in recorded:
        for folder, _dirs, files in os.walk(root / adw_id):
            for name in files:
                age(Path(folder) / name, 100)
    assert sync(config_path) == 0
    assert f"new 0, updated 0, unchanged {n}," in capsys.readouterr().out
    assert dict(query(database, "SELECT workflow_id, revision FROM workflow_history")) == revisions
    assert verify_files(config_path, capsys)[0] == 0


# -- the daemon -----------------------------------------------------------------------------

@pytest.fixture
def daemon_config(tmp_path, root, database):
    return write_config(tmp_path, {"main": root}, database, **FAST)


def start_daemon(config):
    """The real daemon, once its catch-up is done (it may be this config's second start)."""
    from daemon_proc import DaemonProcess

    log = config.parent / "daemon.log"
    before = log.read_text().count("catch-up:") if log.exists() else 0
    d = DaemonProcess(config)
    wait_for(lambda: d.log().count("catch-up:") > before, what="daemon ready")
    return d


def test_the_daemon_sees_a_same_length_rewrite_live_and_after_downtime(daemon_config, root, database, capsys):
    path = root / "0000cccc" / "tester" / "raw_output.jsonl"
    d = start_daemon(daemon_config)
    try:
        rewrite(path, run_lines("s1", "1.250000"))
        wait_for(lambda: cost(database, "0000cccc") == 1_250_000_000, what="the first run stored")
        rewrite(path, run_lines("s1", "3.750000"))
        wait_for(lambda: cost(database, "0000cccc") == 3_750_000_000, what="the same-length rewrite seen live")
    finally:
        assert d.stop() == 0
    rewrite(path, run_lines("s1", "2.500000"))  # while the daemon is down
    d = start_daemon(daemon_config)
    try:
        wait_for(lambda: cost(database, "0000cccc") == 2_500_000_000, what="the rewrite caught up after downtime")
        assert verify_files(daemon_config, capsys)[0] == 0
    finally:
        assert d.stop() == 0


def test_an_agent_retried_while_the_daemon_watches_keeps_its_first_run(tmp_path, daemon_config, root, database,
                                                                        capsys):
    path = root / "0000dddd" / "sdlc_implementor" / "raw_output.jsonl"
    d = start_daemon(daemon_config)
    try:
        rewrite(path, run_lines("first", "1.000000"))
        wait_for(lambda: cost(database, "0000dddd") == 1_000_000_000, what="the first attempt stored")
        rewrite(path, run_lines("retry", "2.000000", finished=False))  # the retry truncates the file
        wait_for(lambda: (workflow(database, "0000dddd").get("overwritten_runs") == 1
                          and workflow(database, "0000dddd")["status"] == "running"), what="the retry seen")
        with open(path, "a") as f:
            f.write('{"type":"result","subtype":"success","is_error":false,"duration_ms":1000,'
                    '"session_id":"retry","total_cost_usd":2.000000}\n')
        wait_for(lambda: cost(database, "0000dddd") == 3_000_000_000, what="both attempts counted")
        wf = workflow(database, "0000dddd")
        assert (wf["retry_count"], wf["overwritten_runs"], wf["overwritten_nanos"]) == (1, 1, 1_000_000_000)

        capsys.readouterr()
        assert main(["status", "--config", str(daemon_config)]) == 0
        assert "$1.00 in 1 run(s) seen live, since overwritten" in capsys.readouterr().out

        # The files alone know only the retry: verify --files lists the first attempt apart.
        code, out = verify_files(daemon_config, capsys)
        assert code == 0, out
        assert "1 run(s), $1.000000, in 1 transcript(s)" in out
        assert "main/0000dddd sdlc_implementor/raw_output.jsonl: 1 run(s)" in out
    finally:
        assert d.stop() == 0
    (tmp_path / "fresh").mkdir()
    fresh = write_config(tmp_path / "fresh", {"main": root}, str(tmp_path / "fresh" / "fresh.db"))
    assert sync(fresh) == 0
    assert cost(str(tmp_path / "fresh" / "fresh.db"), "0000dddd") == 2_000_000_000  # documented: disk only


# -- any sequence of writes -----------------------------------------------------------------

# What a runner does to one agent's transcript between two reads.
operations = st.lists(st.tuples(
    st.sampled_from(["append run", "rerun same session", "retry (truncate)", "touch", "partial line", "read"]),
    st.sampled_from(["tester", "sdlc_implementor"]), st.integers(1, 9)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(operations)
def test_rewrites_truncations_retries_and_touches_keep_every_run_seen(ops):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = tmp / "agents"
        config = write_config(tmp, {"main": root}, str(tmp / "p.db"))
        files: dict[str, list[tuple[str, str]]] = {}  # agent -> its runs on disk: (session, cost)
        seen: dict[tuple[str, str], int] = {}  # (agent, session) -> nanos, as of the last read
        counter = iter(range(10**6))

        def write(agent):
            text = "".join(run_lines(s, c) for s, c in files[agent])
            rewrite(root / "0000eeee" / agent / "raw_output.jsonl", text)

        def read():
            assert main(["sync", "--config", str(config)]) == 0
            for agent, runs in files.items():
                for session, c in runs:
                    seen[(agent, session)] = round(float(c) * 1e9)

        files["tester"] = [("s-first", "0.500000")]
        write("tester")
        for op, agent, k in ops:
            runs = files.setdefault(agent, [])
            if op == "append run" or (not runs and op != "read"):
                runs.append((f"s{next(counter)}", f"{k}.000000"))
                write(agent)
            elif op == "rerun same session":  # the same length, another cost
                runs[-1] = (runs[-1][0], f"{k}.{k}00000")
                write(agent)
            elif op == "retry (truncate)":
                files[agent] = [(f"s{next(counter)}", f"0.{k}00000")]
                write(agent)
            elif op == "touch":
                age(root / "0000eeee" / agent / "raw_output.jsonl", k)
            elif op == "partial line":
                with open(root / "0000eeee" / agent / "raw_output.jsonl", "a") as f:
                    f.write('{"type":"assistant","message":{"id":"m')  # caught mid-write by the next read
            else:
                read()
        read()
        assert cost(str(tmp / "p.db"), "0000eeee") == sum(seen.values())
        on_disk = {(a, s) for a, runs in files.items() for s, _c in runs}
        assert workflow(str(tmp / "p.db"), "0000eeee")["overwritten_runs"] == len(seen.keys() - on_disk)
        assert main(["verify", "--files", "--config", str(config), "--rounds", "1"]) == 0


def test_appends_are_read_where_the_last_read_stopped(tmp_path, monkeypatch):
    from adw_patternd.sources import files
    from adw_patternd.core.pricing import DEFAULT_PRICES
    from adw_patternd.sources.transcript import Transcript

    restarts = []
    real = Transcript.restarted
    monkeypatch.setattr(Transcript, "restarted", lambda self, *a: restarts.append(1) or real(self, *a))
    path = tmp_path / "tester" / "raw_output.jsonl"
    t = Transcript("tester/raw_output.jsonl")
    for i in range(6):
        with open(path.parent.mkdir(exist_ok=True) or path, "a") as f:
            f.write(run_lines(f"s{i}", f"{i}.000000"))
        t = files.read_transcript(str(path), t, DEFAULT_PRICES, [])
    assert len(restarts) == 1  # the first read only: a new file
    assert [r.session_id for r in t.runs] == [f"s{i}" for i in range(6)] and not t.overwritten


def test_retries_seen_by_sync_are_kept_and_verify_files_carries_them_into_its_workers(tmp_path, root, database,
                                                                                    capsys):
    # One workflow per batch: verify --files reads in forked worker processes, which must
    # start each transcript with the runs only the ledger knows, as the parent does.
    config = write_config(tmp_path, {"main": root}, database, sync_batch_size=1)
    paths = [root / f"0000f{i:03d}" / "tester" / "raw_output.jsonl" for i in range(6)]
    for i, path in enumerate(paths):
        rewrite(path, run_lines(f"a{i}", "1.000000"))
    assert sync(config) == 0
    for i, path in enumerate(paths):
        rewrite(path, run_lines(f"b{i}", "2.000000"))  # the retry: the first attempt gone from disk
    assert sync(config) == 0
    assert {workflow(database, p.parent.parent.name)["cost_nanos"] for p in paths} == {3_000_000_000}
    code, out = verify_files(config, capsys, "--rounds", "1")
    assert code == 0, out
    assert "6 run(s), $6.000000, in 6 transcript(s)" in out


def test_new_prices_read_everything_again_and_keep_the_runs_only_the_ledger_knows(tmp_path, root, database,
                                                                                   capsys):
    """A changed price table (an upgrade that adds prices, or `prices:` edited) reads every
    workflow again from its files' start: a run seen before its transcript was rewritten is
    still counted, and the open run is priced anew."""
    path = root / "0000ffff" / "tester" / "raw_output.jsonl"
    rewrite(path, run_lines("s1", "1.000000"))
    age(path, 40)
    cfg = write_config(tmp_path, {"main": root}, database)
    assert sync(cfg) == 0
    rewrite(path, run_lines("s2", "2.000000") + run_lines("s3", "", finished=False))  # a retry, then a run under way
    age(path, 30)
    assert sync(cfg) == 0
    before = workflow(database, "0000ffff")
    assert (before["overwritten_runs"], before["overwritten_nanos"]) == (1, 1_000_000_000)
    dearer = write_config(tmp_path, {"main": root}, database,
                          prices={SONNET: {"input": 300, "output": 1500, "cache_write": 0, "cache_read": 0}})
    assert sync(dearer) == 0
    after = workflow(database, "0000ffff")
    assert (after["overwritten_runs"], after["overwritten_nanos"]) == (1, 1_000_000_000)
    # the open run's 5 input and 40 output tokens at the new prices, on top of both reported runs
    assert after["cost_nanos"] == 3_000_000_000 + 5 * 300_000 + 40 * 1_500_000
    assert verify_files(dearer, capsys)[0] == 0


def test_a_run_only_the_ledger_knows_stays_when_settings_change(config_path, root, database, capsys):
    """New prices, rules or tool_cost_ratio read every workflow again from its files; a run
    seen before a retry overwrote its transcript is in no file, and stays counted."""
    import yaml

    path = root / "0000eeee" / "sdlc_implementor" / "raw_output.jsonl"
    rewrite(path, run_lines("first", "1.000000"))
    age(path, 30)
    assert sync(config_path) == 0
    rewrite(path, run_lines("retry", "2.000000"))
    age(path, 20)
    assert sync(config_path) == 0
    before = workflow(database, "0000eeee")
    assert (before["cost_nanos"], before["overwritten_runs"]) == (3_000_000_000, 1)
    doc = yaml.safe_load(config_path.read_text())
    doc["tool_cost_ratio"] = 0.07  # the derivation settings change: every workflow is read again
    config_path.write_text(yaml.safe_dump(doc))
    assert sync(config_path) == 0
    after = workflow(database, "0000eeee")
    assert (after["cost_nanos"], after["overwritten_runs"], after["overwritten_nanos"]) == (3_000_000_000, 1,
                                                                                          1_000_000_000)
    assert verify_files(config_path, capsys)[0] == 0
