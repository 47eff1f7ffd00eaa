"""Which events the traffic counters count: live ones, not backfill (docs/metrics.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["LIVE_GRACE", "is_live"]

# lines written just before the service started, and clock skew between the registry's
# host and regwatch's, still count as live
LIVE_GRACE = timedelta(minutes=5)


def is_live(timestamp: datetime, started: datetime, grace: timedelta = LIVE_GRACE) -> bool:
    """True when an event at ``timestamp`` (tz-aware) counts in the traffic counters of a
    service that started at ``started``: at or after ``started - grace``. Older events are
    backfill: stored and summarised, not counted. Raises TypeError for a naive time."""
    return timestamp >= started - grace
