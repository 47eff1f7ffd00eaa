#!/usr/bin/env python3
"""The dashboard's pages at 1M events: time per page render (target: under 2 s after the first load).

One run:

1. writes synthetic Distribution logs (bench/synth.py, the real 2.8 text format) and
   ingests them with the library (``regwatch.pipeline.ingest``) into an embedded store
   until it holds ``--events`` events; a store already at ``--db`` with that many is reused;
2. renders every page through ``streamlit.testing.v1.AppTest`` at the newest event's
   time, range "All data" (and "Last 24 hours"): the first load (cold caches: every
   insights call reads the store) and then ``--runs`` renders after it (what an operator
   sees on each rerun within a refresh period), median reported;
3. replaces the "## Dashboard" section of docs/benchmarks.md (``--no-docs`` to skip).

    python bench/bench_dashboard.py                    # 1M events
    python bench/bench_dashboard.py --events 200000    # quicker
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

PAGES = (
    ("Overview", "views/overview.py"),
    ("Audit", "views/audit.py"),
    ("Repositories", "views/repositories.py"),
    ("Security", "views/security.py"),
    ("Ingest health", "views/ingest_health.py"),
)
TARGET_S = 2.0


def build(db: Path, events: int, work: Path) -> int:
    """Ingest synthetic logs until the store at ``db`` holds at least ``events`` events."""
    from synth import generate

    from regwatch.pipeline import ingest
    from regwatch.stores.embedded import EmbeddedStore

    store = EmbeddedStore(db)
    try:
        have = store.count()
        if have >= events:
            return have
        work.mkdir(parents=True, exist_ok=True)
        # about 2.7 lines per event (app + access line per request; challenges fold)
        lines = int((events - have) * 2.8) + 1000
        part = 0
        while store.count() < events:
            log = work / f"registry-{part}.log"
            t0 = time.perf_counter()
            with open(log, "w") as fh:
                buf: list[str] = []
                start = datetime(2026, 1, 1, tzinfo=UTC).replace(day=1 + part)
                for line in generate(lines, seed=7 + part, start=start):
                    buf.append(line)
                    if len(buf) >= 20_000:
                        fh.write("\n".join(buf) + "\n")
                        buf = []
                if buf:
                    fh.write("\n".join(buf) + "\n")
            t1 = time.perf_counter()
            stats = ingest([str(log)], store)
            print(f"  {lines:,} lines written in {t1 - t0:.1f} s, ingested in {time.perf_counter() - t1:.1f} s: "
                  f"{stats.events:,} events", file=sys.stderr)
            log.unlink()
            part += 1
            lines = int((events - store.count()) * 2.8) + 1000
        return store.count()
    finally:
        store.close()


def measure(db: Path, runs: int, range_label: str) -> list[tuple[str, float, float]]:
    """(page, first load s, median later render s) for every page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from regwatch.stores.base import Query
    from regwatch.stores.embedded import EmbeddedStore

    store = EmbeddedStore(db)
    newest = store.search(Query(limit=1, newest_first=True))[0].timestamp
    store.close()
    os.environ["REGWATCH_DB"] = str(db)
    os.environ["REGWATCH_DASHBOARD_NOW"] = newest.isoformat()
    st.cache_data.clear()
    st.cache_resource.clear()
    app = ROOT / "regwatch" / "dashboard_app" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=600)
    at.run()
    if range_label != "All data":
        at.sidebar.selectbox(key="range").set_value(range_label)
    out = []
    for title, page in PAGES:
        at.switch_page(page)
        st.cache_data.clear()  # a cold first load of each page (the store handle stays open)
        t0 = time.perf_counter()
        at.run()
        first = time.perf_counter() - t0
        if at.exception or at.error:
            raise SystemExit(f"{title}: {[e.value for e in at.exception] + [e.value for e in at.error]}")
        assert [t.value for t in at.title] == [title], [t.value for t in at.title]
        later = []
        for _ in range(runs):
            t0 = time.perf_counter()
            at.run()
            later.append(time.perf_counter() - t0)
        out.append((title, first, statistics.median(later)))
        print(f"  {range_label:>13} {title:<14} first load {first:6.2f} s, then {statistics.median(later):5.2f} s", file=sys.stderr)
    return out


def calls(db: Path) -> list[tuple[str, float, float]]:
    """(insights call, seconds, process peak RSS after it in MB) over all the data, cheapest
    first: the peak only grows, so each figure is what that call (or one before it) needed."""
    import resource
    from datetime import timedelta

    from regwatch import insights
    from regwatch.stores.embedded import EmbeddedStore

    store = EmbeddedStore(db)
    try:
        b = insights.event_bounds(store)
        assert b is not None
        since, until = b[0], b[1] + timedelta(microseconds=1)
        plan = [
            ("kpis", lambda: insights.kpis(store, since, until)),
            ("trend", lambda: insights.trend(store, since, until)),
            ("audit_deletes", lambda: insights.audit_deletes(store, insights.AuditFilter(since=since, until=until))),
            ("repository_table", lambda: insights.repository_table(store, since, until)),
            ("security", lambda: insights.security(store, since, until)),
            ("retention_candidates (90 d)", lambda: insights.retention_candidates(store, until, 90)),
            ("anomaly_rows", lambda: insights.anomaly_rows(store, since, until)),
        ]
        out = []
        for name, fn in plan:
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            out.append((name, dt, peak))
            print(f"  {name:<28} {dt:6.2f} s, peak RSS {peak:5.0f} MB", file=sys.stderr)
        return out
    finally:
        store.close()


def write_docs(events: int, results: dict[str, list[tuple[str, float, float]]], rss_mb: float | None,
               per_call: list[tuple[str, float, float]]) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text(encoding="utf-8")
    lines = [
        "## Dashboard",
        "",
        (f"`python bench/bench_dashboard.py --events {events}` (bench/bench_dashboard.py): an embedded store of "
        f"{events:,} events ingested with the library from bench/synth.py's Distribution logs; each page rendered "
        "through `streamlit.testing.v1.AppTest` at the newest event's time. *First load*: cold caches, every "
        "`regwatch.insights` call reads the store. *After*: the median of the renders that follow within one refresh "
        f"period (the answers come from `st.cache_data`). Target: under {TARGET_S:g} s after the first load. "
        "Measured on this machine (2 cores)."),
        "",
        "| range | page | first load (s) | after the first load (s) | target met |",
        "|---|---|---|---|---|",
    ]
    for label, rows in results.items():
        for title, first, later in rows:
            lines.append(f"| {label} | {title} | {first:.2f} | {later:.2f} | {'yes' if later < TARGET_S else 'NO'} |")
    if rss_mb is not None:
        lines += ["", f"Peak RSS of the process that rendered every page (the store reused, not built in it): {rss_mb:.0f} MB."]
    if per_call:
        lines += ["", ("Where a cold first load goes: each `regwatch.insights` call once over all the data, in a fresh "
                       "process (`bench_dashboard.py --calls`), cheapest first; the peak RSS only grows, so a row's "
                       "figure is the most that call or one above it needed."), "",
                  "| call | time (s) | peak RSS after it (MB) |", "|---|---|---|"]
        lines += [f"| {name} | {dt:.2f} | {peak:.0f} |" for name, dt, peak in per_call]
    section = "\n".join(lines) + "\n"
    start = text.find("## Dashboard\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text, encoding="utf-8")


def _calls_in_fresh_process(db: Path) -> list[tuple[str, float, float]]:
    import json
    import subprocess

    proc = subprocess.run([sys.executable, __file__, "--calls", "--db", str(db)], capture_output=True, text=True,
                          check=True)
    sys.stderr.write(proc.stderr)
    return [tuple(r) for r in json.loads(proc.stdout.strip().splitlines()[-1])]  # type: ignore[misc]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=ROOT / "bench" / "out" / "dashboard-db")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--calls", action="store_true", help="only time each insights call (prints JSON)")
    a = ap.parse_args()
    import resource

    t0 = time.perf_counter()
    reused = a.db.exists()
    n = build(a.db, a.events, a.db.parent / "dashboard-logs")
    print(f"store: {n:,} events at {a.db} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if a.calls:
        import json

        print(json.dumps(calls(a.db)))
        return
    per_call = _calls_in_fresh_process(a.db)
    results = {label: measure(a.db, a.runs, label) for label in ("All data", "Last 24 hours")}
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if reused else None
    if rss_mb is not None:
        print(f"peak RSS {rss_mb:.0f} MB", file=sys.stderr)
    if not a.no_docs:
        write_docs(n, results, rss_mb, per_call)
    slow = [(lbl, t) for lbl, rows in results.items() for t, _, later in rows if later >= TARGET_S]
    if slow:
        print(f"over {TARGET_S:g} s after the first load: {slow}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
