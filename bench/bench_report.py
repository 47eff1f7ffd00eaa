#!/usr/bin/env python3
"""The daily report at 10M events: build_report + write_report time (target: under 10 s).

One run:

1. builds an embedded store of ``--events`` synthetic events over 90 days with the
   generator of bench_store.py (``batches``: ~100 repositories, 20 users, pulls, failures,
   auth failures, uploads, deletes), written with ``EmbeddedStore.write_table``; a store
   already at ``--db`` with that many events is reused;
2. times ``build_report`` + ``write_report`` (HTML and JSON) for a day in the middle and
   for the last day, median of ``--runs``, each in a fresh store object (cold DuckDB
   connection, warm OS page cache);
3. times ``retention_recommendation`` (90 days without a pull) once: it runs only when a
   capacity action fires, not in the report;
4. replaces the "## Daily report" section of docs/benchmarks.md (``--no-docs`` to skip).

    python bench/bench_report.py                    # 10M events
    python bench/bench_report.py --events 1000000   # quicker
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import loadavg, machine, machine_lines, replace_section
from bench_store import DAYS, START, batches

from regwatch.capacity import retention_recommendation
from regwatch.reports import build_report, write_report
from regwatch.stores.embedded import EmbeddedStore

SECTION = "## Daily report"


def build(db: Path, total: int, seed: int) -> float:
    if (db / "manifest.json").exists():
        s = EmbeddedStore(db)
        n = s.count()
        s.close()
        if n == total:
            print(f"reusing {db} ({n:,} events)", flush=True)
            return 0.0
        raise SystemExit(f"{db} holds {n:,} events, not {total:,}; pass another --db")
    s = EmbeddedStore(db)
    t0 = time.perf_counter()
    done = 0
    with s.bulk():
        for t in batches(total, 200_000, seed):
            s.write_table(t)
            done += t.num_rows
            if done % 1_000_000 == 0:
                print(f"  {done:,} events, {time.perf_counter() - t0:.0f} s", flush=True)
    s.close()
    return time.perf_counter() - t0


def time_report(db: Path, day_offset: int, out: Path, runs: int) -> tuple[float, list[float], dict[str, int]]:
    day = (START + timedelta(days=day_offset)).date()
    now = START + timedelta(days=day_offset + 1, hours=7)
    times = []
    facts: dict[str, int] = {}
    for _ in range(runs):
        s = EmbeddedStore(db)
        t0 = time.perf_counter()
        r = build_report(s, day, "UTC", now)
        html_path, json_path = write_report(r, out)
        times.append(time.perf_counter() - t0)
        s.close()
        facts = {"events": r.events, "deletes": len(r.deletes), "html_bytes": html_path.stat().st_size,
                 "json_bytes": json_path.stat().st_size}
    return statistics.median(times), times, facts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--db", type=Path, default=None, help="store directory (kept; default: a temporary one)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--no-docs", action="store_true")
    a = ap.parse_args()
    load0 = loadavg()
    tmp = tempfile.mkdtemp(prefix="regwatch-bench-report-")
    db = a.db or Path(tmp) / "db"
    build_s = build(db, a.events, a.seed)
    out = Path(tmp) / "out"
    mid = time_report(db, DAYS // 2, out, a.runs)
    last = time_report(db, DAYS - 1, out, a.runs)
    s = EmbeddedStore(db)
    t0 = time.perf_counter()
    ret = retention_recommendation(s, START + timedelta(days=DAYS), 30)
    ret_s = time.perf_counter() - t0
    s.close()
    load1 = loadavg()
    res = {"events": a.events, "build_s": build_s, "mid": mid, "last": last, "retention_s": ret_s,
           "retention": {"repositories": len(ret.repositories), "tags": len(ret.tags)}}
    print(json.dumps(res, indent=1, default=str))
    if a.no_docs:
        return
    lines = [
        f"`python bench/bench_report.py --events {a.events}` ({a.events:,} synthetic events over {DAYS} days from",
        "bench_store.py's generator, about 110,000 a day, in one embedded store). Time of `build_report` +",
        "`write_report` (HTML and JSON) for one day, a fresh store object per run (cold DuckDB",
        "connection, warm page cache); target: under 10 s. The store has no storage samples, so",
        "the forecast (about 0.1 s per storage path, see Storage forecast) is not in these figures.",
        "",
        "| day | median | runs | events that day | deletes listed | HTML | JSON |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for label, (med, times, f) in (("day 45 (middle)", mid), (f"day {DAYS - 1} (last)", last)):
        lines.append(f"| {label} | {med:.2f} s | {', '.join(f'{t:.2f}' for t in times)} | {f['events']:,} | "
                     f"{f['deletes']:,} | {f['html_bytes'] / 1024:.0f} KiB | {f['json_bytes'] / 1024:.0f} KiB |")
    lines += [
        "",
        (
            f"- `retention_recommendation` (30 days without a pull, over all {a.events:,} events): {ret_s:.1f} s, "
            f"{len(ret.repositories)} repositories and {len(ret.tags):,} tags found. It reads every push, upload,"
        ),
        "  delete and the pulls of the window as Event objects; it runs when a capacity action fires, not in the report.",
        f"- building the store: {build_s:.0f} s" + (" (reused)" if build_s == 0 else ""),
        *machine_lines(machine(), (load0, load1)),
    ]
    replace_section(SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()
