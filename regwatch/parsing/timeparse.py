"""Fast, forgiving timestamp parsing for the formats regwatch reads."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
}
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(Z|z|UTC|[+-]\d{2}:?\d{2})?"
)
_cache: dict[str, datetime] = {}


def _tz(spec: str | None) -> timezone:
    if not spec or spec in ("Z", "z", "UTC"):
        return timezone.utc
    sign = -1 if spec[0] == "-" else 1
    digits = spec[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def parse_rfc3339(text: str) -> datetime | None:
    """RFC 3339 / ISO-8601 with 0-9 fractional digits; zone-less means UTC.

    The UTC time of each distinct second and zone is computed once (cached by the first
    19 characters and the zone); the microseconds are set on it. A zone is whole minutes,
    so converting to UTC never changes the microseconds."""
    m = _RFC3339.match(text)
    if m is None:
        return None
    frac, zone = m.group(7, 8)
    key = (text[:19], zone)
    base = _sec_cache.get(key, _MISSING)
    if base is _MISSING:
        y, mo, d, h, mi, s = m.group(1, 2, 3, 4, 5, 6)
        try:
            base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=_tz(zone)).astimezone(timezone.utc)
        except ValueError:
            base = None
        if len(_sec_cache) >= 4096:
            _sec_cache.clear()
        _sec_cache[key] = base
    if base is None or not frac:
        return base  # type: ignore[return-value]
    us = int(frac[:6].ljust(6, "0"))
    return base.replace(microsecond=us) if us else base  # type: ignore[union-attr]


_MISSING = object()
_sec_cache: dict[tuple[str, str | None], datetime | None] = {}


def parse_clf(text: str) -> datetime | None:
    """Apache/nginx common log time: ``30/Nov/2026:01:35:04 +0000`` (cached per second)."""
    hit = _cache.get(text)
    if hit is not None:
        return hit
    try:
        day, mon, rest = text.split("/", 2)
        year, hh, mm, ss_zone = rest.split(":", 3)
        ss, _, zone = ss_zone.partition(" ")
        dt = datetime(
            int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=_tz(zone or None)
        ).astimezone(timezone.utc)
    except (ValueError, KeyError, IndexError):
        return None
    if len(_cache) > 100_000:
        _cache.clear()
    _cache[text] = dt
    return dt


_GO_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def go_duration_ms(text: str | None) -> float | None:
    """Go duration string (``3.5ms``, ``812µs``, ``1m51.9s``) to milliseconds."""
    if not text:
        return None
    if text.endswith("ms"):
        # the common ``<digits>[.<digits>]ms``: the regex below would find just that one
        # number (it tries ``ms`` before ``m``)
        num = text[:-2]
        if num.isascii() and num.replace(".", "", 1).isdigit() and num[0] != "." and num[-1] != ".":
            return 0.0 + float(num) * 1.0
    total = 0.0
    found = False
    for num, unit in _GO_DUR.findall(text):
        total += float(num) * _UNIT_MS[unit]
        found = True
    return total if found else None
