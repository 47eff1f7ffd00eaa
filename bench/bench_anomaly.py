#!/usr/bin/env python3
"""The anomaly model over a week of a busy registry: time and peak RSS of
``regwatch.anomaly.anomalies`` on an embedded store.

One run:

1. writes a fortnight of synthetic traffic (``--per-week`` events a week: developers in
   office hours, CI robots round the clock, a nightly retention robot, anonymous pulls;
   the first week is the look-back history, the second the scored window) into an
   embedded store at ``--db`` (reused when it already holds them);
2. in a fresh process (so the generator's memory does not count), times
   ``anomalies(store, since=<second week>, until=<end>)`` ``--runs`` times and reports
   the median, the peak RSS, the number of (actor, hour) rows scored and the flags;
3. replaces the "## Anomaly model" section of docs/benchmarks.md (``--no-docs`` to skip).

    python bench/bench_anomaly.py                       # 1M events a week
    python bench/bench_anomaly.py --per-week 200000     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WEEK = timedelta(days=7)


def generate_day(day: datetime, per_week: int, rng: random.Random, first_id: int) -> list:
    """One day of traffic, about ``per_week / 7`` events (weekends are quieter)."""
    from regwatch.events import Action, AuthClass, Event, Outcome, Tally

    scale = per_week / 1_000_000
    devs = max(10, int(700 * scale))
    bots = max(3, int(45 * scale))
    repos = [f"team{t}/app{i}" for t in range(60) for i in range(20)]
    out: list[Event] = []

    def ev(t: datetime, user: str | None, ip: str, repo: str | None, action: str, tally: str, auth: str,
           status: int = 200) -> None:
        out.append(Event(id=f"b{first_id + len(out):010d}", timestamp=t, source="distribution",
                         component="registry", action=action,
                         outcome=Outcome.SUCCESS.value if status < 400 else Outcome.FAILURE.value,
                         tally=tally, auth=auth, repository=repo, status=status, user=user, client_ip=ip))

    for h in range(24):
        hour = day + timedelta(hours=h)
        def at(hour: datetime = hour) -> datetime:
            return hour + timedelta(seconds=rng.randrange(3600))
        workday = hour.weekday() < 5
        if workday and 8 <= h < 18:
            for d in range(devs):
                if rng.random() < 0.5:
                    ip, mine = f"10.1.{d // 250}.{d % 250 + 1}", repos[(d * 7) % len(repos):(d * 7) % len(repos) + 6]
                    ev(at(), None, ip, None, Action.BASE.value, Tally.NONE.value, AuthClass.CHALLENGE.value, 401)
                    if rng.random() < 0.02:
                        ev(at(), f"dev{d}", ip, None, Action.BASE.value, Tally.NONE.value, AuthClass.AUTH_FAILURE.value, 401)
                    for _ in range(rng.randint(5, 45)):
                        ev(at(), f"dev{d}", ip, rng.choice(mine), Action.BLOB_PULL.value, Tally.BLOB_PULL.value,
                           AuthClass.AUTH_SUCCESS.value)
        for b in range(bots):
            for _ in range(rng.randint(20, 100)):
                ev(at(), f"ci-bot-{b}", f"10.2.0.{rng.randint(1, 12)}", repos[(b * 13 + rng.randrange(20)) % len(repos)],
                   Action.PULL.value, Tally.PULL.value, AuthClass.AUTH_SUCCESS.value)
        if h == 2:
            for _ in range(rng.randint(20, 60)):
                ev(at(), "retention", "10.3.0.1", rng.choice(repos), Action.DELETE.value, Tally.DELETE.value,
                   AuthClass.AUTH_SUCCESS.value, 202)
        for _ in range(int(150 * scale) + 1):
            ev(at(), None, f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "library/alpine",
               Action.PULL.value, Tally.PULL.value, AuthClass.NONE.value)
    return out


def build(db: Path, per_week: int) -> int:
    from regwatch.stores.embedded import EmbeddedStore

    store = EmbeddedStore(db)
    try:
        if store.count() >= per_week:
            return store.count()
        rng = random.Random(11)
        n = 0
        t0 = time.perf_counter()
        for d in range(14):
            batch = generate_day(START + timedelta(days=d), per_week, rng, n)
            store.write(batch)
            n += len(batch)
        print(f"  wrote {n:,} events in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        return store.count()
    finally:
        store.close()


def measure(db: Path, runs: int) -> dict:
    """Run in a fresh process: median seconds, peak RSS, rows scored, flags."""
    from regwatch import anomaly
    from regwatch.stores.embedded import EmbeddedStore

    store = EmbeddedStore(db)
    since, until = START + WEEK, START + 2 * WEEK
    times, flags = [], []
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            flags = anomaly.anomalies(store, since=since, until=until)
            times.append(time.perf_counter() - t0)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the counting below
        t0 = time.perf_counter()
        touches = anomaly.touches_from_store(store, since - anomaly.DEFAULT_LOOKBACK, until)
        read_s = time.perf_counter() - t0
        rows = anomaly.hourly_features(touches, since=since)
        window = sum(1 for t in touches if t.hour >= since)
        events = sum(t.records for t in touches if t.hour >= since)
    finally:
        store.close()
    return {
        "median_s": statistics.median(times), "runs": runs, "read_s": read_s,
        "peak_rss_mb": peak_mb,
        "events_in_window": events, "grouped_rows_in_window": window, "actor_hours": len(rows),
        "flags": [(a.kind, a.actor, a.hour.isoformat(), round(a.score, 3), list(a.reasons)) for a in flags],
    }


def write_docs(total: int, m: dict) -> None:
    """Replace the "## Anomaly model" section of docs/benchmarks.md (only that section)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_ingest import replace_section

    load = os.getloadavg()
    body = "\n".join([
        (f"`python bench/bench_anomaly.py --per-week {m['per_week']}` (bench/bench_anomaly.py): an embedded store with a "
         f"fortnight of synthetic traffic (developers in office hours, CI robots round the clock from 12 runners, a "
         f"nightly retention robot, anonymous pulls from changing addresses), {total:,} events; the second week "
         f"({m['events_in_window']:,} events) is scored by `regwatch.anomaly.anomalies(store, since=, until=)` with "
         f"the default 7-day look-back, in a fresh process. Measured on this machine ({os.cpu_count()} cores; load "
         f"average after the run {load[0]:.2f}, other jobs share the machine)."),
        "",
        "| what | figure |",
        "|---|---|",
        f"| (actor, hour) rows scored / grouped rows read for the scored week | {m['actor_hours']:,} / {m['grouped_rows_in_window']:,} |",
        f"| `anomalies()` wall time, median of {m['runs']} runs | {m['median_s']:.1f} s |",
        f"| of which the hourly `Aggregation` reads (look-back included), one separate run | {m['read_s']:.1f} s |",
        f"| peak RSS | {m['peak_rss_mb']:.0f} MB |",
        f"| flags on this quiet fortnight | {len(m['flags'])} |",
    ])
    replace_section("## Anomaly model", body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-week", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite the section of docs/benchmarks.md")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    db = args.db or ROOT / "bench" / "out" / f"anomaly-db-{args.per_week}"
    if args.measure:
        print(json.dumps(measure(db, args.runs)))
        return 0
    total = build(db, args.per_week)
    out = subprocess.run([sys.executable, __file__, "--measure", "--db", str(db), "--runs", str(args.runs),
                          "--per-week", str(args.per_week)], check=True, capture_output=True, text=True)
    m = json.loads(out.stdout)
    print(f"store: {total:,} events (two weeks); scored week: {m['events_in_window']:,} events, "
          f"{m['grouped_rows_in_window']:,} grouped rows, {m['actor_hours']:,} (actor, hour) rows")
    print(f"anomalies(): median {m['median_s']:.2f} s of {m['runs']} runs (store reads {m['read_s']:.2f} s), "
          f"peak RSS {m['peak_rss_mb']:.0f} MB, {len(m['flags'])} flag(s)")
    for f in m["flags"][:10]:
        print("  ", f)
    if not args.no_docs:
        write_docs(total, {**m, "per_week": args.per_week})
    return 0


if __name__ == "__main__":
    sys.exit(main())
