"""Unusual behaviour per user and per client IP, found by an unsupervised model.

Each (actor, hour) of the window becomes a row of four features:

``deletes``
    manifest deletes asked for (``tally`` delete or delete_failed, times ``repeat``):
    a failed delete counts too, because a run of refused deletes is an attempt worth seeing;
``failed_logins``
    requests whose presented credentials were rejected (``auth`` = auth_failure). The
    challenge 401 and anonymous denials are no failed logins (domain.md section 2);
``new_repositories``
    repositories the actor touches that it never touched before (in the look-back
    history or earlier in the window);
``off_hours``
    requests in an hour outside working hours, counted only for an actor that was never
    active outside working hours before (its first night, its first weekend).

An IsolationForest (fixed seed) scores the rows; a row is *flagged* only when the forest
score is above the threshold **and** at least one feature is far above normal: a robust
z-score (distance from the median in units of the scaled MAD, floored by the typical
non-zero value of the other rows and by 1) of at least :data:`Z_MIN`, and, for deletes
and failed logins, more than twice the actor's own highest earlier hour. Each flag names
the features that pass, so an operator can judge it instead of trusting a number.

The model is fitted on the window it scores; the history before ``since`` only sets what
each actor has done before. docs/anomalies.md has the rule and its limits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from regwatch.errors import ConfigError
from regwatch.events import AuthClass, Event, Tally
from regwatch.stores.base import Aggregation, Query, Store

FEATURES: tuple[str, ...] = ("deletes", "failed_logins", "new_repositories", "off_hours")
#: IsolationForest score (0..1, higher = more unusual; about 0.5 is ordinary) a flag needs
DEFAULT_THRESHOLD = 0.6
#: robust z-score at least one feature needs (Iglewicz and Hoaglin's outlier cut-off)
Z_MIN = 3.5
#: deletes and failed logins must also exceed the actor's own highest earlier hour this many times
OWN_FACTOR = 2.0
DEFAULT_LOOKBACK = timedelta(days=7)
DEFAULT_WINDOW = timedelta(days=7)  # what `regwatch audit anomalies` scores without --since
_MIN_ROWS = 8  # fewer rows than this: nothing to compare against, no flags
_OWN_BASELINE = ("deletes", "failed_logins", "new_repositories")
_DELETES = frozenset({Tally.DELETE.value, Tally.DELETE_FAILED.value})
_HOUR = timedelta(hours=1)
_AUTH_FAILURE = AuthClass.AUTH_FAILURE.value


@dataclass(frozen=True)
class WorkHours:
    """Working time: hours ``start`` ≤ h < ``end`` on ``weekdays`` (0 = Monday), in ``tz``.

    The default, 07:00–20:00 Monday to Friday UTC, is a guess that suits no one exactly:
    pass the team's own (``--work-hours 08-18 --timezone Europe/Berlin``)."""

    start: int = 7
    end: int = 20
    weekdays: frozenset[int] = frozenset(range(5))
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if not (0 <= self.start < self.end <= 24):
            raise ConfigError(f"working hours {self.start:02d}-{self.end:02d} are not a day's span; use e.g. 07-20")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.tz!r}; use an IANA name like UTC or Europe/Berlin") from None

    @classmethod
    def parse(cls, text: str, tz: str = "UTC") -> WorkHours:
        """``"07-20"`` (start and end hour) in zone ``tz``. Raises ConfigError."""
        parts = str(text).strip().split("-")
        try:
            start, end = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"cannot read working hours {text!r}; use START-END hours like 07-20") from None
        return cls(start=start, end=end, tz=tz)

    def off(self, hour: datetime) -> bool:
        """Whether the hour starting at ``hour`` is outside working time."""
        local = hour.astimezone(ZoneInfo(self.tz))
        return local.weekday() not in self.weekdays or not (self.start <= local.hour < self.end)


@dataclass(frozen=True)
class Anomaly:
    """One unusual hour of one actor (``kind`` is "user" or "client_ip").

    ``related`` names the other side of the hour: a user row's client IPs, an IP row's
    users. An IP row that says nothing its only user's row does not is folded into it."""

    kind: str
    actor: str
    hour: datetime
    score: float
    features: dict[str, float]
    reasons: tuple[str, ...] = field(default=())
    related: tuple[str, ...] = field(default=())
    z: float = 0.0  # the highest robust z-score among the reasons (0 without reasons)

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "actor": self.actor,
            "hour": self.hour.isoformat().replace("+00:00", "Z"),
            "score": round(self.score, 3),
            "features": self.features,
            "reasons": list(self.reasons),
            "related": list(self.related),
        }


class Touch(NamedTuple):
    """What one actor pair did in one hour: the unit both the event and the store path build."""

    hour: datetime
    user: str | None
    client_ip: str | None
    repository: str | None
    tally: str
    auth: str
    records: int  # the records it stands for (the sum of ``repeat``)


def _floor_hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def touches_from_events(events: Iterable[Event]) -> list[Touch]:
    """Events as :class:`Touch` rows (one per event; ``records`` is its ``repeat``)."""
    return [
        Touch(_floor_hour(e.timestamp), e.user or None, e.client_ip or None, e.repository or None,
              e.tally, e.auth, int(e.repeat or 1))
        for e in events
    ]


def hours_from_store(store: Store, since: datetime, until: datetime) -> Iterator[tuple[datetime, list[Touch]]]:
    """Each hour between ``since`` and ``until`` with its grouped counts, oldest first:
    the store sums and groups, so only the distinct (user, IP, repository, tally, auth)
    of one hour at a time cross over, never the events. Raises StoreError."""
    hour = _floor_hour(since)
    group = ("user", "client_ip", "repository", "tally", "auth")
    while hour < until:
        lo, hi = max(hour, since), min(hour + _HOUR, until)
        rows = store.aggregate(Aggregation(Query(since=lo, until=hi), group))
        yield hour, [Touch(hour, r["user"] or None, r["client_ip"] or None, r["repository"] or None,
                           r["tally"], r["auth"], int(r["count"])) for r in rows]
        hour += _HOUR


def touches_from_store(store: Store, since: datetime, until: datetime) -> list[Touch]:
    """All of :func:`hours_from_store` in one list. Raises StoreError."""
    return [t for _, ts in hours_from_store(store, since, until) for t in ts]


@dataclass
class _Row:
    feats: dict[str, float] = field(default_factory=lambda: {f: 0.0 for f in FEATURES})
    requests: float = 0.0
    repos: set[str] = field(default_factory=set)
    related: set[str] = field(default_factory=set)
    own_max: dict[str, float] = field(default_factory=dict)


@dataclass
class _Past:
    repos: set[str] = field(default_factory=set)
    off_hours: bool = False
    max: dict[str, float] = field(default_factory=lambda: {f: 0.0 for f in _OWN_BASELINE})


def hourly_features(
    touches: Sequence[Touch], *, since: datetime, work_hours: WorkHours = WorkHours()
) -> dict[tuple[str, str, datetime], _Row]:
    """Per (kind, actor, hour) feature rows of the hours at or after ``since``; the
    earlier touches only say what each actor did before."""
    by_hour: dict[datetime, list[Touch]] = defaultdict(list)
    for t in touches:
        by_hour[t.hour].append(t)
    return features_by_hour(((h, by_hour[h]) for h in sorted(by_hour)), since=since, work_hours=work_hours)


def features_by_hour(
    hours: Iterable[tuple[datetime, Sequence[Touch]]], *, since: datetime, work_hours: WorkHours = WorkHours()
) -> dict[tuple[str, str, datetime], _Row]:
    """:func:`hourly_features` over hours given oldest first, one at a time (what the
    store path streams: only one hour's touches are held)."""
    past: dict[tuple[str, str], _Past] = {}
    rows: dict[tuple[str, str, datetime], _Row] = {}
    for hour, touches in hours:
        off = work_hours.off(hour)
        current: dict[tuple[str, str], _Row] = defaultdict(_Row)
        for t in touches:
            n, repo = t.records, t.repository
            deletes = n if t.tally in _DELETES else 0
            failed = n if t.auth == _AUTH_FAILURE else 0
            for kind, actor, other in (("user", t.user, t.client_ip), ("client_ip", t.client_ip, t.user)):
                if not actor:
                    continue
                row = current[(kind, actor)]
                row.requests += n
                if other:
                    row.related.add(other)
                if deletes:
                    row.feats["deletes"] += deletes
                if failed:
                    row.feats["failed_logins"] += failed
                if repo:
                    row.repos.add(repo)
        for key, row in current.items():
            p = past.get(key)
            if p is not None:
                # an actor's first hour ever sets its baseline: only later hours have new repositories
                row.feats["new_repositories"] = float(len(row.repos - p.repos))
            if off and (p is None or not p.off_hours):
                row.feats["off_hours"] = row.requests
            row.own_max = dict(p.max) if p is not None else {f: 0.0 for f in _OWN_BASELINE}
            if hour >= since:
                rows[(key[0], key[1], hour)] = row
            if p is None:
                p = past[key] = _Past()
            p.repos |= row.repos
            row.repos = set()  # only needed for this hour's count: the rows of a week stay small
            p.off_hours = p.off_hours or off
            for f in _OWN_BASELINE:
                p.max[f] = max(p.max[f], row.feats[f])
    return rows


def _robust_z(x: np.ndarray) -> np.ndarray:
    """Robust z-scores of each column: (x - median) / scale, where the scale is the
    larger of 1.4826 × MAD, the median of the *other* rows' non-zero values and 1. The
    floor keeps a feature that is nearly always 0 from turning a count of 2 into an
    outlier, and leaving the row out keeps a lone burst from setting its own scale."""
    z = np.zeros_like(x)
    for j in range(x.shape[1]):
        col = x[:, j]
        med = float(np.median(col))
        base = max(1.4826 * float(np.median(np.abs(col - med))), 1.0)
        nz = np.sort(col[col > 0])
        zj = (col - med) / base
        idx = np.nonzero(zj >= Z_MIN)[0]
        if idx.size:
            zj[idx] = (col[idx] - med) / np.maximum(base, _median_without(nz, col[idx]))
        z[:, j] = zj
    return z


def _median_without(nz: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each v of ``values``: the median of sorted ``nz`` with one copy of v taken
    out (1 when nothing is left), without copying ``nz`` per value."""
    m = nz.size - 1
    if m <= 0:
        return np.ones_like(values)
    pos = np.searchsorted(nz, values)  # where the removed copy sits

    def at(k: int) -> np.ndarray:  # element k of nz with the copy at pos removed
        return np.asarray(np.where(k < pos, nz[min(k, nz.size - 1)], nz[min(k + 1, nz.size - 1)]), dtype=float)

    if m % 2:
        return at(m // 2)
    return np.asarray((at(m // 2 - 1) + at(m // 2)) / 2.0, dtype=float)


def score_rows(
    rows: dict[tuple[str, str, datetime], _Row], *, seed: int = 0
) -> list[Anomaly]:
    """Every row scored, flagged ones first, then by forest score (most unusual first)."""
    if len(rows) < _MIN_ROWS:
        return []
    from sklearn.ensemble import IsolationForest

    keys = sorted(rows, key=lambda k: (k[2], k[0], k[1]))  # the input's order must not change the forest
    x = np.array([[rows[k].feats[f] for f in FEATURES] for k in keys], dtype=float)
    if np.all(x == x[0]):
        return []  # all rows alike: nothing is unusual
    forest = IsolationForest(n_estimators=200, contamination="auto", random_state=seed)
    xt = np.log1p(x)
    forest.fit(xt)
    scores = -forest.score_samples(xt)
    z = _robust_z(x)
    median = np.median(x, axis=0)
    out: list[Anomaly] = []
    for i, key in enumerate(keys):
        row = rows[key]
        passing = []
        for j, f in enumerate(FEATURES):
            if z[i, j] < Z_MIN:
                continue
            if f in _OWN_BASELINE and x[i, j] <= OWN_FACTOR * row.own_max.get(f, 0.0):
                continue  # the actor has done about as much before: its normal, not an anomaly
            passing.append((float(z[i, j]), f, x[i, j], median[j]))
        passing.sort(reverse=True)
        reasons = tuple(f"{f}={v:g} (typical {m:g}, robust z {zz:.1f})" for zz, f, v, m in passing)
        feats = {f: float(x[i, j]) for j, f in enumerate(FEATURES)}
        out.append(Anomaly(key[0], key[1], key[2], float(scores[i]), feats, reasons,
                           tuple(sorted(row.related)), passing[0][0] if passing else 0.0))
    out = _fold(out)
    out.sort(key=lambda a: (not a.flagged, -a.score, -a.z, a.hour, a.kind, a.actor))
    return out


def _fold(ranked: list[Anomaly]) -> list[Anomaly]:
    """Drop each client-IP row whose only user's row of the same hour is unusual for the
    same features: it is the same behaviour seen twice (the user row names the IP). The
    counts may differ a little (the IP also carries the user's anonymous challenges)."""
    users = {(a.actor, a.hour): a for a in ranked if a.kind == "user"}
    keep = []
    for a in ranked:
        if a.kind == "client_ip" and len(a.related) == 1:
            u = users.get((a.related[0], a.hour))
            if u is not None and _named(u) == _named(a):
                continue
        keep.append(a)
    return keep


def _named(a: Anomaly) -> frozenset[str]:
    """The features a row's reasons name (its unflagged rows: its non-zero features)."""
    if a.reasons:
        return frozenset(r.split("=", 1)[0] for r in a.reasons)
    return frozenset(f for f, v in a.features.items() if v)


def rank(
    events: Iterable[Event],
    *,
    since: datetime | None = None,
    work_hours: WorkHours = WorkHours(),
    seed: int = 0,
) -> list[Anomaly]:
    """Every (actor, hour) row of ``events`` scored, flagged first, most unusual first.

    Events before ``since`` are history only (default: none; every event is scored)."""
    touches = touches_from_events(events)
    if not touches:
        return []
    start = _floor_hour(since) if since is not None else min(t.hour for t in touches)
    return score_rows(hourly_features(touches, since=start, work_hours=work_hours), seed=seed)


def find(
    events: Iterable[Event],
    *,
    since: datetime | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    work_hours: WorkHours = WorkHours(),
    seed: int = 0,
) -> list[Anomaly]:
    """The flagged rows of :func:`rank` whose forest score is above ``threshold``."""
    return [a for a in rank(events, since=since, work_hours=work_hours, seed=seed)
            if a.flagged and a.score > threshold]


def anomalies(
    store: Store,
    *,
    since: datetime,
    until: datetime,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = 50,
    work_hours: WorkHours = WorkHours(),
    lookback: timedelta = DEFAULT_LOOKBACK,
    seed: int = 0,
) -> list[Anomaly]:
    """The flagged (actor, hour) rows of the store between ``since`` and ``until``, most
    unusual first; the ``lookback`` before ``since`` is what each actor did before.

    Reads hourly grouped counts, not events (see :func:`touches_from_store`). Raises
    StoreError."""
    hours = hours_from_store(store, since - lookback, until)
    ranked = score_rows(features_by_hour(hours, since=_floor_hour(since), work_hours=work_hours), seed=seed)
    return [a for a in ranked if a.flagged and a.score > threshold][: max(limit, 0)]


COLUMNS: tuple[str, ...] = ("kind", "actor", "hour", "score", "reasons", "related", *FEATURES)


def render(rows: Sequence[Anomaly], fmt: str) -> str:
    """Flags as ``table``, ``json`` (a list of :meth:`Anomaly.to_dict`) or ``csv``.

    Actor names come from logs: text goes through :func:`regwatch.insights.inert`
    (secrets redacted, escape sequences removed) before it reaches a terminal or a file."""
    import json

    from regwatch.insights import inert

    if fmt not in ("table", "json", "csv"):
        raise ConfigError(f"unknown output format {fmt!r}; use --format table, json or csv")
    dicts = []
    for a in rows:
        d = a.to_dict()
        d["actor"] = inert(d["actor"])
        d["related"] = [inert(r) for r in d["related"]]
        dicts.append(d)
    if fmt == "json":
        return json.dumps(dicts, indent=2, ensure_ascii=False)
    if fmt == "csv":
        from regwatch.audit import csv_text

        return csv_text(
            (
                {**{k: d[k] for k in ("kind", "actor", "hour", "score")},
                 "reasons": "; ".join(d["reasons"]), "related": " ".join(d["related"]),
                 **{f: f"{d['features'][f]:g}" for f in FEATURES}}
                for d in dicts
            ),
            COLUMNS,
        )
    cols = ("kind", "actor", "hour", "score", "reasons")
    cells = [[d["kind"], d["actor"], d["hour"], f"{d['score']:.3f}", "; ".join(d["reasons"])] for d in dicts]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    lines.append(f"{len(rows)} unusual hour(s) above the threshold")
    return "\n".join(lines)


def default_window(now: datetime, days: int = 7) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now


__all__ = [
    "DEFAULT_THRESHOLD", "FEATURES", "Z_MIN", "Anomaly", "Touch", "WorkHours", "anomalies", "features_by_hour",
    "find", "hourly_features", "hours_from_store", "rank", "render", "score_rows", "touches_from_events", "touches_from_store",
]
