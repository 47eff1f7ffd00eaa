"""Where each storage path stands against its thresholds: one forecast, several thresholds.

Pure functions over the storage history (``regwatch.storage.history``); the store is read
once by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from regwatch.events import utc

#: thresholds of the forecast gauges (regwatch_storage_time_to_threshold_seconds)
GAUGE_THRESHOLDS = (85.0, 100.0)
GAUGE_HORIZON = timedelta(days=90)
#: how much history a forecast reads (the model's longest window is 56 days)
HISTORY = timedelta(days=90)


def threshold_label(percent: float) -> str:
    """``85.0`` → ``"85"``, ``92.5`` → ``"92.5"`` (the metric's ``threshold`` label)."""
    return f"{percent:g}"


@dataclass(frozen=True)
class Assessment:
    """One path against one threshold at ``now``.

    ``status`` is the forecaster's (``ok``, ``not enough data``, ``unpredictable``) or
    ``no capacity`` when the samples never gave the filesystem's size. ``eta``, ``lower``
    (earliest plausible) and ``upper`` (latest) are UTC crossing times, ``None`` when that
    path of the forecast does not cross within the horizon.
    """

    path: str
    threshold: float  # percent
    threshold_bytes: float
    status: str
    reason: str
    now: datetime
    used_bytes: float | None
    capacity_bytes: float | None
    eta: datetime | None = None
    lower: datetime | None = None
    upper: datetime | None = None
    growth_per_day: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def seconds_to(self, bound: str) -> float | None:
        """Seconds from ``now`` to the ``bound`` crossing (0 when already crossed), ``None``
        when that bound does not cross within the horizon."""
        t = {"eta": self.eta, "lower": self.lower, "upper": self.upper}[bound]
        if t is None:
            return None
        return max(0.0, (t - self.now).total_seconds())

    def days_to(self, bound: str) -> float | None:
        s = self.seconds_to(bound)
        return None if s is None else s / 86400.0

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t is not None else None

        return {
            "path": self.path,
            "threshold": self.threshold,
            "threshold_bytes": self.threshold_bytes,
            "status": self.status,
            "reason": self.reason,
            "now": iso(self.now),
            "used_bytes": self.used_bytes,
            "capacity_bytes": self.capacity_bytes,
            "eta": iso(self.eta),
            "lower": iso(self.lower),
            "upper": iso(self.upper),
            "days": {b: self.days_to(b) for b in ("eta", "lower", "upper")},
            "growth_per_day": self.growth_per_day,
        }


def _ts(v: Any) -> datetime | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    try:
        t = pd.Timestamp(v)
    except (TypeError, ValueError):
        return None
    if pd.isna(t):
        return None
    return utc(t.floor("us").to_pydatetime())


def usage_series(frame: pd.DataFrame) -> tuple[pd.Series, float | None]:
    """The bytes-used series of one path (complete samples only) and its latest capacity."""
    if frame is None or len(frame) == 0 or "used_bytes" not in frame:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype="float64"), None
    df = frame
    if "complete" in df:
        df = df[df["complete"].fillna(False).astype(bool)]
    used = pd.to_numeric(df["used_bytes"], errors="coerce").astype("float64")
    cap = None
    if "capacity_bytes" in df:
        c = pd.to_numeric(df["capacity_bytes"], errors="coerce")
        c = c[c > 0]
        if len(c):
            cap = float(c.iloc[-1])
    return used, cap


def assess_path(
    path: str,
    frame: pd.DataFrame,
    thresholds: tuple[float, ...],
    now: datetime,
    horizon: timedelta,
) -> list[Assessment]:
    """One assessment per threshold for one path's history; never raises on odd data."""
    from regwatch.forecast import forecast

    now = utc(now)
    used, cap = usage_series(frame)
    last_used = float(used.dropna().iloc[-1]) if len(used.dropna()) else None
    if cap is None:
        return [
            Assessment(path, t, math.nan, "no capacity", "no sample gave the filesystem's size", now, last_used, None)
            for t in thresholds
        ]
    series = used.copy()
    series.attrs["now"] = pd.Timestamp(now)
    fc = forecast(series, pd.Timedelta(horizon))
    out: list[Assessment] = []
    for t in thresholds:
        thr = cap * t / 100.0
        res = fc.time_to_threshold(thr, pd.Timedelta(horizon))
        growth = fc.growth_per_day if math.isfinite(fc.growth_per_day) else None
        if res is None:  # sound, and even the upper bound stays below
            out.append(Assessment(path, t, thr, fc.status, fc.reason, now, last_used, cap, growth_per_day=growth))
            continue
        out.append(
            Assessment(
                path,
                t,
                thr,
                str(res.get("status", fc.status)),
                str(res.get("reason", fc.reason)),
                now,
                last_used,
                cap,
                eta=_ts(res.get("eta")),
                lower=_ts(res.get("lower")),
                upper=_ts(res.get("upper")),
                growth_per_day=growth,
            )
        )
    return out


ETA_GUARD = 2.0  # the expected crossing must lie within this many times the lead


def alarm_due(now: datetime, lower: datetime | None, eta: datetime | None, within_seconds: float) -> bool:
    """Whether a forecast crossing calls for action now, with a lead of ``within_seconds``.

    The earliest plausible crossing (``lower``) gives the early warning: it must fall
    within the lead. The expected crossing (``eta``) must also fall within
    :data:`ETA_GUARD` times the lead: an interval made wide by noisy samples does not
    alarm on its own, days before the expected crossing (bench/forecast: it removed the
    one false-alarm episode of the heavy-noise scenario and cost no alert in time)."""
    if lower is None or eta is None:
        return False
    return (lower - now).total_seconds() <= within_seconds and (eta - now).total_seconds() <= ETA_GUARD * within_seconds


def assess_store(
    store: Any,
    now: datetime,
    thresholds: tuple[float, ...] = GAUGE_THRESHOLDS,
    horizon: timedelta = GAUGE_HORIZON,
    path: str | None = None,
    paths: tuple[str, ...] = (),
) -> list[Assessment]:
    """Assessments of every sampled path (or ``path``, or those in ``paths``). Raises StoreError."""
    from regwatch.storage import history

    now = utc(now)
    hist = history(store, path=path, since=now - HISTORY, until=now + timedelta(seconds=1))
    out: list[Assessment] = []
    for p in sorted(hist):
        if paths and p not in paths:
            continue
        out.extend(assess_path(p, hist[p], thresholds, now, horizon))
    return out


def forecast_gauges(store: Any, now: datetime) -> list[tuple[str, str, str, float | None]]:
    """Rows for ``regwatch_storage_time_to_threshold_seconds``: ``(path, threshold, bound,
    seconds)`` for thresholds 85 and 100 and bounds eta, lower and upper; ``seconds`` is
    ``None`` when that bound does not reach the threshold within 90 days (export +Inf). A
    path without a sound forecast ("not enough data", "unpredictable", no capacity) has no
    rows: the gauge is absent for it. Raises StoreError.
    """
    rows: list[tuple[str, str, str, float | None]] = []
    for a in assess_store(store, now):
        if not a.ok:
            continue
        for bound in ("eta", "lower", "upper"):
            rows.append((a.path, threshold_label(a.threshold), bound, a.seconds_to(bound)))
    return rows
