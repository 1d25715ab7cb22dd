"""The command line: a thin layer over the engine, the ledger and the daemon.

Errors a user can cause (bad config, unreachable database) become one line on stderr and
exit code 2; tracebacks are left for bugs.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from datetime import date, datetime, timedelta, timezone

from . import __version__
from .config import ENV_VAR, Config, load_config
from .core.errors import PatterndError
from .sources import kinds
from .sources.files import root_problem
from .live.logs import setup_logging
from .outputs.metrics import Metrics
from .outputs.tables import as_csv, as_json, as_table, automated_table, name_agents, show_text, unmatched_table
from .core.review import DECISIONS, STATES
from .store import automation, queries
from .store import unmatched as store_unmatched
from .store.evidence import show
from .store.reviews import latest_reviews, occurrence_count, record_review
from .store import open_ledger
from .store.rows import now_us
from .store.verify import verify

EXIT_USAGE = 2


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} workflows")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_sync(args, config: Config) -> int:
    from .engine import Engine
    from .sync import Syncer

    setup_logging(config.log, stderr=True, level="WARNING" if not args.verbose else None)
    with open_ledger(config) as ledger:
        metrics = Metrics(config.metrics.textfile, ledger, config.agent_of)
        syncer = Syncer(Engine(config, ledger), adopt_roots=args.adopt_roots)
        summary = syncer.run(progress=_progress if sys.stderr.isatty() else None, on_outcome=metrics.outcome,
                             workers=os.cpu_count() or 1)
        for sig in automation.record_declared(ledger.db, config.automated):
            print(f"sync: {sig} recorded as automated, as config.yaml declares")
        metrics.write(ledger.db)
        report_problem = None
        if config.report.html:  # Jinja2 is imported only to write a report
            from .outputs.html import write_configured_report

            report_problem = write_configured_report(config, ledger)
    print(f"sync: {summary.line()}")
    if report_problem:
        print(f"adw-patternd: {report_problem}", file=sys.stderr)
    if summary.failed:
        print(f"sync: {summary.failed} workflow(s) could not be read; the reasons are in the log above "
              f"and in {config.log.file or 'stderr'}", file=sys.stderr)
    if summary.not_stored:
        print(f"sync: {summary.not_stored} workflow(s) read but not stored: {summary.store_problem}; nothing was "
              "half-written: run sync again once the database can take writes", file=sys.stderr)
    return 1 if summary.failed or summary.not_stored or report_problem else 0


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return n


def _when(text: str, what: str, now: datetime) -> int:
    """A window edge as epoch microseconds: `30d` (days before now) or a date (YYYY-MM-DD)."""
    m = re.fullmatch(r"(\d+)d", text.strip())
    if m:
        at = now - timedelta(days=int(m.group(1)))
    else:
        try:
            at = datetime.fromisoformat(text.strip())
        except ValueError:
            raise PatterndError(f"{what} {text!r}: give a number of days (30d) or a date (2026-10-01)") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
    return int(at.timestamp() * 1_000_000)


def _until(args) -> int | None:
    """--until as epoch microseconds (its weeks end just before it), or None."""
    return _when(args.until, "--until", datetime.now(timezone.utc)) if args.until else None


def cmd_patterns(args, config: Config) -> int:
    if args.unmatched:
        return _unmatched(args, config)
    with open_ledger(config) as ledger:
        now = datetime.now(timezone.utc)
        rows = ledger.db.snapshot(lambda: queries.listed(
            ledger.db, ledger.tool_cost_ratio, sort=args.sort, limit=args.limit, state=args.status,
            roots=config.agent_roots(args.agent) if args.agent else None, host=args.host,
            since_us=_when(args.since, "--since", now) if args.since else None,
            until_us=_when(args.until, "--until", now) if args.until else None,
            now_us=int(now.timestamp() * 1_000_000)))
        latest = latest_reviews(ledger.db)
        if args.status == "automated":  # measured since the tool took over: before/after columns
            stamp = now_us()
            rows = ledger.db.snapshot(lambda: [
                {**r, **automation.figures(ledger.db, r["pattern_signature"], latest[r["pattern_signature"]], stamp,
                                           args.baseline_days)} for r in rows])
            print(as_json(rows) if args.json else as_csv(rows) if args.csv else automated_table(rows),
                  end="" if args.csv else "\n")
            return 0
    print(as_json(rows) if args.json else as_csv(rows) if args.csv else as_table(rows), end="" if args.csv else "\n")
    return 0


def _unmatched(args, config: Config) -> int:
    """`patterns --unmatched`: the shell commands no command row matches, by attributed cost."""
    given = [f"--{n}" for n in ("status", "since", "until", "csv") if getattr(args, n)]
    if given or args.sort != "savings":
        raise PatterndError(f"{', '.join(given) or '--sort'} does not apply to --unmatched: it lists commands by "
                            f"attributed cost (with --limit, --agent, --host, --json)")
    with open_ledger(config) as ledger:
        data = ledger.db.snapshot(lambda: store_unmatched.unmatched(
            ledger.db, limit=args.limit or 20, roots=config.agent_roots(args.agent) if args.agent else None,
            host=args.host))
    print(as_json(data) if args.json else unmatched_table(data))
    return 0


def cmd_show(args, config: Config) -> int:
    with open_ledger(config) as ledger:
        data = show(ledger.db, args.signature, limit=args.limit, now_us=now_us(), until_us=_until(args),
                    recipes=config.recipes)
    name_agents(data, config.agent_of)
    if args.json:
        print(as_json(data))
    elif args.csv:
        print(as_csv(data["workflows"]), end="")
    else:
        print(show_text(data))
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container, a bare systemd DynamicUser)
        return f"uid {os.getuid()}"


def _automated_on(args) -> str | None:
    """--on as a UTC day (YYYY-MM-DD), today by default; refused in the future."""
    if args.decision != "automated":
        if args.on or args.force:
            raise PatterndError("review: --on and --force go with `automated` only")
        return None
    today = datetime.now(timezone.utc).date()
    if not args.on:
        return today.isoformat()
    try:
        day = date.fromisoformat(args.on.strip())
    except ValueError:
        raise PatterndError(f"review: --on {args.on!r} is not a date; give the UTC day the tool took over, "
                            "as YYYY-MM-DD") from None
    if day > today:
        raise PatterndError(f"review: --on {day} is in the future; record the automation on the day it takes "
                            f"effect (today, {today}, or earlier)")
    return day.isoformat()


def cmd_review(args, config: Config) -> int:
    on = _automated_on(args)
    with open_ledger(config) as ledger:
        if args.force and args.decision == "automated":
            if not occurrence_count(ledger.db, args.signature):
                print(f"{args.signature}: never seen in this database; recorded as automated ahead of time "
                      "(--force)", file=sys.stderr)
        review = record_review(ledger.db, args.signature, args.decision, args.note, args.by or _os_user(),
                               effective_on=on, force=args.force)
    if args.json:
        print(as_json({"pattern_signature": review.signature, **review.as_dict()}))
    else:
        print(f"{review.signature}: {review.state} by {review.by} at {review.at} "
              f"({review.occurrences_then} occurrences, ${review.savings_then:,.2f}/month, "
              f"confidence {review.confidence_then:.0f})")
    return 0


def cmd_report(args, config: Config) -> int:
    from .outputs.html import gather, render, write_atomically

    if not args.html and not args.json:
        raise PatterndError("report: say where it goes: --html FILE (a page) or --json (to stdout)")
    with open_ledger(config) as ledger:
        data = gather(ledger, now_us=now_us(), top=args.top, until_us=_until(args), recipes=config.recipes,
                      agent_of=config.agent_of, host=args.host)
    if args.json:
        print(as_json(data))
    if args.html:
        write_atomically(args.html, render(data))
        print(f"report: wrote {args.html}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_verify(args, config: Config) -> int:
    if args.agent_record and not args.files:
        print("verify: --agent-record compares what the files say with the agent's own record: "
              "use it with --files (`verify --files --agent-record`)", file=sys.stderr)
        return 2
    if args.files:
        return _verify_files(args, config)
    with open_ledger(config) as ledger:
        problems = verify(ledger, repair=args.repair)
    for p in problems:
        print(p)
    if not problems:
        print("verify: every statistic equals its recomputation")
        return 0
    print(f"verify: {len(problems)} difference(s)" + ("; repaired" if args.repair else "; run `verify --repair` to fix"),
          file=sys.stderr)
    return 0 if args.repair else 1


def _verify_files(args, config: Config) -> int:
    from .check_files import check_files

    setup_logging(config.log, stderr=True, level="WARNING")
    check = check_files(config, rounds=args.rounds, settle_s=args.settle, workers=os.cpu_count() or 1,
                        agent_record=args.agent_record)
    for line in check.differences:
        print(line)
    unexplained = _print_agent_records(check.records) if args.agent_record else 0
    if check.overwritten:
        runs = sum(o.runs for o in check.overwritten)
        nanos = sum(o.cost_nanos for o in check.overwritten)
        print(f"kept from the ledger, not in the files (seen live, since overwritten by a later run): "
              f"{runs} run(s), ${nanos / 1e9:,.6f}, in {len(check.overwritten)} transcript(s)")
        for o in check.overwritten:
            print(f"  {o.workflow_id} {o.transcript}: {o.runs} run(s), ${o.cost_nanos / 1e9:,.6f}")
    looks = f"{check.rounds} look{'s' if check.rounds > 1 else ''}"
    print(f"verify --files: {check.workflows} workflow(s) recomputed from the files and compared in "
          f"{check.seconds:.1f} s ({looks})")
    if not check.differences:
        print("verify --files: the database says what the files say")
        return 1 if unexplained else 0
    print(f"verify --files: {len(check.differences)} difference(s) between the database and the files "
          f"(run `sync` and check again; one that stays is a bug worth reporting)", file=sys.stderr)
    return 1


def _print_agent_records(records) -> int:
    """Each session whose figures differ from its agent's own record, with the reasons;
    returns how many differ for no reason of the agent's (ours: a bug)."""
    from .sources.agent_record import report_lines

    lines, unexplained = report_lines(records)
    for line in lines:
        print(line)
    return unexplained


def cmd_check_config(args, config: Config) -> int:
    print(f"{config.path}: OK")
    for root in config.roots:
        problem = root_problem(root.path)
        note = f"  ({problem}; the daemon waits for it)" if problem else ""
        print(f"  root {root.name}: {root.path}{note}")
    print(f"  database: {config.database}")
    print(f"  log: {config.log.file or 'stderr'} ({config.log.level}, {config.log.format})")
    if config.report.html:
        print(f"  report: {config.report.html} (every {config.report.every_s:g} s)")
    if config.metrics.textfile:
        print(f"  metrics: {config.metrics.textfile} (every {config.metrics.interval_s:g} s)")
    return 0


def cmd_status(args, config: Config) -> int:
    with open_ledger(config) as ledger:
        status = ledger.db.snapshot(lambda: queries.status(ledger.db, args.host, config.agent_of))
        by_agent = status["by_agent"]
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"workflows: {status['workflows']}   patterns: {status['patterns']}")

    def shares(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"

    print(f"  status: {shares(status['by_status'])}")
    print("  by agent: " + (", ".join(f"{a} {v['workflows']} workflows ${v['spend_usd']:,.2f}"
                                      for a, v in by_agent.items()) or "-"))
    print("  by host: " + (", ".join(f"{h} {v['workflows']} workflows ${v['spend_usd']:,.2f}"
                                     for h, v in status["by_host"].items()) or "-"))
    print(f"  times from: {shares(status['time_source'])}  (session: the session store's timestamps; "
          "mtime: file times, not recorded times)")
    print(f"  requests from: {shares(status['request_source'])}  (slug: guessed from a branch or plan name)")
    print(f"spend seen: ${status['spend_usd']:,.2f}, of which ${status['estimated_usd']:,.2f} estimated from "
          f"{status['unfinished_runs']} run(s) without a result line (people's own sessions included) and "
          f"{status['session_runs']} attempt(s) only the session store kept (a lower bound)")
    if status["overwritten_runs"]:
        print(f"  and ${status['overwritten_usd']:,.2f} in {status['overwritten_runs']} run(s) seen live, since "
              f"overwritten by a later run of their agent (kept: `sync` into an empty database cannot know them)")
    for name, info in sorted(status["roots"].items()):
        print(f"  root {name}: {info['workflows']} workflows, last updated {info['last_updated']}")
    last = status["last_processed"]
    print(f"last processed: {last['workflow_id']} at {last['at']}" if last else "last processed: nothing yet")
    print(f"database: {status['database']} ({status['database_bytes']:,} bytes)")
    return 0


def cmd_serve(args, config: Config) -> int:
    import signal
    import threading

    from .live.serve import Running

    setup_logging(config.log, stderr=True)
    running = Running(config, port=args.port, bind=args.bind)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serve: {running.url} (database {running.site.db.label}; read-only){'; token required' if running.site.token else ''}",
          flush=True)
    try:
        while not stop.wait(3600):  # signals end the wait; nothing else runs here
            pass
    finally:
        running.stop()
    return 0


def cmd_run(args, config: Config) -> int:
    from .live.daemon import run_service

    return run_service(config)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adw-patternd", description=(
        "Learn which operations AI developer workflows keep paying an LLM for, "
        "and what a deterministic tool would save."))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, func):
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.add_argument("--config", metavar="PATH",
                       help=f"config file (default: ${ENV_VAR}, else ./config.yaml)")
        c.set_defaults(func=func)
        return c

    _sync_options(command("sync", "Scan every root once and bring the database up to date.", cmd_sync))
    _patterns_options(command("patterns", "Show the pattern report: occurrences, costs, savings and confidence.",
                              cmd_patterns))
    _show_options(command("show", "The evidence for one pattern: its statistics and confidence parts, the "
                                  "workflows, agents and command lines behind it, its last 12 weeks, and its review "
                                  "trail.", cmd_show))
    _review_options(command("review", "Record a decision about a pattern (approve, reject or defer) in its "
                                      "append-only review trail; the latest decision is the pattern's state.",
                            cmd_review))
    _report_options(command("report", "Write the report for people who will not open a terminal: one "
                                      "self-contained HTML page (totals, patterns, charts, evidence), or its data "
                                      "as JSON.", cmd_report))
    _verify_options(command("verify", "Recompute every statistic from the stored workflows (or, with --files, "
                                      "from the files) and print each difference.", cmd_verify))
    command("check-config", "Validate the config file and say what is wrong.", cmd_check_config)
    c = command("status", "Workflows and patterns held, where their times and requests came from, spend seen "
                          "(and how much is estimated), per root, last processed, database size.", cmd_status)
    c.add_argument("--json", action="store_true", help="print as JSON")
    _host_option(c)
    command("run", "Run the daemon in the foreground: catch up, then watch the roots.", cmd_run)
    c = command("serve", "Serve the live page (read-only): overview, patterns, workflows, each also as JSON under "
                         "/api/; an open page updates itself when the database changes.", cmd_serve)
    c.add_argument("--port", type=int, metavar="N", help="the TCP port (default: serve.port in config.yaml, 8765)")
    c.add_argument("--bind", metavar="ADDRESS", help="the address to listen on (default: serve.bind, 127.0.0.1); "
                                                     "beyond loopback a token is required")
    return p


def _host_option(c: argparse.ArgumentParser) -> None:
    c.add_argument("--host", metavar="NAME", help="only the workflows this host wrote (config.yaml's host:, by "
                                                  "default the machine's name; `status` lists them by host)")


def _sync_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("-v", "--verbose", action="store_true", help="also log each stored workflow")
    c.add_argument("--adopt-roots", action="store_true",
                   help="take each root folder as it is now, after it moved for good (a new disk or mount): "
                        "until then, a root that is not the folder it was deletes nothing")


def _patterns_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--sort", choices=("savings", "occurrences", "confidence", "impact"), default="savings",
                   help="order of the rows (default: savings); impact = confidence/100 x occurrences x savings")
    c.add_argument("--limit", type=_positive, metavar="N", help="show at most N patterns")
    c.add_argument("--status", choices=(*STATES, "recheck"),
                   help="only patterns in this review state (recheck: decided, but the numbers moved a lot since)")
    c.add_argument("--since", metavar="30d|DATE",
                   help="only workflows started since then (days before now, or YYYY-MM-DD), computed from the "
                        "occurrences; adds a trend column: spend in the last 30 days against the 30 before")
    c.add_argument("--until", metavar="DATE", help="with --since: only workflows started before this date")
    c.add_argument("--agent", choices=kinds.agents(),
                   help="only the workflows of this agent (the agent of each root's kind; ADW runs are "
                        f"{kinds.ADW_AGENT}'s)")
    _host_option(c)
    c.add_argument("--unmatched", action="store_true",
                   help="instead of patterns, the shell commands that match no command row (by first word, with "
                        "the subcommand: cargo bench, npm run e2e), by their calls' attributed cost, read-only "
                        "exploration (cat, ls, rg) apart; --limit N per list (default 20)")
    c.add_argument("--baseline-days", type=_positive, default=30, metavar="N",
                   help="with --status automated: the window before the automation, in days (default: 30)")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="a JSON list of objects keyed by operation_patterns columns")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")


def _show_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("signature", help="a pattern signature, as `patterns` lists them (e.g. test:pytest:backend)")
    c.add_argument("--limit", type=_positive, default=20, metavar="N", help="list the N newest workflows (default: 20)")
    c.add_argument("--until", metavar="DATE", help="the 12 weeks end with the week of the day before DATE "
                                                   "(YYYY-MM-DD); default: the week of the pattern's newest workflow")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="everything, as one JSON object")
    fmt.add_argument("--csv", action="store_true", help="the workflows behind the pattern, as CSV")


def _review_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("signature", help="a pattern signature, as `patterns` lists them")
    c.add_argument("decision", choices=tuple(DECISIONS),
                   help="approve, reject, defer, or automated (a tool does it now: --on DATE)")
    c.add_argument("--on", metavar="DATE", help="automated: the UTC day (YYYY-MM-DD) the tool took over; "
                                                "default today")
    c.add_argument("--force", action="store_true", help="automated: for a signature never seen (ahead of time), "
                                                        "or to record another day for one already automated")
    c.add_argument("--note", metavar="TEXT", help="why: kept with the decision")
    c.add_argument("--by", metavar="NAME", help="who decided (default: the OS user)")
    c.add_argument("--json", action="store_true", help="print the recorded decision as JSON")


def _report_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--html", metavar="FILE", help="write the page here (atomically: readers never see half a page)")
    c.add_argument("--json", action="store_true", help="print the report's data as JSON")
    c.add_argument("--until", metavar="DATE", help="the weekly charts end with the week of the day before DATE "
                                                   "(YYYY-MM-DD); default: the week of the newest workflow with "
                                                   "spend (a pattern's: of its newest workflow)")
    c.add_argument("--top", type=_positive, default=5, metavar="N",
                   help="sections with evidence for the N patterns with the most savings (default: 5)")
    _host_option(c)


def _verify_options(c: argparse.ArgumentParser) -> None:
    how = c.add_mutually_exclusive_group()
    how.add_argument("--repair", action="store_true", help="rewrite the stored statistics with the recomputed ones")
    how.add_argument("--files", action="store_true",
                     help="recompute everything from the files into a scratch database, as sync would, and "
                          "compare it table by table with this one (safe while the daemon runs)")
    c.add_argument("--agent-record", action="store_true",
                   help="with --files: also compare each session's tokens and dollars with the agent's own "
                        "record, where it keeps one (a cost-state), and print each difference with its reason")
    c.add_argument("--rounds", type=_positive, default=3, metavar="N",
                   help="with --files: look up to N times before calling a difference real (default: 3)")
    c.add_argument("--settle", type=float, default=2.0, metavar="SECONDS",
                   help="with --files: wait between looks, for a running daemon to catch up (default: 2)")


def main(argv: list[str] | None = None) -> int:
    os.umask(0o027)  # database and log files are not world-readable
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        return args.func(args, config)
    except PatterndError as e:
        print(f"adw-patternd: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`patterns | head`): nothing is wrong. Point stdout at
        # /dev/null so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
