#!/usr/bin/env python3
"""The Elasticsearch store against the client's own bulk helper, on one local node.

One run:

1. makes realistic events: ``bench/synth.py`` writes Distribution 2.8 logs and
   regwatch's real pipeline parses them (so ids, raw lines and field shapes are exactly
   what a collector sends); cached under bench/out/;
2. **size**: stores ``--size-events`` of them in a fresh index set, force-merges to one
   segment and reads ``_stats`` (store bytes / docs), for the shipped template (default
   codec) and, for comparison, ``best_compression`` and documents without the raw line;
3. **write throughput**: the same ``--events`` events, ``--rounds`` times per path (fresh
   indices every time, the order rotated, same refresh settings) through
   ``ElasticsearchStore.write`` in pipeline-sized batches, with 1 and 2 bulk threads, and
   through ``helpers.bulk`` / ``helpers.parallel_bulk(thread_count=2)`` with the *same
   documents pre-serialized* (the store's own actions, built before the clock starts);
   reports the best and the median run and the store's overhead;
4. **audit latency at ``--latency-events``** (1M): ``search`` of deletes by repository
   glob + user, deletes by glob in a day, and two ``aggregate`` calls (pulls per
   repository, auth failures per user and client); different parameters each run so the
   shard request cache cannot answer; median and p95;
5. prints a markdown report and replaces the ``## Elasticsearch`` section of
   docs/benchmarks.md (``--no-docs`` to skip).

    python bench/bench_es.py                       # starts a node with scripts/elasticsearch.py
    python bench/bench_es.py --url http://127.0.0.1:9200 --events 100000
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from elasticsearch import Elasticsearch, helpers

from regwatch.events import Event
from regwatch.stores.base import Aggregation, Query, WriteResult
from regwatch.stores.elasticsearch import ElasticsearchStore, _dumps, to_document

OUT = ROOT / "bench" / "out"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Elasticsearch"
SCRIPT = ROOT / "scripts" / "elasticsearch.py"
PIPELINE_BATCH = 50_000  # regwatch.pipeline.BATCH: what one Store.write gets in practice


# -- events --------------------------------------------------------------------------


class _Collect:
    """A Store that keeps what the pipeline writes (to get real parsed events)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def write(self, events: Sequence[Event]) -> WriteResult:
        self.events.extend(events)
        return WriteResult(written=len(events))

    def close(self) -> None:
        pass


def realistic_events(n: int, seed: int = 7, parsed_max: int = 250_000) -> list[Event]:
    """``n`` events: up to ``parsed_max`` parsed by regwatch from synthetic Distribution
    logs, repeated beyond that with the times shifted past the previous copy and new ids
    (parsing millions of lines would dominate the run without changing the shapes)."""
    base = _parsed_events(min(n, parsed_max), seed)
    if len(base) >= n:
        return base
    span = base[-1].timestamp - base[0].timestamp + timedelta(hours=1)
    out = list(base)
    copy = 0
    while len(out) < n:
        copy += 1
        shift = span * copy
        for e in base[: n - len(out)]:
            new_id = hashlib.blake2b(f"{e.id}:{copy}".encode(), digest_size=12).hexdigest()
            out.append(e.with_(id=new_id, timestamp=e.timestamp + shift))
    return out


def _parsed_events(n: int, seed: int) -> list[Event]:
    """``n`` events parsed by regwatch from synthetic Distribution logs."""
    from synth import generate

    from regwatch.pipeline import ingest

    OUT.mkdir(parents=True, exist_ok=True)
    lines = int(n * 3.6) + 1000  # ~3.4 log lines per event with the synth mix
    while True:
        path = OUT / f"es-synth-{lines}-seed{seed}.log"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                f.writelines(line + "\n" for line in generate(lines, seed=seed))
            tmp.rename(path)
        sink = _Collect()
        ingest([str(path)], sink)  # type: ignore[arg-type]
        if len(sink.events) >= n:
            return sink.events[:n]
        lines = int(lines * 1.3 * n / max(1, len(sink.events)))


# -- node ----------------------------------------------------------------------------


def start_node(heap: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(SCRIPT), "start", "--heap", heap],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"could not start Elasticsearch:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def drop(client: Elasticsearch, prefix: str) -> None:
    names = sorted(client.options(ignore_status=404).indices.get(
        index=f"{prefix}-events-*", filter_path="*.settings.index.uuid").body or {})
    if names:
        client.indices.delete(index=",".join(names))
    client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-events")
    for part in ("settings", "mappings", "custom"):
        client.options(ignore_status=404).cluster.delete_component_template(name=f"{prefix}-events@{part}")


def new_store(url: str, **kw: Any) -> ElasticsearchStore:
    """A store with a fresh ``bench*`` prefix; credentials and CA from REGWATCH_ES_*."""
    return ElasticsearchStore.from_env(url, index_prefix=f"bench{uuid.uuid4().hex[:8]}",
                                       request_timeout=120, **kw)


# -- measurements --------------------------------------------------------------------


def measure_size(url: str, client: Elasticsearch, events: list[Event]) -> list[dict[str, Any]]:
    variants: list[tuple[str, dict[str, Any] | None, bool]] = [
        ("shipped template (default codec, LZ4), with raw line", None, True),
        ("`index.codec: best_compression` in @custom, with raw line",
         {"index": {"codec": "best_compression"}}, True),
        ("shipped template, raw line left out", None, False),
    ]
    raw_bytes = sum(len(e.raw.encode()) + 1 for e in events)
    src_bytes = sum(len(_dumps(to_document(e))) for e in events)
    rows = []
    for name, custom, with_raw in variants:
        store = new_store(url)
        try:
            if custom:
                client.cluster.put_component_template(name=f"{store.template_name}@custom",
                                                      template={"settings": custom})
            batch = events if with_raw else [e.with_(raw="") for e in events]
            res = store.write(batch)
            assert res.written == len(events) and not res.rejected, res
            store.refresh()
            client.indices.forcemerge(index=store.pattern, max_num_segments=1, wait_for_completion=True)
            store.refresh()
            stats = client.indices.stats(index=store.pattern, metric="store,docs")["_all"]["primaries"]
            docs = stats["docs"]["count"]
            size = stats["store"]["size_in_bytes"]
            rows.append({"variant": name, "docs": docs, "bytes": size, "bytes_per_event": size / docs,
                         "raw_line_bytes_per_event": raw_bytes / len(events),
                         "source_json_bytes_per_event": src_bytes / len(events)})
        finally:
            drop(client, store.index_prefix)
    return rows


PATHS = ("helpers.bulk", "store, 1 thread", "helpers.parallel_bulk", "store, 2 threads")


def measure_throughput(url: str, client: Elasticsearch, events: list[Event], rounds: int,
                       batch: int) -> dict[str, Any]:
    """Each path ``rounds`` times, the order rotated per round, fresh indices each run."""
    times: dict[str, list[float]] = {k: [] for k in (*PATHS, "serialize")}
    bulk_docs = 0
    for r in range(rounds):
        for kind in PATHS[r % len(PATHS):] + PATHS[: r % len(PATHS)]:
            threads = 2 if "2 threads" in kind or "parallel" in kind else 1
            store = new_store(url, bulk_threads=threads)
            bulk_docs = store.bulk_docs
            store.setup()
            try:
                if kind.startswith("store"):
                    gc.collect()
                    t0 = time.perf_counter()
                    written = 0
                    for i in range(0, len(events), batch):
                        written += store.write(events[i:i + batch]).written
                    dt = time.perf_counter() - t0
                else:
                    t0 = time.perf_counter()
                    actions = list(store._actions(events, range(len(events))))
                    times["serialize"].append(time.perf_counter() - t0)
                    gc.collect()
                    kw: dict[str, Any] = dict(chunk_size=store.bulk_docs, max_chunk_bytes=store.bulk_bytes,
                                              expand_action_callback=lambda a: a)
                    t0 = time.perf_counter()
                    if kind == "helpers.bulk":
                        written, _errors = helpers.bulk(client, actions, stats_only=True,
                                                        raise_on_error=False, **kw)
                    else:
                        written = sum(ok for ok, _ in helpers.parallel_bulk(
                            client, actions, thread_count=2, raise_on_error=False, **kw))
                    dt = time.perf_counter() - t0
                    del actions
                assert written == len(events), (kind, written)
                store.refresh()
                assert store.count() == len(events)
                times[kind].append(dt)
                print(f"  round {r + 1} {kind:22s} {len(events) / dt:10,.0f} docs/s", flush=True)
            finally:
                drop(client, store.index_prefix)
    # best of the rounds: on a shared machine the fastest run is the one least disturbed
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "events": len(events), "rounds": rounds, "batch": batch, "bulk_docs": bulk_docs,
        "seconds": times, "best_s": best, "median_s": med,
        "rate": {k: len(events) / v for k, v in best.items()},
        "median_rate": {k: len(events) / v for k, v in med.items()},
        "overhead_pct": {
            "1 thread": 100 * (best["store, 1 thread"] - best["helpers.bulk"]) / best["helpers.bulk"],
            "2 threads": 100 * (best["store, 2 threads"] - best["helpers.parallel_bulk"])
            / best["helpers.parallel_bulk"],
        },
    }


def _timed(fn: Callable[[int], Any], runs: int) -> tuple[float, float, Any]:
    for i in range(3):
        fn(-1 - i)  # warm-up (other parameters than the measured runs)
    times = []
    result = None
    for i in range(runs):
        t0 = time.perf_counter()
        result = fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], result


def measure_latency(url: str, client: Elasticsearch, events: list[Event], runs: int,
                    batch: int) -> dict[str, Any]:
    store = new_store(url)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(events), batch):
            res = store.write(events[i:i + batch])
            assert not res.rejected
        load_s = time.perf_counter() - t0
        store.refresh()
        n = store.count()
        assert n == len(events), n
        deletes = [e for e in events if e.action == "delete"]
        repos = sorted({e.repository for e in deletes if e.repository})
        # 2.8 logs name no user on a successful delete (webhooks do): ask for the users
        # that appear anywhere, as an auditor would ("did alice delete in team-a?")
        users = sorted({e.user for e in events if e.user})[:50] or [None]
        projects = sorted({r.split("/")[0] for r in repos})
        t_min = min(e.timestamp for e in events)
        t_max = max(e.timestamp for e in events)
        span = t_max - t_min
        tiny = timedelta(microseconds=1)

        def deletes_by_glob_user(i: int) -> int:
            q = Query(actions=frozenset({"delete"}), repo=f"{projects[i % len(projects)]}/*",
                      user=users[i % len(users)], since=t_min - tiny * (i + 10))
            return len(store.search(q))

        def deletes_in_window(i: int) -> int:
            since = t_min + span * ((i % 10) / 20)
            q = Query(actions=frozenset({"delete"}), repo="*", since=since, until=since + span / 2)
            return len(store.search(q))

        def pulls_per_repo(i: int) -> int:
            q = Query(tallies=frozenset({"pull", "pull_failed"}), since=t_min - tiny * (i + 10))
            return len(store.aggregate(Aggregation(q, ("repository", "tally"))))

        def auth_failures(i: int) -> int:
            q = Query(auth=frozenset({"auth_failure", "anonymous_denial"}), since=t_min - tiny * (i + 10))
            return len(store.aggregate(Aggregation(q, ("user", "client_ip"))))

        rows = []
        for name, fn in [
            ("search: deletes by repo glob (`team-x/*`) and user", deletes_by_glob_user),
            ("search: all deletes (`*`) in half the time range", deletes_in_window),
            ("aggregate: pulls and failed pulls per repository", pulls_per_repo),
            ("aggregate: auth failures per user and client IP", auth_failures),
        ]:
            med, p95, result = _timed(fn, runs)
            rows.append({"query": name, "median_ms": med, "p95_ms": p95, "rows": result})
        stats = client.indices.stats(index=store.pattern, metric="store,docs,segments")["_all"]["primaries"]
        return {"events": n, "load_s": load_s, "load_rate": n / load_s, "queries": rows,
                "indices": len(store.indices()), "store_bytes": stats["store"]["size_in_bytes"],
                "segments": stats["segments"]["count"], "runs": runs}
    finally:
        drop(client, store.index_prefix)


# -- report --------------------------------------------------------------------------


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def render(info: dict[str, Any], size: list[dict[str, Any]], tp: dict[str, Any],
           lat: dict[str, Any]) -> str:
    lines = [
        SECTION,
        "",
        f"`python bench/bench_es.py` on {info['when']}: Elasticsearch {info['version']} "
        f"(integ-test-zip, single node, heap {info['heap']}, JDK {info['java']}), on the same "
        f"machine as the client: {machine()}; elasticsearch-py {info['client']}. Events are "
        "real regwatch output: `bench/synth.py` Distribution 2.8 logs parsed by the pipeline "
        f"(250k parsed, repeated with shifted times and new ids beyond that). Load average "
        f"{info['load_before']:.1f} before, {info['load_after']:.1f} after (other work shared "
        "the machine when this is well above 0).",
        "",
        f"### Write throughput ({tp['events']:,} events, best and median of {tp['rounds']} runs, order rotated)",
        "",
        "| path | events/s (best run) | events/s (median) |",
        "|---|---:|---:|",
        *[f"| {label} | {tp['rate'][k]:,.0f} | {tp['median_rate'][k]:,.0f} |" for k, label in (
            ("helpers.bulk", "`helpers.bulk`, documents pre-serialized (the floor)"),
            ("store, 1 thread", f"`ElasticsearchStore.write` (default, `bulk_threads=1`), batches of {tp['batch']:,}"),
            ("helpers.parallel_bulk", "`helpers.parallel_bulk(thread_count=2)`, pre-serialized"),
            ("store, 2 threads", "`ElasticsearchStore.write(bulk_threads=2)` (parallel_bulk)"),
            ("serialize", "(building the documents alone: `to_document` + JSON, no I/O)"))],
        "",
        f"Overhead of the store over the bare helper (best runs): **{tp['overhead_pct']['1 thread']:+.1f} %** "
        f"sequential, **{tp['overhead_pct']['2 threads']:+.1f} %** with two bulk threads "
        "(Event → document → JSON and per-item result accounting, on the same 2 cores as the "
        f"node; same chunking: {tp['bulk_docs']:,} docs / 10 MiB per bulk request, "
        "`op_type=create`, refresh interval 1 s).",
        "",
        f"### Audit queries at {lat['events']:,} events "
        f"(median / p95 of {lat['runs']} runs, parameters vary per run)",
        "",
        f"Loaded through `write` at {lat['load_rate']:,.0f} events/s into {lat['indices']} daily "
        f"index(es), {lat['segments']} segments, {lat['store_bytes'] / 2**20:,.0f} MiB.",
        "",
        "| query | median ms | p95 ms | rows |",
        "|---|---:|---:|---:|",
        *[f"| {q['query']} | {q['median_ms']:.1f} | {q['p95_ms']:.1f} | {q['rows']:,} |"
          for q in lat["queries"]],
        "",
        f"### Size on disk ({size[0]['docs']:,} events, force-merged to one segment, primaries)",
        "",
        f"Raw log line: {size[0]['raw_line_bytes_per_event']:.0f} B/event; the `_source` JSON the "
        f"store sends: {size[0]['source_json_bytes_per_event']:.0f} B/event.",
        "",
        "| variant | bytes/event |",
        "|---|---:|",
        *[f"| {r['variant']} | {r['bytes_per_event']:.0f} |" for r in size],
        "",
    ]
    return "\n".join(lines)


def replace_section(text: str, section: str) -> str:
    """Replace (or append) the block from SECTION to the next '## ' heading."""
    start = text.find(SECTION + "\n")
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section
    end = text.find("\n## ", start + len(SECTION))
    return text[:start] + section + (text[end + 1:] if end >= 0 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="use this node instead of starting one")
    ap.add_argument("--heap", default="1g", help="heap of the node this script starts")
    ap.add_argument("--events", type=int, default=200_000, help="events per throughput run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency-events", type=int, default=1_000_000)
    ap.add_argument("--size-events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per query")
    ap.add_argument("--batch", type=int, default=PIPELINE_BATCH)
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--json", help="also write the raw figures here")
    args = ap.parse_args()

    node = None
    url = args.url
    if url is None:
        node = start_node(args.heap)
        url = node["url"]
        print(f"started Elasticsearch {node['version']} at {url} (heap {args.heap})", flush=True)
    client = ElasticsearchStore.from_env(url, request_timeout=300).client
    try:
        version = next(iter(client.nodes.info(node_id="_local", filter_path="nodes.*.version")["nodes"].values()))["version"]
        load_before = os.getloadavg()[0]
        n_all = max(args.events, args.latency_events, args.size_events)
        t0 = time.perf_counter()
        events = realistic_events(n_all)
        print(f"{len(events):,} events from the pipeline in {time.perf_counter() - t0:.0f}s", flush=True)
        print("size ...", flush=True)
        size = measure_size(url, client, events[: args.size_events])
        print("throughput ...", flush=True)
        tp = measure_throughput(url, client, events[: args.events], args.rounds, args.batch)
        print("latency ...", flush=True)
        lat = measure_latency(url, client, events[: args.latency_events], args.runs, args.batch)
        import elasticsearch

        info = {
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "when": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "version": version,
            "heap": node["heap"] if node else "?",
            "java": Path(node["java_home"]).name if node else "?",
            "client": elasticsearch.__versionstr__,
        }
        report = render(info, size, tp, lat)
        print()
        print(report)
        if args.json:
            Path(args.json).write_text(json.dumps({"info": info, "size": size, "throughput": tp,
                                                   "latency": lat}, indent=2, default=str))
        if not args.no_docs:
            old = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
            DOCS.write_text(replace_section(old, report))
            print(f"updated {DOCS.relative_to(ROOT)} ({SECTION})")
    finally:
        client.close()
        if node is not None:
            subprocess.run([sys.executable, str(SCRIPT), "stop", "--dir", node["dir"]],
                           capture_output=True, check=False)


if __name__ == "__main__":
    main()
