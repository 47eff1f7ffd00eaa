"""The numerical core: steps and GC drops, the robust trend fit, and walk-forward backtests.

Times are floats in days relative to the origin (the last sample), values are bytes divided by
a scale so the solver works on numbers near 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import Ridge

_STEP_SIGMAS = 10.0
_STEP_FLOOR = 0.005  # a step moves the level by at least 0.5%
_PERSIST = 6  # hourly points each side used to confirm that a step stays
_ALPHA = 1e-9


@dataclass(frozen=True)
class Config:
    """One candidate model: how far back to look and which trend shape to fit."""

    window_days: float
    shape: str  # "flat", "linear" or "quadratic"

    def describe(self) -> str:
        return f"{self.shape} trend over the last {self.window_days:g} d"


CANDIDATES: tuple[Config, ...] = (
    Config(3.0, "flat"),
    Config(3.0, "linear"),
    Config(7.0, "linear"),
    Config(14.0, "linear"),
    Config(28.0, "linear"),
    Config(56.0, "linear"),
    Config(21.0, "quadratic"),
    Config(42.0, "quadratic"),
)


@dataclass
class Steps:
    """Level shifts found in a series: segment id per point, and the drops that repeat."""

    segment: np.ndarray  # int, one per point, increasing
    times: np.ndarray  # days, time of each step (first point after it)
    sizes: np.ndarray  # scaled, signed size of each step
    period: float | None = None  # days between periodic drops (GC, retention)
    drop_size: float = 0.0  # scaled, positive: what each periodic drop removes
    last_drop: float | None = None  # days
    one_off_recent: int = 0  # non-periodic steps in the last 14 days


def _mad(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return 1.4826 * float(np.median(np.abs(a - np.median(a))))


def detect_steps(x: np.ndarray, y: np.ndarray, known: tuple[float, float] | None = None) -> Steps:
    """Find persistent level shifts (imports, cleanups, GC drops) in an hourly series.

    ``known`` is (period, drop size) of periodic drops found on a longer series: a backtest
    replays today's model structure on the past, so it takes the GC schedule from there.
    """
    n = y.size
    seg = np.zeros(n, dtype=np.int64)
    empty = Steps(seg, np.array([]), np.array([]))
    if n < 8:
        return empty
    gap = np.diff(x) * 24.0  # hours
    d = np.diff(y)
    rate = float(np.median(d / np.maximum(gap, 1e-9)))
    resid = d - rate * gap
    sigma = _mad(resid)
    level = float(np.median(np.abs(y)))
    thr = max(_STEP_SIGMAS * sigma, _STEP_FLOOR * level, 1e-12)
    cand = np.flatnonzero(np.abs(resid) > thr)
    if cand.size == 0:
        return empty
    k = _PERSIST
    confirmed: list[int] = []
    tail: list[int] = []  # large jumps too close to the end to be confirmed yet
    for i in cand:
        post = y[i + 1 : i + 1 + k]
        pre = y[max(0, i + 1 - k) : i + 1]
        if pre.size < 1:
            continue
        if post.size < 3:
            if i + 1 + post.size >= n and bool(
                np.all(np.sign(post - np.median(pre)) == np.sign(resid[i]))
            ):
                tail.append(int(i))
            continue
        shift = float(np.median(post) - np.median(pre))
        if np.sign(shift) == np.sign(resid[i]) and abs(shift) >= 0.5 * thr:
            confirmed.append(int(i))
    if not confirmed:
        return empty
    steps = _summarise(x, resid, seg, confirmed, known)
    if tail and steps.period is not None and steps.last_drop is not None:
        # A drop of the usual size at the usual time is the next GC, even before it is
        # confirmed: otherwise a forecast made just after a GC starts a whole GC too high.
        due = steps.last_drop + steps.period
        fresh = [
            i
            for i in tail
            if resid[i] < 0
            and abs(float(x[i + 1]) - due) <= 0.1 * steps.period
            and -resid[i] >= 0.5 * steps.drop_size
        ]
        if fresh:
            seg[:] = 0
            steps = _summarise(x, resid, seg, confirmed + fresh, known)
    return steps


def _summarise(
    x: np.ndarray,
    resid: np.ndarray,
    seg: np.ndarray,
    confirmed: list[int],
    known: tuple[float, float] | None = None,
) -> Steps:
    confirmed = sorted(confirmed)
    # Consecutive flagged hours are one event (an import or a GC that takes a few hours).
    events: list[list[int]] = []
    for i in confirmed:
        if events and i - events[-1][-1] <= 1:
            events[-1].append(i)
        else:
            events.append([i])
    for i in confirmed:
        seg[i + 1 :] += 1
    times = np.array([x[ev[0] + 1] for ev in events])
    sizes = np.array([float(resid[ev].sum()) for ev in events])
    steps = Steps(seg, times, sizes)
    drops = sizes < 0
    end = float(x[-1])
    if drops.sum() >= 2:
        dt = times[drops]
        ds = -sizes[drops]
        intervals = np.diff(dt)
        p = float(np.median(intervals))
        regular = p >= 0.5 and (
            intervals.size == 1 or float(np.max(np.abs(intervals - p))) <= 0.2 * p
        )
        similar = float(ds[-3:].max()) <= 3.0 * float(ds[-3:].min())
        if regular and similar and end - float(dt[-1]) <= 1.5 * p:
            steps.period = p
            steps.drop_size = float(np.median(ds[-3:]))
            steps.last_drop = float(dt[-1])
    if known is not None and steps.period is None and drops.any():
        last = float(times[drops][-1])
        if end - last <= 1.5 * known[0]:
            steps.period, steps.drop_size, steps.last_drop = known[0], known[1], last
    periodic = drops & (steps.period is not None)
    recent = times >= end - 14.0
    steps.one_off_recent = int((recent & ~periodic).sum())
    return steps


@dataclass
class Design:
    """Which columns a fitted model uses, so that the future can be built the same way."""

    shape: str
    daily: bool
    weekly: bool
    n_seg: int
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))
    resid_scale: float = 0.0
    slope_se: float = 0.0


def _season_cols(hour: np.ndarray, dow: np.ndarray, daily: bool, weekly: bool) -> list[np.ndarray]:
    cols: list[np.ndarray] = []
    if daily:
        for h in range(1, 24):
            cols.append((hour == h).astype(float) - (hour == 0).astype(float))
    if weekly:
        for d in range(1, 7):
            cols.append((dow == d).astype(float) - (dow == 0).astype(float))
    return cols


def _matrix(
    x: np.ndarray, hour: np.ndarray, dow: np.ndarray, seg: np.ndarray, des: Design
) -> np.ndarray:
    cols = [(seg == s).astype(float) for s in range(des.n_seg)]
    if des.shape != "flat":
        cols.append(x)
    if des.shape == "quadratic":
        cols.append(x * x / 30.0)
    cols.extend(_season_cols(hour, dow, des.daily, des.weekly))
    return np.column_stack(cols)


def _solve(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The same weighted ridge-Cholesky solve as scikit-learn's, without its per-call checks."""
    Xw = X * w[:, None]
    A = X.T @ Xw
    A[np.diag_indices_from(A)] += _ALPHA
    try:
        return np.asarray(np.linalg.solve(A, Xw.T @ y), dtype=float)
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.lstsq(A, Xw.T @ y, rcond=None)[0], dtype=float)


def robust_fit(
    X: np.ndarray, y: np.ndarray, iterations: int = 3, final: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Huber regression by iteratively reweighted least squares.

    The final fit solves each step with scikit-learn's Ridge (a negligible penalty, Cholesky
    solver: the normal equations of at most ~40 columns). The ~100 backtest fits use the same
    solve in numpy directly, because scikit-learn's input checks cost more than the solve.
    """
    w = np.ones(y.size)
    reg = Ridge(alpha=_ALPHA, fit_intercept=False, solver="cholesky")
    coef = np.zeros(X.shape[1])
    for _ in range(iterations):
        if final:
            reg.fit(X, y, sample_weight=w)
            coef = np.asarray(reg.coef_, dtype=float)
        else:
            coef = _solve(X, y, w)
        r = y - X @ coef
        s = _mad(r)
        if s <= 0:
            break
        a = np.abs(r)
        w = np.where(a <= 1.345 * s, 1.0, 1.345 * s / np.maximum(a, 1e-300))
    return coef, y - X @ coef


def fit_config(
    cfg: Config,
    x: np.ndarray,
    y: np.ndarray,
    hour: np.ndarray,
    dow: np.ndarray,
    steps: Steps,
    final: bool = False,
) -> Design | None:
    """Fit one candidate on the points inside its window; None when too little is left."""
    sel = x >= -cfg.window_days
    if sel.sum() < 6:
        return None
    xs, ys, hs, ds = x[sel], y[sel], hour[sel], dow[sel]
    seg_raw = steps.segment[sel]
    _, seg = np.unique(seg_raw, return_inverse=True)
    span = float(xs[-1] - xs[0])
    des = Design(
        shape=cfg.shape,
        daily=span >= 3.0 and xs.size >= 72,
        weekly=span >= 14.0 and xs.size >= 24 * 14,
        n_seg=int(seg.max()) + 1,
    )
    if cfg.shape != "flat" and span < 0.25:
        return None
    if cfg.shape == "quadratic" and span < 0.6 * cfg.window_days:
        return None  # a curve needs the whole window, or it is a wild guess
    X = _matrix(xs, hs, ds, seg, des)
    if X.shape[0] <= X.shape[1] + 2:
        return None
    coef, r = robust_fit(X, ys, final=final)
    des.coef = coef
    des.resid_scale = _mad(r)
    if cfg.shape != "flat":
        sxx = float(np.sum((xs - xs.mean()) ** 2))
        des.slope_se = des.resid_scale / np.sqrt(sxx) if sxx > 0 else 0.0
    return des


def predict_design(
    des: Design,
    steps: Steps,
    xf: np.ndarray,
    hour: np.ndarray,
    dow: np.ndarray,
) -> np.ndarray:
    """Scaled prediction at future times (days after the origin) from the last segment."""
    seg = np.full(xf.size, des.n_seg - 1)
    X = _matrix(xf, hour, dow, seg, des)
    out = X @ des.coef
    if steps.period is not None and steps.last_drop is not None:
        k = np.floor((xf - steps.last_drop) / steps.period)
        k0 = np.floor((0.0 - steps.last_drop) / steps.period)
        out = out - steps.drop_size * np.maximum(k - k0, 0.0)
    return np.asarray(out, dtype=float)


def slope_of(des: Design, steps: Steps) -> float:
    """Scaled growth per day at the origin, net of periodic drops."""
    if des.shape == "flat":
        b = 0.0
    else:
        b = float(des.coef[des.n_seg])
    if steps.period is not None:
        b -= steps.drop_size / steps.period
    return b
