"""Turn whatever a caller passes as a history into a clean hourly series.

Nothing here raises on odd input: every problem becomes a note (kept on the result) or, when
nothing usable is left, an empty series that the model reports as "not enough data".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

HOUR_NS = 3_600_000_000_000
# An hour that reads this far below both its neighbourhoods (and comes back) is a broken scan.
_DIP_FRACTION = 0.03
_DIP_SIGMAS = 8.0
_DIP_CONTEXT = 6  # hourly points on each side
_TAIL_FRACTION = 0.75


@dataclass
class Prepared:
    """The cleaned history: hourly medians at bin centres, plus what was done to get there."""

    hourly: pd.Series  # float64 bytes, tz-aware UTC index (bin centres), gaps left out
    last_sample: pd.Timestamp | None
    now: pd.Timestamp | None
    notes: list[str] = field(default_factory=list)
    raw_points: int = 0
    dropped_points: int = 0


def _to_utc_index(index: Any, notes: list[str]) -> pd.DatetimeIndex | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns while guessing a format; we report NaT
        return _to_utc_index_quiet(index, notes)


def _to_utc_index_quiet(index: Any, notes: list[str]) -> pd.DatetimeIndex | None:
    try:
        if isinstance(index, pd.DatetimeIndex):
            idx = index
        else:
            idx = pd.DatetimeIndex(pd.to_datetime(index, errors="coerce", utc=False))
    except (TypeError, ValueError, OverflowError):
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(index, errors="coerce", utc=True))
        except (TypeError, ValueError, OverflowError):
            return None
    if idx.tz is None:
        notes.append("the index has no time zone: taken as UTC")
        idx = idx.tz_localize("UTC")
    else:
        idx = idx.tz_convert("UTC")
    return idx.as_unit("ns")


def _coerce_now(value: Any, notes: list[str]) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        notes.append(f"history.attrs['now'] is not a time ({value!r}): ignored")
        return None
    if ts is pd.NaT or pd.isna(ts):
        notes.append(f"history.attrs['now'] is not a time ({value!r}): ignored")
        return None
    if ts.tzinfo is None:
        notes.append("history.attrs['now'] has no time zone: taken as UTC")
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").as_unit("ns")


def _drop_transient_dips(values: np.ndarray) -> np.ndarray:
    """Mask of hourly points to keep: False for dips far below the level on both sides."""
    n = values.size
    keep = np.ones(n, dtype=bool)
    if n < 3:
        return keep
    k = _DIP_CONTEXT
    padded = np.concatenate([np.full(k, np.nan), values, np.full(k, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, k)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        meds = np.nanmedian(windows, axis=1)
    before = meds[:n]  # window ending just before i
    after = meds[k + 1 : k + 1 + n]  # window starting just after i
    ref = np.fmin(before, after)
    # both sides must exist, unless we are at the very end (then only "before")
    both = ~np.isnan(before) & ~np.isnan(after)
    diffs = np.diff(values)
    sigma = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) if diffs.size else 0.0
    thr = np.maximum(_DIP_FRACTION * np.abs(ref), _DIP_SIGMAS * sigma)
    dip = both & (values < ref - thr)
    # The last hours have no "after" yet: a reading far below the level before them is held
    # back (a partial scan, most likely) until three later hours confirm it as a real drop.
    n_after = np.minimum(k, n - 1 - np.arange(n))
    tail = (n_after < 3) & ~np.isnan(before) & (values < _TAIL_FRACTION * before)
    keep[dip | tail] = False
    return keep


def prepare(history: Any) -> Prepared:
    """Clean a history of bytes used. Never raises; see the module docstring."""
    notes: list[str] = []
    attrs: dict[str, Any] = {}
    try:
        attrs = dict(getattr(history, "attrs", {}) or {})
    except (TypeError, ValueError):
        attrs = {}
    now = _coerce_now(attrs.get("now"), notes)
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype="float64")
    if history is None:
        return Prepared(empty, None, now, ["no history given"])
    if not isinstance(history, pd.Series):
        try:
            history = pd.Series(history)
        except (TypeError, ValueError):
            return Prepared(
                empty, None, now, [f"history is not a series ({type(history).__name__})"]
            )
    raw_points = int(history.size)
    if raw_points == 0:
        return Prepared(empty, None, now, notes + ["the history is empty"])
    idx = _to_utc_index(history.index, notes)
    if idx is None:
        return Prepared(empty, None, now, notes + ["the index is not made of times"], raw_points)
    try:
        vals = pd.to_numeric(
            pd.Series(np.asarray(history.to_numpy(), dtype=object)), errors="coerce"
        )
        v = np.asarray(vals.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    except (TypeError, ValueError):
        return Prepared(empty, None, now, notes + ["the values are not numbers"], raw_points)
    t = idx.asi8
    ok = np.isfinite(v) & ~np.asarray(idx.isna()) & (v >= 0)
    bad = int((~ok).sum())
    if bad:
        notes.append(f"{bad} sample(s) missing, not finite, negative or without a time: ignored")
    t, v = t[ok], v[ok]
    if v.size == 0:
        return Prepared(empty, None, now, notes + ["no usable sample"], raw_points, raw_points)
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    if np.any(order != np.arange(order.size)):
        notes.append("samples were not in time order: sorted")
    # Zeros from a broken collector: a disk in use does not read exactly 0 bytes.
    if np.median(v) > 0:
        zeros = v == 0
        if zeros.any():
            notes.append(f"{int(zeros.sum())} zero sample(s) ignored")
            t, v = t[~zeros], v[~zeros]
    last_sample = pd.Timestamp(int(t[-1]), tz="UTC")
    # Hourly medians: duplicates, irregular sampling and isolated partial scans all fold here.
    bins = t // HOUR_NS
    uniq = np.unique(bins)
    if uniq.size != t.size:
        s = pd.Series(v).groupby(bins).median()
        hv = s.to_numpy(dtype="float64")
        hb = s.index.to_numpy()
    else:
        hv, hb = v, uniq
    keep = _drop_transient_dips(hv)
    dips = int((~keep).sum())
    if dips:
        notes.append(f"{dips} hour(s) far below the level on both sides (partial scans) ignored")
    hv, hb = hv[keep], hb[keep]
    centres = pd.DatetimeIndex(hb * HOUR_NS + HOUR_NS // 2, tz="UTC").as_unit("ns")
    # Never let a bin centre lie after the last sample (the model's origin).
    if centres.size and centres[-1] > last_sample:
        c = centres.asi8.copy()
        c[-1] = last_sample.value
        centres = pd.DatetimeIndex(c, tz="UTC").as_unit("ns")
    hourly = pd.Series(hv, index=centres, dtype="float64")
    if now is not None and now < last_sample:
        notes.append("history.attrs['now'] is before the last sample: the last sample is used")
        now = last_sample
    return Prepared(
        hourly,
        last_sample,
        now if now is not None else last_sample,
        notes,
        raw_points,
        raw_points - int(v.size),
    )
