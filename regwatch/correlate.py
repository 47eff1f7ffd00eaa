"""Count each registry request once (domain.md §2), a block of lines at a time.

The registry writes several app lines per request (``authorized request``, ``response
completed[ with error]``, auth errors), joined by ``http.request.id``, and then one
access line with no id. They are folded into one request record:

* app lines are grouped by request id; a group's *final* line is its first line that
  is not ``authorized request`` (its status decides the request's outcome);
* access lines are matched to finished groups with the same (method, path, status) in
  first-in, first-out order: the oldest waiting group is claimed by the next access line;
* a matched pair becomes one event with the final app line's id (so a log read in two
  steps rebuilds the same id), the access line's raw text and status, and the app lines'
  request id, user, error code, duration and repository;
* a finished group no access line claims (access log disabled) is the request on its
  own; an access line no group claims stands alone.

A second stage turns the manifest GET that a client makes just before deleting a
manifest in the same repository (delete by tag) into a ``delete_lookup``: the client's
next request is the DELETE, within ``LOOKUP_WINDOW``.

The work is done by DuckDB over Arrow tables (window functions for the FIFO matching),
which keeps it at column speed; this module is its only user of SQL outside the stores.
:class:`Correlator` keeps the streaming interface (feed events, flush) for callers that
hold Events.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta, timezone
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from regwatch import arrowkit
from regwatch.duck import BLOCK_MEMORY_MB, run_sql
from regwatch.events import EVENT_FIELDS, Event

LOOKUP_WINDOW = timedelta(seconds=10)
CARRY_LINES = 2000  # app lines this close to a block's end wait for the next block

_STRING_COLS = [
    f
    for f in EVENT_FIELDS
    if f not in ("timestamp", "status", "bytes", "repeat", "log_offset", "duration_ms")
]
OBS_SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64()),
        pa.field("kind", pa.string()),
        pa.field("mclass", pa.int32()),
        pa.field("id_seq", pa.int64()),
        pa.field("raw_seq", pa.int64()),
    ]
    + [
        pa.field(
            f,
            pa.timestamp("us", tz="UTC")
            if f == "timestamp"
            else pa.int64()
            if f in ("status", "bytes", "repeat", "log_offset")
            else pa.float64()
            if f == "duration_ms"
            else pa.string(),
        )
        for f in EVENT_FIELDS
    ]
)
_MSG_CLASS = {
    "authorized request": 1,
    "response completed": 2,
    "response completed with error": 2,
}
_RANK = "CASE {c} WHEN 'auth_failure' THEN 3 WHEN 'anonymous_denial' THEN 2 WHEN 'challenge' THEN 1 ELSE 0 END"
_UNRANK = (
    "CASE {r} WHEN 3 THEN 'auth_failure' WHEN 2 THEN 'anonymous_denial' WHEN 1 THEN 'challenge' ELSE 'none' END"
)


def message_class(message: str | None) -> int:
    if message is None:
        return 0
    c = _MSG_CLASS.get(message)
    if c is not None:
        return c
    if message.startswith("error authenticating user "):
        return 3
    if message.startswith("error authorizing context"):
        return 4
    return 0


def event_kind(ev: Event) -> str:
    """app / access for a registry request line, other for everything else."""
    if ev.component != "registry" or ev.method is None:
        return "other"
    return "access" if ev.level is None else "app"


_GETTERS = tuple((f, operator.attrgetter(f)) for f in EVENT_FIELDS)
_INT_FIELDS = frozenset({"status", "bytes", "repeat", "log_offset"})


def events_to_obs(events: Iterable[tuple[int, Event]]) -> pa.Table:
    """(seq, Event) pairs as observation rows.

    Column by column: one ``map`` of an ``attrgetter`` over the events per field (in C;
    a tuple per event transposed with ``zip`` cost four times more), and each column
    built from its buffers (not ``pa.Table.from_pydict``, which would load pandas; see
    regwatch/arrowkit.py)."""
    pairs = events if isinstance(events, list) else list(events)
    n = len(pairs)
    if n == 0:
        return pa.Table.from_arrays([pa.nulls(0, f.type) for f in OBS_SCHEMA], schema=OBS_SCHEMA)
    seqs = [p[0] for p in pairs]
    evs = [p[1] for p in pairs]
    cols = {f: list(map(get, evs)) for f, get in _GETTERS}
    kinds = [
        "other" if c != "registry" or m is None else ("access" if lv is None else "app")
        for c, m, lv in zip(cols["component"], cols["method"], cols["level"])
    ]
    mclass = [message_class(msg) if k == "app" else -1 for k, msg in zip(kinds, cols["message"])]
    seq_arr = arrowkit.int64s(seqs)
    arrays: list[pa.Array] = [
        seq_arr,
        _str_column(kinds),
        pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(np.array(mclass, dtype=np.int32))]),
        seq_arr,
        seq_arr,
    ]
    for f in OBS_SCHEMA:
        if f.name not in cols:
            continue
        vals = cols[f.name]
        if f.name == "timestamp":
            arrays.append(_ts_column(vals))
        elif f.name in _INT_FIELDS:
            arrays.append(_num_column(vals, f.type, np.int64))
        elif f.name == "duration_ms":
            arrays.append(_num_column(vals, f.type, np.float64))
        else:
            arrays.append(_str_column(vals))
    return pa.Table.from_arrays(arrays, schema=OBS_SCHEMA)


def _str_column(values: Sequence[str | None]) -> pa.Array:
    """A string array from Python strings (None is null). When the column is ASCII (the
    usual case) it is joined and encoded once and the offsets come from the string
    lengths; otherwise each value is encoded (as arrowkit.strings)."""
    n = len(values)
    nulls = values.count(None) if isinstance(values, (list, tuple)) else sum(v is None for v in values)
    if nulls == n:
        return pa.nulls(n, pa.string())  # a field no line of the block has (host, digest, ...)
    if nulls:
        bitmap = _validity(values, n)
        vals: Sequence[str] = ["" if v is None else v for v in values]
    else:
        bitmap = None
        vals = values  # type: ignore[assignment]
    joined = "".join(vals)
    if joined.isascii():
        data = joined.encode("ascii")
        lens = np.fromiter(map(len, vals), dtype=np.int64, count=n)
    else:
        enc = [v.encode("utf-8", "surrogatepass") for v in vals]
        data = b"".join(enc)
        lens = np.fromiter(map(len, enc), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    if offsets[-1] >= 2**31:
        return pa.Array.from_buffers(
            pa.large_string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls
        ).cast(pa.string())
    return pa.Array.from_buffers(
        pa.string(), n, [bitmap, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)], null_count=nulls
    )


def _validity(values: Sequence[Any], n: int) -> pa.Buffer:
    valid = np.fromiter(map(operator.is_not, values, itertools.repeat(None)), dtype=np.bool_, count=n)
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _num_column(values: Sequence[Any], typ: pa.DataType, np_type: Any) -> pa.Array:
    """Numbers (None is null) as ``typ``, as arrowkit.column: a null's slot holds 0."""
    n = len(values)
    nulls = values.count(None) if isinstance(values, (list, tuple)) else sum(v is None for v in values)
    if nulls:
        data = np.array([0 if v is None else v for v in values], dtype=np_type)
        bitmap = _validity(values, n)
    else:
        data = np.array(values, dtype=np_type)
        bitmap = None
    return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(data)], null_count=nulls)


def _ts_column(values: Sequence[Any]) -> pa.Array:
    """tz-aware (or naive UTC) datetimes as timestamp[us, UTC] (as arrowkit.column)."""
    n = len(values)
    out = np.zeros(n, np.int64)
    valid = np.ones(n, np.bool_)
    epoch = arrowkit.EPOCH
    for i, t in enumerate(values):
        if t is None:
            valid[i] = False
            continue
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        d = t - epoch
        out[i] = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
    nulls = n - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), n, [bitmap, pa.py_buffer(out)], null_count=nulls)


_FIRST = "arg_min({c}, seq) FILTER (WHERE NULLIF(CAST({c} AS VARCHAR), '') IS NOT NULL)"

_MATCH_SQL = f"""
CREATE OR REPLACE TEMP VIEW _app AS
  SELECT *, coalesce(request_id, 'seq:' || seq) AS rid FROM obs WHERE kind = 'app';
CREATE OR REPLACE TEMP TABLE _g AS
  SELECT rid,
    min(seq) AS first_seq,
    arg_min(log_offset, seq) FILTER (WHERE log_offset IS NOT NULL) AS first_offset,
    min(seq) FILTER (WHERE mclass <> 1) AS final_seq,
    count(*) AS nlines,
    max({_RANK.format(c='auth')}) AS auth_rank,
    {_FIRST.format(c='"user"')} AS g_user,
    arg_min(repository, seq) FILTER (WHERE mclass = 1 AND NULLIF(repository, '') IS NOT NULL) AS g_repo,
    {_FIRST.format(c='reference')} AS g_ref,
    {_FIRST.format(c='digest')} AS g_digest,
    {_FIRST.format(c='request_id')} AS g_rid,
    {_FIRST.format(c='error_code')} AS g_err,
    {_FIRST.format(c='client_ip')} AS g_ip,
    {_FIRST.format(c='user_agent')} AS g_ua,
    arg_min(duration_ms, seq) FILTER (WHERE duration_ms IS NOT NULL) AS g_dur
  FROM _app GROUP BY rid;
CREATE OR REPLACE TEMP TABLE _fin AS
  SELECT a.*, g.* EXCLUDE (rid) FROM _app a JOIN _g g ON a.rid = g.rid AND a.seq = g.final_seq;
CREATE OR REPLACE TEMP TABLE _pairs AS
  WITH ev AS (
    SELECT method, path, status, final_seq AS s, 1 AS push, rid FROM _fin
    UNION ALL
    SELECT method, path, status, seq AS s, 0 AS push, NULL AS rid FROM obs WHERE kind = 'access'
  ), w AS (
    SELECT *, sum(push) OVER k AS p, sum(1 - push) OVER k AS a FROM ev
    WINDOW k AS (PARTITION BY method, path, status ORDER BY s ROWS UNBOUNDED PRECEDING)
  ), w2 AS (
    SELECT *, greatest(0, max(a - p) OVER k) AS f FROM w
    WINDOW k AS (PARTITION BY method, path, status ORDER BY s ROWS UNBOUNDED PRECEDING)
  ), w3 AS (
    SELECT *, coalesce(lag(f) OVER k, 0) AS fprev FROM w2
    WINDOW k AS (PARTITION BY method, path, status ORDER BY s)
  ), pops AS (
    SELECT method, path, status, s AS acc_seq, a - f AS n FROM w3 WHERE push = 0 AND f = fprev
  ), pushes AS (
    SELECT method, path, status, rid, p AS n FROM w3 WHERE push = 1
  )
  SELECT pops.acc_seq, pushes.rid FROM pops JOIN pushes
    ON pops.method = pushes.method AND pops.path = pushes.path AND pops.status = pushes.status
    AND pops.n = pushes.n;
"""

_EVENT_COLS = ", ".join(f'"{f}"' for f in EVENT_FIELDS)
_EVENT_COLS_NO_ID_RAW = ", ".join(f'"{f}"' for f in EVENT_FIELDS if f not in ("id", "raw"))
_EDGE_REQUEST = "component = 'proxy' AND method IS NOT NULL"


def _records_sql(carry_from: int | None) -> str:
    """Merged, app-only and lone-access records; app groups at or after ``carry_from``
    that are still unmatched are left for the next block."""
    carry = "FALSE" if carry_from is None else f"g.first_seq >= {int(carry_from)}"
    return f"""
WITH merged AS (
  SELECT acc.seq AS ord, f.final_seq AS id_seq, acc.seq AS raw_seq, f.first_seq AS first_seq,
    acc.id AS acc_id, f.id AS fin_id, acc.raw AS acc_raw,
    f.nlines AS nlines,
    CASE WHEN abs(epoch(f.timestamp) - epoch(acc.timestamp)) <= 2 THEN f.timestamp ELSE acc.timestamp END AS timestamp,
    acc.source, acc.component, acc.action, acc.outcome, acc.tally,
    {_UNRANK.format(r=f"greatest(f.auth_rank, {_RANK.format(c='acc.auth')})")} AS auth,
    coalesce(f.g_repo, NULLIF(f.repository, ''), acc.repository) AS repository,
    coalesce(f.g_ref, acc.reference) AS reference,
    coalesce(f.g_digest, acc.digest) AS digest,
    acc.method, acc.path, acc.status, acc.bytes, f.g_dur AS duration_ms,
    coalesce(f.g_user, acc."user") AS "user",
    coalesce(f.g_ip, acc.client_ip) AS client_ip,
    coalesce(NULLIF(acc.user_agent, ''), f.g_ua) AS user_agent,
    f.g_rid AS request_id, f.g_err AS error_code,
    CAST(NULL AS VARCHAR) AS level, f.message AS message, acc.host, acc.repeat,
    acc.log_file, f.first_offset AS log_offset
  FROM _pairs p JOIN obs acc ON acc.seq = p.acc_seq JOIN _fin f ON f.rid = p.rid
), apponly AS (
  SELECT f.final_seq AS ord, f.final_seq AS id_seq, f.final_seq AS raw_seq, g.first_seq AS first_seq,
    f.id AS acc_id, f.id AS fin_id, f.raw AS acc_raw, f.nlines AS nlines,
    f.timestamp, f.source, f.component, f.action, f.outcome, f.tally,
    {_UNRANK.format(r='f.auth_rank')} AS auth,
    coalesce(f.g_repo, NULLIF(f.repository, '')) AS repository,
    f.g_ref AS reference, f.g_digest AS digest,
    f.method, f.path, f.status, f.bytes, f.g_dur AS duration_ms,
    f.g_user AS "user", f.g_ip AS client_ip, f.g_ua AS user_agent,
    f.g_rid AS request_id, f.g_err AS error_code,
    CAST(NULL AS VARCHAR) AS level, f.message, f.host, f.repeat, f.log_file, f.log_offset
  FROM _fin f JOIN _g g ON g.rid = f.rid
  WHERE f.rid NOT IN (SELECT rid FROM _pairs) AND NOT ({carry})
), lone AS (
  SELECT o.seq AS ord, o.seq AS id_seq, o.seq AS raw_seq, o.seq AS first_seq, o.id AS acc_id, o.id AS fin_id, o.raw AS acc_raw,
    0 AS nlines, o.timestamp, o.source, o.component, o.action, o.outcome, o.tally, o.auth,
    o.repository, o.reference, o.digest, o.method, o.path, o.status, o.bytes, o.duration_ms,
    o."user", o.client_ip, o.user_agent, o.request_id, o.error_code, o.level, o.message,
    o.host, o.repeat, o.log_file, o.log_offset
  FROM obs o WHERE o.kind = 'access' AND o.seq NOT IN (SELECT acc_seq FROM _pairs)
)
SELECT * FROM merged UNION ALL BY NAME SELECT * FROM apponly UNION ALL BY NAME SELECT * FROM lone
"""


_LOOKUP_SQL = f"""
WITH recs AS (SELECT *, CAST($h AS TIMESTAMPTZ) AS hold_after FROM recs0),
c AS (
  SELECT *,
    lead(action) OVER w AS n_action, lead(repository) OVER w AS n_repo, lead(timestamp) OVER w AS n_ts
  FROM recs WINDOW w AS (PARTITION BY client_ip, user_agent ORDER BY ord)
)
SELECT * EXCLUDE (n_action, n_repo, n_ts, action, tally),
  CASE WHEN is_lookup THEN 'delete_lookup' ELSE action END AS action,
  CASE WHEN is_lookup THEN 'none' ELSE tally END AS tally,
  (tally = 'pull' AND n_action IS NULL AND hold_after IS NOT NULL AND timestamp > hold_after) AS hold
FROM (
  SELECT *, (tally = 'pull' AND n_action = 'delete' AND n_repo IS NOT DISTINCT FROM repository
             AND n_ts - timestamp <= INTERVAL {int(LOOKUP_WINDOW.total_seconds())} SECOND
             AND timestamp <= n_ts + INTERVAL 1 SECOND) AS is_lookup
  FROM c
)
"""


class BlockCorrelator:
    """Correlates one stream block by block, carrying unfinished requests forward."""

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con or self.connect()
        self._carry_obs: pa.Table | None = None  # app rows of unfinished requests
        self._carry_recs: pa.Table | None = None  # pulls that may still be delete lookups
        self.merged = 0

    @staticmethod
    def connect() -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB set up for block work."""
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone='UTC'")
        # keep the working set small whatever the input size (peak RSS target: 300 MB);
        # run_sql raises it for a statement that needs more
        con.execute(f"SET memory_limit='{BLOCK_MEMORY_MB}MB'")
        # one thread each: the parse and correlate stages already run side by side (one
        # per core), and every DuckDB worker thread keeps its own allocation caches
        con.execute("SET threads=1")
        con.execute("SET preserve_insertion_order=false")
        con.execute("SET enable_progress_bar=false")
        return con

    def pending_offset(self) -> int | None:
        offs = []
        for t in (self._carry_obs, self._carry_recs):
            if t is not None and t.num_rows:
                v = pa.compute.min(t["log_offset"]).as_py()
                if v is not None:
                    offs.append(int(v))
        return min(offs) if offs else None

    def pending_in(self, lo: int, hi: int) -> int | None:
        """The smallest offset held among rows whose first line's seq is in [lo, hi)."""
        pc = pa.compute
        offs = []
        for t, col in ((self._carry_obs, "seq"), (self._carry_recs, "first_seq")):
            if t is not None and t.num_rows:
                s = t[col]
                rows = t.filter(pc.and_(pc.greater_equal(s, lo), pc.less(s, hi)))
                if rows.num_rows:
                    v = pc.min(rows["log_offset"]).as_py()
                    if v is not None:
                        offs.append(int(v))
        return min(offs) if offs else None

    def run(
        self,
        obs: pa.Table,
        *,
        last_seq: int,
        final: bool,
        resolve: Callable[[pa.Table, str, str], pa.Table] | None = None,
    ) -> tuple[pa.Table, pa.Table]:
        """Correlate ``obs`` (plus what was carried). Returns (records, other) where
        ``records`` are the request records now final (columns: Event fields plus
        id_seq/raw_seq/acc_id/fin_id/acc_raw) and ``other`` the pass-through rows."""
        if self._carry_obs is not None and self._carry_obs.num_rows:
            obs = pa.concat_tables([self._carry_obs, obs.cast(OBS_SCHEMA)])
        con = self.con
        con.register("obs", obs)
        try:
            run_sql(con, _MATCH_SQL, fetch=False)
            carry_from = None if final else last_seq - CARRY_LINES
            recs = run_sql(con, _records_sql(carry_from))
            # lines folded away: every app line of a matched or app-only group but one
            # (the record itself is counted as an event), and incomplete groups
            nl = run_sql(
                con,
                f"""SELECT
                      coalesce(sum(g.nlines) FILTER (WHERE g.rid IN (SELECT rid FROM _pairs)), 0) AS paired,
                      coalesce(sum(g.nlines - 1) FILTER (WHERE g.final_seq IS NOT NULL AND g.rid NOT IN (SELECT rid FROM _pairs)
                                AND NOT ({'FALSE' if carry_from is None else f'g.first_seq >= {carry_from}'})), 0) AS solo,
                      coalesce(sum(g.nlines) FILTER (WHERE g.final_seq IS NULL
                                AND NOT ({'FALSE' if carry_from is None else f'g.first_seq >= {carry_from}'})), 0) AS lost
                    FROM _g g""",
            ).to_pylist()[0]
            self.merged += int(nl["paired"]) + int(nl["solo"]) + int(nl["lost"])
            if carry_from is None:
                self._carry_obs = None
            else:
                self._carry_obs = run_sql(
                    con,
                    f"""SELECT o.* FROM obs o WHERE o.kind = 'app' AND coalesce(o.request_id, 'seq:' || o.seq) IN (
                          SELECT rid FROM _g WHERE first_seq >= {int(carry_from)}
                            AND rid NOT IN (SELECT rid FROM _pairs))""",
                ).cast(OBS_SCHEMA)
                if resolve is not None and self._carry_obs.num_rows:
                    # carried lines leave their block behind: give them their id and raw now
                    self._carry_obs = resolve(resolve(self._carry_obs, "id", "id_seq"), "raw", "raw_seq")
            other = run_sql(con, f"SELECT * FROM obs WHERE kind = 'other' AND NOT ({_EDGE_REQUEST})")
            # requests seen at Harbor's proxy are whole records already (one line each);
            # they join the delete-lookup stage, since they are the counted ones there
            edge = run_sql(
                con,
                f"""SELECT seq AS ord, seq AS id_seq, seq AS raw_seq, seq AS first_seq, id AS acc_id, id AS fin_id,
                      raw AS acc_raw, 0 AS nlines, {_EVENT_COLS_NO_ID_RAW}
                    FROM obs WHERE kind = 'other' AND {_EDGE_REQUEST}""",
            )
            if edge.num_rows:
                recs = pa.concat_tables([recs, edge], promote_options="permissive") if recs.num_rows else edge
        finally:
            con.unregister("obs")
        if resolve is not None and recs.num_rows:
            recs = resolve(resolve(recs, "fin_id", "id_seq"), "acc_raw", "raw_seq")
        recs = self._lookups(recs, final)
        return recs, other

    def _lookups(self, recs: pa.Table, final: bool) -> pa.Table:
        if self._carry_recs is not None and self._carry_recs.num_rows:
            recs = pa.concat_tables([self._carry_recs, recs], promote_options="permissive")
        if recs.num_rows == 0:
            self._carry_recs = None
            return recs
        con = self.con
        newest = pa.compute.max(recs["timestamp"]).as_py()
        hold_after = None if final else newest - LOOKUP_WINDOW
        con.register("recs0", recs)
        try:
            out = run_sql(con, _LOOKUP_SQL, {"h": hold_after})
        finally:
            con.unregister("recs0")
        hold = pa.compute.and_kleene(out["hold"], pa.compute.is_valid(out["hold"]))  # null -> false
        held = out.filter(hold)
        ready = out.filter(pa.compute.invert(hold))
        helper_cols = ["hold", "hold_after", "is_lookup"]
        self._carry_recs = held.drop_columns(helper_cols) if held.num_rows else None
        return ready.drop_columns(helper_cols)


def records_to_events(recs: pa.Table) -> list[Event]:
    """Request records (from BlockCorrelator) whose id/raw are already set, as Events."""
    from regwatch.stores.embedded import rows_to_events

    cols = {f: recs[f] for f in EVENT_FIELDS if f not in ("id", "raw")}
    t = pa.table({**cols, "id": recs["fin_id"], "raw": recs["acc_raw"]})
    return rows_to_events(t.select(list(EVENT_FIELDS)))


class Correlator:
    """Streaming interface over :class:`BlockCorrelator` for callers holding Events.

    ``feed`` buffers; ``flush`` correlates everything fed so far as a finished stream.
    """

    def __init__(self) -> None:
        self._buf: list[tuple[int, Event]] = []
        self._seq = 0
        self.merged = 0

    def feed(self, ev: Event) -> list[Event]:
        self._seq += 1
        self._buf.append((self._seq, ev))
        return []

    def flush(self) -> list[Event]:
        if not self._buf:
            return []
        obs = events_to_obs(self._buf)
        bc = BlockCorrelator()
        recs, other = bc.run(obs, last_seq=self._seq, final=True)
        self.merged += bc.merged
        out = records_to_events(recs)
        out.extend(records_to_events_other(other))
        self._buf = []
        out.sort(key=lambda e: (e.log_offset or 0, e.id))
        return out

    def pending_offset(self) -> int | None:
        offs = [e.log_offset or 0 for _, e in self._buf]
        return min(offs) if offs else None


def records_to_events_other(other: pa.Table) -> list[Event]:
    from regwatch.stores.embedded import rows_to_events

    return rows_to_events(other.select(list(EVENT_FIELDS)))


class DuckFolder:
    """:class:`BlockCorrelator` with the interface of :class:`regwatch.native.Folder`, the
    ingest's folder when the native library is not built.

    :meth:`run` returns (records, other) as tables of the Event fields; an id or raw line
    the observation rows left empty is taken from the block's ``lines`` (a caller redacts
    secret-bearing lines before, as for the native folder)."""

    def __init__(self, fingerprint: str) -> None:
        self.corr = BlockCorrelator()
        self.fingerprint = fingerprint
        self._lines: pa.Array | None = None
        self._offsets: Any = None
        self._seq0 = 0

    @property
    def merged(self) -> int:
        return self.corr.merged

    def pending_offset(self) -> int | None:
        return self.corr.pending_offset()

    def pending_in(self, lo: int, hi: int) -> int | None:
        return self.corr.pending_in(lo, hi)

    def set_fingerprint(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint

    def run(
        self, obs: pa.Table, lines: pa.Array | None, line_offsets: Any, seq0: int, *, last_seq: int, final: bool
    ) -> tuple[pa.Table, pa.Table]:
        self._lines, self._offsets, self._seq0 = lines, line_offsets, seq0
        try:
            recs, other = self.corr.run(obs, last_seq=last_seq, final=final, resolve=self._resolve)
        finally:
            self._lines = self._offsets = None
        cols = {f: recs[f] for f in EVENT_FIELDS if f not in ("id", "raw")}
        events = pa.table({**cols, "id": recs["fin_id"], "raw": recs["acc_raw"]}).select(list(EVENT_FIELDS))
        return events, other.select(list(EVENT_FIELDS))

    def _resolve(self, table: pa.Table, col: str, seq_col: str) -> pa.Table:
        """Fill ``col`` (an id or a raw line) where it is empty, from the line at
        ``seq_col`` in the current block."""
        from regwatch.events import event_id

        values = table[col].to_pylist()
        if all(v is not None for v in values):
            return table
        seqs = table[seq_col].to_pylist()
        assert self._lines is not None
        for i, v in enumerate(values):
            if v is None:
                k = seqs[i] - self._seq0
                if col in ("id", "fin_id"):
                    values[i] = event_id(self.fingerprint, int(self._offsets[k]))
                else:
                    values[i] = self._lines[k].as_py()
        idx = table.schema.get_field_index(col)
        return table.set_column(idx, col, arrowkit.strings(values))
