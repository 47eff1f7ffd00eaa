"""Times on the command line: ISO-8601, or relative to now (``90s``, ``15m``, ``12h``, ``7d``, ``2w``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from regwatch.errors import BadTime

_REL = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime) -> datetime:
    """A tz-aware UTC instant; zone-less ISO times are UTC. Raises BadTime."""
    s = text.strip()
    m = _REL.match(s)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if s.lower() == "now":
        return now
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadTime(
            f"cannot read time {text!r}; use ISO-8601 like 2024-05-01 or 2024-05-01T12:00:00Z, "
            "or a relative age like 90m, 12h, 7d, 2w"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def parse_duration(text: str) -> timedelta:
    """A span like ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` (or plain seconds). Raises BadTime."""
    s = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return timedelta(seconds=float(s))
    m = _REL.match(s)
    if not m:
        raise BadTime(f"cannot read duration {text!r}; use a span like 90s, 15m, 12h, 7d or 2w")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
