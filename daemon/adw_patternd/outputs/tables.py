"""The `patterns` report and `show`: tables for people, JSON or CSV for programs."""

from __future__ import annotations

import csv
import io
import json

COLUMNS = (
    ("pattern_signature", "signature", "{}"),
    ("occurrence_count", "occurrences", "{}"),
    ("sum_units", "runs/calls", "{:,}"),
    ("avg_tokens_with_llm", "avg tokens", "{:,}"),
    ("avg_cost_with_llm", "avg cost", "${:.4f}"),
    ("avg_cost_with_tool", "tool cost", "${:.4f}"),
    ("potential_monthly_savings", "savings/month", "${:,.2f}"),
    ("confidence_score", "confidence", "{:.0f}"),
    ("estimated_share", "estimated", "{:.0%}"),
    ("first_seen", "first seen", "{}"),
    ("last_seen", "last seen", "{}"),
)


def review_text(row: dict) -> str:
    state = row.get("review_state", "pending")
    return f"{state}!" if row.get("recheck") else state


def _cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-":
        return value[:10]  # a date is enough in a table
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def estimated_share(row: dict) -> float:
    """The part of a pattern's cost that is estimated from message usage (unfinished runs,
    Bash calls' shares) rather than reported by result lines."""
    total = int(row.get("sum_cost_nanos") or 0)
    return int(row.get("sum_estimated_nanos") or 0) / total if total else 0.0


def trend_text(row: dict) -> str:
    """Spend in the last 30 days against the 30 before: +25%, -40%, new, or -."""
    if row.get("trend") is not None:
        return f"{row['trend']:+.0%}"
    return "new" if row.get("spend_last_30d_usd") else "-"


def as_table(rows: list[dict]) -> str:
    if not rows:
        return "No patterns yet. Run `adw-patternd sync` first, or check the roots in config.yaml."
    columns = (COLUMNS + ((("trend", "trend 30d", "{}"),) if "trend" in rows[0] else ())
               + ((("review_state", "review", "{}"),) if "review_state" in rows[0] else ()))
    computed = {"estimated_share": estimated_share, "trend": trend_text, "review_state": review_text}
    table = [[title for _, title, _ in columns]]
    table += [[_cell(computed[key](r) if key in computed else r.get(key), fmt) for key, _, fmt in columns]
              for r in rows]
    lines = _aligned(table)
    total = sum(float(r.get("potential_monthly_savings") or 0) for r in rows)
    lines.append(f"\n{len(rows)} pattern(s); potential savings ${total:,.2f} per month "
                 "if each were done by a tool at tool_cost_ratio of the LLM cost.\n"
                 "runs/calls: the agent runs or Bash calls behind the costs (1 per workflow for a whole-workflow "
                 "pattern). estimated: the share priced from message usage, a lower bound, not a reported cost.")
    if any(r.get("recheck") for r in rows):
        lines.append("review !: decided, but the numbers moved a lot since (`show SIGNATURE` says how; "
                     "`patterns --status recheck` lists them).")
    return "\n".join(lines)


AUTOMATED_COLUMNS = (
    ("pattern_signature", "signature", "{}"),
    ("automated_on", "automated on", "{}"),
    ("window_before_days", "days before", "{:.1f}"),
    ("spend_per_workflow_before_usd", "per workflow before", "${:.4f}"),
    ("window_since_days", "days since", "{:.1f}"),
    ("spend_per_workflow_since_usd", "per workflow since", "${:.4f}"),
    ("realized_savings_usd_month", "realized/month", "${:,.2f}"),
    ("predicted_savings_usd_month", "predicted/month", "${:,.2f}"),
    ("realized_over_predicted", "realized/predicted", "{:.0%}"),
    ("regressions", "regressions", "{}"),
)


def automated_table(rows: list[dict]) -> str:
    """`patterns --status automated`: what each automation saved since, against its prediction."""
    if not rows:
        return "No automated patterns. Record one with `adw-patternd review SIGNATURE automated --on YYYY-MM-DD`."
    table = [[title for _, title, _ in AUTOMATED_COLUMNS] + [""]]
    for r in rows:
        cells = [_cell(r.get(key), fmt) for key, _, fmt in AUTOMATED_COLUMNS]
        cells[1] = r["automated_on"]  # the whole day: it is the decision
        table.append(cells + ["too early to tell" if r.get("too_early") else ""])
    lines = _aligned(table, left=(0, len(table[0]) - 1))
    lines.append("\nrealized/month = (spend on the signature per workflow started, before - since) x workflows "
                 "started a month since; predicted: the savings when it was automated. Windows: up to 30 days on "
                 "each side; under 7 days it is too early to tell. regressions: workflows since the day in which an "
                 "agent still did it (`show SIGNATURE` lists them).")
    return "\n".join(lines)


UNMATCHED_COLUMNS = (
    ("head", "command", "{}"),
    ("calls", "calls", "{:,}"),
    ("cost_usd", "attributed cost", "${:,.4f}"),
    ("tokens", "tokens", "{:,}"),
    ("workflows", "workflows", "{:,}"),
)
OTHER_HEADS = "(other commands)"  # the "" head: a file's rarest heads, gathered


def _unmatched_block(rows: list[dict], total: dict, title: str) -> list[str]:
    if not rows:
        return [f"{title}: none."]
    table = [[name for _, name, _ in UNMATCHED_COLUMNS]]
    table += [[(r["head"] or OTHER_HEADS) if key == "head" else _cell(r.get(key), fmt)
               for key, _, fmt in UNMATCHED_COLUMNS] for r in rows]
    more = f", the top {len(rows)} shown" if total["heads"] > len(rows) else ""
    return [f"{title} ({total['heads']} command(s), {total['calls']:,} calls, ${total['cost_usd']:,.2f}{more}):",
            *_aligned(table)]


def unmatched_table(data: dict) -> str:
    """`patterns --unmatched`: the shell commands that match no command row, by what their
    calls' shares cost; read-only exploration apart."""
    if not data["commands"] and not data["read_only"]:
        return "No unmatched shell commands yet. Run `adw-patternd sync` first, or check the roots in config.yaml."
    lines = _unmatched_block(data["commands"], data["totals"]["commands"], "Commands that match no rule")
    lines += [""] + _unmatched_block(data["read_only"], data["totals"]["read_only"],
                                     "Read-only exploration, how agents read code, no tool replaces it")
    lines.append("\nattributed cost: each call's 1/k share of its response (k: its tool calls), as layer 4 "
                 "gives a signature; a lower bound. A command worth a tool: add a `command_rules` entry in "
                 "config.yaml (`starts: [cargo bench]`, `signature: bench:cargo:all`).")
    return "\n".join(lines)


def _aligned(table: list[list[str]], left: tuple[int, ...] = (0,)) -> list[str]:
    """A header row and rows as aligned text columns (numbers right, ``left`` columns left)."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for n, row in enumerate(table):
        cells = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths).rstrip())
    return lines


def as_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, default=str)


def csv_safe(value):
    """A text cell that a spreadsheet would run as a formula is prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def as_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader()
    w.writerows({k: csv_safe(v) for k, v in r.items()} for r in rows)
    return out.getvalue()


def name_agents(section: dict, agent_of) -> dict:
    """Each workflow of a `show` section with its agent (``agent_of``: root name -> agent)."""
    if agent_of is not None:
        for w in section["workflows"]:
            w["agent"] = agent_of(w["root"])
    return section


def show_text(d: dict) -> str:
    """`show`: one pattern's evidence, for a person."""
    st, conf, review = d["statistics"], d["confidence"], d["review"]
    lines = [
        f"{d['pattern_signature']}  ({d['pattern_type']}; review: {review['state']})",
        f"  occurrences {st['occurrence_count']} (runs/calls {st['runs_or_calls']:,}), attributed "
        f"${st['attributed_usd']:,.4f}, of which ${st['estimated_usd']:,.4f} estimated",
        f"  avg {st['avg_tokens_with_llm']:,} tokens, ${st['avg_cost_with_llm']:.4f} with the LLM; "
        f"${st['avg_cost_with_tool']:.4f} with a tool; savings ${st['potential_monthly_savings']:,.2f}/month",
        f"  confidence {conf['score']:.0f} = frequency {conf['frequency']}/40 + consistency "
        f"{conf['consistency']}/30 + success {conf['success']}/30",
        f"  seen {_cell(st['first_seen'], '{}')} to {_cell(st['last_seen'], '{}')}",
    ]
    if review["recheck"]:
        lines.append(f"  another look: {review['recheck']}")
    if d.get("recipe"):
        lines.append(f"  how to automate it: {d['recipe']}")
    if d.get("automation"):
        lines += automation_text(d["automation"], d["regressions"])
    lines.append(f"\nworkflows, newest first ({d['workflows_shown']} of {st['occurrence_count']}):")
    for w in d["workflows"]:
        when = f"{w['start_time'] or '-'} ({w['time_source'] or '-'})"
        agent = f"{w['agent']}  " if w.get("agent") else ""
        lines.append(f"  {w['workflow_id']}  {agent}{when}  {w['status']}  ${w['attributed_usd']:,.4f} "
                     f"in {w['units']} {_units(w['layer'])}  {w['request'] or '-'}")
    for key, title in (("agents", "agents (runs for a role pattern, Bash calls for a command pattern; workflows)"),
                       ("command_lines", "command lines (calls, workflows)")):
        if d[key]:
            lines.append(f"\n{title}:")
            lines += [f"  {e['count']:>6,} {e['workflows']:>6,}  {e['item'] or '(other command lines)'}"
                      for e in d[key]]
    if d["wall_time"]:
        wt = d["wall_time"]
        lines.append(f"\ntime agents waited on its Bash calls (from the session store: {wt['timed_calls']:,} timed "
                     f"call(s) in {wt['workflows']:,} workflow(s)): median {'~' if wt.get('median_estimated') else ''}"
                     f"{wt['median_s']:,.1f} s, "
                     f"total {wt['total_s']:,.1f} s")
    if d["mentions_count"]:
        lines.append(f"\nmentioned without being done ({d['mentions_count']} workflow(s): their request, error or "
                     "template names it, no agent or command did it; not counted):")
        lines += [f"  {m['workflow_id']}  {m['start_time'] or '-'}  {m['request'] or '-'} ({m['request_source'] or '-'})"
                  for m in d["mentions"]]
    lines.append(f"\n12 weeks to the week of {d['weeks_end']}, that of {d['weeks_end_from']} "
                 "(week of, workflows, attributed spend):")
    lines += [f"  {w['week']}  {w['workflows']:>5}  ${w['spend_usd']:,.4f}" for w in d["weeks"]]
    lines.append("\nreview trail:" if review["history"] else "\nreview trail: none (pending)")
    for r in review["history"]:
        note = f": {r['note']}" if r["note"] else ""
        lines.append(f"  {r['at']}  {r['state']} by {r['by']} at {r['occurrences_then']} occurrences, "
                     f"${r['savings_then']:,.2f}/month{note}")
    return "\n".join(lines)


def _usd(value, fmt: str = "${:,.4f}") -> str:
    return "-" if value is None else fmt.format(value)


def automation_text(a: dict, regressions: list[dict]) -> list[str]:
    """show's section for an automated pattern: before and since, realized against predicted."""
    early = " (too early to tell: a window is under 7 days)" if a["too_early"] else ""
    ratio = f", {a['realized_over_predicted']:.0%} of it" if a["realized_over_predicted"] is not None else ""
    lines = [f"\nautomated on {a['automated_on']}{early}:",
             f"  before: {_usd(a['spend_per_workflow_before_usd'])} per workflow over {a['workflows_before']} "
             f"workflow(s) in {a['window_before_days']:.1f} days",
             f"  since:  {_usd(a['spend_per_workflow_since_usd'])} per workflow over {a['workflows_since']} "
             f"workflow(s) in {a['window_since_days']:.1f} days",
             f"  realized {_usd(a['realized_savings_usd_month'], '${:,.2f}')}/month; predicted "
             f"{_usd(a['predicted_savings_usd_month'], '${:,.2f}')}/month when automated{ratio}",
             f"  regressions ({a['regressions']}: an agent still did it after {a['automated_on']}):"
             if regressions else "  regressions: none"]
    if a.get("mtime_dated"):
        lines.insert(4, f"  {a['mtime_dated']} of these workflows are dated by file mtimes (no recorded time): they "
                        "are put before or after the day by that guess")
    for r in regressions:
        done = ", ".join(r["agents"] + r["command_lines"]) or "-"
        lines.append(f"    {r['workflow_id']}  {r['start_time'] or '-'} ({r['time_source'] or '-'})  "
                     f"${r['attributed_usd']:,.4f}  {done}")
    return lines


def _units(layer: str) -> str:
    return "workflow" if layer == "workflow" else "run(s)" if layer == "agent" else "call(s)"
