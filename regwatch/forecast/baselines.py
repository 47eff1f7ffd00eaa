"""Baselines the forecaster is measured against: Prometheus ``predict_linear`` and the last value.

``predict_linear`` is reproduced as Prometheus computes it (promql ``funcPredictLinear`` and
``linearRegression``): ordinary least squares over the raw samples of the range window
``(t - range, t]``, with x in seconds measured from the evaluation time ``t``, and the value
``slope * horizon + intercept``. Fewer than two samples give no result (None); a window whose
values are all equal gives slope 0 and that value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _window(
    times_ns: np.ndarray, values: np.ndarray, t_ns: int, range_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    lo = int(np.searchsorted(times_ns, t_ns - range_ns, side="right"))
    hi = int(np.searchsorted(times_ns, t_ns, side="right"))
    return times_ns[lo:hi], values[lo:hi]


def linear_regression(
    times_ns: np.ndarray, values: np.ndarray, intercept_ns: int
) -> tuple[float, float]:
    """Prometheus ``linearRegression``: (slope per second, intercept at ``intercept_ns``)."""
    if values.size and np.all(values == values[0]):
        if math.isinf(float(values[0])):
            return math.nan, math.nan
        return 0.0, float(values[0])
    x = (times_ns - intercept_ns).astype("float64") / 1e9
    n = float(values.size)
    sum_x, sum_y = float(math.fsum(x)), float(math.fsum(values))
    sum_xy, sum_x2 = float(math.fsum(x * values)), float(math.fsum(x * x))
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = cov_xy / var_x if var_x != 0 else math.nan
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def predict_linear(
    history: pd.Series, at: pd.Timestamp, range_: pd.Timedelta, horizon: pd.Timedelta
) -> float | None:
    """``predict_linear(history[range_], horizon)`` evaluated at ``at`` (None: no result)."""
    t = pd.DatetimeIndex(history.index).as_unit("ns").asi8
    v = history.to_numpy(dtype="float64")
    wt, wv = _window(t, v, int(pd.Timestamp(at).value), int(pd.Timedelta(range_).value))
    if wv.size < 2:
        return None
    slope, intercept = linear_regression(wt, wv, int(pd.Timestamp(at).value))
    return float(slope * pd.Timedelta(horizon).total_seconds() + intercept)


def predict_linear_fit(
    times_ns: np.ndarray, values: np.ndarray, at_ns: int, range_ns: int
) -> tuple[float, float] | None:
    """The (slope per second, value at ``at``) pair behind predict_linear, for many horizons."""
    wt, wv = _window(times_ns, values, at_ns, range_ns)
    if wv.size < 2:
        return None
    return linear_regression(wt, wv, at_ns)


def last_value(history: pd.Series, at: pd.Timestamp) -> float | None:
    """The naive forecast: the last sample at or before ``at``, for every horizon."""
    sub = history.loc[:at]
    return float(sub.iloc[-1]) if len(sub) else None
