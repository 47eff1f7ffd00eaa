"""Walk-forward scoring of regwatch.forecast against Prometheus predict_linear and the last value.

    .venv/bin/python bench/forecast/harness.py [--every DAYS] [--jobs N] [--markdown FILE]

For every scenario of scenarios.py and every evaluation time ``o`` (its ``origins``), each
method sees only the samples scraped up to ``o`` and forecasts. Scores:

- MASE at 1, 7 and 30 days: mean |forecast - truth| over the evaluation times, divided by the
  scenario's in-history mean |y(t) - y(t - 1 d)| of the hourly-median observed series (the same
  divisor for every method, so ratios of geometric means do not depend on it);
- time-to-85% error: |predicted crossing - true crossing| (days) at evaluation times 0-30 days
  before the true crossing, and the share of those times with no predicted crossing;
- alerts: a rule (threshold T, lead L) is evaluated at every evaluation time, ``s`` days
  apart (0.5 d; 0.25 d for short_history), and looks ``L + s`` ahead, so that a forecaster
  that is exactly right fires at least L before the crossing; it fires at ``o`` when
  ours: the earliest plausible crossing (``lower`` of time_to_threshold) is at most
  ``o + L + s`` and the expected one (``eta``) at most ``o + 2 L`` (the product's rule,
  regwatch.capacity.alarm_due); predict_linear: ``predict_linear(range, L + s) >= T``; last value: the last
  sample >= T.
  A true crossing at ``c`` is alerted in time at lead L when the rule fires at an evaluation
  time in ``[c - 2L, c - L]``; a firing at ``o`` is false when the truth does not reach T by
  ``o + 2L``; false alarms are counted as episodes (runs of consecutive false firings);
- coverage: share of (evaluation time, 1/7/30 d) whose truth lies inside ``[lower, upper]``.
- speed: forecast() over 90 days of 5-minute samples (25,921 points), median of 7 runs.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios as sc

from regwatch.capacity import ETA_GUARD
from regwatch.forecast import OK, forecast
from regwatch.forecast.baselines import predict_linear_fit

HORIZONS = (1.0, 7.0, 30.0)
LEADS = (1.0, 7.0)
FRACTIONS = (0.85, 1.0)
METHODS = ("regwatch", "predict_linear 6h", "predict_linear 7d", "last value")
DAY_NS = 86_400_000_000_000


def _day_ts(days: float) -> pd.Timestamp:
    return sc.START + pd.Timedelta(days=days)


def _interp(series: pd.Series, days: float) -> float:
    x = (series.index.asi8 - sc.START.value) / DAY_NS
    return float(np.interp(days, x, series.to_numpy(dtype="float64")))


def run_scenario(name: str, every: float | None = None) -> dict[str, Any]:
    s = next(f() for f in sc.ALL if f.__name__ == name)
    obs = s.observed
    t_ns = obs.index.asi8
    v = obs.to_numpy(dtype="float64")
    x_days = (t_ns - sc.START.value) / DAY_NS
    origins = s.origins
    if every:
        origins = origins[:: max(1, round(every / (origins[1] - origins[0])))]
    thresholds = {f: f * s.capacity for f in FRACTIONS}
    # A rule evaluated every `spacing` days looks L + spacing ahead, so that a forecaster that
    # is exactly right fires at least L before the crossing (the same for every method).
    spacing = float(origins[1] - origins[0]) if origins.size > 1 else 0.0
    rows: list[dict[str, Any]] = []
    timing = []
    for o in origins:
        hi = int(np.searchsorted(x_days, o, side="right"))
        lo = int(np.searchsorted(x_days, s.history_start, side="left"))
        if hi - lo < 1:
            continue
        hist = obs.iloc[lo:hi]
        o_ns = sc.START.value + round(o * DAY_NS)
        hist = hist.copy()
        hist.attrs["now"] = pd.Timestamp(o_ns, tz="UTC")
        t0 = time.perf_counter()
        fc = forecast(hist, pd.Timedelta(days=30))
        timing.append(time.perf_counter() - t0)
        row: dict[str, Any] = {"o": float(o), "status": fc.status}
        truth = {h: float(s.truth_at(o + h)) for h in HORIZONS}
        row["truth"] = truth
        last = float(v[hi - 1])
        preds: dict[str, dict[float, float]] = {m: {} for m in METHODS}
        if fc.status == "not enough data" or fc.predicted.empty:
            for h in HORIZONS:
                preds["regwatch"][h] = last
            row["bounds"] = None
        else:
            bounds = {}
            for h in HORIZONS:
                preds["regwatch"][h] = _interp(fc.predicted, o + h)
                bounds[h] = (_interp(fc.lower, o + h), _interp(fc.upper, o + h))
            row["bounds"] = bounds if fc.status == OK else None
        pl: dict[str, tuple[float, float] | None] = {}
        for m, rng in (("predict_linear 6h", 6 * 3600e9), ("predict_linear 7d", 7 * DAY_NS)):
            fit = predict_linear_fit(t_ns[lo:hi], v[lo:hi], o_ns, int(rng))
            pl[m] = fit
            for h in HORIZONS:
                preds[m][h] = (fit[1] + fit[0] * h * 86400.0) if fit else last
        for h in HORIZONS:
            preds["last value"][h] = last
        row["preds"] = preds
        # alerts and time to threshold
        fires: dict[tuple[str, float, float], bool] = {}
        eta85: dict[str, float | None] = {}
        for f, thr in thresholds.items():
            r30 = fc.time_to_threshold(thr, pd.Timedelta(days=30))
            for lead in LEADS:
                look = lead + spacing
                # the product's rule (regwatch.capacity.alarm_due): the earliest plausible
                # crossing within the look-ahead, the expected one within twice the lead
                fired = (
                    r30 is not None
                    and r30.get("status") == OK
                    and r30.get("lower") is not None
                    and (r30["lower"].value - o_ns) <= look * DAY_NS
                    and r30.get("eta") is not None
                    and (r30["eta"].value - o_ns) <= ETA_GUARD * lead * DAY_NS
                )
                fires[("regwatch", f, lead)] = bool(fired)
                for m in ("predict_linear 6h", "predict_linear 7d"):
                    fit = pl[m]
                    fires[(m, f, lead)] = bool(fit and fit[1] + fit[0] * look * 86400.0 >= thr)
                fires[("last value", f, lead)] = last >= thr
            if f == 0.85:
                eta = r30["eta"] if (r30 is not None and r30.get("status") == OK) else None
                eta85["regwatch"] = None if eta is None else (eta.value - sc.START.value) / DAY_NS
                for m in ("predict_linear 6h", "predict_linear 7d"):
                    fit = pl[m]
                    e = None
                    if fit:
                        slope, icpt = fit
                        if icpt >= thr:
                            e = o
                        elif slope > 0:
                            e = o + (thr - icpt) / slope / 86400.0
                    eta85[m] = e
                eta85["last value"] = o if last >= thr else None
        row["fires"] = fires
        row["eta85"] = eta85
        rows.append(row)
    # the MASE divisor: in-history mean |y(t) - y(t-1d)| of the observed hourly medians
    hourly = obs.loc[: _day_ts(sc.HISTORY_DAYS)].resample("1h").median().dropna()
    lag = hourly - hourly.shift(freq=pd.Timedelta(days=1)).reindex(hourly.index)
    scale = float(np.nanmean(np.abs(lag.to_numpy()))) or 1.0
    return {
        "name": s.name,
        "case": s.case,
        "rows": rows,
        "scale": scale,
        "c85": s.crossing(0.85),
        "c100": s.crossing(1.0),
        "timing": timing,
    }


def _episodes(flags: list[bool]) -> int:
    n, prev = 0, False
    for f in flags:
        if f and not prev:
            n += 1
        prev = f
    return n


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mase": {},
        "per_scenario": {},
        "alerts": {},
        "false": {},
        "eta": {},
        "coverage": {},
        "status": {},
    }
    for m in METHODS:
        for h in HORIZONS:
            vals = []
            for r in results:
                errs = [abs(row["preds"][m][h] - row["truth"][h]) for row in r["rows"]]
                mase = float(np.mean(errs)) / r["scale"]
                out["per_scenario"].setdefault(r["name"], {})[(m, h)] = mase
                vals.append(mase)
            out["mase"][(m, h)] = float(math.exp(np.mean(np.log(np.maximum(vals, 1e-12)))))
    for m in METHODS:
        for f in FRACTIONS:
            for lead in LEADS:
                hits = n = 0
                missed = []
                for r in results:
                    c = r["c85"] if f == 0.85 else r["c100"]
                    if c is None:
                        continue
                    win = [row for row in r["rows"] if c - 2 * lead <= row["o"] <= c - lead]
                    if not win:
                        continue
                    n += 1
                    if any(row["fires"][(m, f, lead)] for row in win):
                        hits += 1
                    else:
                        missed.append(r["name"])
                out["alerts"][(m, f, lead)] = (hits, n, missed)
                total = 0
                where = {}
                for r in results:
                    c = r["c85"] if f == 0.85 else r["c100"]
                    flags = []
                    for row in r["rows"]:
                        fired = row["fires"][(m, f, lead)]
                        justified = c is not None and c <= row["o"] + 2 * lead
                        flags.append(fired and not justified)
                    e = _episodes(flags)
                    if e:
                        where[r["name"]] = e
                    total += e
                out["false"][(m, f, lead)] = (total, where)
        errs, none = [], 0
        for r in results:
            c = r["c85"]
            if c is None:
                continue
            for row in r["rows"]:
                if 0 < c - row["o"] <= 30:
                    e = row["eta85"][m]
                    if e is None:
                        none += 1
                    else:
                        errs.append(abs(e - c))
        out["eta"][m] = (float(np.median(errs)) if errs else math.nan, none, len(errs) + none)
    for h in HORIZONS:
        inside = total = 0
        for r in results:
            for row in r["rows"]:
                b = row["bounds"]
                if b is None:
                    continue
                total += 1
                lo, up = b[h]
                inside += lo <= row["truth"][h] <= up
        out["coverage"][h] = (inside / total if total else math.nan, total)
    cnt: dict[str, int] = {}
    for r in results:
        for row in r["rows"]:
            cnt[row["status"]] = cnt.get(row["status"], 0) + 1
    out["status"] = cnt
    out["per_scenario_status"] = {
        r["name"]: {
            k: sum(1 for row in r["rows"] if row["status"] == k)
            for k in {row["status"] for row in r["rows"]}
        }
        for r in results
    }
    return out


def speed() -> float:
    idx = pd.date_range("2026-01-01", periods=90 * 288 + 1, freq="5min", tz="UTC")
    rng = np.random.default_rng(0)
    x = np.arange(idx.size) / 288
    y = 5e12 + 70e9 * x + 30e9 * np.sin(2 * np.pi * x) + rng.normal(0, 2e9, x.size)
    y[rng.random(x.size) < 0.01] = 0
    s = pd.Series(y, index=idx)
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        forecast(s, pd.Timedelta(days=30))
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def render(
    summary: dict[str, Any], results: list[dict[str, Any]], speed_s: float, n_origins: int
) -> str:
    L = []
    L.append(
        "| method | MASE 1 d | MASE 7 d | MASE 30 d | 85% in time 24 h | 85% in time 7 d "
        "| 100% in time 24 h | 100% in time 7 d | false alarms 85% 24 h / 7 d | on flat | "
        "time-to-85% median error (d) |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in METHODS:
        a = summary["alerts"]
        fa = summary["false"]
        flat = sum(fa[(m, f, lead)][1].get("flat", 0) for f in FRACTIONS for lead in LEADS)
        med, none, tot = summary["eta"][m]
        eta_txt = "n/a" if math.isnan(med) else f"{med:.1f}"
        eta_txt += f" (none in {none}/{tot})" if none else ""
        L.append(
            f"| {m} | {summary['mase'][(m, 1.0)]:.2f} | {summary['mase'][(m, 7.0)]:.2f} | "
            f"{summary['mase'][(m, 30.0)]:.2f} | "
            + " | ".join(
                f"{a[(m, f, lead)][0]}/{a[(m, f, lead)][1]}" for f in FRACTIONS for lead in LEADS
            )
            + f" | {fa[(m, 0.85, 1.0)][0]} / {fa[(m, 0.85, 7.0)][0]} | {flat} | {eta_txt} |"
        )
    L.append("")
    pl = "predict_linear 7d"
    ratios = ", ".join(
        f"{h:g} d: {summary['mase'][('regwatch', h)] / summary['mase'][(pl, h)]:.2f}"
        for h in HORIZONS
    )
    L.append(f"Geometric-mean MASE of regwatch / predict_linear 7d: {ratios}.")
    cov = ", ".join(
        f"{h:g} d: {summary['coverage'][h][0]:.2f} (n={summary['coverage'][h][1]})"
        for h in HORIZONS
    )
    L.append(f"Coverage of the 90% interval (status ok only): {cov}.")
    L.append(
        f"Statuses of regwatch's {n_origins} forecasts: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(summary["status"].items()))
        + "."
    )
    L.append(
        f"Speed: forecast() over 90 days of 5-minute samples (25,921 points), median of 7 runs: "
        f"{speed_s * 1000:.0f} ms."
    )
    L.append("")
    for m in METHODS:
        miss = []
        for f in FRACTIONS:
            for lead in LEADS:
                _h, _n, missed = summary["alerts"][(m, f, lead)]
                if missed:
                    miss.append(f"{f:.0%}@{'24 h' if lead == 1 else '7 d'}: {', '.join(missed)}")
        fal = []
        for f in FRACTIONS:
            for lead in LEADS:
                tot, where = summary["false"][(m, f, lead)]
                if where:
                    fal.append(
                        f"{f:.0%}@{'24 h' if lead == 1 else '7 d'}: "
                        + ", ".join(f"{k} {v}" for k, v in where.items())
                    )
        L.append(
            f"- {m}: late or missed: {'; '.join(miss) or 'none'}. False alarm episodes: "
            f"{'; '.join(fal) or 'none'}."
        )
    L.append("")
    L.append(
        "| scenario | case | regwatch 1/7/30 d | predict_linear 6h | predict_linear 7d | last value | regwatch statuses |"
    )
    L.append("|---|---|---:|---:|---:|---:|---|")
    for r in results:
        ps = summary["per_scenario"][r["name"]]
        cells = [" / ".join(f"{ps[(m, h)]:.2f}" for h in HORIZONS) for m in METHODS]
        st = ", ".join(
            f"{k} {v}" for k, v in sorted(summary["per_scenario_status"][r["name"]].items())
        )
        L.append(f"| {r['name']} | {r['case']} | " + " | ".join(cells) + f" | {st} |")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--every",
        type=float,
        default=None,
        help="days between evaluation times (default: the scenario's)",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--markdown", default=None, help="also write the tables to this file")
    args = ap.parse_args()
    names = [f.__name__ for f in sc.ALL if not args.only or f.__name__ in args.only]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        results = list(ex.map(run_scenario, names, [args.every] * len(names)))
    wall = time.perf_counter() - t0
    summary = summarise(results)
    sp = speed()
    n = sum(len(r["rows"]) for r in results)
    per = [t for r in results for t in r["timing"]]
    text = render(summary, results, sp, n)
    text += (
        f"\n\n{n} walk-forward forecasts in {wall:.0f} s wall ({args.jobs} processes); "
        f"per forecast median {statistics.median(per) * 1000:.0f} ms, max {max(per) * 1000:.0f} ms."
    )
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
