"""command_unmatched rows: what each workflow's shell commands that match no layer-4 row
cost, by head (`cargo bench`, `npm run e2e`, `cat`). No pattern and no statistic: a list a
person reads to see what else agents pay for, and to write a `command_rules` entry for it."""

from __future__ import annotations

from ..core.commands import is_read_only
from ..core.model import Workflow
from .batch import BatchWrites
from .db import Db
from .queries import HOST_IS, _of_roots

COLUMNS = ("head", "read_only", "calls", "cost_nanos", "tokens")


def unmatched_rows(wf: Workflow) -> list[tuple[str, int, int, int, int]]:
    """(head, read_only, calls, attributed nano-dollars, tokens) of each head, over the
    workflow's agents, by head."""
    sums: dict[str, list[int]] = {}
    for agent in wf.agents:
        for part in agent.unmatched:
            s = sums.setdefault(part.signature, [0, 0, 0])
            s[0], s[1], s[2] = s[0] + part.calls, s[1] + part.cost_nanos, s[2] + part.tokens
    return [(head, int(is_read_only(head)), *s) for head, s in sorted(sums.items())]


def store_unmatched(db: Db, wf: Workflow, writes: BatchWrites, *, replace: bool) -> None:
    """Make the workflow's rows exactly its unmatched heads (``replace``: it may have had some)."""
    if replace:
        db.execute("DELETE FROM command_unmatched WHERE workflow_id = ?", (wf.workflow_id,))
    writes.add("command_unmatched", ("workflow_id", *COLUMNS),
               [(wf.workflow_id, *row) for row in unmatched_rows(wf)])


def same_unmatched(db: Db, wf: Workflow) -> bool:
    """Whether the stored rows are the workflow's unmatched heads already."""
    stored = sorted((r[0], *(int(v) for v in r[1:])) for r in db.all(
        f"SELECT {', '.join(COLUMNS)} FROM command_unmatched WHERE workflow_id = ?", (wf.workflow_id,)))
    return stored == unmatched_rows(wf)


def unmatched(db: Db, limit: int | None = 20, roots: tuple[tuple[str, ...], bool] | None = None,
              host: str | None = None) -> dict:
    """The heads with the most attributed cost over the stored workflows (of these roots, of
    this host): {"commands": [...], "read_only": [...]}, each row a head ("" for the rarest
    heads of a file, gathered), its calls, attributed dollars and tokens, and its workflows;
    read-only exploration apart. Also the totals of each list over all heads."""
    only, names = _of_roots(roots)
    if host is not None:
        only, names = only + f"AND w.{HOST_IS} ", (*names, host)
    rows = db.all(
        "SELECT u.head, MAX(u.read_only), SUM(u.calls), SUM(u.cost_nanos), SUM(u.tokens), COUNT(*) "
        "FROM command_unmatched u JOIN workflow_history w ON w.workflow_id = u.workflow_id AND w.revision > 0 "
        f"WHERE 1 = 1 {only}GROUP BY u.head", names)
    out: dict = {"commands": [], "read_only": [], "totals": {}}
    for head, read_only, calls, nanos, tokens, workflows in rows:
        out["read_only" if read_only else "commands"].append({
            "head": head, "calls": int(calls), "cost_nanos": int(nanos), "cost_usd": int(nanos) / 1e9,
            "tokens": int(tokens), "workflows": int(workflows)})
    for key in ("commands", "read_only"):
        listed = sorted(out[key], key=lambda r: (-r["cost_nanos"], r["head"]))
        out["totals"][key] = {"heads": len(listed), "calls": sum(r["calls"] for r in listed),
                              "cost_usd": sum(r["cost_nanos"] for r in listed) / 1e9}
        out[key] = listed[:limit] if limit else listed
    return out
