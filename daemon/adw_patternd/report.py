"""The `patterns` report: a table for people, JSON or CSV for programs."""

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
    columns = COLUMNS + ((("trend", "trend 30d", "{}"),) if "trend" in rows[0] else ())
    table = [[title for _, title, _ in columns]]
    table += [[_cell(estimated_share(r) if key == "estimated_share" else trend_text(r) if key == "trend"
                     else r.get(key), fmt) for key, _, fmt in columns]
              for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = []
    for n, row in enumerate(table):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    total = sum(float(r.get("potential_monthly_savings") or 0) for r in rows)
    lines.append(f"\n{len(rows)} pattern(s); potential savings ${total:,.2f} per month "
                 "if each were done by a tool at tool_cost_ratio of the LLM cost.\n"
                 "runs/calls: the agent runs or Bash calls behind the costs (1 per workflow for a whole-workflow "
                 "pattern). estimated: the share priced from message usage, a lower bound, not a reported cost.")
    return "\n".join(lines)


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
