"""Times as the inputs write them: ISO 8601 text (zone optional) or epoch seconds or
milliseconds, parsed to UTC; and back to ISO text and epoch microseconds. Pure: shared by
the readers and by the store's migrations."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_ISO_FIX = re.compile(r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)\s*(Z|[+-]\d\d:?\d\d|UTC)?$", re.I)


def parse_time(value, notes: list[str], key: str) -> datetime | None:
    """ISO 8601 (zone optional, naive read as UTC) or epoch seconds/milliseconds."""
    if value is None or value == "":
        return None
    if type(value) is str and len(value) == 24 and value[10] == "T" and value[23] == "Z":
        try:  # the form every Claude Code entry has (2026-11-02T10:00:00.000Z): no regex needed
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # said below
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
            x = float(value)
            if x > 1e11:  # milliseconds
                x /= 1000
            return datetime.fromtimestamp(x, tz=timezone.utc)
        if isinstance(value, str):
            s = value.strip()
            m = _ISO_FIX.match(s)
            if m:
                zone = m.group(3) or ""
                zone = "+00:00" if zone.upper() in ("Z", "UTC") else zone
                s = f"{m.group(1)}T{m.group(2).replace(',', '.')}{zone}"
            t = datetime.fromisoformat(s)
            return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    notes.append(f"{key} {str(value)[:60]!r} is not an ISO 8601 time (ignored)")
    return None


def iso(t: datetime | None) -> str | None:
    return t.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z") if t else None


def epoch_us(t: datetime | None) -> int | None:
    if t is None:
        return None
    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
