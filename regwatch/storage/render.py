"""The storage history as text: a table and a terminal sparkline (``regwatch storage``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60
TABLE_ROWS = 12


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """One bar per bucket of ``values`` (the bucket's last value), scaled from the lowest
    to the highest; a gap (NaN) is a space. Flat series are all low bars."""
    vals = [float(v) for v in values]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        vals = [vals[min(len(vals) - 1, int((i + 1) * step) - 1)] for i in range(width)]
    finite = [v for v in vals if not math.isnan(v)]
    if not finite:
        return " " * len(vals)
    lo, hi = min(finite), max(finite)
    span = hi - lo
    out = []
    for v in vals:
        if math.isnan(v):
            out.append(" ")
        elif span == 0:
            out.append(BARS[0])
        else:
            out.append(BARS[min(len(BARS) - 1, int((v - lo) / span * len(BARS)))])
    return "".join(out)


def human_bytes(n: float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "?"
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    v = float(n)
    for u in units:
        if abs(v) < 1024 or u == units[-1]:
            return f"{v:.0f} {u}" if u == "B" else f"{v:.1f} {u}"
        v /= 1024
    raise AssertionError("unreachable")


def table_rows(df: pd.DataFrame, rows: int = TABLE_ROWS) -> list[dict[str, Any]]:
    """At most ``rows`` evenly spaced samples (the first and the last always in)."""
    n = len(df)
    if n == 0:
        return []
    picks = sorted({round(i * (n - 1) / (rows - 1)) for i in range(rows)}) if n > rows else list(range(n))
    out = []
    for i in picks:
        r = df.iloc[i]
        cap = r["capacity_bytes"]
        used = r["used_bytes"]
        pct = used / cap * 100 if cap and not math.isnan(cap) else float("nan")
        out.append({"timestamp": df.index[i], "used_bytes": used, "capacity_bytes": cap, "percent": pct,
                    "tree_bytes": r.get("tree_bytes", float("nan")), "complete": bool(r["complete"])})
    return out


def render(hist: dict[str, pd.DataFrame]) -> str:
    """Every path: a sparkline of used bytes, then a table of samples."""
    lines: list[str] = []
    for path, df in hist.items():
        if len(df) == 0:
            continue
        first, last = df.index[0], df.index[-1]
        used = df["used_bytes"]
        lines.append(f"{path}  ({len(df)} samples, {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC)")
        lines.append(f"  used {sparkline(list(used))}  {human_bytes(used.min())} .. {human_bytes(used.max())}")
        lines.append(f"  {'time (UTC)':<17} {'used':>11} {'capacity':>11} {'used %':>7} {'registry':>11}")
        for r in table_rows(df):
            pct = "" if math.isnan(r["percent"]) else f"{r['percent']:.1f}"
            tree = "" if math.isnan(r["tree_bytes"]) else human_bytes(r["tree_bytes"])
            mark = "" if r["complete"] else "  (partial)"
            lines.append(f"  {r['timestamp']:%Y-%m-%d %H:%M} {human_bytes(r['used_bytes']):>11} "
                         f"{human_bytes(r['capacity_bytes']):>11} {pct:>7} {tree:>11}{mark}")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def to_json(hist: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Every sample of every path as plain values (NaN as None), for ``--json``."""
    out = []
    for path, df in hist.items():
        for ts, r in df.iterrows():
            row: dict[str, Any] = {"path": path, "timestamp": ts.isoformat()}
            for c in df.columns:
                v = r[c]
                if c == "complete":
                    row[c] = bool(v)
                else:
                    row[c] = None if v is None or math.isnan(v) else int(v)
            out.append(row)
    return out
