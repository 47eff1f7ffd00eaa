"""The service in steady state: write latency, the highest rate it keeps up with, idle cost.

A writer appends real-shaped registry lines (bench/realgen.py, generated up front so the
writer costs little) to a log that `regwatch run` follows with the embedded store, at a
fixed rate in batches every 50 ms. Latency of a batch: from its write to the moment the
service's checkpoint passes its last byte. The checkpoint moves only after the store has
accepted every record of the lines before it, so this is an upper bound of the time to
queryable. Phases:

1. ``--rate`` lines/s (default 50k) for ``--seconds``: p50/p95/max latency;
2. higher rates until the service falls behind (the backlog grows through the phase,
   judged on the batches before the phase's last 2 s: after those the log goes quiet and
   the service may hold pulls a DELETE could still claim for up to 10 s): the highest
   rate it kept up with;
3. idle: CPU seconds and RSS of the service over 20 s with nothing to read.

    python bench/bench_daemon.py [--rate 50000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import realgen  # noqa: E402


def _pool(n: int) -> list[bytes]:
    return [(line + "\n").encode() for line in realgen.generate(n, seed=5)]


def _committed(state: Path) -> int:
    total = 0
    for p in state.glob("tail-*.json"):
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        files = doc.get("files", doc)
        if isinstance(files, dict):
            for v in files.values():
                if isinstance(v, dict) and isinstance(v.get("offset"), int):
                    total = max(total, int(v["offset"]))
    return total


def _proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(parts[11]) + int(parts[12])) / ticks
    with open(f"/proc/{pid}/status") as fh:
        rss = next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmRSS:"))
    return cpu, rss


def _phase(log: Path, state: Path, pool: list[bytes], rate: int, seconds: float) -> dict[str, float]:
    """Write ``rate`` lines/s for ``seconds``; latencies of the batches and the backlog."""
    batches: list[tuple[float, int]] = []
    stop = threading.Event()
    seen: dict[int, float] = {}

    def watch() -> None:
        while not stop.is_set():
            c = _committed(state)
            now = time.monotonic()
            for i, (_, end) in enumerate(batches):
                if i not in seen and c >= end:
                    seen[i] = now
            time.sleep(0.01)

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    k = 0
    per = max(1, int(rate * 0.05))
    with open(log, "ab") as fh:
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < seconds:
            due = t0 + n * 0.05
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            chunk = b"".join(pool[(k + i) % len(pool)] for i in range(per))
            k += per
            fh.write(chunk)
            fh.flush()
            batches.append((time.monotonic(), fh.tell()))
            n += 1
    end = time.monotonic() + 30
    while len(seen) < len(batches) and time.monotonic() < end:
        time.sleep(0.05)
    stop.set()
    w.join()
    lat = sorted(seen[i] - t for i, (t, _) in enumerate(batches) if i in seen)
    missing = len(batches) - len(lat)
    # the batches of the phase's last 2 s are followed by quiet: the service settles the
    # log and holds the pulls a DELETE may still claim (and its checkpoint) for up to
    # LOOKUP_WINDOW, so their latency is that of a quiet log, not of keeping up
    t_end = batches[-1][0] if batches else 0.0
    steady = [i for i, (t, _) in enumerate(batches) if t < t_end - 2.0]
    half = len(steady) // 2
    # keeping up: the second half of the phase does not wait longer than the first
    first = [seen[i] - batches[i][0] for i in steady[:half] if i in seen]
    second = [seen[i] - batches[i][0] for i in steady[half:] if i in seen]
    last = [seen[i] - batches[i][0] for i in range(len(batches)) if i in seen and i not in set(steady)]
    return {
        "rate": rate,
        "lines": k,
        "p50": lat[len(lat) // 2] if lat else float("nan"),
        "p95": lat[int(len(lat) * 0.95) - 1] if lat else float("nan"),
        "max": lat[-1] if lat else float("nan"),
        "max_steady": max(first + second) if first + second else float("nan"),
        "max_last_2s": max(last) if last else float("nan"),
        "unstored_batches": missing,
        "kept_up": bool(lat) and missing == 0 and (max(second) if second else 0) < 2.0 + (max(first) if first else 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rates", default="75000,100000,125000,150000", help="the higher rates to try, in order")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regwatch-bench-daemon-"))
    log, db, state = work / "registry.log", work / "db", work / "state"
    log.touch()
    cfg = work / "regwatch.yaml"
    cfg.write_text(
        f"store: {{kind: embedded, path: {db}}}\nsources:\n  - paths: [{log}]\n"
        f"service: {{state_dir: {state}, idle_flush: 1.0}}\n"  # the default poll_interval (0.25 s)
    )
    print("generating lines ...", file=sys.stderr)
    pool = _pool(400_000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    svc = subprocess.Popen([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], env=env, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3.0)
        results = [_phase(log, state, pool, a.rate, a.seconds)]
        print(json.dumps(results[-1]), flush=True)
        for r in (int(x) for x in a.rates.split(",") if x):
            res = _phase(log, state, pool, r, a.seconds)
            results.append(res)
            print(json.dumps(res), flush=True)
            if not res["kept_up"]:
                break
        time.sleep(5.0)
        cpu0, _ = _proc_stats(svc.pid)
        time.sleep(20.0)
        cpu1, rss = _proc_stats(svc.pid)
        idle = {"idle_cpu_percent": round(100 * (cpu1 - cpu0) / 20.0, 2), "idle_rss_mb": round(rss / 2**20, 1)}
        print(json.dumps(idle), flush=True)
        best = max((r["rate"] for r in results if r["kept_up"]), default=0)
        print(
            f"\nsteady {a.rate} lines/s: p50 {results[0]['p50']:.2f} s, p95 {results[0]['p95']:.2f} s, max {results[0]['max']:.2f} s; "
            f"kept up with {best} lines/s; idle {idle['idle_cpu_percent']}% of a core, {idle['idle_rss_mb']} MB RSS"
        )
    finally:
        svc.send_signal(signal.SIGTERM)
        try:
            svc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            svc.kill()


if __name__ == "__main__":
    main()
