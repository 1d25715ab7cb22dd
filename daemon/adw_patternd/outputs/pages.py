"""The live page's pages (`adw-patternd serve`): each one's data, read on one snapshot, and
its HTML. The data of each page is also its JSON under /api/, in the shapes the command
line prints where they overlap (the overview is `report --json`, a pattern `show --json`,
the patterns `patterns --json`, the status `status --json`), read by the same functions,
so that both always say the same. Rendering is the report's: Jinja2 with autoescape on,
SVG charts drawn by the templates from geometry computed here."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..config import Config
from ..core.errors import PatterndError
from ..core.review import STATES
from ..sources import kinds
from ..store import pages as store_pages
from ..store import queries
from ..store.evidence import show, weeks_end
from ..store.ledger import Ledger
from ..store.rows import now_us as _now_us
from ..store.unmatched import unmatched as unmatched_heads
from .html import _ENV, gather, savings_chart, weekly_chart
from .tables import name_agents

AGENTS = kinds.agents()
UNMATCHED_PAGE = 50  # heads in each list of the Unmatched page (?limit=N for more)
PATTERN_COLUMNS = ("pattern_signature", "occurrence_count", "sum_units", "avg_tokens_with_llm", "avg_cost_with_llm",
                   "avg_cost_with_tool", "potential_monthly_savings", "confidence_score", "impact", "first_seen",
                   "last_seen", "review_state")
CLI_SORTS = ("savings", "occurrences", "confidence", "impact")
WORKFLOWS_PAGE = 100
PALETTE = ("#3b6fd8", "#d8853b", "#3ba86b", "#a35bd8", "#d84b6b", "#4bb8c8")
AGENT_COLOURS = dict(zip(AGENTS, PALETTE))  # each agent its colour, in the registry's order


class BadRequest(PatterndError):
    """A filter or sort the page does not know: a 400 page naming it."""


class NotFound(PatterndError):
    """No such pattern, workflow or page: a 404 page."""


@dataclass(frozen=True)
class Query:
    """A page's query string, checked: one value a key."""

    values: dict[str, str]

    def one(self, key: str, choices: tuple[str, ...] | list[str] | None = None) -> str | None:
        value = self.values.get(key) or None
        if value is not None and choices is not None and value not in choices:
            raise BadRequest(f"{key}={value!r} is not one of: {', '.join(choices) or '(none stored)'}")
        return value

    def number(self, key: str, default: int, most: int) -> int:
        text = self.values.get(key)
        if not text:
            return default
        if not text.isdigit() or not 0 <= int(text) <= most:
            raise BadRequest(f"{key}={text!r} is not a whole number from 0 to {most}")
        return int(text)


def _roots(config: Config, agent: str | None, root: str | None) -> tuple[tuple[str, ...], bool] | None:
    """The roots condition of an agent and/or root filter, as queries.window takes it."""
    if root is not None:
        if agent is not None and config.agent_of(root) != agent:
            return (), True  # that root's workflows are another agent's: none
        return (root,), True
    return config.agent_roots(agent) if agent else None


def overview(db, config: Config, host: str | None) -> dict:
    """`report --json` (without its evidence sections), and the weekly spend by agent."""
    data = gather(Ledger(db, config.tool_cost_ratio), now_us=_now_us(), top=0, recipes=config.recipes,
                  agent_of=config.agent_of, host=host)
    end_us = db.snapshot(lambda: weeks_end(db, None, _now_us())[0])
    by_agent: dict[str, list[float]] = {}
    for root, nanos in db.snapshot(lambda: store_pages.weeks_by_root(db, end_us, host)).items():
        sums = by_agent.setdefault(config.agent_of(root), [0.0] * len(nanos))
        for i, n in enumerate(nanos):
            sums[i] += n / 1e9
    data["weeks_by_agent"] = {agent: by_agent[agent] for agent in sorted(by_agent)}
    return data


def patterns(db, config: Config, q: Query, choices: dict[str, list[str]]) -> dict:
    """The Patterns page: `patterns --json`'s rows, by agent, root, host and review state,
    sorted by any column."""
    agent, root = q.one("agent", AGENTS), q.one("root", choices["roots"])
    host, state = q.one("host", choices["hosts"]), q.one("state", (*STATES, "recheck"))
    sort = q.one("sort", (*CLI_SORTS, *PATTERN_COLUMNS)) or "savings"
    order = q.one("order", ("asc", "desc"))
    rows = db.snapshot(lambda: queries.listed(
        db, config.tool_cost_ratio, sort=sort if sort in CLI_SORTS else "savings", state=state,
        roots=_roots(config, agent, root), host=host, now_us=_now_us()))
    if sort not in CLI_SORTS or order == "asc":
        key = {"savings": "potential_monthly_savings", "occurrences": "occurrence_count",
               "confidence": "confidence_score"}.get(sort, sort)
        text = key in ("pattern_signature", "first_seen", "last_seen", "review_state")
        rows = sorted(rows, key=lambda r: (r.get(key) is None, r.get(key) or ("" if text else 0),
                                           r["pattern_signature"]),
                      reverse=(order or ("asc" if text else "desc")) == "desc")
    return {"filters": {"agent": agent, "root": root, "host": host, "state": state, "sort": sort, "order": order},
            "patterns": rows}


def unmatched(db, config: Config, q: Query, choices: dict[str, list[str]]) -> dict:
    """The Unmatched page: `patterns --unmatched --json`, by agent, root and host."""
    agent, root, host = q.one("agent", AGENTS), q.one("root", choices["roots"]), q.one("host", choices["hosts"])
    limit = q.number("limit", UNMATCHED_PAGE, 1000)
    data = db.snapshot(lambda: unmatched_heads(db, limit, roots=_roots(config, agent, root), host=host))
    return {"filters": {"agent": agent, "root": root, "host": host}, **data}


def pattern(db, config: Config, signature: str) -> dict:
    """`show --json` for one pattern."""
    try:
        data = show(db, signature, limit=20, now_us=_now_us(), recipes=config.recipes)
    except PatterndError as e:
        raise NotFound(str(e)) from None
    return name_agents(data, config.agent_of)


def workflows(db, config: Config, q: Query, choices: dict[str, list[str]]) -> dict:
    """The Workflows page: a page of workflows by agent, root, host and status."""
    agent, root = q.one("agent", AGENTS), q.one("root", choices["roots"])
    host, status = q.one("host", choices["hosts"]), q.one("status", choices["statuses"])
    sort = q.one("sort", tuple(store_pages.WORKFLOW_SORTS)) or "start"
    order = q.one("order", ("asc", "desc")) or "desc"
    offset = q.number("offset", 0, 10**9)
    rows, total = db.snapshot(lambda: store_pages.workflows(
        db, roots=_roots(config, agent, root), host=host, status=status, sort=sort, descending=order == "desc",
        limit=WORKFLOWS_PAGE, offset=offset))
    for w in rows:
        w["agent"] = config.agent_of(w["root"])
    return {"filters": {"agent": agent, "root": root, "host": host, "status": status, "sort": sort, "order": order},
            "offset": offset, "total": total, "workflows": rows}


def workflow(db, config: Config, workflow_id: str) -> dict:
    """One workflow: its row, its patterns with their attributed cost, its command lines,
    waits and its agents' runs."""
    found = db.snapshot(lambda: store_pages.workflow(db, workflow_id))
    if found is None:
        raise NotFound(f"no workflow {workflow_id!r} in the database; the Workflows page lists them")
    row = found.pop("row")
    keep = ("workflow_id", "root_name", "host", "adw_id", "status", "start_time", "end_time", "time_source",
            "request", "request_source", "model", "issue_number", "issue_class", "workflow_template",
            "error_message", "duration_seconds", "total_tokens", "updated_at")
    return {**{k: row.get(k) for k in keep}, "agent": config.agent_of(row["root_name"]),
            "spend_usd": int(row["cost_nanos"] or 0) / 1e9, "estimated_usd": int(row["estimated_nanos"] or 0) / 1e9,
            "attributed_usd": int(row["attributed_nanos"] or 0) / 1e9, **found}


# -- HTML -------------------------------------------------------------------------------

_ENV.filters["seg"] = lambda v: quote(str(v), safe="")
_ENV.filters["num"] = lambda v, fmt="{:,}": "-" if v is None else fmt.format(v)


def _link(path: str, filters: dict, **change) -> str:
    values = {k: v for k, v in {**filters, **change}.items() if v not in (None, "")}
    return path + ("?" + urlencode(values) if values else "")


def stacked_chart(weeks: list[dict], by_agent: dict[str, list[float]], width: int = 720,
                  height: int = 220) -> dict:
    """Weekly spend as bars stacked by agent, on the report's weekly chart's axes."""
    chart = weekly_chart(weeks, width, height)
    plot_h = height - 50
    for i, col in enumerate(chart["cols"]):
        y, parts = chart["base"], []
        for agent, spend in by_agent.items():
            h = plot_h * spend[i] / chart["max"] if i < len(spend) else 0.0
            y -= h
            parts.append({"agent": agent, "spend": spend[i] if i < len(spend) else 0.0, "y": y, "h": h,
                          "colour": AGENT_COLOURS.get(agent, "#8a94a6")})
        col["parts"] = parts
    return chart


def render(template: str, **context) -> str:
    """One page's HTML from its template (autoescaped: every text shown is escaped)."""
    return _ENV.get_template(f"serve/{template}.html.j2").render(
        link=_link, savings_chart=savings_chart, stacked_chart=stacked_chart,
        weekly=lambda weeks: weekly_chart(weeks, 560, 180), **context)
