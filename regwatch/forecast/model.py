"""Storage forecasting: the Forecaster estimator, the Forecast record and the two functions.

See docs/forecast.md for the model, the statuses and the measured results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from regwatch.forecast import _core
from regwatch.forecast._prepare import HOUR_NS, Prepared, prepare

OK = "ok"
NOT_ENOUGH_DATA = "not enough data"
UNPREDICTABLE = "unpredictable"
STATUSES = (OK, NOT_ENOUGH_DATA, UNPREDICTABLE)

DAY = pd.Timedelta(days=1)
DEFAULT_HORIZON = pd.Timedelta(days=30)
DEFAULT_MAX_HORIZON = pd.Timedelta(days=90)
_MIN_POINTS = 12  # hourly points
_MIN_SPAN_DAYS = 0.5
_BACKTEST_HORIZONS = np.array([1 / 24, 6 / 24, 1.0, 3.0, 7.0, 14.0, 30.0])
# Backtest origins, days before the last sample: dense near the end, where the regime is now.
_ORIGINS_BACK = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 14.0, 21.0, 30.0, 45.0)
_RECENCY_DAYS = 10.0
_SIMPLER = 1.15  # a trend without curvature wins unless the curve is 15% better
_UNPREDICTABLE_WIDTH = 0.5  # 7-day half-width above this share of the level
_UNPREDICTABLE_STEPS = 5  # one-off level shifts within 14 days


def _empty_series() -> pd.Series:
    return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype="float64")


@dataclass(frozen=True)
class Crossing:
    """Internal: first crossing times of a threshold by the three paths."""

    eta: pd.Timestamp | None
    lower: pd.Timestamp | None
    upper: pd.Timestamp | None


@dataclass(frozen=True)
class Forecast:
    """A storage forecast.

    ``predicted``, ``lower`` and ``upper`` are bytes on an hourly grid from the last sample to
    ``now + horizon`` (the end point included); ``[lower, upper]`` is a ``level`` prediction
    interval. ``status`` is one of ``"ok"``, ``"not enough data"`` (the series are then empty)
    or ``"unpredictable"`` (the series are a best effort that must not drive decisions);
    ``reason`` says why in words. ``growth_per_day`` is the net trend in bytes per day at
    ``now`` (GC and retention drops included), ``model`` describes what was fitted and
    ``notes`` what was done to the input.
    """

    predicted: pd.Series
    lower: pd.Series
    upper: pd.Series
    level: float
    status: str
    reason: str
    now: pd.Timestamp | None = None
    last_sample: pd.Timestamp | None = None
    growth_per_day: float = math.nan
    model: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == OK

    def time_to_threshold(
        self, threshold_bytes: float, max_horizon: pd.Timedelta | None = None
    ) -> None | dict[str, Any]:
        """When this forecast reaches ``threshold_bytes``; see :func:`time_to_threshold`."""
        return _crossing_result(self, threshold_bytes, max_horizon)


def _first_crossing(series: pd.Series, threshold: float) -> pd.Timestamp | None:
    if series.empty:
        return None
    v = series.to_numpy(dtype="float64")
    above = np.flatnonzero(v >= threshold)
    if above.size == 0:
        return None
    i = int(above[0])
    t = series.index.asi8
    if i == 0:
        return pd.Timestamp(int(t[0]), tz="UTC")
    v0, v1 = v[i - 1], v[i]
    frac = (threshold - v0) / (v1 - v0) if v1 != v0 else 1.0
    return pd.Timestamp(int(t[i - 1] + frac * (t[i] - t[i - 1])), tz="UTC")


def _crossing_result(
    fc: Forecast, threshold_bytes: Any, max_horizon: pd.Timedelta | None
) -> None | dict[str, Any]:
    base: dict[str, Any] = {"eta": None, "lower": None, "upper": None}
    try:
        thr = float(threshold_bytes)
    except (TypeError, ValueError):
        return {
            **base,
            "status": "bad threshold",
            "reason": f"threshold {threshold_bytes!r} is not a number",
        }
    if not math.isfinite(thr):
        return {
            **base,
            "status": "bad threshold",
            "reason": f"threshold {threshold_bytes!r} is not finite",
        }
    if fc.status != OK:
        return {**base, "status": fc.status, "reason": fc.reason}
    now = fc.now if fc.now is not None else fc.last_sample
    sl = slice(None)
    if max_horizon is not None and now is not None:
        try:
            end = now + pd.Timedelta(max_horizon)
            sl = slice(None, end)
        except (TypeError, ValueError):
            pass
    pred, lo, up = fc.predicted.loc[sl], fc.lower.loc[sl], fc.upper.loc[sl]
    if now is not None:
        pred, lo, up = pred.loc[now:], lo.loc[now:], up.loc[now:]
        if pred.empty:
            pred, lo, up = fc.predicted.iloc[-1:], fc.lower.iloc[-1:], fc.upper.iloc[-1:]
    eta = _first_crossing(pred, thr)
    earliest = _first_crossing(up, thr)
    latest = _first_crossing(lo, thr)
    if earliest is None:
        return None
    if eta is not None and eta == pred.index[0] and pred.iloc[0] >= thr:
        reason = "already at or above the threshold"
    elif eta is None:
        reason = "the upper bound reaches the threshold; the prediction does not within the horizon"
    else:
        reason = "the prediction reaches the threshold"
    return {"eta": eta, "lower": earliest, "upper": latest, "status": OK, "reason": reason}


class Forecaster(BaseEstimator):  # type: ignore[misc]
    """Robust storage-growth forecaster (scikit-learn style).

    ``fit(series)`` takes bytes used indexed by UTC timestamps (``series.attrs["now"]``, when
    set, is the evaluation time) and returns ``self``; ``predict(horizon)`` returns a
    :class:`Forecast`. Neither raises on odd input: the Forecast's status says what happened.

    Parameters: ``level`` is the coverage of the prediction interval.
    Fitted attributes: ``status_``, ``reason_``, ``now_``, ``last_sample_``, ``config_``
    (the selected candidate), ``growth_per_day_``, ``steps_``, ``widths_`` (interval half-width
    per backtested horizon, bytes), ``notes_``.
    """

    def __init__(self, level: float = 0.9) -> None:
        self.level = level

    # -- fitting -------------------------------------------------------------------------
    def fit(self, series: Any, y: Any = None) -> Forecaster:
        # Hundreds of tiny solves: a multi-threaded BLAS only adds contention (measured 8x
        # slower on 2 busy cores), so the fit runs on one BLAS thread.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(series)

    def _fit(self, series: Any) -> Forecaster:
        prep = prepare(series)
        self.notes_ = tuple(prep.notes)
        self.now_ = prep.now
        self.last_sample_ = prep.last_sample
        self.prepared_ = prep
        self.design_: _core.Design | None = None
        self.config_: _core.Config | None = None
        self.steps_: _core.Steps | None = None
        self.growth_per_day_ = math.nan
        self.widths_: dict[float, float] = {}
        level = self._level()
        hourly = prep.hourly
        if hourly.size < 1 or prep.last_sample is None:
            self._set_status(NOT_ENOUGH_DATA, "; ".join(prep.notes) or "no usable sample")
            return self
        span = (hourly.index[-1] - hourly.index[0]) / DAY
        if hourly.size < _MIN_POINTS or span < _MIN_SPAN_DAYS:
            self._set_status(
                NOT_ENOUGH_DATA,
                f"{hourly.size} usable hour(s) over {span * 24:.1f} h; at least "
                f"{_MIN_POINTS} hours over {_MIN_SPAN_DAYS * 24:g} h are needed",
            )
            return self
        t_ns = hourly.index.asi8
        origin_ns = int(prep.last_sample.value)
        x = (t_ns - origin_ns) / (24 * HOUR_NS)
        yv = hourly.to_numpy(dtype="float64")
        scale = float(np.median(np.abs(yv[-min(yv.size, 48) :])))
        if not scale > 0:
            scale = max(float(np.max(np.abs(yv))), 1.0)
        ys = yv / scale
        hour = ((t_ns // HOUR_NS) % 24).astype(np.int64)
        dow = ((t_ns // (24 * HOUR_NS) + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday
        self.scale_ = scale
        self.origin_ns_ = origin_ns

        cfg, errors = self._select(x, ys, hour, dow)
        steps = _core.detect_steps(x, ys)
        des = (
            _core.fit_config(cfg, x, ys, hour, dow, steps, final=True) if cfg is not None else None
        )
        if des is None:
            cfg = _core.Config(3.0, "flat")
            des = _core.fit_config(cfg, x, ys, hour, dow, steps, final=True)
        if des is None:
            self._set_status(NOT_ENOUGH_DATA, "too few usable points to fit any trend")
            return self
        self.config_, self.design_, self.steps_ = cfg, des, steps
        self._x, self._ys, self._hour, self._dow = x, ys, hour, dow
        self.widths_ = self._widths(errors, des, level)
        self.growth_per_day_ = _core.slope_of(des, steps) * scale
        now_days = (prep.now.value - origin_ns) / (24 * HOUR_NS) if prep.now is not None else 0.0
        if des.shape == "quadratic":
            self.growth_per_day_ += 2 * float(des.coef[des.n_seg + 1]) / 30.0 * now_days * scale
        level_now = float(np.median(ys[-min(ys.size, 24) :]))
        w7 = self._width_at(7.0)
        if steps.one_off_recent >= _UNPREDICTABLE_STEPS:
            self._set_status(
                UNPREDICTABLE,
                f"{steps.one_off_recent} sudden level shifts in the last 14 days: the usage jumps "
                "too often for a trend to mean anything",
            )
        elif abs(level_now) > 0 and w7 / scale > _UNPREDICTABLE_WIDTH * abs(level_now):
            self._set_status(
                UNPREDICTABLE,
                f"backtests within the history miss by up to ±{w7 / scale / abs(level_now):.0%} of the "
                "level at 7 days: the fit is too poor to forecast",
            )
        else:
            why = (cfg.describe() if cfg is not None else "flat") + (
                f", GC/retention drops every {steps.period:.1f} d" if steps.period else ""
            )
            self._set_status(OK, why)
        return self

    def _level(self) -> float:
        try:
            lv = float(self.level)
        except (TypeError, ValueError):
            return 0.9
        return lv if 0.0 < lv < 1.0 else 0.9

    def _set_status(self, status: str, reason: str) -> None:
        self.status_ = status
        self.reason_ = reason

    def _select(
        self, x: np.ndarray, ys: np.ndarray, hour: np.ndarray, dow: np.ndarray
    ) -> tuple[_core.Config | None, dict[_core.Config, list[tuple[float, float, float]]]]:
        """Walk-forward backtests inside the history: pick a candidate, keep its errors.

        Origins are denser near the end (0.5 d to 45 d back), and each error is weighted by
        how recent its target is, so that a change of growth rate is followed within days.
        Errors whose target lies across a one-off step of the full history (an import or a
        cleanup, which no trend can foresee) are left out; periodic GC drops are modelled
        and stay in.
        """
        span = float(x[-1] - x[0])
        min_train = max(0.25, min(1.0, span / 2))
        first = float(x[0]) + min_train
        origins = [-o for o in _ORIGINS_BACK if -o >= first]
        if not origins and -0.25 >= first:
            origins = [max(first, -0.5)]
        full_steps = _core.detect_steps(x, ys)
        periodic = full_steps.period is not None
        known = (full_steps.period, full_steps.drop_size) if full_steps.period is not None else None
        one_off = (
            full_steps.times[~((full_steps.sizes < 0) & periodic)]
            if full_steps.times.size
            else full_steps.times
        )
        errors: dict[_core.Config, list[tuple[float, float, float]]] = {
            c: [] for c in _core.CANDIDATES
        }
        for o in origins:
            past = x <= o
            xp = x[past] - o
            yp = ys[past]
            steps = _core.detect_steps(xp, yp, known)
            if known is not None and steps.period is None:
                continue  # no GC seen yet at this origin: today's model cannot be replayed
            targets = []
            for h in _BACKTEST_HORIZONS:
                j = int(np.searchsorted(x, o + h))
                best = None
                for jj in (j - 1, j):
                    near = 0 <= jj < x.size and abs(x[jj] - (o + h)) <= 1.01 / 24
                    if near and (best is None or abs(x[jj] - (o + h)) < abs(x[best] - (o + h))):
                        best = jj
                if best is None or x[best] <= o:
                    continue
                if one_off.size and np.any((one_off > o) & (one_off <= x[best] + 1e-9)):
                    continue
                targets.append((float(h), best))
            if not targets:
                continue
            idx = np.array([b for _, b in targets])
            xf = x[idx] - o
            for cfg in _core.CANDIDATES:
                des = _core.fit_config(cfg, xp, yp, hour[past], dow[past], steps)
                if des is None:
                    continue
                pred = _core.predict_design(des, steps, xf, hour[idx], dow[idx])
                for (h, _), p, j in zip(targets, pred, idx):
                    age = -float(x[j])
                    errors[cfg].append((h, float(ys[j] - p), math.exp(-age / _RECENCY_DAYS)))
        scored = []
        for cfg, errs in errors.items():
            if not errs:
                continue
            by_h: dict[float, list[tuple[float, float]]] = {}
            for h, e, w in errs:
                by_h.setdefault(h, []).append((abs(e) / math.sqrt(h), w))
            per_h = []
            for v in by_h.values():
                a = np.array(v)
                per_h.append(float(np.sum(a[:, 0] * a[:, 1]) / max(np.sum(a[:, 1]), 1e-300)))
            scored.append((float(np.mean(per_h)), len(by_h), cfg))
        if not scored:
            return None, errors
        most = max(n for _, n, _ in scored)
        # Compare on the candidates that could be tested at every horizon available.
        pool = [s for s in scored if s[1] == most]
        pool.sort(key=lambda s: (s[0], _core.CANDIDATES.index(s[2])))
        # A curve extrapolates wildly when wrong: take it only when it is clearly better.
        best_score = pool[0][0]
        # Among trends as good as the best, the flat one, else the longest window: the least
        # variance when the differences are noise.
        simple = [p for p in pool if p[2].shape != "quadratic" and p[0] <= _SIMPLER * best_score]
        simple.sort(key=lambda p: (p[2].shape != "flat", -p[2].window_days))
        return (simple[0] if simple else pool[0])[2], errors

    def _widths(
        self,
        errors: dict[_core.Config, list[tuple[float, float, float]]],
        des: _core.Design,
        level: float,
    ) -> dict[float, float]:
        cfg = self.config_
        errs = errors.get(cfg, []) if cfg is not None else []
        by_h: dict[float, list[float]] = {}
        for h, e, _w in errs:
            by_h.setdefault(h, []).append(abs(e))
        widths: dict[float, float] = {}
        for h, v in sorted(by_h.items()):
            a = np.sort(np.array(v))
            n = a.size
            if n < 3:
                continue
            q = min(1.0, level * (n + 1) / n)
            widths[h] = float(np.quantile(a, q)) * self.scale_
        self._floor_sigma = des.resid_scale * self.scale_
        self._floor_slope = des.slope_se * self.scale_
        self._z = float(_normal_quantile(0.5 + level / 2))
        return widths

    def _width_at(self, h_days: float) -> float:
        return float(self._width_curve(np.array([h_days]))[0])

    def _width_curve(self, h: np.ndarray) -> np.ndarray:
        h = np.maximum(h, 0.0)
        floor = self._z * np.sqrt(self._floor_sigma**2 + (h * self._floor_slope) ** 2)
        if not self.widths_:
            return floor
        hs = np.array(sorted(self.widths_))
        ws = np.maximum.accumulate(np.array([self.widths_[k] for k in hs]))
        w0 = self._z * self._floor_sigma
        xs = np.concatenate([[0.0], hs])
        wv = np.maximum.accumulate(np.concatenate([[min(w0, ws[0])], ws]))
        inside = np.interp(h, xs, wv)
        beyond = ws[-1] * h / hs[-1]
        w = np.where(h <= hs[-1], inside, beyond)
        return np.asarray(np.maximum(w, floor), dtype=float)

    # -- prediction ----------------------------------------------------------------------
    def predict(self, horizon: Any = DEFAULT_HORIZON) -> Forecast:
        status = getattr(self, "status_", None)
        if status is None:
            return Forecast(
                _empty_series(),
                _empty_series(),
                _empty_series(),
                self._level(),
                NOT_ENOUGH_DATA,
                "the forecaster is not fitted: call fit(series) first",
            )
        base: dict[str, Any] = {
            "level": self._level(),
            "now": self.now_,
            "last_sample": self.last_sample_,
            "notes": self.notes_,
        }
        if self.design_ is None or self.steps_ is None:
            return Forecast(
                _empty_series(),
                _empty_series(),
                _empty_series(),
                status=status,
                reason=self.reason_,
                **base,
            )
        try:
            hz = pd.Timedelta(horizon)
            if pd.isna(hz):
                raise ValueError
        except (TypeError, ValueError):
            return Forecast(
                _empty_series(),
                _empty_series(),
                _empty_series(),
                status=NOT_ENOUGH_DATA,
                reason=f"horizon {horizon!r} is not a duration",
                **base,
            )
        hz = max(hz, pd.Timedelta(0))
        hz = min(hz, pd.Timedelta(days=3650))
        last, now = self.last_sample_, self.now_
        if last is None or now is None:
            return Forecast(
                _empty_series(),
                _empty_series(),
                _empty_series(),
                status=NOT_ENOUGH_DATA,
                reason="no usable sample",
                **base,
            )
        start = last.value
        end = now.value + hz.value
        grid = np.arange(start, end + 1, HOUR_NS, dtype=np.int64)
        if grid[-1] != end:
            grid = np.append(grid, end)
        xf = (grid - start) / (24 * HOUR_NS)
        hour = ((grid // HOUR_NS) % 24).astype(np.int64)
        dow = ((grid // (24 * HOUR_NS) + 3) % 7).astype(np.int64)
        pred = _core.predict_design(self.design_, self.steps_, xf, hour, dow) * self.scale_
        pred = np.maximum(pred, 0.0)
        w = self._width_curve(xf)
        lo = np.maximum(pred - w, 0.0)
        up = pred + w
        idx = pd.DatetimeIndex(grid, tz="UTC").as_unit("ns")
        cfg = self.config_
        model = {
            "config": cfg.describe() if cfg else None,
            "window_days": cfg.window_days if cfg else None,
            "shape": cfg.shape if cfg else None,
            "steps": int(self.steps_.times.size),
            "gc_period_days": self.steps_.period,
            "gc_drop_bytes": self.steps_.drop_size * self.scale_ if self.steps_.period else None,
            "interval_halfwidth_bytes": {float(k): v for k, v in self.widths_.items()},
        }
        return Forecast(
            pd.Series(pred, index=idx, name="predicted"),
            pd.Series(lo, index=idx, name="lower"),
            pd.Series(up, index=idx, name="upper"),
            status=status,
            reason=self.reason_,
            growth_per_day=self.growth_per_day_,
            model=model,
            **base,
        )


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(max(p, 1e-9), 1 - 1e-9))


def forecast(history: Any, horizon: Any = DEFAULT_HORIZON, level: float = 0.9) -> Forecast:
    """Forecast bytes used from ``history`` up to ``now + horizon``.

    ``history`` is a pandas Series of bytes used indexed by tz-aware UTC timestamps;
    ``history.attrs["now"]``, when present, is the evaluation time (it may be later than the
    last sample). Never raises: odd input gives a Forecast whose ``status`` says why.
    """
    try:
        return Forecaster(level=level).fit(history).predict(horizon)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raise on odd input"
        return Forecast(
            _empty_series(),
            _empty_series(),
            _empty_series(),
            level,
            NOT_ENOUGH_DATA,
            f"the history could not be read ({type(exc).__name__}: {exc})",
        )


def time_to_threshold(
    history: Any,
    threshold_bytes: float,
    max_horizon: Any = DEFAULT_MAX_HORIZON,
    level: float = 0.9,
) -> None | dict[str, Any]:
    """When usage will reach ``threshold_bytes``, looking at most ``max_horizon`` past now.

    Returns ``None`` when the forecast is sound (status "ok") and even the upper bound of the
    interval stays below the threshold up to ``now + max_horizon``: nothing to warn about.
    Otherwise a dict with keys ``eta`` (the predicted crossing), ``lower`` (the earliest
    plausible crossing: the upper bound's), ``upper`` (the latest plausible: the lower bound's),
    each a UTC Timestamp or None when that path does not cross within the horizon, and
    ``status`` and ``reason``. A status other than "ok" ("not enough data", "unpredictable",
    "bad threshold") comes with all three times None: the caller cannot rule a crossing out.
    Already at or above the threshold: all three are the first time of the forecast grid.
    Never raises.
    """
    try:
        hz = pd.Timedelta(max_horizon)
        if pd.isna(hz):
            raise ValueError
    except (TypeError, ValueError):
        return {
            "eta": None,
            "lower": None,
            "upper": None,
            "status": NOT_ENOUGH_DATA,
            "reason": f"max_horizon {max_horizon!r} is not a duration",
        }
    fc = forecast(history, hz, level=level)
    return fc.time_to_threshold(threshold_bytes, hz)


__all__ = [
    "NOT_ENOUGH_DATA",
    "OK",
    "STATUSES",
    "UNPREDICTABLE",
    "Forecast",
    "Forecaster",
    "Prepared",
    "forecast",
    "time_to_threshold",
]
