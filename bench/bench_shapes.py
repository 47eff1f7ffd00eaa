#!/usr/bin/env python3
"""Ingest on logs in the shape of real registry output, and which path each line took.

bench_ingest.py measures one input (bench/synth.py). This measures, with the same
end-to-end method (``regwatch ingest`` in a fresh subprocess: wall and CPU time, peak RSS
of that process in MB of 10^6 bytes), several inputs:

- ``synth``: bench/synth.py, the input of bench_ingest.py;
- ``realgen text`` and ``realgen json``: bench/realgen.py, lines rendered by
  re-implementations of the registry's own formatters (logrus TextFormatter and
  JSONFormatter, the combined access line) for busy-registry traffic with token auth
  (``auth.user.name`` on every request line, the user in the access line), docker,
  containerd and skopeo agents;
- the real captures in sample_logs/distribution/ (Debian docker-registry 2.8.2 under
  skopeo, htpasswd auth), each as it is (too short for a rate: interpreter start dominates)
  and repeated up to the size of the others (``×N``: the same lines over and over, so the
  same request ids recur; it measures the per-line cost on real lines, not a real day).

For each input it also prints the share of lines each path took: the native block parser
(native/src/parse.rs) or the per-line parser. The shares come from running the native
parser over the file's blocks exactly as the ingest reads them (sources.blocks.read_blocks,
then native.fast_parse on each block), in this process; the ingest itself does not report
them. With ``--per-line`` the same ingest runs once more with ``REGWATCH_FASTPATH=0``
(every line through the per-line parser) over a prefix, and ``--grok`` times naive pygrok
(REGISTRY_LOGRUS then REGISTRY_ACCESS per line) over a sample of each text input.

It prints a markdown report and replaces the "## Ingest on real-registry shapes" section
of docs/benchmarks.md (``--no-docs`` to skip).

    python bench/bench_shapes.py                 # 1M lines per generated input
    python bench/bench_shapes.py --lines 100000  # quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import bench_ingest as bi  # noqa: E402

SECTION = "## Ingest on real-registry shapes"
DIST = ROOT / "sample_logs" / "distribution"


# -- inputs --------------------------------------------------------------------------------
def realgen_log(out: Path, lines: int, seed: int, fmt: str, auth: str, python: str) -> Path:
    """The cached bench/realgen.py log (regenerated when realgen.py changes)."""
    h = hashlib.sha256((BENCH / "realgen.py").read_bytes()).hexdigest()[:16]
    path = out / f"realgen-{fmt}-{auth}-{lines}-seed{seed}.log"
    meta = path.with_suffix(".meta.json")
    want = {"lines": lines, "seed": seed, "fmt": fmt, "auth": auth, "realgen": h}
    if path.exists() and meta.exists():
        try:
            have = json.loads(meta.read_text())
            if {k: have.get(k) for k in want} == want and have.get("bytes") == path.stat().st_size:
                return path
        except (OSError, ValueError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    subprocess.run([python, str(BENCH / "realgen.py"), "--lines", str(lines), "--seed", str(seed),
                    "--format", fmt, "--auth", auth, "--out", str(tmp)], check=True)
    os.replace(tmp, path)
    meta.write_text(json.dumps({**want, "bytes": path.stat().st_size}))
    return path


def repeated(out: Path, src: Path, lines: int) -> tuple[Path, int]:
    """``src`` repeated until it has at least ``lines`` lines (whole copies)."""
    body = src.read_bytes()
    if not body.endswith(b"\n"):
        body += b"\n"
    n = body.count(b"\n")
    copies = max(1, -(-lines // n))
    path = out / f"{src.stem}-x{copies}.log"
    if not (path.exists() and path.stat().st_size == len(body) * copies):
        out.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            for _ in range(copies):
                fh.write(body)
    return path, copies


def harbor_wrapped(out: Path, src: Path) -> Path:
    """``src`` (registry lines) as Harbor's rsyslog registry.log writes them: each line
    behind ``Mmm dd HH:MM:SS 172.18.0.1 registry[1234]: ``, the prefix the line's own
    time on a host at UTC+8 (an access line's time, or the line before's)."""
    import re as _re
    from datetime import timedelta as _td

    path = out / f"harbor-registry-{src.stem}.log"
    if path.exists() and path.stat().st_mtime >= src.stat().st_mtime:
        return path
    mons = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    t_re = _re.compile(r'(?:time="|"time":")(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)')
    a_re = _re.compile(r"\[(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d) ")
    last = datetime(2026, 1, 1)
    tmp = path.with_suffix(".tmp")
    with open(src, encoding="utf-8") as fi, open(tmp, "w", encoding="utf-8") as fo:
        for line in fi:
            m = t_re.search(line)
            if m is not None:
                last = datetime(*map(int, m.groups()))
            else:
                m = a_re.search(line)
                if m is not None:
                    d, mon, y, hh, mm, ss = m.groups()
                    last = datetime(int(y), mons.index(mon) + 1, int(d), int(hh), int(mm), int(ss))
            loc = last + _td(hours=8)
            fo.write(f"{mons[loc.month - 1]} {loc.day:2d} {loc:%H:%M:%S} 172.18.0.1 registry[1234]: {line}")
    tmp.rename(path)
    return path


def count_lines(path: Path) -> int:
    return bi._count_lines(path)


# -- path shares -----------------------------------------------------------------------------
def path_shares(path: Path) -> dict[str, Any]:
    """Lines the native block parser takes, and the rest (per-line parser), over the blocks
    the ingest reads."""
    from regwatch import arrowkit, native
    from regwatch.parsing.harbor import strip_syslog_block
    from regwatch.parsing.wrappers import strip_block
    from regwatch.sources.blocks import read_blocks
    from regwatch.sources.files import file_info

    if not native.available():
        return {"native": 0, "per_line": 0, "lines": 0, "available": False}
    info = file_info(str(path))
    total = fast = 0
    kinds: dict[str, int] = {}
    t0 = time.perf_counter()
    for b in read_blocks(info, 0):
        n = len(b)
        if b.arrow is not None:
            # the envelopes the ingest takes off first (as pipeline._BlockRun.parse does)
            arr, _, form = strip_block(b.arrow, b.texts[0])
            if not form and b.problems is None:
                sb = strip_syslog_block(b.arrow, b.texts[0])
                if sb is not None:
                    arr = sb.bodies
        else:
            probs = b.problems
            arr = arrowkit.strings([None if probs is not None and probs[i] is not None else b.texts[i] for i in range(n)])
        f, s = native.fast_parse(arr, total)
        fast += f.num_rows
        for q in arrowkit.int64_numpy(s).tolist()[:100_000]:
            t = b.texts[q - total]
            k = "logrus text" if t.startswith('time="') else "JSON" if t.startswith("{") else "other"
            kinds[k] = kinds.get(k, 0) + 1
        total += n
    return {"native": fast, "per_line": total - fast, "lines": total, "available": True,
            "seconds": time.perf_counter() - t0, "slow_kinds": kinds}


# -- main ----------------------------------------------------------------------------------
def e2e(a: argparse.Namespace, path: Path, n_in: int, env: dict[str, str], label: str) -> dict[str, Any]:
    db = Path(tempfile.mkdtemp(prefix="db-shapes-", dir=a.out))
    try:
        res = bi.run_ingest(a.python, path, db, a.timeout, env)
    finally:
        shutil.rmtree(db, ignore_errors=True)
    ok = res.rc == 0 and not res.timed_out and res.lines == n_in
    rate = n_in / res.wall_s if ok else 0.0
    print(f"# {label}: {'ok' if ok else 'FAILED rc=%s' % res.rc}; {res.wall_s:.1f} s, {bi.fmt_rate(rate)} lines/s, "
          f"peak RSS {res.maxrss_mb:.0f} MB", flush=True)
    if not ok:
        print(res.stderr_tail[-1500:], file=sys.stderr)
    return {"label": label, "lines_in": n_in, "ok": ok, "wall_s": res.wall_s, "cpu_s": res.cpu_s,
            "rate": rate, "maxrss_mb": res.maxrss_mb, "tree_peak_mb": res.tree_peak_mb,
            "events": int(res.stats.get("events", 0)), "dropped": res.stats.get("dropped") or {},
            "store_mb": res.store_mb}


def grok_rate(path: Path, sample: int) -> dict[str, Any] | None:
    try:
        return bi.grok_sample(path, sample)
    except Exception as exc:  # noqa: BLE001 - optional baseline
        print(f"# pygrok skipped: {exc}", flush=True)
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines per generated input (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", type=Path, default=BENCH / "out")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--per-line", type=int, default=100_000,
                    help="also ingest this many lines of each generated input with REGWATCH_FASTPATH=0 (0: skip)")
    ap.add_argument("--grok", type=int, default=100_000, help="lines naive pygrok is timed on per text input (0: skip)")
    ap.add_argument("--docs", type=Path, default=bi.DOCS)
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)

    m = bi.machine()
    load_before = bi.loadavg()
    inputs: list[dict[str, Any]] = []
    synth, _ = bi.synth_log(a.out, a.lines, 7, a.python)
    inputs.append({"name": "synth (bench/synth.py, seed 7)", "path": synth, "text": True, "gen": True})
    for fmt in ("text", "json"):
        p = realgen_log(a.out, a.lines, a.seed, fmt, "token", a.python)
        inputs.append({"name": f"realgen {fmt} (bench/realgen.py --format {fmt} --auth token, seed {a.seed})",
                       "path": p, "text": fmt == "text", "gen": True})
    hp = harbor_wrapped(a.out, inputs[1]["path"])
    inputs.append({"name": "harbor registry.log (realgen text behind Harbor's rsyslog prefix, UTC+8 host)", "path": hp,
                   "text": False, "gen": True})
    for fmt in ("text", "json"):
        src = DIST / f"registry-{fmt}.log"
        p, copies = repeated(a.out, src, a.lines)
        inputs.append({"name": f"real capture registry-{fmt}.log ×{copies}", "path": p, "text": fmt == "text",
                       "gen": False})
    real_files = sorted(DIST.glob("*.log"))

    r: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "inputs": [], "real": []}
    r["startup_s"] = bi.startup_seconds(a.python)
    for inp in inputs:
        path = inp["path"]
        n = count_lines(path)
        with open(path, "rb") as fh:  # page cache
            while fh.read(1 << 24):
                pass
        sh = path_shares(path)
        print(f"# {inp['name']}: {n:,} lines, {path.stat().st_size / 1e6:,.0f} MB; native {sh['native']:,} "
              f"({sh['native'] / max(1, sh['lines']):.2%}), per-line {sh['per_line']:,}", flush=True)
        row = {"name": inp["name"], "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
               "lines": n, "mb": path.stat().st_size / 1e6, "shares": sh}
        row["e2e"] = e2e(a, path, n, {}, inp["name"])
        if a.per_line and inp["gen"]:
            pre = a.out / f"{path.stem}-first{a.per_line}.log"
            if not pre.exists():
                with open(path, "rb") as src, open(pre, "wb") as dst:
                    for line in islice(src, a.per_line):
                        dst.write(line)
            k = count_lines(pre)
            row["per_line_e2e"] = e2e(a, pre, k, {"REGWATCH_FASTPATH": "0"}, inp["name"] + ", REGWATCH_FASTPATH=0")
        if a.grok and inp["text"] and inp["gen"]:
            row["grok"] = grok_rate(path, min(a.grok, n))
        r["inputs"].append(row)
    for f in real_files:
        sh = path_shares(f)
        n = count_lines(f)
        r["real"].append({"file": f.name, "lines": n, "shares": sh, "e2e": e2e(a, f, n, {}, f.name)})
    r["load_before"], r["load_after"] = load_before, bi.loadavg()
    body = doc_body(m, r, a)
    print()
    print(body)
    if a.json:
        a.json.write_text(json.dumps({"machine": m, "results": r}, indent=2, default=str))
    if not a.no_docs:
        bi.replace_section(SECTION, body, a.docs)
        print(f"\n# wrote the {SECTION!r} section of {a.docs}")
    gen_ok = [x for x in r["inputs"] if x["name"].startswith("realgen")]
    return 0 if all(x["e2e"]["ok"] for x in gen_ok) else 1


def _pct(x: int, n: int) -> str:
    return f"{100 * x / n:.2f} %" if n else "–"


def doc_body(m: dict[str, Any], r: dict[str, Any], a: argparse.Namespace) -> str:
    lines = [
        f"Measured {r['date']} with `python bench/bench_shapes.py --lines {a.lines}`. The same end-to-end "
        "method as above (`regwatch ingest` in a fresh subprocess, wall time including interpreter start "
        f"({r['startup_s']:.2f} s), peak RSS of that process in MB of 10^6 bytes), on inputs in the shape of "
        "real registry output; see the docstring of bench/bench_shapes.py.",
        "",
    ] + bi.machine_lines(m, (r["load_before"], r["load_after"])) + [
        "",
        "Inputs: `synth` is bench/synth.py (the input above); `realgen` is bench/realgen.py, lines rendered by "
        "re-implementations of the registry's formatters (logrus TextFormatter: sorted keys, quoting only when "
        "needed, `key=` for empty, trimmed fractional seconds; JSONFormatter; the combined access line) for a "
        "busy registry behind a token server (`auth.user.name` on every request line, the user in the access "
        "line), docker agents with `\\(linux\\)`, containerd, CRI-O and skopeo agents, µs durations quoted, "
        "pushes with `_state` and percent-encoded digests, mounts, deletes, 401s and 404s; its line shapes are "
        "checked against the real captures by tests/unit/test_fast_slow_parity.py. The real captures are "
        "sample_logs/distribution/ (Debian docker-registry 2.8.2+ds1, skopeo 1.9.3, htpasswd auth), repeated "
        "whole to about the same size (the same request ids recur: a per-line cost on real lines, not a real "
        "day's log). `harbor registry.log` is the realgen text input behind the prefix Harbor's log container "
        "writes (`Mmm dd HH:MM:SS 172.18.0.1 registry[1234]: `, the line's own time on a UTC+8 host): the "
        "registry's lines as a Harbor install on docker-compose stores them.",
        "",
        "| input | lines | MB | native path | per-line path | wall s | CPU s | lines/s | lines per CPU-s | peak RSS MB | events |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in r["inputs"]:
        e, sh = x["e2e"], x["shares"]
        lines.append(
            f"| {x['name']} | {x['lines']:,} | {x['mb']:,.0f} | {_pct(sh['native'], sh['lines'])} | "
            f"{_pct(sh['per_line'], sh['lines'])} | {e['wall_s']:.1f} | {e['cpu_s']:.1f} | "
            + (f"{bi.fmt_rate(e['rate'])} | {bi.fmt_rate(x['lines'] / e['cpu_s'])} | " if e["ok"] else "failed | – | ")
            + f"{e['maxrss_mb']:.0f} | {e['events']:,} |"
        )
    lines += ["", "The per-line parser alone (`REGWATCH_FASTPATH=0`), and naive pygrok (match only, no "
              "fields, no store; REGISTRY_LOGRUS then REGISTRY_ACCESS per line), for comparison:", "",
              "| input | lines | lines/s | peak RSS MB | naive pygrok lines/s (sample, lines matched) |",
              "|---|---:|---:|---:|---|"]
    for x in r["inputs"]:
        pl, g = x.get("per_line_e2e"), x.get("grok")
        if pl is None and g is None:
            continue
        gtxt = f"{bi.fmt_rate(g['lines'] / g['match_s'])} ({g['lines']:,}, {g['matched']:,} matched)" if g else ("– (not timed: the grok baseline reads bare lines)" if x["name"].startswith("harbor") else "– (JSON: no grok pattern)")
        lines.append(f"| {x['name']} | {pl['lines_in'] if pl else 0:,} | "
                     f"{bi.fmt_rate(pl['rate']) if pl and pl['ok'] else '–'} | {pl['maxrss_mb'] if pl else 0:.0f} | {gtxt} |")
    lines += ["", "Every real capture as it is (the lines/s here is mostly interpreter start):", "",
              "| file | lines | native path | per-line path | wall s | events |", "|---|---:|---:|---:|---:|---:|"]
    for x in r["real"]:
        sh, e = x["shares"], x["e2e"]
        lines.append(f"| {x['file']} | {x['lines']:,} | {_pct(sh['native'], sh['lines'])} | "
                     f"{_pct(sh['per_line'], sh['lines'])} | {e['wall_s']:.2f} | {e['events']:,} |")
    lines += ["", "Lines left to the per-line parser in the captures: the TTY form (no absolute time; ANSI "
              "colours), the CRLF line ends of the pty capture, and garbage-collect output.", ""]
    tgt = [x for x in r["inputs"] if x["name"].startswith("realgen")]
    lines += [f"Against the targets of the issue (this {m['nproc']}-core machine, 1M-line logs in the shape of real "
              "registry output, both formatters):", ""]
    for x in tgt:
        e = x["e2e"]
        ok_rate = e["ok"] and e["rate"] >= bi.TARGET_RATE and x["lines"] >= 1_000_000
        ok_rss = e["ok"] and max(e["maxrss_mb"], e["tree_peak_mb"]) <= bi.TARGET_RSS_MB
        lines.append(f"- {x['name'].split(' (')[0]}: ≥ {bi.TARGET_RATE:,} lines/s **{'met' if ok_rate else 'not met'}** "
                     f"({bi.fmt_rate(e['rate'])} lines/s" + ("" if x["lines"] >= 1_000_000 else f", on {x['lines']:,} lines") +
                     f"); peak RSS ≤ {bi.TARGET_RSS_MB} MB **{'met' if ok_rss else 'not met'}** "
                     f"({max(e['maxrss_mb'], e['tree_peak_mb']):.0f} MB); native path "
                     f"{_pct(x['shares']['native'], x['shares']['lines'])} of lines")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
