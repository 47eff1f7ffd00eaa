"""What the operator dashboard shows, as plain functions over a Store.

Every page of the Streamlit dashboard (regwatch/dashboard_app/) is a few lines over these
functions, so the numbers it shows are the library's numbers: the KPIs are
:func:`regwatch.summary.summarize`, the DELETE audit is
:func:`regwatch.sources.webhooks.attributed_deletes`, disk and forecast come from the
daily report's model, retention candidates from :mod:`regwatch.capacity.retention`.
Nothing here imports Streamlit, reads the wall clock or builds SQL/DSL: the clock is the
``now`` argument, and the stores answer :class:`~regwatch.stores.base.Query` and
:class:`~regwatch.stores.base.Aggregation` only.

Log content is data: every text field of a row handed to the dashboard goes through
:func:`inert` (secrets redacted, ANSI and other control characters removed), so what is
shown and what is exported as CSV are the same, harmless strings.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

from regwatch.errors import ConfigError, StoreError
from regwatch.events import Action, AuthClass, Outcome, Tally, utc
from regwatch.redact import redact
from regwatch.stores.base import Aggregation, Query, Store

_US = timedelta(microseconds=1)

# -- inert text ----------------------------------------------------------------------
# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-byte escapes, then any
# remaining C0/C1 control character except tab and newline
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences and control characters (tab and newline stay)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def inert(value: Any) -> Any:
    """A row value made safe to show: strings are redacted and lose their escape
    sequences; other values pass unchanged. The dashboard renders the result as text
    (st.code, st.dataframe), never as markdown or HTML."""
    if isinstance(value, str):
        return strip_ansi(redact(value))
    return value


def inert_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: inert(v) for k, v in row.items()}


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str] | None = None) -> bytes:
    """``rows`` as UTF-8 CSV with a header (``columns``, default: the first row's keys);
    None is an empty cell. What the dashboard's download buttons export."""
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue().encode("utf-8")


# -- time ranges ---------------------------------------------------------------------
#: the time ranges the dashboard offers: label → length (None: all the data)
RANGES: dict[str, timedelta | None] = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "All data": None,
}


@dataclass(frozen=True)
class TimeRange:
    """``[since, until)`` in UTC, with the label it was chosen by."""

    since: datetime
    until: datetime
    label: str

    @property
    def minutes(self) -> float:
        return max((self.until - self.since).total_seconds() / 60.0, 1.0 / 60.0)


def event_bounds(store: Store) -> tuple[datetime, datetime] | None:
    """The oldest and newest event times of the store, or None when it holds no event.
    Raises StoreError."""
    first = store.search(Query(limit=1))
    if not first:
        return None
    last = store.search(Query(limit=1, newest_first=True))
    return first[0].timestamp, last[0].timestamp


def time_range(label: str, now: datetime, bounds: tuple[datetime, datetime] | None) -> TimeRange:
    """The range ``label`` (a key of :data:`RANGES`) means at ``now``; "All data" spans the
    stored events (``bounds``). Raises ConfigError for an unknown label."""
    if label not in RANGES:
        raise ConfigError(f"unknown time range {label!r}; choose one of {list(RANGES)}")
    span = RANGES[label]
    now = utc(now)
    if span is None:
        if bounds is None:
            return TimeRange(now - timedelta(days=1), now, label)
        return TimeRange(bounds[0], bounds[1] + _US, label)
    return TimeRange(now - span, now, label)


# -- overview ------------------------------------------------------------------------
def kpis(store: Store, since: datetime, until: datetime) -> dict[str, Any]:
    """The Overview's figures over ``[since, until)``: the counts of
    :func:`regwatch.summary.summarize` plus the pull failure ratio (failed / all manifest
    pulls, None without pulls), auth failures per minute and the number of records.
    Raises StoreError."""
    from regwatch.summary import COUNT_KEYS, summarize

    s = summarize(store, Query(since=since, until=until))
    out: dict[str, Any] = {k: int(s[k]) for k in COUNT_KEYS}
    tried = out["pulls"] + out["pulls_failed"]
    out["pull_failure_ratio"] = out["pulls_failed"] / tried if tried else None
    minutes = max((until - since).total_seconds() / 60.0, 1.0 / 60.0)
    out["auth_failures_per_minute"] = out["auth_failures"] / minutes
    rows = store.aggregate(Aggregation(Query(since=since, until=until), ()))
    out["events"] = int(sum(int(r["count"]) for r in rows))
    out["repositories"] = len(s["repositories"])
    return out


_STEPS = tuple(
    timedelta(seconds=s)
    for s in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400,
              30 * 86400, 91 * 86400, 365 * 86400)
)


def bucket_width(since: datetime, until: datetime, buckets: int = 24) -> timedelta:
    """The smallest round width (1 min … 1 year) that cuts ``[since, until)`` into at
    most ``buckets`` pieces (more for ranges beyond years)."""
    span = until - since
    for step in _STEPS:
        if span / step <= buckets:
            return step
    return _STEPS[-1] * math.ceil(span / (_STEPS[-1] * buckets))


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    n = (t - epoch) // step
    return epoch + n * step


def trend(store: Store, since: datetime, until: datetime, buckets: int = 24) -> list[dict[str, Any]]:
    """Counts per time bucket over ``[since, until)`` (buckets aligned to round times, the
    first and last clipped to the range): pulls, failed pulls, pushes, deletes, auth
    failures, anonymous denials and bytes pulled and pushed. One aggregation per bucket;
    the embedded store answers whole days from its rollup. Raises StoreError."""
    step = bucket_width(since, until, buckets)
    out: list[dict[str, Any]] = []
    start = _floor(since, step)
    while start < until:
        lo, hi = max(start, since), min(start + step, until)
        rows = store.aggregate(Aggregation(Query(since=lo, until=hi), ("tally", "auth")))
        out.append({"time": lo, **_tally_counts(rows)})
        start += step
    return out


def _tally_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    c = {"pulls": 0, "pulls_failed": 0, "pushes": 0, "deletes": 0, "auth_failures": 0,
         "anonymous_denials": 0, "bytes_pulled": 0, "bytes_pushed": 0}
    for r in rows:
        n, t, a = int(r["count"]), r["tally"], r["auth"]
        if t == Tally.PULL.value:
            c["pulls"] += n
        elif t == Tally.PULL_FAILED.value:
            c["pulls_failed"] += n
        elif t == Tally.PUSH.value:
            c["pushes"] += n
        elif t == Tally.DELETE.value:
            c["deletes"] += n
        elif t == Tally.BLOB_PULL.value:
            c["bytes_pulled"] += int(r["bytes"] or 0)
        elif t == Tally.BLOB_UPLOAD.value:
            c["bytes_pushed"] += int(r["bytes"] or 0)
        if a == AuthClass.AUTH_FAILURE.value:
            c["auth_failures"] += n
        elif a == AuthClass.ANONYMOUS_DENIAL.value:
            c["anonymous_denials"] += n
    return c


def disk(store: Store, now: datetime) -> tuple[Any, ...]:
    """Each sampled storage path as the daily report sees it at ``now``
    (:class:`regwatch.reports.model.PathReport`: used and capacity bytes, the hourly
    history, the forecast band, and the 85% and 100% assessments with days to each).
    Empty when no storage sample was recorded. Raises StoreError."""
    from regwatch.reports.model import storage_reports  # the report's own reading, not a copy of it

    notes: list[str] = []
    return storage_reports(store, utc(now), notes)


def disk_rows(paths: tuple[Any, ...]) -> list[dict[str, Any]]:
    """One row per path and threshold (85 and 100): used %, days to the crossing and its
    earliest and latest plausible day, or the forecaster's status when it cannot say."""
    out = []
    for p in paths:
        for a in p.assessments:
            out.append({
                "path": p.path,
                "used_percent": None if p.used_percent is None else round(p.used_percent, 2),
                "threshold": f"{a.threshold:g}%",
                "status": a.status,
                "days_to": _days(a.days_to("eta")) if a.ok else None,
                "earliest_days": _days(a.days_to("lower")) if a.ok else None,
                "latest_days": _days(a.days_to("upper")) if a.ok else None,
                "growth_per_day_bytes": None if p.growth_per_day is None else round(p.growth_per_day),
                "reason": a.reason,
            })
    return out


def _days(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


# -- alerts that would fire now --------------------------------------------------------
#: the thresholds of alert_rules/regwatch.rules.yml, evaluated here from the library's
#: numbers (tests/dashboard/test_insights.py checks each against the rule's expression)
PULL_FAILURE_RATIO = 0.05
PULL_MIN_VOLUME = 20
AUTH_FAILURES_PER_MINUTE = 10.0
STORAGE_HIGH = 0.85
STORAGE_FULL = 0.95
FILLING_UP_DAYS = 7
LAG_SECONDS = 600
NO_EVENTS_SECONDS = 3600
PARSE_FAILURE_RATIO = 0.05
PARSE_MIN_LINES = 100
PARSE_FAILURE_REASONS = frozenset({"unparsable", "bad_field", "binary", "invalid_utf8", "too_long", "truncated"})
FIRING, OK, UNKNOWN = "firing", "ok", "unknown"


@dataclass(frozen=True)
class AlertCheck:
    """One rule of alert_rules/regwatch.rules.yml evaluated now. ``state`` is "firing"
    (its condition holds now; Prometheus fires once it has held for the rule's ``for:``),
    "ok", or "unknown" (the numbers it needs are not available here)."""

    rule: str
    severity: str
    state: str
    value: str
    detail: str


def alerts_now(store: Store, now: datetime, status: Any = None, paths: tuple[Any, ...] | None = None) -> list[AlertCheck]:
    """Every alert rule, evaluated at ``now`` from the store (traffic of the last 5
    minutes, storage samples and forecasts) and the service's status file (``status``: a
    :class:`regwatch.service.status.ServiceStatus` or None when no service ever ran).
    Firing rules come first. Raises StoreError."""
    from regwatch.summary import summarize

    now = utc(now)
    out: list[AlertCheck] = []
    s = summarize(store, Query(since=now - timedelta(minutes=5), until=now))
    tried = s["pulls"] + s["pulls_failed"]
    ratio = s["pulls_failed"] / tried if tried else 0.0
    firing = ratio > PULL_FAILURE_RATIO and tried >= PULL_MIN_VOLUME
    out.append(AlertCheck("RegwatchPullFailureRatioHigh", "warning", FIRING if firing else OK,
                          f"{ratio:.1%} of {tried} pulls",
                          f"more than {PULL_FAILURE_RATIO:.0%} of at least {PULL_MIN_VOLUME} manifest pulls failed in the last 5 minutes"))
    per_min = s["auth_failures"] / 5.0
    out.append(AlertCheck("RegwatchAuthFailuresHigh", "warning", FIRING if per_min > AUTH_FAILURES_PER_MINUTE else OK,
                          f"{per_min:.1f}/min", f"more than {AUTH_FAILURES_PER_MINUTE:g} auth failures per minute over the last 5 minutes"))

    if paths is None:
        paths = disk(store, now)
    usage = [(p.path, p.used_bytes / p.capacity_bytes) for p in paths if p.used_bytes is not None and p.capacity_bytes]
    for rule, sev, limit in (("RegwatchStorageUsageHigh", "warning", STORAGE_HIGH), ("RegwatchStorageFull", "critical", STORAGE_FULL)):
        if not usage:
            out.append(AlertCheck(rule, sev, UNKNOWN, "-", "no storage sample with a capacity in the store"))
            continue
        over = [(p, u) for p, u in usage if u > limit]
        worst = max(usage, key=lambda pu: pu[1])
        out.append(AlertCheck(rule, sev, FIRING if over else OK, f"{worst[1]:.1%} ({worst[0]})",
                              f"storage more than {limit:.0%} used" + (": " + ", ".join(p for p, _ in over) if over else "")))
    full = [(p.path, a.days_to("eta")) for p in paths for a in p.assessments if a.threshold == 100.0 and a.ok]
    if not full:
        out.append(AlertCheck("RegwatchStorageFillingUp", "warning", UNKNOWN, "-", "no sound forecast of a storage path"))
    else:
        soon = [(p, d) for p, d in full if d is not None and d < FILLING_UP_DAYS]
        shown = min((d for _, d in full if d is not None), default=None)
        out.append(AlertCheck("RegwatchStorageFillingUp", "warning", FIRING if soon else OK,
                              "not within 90 d" if shown is None else f"full in {shown:.1f} d",
                              f"predicted full within {FILLING_UP_DAYS} days" + (": " + ", ".join(p for p, _ in soon) if soon else "")))
    out.extend(_collector_checks(status))
    out.sort(key=lambda a: ({FIRING: 0, UNKNOWN: 1, OK: 2}[a.state], a.rule))
    return out


def _collector_checks(status: Any) -> list[AlertCheck]:
    rules = [("RegwatchCollectorStalled", "critical"), ("RegwatchCollectorLagHigh", "warning"),
             ("RegwatchCollectorNoRecentEvents", "warning"), ("RegwatchCollectorParseFailuresHigh", "warning"),
             ("RegwatchStoreErrors", "critical")]
    if status is None or not status.running:
        why = "no regwatch service status" if status is None else f"the last service (pid {status.pid}) is not running"
        out = [AlertCheck("RegwatchCollectorDown", "critical", FIRING, "-", why + ": nothing is collected")]
        out += [AlertCheck(r, sev, UNKNOWN, "-", "needs a running service") for r, sev in rules]
        return out
    out = [AlertCheck("RegwatchCollectorDown", "critical", OK, f"pid {status.pid}", "the service is running")]
    srcs = list(status.sources)
    stalled = [s.path for s in srcs if s.lag_bytes > 0 and (s.lag_seconds or 0) > LAG_SECONDS]
    out.append(AlertCheck("RegwatchCollectorStalled", "critical", FIRING if stalled else OK,
                          f"{sum(s.lag_bytes for s in srcs):,} B unread", ", ".join(stalled) or "every source is being read"))
    lag = max((s.lag_seconds or 0.0 for s in srcs), default=0.0)
    out.append(AlertCheck("RegwatchCollectorLagHigh", "warning", FIRING if lag > LAG_SECONDS else OK,
                          f"{lag:.0f} s", f"a source more than {LAG_SECONDS // 60} minutes behind"))
    ages = [s.last_event_age_seconds for s in srcs if s.last_event_age_seconds is not None]
    age = max(ages, default=None)
    out.append(AlertCheck("RegwatchCollectorNoRecentEvents", "warning",
                          UNKNOWN if age is None else (FIRING if age > NO_EVENTS_SECONDS else OK),
                          "-" if age is None else f"{age:.0f} s", f"no event from a source for more than {NO_EVENTS_SECONDS // 60} minutes"))
    bad = sum(v for k, v in status.drops.items() if k in PARSE_FAILURE_REASONS)
    ratio = bad / status.lines_read if status.lines_read else 0.0
    out.append(AlertCheck("RegwatchCollectorParseFailuresHigh", "warning",
                          FIRING if ratio > PARSE_FAILURE_RATIO and status.lines_read >= PARSE_MIN_LINES else OK,
                          f"{ratio:.1%} of {status.lines_read:,} lines",
                          "unreadable lines since the service started (the rule looks at 15 minutes)"))
    out.append(AlertCheck("RegwatchStoreErrors", "critical", OK if status.store_ok else FIRING,
                          "ok" if status.store_ok else "blocked", status.store_blocked_reason or "store writes succeed"))
    return out


# -- audit -----------------------------------------------------------------------------
OUTCOMES = (Outcome.SUCCESS.value, Outcome.FAILURE.value, Outcome.UNKNOWN.value)
AUDIT_KINDS = ("deletes", "pushes", "auth failures")
EVENT_COLUMNS = ("time", "action", "auth", "user", "repository", "reference", "client_ip", "user_agent",
                 "outcome", "status", "source", "component", "request_id", "error_code", "raw")


@dataclass(frozen=True)
class AuditFilter:
    """The Audit page's filters; empty strings and None mean "any"."""

    since: datetime | None = None
    until: datetime | None = None
    repo: str | None = None  # shell glob, as `--repo`
    user: str | None = None
    client_ip: str | None = None
    outcome: str | None = None

    def __post_init__(self) -> None:
        for name in ("repo", "user", "client_ip", "outcome"):
            v = getattr(self, name)
            if isinstance(v, str) and not v.strip():
                object.__setattr__(self, name, None)
            elif isinstance(v, str):
                object.__setattr__(self, name, v.strip())
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ConfigError(f"unknown outcome {self.outcome!r}; choose one of {list(OUTCOMES)}")

    def query(self) -> Query:
        return Query(since=self.since, until=self.until, repo=self.repo, user=self.user,
                     client_ip=self.client_ip, outcome=self.outcome)

    def keeps(self, row: dict[str, Any]) -> bool:
        """The filters the stores cannot apply to attributed rows (a webhook delete that
        no log line matched is added after the store's search)."""
        if self.client_ip is not None and row.get("client_ip") != self.client_ip:
            return False
        return self.outcome is None or row.get("outcome") == self.outcome


def audit_deletes(store: Store, flt: AuditFilter) -> list[dict[str, Any]]:
    """The DELETE audit under ``flt``: the rows of ``regwatch audit deletes`` (users
    attributed from webhook events), oldest first, each made :func:`inert`. Raises
    StoreError."""
    from regwatch.sources.webhooks import attributed_deletes

    rows = attributed_deletes(store, flt.query())
    return [inert_row(r) for r in rows if flt.keeps(r)]


def audit_events(store: Store, flt: AuditFilter, kind: str, limit: int = 1000) -> tuple[list[dict[str, Any]], bool]:
    """Pushes (``kind="pushes"``) or auth failures and anonymous denials (``"auth
    failures"``) under ``flt``: the newest ``limit`` rows, newest first, and whether
    more matched. Raises ConfigError for another kind, StoreError."""
    if kind == "deletes":
        rows = audit_deletes(store, flt)
        rows.reverse()
        return rows[:limit], len(rows) > limit
    if kind == "pushes":
        q = replace(flt.query(), actions=frozenset({Action.PUSH.value}))
    elif kind == "auth failures":
        q = replace(flt.query(), auth=frozenset({AuthClass.AUTH_FAILURE.value, AuthClass.ANONYMOUS_DENIAL.value}))
    else:
        raise ConfigError(f"unknown audit kind {kind!r}; choose one of {list(AUDIT_KINDS)}")
    found = store.search(replace(q, limit=limit + 1, newest_first=True))
    return [event_row(e) for e in found[:limit]], len(found) > limit


def event_row(ev: Any) -> dict[str, Any]:
    from regwatch.audit import delete_row

    row = delete_row(ev)
    row["action"] = ev.action
    row["auth"] = ev.auth
    return inert_row({k: row.get(k) for k in EVENT_COLUMNS})


# -- repositories -----------------------------------------------------------------------
LAST_SEEN_SCAN = 1000  # the embedded store finds up to this many newest rows in two cheap passes


def last_seen(store: Store, since: datetime, until: datetime, tallies: frozenset[str],
              repositories: list[str] | None = None) -> dict[str, datetime]:
    """The newest time of an event of ``tallies`` per repository in ``[since, until)``.

    The newest ``LAST_SEEN_SCAN`` events of the range name the busy repositories at once.
    For the others, aggregations over windows that double going back from ``until`` find
    the window of each one's newest event, and one newest-first search of that window,
    limited to one row, gives the time. Raises StoreError."""
    wanted = set(repositories) if repositories is not None else None
    out: dict[str, datetime] = {}
    for ev in store.search(Query(since=since, until=until, tallies=tallies, limit=LAST_SEEN_SCAN, newest_first=True)):
        if ev.repository is not None and ev.repository not in out and (wanted is None or ev.repository in wanted):
            out[ev.repository] = ev.timestamp
    if wanted is not None and wanted <= set(out):
        return out
    window: dict[str, tuple[datetime, datetime]] = {}
    hi, width = until, timedelta(hours=1)
    while hi > since:
        lo = max(hi - width, since)
        for r in store.aggregate(Aggregation(Query(since=lo, until=hi, tallies=tallies), ("repository",))):
            repo = r["repository"]
            if repo is not None and repo not in window and repo not in out and (wanted is None or repo in wanted):
                window[repo] = (lo, hi)
        hi, width = lo, width * 2
        if wanted is not None and len(window) + len(out) >= len(wanted):
            break
    for repo, (lo, hi) in window.items():
        found = store.search(Query(since=lo, until=hi, repo=glob_escape(repo), tallies=tallies, limit=1, newest_first=True))
        if found:
            out[repo] = found[0].timestamp
    return out


def glob_escape(name: str) -> str:
    """A glob that matches exactly ``name`` (``*``, ``?`` and ``[`` in brackets)."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def repository_table(store: Store, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per repository over ``[since, until)``: pulls, failed pulls, pushes, deletes, bytes
    pulled and pushed, the last successful pull, and the growth the daily report shows
    (bytes pushed in the 7 days before ``until`` and in the 7 days before those). Busiest
    first. Raises StoreError."""
    from regwatch.reports.model import repository_growth
    from regwatch.summary import summarize

    s = summarize(store, Query(since=since, until=until))
    growth = {g["repository"]: g for g in repository_growth(store, until, until - timedelta(days=1), 10**9)}
    last = last_seen(store, since, until, frozenset({Tally.PULL.value}), list(s["repositories"]))
    rows = []
    for repo, c in s["repositories"].items():
        g = growth.get(repo, {})
        rows.append(inert_row({
            "repository": repo,
            "pulls": c["pulls"],
            "pulls_failed": c["pulls_failed"],
            "pushes": c["pushes"],
            "deletes": c["deletes"],
            "bytes_pulled": c["bytes_pulled"],
            "bytes_pushed": c["bytes_pushed"],
            "last_pulled": last.get(repo),
            "bytes_pushed_7d": int(g.get("bytes_7d", 0)),
            "bytes_pushed_prev_7d": int(g.get("bytes_prev_7d", 0)),
            "growth_bytes": int(g.get("bytes_7d", 0)) - int(g.get("bytes_prev_7d", 0)),
        }))
    rows.sort(key=lambda r: (-(r["pulls"] + r["pushes"]), r["repository"]))
    return rows


def retention_candidates(store: Store, now: datetime, unused_days: int = 90) -> dict[str, Any]:
    """The retention recommendation (``regwatch.capacity.retention``) as rows: stale
    repositories and stale tags, biggest first, with the total bytes and notes. Raises
    StoreError."""
    from regwatch.capacity.retention import retention_recommendation

    if unused_days < 1:
        raise ConfigError(f"unused days {unused_days!r} must be at least 1")
    rec = retention_recommendation(store, utc(now), unused_days)
    d = rec.to_dict(limit=None)
    return {
        "cutoff": rec.cutoff,
        "total_bytes": rec.total_bytes,
        "repositories": [inert_row(r) for r in d["repositories"]],
        "tags": [inert_row(r) for r in d["tags"]],
        "notes": list(rec.notes),
    }


# -- security -----------------------------------------------------------------------------
BURST_FACTOR = 3.0
BURST_MIN = 5


def top_groups(store: Store, q: Query, group: tuple[str, ...], limit: int = 20) -> list[dict[str, Any]]:
    """The ``limit`` biggest groups of ``q`` by ``group`` (count of records), biggest first."""
    rows = store.aggregate(Aggregation(q, group))
    rows.sort(key=lambda r: (-int(r["count"]), tuple(str(r.get(g)) for g in group)))
    return [inert_row({**{g: r.get(g) for g in group}, "count": int(r["count"])}) for r in rows[:limit]]


def security(store: Store, since: datetime, until: datetime, limit: int = 20) -> dict[str, Any]:
    """The Security page over ``[since, until)``: auth failures by user and by client IP,
    anonymous denials by client IP and repository, and auth failures and denials per
    time bucket, a bucket marked as a burst when it holds at least ``BURST_MIN`` and more
    than ``BURST_FACTOR`` times the median of the buckets with any. Raises StoreError."""
    fail = Query(since=since, until=until, auth=frozenset({AuthClass.AUTH_FAILURE.value}))
    anon = Query(since=since, until=until, auth=frozenset({AuthClass.ANONYMOUS_DENIAL.value}))
    buckets = trend(store, since, until, buckets=48)
    counts = [b["auth_failures"] + b["anonymous_denials"] for b in buckets]
    nonzero = [c for c in counts if c]
    typical = median(nonzero) if nonzero else 0
    over_time = [
        {"time": b["time"], "auth_failures": b["auth_failures"], "anonymous_denials": b["anonymous_denials"],
         "burst": c >= BURST_MIN and c > BURST_FACTOR * typical}
        for b, c in zip(buckets, counts)
    ]
    return {
        "by_user": top_groups(store, fail, ("user",), limit),
        "by_client_ip": top_groups(store, fail, ("client_ip",), limit),
        "anonymous": top_groups(store, anon, ("client_ip", "repository"), limit),
        "over_time": over_time,
        "bursts": [b for b in over_time if b["burst"]],
        "auth_failures": sum(b["auth_failures"] for b in buckets),
        "anonymous_denials": sum(b["anonymous_denials"] for b in buckets),
    }


def anomaly_rows(store: Store, since: datetime, until: datetime, limit: int = 50) -> list[dict[str, Any]]:
    """The unusual (actor, hour) rows :func:`regwatch.anomaly.anomalies` flags, each with
    the features that set it apart. Raises StoreError."""
    from regwatch.anomaly import anomalies

    rows = []
    for a in anomalies(store, since=since, until=until, limit=limit):
        d = a.to_dict()
        rows.append(inert_row({
            "kind": d["kind"], "actor": d["actor"], "hour": a.hour, "score": d["score"],
            "reasons": "; ".join(d["reasons"]),
            **{f"feature_{k}": v for k, v in sorted(d["features"].items())},
        }))
    return rows


# -- ingest health ------------------------------------------------------------------------
@dataclass(frozen=True)
class IngestHealth:
    """The collector and the store as the Ingest health page shows them."""

    state_dir: str
    status: Any  # regwatch.service.status.ServiceStatus | None
    store_ok: bool
    store_detail: str
    events: int | None
    newest_event: datetime | None
    sources: list[dict[str, Any]] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)  # reason, count, samples


def ingest_health(store: Store, state_dir: str | Path, now: datetime, *, quarantine_dir: str | Path | None = None,
                  samples: int = 3, scan: int = 20_000) -> IngestHealth:
    """The service's status (``<state_dir>/status.json``), the store's health check, and
    the drop reasons with up to ``samples`` lines each from the quarantine
    (``quarantine_dir``, default ``<state_dir>/quarantine``; its first ``scan`` lines are
    read). Drop counts are the running service's when there is one, else the
    quarantine's. Never raises for an unhealthy store: that is what it reports."""
    from regwatch.quarantine import Quarantine
    from regwatch.service.status import read_status

    now = utc(now)
    st = read_status(state_dir, now)
    try:
        h = store.healthcheck()
        ok, detail, events = h.ok, h.detail, h.events
    except StoreError as exc:
        ok, detail, events = False, str(exc), None
    newest = None
    if ok:
        found = store.search(Query(limit=1, newest_first=True))
        newest = found[0].timestamp if found else None
    qdir = Path(quarantine_dir) if quarantine_dir is not None else Path(state_dir) / "quarantine"
    kept = Quarantine(qdir).read(limit=scan)
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for r in kept:
        by_reason.setdefault(str(r.get("reason")), []).append(r)
    counts = dict(st.drops) if st is not None and st.drops else {k: len(v) for k, v in by_reason.items()}
    drops = []
    for reason in sorted(set(counts) | set(by_reason), key=lambda k: (-counts.get(k, 0), k)):
        lines = [inert(str(r.get("text", ""))) for r in by_reason.get(reason, [])[:samples]]
        where = [f"{r.get('path')}:{r.get('line', r.get('offset'))}" for r in by_reason.get(reason, [])[:samples]]
        drops.append({"reason": reason, "count": int(counts.get(reason, 0)), "samples": lines, "where": [inert(w) for w in where]})
    sources = []
    if st is not None:
        for s in st.sources:
            sources.append(inert_row({
                "path": s.path, "read_bytes": s.offset, "size_bytes": s.size, "lag_bytes": s.lag_bytes,
                "lag_seconds": s.lag_seconds, "last_event_age_seconds": s.last_event_age_seconds,
            }))
    if st is not None and not st.store_ok:
        ok, detail = False, f"the service's writes are blocked: {st.store_blocked_reason or 'unknown reason'}"
    return IngestHealth(str(state_dir), st, ok, inert(detail), events, newest, sources, drops)
