"""The hostile-input corpus (tests/hostile/MANIFEST), fed to a running daemon.

For every case: the daemon stays up, logs one clear line, keeps that workflow's last good
data (or stores the new version where the input is odd but usable), processes every other
workflow, and opens nothing outside its roots."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from watchdog.events import FileOpenedEvent, FileSystemEventHandler
from watchdog.observers import Observer

from daemon_proc import DaemonProcess
from helpers import append, query, readable_packages, result_line, wait_for, write_config, write_state

CORPUS = Path(__file__).parent / "hostile"
# What a workflow's data is (not its write counter or timestamps: a re-read of the same
# files may rewrite the row with the same values).
DATA = ("SELECT workflow_id, nl_input, workflow_template, issue_number, model, status, start_time, end_time, "
        "duration_seconds, total_tokens, cost_nanos, error_count, retry_count, error_message FROM workflow_history")
GOOD = {"nl_input": "Run backend tests with pytest", "workflow_template": "adw_plan_iso",
        "start_time": "2026-10-01T10:00:00Z", "end_time": "2026-10-01T10:02:00Z", "issue_number": "v1"}


@dataclass
class Case:
    name: str
    where: str
    expect: str  # "reject" or "accept"
    detail: str
    made: bool

    @property
    def adw_id(self) -> str:
        return "h-" + self.name.replace(".", "-")


def load_manifest() -> list[Case]:
    cases = []
    for line in (CORPUS / "MANIFEST").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, where, expected, _what = (part.strip() for part in line.split("|"))
        made = name.startswith("(made) ")
        name = name.removeprefix("(made) ")
        expect, _, detail = expected.partition(":")
        cases.append(Case(name, where, expect.strip(), detail.strip(), made))
    return cases


CASES = load_manifest()


def test_corpus_has_at_least_30_files_each_described():
    files = [c for c in CASES if not c.made]
    assert len(CASES) >= 30 and len(files) >= 30
    assert sorted(c.name for c in files) == sorted(p.name for p in CORPUS.iterdir() if p.name != "MANIFEST")


def make_good(root: Path, case: Case) -> None:
    folder = root / case.adw_id
    write_state(folder, **GOOD)
    append(folder / "tester" / "raw_output.jsonl", result_line(cost=1.0))


def make_hostile(root: Path, outside: Path, case: Case) -> None:
    folder = root / case.adw_id
    state = folder / "adw_state.json"
    if case.where == "raw":
        write_state(folder, **{**GOOD, "issue_number": "v2"})
        shutil.copyfile(CORPUS / case.name, folder / "tester" / "raw_output.jsonl")
        return
    if case.where == "folder":
        shutil.rmtree(folder)
        os.symlink(outside / "target-folder", folder)
        return
    if not case.made:
        tmp = folder / "incoming.tmp"
        shutil.copyfile(CORPUS / case.name, tmp)
        os.replace(tmp, state)
        return
    state.unlink()
    if case.name == "fifo":
        os.mkfifo(state)
    elif case.name == "directory":
        state.mkdir()
    elif case.name == "over_max_bytes":
        with open(state, "w") as f:
            f.write('{"nl_input": "' + "x" * (17 * 1024 * 1024) + '"}')
    elif case.name == "nl_input_1mb":
        state.write_text(json.dumps({**GOOD, "issue_number": "v2", "nl_input": "Run tests " * 100_000}))
    elif case.name == "symlink_outside":
        os.symlink(outside / "secret.json", state)
    elif case.name == "symlink_loop":
        os.symlink(state, state)
    else:
        raise AssertionError(f"no maker for {case.name}")


class OpenRecorder(FileSystemEventHandler):
    def __init__(self):
        self.opened = []

    def on_opened(self, event):
        self.opened.append(event.src_path)


def warnings_for(log: str, adw_id: str) -> list[str]:
    return [line for line in log.splitlines() if f"/{adw_id}" in line and " WARNING " in line]


def test_hostile_corpus_against_a_running_daemon(tmp_path):
    root, outside = tmp_path / "agents", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({"nl_input": "Ship the release", "issue_number": "leak"}))
    write_state(outside / "target-folder", nl_input="Ship the release", issue_number="leak")
    database = str(tmp_path / "p.db")
    cfg = write_config(tmp_path, {"main": root}, database, debounce_ms=100, reconcile_interval_s=0,
                       watch={"sweep_interval_s": 0.5})
    cases = [c for c in CASES if c.name != "unreadable"]
    for case in cases:
        make_good(root, case)
    d = DaemonProcess(cfg)
    recorder, observer = OpenRecorder(), Observer()
    try:
        wait_for(lambda: query(database, "SELECT COUNT(*) FROM workflow_history WHERE revision > 0")[0][0] == len(cases),
                 what="the good versions stored")
        before = {r[0]: r for r in query(database, DATA)}
        observer.schedule(recorder, str(outside), recursive=True, event_filter=[FileOpenedEvent])
        observer.start()
        for case in cases:
            make_hostile(root, outside, case)
        for i in range(5):  # the others are still processed
            write_state(root / f"control{i}", **GOOD)

        def settled():
            log = d.log()
            for case in cases:
                if case.expect == "reject" and not warnings_for(log, case.adw_id):
                    return False
                if case.expect == "accept" and case.name != "raw_no_final_newline.jsonl":
                    rows = query(database, "SELECT issue_number FROM workflow_history WHERE adw_id = ?", (case.adw_id,))
                    if rows != [("v2",)]:
                        return False
            return query(database, "SELECT COUNT(*) FROM workflow_history WHERE adw_id LIKE 'control%'")[0][0] == 5

        wait_for(settled, timeout=60, what="every hostile case handled")
        assert d.alive()
        log = d.log()
        after = {r[0]: r for r in query(database, DATA)}
        problems = []
        for case in cases:
            wid = f"main/{case.adw_id}"
            lines = warnings_for(log, case.adw_id)
            if case.expect == "reject":
                if after[wid] != before[wid]:
                    problems.append(f"{case.name}: last good data not kept: {before[wid]} -> {after[wid]}")
                if len(lines) != 1 or case.detail not in lines[0]:
                    problems.append(f"{case.name}: expected one warning with {case.detail!r}, got {lines}")
                elif case.where != "folder" and "adw_state.json" not in lines[0]:
                    problems.append(f"{case.name}: warning does not name the file: {lines[0]}")
            elif case.detail and not any(case.detail in line for line in lines):
                problems.append(f"{case.name}: expected a warning with {case.detail!r}, got {lines}")
        assert not problems, "\n".join(problems)
        assert "Traceback" not in log and "internal error" not in log
        assert "leak" not in {r[0] for r in query(database, "SELECT issue_number FROM workflow_history")}
        assert recorder.opened == [], f"opened outside the root: {recorder.opened}"
        assert d.stop() == 0
    finally:
        observer.stop()
        observer.join()
        if d.alive():
            d.kill()
    from adw_patternd.cli import main
    assert main(["verify", "--config", str(cfg)]) == 0


def test_unreadable_state_file(tmp_path):
    """A state file the daemon's user may not read. Root reads everything, so as root the
    sync runs as nobody (setpriv), in a folder nobody can reach, with the package copied to
    a folder nobody can read."""
    as_nobody = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to drop root privileges")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    base = Path(tempfile.mkdtemp(prefix="adw-unreadable-", dir="/tmp"))
    try:
        os.chmod(base, 0o777)
        root = base / "agents"
        for adw_id in ("u0000001", "u0000002"):
            write_state(root / adw_id, **GOOD)
        (root / "u0000001" / "adw_state.json").chmod(0)
        for p in [root, root / "u0000001", root / "u0000002", root / "u0000002" / "adw_state.json"]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        cfg = write_config(base, {"main": root}, str(base / "db" / "p.db"))
        (base / "db").mkdir(mode=0o777)
        os.chmod(base / "db", 0o777)
        os.chmod(cfg, 0o644)
        r = subprocess.run(as_nobody + [sys.executable, "-m", "adw_patternd", "sync", "--config", str(cfg)],
                           capture_output=True, text=True, timeout=60, cwd=base, env=readable_packages(base))
        if r.returncode == 2 and "Permission denied" in r.stderr and "python" in r.stderr.lower():
            pytest.skip(f"nobody cannot run this interpreter: {r.stderr.strip()[:200]}")
        assert r.returncode == 1, r.stdout + r.stderr
        lines = [line for line in r.stderr.splitlines() if "u0000001" in line]
        assert len(lines) == 1 and "adw_state.json: cannot open (Permission denied)" in lines[0], r.stderr
        assert "new 1" in r.stdout and "failed 1" in r.stdout
    finally:
        shutil.rmtree(base, ignore_errors=True)
