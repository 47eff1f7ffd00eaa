#!/usr/bin/env python3
"""The embedded store at 10M events, and SQLite at 1M for comparison.

One run:

1. generates synthetic Events as Arrow tables, batch by batch, with registry-like
   distributions (about 100 repositories with skewed popularity, 20 users, ~5% deletes,
   challenges, pulls and blob pulls, auth failures, uploads; 90 days of timestamps, in
   time order as a log would deliver them);
2. writes the first ``--first`` rows through ``EmbeddedStore.write(events)`` (the path the
   pipeline uses: Event objects → Arrow → de-duplication → Parquet → manifest), then the
   rest through the same ``write`` with the Event → Arrow conversion skipped (the batch is
   already Arrow), and reports both insert rates;
3. times the store API (median of ``--runs``): audit deletes by repository glob + user,
   deletes in a 7-day window, ``summarize()`` over everything and over 7 days, and top
   users by auth failure; at 1M events and at the full size;
4. loads the same first 1M rows into SQLite (WAL, ``executemany``) and times the same
   queries there;
5. runs a reader process (``summarize`` in a loop) while a writer process appends and
   compacts, and counts errors and inconsistent reads (both must be 0);
6. prints a report and replaces the "## Embedded store at 10M events" section of
   docs/benchmarks.md (``--no-docs`` to skip).

    python bench/bench_store.py                     # 10M events, a few minutes
    python bench/bench_store.py --events 2000000    # a quicker run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from bench_ingest import DOCS, loadavg, machine, machine_lines, replace_section  # noqa: E402
from regwatch.audit import deletes  # noqa: E402
from regwatch.stores import embedded  # noqa: E402
from regwatch.stores.base import Aggregation, Query  # noqa: E402
from regwatch.stores.embedded import EmbeddedStore  # noqa: E402
from regwatch.summary import summarize  # noqa: E402

SECTION = "## Embedded store at 10M events"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAYS = 90

# -- synthetic events ---------------------------------------------------------------------------
REPOS = [f"team-{t}/svc-{s:02d}" for t in "abcdefghij" for s in range(10)]  # 100
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "ci-bot", "deployer"]
UAS = ["skopeo/1.9.3", "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64",
       "containerd/1.7.2", "Go-http-client/1.1", "harbor-registry-client"]
N_IPS = 500

# kind: (p, method, action, route, status, tally, auth, outcome, message, error_code, user_p)
#   route: base | catalog | manifest | manifest_digest | blob | upload | mount | tags
KINDS: list[tuple[float, str, str, str, int, str, str, str, str, str | None, float]] = [
    (0.220, "GET", "base", "base", 401, "none", "challenge", "failure",
     "error authorizing context: basic authentication challenge for realm \"basic-realm\": invalid authorization credential", None, 0.0),
    (0.170, "GET", "pull", "manifest", 200, "pull", "none", "success", "response completed", None, 0.6),
    (0.050, "HEAD", "pull_head", "manifest", 200, "none", "none", "success", "response completed", None, 0.6),
    (0.280, "GET", "blob_pull", "blob", 200, "blob_pull", "none", "success", "response completed", None, 0.6),
    (0.040, "HEAD", "blob_head", "blob", 404, "none", "none", "failure", "response completed with error", "blob unknown", 1.0),
    (0.030, "GET", "pull", "manifest", 404, "pull_failed", "none", "failure", "response completed with error", "manifest unknown", 1.0),
    (0.020, "GET", "pull", "manifest", 401, "pull_failed", "auth_failure", "failure",
     "error authenticating user: authentication failure", None, 1.0),
    (0.010, "GET", "pull", "manifest", 401, "pull_failed", "anonymous_denial", "failure",
     "error authorizing context: basic authentication challenge for realm \"basic-realm\": invalid authorization credential", None, 0.0),
    (0.020, "PUT", "push", "manifest", 201, "push", "none", "success", "response completed", None, 0.6),
    (0.040, "PUT", "blob_upload", "upload", 201, "blob_upload", "none", "success", "response completed", None, 0.6),
    (0.010, "POST", "blob_mount", "mount", 201, "none", "none", "success", "response completed", None, 0.6),
    (0.045, "DELETE", "delete", "manifest_digest", 202, "delete", "none", "success", "response completed", None, 0.8),
    (0.005, "DELETE", "delete", "manifest_digest", 404, "delete_failed", "none", "failure", "response completed with error", "manifest unknown", 1.0),
    (0.030, "GET", "delete_lookup", "manifest", 200, "none", "none", "success", "response completed", None, 0.6),
    (0.020, "GET", "tags_list", "tags", 200, "none", "none", "success", "response completed", None, 0.6),
    (0.010, "GET", "catalog", "catalog", 200, "none", "none", "success", "response completed", None, 0.6),
]
_P = np.array([k[0] for k in KINDS])
_P = _P / _P.sum()


def _zipf(n: int, s: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


_REPO_P = _zipf(len(REPOS), 0.9)
_USER_P = _zipf(len(USERS), 0.8)
_IP_POOL = [f"10.{i // 250}.{(i * 37) % 256}.{i % 250 + 1}" for i in range(N_IPS)]
_IP_P = _zipf(N_IPS, 0.7)
_UA_P = np.array([0.45, 0.30, 0.15, 0.05, 0.05])


def _col(values: Sequence[Any], idx: np.ndarray, typ: pa.DataType = pa.string()) -> pa.Array:
    return pc.take(pa.array(values, type=typ), pa.array(idx))


def _hex(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    """``n`` random lower-case hex strings of ``2 * nbytes`` characters, built without Python loops."""
    width = 2 * nbytes
    data = rng.bytes(n * nbytes).hex().encode()
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def _join(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _null_where(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    """``arr`` with nulls where ``mask`` is True."""
    return pc.if_else(pa.array(mask), pa.nulls(len(arr), arr.type), arr)


def make_batch(seed: int, index: int, n: int, t0: datetime, t1: datetime, first_offset: int) -> pa.Table:
    """One batch of ``n`` synthetic events with timestamps in [t0, t1), sorted. Deterministic."""
    rng = np.random.default_rng([seed, index])
    schema = embedded.SCHEMA
    k = rng.choice(len(KINDS), size=n, p=_P)
    col = {name: [kd[i] for kd in KINDS] for i, name in
           enumerate(("p", "method", "action", "route", "status", "tally", "auth", "outcome", "message", "error_code", "user_p"))}
    span = (t1 - t0).total_seconds()
    secs = np.sort(rng.uniform(0, span, size=n))
    us = (int(t0.timestamp() * 1e6) + (secs * 1e6)).astype("int64")
    ts = pa.array(us, type=pa.timestamp("us", tz="UTC"))

    route = np.array(col["route"])[k]
    repo_idx = rng.choice(len(REPOS), size=n, p=_REPO_P)
    repo = _null_where(_col(REPOS, repo_idx), np.isin(route, ["base", "catalog"]))
    user_p = np.array(col["user_p"])[k]
    user_idx = rng.choice(len(USERS), size=n, p=_USER_P)
    user = _null_where(_col(USERS, user_idx), rng.random(n) >= user_p)
    ip = _col(_IP_POOL, rng.choice(N_IPS, size=n, p=_IP_P))
    ua = _col(UAS, rng.choice(len(UAS), size=n, p=_UA_P))
    method = _col(col["method"], k)
    status_np = np.array(col["status"], dtype="int64")[k]
    status = pa.array(status_np)

    digest = _join(pa.scalar("sha256:"), _hex(rng, n, 32))
    tag = _join(pa.scalar("v"), pc.cast(pa.array(rng.integers(1, 40, size=n)), pa.string()))
    uses_digest = np.isin(route, ["blob", "manifest_digest", "upload", "mount"])
    uses_tag = route == "manifest"
    reference = pc.if_else(pa.array(uses_tag), tag, pc.if_else(pa.array(route == "manifest_digest"), digest, pa.nulls(n, pa.string())))
    digest_col = _null_where(digest, ~uses_digest)
    uuid_hex = _hex(rng, n, 16)
    mid = {"manifest": "/manifests/", "manifest_digest": "/manifests/", "blob": "/blobs/",
           "upload": "/blobs/uploads/", "mount": "/blobs/uploads/", "tags": "/tags/list", "base": "", "catalog": ""}
    mid_col = pa.array([mid[r] for r in route.tolist()])
    tail = pc.if_else(pa.array(uses_tag), tag,
                      pc.if_else(pa.array(np.isin(route, ["blob", "manifest_digest"])), digest,
                                 pc.if_else(pa.array(route == "upload"), uuid_hex, pa.array([""] * n))))
    path = _join(pa.scalar("/v2/"), repo, mid_col, tail)
    path = pc.if_else(pa.array(route == "base"), pa.scalar("/v2/"),
                      pc.if_else(pa.array(route == "catalog"), pa.scalar("/v2/_catalog"), path))

    nbytes = np.zeros(n, dtype="int64")
    blob = route == "blob"
    nbytes[blob & (status_np == 200)] = np.exp(rng.normal(14.5, 2.0, size=int((blob & (status_np == 200)).sum()))).astype("int64")
    up = route == "upload"
    nbytes[up] = np.exp(rng.normal(14.5, 2.0, size=int(up.sum()))).astype("int64")
    man = np.isin(route, ["manifest", "manifest_digest"])
    nbytes[man] = rng.integers(400, 4000, size=int(man.sum()))
    nbytes[route == "base"] = 87
    dur = np.exp(rng.normal(1.5, 1.2, size=n))

    rid = _hex(rng, n, 16)
    request_id = _join(pc.utf8_slice_codeunits(rid, 0, 8), pa.scalar("-"), pc.utf8_slice_codeunits(rid, 8, 12), pa.scalar("-"),
                       pc.utf8_slice_codeunits(rid, 12, 16), pa.scalar("-"), pc.utf8_slice_codeunits(rid, 16, 20), pa.scalar("-"),
                       pc.utf8_slice_codeunits(rid, 20, 32))
    clf = pc.strftime(pc.cast(ts, pa.timestamp("s", tz="UTC"), safe=False), format="%d/%b/%Y:%H:%M:%S +0000")
    bytes_arr = pa.array(nbytes)
    raw = _join(ip, pa.scalar(" - - ["), clf, pa.scalar('] "'), method, pa.scalar(" "), path, pa.scalar(' HTTP/1.1" '),
                pc.cast(status, pa.string()), pa.scalar(" "), pc.cast(bytes_arr, pa.string()), pa.scalar(' "" "'), ua, pa.scalar('"'))
    offs = first_offset + np.cumsum(rng.integers(250, 900, size=n))
    cols: dict[str, pa.Array] = {
        "id": _hex(rng, n, 12),
        "timestamp": ts,
        "source": pa.array(["distribution"] * n),
        "component": pa.array(["registry"] * n),
        "action": _col(col["action"], k),
        "outcome": _col(col["outcome"], k),
        "tally": _col(col["tally"], k),
        "auth": _col(col["auth"], k),
        "repository": repo,
        "reference": reference,
        "digest": digest_col,
        "method": method,
        "path": path,
        "status": status,
        "bytes": bytes_arr,
        "duration_ms": pa.array(np.round(dur, 6)),
        "user": user,
        "client_ip": ip,
        "user_agent": ua,
        "request_id": request_id,
        "error_code": _col(col["error_code"], k),
        "level": pa.nulls(n, pa.string()),
        "message": _col(col["message"], k),
        "host": pa.nulls(n, pa.string()),
        "repeat": pa.array(np.ones(n, dtype="int64")),
        "raw": raw,
        "log_file": pa.array(["/var/log/registry/registry.log"] * n),
        "log_offset": pa.array(offs.astype("int64")),
    }
    arrays = [cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def batches(total: int, size: int, seed: int, start: datetime = START, days: int = DAYS) -> Iterator[pa.Table]:
    """``total`` events over ``days`` days in time order, ``size`` per batch (the same for a seed)."""
    nb = (total + size - 1) // size
    step = timedelta(days=days) / nb
    offset = 0
    for b in range(nb):
        n = min(size, total - b * size)
        t = make_batch(seed, b, n, start + b * step, start + (b + 1) * step, offset)
        offset = int(t["log_offset"][-1].as_py())
        yield t


def to_events(table: pa.Table) -> list[Any]:
    return embedded.rows_to_events(table)


# -- writing ------------------------------------------------------------------------------------
class _ArrowBatch(Sequence[Any]):
    """An already-Arrow batch handed to ``EmbeddedStore.write``: only the Event → Arrow step
    is skipped. Iterating yields one stand-in per distinct day (what write() needs)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        days = pc.unique(pc.strftime(table["timestamp"], format="%Y-%m-%d")).to_pylist()

        class _Day:
            __slots__ = ("timestamp",)

            def __init__(self, d: str) -> None:
                self.timestamp = datetime.strptime(d, "%Y-%m-%d").replace(tzinfo=timezone.utc)

        self._days = [_Day(d) for d in days]

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i: Any) -> Any:
        raise TypeError("an Arrow batch is not indexable")

    def __iter__(self) -> Iterator[Any]:
        return iter(self._days)


def table_writer(store: EmbeddedStore) -> tuple[str, Callable[[pa.Table], int]]:
    """How to write an Arrow batch: a public table method if the store has one, else
    ``write`` with the Event → Arrow conversion bypassed, else ``write(events)``."""
    for name in ("write_table", "write_arrow"):
        fn = getattr(store, name, None)
        if callable(fn):
            return f"EmbeddedStore.{name}(table)", lambda t, fn=fn: _written(fn(t))
    if hasattr(embedded, "events_to_table"):
        original = embedded.events_to_table

        def via_write(t: pa.Table) -> int:
            def conv(evs: Any) -> pa.Table:
                return evs.table if isinstance(evs, _ArrowBatch) else original(evs)

            embedded.events_to_table = conv  # type: ignore[assignment]
            try:
                return _written(store.write(_ArrowBatch(t)))
            finally:
                embedded.events_to_table = original  # type: ignore[assignment]

        return "EmbeddedStore.write() with the Event → Arrow step skipped", via_write
    return "EmbeddedStore.write(events)", lambda t: _written(store.write(to_events(t)))


def _written(res: Any) -> int:
    return int(getattr(res, "written", res))


def live_bytes(store_dir: Path) -> tuple[int, int, int]:
    """(bytes of files the manifest lists, bytes of the whole directory, live files)."""
    doc = json.loads((store_dir / "manifest.json").read_text())
    live = sum((store_dir / f["name"]).stat().st_size for f in doc["files"])
    total = 0
    for dp, _d, fs in os.walk(store_dir):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    return live, total, len(doc["files"])


# -- queries ------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], runs: int) -> dict[str, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "first_ms": times[0], "max_ms": max(times),
            "min_ms": min(times), "rows": _size(result)}


def _size(result: Any) -> int:
    if isinstance(result, dict) and "repositories" in result:
        return len(result["repositories"])
    try:
        return len(result)
    except TypeError:
        return 1


def query_set(end: datetime, glob: str, user: str) -> dict[str, tuple[str, Any]]:
    week = (end - timedelta(days=7), end)
    return {
        "deletes_repo_user": (f"audit deletes, repo {glob!r} + user {user!r}", Query(repo=glob, user=user)),
        "deletes_7d": ("audit deletes, last 7 days", Query(since=week[0], until=week[1])),
        "deletes_7d_100": ("audit deletes, last 7 days, newest 100",
                           Query(since=week[0], until=week[1], limit=100, newest_first=True)),
        "summary_all": ("summarize(), everything", Query()),
        "summary_7d": ("summarize(), last 7 days", Query(since=week[0], until=week[1])),
        "top_auth_failures": ("top users by auth_failure (user, client_ip)", Query(auth=frozenset({"auth_failure"}))),
    }


def _store_query(store: EmbeddedStore, key: str, q: Query) -> Callable[[], Any]:
    """The public API call that answers query ``key``."""
    if key.startswith("deletes"):
        return lambda: deletes(store, q)
    if key.startswith("summary"):
        return lambda: summarize(store, q)
    return lambda: sorted(store.aggregate(Aggregation(q, ("user", "client_ip"))), key=lambda r: -r["count"])


def run_store_queries(store_dir: Path, end: datetime, glob: str, user: str, runs: int) -> dict[str, Any]:
    store = EmbeddedStore(store_dir)  # a fresh handle: nothing cached from the writes
    out: dict[str, Any] = {}
    try:
        for key, (label, q) in query_set(end, glob, user).items():
            out[key] = {"label": label, **timed(_store_query(store, key, q), runs)}
    finally:
        store.close()
    return out


# -- SQLite -------------------------------------------------------------------------------------
SQLITE_INDEXES = (
    "CREATE INDEX ix_ts ON events(timestamp)",
    "CREATE INDEX ix_action_ts ON events(action, timestamp)",
    "CREATE INDEX ix_auth ON events(auth)",
)


def sqlite_load(path: Path, tables: Sequence[pa.Table]) -> dict[str, Any]:
    """Insert the rows with executemany into a WAL database; rows are prepared beforehand."""
    names = list(tables[0].schema.names)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    cols = ", ".join(f'"{c}" {"INTEGER" if pa.types.is_integer(tables[0].schema.field(c).type) else "REAL" if pa.types.is_floating(tables[0].schema.field(c).type) else "TEXT"}'
                     + (" PRIMARY KEY" if c == "id" else "") for c in names)
    con.execute(f"CREATE TABLE events ({cols})")
    for ddl in SQLITE_INDEXES:
        con.execute(ddl)
    con.commit()
    sql = f"INSERT OR IGNORE INTO events VALUES ({', '.join('?' * len(names))})"
    prep_s = ins_s = 0.0
    rows_total = 0
    for t in tables:
        t0 = time.perf_counter()
        t = t.set_column(t.schema.get_field_index("timestamp"), "timestamp",
                         pc.strftime(t["timestamp"], format="%Y-%m-%dT%H:%M:%SZ"))  # %S has the 6 digits
        pyc = [t[c].to_pylist() for c in names]
        rows = list(zip(*pyc))
        prep_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(0, len(rows), 50_000):
            con.executemany(sql, rows[i : i + 50_000])
            con.commit()
        ins_s += time.perf_counter() - t0
        rows_total += len(rows)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))
    return {"rows": rows_total, "insert_s": ins_s, "prep_s": prep_s, "rows_per_s": rows_total / ins_s, "bytes": size}


def sqlite_queries(path: Path, end: datetime, glob: str, user: str, runs: int) -> dict[str, Any]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    since, until = iso(end - timedelta(days=7)), iso(end)
    qs = {
        "deletes_repo_user": ("SELECT * FROM events WHERE action = 'delete' AND repository GLOB ? AND \"user\" = ? "
                              "ORDER BY timestamp, id", (glob, user)),
        "deletes_7d": ("SELECT * FROM events WHERE action = 'delete' AND timestamp >= ? AND timestamp < ? "
                       "ORDER BY timestamp, id", (since, until)),
        "deletes_7d_100": ("SELECT * FROM events WHERE action = 'delete' AND timestamp >= ? AND timestamp < ? "
                           "ORDER BY timestamp DESC, id DESC LIMIT 100", (since, until)),
        "summary_all": ("SELECT repository, tally, auth, sum(repeat), coalesce(sum(bytes), 0) FROM events "
                        "GROUP BY repository, tally, auth", ()),
        "summary_7d": ("SELECT repository, tally, auth, sum(repeat), coalesce(sum(bytes), 0) FROM events "
                       "WHERE timestamp >= ? AND timestamp < ? GROUP BY repository, tally, auth", (since, until)),
        "top_auth_failures": ("SELECT \"user\", client_ip, sum(repeat) AS n, coalesce(sum(bytes), 0) FROM events "
                              "WHERE auth = 'auth_failure' GROUP BY \"user\", client_ip ORDER BY n DESC", ()),
    }
    out = {k: timed(lambda s=s, p=p: con.execute(s, p).fetchall(), runs) for k, (s, p) in qs.items()}
    con.close()
    return out


# -- concurrency --------------------------------------------------------------------------------
def _writer_proc(store_dir: str, n_batches: int, size: int, seed: int, day: str, stress: bool,
                 started: Any, done: Any, result: Any) -> None:
    try:
        if stress:
            embedded.GRACE_SECONDS = 0  # retired files are unlinked at once: readers must retry
        store = EmbeddedStore(store_dir, compact_at=2 if stress else embedded.COMPACT_AT)
        t0 = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        prepared = [to_events(make_batch(seed, 10_000 + i, size, t0 + timedelta(hours=i * 0.5),
                                         t0 + timedelta(hours=i * 0.5 + 0.5), 0)) for i in range(n_batches)]
        started.set()
        time.sleep(1.0)  # let the reader run against the unchanged store first
        written = 0
        t = time.perf_counter()
        for evs in prepared:
            written += store.write(evs).written
        result["written"] = written
        result["write_s"] = time.perf_counter() - t
        store.close()
    except Exception:  # noqa: BLE001
        result["error"] = traceback.format_exc()
    finally:
        done.set()


def _reader_proc(store_dir: str, base: int, size: int, started: Any, done: Any, result: Any) -> None:
    errors: list[str] = []
    inconsistent: list[int] = []
    lat: list[float] = []
    loops = 0
    last = base
    started.wait(120)
    store = EmbeddedStore(store_dir)
    tail_until: float | None = None
    while True:
        if done.is_set() and tail_until is None:
            tail_until = time.time() + 1.0  # a few reads after the last write
        if tail_until is not None and time.time() > tail_until:
            break
        t = time.perf_counter()
        try:
            summarize(store)
            rows = store.aggregate(Aggregation(Query(), ()))
            total = int(rows[0]["count"]) if rows else 0
            # a reader sees whole batches only, and never loses any
            if total < last or (total - base) % size != 0:
                inconsistent.append(total)
            last = max(last, total)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        lat.append((time.perf_counter() - t) * 1000)
        loops += 1
    store.close()
    result.update(loops=loops, errors=len(errors), error_samples=errors[:3], inconsistent=len(inconsistent),
                  inconsistent_samples=inconsistent[:5], last_total=last,
                  p50_ms=statistics.median(lat) if lat else 0, max_ms=max(lat) if lat else 0)


def concurrency(store_dir: Path, seed: int, n_batches: int, size: int, day: str, stress: bool) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    store = EmbeddedStore(store_dir)
    base = store.count()
    files_before = len(json.loads((store_dir / "manifest.json").read_text())["files"])
    store.close()
    with ctx.Manager() as mgr:
        started, done = mgr.Event(), mgr.Event()
        wres, rres = mgr.dict(), mgr.dict()
        w = ctx.Process(target=_writer_proc, args=(str(store_dir), n_batches, size, seed, day, stress, started, done, wres))
        r = ctx.Process(target=_reader_proc, args=(str(store_dir), base, size, started, done, rres))
        w.start()
        r.start()
        w.join(1800)
        r.join(300)
        out = {"writer": dict(wres), "reader": dict(rres), "base": base, "batches": n_batches, "batch": size,
               "stress": stress, "exit": (w.exitcode, r.exitcode)}
    doc = json.loads((store_dir / "manifest.json").read_text())
    out["files_before"], out["files_after"] = files_before, len(doc["files"])
    out["retired"] = len(doc.get("retired", []))
    return out


# -- report -------------------------------------------------------------------------------------
def fmt_ms(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def body(m: dict[str, Any], r: dict[str, Any], load: tuple[str, str]) -> str:
    n, first = r["events"], r["first"]
    lines = [
        f"Measured {r['date']} with `python bench/bench_store.py --events {n}`.",
        "",
        *machine_lines(m, load),
        f"- data: {n:,} synthetic Events built as Arrow tables ({r['batch']:,} per batch, seed {r['seed']}): "
        f"{len(REPOS)} repositories and {len(USERS)} users with skewed popularity, {N_IPS} client IPs, "
        f"{DAYS} days of timestamps in time order; per event kind: 22% challenges, 17% pulls, 28% blob pulls, "
        "5% manifest HEADs, 3% pulls of missing tags, 2% auth failures, 1% anonymous denials, 2% pushes, "
        "4% blob uploads, 1% mounts, 5% deletes (0.5% failed), 3% delete lookups, 3% tag lists and catalogs. "
        "Every column of the Event schema is filled the way ingest fills it, including `raw` "
        "(an access-log line, ~150 bytes) and a random request id and event id.",
        "",
        "### Insert",
        "",
        "| path | rows | seconds | rows/s |",
        "|---|---:|---:|---:|",
    ]
    w = r["write"]
    lines.append(f"| `EmbeddedStore.write(events)`, {w['a_batches']} batches of {r['batch']:,} Event objects "
                 f"(Arrow conversion, de-duplication against the day's files, Parquet zstd, manifest) | "
                 f"{w['a_rows']:,} | {w['a_s']:.1f} | {w['a_rows'] / w['a_s']:,.0f} |")
    if w["b_rows"]:
        lines.append(f"| {w['b_path']}, batches of {r['batch']:,} | {w['b_rows']:,} | {w['b_s']:.1f} | "
                     f"{w['b_rows'] / w['b_s']:,.0f} |")
    lines.append(f"| all {n:,} | {w['a_rows'] + w['b_rows']:,} | {w['a_s'] + w['b_s']:.1f} | "
                 f"{(w['a_rows'] + w['b_rows']) / (w['a_s'] + w['b_s']):,.0f} |")
    s = r.get("sqlite_load")
    if s is not None:
        lines.append(f"| SQLite 3.{sqlite3.sqlite_version.split('.', 1)[1]} `executemany` (WAL, synchronous=NORMAL, "
                     f"`INSERT OR IGNORE`, id primary key + 3 indexes), commit per 50k | {s['rows']:,} | "
                     f"{s['insert_s']:.1f} | {s['rows_per_s']:,.0f} |")
    lines += [
        "",
        f"Building the {w['a_rows']:,} Event objects for the first path took {w['a_conv_s']:.1f} s and is not "
        + (f"counted; the rows for SQLite were likewise prepared as tuples beforehand ({s['prep_s']:.1f} s, not counted). "
           if s is not None else "counted. ")
        + 
        f"Nothing was a duplicate: {w['a_written'] + w['b_written']:,} of {n:,} rows were written.",
        "",
        "### Size on disk",
        "",
        "| store | events | MB | MB per 1M events | files |",
        "|---|---:|---:|---:|---:|",
    ]
    sz = r["size"]
    lines.append(f"| embedded, as written | {n:,} | {sz['live'] / 1e6:,.0f} | {sz['live'] / 1e6 / (n / 1e6):,.1f} | {sz['files']:,} |")
    if "compacted" in sz:
        c = sz["compacted"]
        how = (f"`compact()` took {c['seconds']:.0f} s" if c["seconds"] >= 1 else
               "`compact()` had nothing left to merge: the stress test's writes had compacted every day")
        lines.append(f"| embedded, one file per day (after the concurrency test; {how}) | {c['events']:,} | "
                     f"{c['live'] / 1e6:,.0f} | {c['live'] / 1e6 / (c['events'] / 1e6):,.1f} | {c['files']:,} |")
    if s is not None:
        lines.append(f"| SQLite (table + 4 indexes) | {s['rows']:,} | {s['bytes'] / 1e6:,.0f} | "
                     f"{s['bytes'] / 1e6 / (s['rows'] / 1e6):,.1f} | 1 |")
    lines += [
        "",
        "### Queries",
        "",
        f"Median of {r['runs']} runs in ms (the first run in brackets when it differs by more than 2×), each on a "
        "fresh store handle, with the files in the page cache. The embedded store is timed through the public "
        "API, so its figures include building Events and result rows; SQLite's are `execute().fetchall()` only.",
        "",
        f"| query | embedded, {first / 1e6:g}M events | SQLite, {(s['rows'] if s else 0) / 1e6:g}M rows | embedded, "
        f"{n / 1e6:g}M events | rows returned at {n / 1e6:g}M |",
        "|---|---:|---:|---:|---:|",
    ]

    def cell(d: dict[str, Any]) -> str:
        t = fmt_ms(d["median_ms"])
        if d["first_ms"] > 2 * d["median_ms"]:
            t += f" ({fmt_ms(d['first_ms'])})"
        return t

    for key, q in r["queries_full"].items():
        sq = r.get("sqlite_queries", {}).get(key)
        lines.append(f"| {q['label']} | {cell(r['queries_first'][key])} | {cell(sq) if sq else '–'} | "
                     f"{cell(q)} | {q['rows']:,} |")
    lines += [
        "",
        "Rows returned: delete rows for the audit queries, repositories for `summarize()`, (user, client IP) "
        "groups for the auth-failure ranking.",
        "",
        "### Readers while a writer appends",
    ]
    for c in r["concurrency"]:
        wr, rd = c["writer"], c["reader"]
        kind = ("stress: `compact_at=2` and a grace period of 0 s, so every write compacts every day that "
                "has two files or more (the first write compacted the whole store) and unlinks the replaced "
                "files at once" if c["stress"] else
                "the defaults (`compact_at=24`, 600 s grace before compacted-away files are unlinked)")
        lines += [
            "",
            f"- **{'stress' if c['stress'] else 'default settings'}**: one process ran `summarize()` plus a total "
            f"count in a loop on the {c['base']:,}-event store while another appended {c['batches']} batches of "
            f"{c['batch']:,} events with `write(events)` into one day, with {kind}. "
            + (f"Writer: {wr.get('written', 0):,} events in {wr.get('write_s', 0):.1f} s; files in the manifest "
               f"{c['files_before']} → {c['files_after']}. " if "error" not in wr else f"Writer FAILED: {wr['error'][-300:]} ")
            + f"Reader: {rd.get('loops', 0)} loops, median {fmt_ms(rd.get('p50_ms', 0))} ms, max "
            f"{fmt_ms(rd.get('max_ms', 0))} ms; **errors: {rd.get('errors', '?')}**, **inconsistent reads "
            f"(a partial batch or a lost one): {rd.get('inconsistent', '?')}**."
            + (f" Error samples: {rd.get('error_samples')}" if rd.get("errors") else ""),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--first", type=int, default=1_000_000, help="rows written as Event objects (and loaded into SQLite)")
    ap.add_argument("--batch", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--no-compact", action="store_true", help="skip the compact() size measurement")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-stress", action="store_true",
                    help="skip the stress run (compact_at=2 on the full store, which can take very long)")
    ap.add_argument("--conc-batches", type=int, default=25)
    ap.add_argument("--conc-size", type=int, default=20_000)
    ap.add_argument("--keep", action="store_true", help="keep the stores under --out")
    ap.add_argument("--docs", type=Path, default=DOCS)
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    first = min(a.first, a.events)

    m = machine()
    load0 = loadavg()
    a.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="store-bench-", dir=a.out))
    store_dir = work / "embedded"
    end = START + timedelta(days=DAYS)
    glob, user = "team-c/*", "carol"  # a mid-popularity team and user: ~1k deletes at 10M
    r: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "events": a.events,
                         "first": first, "batch": a.batch, "seed": a.seed, "runs": a.runs}
    print(f"# {a.events:,} events into {store_dir}; machine {m['nproc']} cores, {m['cpu']}", flush=True)
    try:
        store = EmbeddedStore(store_dir)
        w = {"a_rows": 0, "a_s": 0.0, "a_conv_s": 0.0, "a_written": 0, "a_batches": 0,
             "b_rows": 0, "b_s": 0.0, "b_written": 0, "b_path": ""}
        path_name, write_table = table_writer(store)
        first_tables: list[pa.Table] = []
        gen_s = 0.0
        it = batches(a.events, a.batch, a.seed)
        done_rows = 0
        while True:
            t0 = time.perf_counter()
            t = next(it, None)
            gen_s += time.perf_counter() - t0
            if t is None:
                break
            if done_rows < first:
                first_tables.append(t)
                t0 = time.perf_counter()
                evs = to_events(t)
                w["a_conv_s"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                w["a_written"] += store.write(evs).written
                w["a_s"] += time.perf_counter() - t0
                w["a_rows"] += t.num_rows
                w["a_batches"] += 1
                del evs
                if done_rows + t.num_rows >= first:
                    print(f"# write(events): {w['a_rows']:,} rows, {w['a_rows'] / w['a_s']:,.0f} rows/s", flush=True)
                    r["queries_first"] = run_store_queries(store_dir, first_tables[-1]["timestamp"][-1].as_py(), glob, user, a.runs)
                    r["first_end"] = str(first_tables[-1]["timestamp"][-1].as_py())
            else:
                t0 = time.perf_counter()
                got = write_table(t)
                w["b_s"] += time.perf_counter() - t0
                w["b_written"] += got
                w["b_rows"] += t.num_rows
                w["b_path"] = path_name
                if w["b_rows"] == t.num_rows and got != t.num_rows:
                    raise SystemExit(f"{path_name} wrote {got} of {t.num_rows} rows")
            done_rows += t.num_rows
            if done_rows % 2_000_000 == 0:
                print(f"#   {done_rows:,} rows", flush=True)
        store.close()
        r["write"], r["gen_s"] = w, gen_s
        if w["b_rows"]:
            print(f"# {path_name}: {w['b_rows']:,} rows, {w['b_rows'] / w['b_s']:,.0f} rows/s", flush=True)
        count = EmbeddedStore(store_dir).count()
        if count != a.events:
            raise SystemExit(f"store holds {count:,} events, expected {a.events:,}")
        live, total, files = live_bytes(store_dir)
        r["size"] = {"live": live, "dir": total, "files": files}
        print(f"# size: {live / 1e6:,.0f} MB in {files} files ({live / 1e6 / (a.events / 1e6):.1f} MB per 1M)", flush=True)

        # the first-1M query end is that data's end; for the full store it is START + DAYS
        r["queries_first"] = {k: v for k, v in r["queries_first"].items()}
        r["queries_full"] = run_store_queries(store_dir, end, glob, user, a.runs)
        for k, v in r["queries_full"].items():
            print(f"#   {v['label']}: {fmt_ms(v['median_ms'])} ms ({first / 1e6:g}M: {fmt_ms(r['queries_first'][k]['median_ms'])} ms), "
                  f"{v['rows']:,} rows", flush=True)

        if not a.no_sqlite:
            db = work / "events.sqlite"
            r["sqlite_load"] = sqlite_load(db, first_tables)
            print(f"# sqlite: {r['sqlite_load']['rows_per_s']:,.0f} rows/s, {r['sqlite_load']['bytes'] / 1e6:,.0f} MB", flush=True)
            first_end = first_tables[-1]["timestamp"][-1].as_py()
            r["sqlite_queries"] = sqlite_queries(db, first_end, glob, user, a.runs)
            for k, v in r["sqlite_queries"].items():
                print(f"#   sqlite {k}: {fmt_ms(v['median_ms'])} ms, {v['rows']:,} rows", flush=True)
        first_tables.clear()

        day = (end - timedelta(days=1)).strftime("%Y-%m-%d")
        r["concurrency"] = []
        for stress in (False,) if a.no_stress else (False, True):
            c = concurrency(store_dir, a.seed + (7 if stress else 0), a.conc_batches, a.conc_size, day, stress)
            r["concurrency"].append(c)
            print(f"# concurrency ({'stress' if stress else 'default'}): reader {c['reader']}, writer "
                  f"{ {k: v for k, v in c['writer'].items() if k != 'error'} } {c['writer'].get('error', '')[-500:]}", flush=True)

        if not a.no_compact:
            # measured last: compaction is what a long-running store converges to
            st = EmbeddedStore(store_dir)
            t0 = time.perf_counter()
            st.compact()
            secs = time.perf_counter() - t0
            st.close()
            live2, _, files2 = live_bytes(store_dir)
            n_now = EmbeddedStore(store_dir).count()
            r["size"]["compacted"] = {"live": live2, "events": n_now, "files": files2, "seconds": secs}
            print(f"# compacted: {live2 / 1e6:,.0f} MB for {n_now:,} events in {files2} files, {secs:.0f} s", flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    text = body(m, r, (load0, loadavg()))
    print()
    print(text)
    if a.json:
        a.json.write_text(json.dumps({"machine": m, "results": r}, indent=2, default=str))
    if not a.no_docs:
        replace_section(SECTION, text, a.docs)
        print(f"\n# wrote the {SECTION!r} section of {a.docs}")
    bad = sum(int(c["reader"].get("errors", 1)) + int(c["reader"].get("inconsistent", 1)) for c in r["concurrency"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
