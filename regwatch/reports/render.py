"""The report as one self-contained HTML page (inline CSS and SVG, no script, nothing
fetched) and as JSON. Every value that comes from logs or config is HTML-escaped here."""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from regwatch.reports.model import PathReport, Report

_W, _H = 900, 320
MAX_DELETE_ROWS = 1000  # a page that stays readable; the JSON has every delete
_M = {"l": 70, "r": 20, "t": 20, "b": 40}


def e(v: Any) -> str:
    """Escaped text of a value; ``None`` → an en dash."""
    if v is None:
        return "–"
    return html.escape(str(v), quote=True)


def human_bytes(n: float | None) -> str:
    if n is None or not math.isfinite(n):
        return "–"
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    v, i = float(n), 0
    while abs(v) >= 1000 and i < len(units) - 1:
        v /= 1000
        i += 1
    return f"{v:.0f} {units[i]}" if i == 0 else f"{v:.2f} {units[i]}"


def _days(d: float | None) -> str:
    return "beyond 90 d" if d is None else f"{d:.1f} d"


def _time(t: datetime | None) -> str:
    return "–" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")


def _usage_chart(p: PathReport) -> str:
    """History line, forecast band and line, 85% and 100% lines, a marker at the report time."""
    pts_t = [t.timestamp() for t, _ in p.history] + [t.timestamp() for t, *_ in p.forecast]
    vals = [v for _, v in p.history] + [x for _, a, b, c in p.forecast for x in (a, b, c)]
    if p.capacity_bytes:
        vals += [p.capacity_bytes * 1.02, 0.0]
    if not pts_t or not vals:
        return '<p class="muted">No storage samples to draw.</p>'
    t0, t1 = min(pts_t), max(pts_t)
    v0, v1 = 0.0, max(vals) or 1.0
    t1 = t1 if t1 > t0 else t0 + 1
    pw, ph = _W - _M["l"] - _M["r"], _H - _M["t"] - _M["b"]

    def x(t: float) -> float:
        return _M["l"] + (t - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return _M["t"] + ph - (v - v0) / (v1 - v0) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" aria-label="usage of {e(p.path)}">']
    out.append(f'<rect x="{_M["l"]}" y="{_M["t"]}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>')
    for i in range(5):  # y grid and labels
        v = v0 + (v1 - v0) * i / 4
        out.append(f'<line x1="{_M["l"]}" x2="{_M["l"] + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{_M["l"] - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">{e(human_bytes(v))}</text>')
    for i in range(6):  # x labels
        t = t0 + (t1 - t0) * i / 5
        out.append(f'<text x="{x(t):.1f}" y="{_H - 15}" text-anchor="middle" class="axis">{datetime.fromtimestamp(t, timezone.utc).strftime("%m-%d")}</text>')
    if p.forecast:
        upper = " ".join(f"{x(t.timestamp()):.1f},{y(u):.1f}" for t, _, _, u in p.forecast)
        lower = " ".join(f"{x(t.timestamp()):.1f},{y(lo):.1f}" for t, _, lo, _ in reversed(p.forecast))
        out.append(f'<polygon points="{upper} {lower}" fill="#4a90d9" fill-opacity="0.25" stroke="none"><title>forecast interval</title></polygon>')
        line = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v, _, _ in p.forecast)
        out.append(f'<polyline points="{line}" fill="none" stroke="#1f5fa8" stroke-width="2" stroke-dasharray="6 4"/>')
    if p.history:
        line = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in p.history)
        out.append(f'<polyline points="{line}" fill="none" stroke="#222" stroke-width="2"/>')
        nx = x(p.history[-1][0].timestamp())
        out.append(f'<line x1="{nx:.1f}" x2="{nx:.1f}" y1="{_M["t"]}" y2="{_M["t"] + ph}" stroke="#888" stroke-dasharray="2 3"/>')
    if p.capacity_bytes:
        for pct, color in ((85, "#e69500"), (100, "#c0392b")):
            yy = y(p.capacity_bytes * pct / 100)
            out.append(f'<line x1="{_M["l"]}" x2="{_M["l"] + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{color}" stroke-width="1.5"/>')
            out.append(f'<text x="{_M["l"] + 4}" y="{yy - 4:.1f}" class="axis" fill="{color}">{pct}%</text>')
    out.append("</svg>")
    return "".join(out)


def _bars(rows: Sequence[dict[str, Any]], key: str, color: str, label: str) -> str:
    w, h, ml, mb = 420, 160, 40, 30
    vals = [int(r.get(key) or 0) for r in rows]
    top = max(vals + [1])
    bw = (w - ml - 10) / max(1, len(vals))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{e(label)}">']
    out.append(f'<text x="{ml}" y="12" class="axis">{e(label)} per day (max {top:,})</text>')
    for i, (r, v) in enumerate(zip(rows, vals)):
        bh = (h - mb - 20) * v / top
        bx = ml + i * bw
        out.append(f'<rect x="{bx + 1:.1f}" y="{h - mb - bh:.1f}" width="{max(1.0, bw - 2):.1f}" height="{bh:.1f}" fill="{color}"><title>{e(r.get("day"))}: {v:,}</title></rect>')
        if i % 2 == len(rows) % 2:
            out.append(f'<text x="{bx + bw / 2:.1f}" y="{h - mb + 14}" text-anchor="middle" class="axis">{e(str(r.get("day"))[5:])}</text>')
    out.append("</svg>")
    return "".join(out)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Raw(str):
    """Markup made here (already escaped), not text from the logs."""


_CSS = """
body{font-family:DejaVu Sans,Liberation Sans,Arial,sans-serif;margin:24px;color:#222;max-width:980px}
h1{font-size:24px;margin-bottom:4px} h2{font-size:19px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:16px} .muted{color:#666} .axis{font-size:11px;fill:#555}
table{border-collapse:collapse;margin:8px 0;font-size:13px} td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#f2f2f2} td{overflow-wrap:anywhere} .num{text-align:right} .warn{color:#b35900;font-weight:bold} .bad{color:#c0392b;font-weight:bold}
.nodata{font-size:18px;padding:16px;background:#fff6e0;border:1px solid #e6c200}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:20px}
"""


def _threshold_rows(p: PathReport) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for a in p.assessments:
        if not a.ok:
            rows.append([f"{a.threshold:g}%", a.status, "–", "–", a.reason])
            continue
        rows.append([
            f"{a.threshold:g}%",
            _days(a.days_to("eta")),
            f"{_days(a.days_to('lower'))} ({_time(a.lower)})",
            f"{_days(a.days_to('upper'))} ({_time(a.upper)})",
            a.reason,
        ])
    return rows


def render_html(r: Report) -> str:
    """The report as one HTML document (UTF-8, no external resources)."""
    title = f"regwatch daily report: {r.day.isoformat()}"
    h = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title><style>{_CSS}</style></head><body>']
    h.append(f"<h1>{e(title)}</h1>")
    h.append(f'<p class="muted">{e(r.timezone)} day {e(r.start.isoformat())} to {e(r.end.isoformat())}; forecasts as of {e(_time(r.as_of))}; made {e(_time(r.generated))}</p>')
    if r.empty:
        h.append(f'<p class="nodata" id="no-data">No data for {e(r.day.isoformat())}: the store holds no events and no storage samples for this day.</p>')
    h.append('<div class="cards">')
    for label, key in (("Pulls", "pulls"), ("Failed pulls", "pulls_failed"), ("Pushes", "pushes"), ("Deletes", "deletes"),
                       ("Auth failures", "auth_failures"), ("Bytes pushed", "bytes_pushed")):
        v = r.totals.get(key, 0)
        shown = human_bytes(v) if key.startswith("bytes") else f"{v:,}"
        h.append(f'<div class="card">{e(label)}<b id="total-{e(key)}">{e(shown)}</b></div>')
    h.append("</div>")

    h.append("<h2>Storage</h2>")
    if not r.storage:
        h.append('<p class="muted">No storage samples: configure <code>storage.paths</code> so the service measures the registry\'s disk.</p>')
    for p in r.storage:
        pct = p.used_percent
        h.append(f"<h3>{e(p.path)}</h3>")
        h.append(f"<p>Used {e(human_bytes(p.used_bytes))} of {e(human_bytes(p.capacity_bytes))}" + (f" ({pct:.1f}%)" if pct is not None else "")
                 + f"; net growth {e(human_bytes(p.growth_per_day))}/day; forecast: <b>{e(p.status)}</b>" + (f" ({e(p.reason)})" if p.status != "ok" else "") + ".</p>")
        h.append(_usage_chart(p))
        h.append(_table(["threshold", "days (predicted)", "earliest plausible", "latest plausible", "note"], _threshold_rows(p), "no assessment"))

    h.append("<h2>Fastest-growing repositories</h2>")
    h.append(_table(["repository", "bytes pushed, 7 d", "previous 7 d", "this day", "pushes, 7 d"],
                    [[g["repository"], human_bytes(g["bytes_7d"]), human_bytes(g["bytes_prev_7d"]), human_bytes(g["bytes_day"]), f'{g["pushes_7d"]:,}'] for g in r.growth],
                    "No blob uploads in the last 7 days."))

    h.append("<h2>Pull failures and auth failures</h2>")
    h.append(_Raw(_bars(r.trends, "pulls_failed", "#c0392b", "Failed pulls")) + _Raw(_bars(r.trends, "auth_failures", "#8e44ad", "Auth failures")))
    h.append(_table(["day", "pulls", "failed pulls", "failure rate", "auth failures", "anonymous denials"],
                    [[t["day"], f'{t["pulls"]:,}', f'{t["pulls_failed"]:,}', "–" if t["pull_failure_rate"] is None else f'{100 * t["pull_failure_rate"]:.1f}%',
                      f'{t["auth_failures"]:,}', f'{t["anonymous_denials"]:,}'] for t in r.trends], "no days"))
    h.append("<h3>Failed pulls of the day</h3>")
    h.append(_table(["repository", "status", "error", "count"], [[f["repository"], f["status"], f["error_code"], f'{f["count"]:,}'] for f in r.pull_failures], "None."))
    h.append("<h3>Rejected credentials of the day</h3>")
    h.append(_table(["user", "client", "count"], [[f["user"], f["client_ip"], f'{f["count"]:,}'] for f in r.auth_failures], "None."))

    h.append("<h2>Deletes of the day</h2>")
    listed = r.deletes[:MAX_DELETE_ROWS]
    if len(r.deletes) > len(listed):
        h.append(f'<p class="muted">{len(r.deletes):,} deletes; the first {len(listed):,} are listed here, all of them in the JSON '
                 "and in <code>regwatch audit deletes</code>.</p>")
    h.append(_table(["time", "user", "repository", "reference", "client", "outcome", "status"],
                    [[d.get("time"), d.get("user") or "unknown", d.get("repository"), d.get("reference"), d.get("client_ip"), d.get("outcome"), d.get("status")] for d in listed],
                    "No deletes."))

    h.append("<h2>Capacity actions</h2>")
    h.append(_table(["time", "action", "path", "threshold", "taken or recommended", "outcome", "detail"],
                    [[a.get("time"), f'{a.get("action")} ({a.get("kind")})', a.get("path"), f'{a.get("threshold"):g}%',
                      "taken" if a.get("taken") else "recommended (dry run)", a.get("outcome"), a.get("detail")] for a in r.actions],
                    "No capacity action fired or was recommended on this day."))
    for a in r.actions:
        ret = (a.get("data") or {}).get("retention")
        if not ret:
            continue
        h.append(f"<h3>Retention recommendation ({e(ret.get('unused_days'))} days without a pull)</h3>")
        h.append(f"<p>{e(ret.get('repository_count'))} repositories and {e(ret.get('tag_count'))} tags, about {e(human_bytes(ret.get('total_bytes')))}. {e(' '.join(ret.get('notes') or []))}</p>")
        h.append(_table(["repository", "tags", "last push", "bytes (estimate)"],
                        [[x["repository"], x["tags"], x["last_push"], human_bytes(x["bytes"])] for x in ret.get("repositories", [])[:20]], "No repository without pulls."))
        h.append(_table(["repository", "tag", "last push", "bytes (estimate)"],
                        [[x["repository"], x["tag"], x["last_push"], human_bytes(x["bytes"])] for x in ret.get("tags", [])[:20]], "No tag without pulls."))
    if r.notes:
        h.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in r.notes) + "</ul>")
    h.append("</body></html>")
    return "\n".join(h)


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def render_json(r: Report) -> str:
    return json.dumps(_json_safe(r.to_dict()), indent=1, sort_keys=True, ensure_ascii=False, default=str)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: Report, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``regwatch-report-<day>.html`` and ``.json`` into ``out_dir`` (created if
    needed; each file replaced atomically). Raises InputError when the directory cannot be
    written."""
    from regwatch.errors import InputError

    out = Path(out_dir)
    base = f"regwatch-report-{report.day.isoformat()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path, json_path = out / f"{base}.html", out / f"{base}.json"
        _atomic_write(html_path, render_html(report))
        _atomic_write(json_path, render_json(report))
    except OSError as exc:
        raise InputError(f"cannot write the report into {str(out)!r}: {exc.strerror}; pass a writable --out (or report.out)") from exc
    return html_path, json_path
