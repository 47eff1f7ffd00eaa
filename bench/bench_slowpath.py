#!/usr/bin/env python3
"""The per-line (slow) path end to end: ``regwatch ingest`` with every line on it.

Two inputs, each ``--lines`` lines, cached under bench/out/:

* **distribution**: synthetic registry 2.8 text logs (bench/synth.py, the same generator
  as bench_ingest.py); normally the native fast path takes nearly all of these lines;
* **harbor**: Harbor's rsyslog-wrapped component logs, the core, proxy and registry
  lines of sample_logs/harbor/ interleaved by time and repeated with shifted times (the
  fast path takes only the registry's lines among them, about 8%).

For each input, in this order:

a) baseline, in this process: naive pygrok reading the file (``Grok.match`` per line with
   regwatch's own patterns, first that matches wins; for Harbor the rsyslog wrapper
   pattern first, then the body patterns), over the first ``--grok-lines`` lines;
b) ``python -m regwatch ingest --db <fresh dir> --json --quiet FILE`` in a fresh
   subprocess with ``REGWATCH_FASTPATH=0`` (every line on the per-line path): wall and
   CPU time, lines/s, peak RSS of that process (``os.wait4`` ``ru_maxrss``, MB of 10^6
   bytes);
c) the same with the default settings (fast path on), for comparison.

It prints a markdown report and replaces the "## Per-line (slow) path" section of
docs/benchmarks.md (``--no-docs`` to skip); other sections are left alone.

    python bench/bench_slowpath.py                  # 1M lines each
    python bench/bench_slowpath.py --lines 200000   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Per-line (slow) path"
TARGET_RATE = 50_000  # lines/s end to end with every line on the per-line path (the issue)
HARBOR_FILES = ("core.log", "proxy.log", "registry.log")


# -- inputs ---------------------------------------------------------------------------------
def distribution_log(n: int) -> Path:
    sys.path.insert(0, str(BENCH))
    import synth

    OUT.mkdir(exist_ok=True)
    path = OUT / f"slow-synth-{n}.log"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            buf: list[str] = []
            for line in synth.generate(n, 7):
                buf.append(line)
                if len(buf) >= 10_000:
                    fh.write("\n".join(buf) + "\n")
                    buf = []
            if buf:
                fh.write("\n".join(buf) + "\n")
        tmp.rename(path)
    return path


_SYSLOG_TS = re.compile(r"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d:\d\d:\d\d) ")
_ISO = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")
_CLF = re.compile(r"\[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d) ")
_SLASH = re.compile(r"(?<![\d/])(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)")
_YEAR = 2024  # the year of the Harbor samples (their syslog prefixes have none)


def _shifter(delta: timedelta):  # noqa: ANN202 - a small closure
    def syslog(m: re.Match[str]) -> str:
        t = datetime.strptime(f"{_YEAR} {m.group(1)} {m.group(2).strip()} {m.group(3)}", "%Y %b %d %H:%M:%S") + delta
        return f"{t:%b} {t.day:2d} {t:%H:%M:%S} "

    def iso(m: re.Match[str]) -> str:
        return (datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S") + delta).strftime("%Y-%m-%dT%H:%M:%S")

    def clf(m: re.Match[str]) -> str:
        return "[" + (datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S") + delta).strftime("%d/%b/%Y:%H:%M:%S") + " "

    def slash(m: re.Match[str]) -> str:
        return (datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S") + delta).strftime("%Y/%m/%d %H:%M:%S")

    def shift(line: str) -> str:
        line = _SYSLOG_TS.sub(syslog, line, count=1)
        line = _ISO.sub(iso, line)
        line = _CLF.sub(clf, line)
        return _SLASH.sub(slash, line)

    return shift


def harbor_log(n: int) -> Path:
    """core, proxy and registry lines of sample_logs/harbor/, interleaved by their syslog
    time, repeated with every time shifted by the samples' span plus a minute per round,
    to ``n`` lines."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"slow-harbor-{n}.log"
    if path.exists():
        return path
    rows = []
    for k, name in enumerate(HARBOR_FILES):
        for i, line in enumerate((ROOT / "sample_logs" / "harbor" / name).read_text().splitlines()):
            m = _SYSLOG_TS.match(line)
            key = m.group(0) if m else ""
            t = datetime.strptime(f"{_YEAR} {key.strip()}", "%Y %b %d %H:%M:%S") if m else datetime.min
            rows.append((t, k, i, line))
    rows.sort()
    one = [r[3] for r in rows]
    times = [r[0] for r in rows if r[0] != datetime.min]
    # each round starts a minute after the previous one ended, so the stream stays in order
    step = (max(times) - min(times)) + timedelta(minutes=1)
    tmp = path.with_suffix(".tmp")
    written = 0
    with open(tmp, "w") as fh:
        rnd = 0
        while written < n:
            shift = _shifter(step * rnd)
            chunk = [shift(line) for line in one[: n - written]]
            fh.write("\n".join(chunk) + "\n")
            written += len(chunk)
            rnd += 1
    tmp.rename(path)
    return path


# -- a) naive pygrok ----------------------------------------------------------------------------
def grok_baseline(path: Path, kind: str, limit: int) -> dict[str, Any]:
    """Per-line pygrok reading the file: the file is opened and decoded line by line and
    every line matched, all timed."""
    sys.path.insert(0, str(ROOT))
    from regwatch.parsing.grok import compile_grok

    if kind == "distribution":
        wrapper = None
        bodies = [compile_grok("%{REGISTRY_LOGRUS}"), compile_grok("%{REGISTRY_ACCESS}")]
    else:
        wrapper = compile_grok("%{HARBOR_SYSLOG}")
        bodies = [
            compile_grok("%{REGISTRY_LOGRUS}"),
            compile_grok("%{REGISTRY_ACCESS}"),
            compile_grok("%{HARBOR_NGINX}"),
            compile_grok("%{HARBOR_LOGGER}"),
        ]
    n = matched = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    with open(path, "rb") as fh:
        for raw in islice(fh, limit):
            text = raw.decode("utf-8").rstrip("\n")
            n += 1
            body = text
            if wrapper is not None:
                caps = wrapper.match(text)
                if caps is None:
                    continue
                body = caps.get("message") or caps.get("body") or ""
            for g in bodies:
                if g.match(body) is not None:
                    matched += 1
                    break
    return {
        "lines": n,
        "matched": matched,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }


# -- b), c) regwatch ingest -------------------------------------------------------------------
def run_ingest(log: Path, env_extra: dict[str, str], timeout: float, keep: bool) -> dict[str, Any]:
    db = Path(tempfile.mkdtemp(prefix="regwatch-slow-", dir=OUT))
    env = dict(os.environ)
    env.update(env_extra)
    cmd = [sys.executable, "-m", "regwatch", "ingest", "--db", str(db / "store"), "--json", "--quiet", str(log)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        deadline = t0 + timeout
        status = None
        usage = None
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                _, status, usage = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if not keep:
        shutil.rmtree(db, ignore_errors=True)
    try:
        stats = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    except json.JSONDecodeError:
        stats = {}
    rc = os.waitstatus_to_exitcode(status) if status is not None else None
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime if usage else 0.0,
        "maxrss_mb": usage.ru_maxrss * 1024 / 1e6 if usage else 0.0,
        "rc": rc,
        "stats": stats,
        "stderr_tail": stderr[-400:] if rc else "",
    }


# -- report -----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "regwatch"], capture_output=True, text=True
        ).stdout.strip()
        info["revision"] = head + (" + uncommitted changes in regwatch/ (other work in progress)" if dirty else "")
    except OSError:
        info["revision"] = "unknown"
    # setuptools-rust names the library with the interpreter's suffix (_native.cpython-311-...so)
    info["native"] = "built" if any((ROOT / "regwatch").glob("_native*.so")) else "not built"
    return info


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def fmt(x: float) -> str:
    return f"{x:,.0f}"


def report(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        SECTION,
        "",
        f"Measured {r['when']} by `bench/bench_slowpath.py` (code {m['revision']}; {m['nproc']} cores, "
        f"{m['cpu']}, Python {m['python']}, native library {m['native']}; load average before/after: "
        f"{r['load'][0]} / {r['load'][1]}). `REGWATCH_FASTPATH=0` sends every line to the per-line parser "
        "([configuration.md](configuration.md#environment-variables)). Peak RSS is the ingest subprocess's "
        "own (`wait4` `ru_maxrss`), in MB of 10^6 bytes. Target (the issue): at least "
        f"{fmt(TARGET_RATE)} lines/s end to end with every line on the per-line path.",
        "",
        "| input | run | lines | wall s | CPU s | lines/s | peak RSS MB | events stored | unintentional drops |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, part in r["inputs"].items():
        g = part["grok"]
        lines.append(
            f"| {name} | a) naive pygrok reading the file (first {g['lines']:,} lines; {g['matched']:,} matched) "
            f"| {g['lines']:,} | {g['wall_s']:.1f} | {g['cpu_s']:.1f} | {fmt(g['lines'] / g['wall_s'])} | – | – | – |"
        )
        for key, label in (("slow", "b) `regwatch ingest`, `REGWATCH_FASTPATH=0`"), ("default", "c) `regwatch ingest`, default")):
            x = part.get(key)
            if x is None:
                continue
            st = x["stats"]
            n = st.get("lines", part["lines"])
            drops = sum(st.get("dropped", {}).values())
            ok = "" if x["rc"] == 0 else f" (exit {x['rc']})"
            lines.append(
                f"| {name} | {label}{ok} | {n:,} | {x['wall_s']:.1f} | {x['cpu_s']:.1f} | **{fmt(n / x['wall_s'])}** "
                f"| {x['maxrss_mb']:.0f} | {st.get('events', 0):,} | {drops:,} |"
            )
    lines += [
        "",
        "- **distribution**: bench/synth.py's registry 2.8 text lines (app and access lines of pulls, pushes, "
        "failures, challenges, deletes). With the fast path these are native work; here every one goes "
        "through `DistributionParser.parse`, `correlate.events_to_obs` and the native fold.",
        "- **harbor**: the rsyslog-wrapped core, proxy and registry lines of sample_logs/harbor/, interleaved "
        "by syslog time and repeated with all times shifted by the samples' span (plus a minute) per round; the fast path takes "
        "only the registry's lines of them (about 8%: the proxy's and core's stay per line), so b) and c) do "
        "nearly the same work. The unintentional drops are the sample's own "
        "deliberately broken and not-yet-read lines, repeated.",
        "- a) is the cost of naive grok alone (no events, no store): per line, regwatch's own grok patterns "
        "(`parsing/patterns/*.grok` through pygrok, first match wins; Harbor: `HARBOR_SYSLOG`, then "
        "`REGISTRY_LOGRUS`, `REGISTRY_ACCESS`, `HARBOR_NGINX`, `HARBOR_LOGGER` on the body), reading and "
        "decoding the file included.",
    ]
    for note in r.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def update_docs(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        DOCS.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    nxt = text.find("\n## ", start + len(SECTION))
    end = len(text) if nxt < 0 else nxt + 1
    DOCS.write_text(text[:start] + section + ("\n" if nxt >= 0 else "") + text[end:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines per input (default 1,000,000)")
    ap.add_argument("--grok-lines", type=int, default=None, help="lines pygrok reads (default: all)")
    ap.add_argument("--inputs", default="distribution,harbor")
    ap.add_argument("--no-default", action="store_true", help="skip c), the default (fast path) run")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--keep", action="store_true", help="keep the stores under bench/out/")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--json", help="write the raw figures here")
    ap.add_argument("--note", action="append", default=[], help="a bullet added to the report (repeatable)")
    a = ap.parse_args()
    load0 = loadavg()
    r: dict[str, Any] = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "inputs": {},
        "notes": a.note,
    }
    for name in a.inputs.split(","):
        log = distribution_log(a.lines) if name == "distribution" else harbor_log(a.lines)
        part: dict[str, Any] = {"lines": a.lines, "file": str(log)}
        part["grok"] = grok_baseline(log, name, a.grok_lines or a.lines)
        print(f"# {name}: a) pygrok {fmt(part['grok']['lines'] / part['grok']['wall_s'])} lines/s", flush=True)
        part["slow"] = run_ingest(log, {"REGWATCH_FASTPATH": "0"}, a.timeout, a.keep)
        s = part["slow"]
        print(f"# {name}: b) slow path {fmt(s['stats'].get('lines', 0) / s['wall_s'])} lines/s, {s['maxrss_mb']:.0f} MB", flush=True)
        if not a.no_default:
            part["default"] = run_ingest(log, {}, a.timeout, a.keep)
            d = part["default"]
            print(f"# {name}: c) default {fmt(d['stats'].get('lines', 0) / d['wall_s'])} lines/s, {d['maxrss_mb']:.0f} MB", flush=True)
        r["inputs"][name] = part
    r["load"] = (load0, loadavg())
    section = report(r)
    print(section)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2, default=str))
    if not a.no_docs:
        update_docs(section)


if __name__ == "__main__":
    main()
