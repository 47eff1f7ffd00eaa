"""Synthetic storage histories with a known truth, one per case the forecaster must handle.

Every scenario is a registry disk: a capacity in bytes, the true bytes used over 120 days
(``truth``, on a 5-minute grid; the last 30 days exist only to score forecasts), what a
collector scraped every 5 minutes over the first 90 days (``observed``: the truth plus
measurement noise and, where the case says so, broken scans, gaps and jitter), and the
evaluation times (days) at which a forecast is made from the samples before it.

Magnitudes: TB-scale disks growing by tens of GB per day. Deterministic: each scenario has its
own seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

GB = 1e9
TB = 1e12
START = pd.Timestamp("2026-01-05 00:00", tz="UTC")  # a Monday
STEP_MIN = 5
TOTAL_DAYS = 120.0
HISTORY_DAYS = 90.0


@dataclass
class Scenario:
    name: str
    case: str
    capacity: float
    t: np.ndarray  # days on the 5-minute grid, 0 .. TOTAL_DAYS
    truth: np.ndarray  # bytes used, no measurement noise, no collector faults
    observed: pd.Series  # what the collector scraped (history up to HISTORY_DAYS)
    origins: np.ndarray  # days at which forecasts are made
    history_start: float = 0.0  # days: the collector's first sample

    def truth_at(self, days: np.ndarray | float) -> np.ndarray:
        return np.interp(np.asarray(days, dtype=float), self.t, self.truth)

    def crossing(self, fraction: float) -> float | None:
        """First time (days) the truth reaches ``fraction`` of the capacity, if it does."""
        above = np.flatnonzero(self.truth >= fraction * self.capacity)
        return float(self.t[above[0]]) if above.size else None


def _grid() -> np.ndarray:
    return np.arange(0.0, TOTAL_DAYS + 1e-9, STEP_MIN / 1440.0)


def _hour(t: np.ndarray) -> np.ndarray:
    return (t * 24.0) % 24.0


def _dow(t: np.ndarray) -> np.ndarray:
    return np.floor(t) % 7  # 0 = Monday


def _daily_rate(t: np.ndarray, amp: float) -> np.ndarray:
    """A rate multiplier that peaks in working hours (mean 1 over a day)."""
    return 1.0 + amp * np.sin(2 * np.pi * (_hour(t) - 9.0) / 24.0)


def _integrate(t: np.ndarray, rate_per_day: np.ndarray) -> np.ndarray:
    dt = np.diff(t, prepend=t[0])
    return np.cumsum(rate_per_day * dt)


def _observe(
    t: np.ndarray,
    truth: np.ndarray,
    rng: np.random.Generator,
    noise: float,
    until: float = HISTORY_DAYS,
    start: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    sel = (t >= start) & (t <= until)
    ts, v = t[sel], truth[sel] + rng.normal(0.0, noise, int(sel.sum()))
    return ts, v


def _series(ts: np.ndarray, v: np.ndarray) -> pd.Series:
    idx = START + pd.to_timedelta(np.round(ts * 86400.0), unit="s")
    return pd.Series(v, index=pd.DatetimeIndex(idx).as_unit("ns"), name="bytes_used")


def _default_origins(
    first: float = 14.0, last: float = HISTORY_DAYS, every: float = 0.5
) -> np.ndarray:
    return np.arange(first, last + 1e-9, every)


def _make(
    name: str,
    case: str,
    capacity: float,
    truth_fn: Callable[[np.ndarray], np.ndarray],
    seed: int,
    noise: float = 2 * GB,
    faults: Callable[
        [np.ndarray, np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]
    ]
    | None = None,
    origins: np.ndarray | None = None,
) -> Scenario:
    rng = np.random.default_rng(seed)
    t = _grid()
    truth = np.maximum(truth_fn(t), 0.0)
    ts, v = _observe(t, truth, rng, noise)
    if faults is not None:
        ts, v = faults(ts, v, np.interp(ts, t, truth), rng)
    return Scenario(
        name,
        case,
        capacity,
        t,
        truth,
        _series(ts, np.maximum(v, 0.0)),
        origins if origins is not None else _default_origins(),
    )


# -- the cases ----------------------------------------------------------------------------


def linear() -> Scenario:
    return _make("linear", "steady growth", 10 * TB, lambda t: 5 * TB + 70 * GB * t, 1)


def daily() -> Scenario:
    def f(t: np.ndarray) -> np.ndarray:
        grow = _integrate(t, 50 * GB * _daily_rate(t, 0.9))
        temp = 40 * GB * np.clip(np.sin(2 * np.pi * (_hour(t) - 8.0) / 24.0), 0.0, None)
        return 4 * TB + grow + temp

    return _make(
        "daily",
        "daily seasonality (CI pushes in working hours, scratch freed at night)",
        8 * TB,
        f,
        2,
    )


def weekly() -> Scenario:
    def f(t: np.ndarray) -> np.ndarray:
        weekday = _dow(t) < 5
        rate = np.where(weekday, 200 * GB, 20 * GB) * _daily_rate(t, 0.7)
        return 10 * TB + _integrate(t, rate)

    return _make("weekly", "weekly seasonality (quiet weekends)", 20 * TB, f, 3)


def _sawtooth(
    t: np.ndarray,
    base: float,
    write_per_day: float,
    freed: float,
    period: float = 7.0,
    offset: float = 6.0 + 2 / 24,
) -> np.ndarray:
    """Writes at a steady rate; a GC every ``period`` days (Sunday 02:00) removes ``freed``."""
    runs = np.floor((t - offset) / period) + 1
    runs = np.maximum(runs, 0)
    # each GC takes an hour, removing its bytes linearly
    frac = np.clip(((t - offset) % period) * 24.0, 0.0, 1.0)
    done = np.where(t >= offset, runs - 1 + frac, 0.0)
    return base + write_per_day * t - freed * done


def sawtooth() -> Scenario:
    return _make(
        "sawtooth",
        "GC sawtooth (weekly GC frees most of what was written)",
        10 * TB,
        lambda t: _sawtooth(t, 5 * TB, 150 * GB, 650 * GB),
        4,
    )


def step_up() -> Scenario:
    def f(t: np.ndarray) -> np.ndarray:
        imp = 1.5 * TB * np.clip((t - 30.0) * 8.0, 0.0, 1.0)  # a 3-hour import on day 30
        return 4.5 * TB + 40 * GB * t + imp

    return _make("step_up", "one-off step up (an import of 1.5 TB)", 10 * TB, f, 5)


def step_down() -> Scenario:
    def f(t: np.ndarray) -> np.ndarray:
        cut = 1.5 * TB * np.clip((t - 25.0) * 12.0, 0.0, 1.0)  # a 2-hour cleanup on day 25
        return 5.5 * TB + 80 * GB * t - cut

    return _make("step_down", "one-off step down (a cleanup of 1.5 TB)", 10 * TB, f, 6)


def regime_change() -> Scenario:
    def f(t: np.ndarray) -> np.ndarray:
        return 5 * TB + 30 * GB * t + 90 * GB * np.clip(t - 40.0, 0.0, None)

    return _make("regime_change", "growth rate x4 on day 40", 10 * TB, f, 7)


def acceleration() -> Scenario:
    return _make(
        "acceleration",
        "accelerating growth (20 GB/d + 2 GB/d per day)",
        10 * TB,
        lambda t: 5 * TB + 20 * GB * t + 1 * GB * t * t,
        8,
    )


def gaps_irregular() -> Scenario:
    def faults(ts, v, tr, rng):  # type: ignore[no-untyped-def]
        keep = rng.random(ts.size) > 0.3
        for a, b in ((20.0, 22.5), (47.0, 48.0), (70.0, 73.0)):
            keep &= ~((ts >= a) & (ts < b))
        jitter = rng.uniform(-2.0, 2.0, ts.size) / 1440.0
        return ts[keep] + jitter[keep], v[keep]

    return _make(
        "gaps_irregular",
        "gaps of 1-3 days, 30% of scrapes missing, jittered times",
        10 * TB,
        lambda t: 5 * TB + 60 * GB * t,
        9,
        faults=faults,
    )


def zero_partial() -> Scenario:
    def faults(ts, v, tr, rng):  # type: ignore[no-untyped-def]
        v = v.copy()
        v[rng.random(ts.size) < 0.01] = 0.0
        partial = rng.random(ts.size) < 0.005
        v[partial] = tr[partial] * rng.uniform(0.3, 0.7, int(partial.sum()))
        # a 3-hour partial-scan episode every week
        for day in np.arange(3.0, HISTORY_DAYS, 7.0):
            ep = (ts >= day + 0.5) & (ts < day + 0.625)
            v[ep] = tr[ep] * rng.uniform(0.4, 0.6, int(ep.sum()))
        return ts, v

    return _make(
        "zero_partial",
        "broken collector: zero and partial-scan samples",
        10 * TB,
        lambda t: 5 * TB + 60 * GB * t,
        10,
        faults=faults,
    )


def short_history() -> Scenario:
    def f(t: np.ndarray) -> np.ndarray:
        return 1.3 * TB + _integrate(t, 40 * GB * _daily_rate(t, 0.6))

    return _make(
        "short_history",
        "a new collector: forecasts from 2 days of history on",
        2 * TB,
        f,
        11,
        origins=np.arange(2.0, 16.0 + 1e-9, 0.25),
    )


def heavy_noise() -> Scenario:
    return _make(
        "heavy_noise",
        "heavy measurement noise (sd 150 GB, 1.5% of the disk)",
        10 * TB,
        lambda t: 5 * TB + 60 * GB * t,
        12,
        noise=150 * GB,
    )


def flat() -> Scenario:
    def f(t: np.ndarray) -> np.ndarray:
        return 7 * TB + 30 * GB * np.sin(2 * np.pi * (_hour(t) - 8.0) / 24.0)

    return _make("flat", "flat usage at 70% with a daily ripple (must never alarm)", 10 * TB, f, 13)


def gc_plateau() -> Scenario:
    return _make(
        "gc_plateau",
        "GC holds usage level: 100 GB/d written, 700 GB freed weekly (no crossing)",
        10 * TB,
        lambda t: _sawtooth(t, 7.3 * TB, 100 * GB, 700 * GB),
        14,
    )


ALL: tuple[Callable[[], Scenario], ...] = (
    linear,
    daily,
    weekly,
    sawtooth,
    step_up,
    step_down,
    regime_change,
    acceleration,
    gaps_irregular,
    zero_partial,
    short_history,
    heavy_noise,
    flat,
    gc_plateau,
)


def all_scenarios() -> list[Scenario]:
    return [f() for f in ALL]


if __name__ == "__main__":
    for s in all_scenarios():
        c85, c100 = s.crossing(0.85), s.crossing(1.0)
        print(
            f"{s.name:15} samples={s.observed.size:6d} start={s.truth[0] / TB:.2f}TB "
            f"85%={c85 if c85 is None else round(c85, 1)} 100%={c100 if c100 is None else round(c100, 1)} "
            f"max={s.truth[s.t <= 90].max() / s.capacity:.1%}"
        )
