"""The report for people who will not open a terminal: one self-contained HTML page.

`gather` reads everything on one snapshot into plain values (also what `report --json`
prints); `render` turns them into the page with Jinja2 (autoescape on: request text, issue
titles and command lines come from GitHub issues and agents and are never trusted), and
the charts are SVG drawn by the same template from geometry computed here. No script, no
network: the page has a Content-Security-Policy that forbids both, so it works from a
file:// URL and as an e-mail attachment.
"""

from __future__ import annotations

import math
import os
import tempfile

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..config import Config
from ..core.errors import PatterndError
from ..sources import kinds
from .tables import estimated_share, name_agents
from ..core.review import annotate
from ..store import automation
from ..store.evidence import evidence_of, totals, weeks, weeks_end
from ..store.ledger import Ledger
from ..store import queries
from ..store.unmatched import unmatched
from ..store.reviews import latest_reviews
from ..store.rows import now_us as _now_us, us_to_iso

CHART_BARS = 12  # patterns in the savings chart
SECTION_WORKFLOWS = 10
UNMATCHED_ROWS = 10  # heads in each list of the section on commands no rule matches
PATTERN_KEYS = ("pattern_signature", "pattern_type", "occurrence_count", "sum_units", "avg_tokens_with_llm",
                "avg_cost_with_llm", "avg_cost_with_tool", "potential_monthly_savings", "confidence_score",
                "first_seen", "last_seen", "review_state", "reviewed_by", "reviewed_at", "recheck", "impact")


def gather(ledger: Ledger, *, now_us: int, top: int = 5, until_us: int | None = None,
           recipes: dict | None = None, agent_of=None, host: str | None = None) -> dict:
    """The report's numbers, all read on one snapshot of the database. Its weekly chart ends
    at the week of --until, else of the newest workflow with spend; each pattern's section at
    that of its newest workflow (as `show`). ``agent_of``: root name -> agent. ``host``: the
    totals, weeks and patterns of the workflows that host wrote (each pattern's evidence
    section stays the whole database's, as `show` says it)."""
    db = ledger.db

    def work():
        latest = latest_reviews(db)
        rows = annotate(queries.patterns(db, "savings") if host is None else
                        queries.window(db, ledger.tool_cost_ratio, 0, now_us + 1, own_span=True, host=host,
                                       trend=False), latest)
        weeks_to = weeks_end(db, until_us, now_us)
        sections = [name_agents(evidence_of(db, r["pattern_signature"], limit=SECTION_WORKFLOWS, recipes=recipes,
                                            now_us=now_us,
                                            weeks_to=weeks_end(db, until_us, now_us, r["pattern_signature"])),
                                agent_of)
                    for r in rows[: max(top, 0)]]
        automated = [{"pattern_signature": sig, **automation.figures(db, sig, latest[sig], now_us),
                      "regressions_list": automation.regressions(db, pid, on, SECTION_WORKFLOWS)}
                     for sig, (pid, on) in sorted(automation.automated(db).items())]
        spend = {**totals(db, host), "by_agent": queries.spend_by_agent(db, agent_of or _adw_agent, host),
                 "by_host": queries.spend_by_host(db, host)}
        return (rows, spend, weeks(db, weeks_to[0], host=host), weeks_to[1], sections, automated,
                unmatched(db, UNMATCHED_ROWS, host=host))

    rows, spend, by_week, weeks_from, sections, automated, unmatched_heads = db.snapshot(work)
    patterns = []
    for r in rows:
        p = {k: r.get(k) for k in PATTERN_KEYS}
        p["attributed_usd"] = int(r["sum_cost_nanos"] or 0) / 1e9
        p["estimated_share"] = estimated_share(r)
        patterns.append(p)
    savings = sum(p["potential_monthly_savings"] or 0 for p in patterns)
    return {
        "generated_at": us_to_iso(now_us),
        "database": db.label,
        "host": host,
        "tool_cost_ratio": ledger.tool_cost_ratio,
        "totals": {
            **spend,
            "patterns": len(patterns),
            "potential_monthly_savings": savings,
            "estimated_monthly_savings": sum((p["potential_monthly_savings"] or 0) * p["estimated_share"]
                                             for p in patterns),
        },
        "patterns": patterns,
        "weeks": by_week,
        "weeks_end": by_week[-1]["week"],
        "weeks_end_from": weeks_from,
        "sections": sections,
        "automated": automated,
        "unmatched": unmatched_heads,
    }


# -- charts: geometry for the template's SVG -----------------------------------------

def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * (1 - 1e-12))


def savings_chart(patterns: list[dict], width: int = 720, bar: int = 22, gap: int = 8, label_w: int = 260) -> dict:
    """Horizontal bars: potential monthly savings of the patterns with the most."""
    items = [p for p in patterns if (p["potential_monthly_savings"] or 0) > 0][:CHART_BARS]
    top = _nice_max(max((p["potential_monthly_savings"] for p in items), default=0))
    span = width - label_w - 90
    bars = [{"label": p["pattern_signature"], "value": p["potential_monthly_savings"],
             "x": label_w, "y": 10 + i * (bar + gap), "w": max(1.0, span * p["potential_monthly_savings"] / top),
             "h": bar}
            for i, p in enumerate(items)]
    return {"width": width, "height": 20 + len(bars) * (bar + gap), "bars": bars, "label_w": label_w, "max": top}


def before_after_chart(a: dict, width: int = 320, bar: int = 18) -> dict:
    """Two bars: spend on the pattern per workflow started, before and since its automation."""
    before = a["spend_per_workflow_before_usd"] or 0.0
    since = a["spend_per_workflow_since_usd"] or 0.0
    top = _nice_max(max(before, since))
    span = width - 150
    return {"width": width, "height": 2 * bar + 24, "bars": [
        {"label": "before", "value": a["spend_per_workflow_before_usd"], "y": 4, "w": max(1.0, span * before / top),
         "h": bar},
        {"label": "since", "value": a["spend_per_workflow_since_usd"], "y": 8 + bar, "w": max(1.0, span * since / top),
         "h": bar}]}


def weekly_chart(by_week: list[dict], width: int = 720, height: int = 220) -> dict:
    """Vertical bars per week: spend seen, with the part patterns account for inside it."""
    top = _nice_max(max((w["spend_usd"] for w in by_week), default=0))
    plot_h, base = height - 50, height - 30
    slot = (width - 70) / max(len(by_week), 1)
    cols = []
    for i, w in enumerate(by_week):
        h = plot_h * w["spend_usd"] / top
        ha = plot_h * w["attributed_usd"] / top
        cols.append({"week": w["week"], "spend": w["spend_usd"], "attributed": w["attributed_usd"],
                     "workflows": w["workflows"], "x": 60 + i * slot + slot * 0.15, "w": slot * 0.7,
                     "y": base - h, "h": h, "ya": base - ha, "ha": ha})
    return {"width": width, "height": height, "base": base, "top_y": base - plot_h, "max": top, "cols": cols}


# -- the page -------------------------------------------------------------------------

_ENV = Environment(loader=PackageLoader("adw_patternd.outputs", "templates"), autoescape=select_autoescape(["html", "j2"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["usd"] = lambda v, places=2: f"${v:,.{places}f}"
_ENV.filters["share"] = lambda v: f"{v:.0%}"
_ENV.filters["day"] = lambda v: (v or "-")[:10]


def render(data: dict) -> str:
    return _ENV.get_template("report.html.j2").render(
        d=data, savings=savings_chart(data["patterns"]), trend=weekly_chart(data["weeks"]),
        pattern_weeks={s["pattern_signature"]: weekly_chart(s["weeks"], width=480, height=160)
                       for s in data["sections"]},
        before_after={a["pattern_signature"]: before_after_chart(a) for a in data["automated"]})


def _adw_agent(root: str) -> str:
    return kinds.ADW_AGENT


def write_report(ledger: Ledger, path: str, *, now_us: int, top: int = 5, recipes: dict | None = None,
                 agent_of=None) -> None:
    """What the daemon and sync do with config.yaml's report.html: gather, render, replace.
    Its folder is made if missing, as for the metrics file (`report --html` does not)."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as e:
        raise PatterndError(f"report {path}: cannot make its folder ({e.strerror or e}); "
                            "check report.html in config.yaml and the permissions there") from None
    write_atomically(path, render(gather(ledger, now_us=now_us, top=top, recipes=recipes, agent_of=agent_of)))


def write_configured_report(config: Config, ledger: Ledger) -> str | None:
    """Write config.yaml's report.html, if it names one (sync when it ends, the daemon every
    report.every_s); the problem, in words, when it cannot be written."""
    if not config.report.html:
        return None
    try:
        write_report(ledger, str(config.report.html), now_us=_now_us(), recipes=config.recipes,
                     agent_of=config.agent_of)
    except PatterndError as e:
        return str(e)
    return None


def write_atomically(path: str, text: str) -> None:
    """Write next to ``path`` and rename over it: a reader sees the old page or the new one.
    The page is meant to be shared, so it is readable by all (0644) whatever the umask."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=folder)
    except OSError as e:
        raise PatterndError(f"report {path}: cannot write in {folder} ({e.strerror}); "
                            "give a path in a folder that exists and that this user can write") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            os.fchmod(f.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise PatterndError(f"report {path}: cannot write it ({e.strerror or e}); "
                                "check the space and permissions there") from None
        raise
