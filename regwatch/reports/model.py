"""The daily capacity report as data: :func:`build_report` reads the store once per section.

Everything the HTML and JSON show is in :class:`Report`; rendering (render.py) adds nothing
but layout, so the JSON is the report's contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import pandas as pd

from regwatch.capacity.assess import (
    GAUGE_THRESHOLDS,
    Assessment,
    assess_path,
    threshold_label,
    usage_series,
)
from regwatch.events import AuthClass, Tally, utc
from regwatch.stores.base import Aggregation, Query, Store

CHART_PAST = timedelta(days=30)
CHART_FUTURE = timedelta(days=30)
TREND_DAYS = 14
GROWTH_DAYS = 7
_CHART_STEP = pd.Timedelta(hours=3)


def _tz(tz: tzinfo | str | None) -> tzinfo:
    from datetime import timezone

    from regwatch.config import parse_tz

    if tz is None:
        return timezone.utc
    if isinstance(tz, str):
        return parse_tz(tz)
    return tz


def day_bounds(day: date, tz: tzinfo | str | None) -> tuple[datetime, datetime]:
    """``[start, end)`` of the calendar ``day`` in zone ``tz``, in UTC (23 or 25 h long on
    the days the clocks change)."""
    z = _tz(tz)
    start = datetime.combine(day, time(0), tzinfo=z)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=z)
    return utc(start), utc(end)


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass(frozen=True)
class PathReport:
    """One storage path: the chart data and where it stands against 85% and 100%."""

    path: str
    capacity_bytes: float | None
    used_bytes: float | None
    status: str
    reason: str
    growth_per_day: float | None
    assessments: tuple[Assessment, ...]
    history: tuple[tuple[datetime, float], ...]  # hourly medians, oldest first
    forecast: tuple[tuple[datetime, float, float, float], ...]  # (time, predicted, lower, upper)

    @property
    def used_percent(self) -> float | None:
        if self.used_bytes is None or not self.capacity_bytes:
            return None
        return 100.0 * self.used_bytes / self.capacity_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "capacity_bytes": self.capacity_bytes,
            "used_bytes": self.used_bytes,
            "used_percent": self.used_percent,
            "status": self.status,
            "reason": self.reason,
            "growth_per_day": self.growth_per_day,
            "thresholds": {threshold_label(a.threshold): a.to_dict() for a in self.assessments},
            "history": [[t.isoformat(), v] for t, v in self.history],
            "forecast": [[t.isoformat(), p, lo, up] for t, p, lo, up in self.forecast],
        }


@dataclass(frozen=True)
class Report:
    """The daily report of ``day`` (a calendar day in ``timezone``)."""

    day: date
    timezone: str
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    generated: datetime
    as_of: datetime  # the forecasts' evaluation time: the day's end, or now if earlier
    totals: dict[str, int]
    storage: tuple[PathReport, ...]
    growth: tuple[dict[str, Any], ...]
    trends: tuple[dict[str, Any], ...]
    pull_failures: tuple[dict[str, Any], ...]
    auth_failures: tuple[dict[str, Any], ...]
    deletes: tuple[dict[str, Any], ...]
    actions: tuple[dict[str, Any], ...]
    events: int  # events of the day (records they stand for)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        """No event and no storage sample on this day."""
        return self.events == 0 and not any(
            self.start <= t < self.end for p in self.storage for t, _ in p.history
        )

    @property
    def headline(self) -> str:
        if self.empty:
            return f"no data for {self.day.isoformat()}"
        parts = []
        for p in self.storage:
            a = next((x for x in p.assessments if x.threshold == 85.0), None)
            if a is not None and a.ok:
                d = a.days_to("lower")
                parts.append(f"{p.path}: 85% " + (f"in {d:.1f} d at the earliest" if d is not None else "not within 90 d"))
            elif a is not None:
                parts.append(f"{p.path}: {a.status}")
        return "; ".join(parts) or f"{self.events:,} events, no storage samples"

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "timezone": self.timezone,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "generated": self.generated.isoformat(),
            "as_of": self.as_of.isoformat(),
            "empty": self.empty,
            "headline": self.headline,
            "events": self.events,
            "totals": self.totals,
            "storage": [p.to_dict() for p in self.storage],
            "growth": list(self.growth),
            "trends": list(self.trends),
            "pull_failures": list(self.pull_failures),
            "auth_failures": list(self.auth_failures),
            "deletes": list(self.deletes),
            "actions": list(self.actions),
            "notes": list(self.notes),
        }


def _path_report(path: str, frame: pd.DataFrame, as_of: datetime) -> PathReport:
    from regwatch.forecast import forecast

    used, cap = usage_series(frame)
    used = used.dropna()
    used = used[used.index <= pd.Timestamp(as_of)]
    hourly = used.resample("1h").median().dropna() if len(used) else used
    hist = tuple((utc(t.to_pydatetime()), float(v)) for t, v in hourly[hourly.index >= pd.Timestamp(as_of - CHART_PAST)].items())
    series = used.copy()
    series.attrs["now"] = pd.Timestamp(as_of)
    fc = forecast(series, pd.Timedelta(CHART_FUTURE))
    points: list[tuple[datetime, float, float, float]] = []
    if len(fc.predicted):
        step = fc.predicted.resample(_CHART_STEP).first().index
        for t in step:
            p, lo, up = fc.predicted.get(t), fc.lower.get(t), fc.upper.get(t)
            if p is None or lo is None or up is None:
                continue
            points.append((utc(t.to_pydatetime()), float(p), float(lo), float(up)))
    assessments = tuple(assess_path(path, frame[frame.index <= pd.Timestamp(as_of)], GAUGE_THRESHOLDS, as_of, timedelta(days=90)))
    return PathReport(
        path=path,
        capacity_bytes=cap,
        used_bytes=float(used.iloc[-1]) if len(used) else None,
        status=fc.status,
        reason=fc.reason,
        growth_per_day=_finite(fc.growth_per_day),
        assessments=assessments,
        history=hist,
        forecast=tuple(points),
    )


def storage_reports(store: Store, as_of: datetime, notes: list[str]) -> tuple[PathReport, ...]:
    """Usage, forecast band and days to 85% and 100% of every sampled path as of ``as_of``
    (the report's and the dashboard's disk section); problems go to ``notes``."""
    try:
        from regwatch.storage import history
    except ImportError:
        notes.append("storage history is not available in this installation (regwatch.storage)")
        return ()
    hist = history(store, since=as_of - timedelta(days=90), until=as_of + timedelta(seconds=1))
    return tuple(_path_report(p, hist[p], as_of) for p in sorted(hist))


def _counts(store: Store, since: datetime, until: datetime) -> dict[str, int]:
    from regwatch.summary import COUNT_KEYS, summarize

    s = summarize(store, Query(since=since, until=until))
    return {k: int(s[k]) for k in COUNT_KEYS}


def _trends(store: Store, end: datetime, tz: tzinfo, day: date) -> list[dict[str, Any]]:
    out = []
    for i in range(TREND_DAYS - 1, -1, -1):
        d = day - timedelta(days=i)
        s, e = day_bounds(d, tz)
        rows = store.aggregate(Aggregation(Query(since=s, until=e), ("tally", "auth")))
        c = {"pulls": 0, "pulls_failed": 0, "auth_failures": 0, "anonymous_denials": 0}
        for r in rows:
            n = int(r["count"])
            if r["tally"] == Tally.PULL.value:
                c["pulls"] += n
            elif r["tally"] == Tally.PULL_FAILED.value:
                c["pulls_failed"] += n
            if r["auth"] == AuthClass.AUTH_FAILURE.value:
                c["auth_failures"] += n
            elif r["auth"] == AuthClass.ANONYMOUS_DENIAL.value:
                c["anonymous_denials"] += n
        tried = c["pulls"] + c["pulls_failed"]
        out.append({"day": d.isoformat(), **c, "pull_failure_rate": (c["pulls_failed"] / tried) if tried else None})
    return out


def repository_growth(store: Store, end: datetime, day_start: datetime, top: int) -> list[dict[str, Any]]:
    """The ``top`` repositories by bytes pushed over the last GROWTH_DAYS before ``end``,
    with the previous period's and the day's (from ``day_start``) for comparison."""
    since = end - timedelta(days=GROWTH_DAYS)
    week = store.aggregate(Aggregation(Query(since=since, until=end, tallies=frozenset({Tally.BLOB_UPLOAD.value, Tally.PUSH.value})), ("repository", "tally")))
    prev = store.aggregate(Aggregation(Query(since=since - timedelta(days=GROWTH_DAYS), until=since, tallies=frozenset({Tally.BLOB_UPLOAD.value})), ("repository",)))
    today = store.aggregate(Aggregation(Query(since=day_start, until=end, tallies=frozenset({Tally.BLOB_UPLOAD.value})), ("repository",)))
    repos: dict[str, dict[str, Any]] = {}
    for r in week:
        if not r["repository"]:
            continue
        d = repos.setdefault(r["repository"], {"repository": r["repository"], "bytes_7d": 0, "pushes_7d": 0, "bytes_day": 0, "bytes_prev_7d": 0})
        if r["tally"] == Tally.BLOB_UPLOAD.value:
            d["bytes_7d"] += int(r["bytes"] or 0)
        else:
            d["pushes_7d"] += int(r["count"])
    for rows, key in ((prev, "bytes_prev_7d"), (today, "bytes_day")):
        for r in rows:
            if r["repository"] in repos:
                repos[r["repository"]][key] = int(r["bytes"] or 0)
    ranked = sorted((d for d in repos.values() if d["bytes_7d"] > 0), key=lambda d: (-d["bytes_7d"], d["repository"]))
    return ranked[:top]


def _top(store: Store, q: Query, group: tuple[str, ...], top: int) -> list[dict[str, Any]]:
    rows = store.aggregate(Aggregation(q, group))
    rows.sort(key=lambda r: (-int(r["count"]), tuple(str(r.get(g)) for g in group)))
    return [{**{g: r.get(g) for g in group}, "count": int(r["count"])} for r in rows[:top]]


def _actions(store: Store, start: datetime, end: datetime, notes: list[str]) -> list[dict[str, Any]]:
    from regwatch.capacity.evaluate import recorded_outcomes

    if not hasattr(store, "get_records"):
        notes.append("this store keeps no records: capacity actions cannot be listed")
        return []
    out = []
    for o in recorded_outcomes(store, since=start, until=end):
        d = o.to_dict()
        d["taken"] = o.outcome not in ("dry_run",) and not o.dry_run
        out.append(d)
    return out


def build_report(store: Store, day: date, tz: tzinfo | str | None, now: datetime, *, top: int = 10) -> Report:
    """The report of calendar ``day`` in zone ``tz``. Forecasts are made as of the end of
    the day (or ``now``, when earlier), so a report made again later shows the same
    figures. Raises StoreError; a day without data gives a report whose ``empty`` is True.
    """
    from regwatch.sources.webhooks import attributed_deletes

    z = _tz(tz)
    now = utc(now)
    start, end = day_bounds(day, z)
    as_of = min(end, now)
    notes: list[str] = []
    totals = _counts(store, start, end)
    day_rows = store.aggregate(Aggregation(Query(since=start, until=end), ()))
    events = int(sum(int(r["count"]) for r in day_rows))
    storage = storage_reports(store, as_of, notes)
    deletes = attributed_deletes(store, Query(since=start, until=end))
    for d in deletes:
        d.pop("raw", None)  # the log line itself stays in the store; the report shows the fields
    return Report(
        day=day,
        timezone=str(getattr(z, "key", None) or z),
        start=start,
        end=end,
        generated=now,
        as_of=as_of,
        totals=totals,
        storage=storage,
        growth=tuple(repository_growth(store, end, start, top)),
        trends=tuple(_trends(store, end, z, day)),
        pull_failures=tuple(_top(store, Query(since=start, until=end, tallies=frozenset({Tally.PULL_FAILED.value})), ("repository", "status", "error_code"), top)),
        auth_failures=tuple(_top(store, Query(since=start, until=end, auth=frozenset({AuthClass.AUTH_FAILURE.value})), ("user", "client_ip"), top)),
        deletes=tuple(deletes),
        actions=tuple(_actions(store, start, end, notes)),
        events=events,
        notes=tuple(notes),
    )
