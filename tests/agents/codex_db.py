"""Read what a database says about a Codex home's sessions, and compare it with the oracle."""

from __future__ import annotations

from .codex_oracle import Oracle


def _query(database: str, sql: str, params=()):
    from helpers import query

    return query(database, sql, params)


def session_rows(database: str, home: str) -> dict[str, tuple[int, int, str]]:
    """workflow id -> (tokens, nano-dollars, status)."""
    rows = _query(database, "SELECT workflow_id, total_tokens, cost_nanos, status FROM workflow_history "
                            "WHERE revision > 0 AND workflow_id LIKE ?", (f"{home}/%",))
    return {w: (int(t or 0), int(n or 0), s) for w, t, n, s in rows}


def command_rows(database: str, workflow_id: str) -> dict[str, tuple[int, int]]:
    """signature -> (calls, attributed nano-dollars) in one workflow."""
    rows = _query(database, "SELECT p.pattern_signature, o.units, o.cost_nanos, o.estimated_nanos "
                            "FROM pattern_occurrences o JOIN operation_patterns p ON p.id = o.pattern_id "
                            "WHERE o.workflow_id = ?", (workflow_id,))
    return {sig: (int(units or 0), int(est if est is not None else cost or 0)) for sig, units, cost, est in rows}


def differences(database: str, oracle: Oracle, home: str) -> list[str]:
    got = session_rows(database, home)
    out = []
    extra = sorted(set(got) - {f"{home}/{sid}" for sid in oracle.sessions})
    out += [f"a session the model never served: {w} {got[w]}" for w in extra]
    for sid, want in oracle.sessions.items():
        wid = f"{home}/{sid}"
        if wid not in got:
            out.append(f"{wid}: missing")
            continue
        tokens, nanos, status = got[wid]
        if (tokens, nanos) != (want.tokens, want.nanos):
            out.append(f"{wid}: tokens/nanos {tokens}/{nanos}, served {want.tokens}/{want.nanos}")
        if status != want.state:
            out.append(f"{wid}: state {status!r}, expected {want.state!r}")
        have = command_rows(database, wid)
        expected = {sig: (c.calls, c.nanos) for sig, c in want.commands.items()}
        if have != expected:
            out.append(f"{wid}: commands (calls, nanos) {have}, served {expected}")
    return out


def wait_equal(dump, want: dict, timeout: float = 15.0) -> None:
    """Until ``dump()`` (the daemon's database) equals ``want`` (a fresh sync's): the daemon
    read the last appends. At the deadline the check lists what differs."""
    from helpers import wait_for

    try:
        wait_for(lambda: dump() == want, timeout=timeout, what="the daemon to catch up with the files")
    except AssertionError:
        pass
