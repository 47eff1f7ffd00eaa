"""regwatch.forecast: the API contract, odd input (never raises, clear status), and behaviour on
scenarios with a known truth. The full walk-forward benchmark is bench/forecast/harness.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")

from regwatch.forecast import (
    NOT_ENOUGH_DATA,
    OK,
    STATUSES,
    UNPREDICTABLE,
    Forecast,
    Forecaster,
    forecast,
    time_to_threshold,
)
from regwatch.forecast.baselines import predict_linear

GB = 1e9
TB = 1e12
START = pd.Timestamp("2026-01-05", tz="UTC")


def series(days: float, fn, step_min: int = 5, seed: int = 0, noise: float = 2 * GB) -> pd.Series:
    n = int(days * 1440 / step_min) + 1
    t = np.arange(n) * step_min / 1440.0
    rng = np.random.default_rng(seed)
    idx = pd.DatetimeIndex(START + pd.to_timedelta(t * 86400, unit="s")).as_unit("ns")
    return pd.Series(fn(t) + rng.normal(0, noise, n), index=idx)


def linear(days: float = 30, rate: float = 50 * GB, **kw) -> pd.Series:
    return series(days, lambda t: 5 * TB + rate * t, **kw)


# -- API contract ---------------------------------------------------------------------------


def test_forecast_shape_and_fields() -> None:
    h = linear(20)
    fc = forecast(h, pd.Timedelta(days=7))
    assert isinstance(fc, Forecast)
    assert fc.status == OK and fc.reason
    assert 0 < fc.level < 1
    for s in (fc.predicted, fc.lower, fc.upper):
        assert isinstance(s, pd.Series)
        assert str(s.index.tz) == "UTC"
        assert s.index[0] == h.index[-1]
        assert s.index[-1] == h.index[-1] + pd.Timedelta(days=7)
        assert (np.diff(s.index.asi8) <= 3_600_000_000_000).all()
    assert (fc.lower <= fc.predicted).all() and (fc.predicted <= fc.upper).all()
    assert fc.growth_per_day == pytest.approx(50 * GB, rel=0.05)


def test_forecaster_is_sklearn_style() -> None:
    est = Forecaster(level=0.8)
    assert est.get_params() == {"level": 0.8}
    assert not [k for k in vars(est) if k.endswith("_")]  # __init__ holds no logic
    assert est.fit(linear(10)) is est
    assert est.status_ == OK and est.config_ is not None
    fc = est.predict(pd.Timedelta(days=3))
    assert fc.level == 0.8 and fc.status == OK


def test_predict_before_fit_is_a_status() -> None:
    fc = Forecaster().predict(pd.Timedelta(days=1))
    assert fc.status == NOT_ENOUGH_DATA and "fit" in fc.reason


def test_now_attr_extends_the_grid() -> None:
    h = linear(10)
    now = h.index[-1] + pd.Timedelta(days=2)
    h.attrs["now"] = now
    fc = forecast(h, pd.Timedelta(days=5))
    assert fc.now == now
    assert fc.predicted.index[0] == h.index[-1]
    assert fc.predicted.index[-1] == now + pd.Timedelta(days=5)


def test_time_to_threshold_none_means_no_plausible_crossing() -> None:
    h = series(20, lambda t: 5 * TB + 0 * t)
    assert time_to_threshold(h, 9 * TB, pd.Timedelta(days=30)) is None


def test_time_to_threshold_dict_and_order() -> None:
    h = linear(20)  # 6 TB at day 20, +50 GB/d: 7 TB at day 40
    r = time_to_threshold(h, 7 * TB, pd.Timedelta(days=60))
    assert r is not None and r["status"] == OK
    assert set(r) >= {"eta", "lower", "upper", "status", "reason"}
    assert r["lower"] <= r["eta"] <= r["upper"]
    truth = START + pd.Timedelta(days=40)
    assert abs(r["eta"] - truth) < pd.Timedelta(hours=12)


def test_time_to_threshold_already_above() -> None:
    h = linear(10)
    r = time_to_threshold(h, 1 * TB, pd.Timedelta(days=5))
    assert r is not None and r["eta"] == r["lower"] == r["upper"] == h.index[-1]
    assert "already" in r["reason"]


def test_time_to_threshold_bad_status_gives_no_times() -> None:
    r = time_to_threshold(pd.Series([], dtype=float), 1 * TB, pd.Timedelta(days=5))
    assert r is not None and r["status"] == NOT_ENOUGH_DATA
    assert r["eta"] is None and r["lower"] is None and r["upper"] is None


# -- odd input: never raises, clear status ----------------------------------------------------


def _odd_inputs() -> dict[str, object]:
    base = linear(5)
    naive = base.copy()
    naive.index = naive.index.tz_localize(None)
    nan = base.copy()
    nan.iloc[::3] = np.nan
    dup = pd.concat([base, base.iloc[::7]])
    unsorted = base.sample(frac=1.0, random_state=1)
    strange_now = base.copy()
    strange_now.attrs["now"] = "not a time"
    early_now = base.copy()
    early_now.attrs["now"] = base.index[0]
    return {
        "empty": pd.Series([], dtype=float),
        "empty_datetime": pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float),
        "single": base.iloc[:1],
        "two": base.iloc[:2],
        "constant": pd.Series(3 * TB, index=base.index),
        "zeros": pd.Series(0.0, index=base.index),
        "decreasing": series(5, lambda t: 5 * TB - 40 * GB * t),
        "nan_laden": nan,
        "all_nan": pd.Series(np.nan, index=base.index),
        "infinite": base.replace(base.iloc[10], np.inf),
        "negative": -base,
        "tz_naive": naive,
        "unsorted": unsorted,
        "duplicates": dup,
        "strings": pd.Series(["a", "b", "3"], index=base.index[:3]),
        "object_numbers": base.astype(object),
        "int_index": pd.Series(base.to_numpy()),
        "bad_index": pd.Series([1.0, 2.0], index=["x", "y"]),
        "list": [1.0, 2.0, 3.0],
        "none": None,
        "dict": {"a": 1},
        "strange_now": strange_now,
        "now_before_last": early_now,
    }


@pytest.mark.parametrize("name", sorted(_odd_inputs()))
def test_odd_input_never_raises(name: str) -> None:
    h = _odd_inputs()[name]
    fc = forecast(h, pd.Timedelta(days=3))
    assert fc.status in STATUSES and fc.reason
    r = time_to_threshold(h, 6 * TB, pd.Timedelta(days=3))
    assert r is None or r["status"] in (*STATUSES, "bad threshold")
    est = Forecaster().fit(h)
    assert est.status_ in STATUSES
    assert est.predict("not a duration").status in STATUSES


def test_odd_input_statuses() -> None:
    odd = _odd_inputs()
    for name in (
        "empty",
        "empty_datetime",
        "single",
        "two",
        "all_nan",
        "negative",
        "none",
        "strings",
        "bad_index",
        "list",
        "dict",
    ):
        assert forecast(odd[name], pd.Timedelta(days=1)).status == NOT_ENOUGH_DATA, name
    for name in (
        "constant",
        "decreasing",
        "nan_laden",
        "tz_naive",
        "unsorted",
        "duplicates",
        "object_numbers",
        "strange_now",
        "now_before_last",
        "infinite",
        "zeros",
    ):
        assert forecast(odd[name], pd.Timedelta(days=1)).status == OK, name
    assert any("time zone" in n for n in forecast(odd["tz_naive"]).notes)
    assert any("sorted" in n for n in forecast(odd["unsorted"]).notes)
    const = forecast(odd["constant"], pd.Timedelta(days=3))
    assert np.allclose(const.predicted, 3 * TB)
    dec = forecast(odd["decreasing"], pd.Timedelta(days=3))
    assert dec.growth_per_day == pytest.approx(-40 * GB, rel=0.1)


def test_bad_threshold_and_horizon() -> None:
    h = linear(5)
    assert time_to_threshold(h, "lots", pd.Timedelta(days=1))["status"] == "bad threshold"  # type: ignore[index]
    assert time_to_threshold(h, math.nan, pd.Timedelta(days=1))["status"] == "bad threshold"  # type: ignore[index]
    assert time_to_threshold(h, 6 * TB, "soon")["status"] == NOT_ENOUGH_DATA  # type: ignore[index]
    assert forecast(h, "soon").status == NOT_ENOUGH_DATA


def test_short_history_of_two_days_is_ok() -> None:
    fc = forecast(linear(2), pd.Timedelta(days=7))
    assert fc.status == OK
    assert fc.growth_per_day == pytest.approx(50 * GB, rel=0.2)


def test_erratic_usage_is_unpredictable() -> None:
    rng = np.random.default_rng(3)
    jumps = np.cumsum(rng.choice([-1, 1], 30) * rng.uniform(0.3, 0.8, 30) * TB)

    def fn(t: np.ndarray) -> np.ndarray:
        return 5 * TB + jumps[np.minimum((t * 2).astype(int), 29)]  # a jump every 12 h

    fc = forecast(series(14, fn), pd.Timedelta(days=7))
    assert fc.status == UNPREDICTABLE and fc.reason
    r = time_to_threshold(series(14, fn), 20 * TB, pd.Timedelta(days=7))
    assert r is not None and r["status"] == UNPREDICTABLE and r["eta"] is None


# -- behaviour on scenarios ---------------------------------------------------------------------


def test_flat_usage_never_crosses() -> None:
    h = series(30, lambda t: 7 * TB + 30 * GB * np.sin(2 * np.pi * t))
    assert time_to_threshold(h, 8.5 * TB, pd.Timedelta(days=30)) is None
    assert abs(forecast(h).growth_per_day) < 2 * GB


def test_linear_growth_eta_close_to_truth() -> None:
    h = linear(40, rate=70 * GB)  # 5 TB + 70 GB/d: 8.5 TB at day 50
    r = time_to_threshold(h, 8.5 * TB, pd.Timedelta(days=30))
    assert r is not None and r["status"] == OK
    assert abs(r["eta"] - (START + pd.Timedelta(days=50))) < pd.Timedelta(hours=6)


def _sawtooth(t: np.ndarray) -> np.ndarray:
    done = np.floor(np.maximum(t - 6.1, 0) / 7.0) + (t >= 6.1)
    return 5 * TB + 150 * GB * t - 650 * GB * done


def test_sawtooth_net_growth_rate() -> None:
    fc = forecast(series(45, _sawtooth), pd.Timedelta(days=30))
    assert fc.status == OK
    assert fc.model["gc_period_days"] == pytest.approx(7.0, abs=0.1)
    net = 150 * GB - 650 * GB / 7
    assert fc.growth_per_day == pytest.approx(net, rel=0.1)


def test_zero_and_partial_samples_are_ignored() -> None:
    clean = linear(20)
    broken = clean.copy()
    rng = np.random.default_rng(1)
    broken.iloc[rng.choice(broken.size, 100, replace=False)] = 0.0
    broken.iloc[rng.choice(broken.size, 50, replace=False)] *= 0.5
    broken.iloc[-1] = 0.0
    a, b = forecast(clean, pd.Timedelta(days=7)), forecast(broken, pd.Timedelta(days=7))
    assert b.status == OK
    assert abs(b.predicted.iloc[-1] - a.predicted.iloc[-1]) < 10 * GB
    assert any("zero" in n for n in b.notes)


def test_step_up_forecasts_from_the_new_level() -> None:
    def fn(t: np.ndarray) -> np.ndarray:
        return 4.5 * TB + 40 * GB * t + 1.5 * TB * (t >= 15)

    fc = forecast(series(20, fn), pd.Timedelta(days=7))
    truth = 4.5 * TB + 40 * GB * 27 + 1.5 * TB
    assert fc.status == OK
    assert abs(fc.predicted.iloc[-1] - truth) < 30 * GB


def test_predict_linear_matches_prometheus_semantics() -> None:
    idx = pd.DatetimeIndex([START + pd.Timedelta(minutes=m) for m in (0, 1, 2, 3)])
    s = pd.Series([1.0, 2.0, 3.0, 4.0], index=idx)  # +1 per minute
    at = idx[-1]
    assert predict_linear(
        s, at, pd.Timedelta(minutes=10), pd.Timedelta(minutes=2)
    ) == pytest.approx(6.0)
    # the window is (at - range, at]: a sample exactly at the left edge is out
    assert predict_linear(s, at, pd.Timedelta(minutes=3), pd.Timedelta(0)) == pytest.approx(4.0)
    assert predict_linear(s.iloc[:1], at, pd.Timedelta(minutes=10), pd.Timedelta(0)) is None
    flat = pd.Series(5.0, index=idx)
    assert predict_linear(flat, at, pd.Timedelta(minutes=10), pd.Timedelta(hours=1)) == 5.0


def test_walk_forward_beats_predict_linear_7d() -> None:
    """A few origins on a sawtooth and on a daily cycle: mean absolute error at 7 days."""

    def daily(t: np.ndarray) -> np.ndarray:
        return 4 * TB + 50 * GB * t + 40 * GB * np.clip(np.sin(2 * np.pi * (t - 1 / 3)), 0, None)

    for fn, total in ((_sawtooth, 60), (daily, 40)):
        h_all = series(total, fn)
        ours, pl = [], []
        for o in (total - 20, total - 14, total - 8):
            at = START + pd.Timedelta(days=o)
            hist = h_all.loc[:at]
            truth = float(fn(np.array([o + 7.0]))[0])
            fc = forecast(hist, pd.Timedelta(days=7))
            ours.append(abs(fc.predicted.iloc[-1] - truth))
            pl.append(
                abs(predict_linear(hist, at, pd.Timedelta(days=7), pd.Timedelta(days=7)) - truth)
            )
        assert np.mean(ours) < 0.8 * np.mean(pl), (fn.__name__, ours, pl)
