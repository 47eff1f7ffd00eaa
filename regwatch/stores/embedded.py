"""The embedded store: immutable Parquet partitions, queried with DuckDB.

Why this shape (numbers in docs/architecture.md): a read-write DuckDB database file
locks out every other process, but the daemon must write while the dashboard, the CLI
and notebooks read. Parquet files that are never modified once written can be read by
any number of processes at once, and DuckDB scans them at column-store speed.

Layout of a store directory::

    manifest.json                      the list of live files (replaced atomically)
    events/day=YYYY-MM-DD/<n>.parquet  immutable, sorted by timestamp
    .writer.lock                       one writer at a time (flock)

A reader loads ``manifest.json`` and reads only the files it lists, so a writer that
adds or compacts files never shows a reader half a change. Files replaced by a
compaction are unlinked after a grace period, so a reader that loaded the previous
manifest can finish its query.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from regwatch import arrowkit
from regwatch.duck import run_sql, to_arrow
from regwatch.errors import StoreCorrupt, StoreError, StoreUnavailable
from regwatch.events import EVENT_FIELDS, Event
from regwatch.stores.base import GROUPABLE, RECORD_KIND, Aggregation, Health, Query, Record, WriteResult, check_record

MANIFEST_VERSION = 1
COMPACT_AT = 24  # files per day partition before they are merged
SMALL_SET_COMPACT_AT = 4  # the same for the deletes and rollup sets
GRACE_SECONDS = 600
STORE_MEMORY_MB = 512  # queries (reads run in the CLI, dashboard and notebooks)
MERGE_MEMORY_MB = 96  # a compaction inside the ingest
ROW_GROUP = 64_000  # rows per Parquet row group: small enough to write in little memory
# The side set is sorted by (repository, user, timestamp) in small row groups, so a search
# by repository glob and user decodes only the row groups whose min/max can match.
SIDE_ROW_GROUP = 8_192
TWO_PASS_LIMIT = 1_000  # a search with a limit up to this finds its rows first (see search())
# columns whose Parquet min/max statistics serve queries (time, id ranges, filters)
_STATS_COLUMNS = frozenset(
    {"id", "timestamp", "day", "source", "component", "action", "outcome", "tally", "auth",
     "repository", "user", "client_ip", "method", "status"}
)
# columns with few distinct values, written with dictionary encoding
_DICT_COLUMNS = frozenset(
    {"source", "component", "action", "outcome", "tally", "auth", "repository", "method", "level",
     "message", "host", "log_file", "user", "client_ip", "user_agent", "error_code", "day"}
)
_SIDE_ORDER = ("repository", "user", "timestamp")
# The side sets: every event whose ``column`` holds one of ``values`` is also kept in a
# small set of its own, sorted by ``order``, so a query for a few rows among millions
# reads a few percent of the data instead of all of it:
# * ``deletes/`` (delete, blob_delete): the DELETE audit;
# * ``auth/`` (real auth failures and anonymous denials, not challenges): who fails to
#   log in, from where.
SIDE_SET = "deletes"
SIDE_ACTIONS = frozenset({"delete", "blob_delete"})
AUTH_SET = "auth"
AUTH_VALUES = frozenset({"auth_failure", "anonymous_denial"})
SIDE_SETS: dict[str, tuple[str, frozenset[str], tuple[str, ...]]] = {
    SIDE_SET: ("action", SIDE_ACTIONS, _SIDE_ORDER),
    AUTH_SET: ("auth", AUTH_VALUES, ("user", "client_ip", "timestamp")),
}


def _new_side() -> dict[str, list[str]]:
    return {name: sorted(values) for name, (_col, values, _order) in SIDE_SETS.items()}
# The rollup set: per day, the sums of ``repeat`` and ``bytes`` for every combination of
# these fields, written beside each batch. Aggregations over whole days that filter and
# group only by them (the summary, dashboards) read it instead of the events.
ROLLUP_SET = "rollup"
ROLLUP_DIMS = ("source", "component", "action", "outcome", "tally", "auth", "repository")
_DAY = timedelta(days=1)

_INT = {"status", "bytes", "repeat", "log_offset"}
_FLOAT = {"duration_ms"}
SCHEMA = pa.schema(
    [
        pa.field(
            name,
            pa.timestamp("us", tz="UTC")
            if name == "timestamp"
            else pa.int64()
            if name in _INT
            else pa.float64()
            if name in _FLOAT
            else pa.string(),
        )
        for name in EVENT_FIELDS
    ]
)
_COLS = ", ".join(f'"{c}"' for c in EVENT_FIELDS)


def _partitions(dates: Any, set_: str) -> list[tuple[str, Any]]:
    """(partition, row mask) for each partition among ``dates`` (date32): YYYY-MM-DD for
    the events, YYYY-MM for the small sets. Only the distinct days are formatted."""
    by_key: dict[str, list[Any]] = {}
    for d in pc.unique(dates).to_pylist():
        if d is None:
            continue
        key = f"{d.year:04d}-{d.month:02d}-{d.day:02d}" if set_ == "events" else f"{d.year:04d}-{d.month:02d}"
        by_key.setdefault(key, []).append(d)
    out = []
    for key, ds in sorted(by_key.items()):
        day_set = arrowkit.dates(ds)
        mask = pc.equal(dates, day_set[0]) if len(ds) == 1 else pc.is_in(dates, value_set=day_set)
        out.append((key, mask))
    return out


def _floor_day(t: datetime) -> datetime:
    t = t.astimezone(timezone.utc)
    return datetime(t.year, t.month, t.day, tzinfo=timezone.utc)


def _ceil_day(t: datetime) -> datetime:
    f = _floor_day(t)
    return f if f == t else f + _DAY


def glob_to_like(glob: str) -> str:
    """A glob without character classes as a LIKE pattern (escape character: backslash)."""
    out = []
    for c in glob:
        if c in "\\%_":
            out.append("\\" + c)
        elif c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        else:
            out.append(c)
    return "".join(out)


def events_to_table(events: Sequence[Event]) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [getattr(e, name) for e in events] for name in EVENT_FIELDS}
    return pa.Table.from_pydict(cols, schema=SCHEMA)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def rows_to_events(table: pa.Table) -> list[Event]:
    """Rows as Events, column by column (one list per column, then one zip), which is
    several times quicker than a dict per row for the tens of thousands of rows an
    audit search can return."""
    if table.num_rows == 0:
        return []
    ts = table.column("timestamp")
    # Arrow keeps instants as UTC epoch values whatever the zone; a naive value means UTC
    tz = ts.type.tz if pa.types.is_timestamp(ts.type) else None
    cols = []
    for name in EVENT_FIELDS:
        if name == "timestamp":
            micros = ts.cast(pa.timestamp("us", tz=tz)).cast(pa.int64()).to_pylist()
            cols.append([None if us is None else _EPOCH + timedelta(microseconds=us) for us in micros])
        elif name == "repeat" and name in table.column_names:
            cols.append([1 if v is None else v for v in table.column(name).to_pylist()])
        elif name in table.column_names:
            cols.append(table.column(name).to_pylist())
        else:
            cols.append([1 if name == "repeat" else None] * table.num_rows)
    return [Event(*vals) for vals in zip(*cols)]


class EmbeddedStore:
    """A directory of Parquet partitions; no server needed.

    Many processes may read while one writes. Raises StoreError subclasses.
    """

    def __init__(self, path: str | os.PathLike[str], *, compact_at: int = COMPACT_AT) -> None:
        self.path = Path(path)
        self.compact_at = compact_at
        self._local = threading.local()
        self._defer_compaction = 0
        self._merge_threads = 1
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "events").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create store directory {str(self.path)!r}: {exc.strerror}; "
                "pass a writable --db PATH or set REGWATCH_DB"
            ) from exc

    # -- manifest --------------------------------------------------------------------
    @property
    def _manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def _load_manifest(self) -> dict[str, Any]:
        try:
            with open(self._manifest_path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return {
                "version": MANIFEST_VERSION,
                "files": [],
                "retired": [],
                "side": _new_side(),
                "rollup": list(ROLLUP_DIMS),
            }
        except (OSError, ValueError) as exc:
            raise StoreCorrupt(
                f"cannot read {str(self._manifest_path)!r}: {exc}; restore it from backup or re-ingest into a new --db"
            ) from exc
        if doc.get("version") != MANIFEST_VERSION:
            raise StoreCorrupt(
                f"store manifest version {doc.get('version')!r} is not {MANIFEST_VERSION}; use a matching regwatch"
            )
        return doc

    def _save_manifest(self, doc: dict[str, Any]) -> None:
        tmp = self.path / f".manifest.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._manifest_path)
        dfd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Hold back compaction for a run of writes (an ingest), then compact once.

        A merge during the ingest would add its working memory to the ingest's own (the
        peak RSS target is 300 MB); after it, the ingest's memory is released. Readers
        meanwhile see a few more files per day."""
        self._defer_compaction += 1
        try:
            yield
        finally:
            self._defer_compaction -= 1
        # (not after a failed run: the files are stored either way, and a second error
        # here would hide the first)
        if not self._defer_compaction:
            # the run's own buffers are gone by now: the merges may use both cores
            self._merge_threads = max(1, min(2, os.cpu_count() or 1))
            try:
                with self._writer():
                    self._maybe_compact(self._load_manifest())
            finally:
                self._merge_threads = 1

    @contextmanager
    def _writer(self) -> Iterator[None]:
        fd = os.open(self.path / ".writer.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- duckdb ----------------------------------------------------------------------
    def _con(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect(":memory:")
            con.execute("SET TimeZone='UTC'")
            con.execute(f"SET memory_limit='{STORE_MEMORY_MB}MB'")
            con.execute("SET enable_progress_bar=false")
            con.execute(f"SET temp_directory='{self.path / '.tmp'}'")
            self._local.con = con
        return con

    def release_memory(self) -> None:
        """Close this thread's DuckDB connection (the next call opens a new one): DuckDB
        keeps the buffers of its biggest query, which an idle service need not hold."""
        con = getattr(self._local, "con", None)
        if con is not None:
            self._local.con = None
            con.close()

    @staticmethod
    def _side_actions(doc: dict[str, Any]) -> frozenset[str]:
        """The actions the deletes side set holds; empty for a store made before it
        existed (its older events are not in it, so it must not be read)."""
        return frozenset(doc.get("side", {}).get(SIDE_SET, ()))

    @staticmethod
    def _sides(doc: dict[str, Any]) -> dict[str, frozenset[str]]:
        """The side sets this store keeps (by the manifest: a set added after a store was
        made is not kept there, since its older events would be missing)."""
        return {name: frozenset(v) for name, v in doc.get("side", {}).items() if name in SIDE_SETS}

    def _set_for(self, doc: dict[str, Any], q: Query) -> str:
        sides = self._sides(doc)
        if q.actions and sides.get(SIDE_SET) and q.actions <= sides[SIDE_SET]:
            return SIDE_SET
        if q.auth and sides.get(AUTH_SET) and q.auth <= sides[AUTH_SET]:
            return AUTH_SET
        return "events"

    def _files(
        self,
        doc: dict[str, Any],
        since: datetime | None = None,
        until: datetime | None = None,
        set_: str = "events",
    ) -> list[str]:
        out = []
        for f in doc["files"]:
            if f.get("set", "events") != set_:
                continue
            if since is not None and f["max_ts"] < since.timestamp():
                continue
            if until is not None and f["min_ts"] >= until.timestamp():
                continue
            out.append(str(self.path / f["name"]))
        return out

    # -- write -----------------------------------------------------------------------
    def write(self, events: Sequence[Event]) -> WriteResult:
        """Store events; ids already stored (or repeated in the batch) are duplicates."""
        if not events:
            return WriteResult()
        try:
            table = events_to_table(events)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            return self._write_one_by_one(events, exc)
        return self.write_table(table)

    def write_table(self, table: pa.Table) -> WriteResult:
        """The batch variant of :meth:`write`: an Arrow table with the Event columns."""
        if table.num_rows == 0:
            return WriteResult()
        table = table.select(list(EVENT_FIELDS)).cast(SCHEMA)
        dates = pc.unique(pc.cast(table["timestamp"], pa.date32())).to_pylist()
        days = sorted(f"{d.year:04d}-{d.month:02d}-{d.day:02d}" for d in dates if d is not None)
        with self._writer():
            doc = self._load_manifest()
            con = self._con()
            con.register("batch", table)
            try:
                id_lo, id_hi = (v.as_py() for v in pc.min_max(table["id"]).values())
                existing_files = [
                    str(self.path / f["name"])
                    for f in doc["files"]
                    if f["day"] in days
                    and f.get("set", "events") == "events"
                    # a file whose id range misses the batch's holds none of its ids
                    and not ("min_id" in f and (f["max_id"] < id_lo or f["min_id"] > id_hi))
                ]
                if existing_files:
                    # the semi join builds its hash table from the (small) batch and streams
                    # the stored ids past it, so memory stays flat as the store grows
                    dups = to_arrow(
                        con.execute(
                            "SELECT DISTINCT id FROM read_parquet($files) "
                            "WHERE id BETWEEN $lo AND $hi AND id IN (SELECT id FROM batch)",
                            {"files": existing_files, "lo": id_lo, "hi": id_hi},
                        )
                    )
                    con.register("dups", dups)
                    try:
                        fresh = to_arrow(
                            con.execute(
                                f"""SELECT {_COLS} FROM (
                                      SELECT *, row_number() OVER (PARTITION BY id ORDER BY timestamp) AS rn
                                      FROM batch) b
                                    WHERE rn = 1 AND id NOT IN (SELECT id FROM dups)
                                    ORDER BY timestamp, id"""
                            )
                        )
                    finally:
                        con.unregister("dups")
                elif pc.count_distinct(table["id"]).as_py() == table.num_rows:
                    # the usual case (a log read forward): nothing to remove. The rows are
                    # written as they come: a file's time range is in the manifest, and the
                    # ingest hands over each block's records in (timestamp, id) order already
                    fresh = table
                else:
                    fresh = to_arrow(
                        con.execute(
                            f"""SELECT {_COLS} FROM (
                                  SELECT *, row_number() OVER (PARTITION BY id ORDER BY timestamp) AS rn
                                  FROM batch) b WHERE rn = 1 ORDER BY timestamp, id"""
                        )
                    )
            except duckdb.Error as exc:
                raise StoreError(f"embedded store write failed: {exc}") from exc
            finally:
                con.unregister("batch")
            fresh = fresh.cast(SCHEMA)
            written = fresh.num_rows
            if written:
                if "side" not in doc and not doc["files"]:
                    doc["side"] = _new_side()
                if "rollup" not in doc and not doc["files"]:
                    doc["rollup"] = list(ROLLUP_DIMS)
                self._append(doc, fresh)
                if tuple(doc.get("rollup", ())) == ROLLUP_DIMS:
                    self._append_rollup(doc, fresh)
                for name, values in self._sides(doc).items():
                    column = SIDE_SETS[name][0]
                    rows = fresh.filter(pc.is_in(fresh[column], arrowkit.strings(sorted(values))))
                    if rows.num_rows:
                        self._append(doc, rows, name)
                self._save_manifest(doc)
                if not self._defer_compaction:
                    self._maybe_compact(doc)
        accepted = tuple(fresh["id"].to_pylist()) if written else ()
        return WriteResult(written=written, duplicates=table.num_rows - written, accepted=accepted)

    def replace(self, events: Sequence[Event]) -> WriteResult:
        """Store events, each replacing a stored event with its id (see :meth:`replace_table`)."""
        if not events:
            return WriteResult()
        return self.replace_table(events_to_table(events))

    def replace_table(self, table: pa.Table) -> WriteResult:
        """Store the rows, each replacing the stored row with its id if there is one: a
        record built again from lines read again, which a later line changed (a pull
        that a DELETE written after the last read made a delete lookup). The files
        holding the old rows are rewritten without them (they are immutable: new files
        replace them in the manifest) and the rollup gets the old rows' counts taken
        off. ``written`` counts the rows that were not stored before, ``duplicates`` the
        ones replaced."""
        if table.num_rows == 0:
            return WriteResult()
        table = table.select(list(EVENT_FIELDS)).cast(SCHEMA)
        with self._writer():
            doc = self._load_manifest()
            try:
                changed, files = self._changed_ids(doc, table)
                removed = self._remove_ids(doc, changed, files) if len(changed) else 0
            except duckdb.Error as exc:
                raise StoreError(f"embedded store replace failed: {exc}") from exc
            if removed:
                self._save_manifest(doc)
        res = self.write_table(table)
        return WriteResult(max(0, res.written - removed), res.duplicates + removed, res.rejected, res.accepted)

    def _changed_ids(self, doc: dict[str, Any], table: pa.Table) -> tuple[pa.Array, set[str]]:
        """The ids of ``table`` stored with other values (a row stored as it is needs no
        rewrite: replacing it would rewrite its whole file for nothing), and the event
        files that hold them."""
        lo, hi = (v.as_py() for v in pc.min_max(table["id"]).values())
        files = [
            str(self.path / f["name"])
            for f in doc["files"]
            if f.get("set", "events") == "events" and not ("min_id" in f and (f["max_id"] < lo or f["min_id"] > hi))
        ]
        none: tuple[pa.Array, set[str]] = (pa.array([], pa.string()), set())
        if not files:
            return none
        con = self._con()
        con.register("_new", table)
        try:
            stored = to_arrow(
                con.execute(
                    f"SELECT {_COLS}, filename AS _file FROM read_parquet($files, filename = true) "
                    "WHERE id BETWEEN $lo AND $hi AND id IN (SELECT id FROM _new)",
                    {"files": files, "lo": lo, "hi": hi},
                )
            )
        finally:
            con.unregister("_new")
        if not stored.num_rows:
            return none
        where = dict(zip(stored["id"].to_pylist(), stored["_file"].to_pylist(), strict=True))
        old = {r["id"]: r for r in stored.select(list(EVENT_FIELDS)).cast(SCHEMA).to_pylist()}
        changed = sorted({r["id"] for r in table.to_pylist() if r["id"] in old and old[r["id"]] != r})
        return pa.array(changed, pa.string()), {where[i] for i in changed}

    def _remove_ids(self, doc: dict[str, Any], ids: pa.Array, event_files: set[str]) -> int:
        """Take the rows with these ids out of ``event_files`` (the event files that hold
        them) and the side sets; the events removed."""
        lo, hi = (v.as_py() for v in pc.min_max(ids).values())
        removed = 0
        old_rows: list[pa.Table] = []
        now = time.time()
        for f in list(doc["files"]):
            set_ = f.get("set", "events")
            if set_ == ROLLUP_SET or ("min_id" in f and (f["max_id"] < lo or f["min_id"] > hi)):
                continue
            path = str(self.path / f["name"])
            if set_ == "events" and path not in event_files:
                continue
            part = pq.ParquetFile(path).read()  # the file alone (no partition column from its path)
            hit = pc.is_in(part["id"], value_set=ids)
            n = pc.sum(hit).as_py() or 0
            if not n:
                continue
            if set_ == "events":
                removed += n
                old_rows.append(part.filter(hit))
            keep = part.filter(pc.invert(hit))
            doc["files"] = [g for g in doc["files"] if g["name"] != f["name"]]
            doc.setdefault("retired", []).append({"name": f["name"], "at": now})
            if keep.num_rows:
                self._write_file(doc, f["day"], keep.select(list(EVENT_FIELDS)).cast(SCHEMA), int(f.get("level", 0)), set_=set_)
        if old_rows and tuple(doc.get("rollup", ())) == ROLLUP_DIMS:
            old = pa.concat_tables(old_rows)
            neg = old.set_column(old.schema.get_field_index("repeat"), "repeat", pc.negate(old["repeat"]))
            neg = neg.set_column(neg.schema.get_field_index("bytes"), "bytes", pc.negate(neg["bytes"]))
            self._append_rollup(doc, neg)
        return removed

    def _write_one_by_one(self, events: Sequence[Event], exc: Exception) -> WriteResult:
        rejected: list[tuple[Event, str]] = []
        good: list[Event] = []
        for e in events:
            try:
                events_to_table([e])
                good.append(e)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as err:
                rejected.append((e, f"{type(err).__name__}: {err}"))
        res = self.write(good) if good else WriteResult()
        return WriteResult(res.written, res.duplicates, tuple(rejected), res.accepted)

    def _append(self, doc: dict[str, Any], fresh: pa.Table, set_: str = "events") -> None:
        """Write ``fresh`` split by partition: a day for the events, a month for the small
        sets (a day of deletes is a few thousand rows; a file per day would leave a
        search opening a hundred small files)."""
        parts = _partitions(pc.cast(fresh["timestamp"], pa.date32()), set_)
        for k, mask in parts:
            part = fresh if len(parts) == 1 and fresh["timestamp"].null_count == 0 else fresh.filter(mask)
            if set_ in SIDE_SETS:
                part = part.sort_by([(c, "ascending") for c in SIDE_SETS[set_][2]])
            self._write_file(doc, k, part, set_=set_)

    def _append_rollup(self, doc: dict[str, Any], fresh: pa.Table) -> None:
        dates = pc.cast(fresh["timestamp"], pa.date32())
        t = fresh.select(list(ROLLUP_DIMS) + ["repeat", "bytes"]).append_column("day", dates)
        # DuckDB, not Table.group_by: that loads pyarrow.dataset and pandas (~50 MB)
        dims = ", ".join(f'"{d}"' for d in ROLLUP_DIMS)
        con = self._con()
        con.register("_roll_in", t)
        try:
            roll = run_sql(
                con,
                f"""SELECT day, {dims}, CAST(sum("repeat") AS BIGINT) AS count, CAST(sum(bytes) AS BIGINT) AS bytes
                    FROM _roll_in GROUP BY day, {dims}""",
            )
        finally:
            con.unregister("_roll_in")
        for k, mask in _partitions(roll["day"], ROLLUP_SET):
            part = roll.filter(mask)
            lo, hi = (v.as_py() for v in pc.min_max(part["day"]).values())
            span = (datetime(lo.year, lo.month, lo.day, tzinfo=timezone.utc), datetime(hi.year, hi.month, hi.day, tzinfo=timezone.utc) + _DAY)
            self._write_file(doc, k, part, set_=ROLLUP_SET, span=span)

    def _write_file(
        self,
        doc: dict[str, Any],
        day: str,
        part: pa.Table,
        level: int = 0,
        set_: str = "events",
        span: tuple[datetime, datetime] | None = None,
    ) -> None:
        rel = f"{set_}/day={day}/{time.time_ns():x}-{uuid.uuid4().hex[:8]}.parquet"
        dest = self.path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        pq.write_table(
            part,
            tmp,
            compression="zstd",
            row_group_size=SIDE_ROW_GROUP if set_ in SIDE_SETS else ROW_GROUP,
            # dictionaries only where values repeat: building one for ids and raw lines
            # costs time and is thrown away (the files are smaller this way too)
            use_dictionary=[c for c in part.column_names if c in _DICT_COLUMNS],
            # min/max only where a query filters (computing them over raw lines is costly)
            write_statistics=[c for c in part.column_names if c in _STATS_COLUMNS],
        )
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        entry: dict[str, Any] = {"name": rel, "day": day, "rows": part.num_rows, "level": level, "set": set_}
        if span is None:
            # epoch microseconds, read without making datetimes (see regwatch/arrowkit.py)
            entry["min_ts"] = pc.min(part["timestamp"]).value / 1e6
            entry["max_ts"] = pc.max(part["timestamp"]).value / 1e6
        else:
            entry["min_ts"], entry["max_ts"] = span[0].timestamp(), span[1].timestamp()
        if "id" in part.column_names:
            entry["min_id"], entry["max_id"] = (v.as_py() for v in pc.min_max(part["id"]).values())
        doc["files"].append(entry)

    def _merge_files(self, doc: dict[str, Any], day: str, old: list[dict[str, Any]], level: int) -> None:
        """One sorted file from ``old``, written by DuckDB straight from Parquet to Parquet
        (streaming, within its memory limit), then swapped in the manifest."""
        set_ = old[0].get("set", "events")
        rel = f"{set_}/day={day}/{time.time_ns():x}-{uuid.uuid4().hex[:8]}.parquet"
        dest = self.path / rel
        tmp = dest.with_suffix(".tmp")
        paths = [str(self.path / f["name"]) for f in old]
        con = self._con()
        # No global ORDER BY: each input is already sorted, and a sort of a large level
        # would need memory in proportion to it. Streaming keeps compaction flat.
        con.execute("SET preserve_insertion_order=false")  # lets the COPY stream
        # one thread and a small limit: a merge is a background chore of the writer, and
        # it must not lift the ingest's peak memory (run_sql raises the limit if it must)
        con.execute(f"SET threads={self._merge_threads}")
        con.execute(f"SET memory_limit='{MERGE_MEMORY_MB}MB'")
        try:
            select = (
                f"SELECT day, {', '.join(ROLLUP_DIMS)}, CAST(sum(count) AS BIGINT) AS count, "
                f"CAST(sum(bytes) AS BIGINT) AS bytes FROM read_parquet($p, hive_partitioning = false) GROUP BY ALL"
                if set_ == ROLLUP_SET
                else f"SELECT {_COLS} FROM read_parquet($p) ORDER BY {', '.join(chr(34) + c + chr(34) for c in SIDE_SETS[set_][2])}"
                if set_ in SIDE_SETS
                else f"SELECT {_COLS} FROM read_parquet($p)"
            )
            group_rows = SIDE_ROW_GROUP if set_ in SIDE_SETS else ROW_GROUP
            run_sql(
                con,
                f"COPY ({select}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {group_rows}, ROW_GROUP_SIZE_BYTES '16MB')",
                {"p": paths},
                fetch=False,
                base_mb=MERGE_MEMORY_MB,
            )
        finally:
            con.execute("SET preserve_insertion_order=true")
            con.execute("RESET threads")
            con.execute(f"SET memory_limit='{STORE_MEMORY_MB}MB'")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        names = {f["name"] for f in old}
        doc["files"] = [f for f in doc["files"] if f["name"] not in names]
        doc["files"].append(
            {
                "name": rel,
                "day": day,
                "rows": sum(int(f["rows"]) for f in old),
                "min_ts": min(f["min_ts"] for f in old),
                "max_ts": max(f["max_ts"] for f in old),
                "level": level,
                "set": set_,
                **(
                    {"min_id": min(f["min_id"] for f in old), "max_id": max(f["max_id"] for f in old)}
                    if all("min_id" in f for f in old)
                    else {}
                ),
            }
        )

    def _compact_at(self, set_: str) -> int:
        """Files of one level that trigger a merge. The side set and the rollup are ~5% and
        ~0.1% of the rows: merging them early is cheap and keeps the files a query opens
        few."""
        return self.compact_at if set_ == "events" else min(self.compact_at, SMALL_SET_COMPACT_AT)

    def _maybe_compact(self, doc: dict[str, Any]) -> None:
        """Merge a day's files level by level (log-structured): ``compact_at`` files of
        level n become one file of level n+1, so a row is rewritten O(log n) times, not
        on every compaction."""
        changed = False
        while True:
            groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
            for f in doc["files"]:
                groups.setdefault((f.get("set", "events"), f["day"], int(f.get("level", 0))), []).append(f)
            todo = [(k, v) for k, v in groups.items() if len(v) >= self._compact_at(k[0])]
            if not todo:
                break
            for (_set, day, level), old in todo:
                names = {f["name"] for f in old}
                try:
                    self._merge_files(doc, day, old, level + 1)
                except duckdb.Error:
                    # compaction is an optimisation: the batch is already stored, so a
                    # failed merge leaves the files as they are rather than failing the write
                    return
                now = time.time()
                doc.setdefault("retired", []).extend({"name": n, "at": now} for n in sorted(names))
                changed = True
        if changed:
            self._save_manifest(doc)
        self._sweep(doc)

    def _sweep(self, doc: dict[str, Any]) -> None:
        """Unlink compacted-away files once no reader can still be using them."""
        retired = doc.get("retired", [])
        if not retired:
            return
        now = time.time()
        keep = []
        for r in retired:
            if now - r["at"] > GRACE_SECONDS:
                try:
                    (self.path / r["name"]).unlink()
                except FileNotFoundError:
                    pass
            else:
                keep.append(r)
        if len(keep) != len(retired):
            doc["retired"] = keep
            self._save_manifest(doc)

    def compact(self) -> None:
        """Merge every day partition into one file (e.g. after a bulk load)."""
        with self._writer():
            doc = self._load_manifest()
            days: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for f in doc["files"]:
                days.setdefault((f.get("set", "events"), f["day"]), []).append(f)
            for (_set, day), old in days.items():
                if len(old) < 2:
                    continue
                names = {f["name"] for f in old}
                self._merge_files(doc, day, old, max(int(f.get("level", 0)) for f in old) + 1)
                now = time.time()
                doc.setdefault("retired", []).extend({"name": n, "at": now} for n in sorted(names))
            self._save_manifest(doc)

    # -- read ------------------------------------------------------------------------
    def _where(self, q: Query) -> tuple[str, dict[str, Any]]:
        conds: list[str] = []
        params: dict[str, Any] = {}
        if q.since is not None:
            conds.append("timestamp >= $since")
            params["since"] = q.since
        if q.until is not None:
            conds.append("timestamp < $until")
            params["until"] = q.until
        if q.repo is not None:
            if "[" in q.repo:
                # character classes: match the (few) distinct names with fnmatch itself
                names = self._repos_matching(q.repo)
                keys = []
                for i, name in enumerate(names):
                    params[f"repo_{i}"] = name
                    keys.append(f"$repo_{i}")
                conds.append(f"repository IN ({', '.join(keys)})" if keys else "FALSE")
            else:
                # LIKE is much cheaper than a regex per row, and means the same for * and ?
                conds.append("repository LIKE $repo ESCAPE '\\'")
                params["repo"] = glob_to_like(q.repo)
        if q.user is not None:
            conds.append('"user" = $user')
            params["user"] = q.user
        if q.client_ip is not None:
            conds.append("client_ip = $client_ip")
            params["client_ip"] = q.client_ip
        if q.outcome is not None:
            conds.append("outcome = $outcome")
            params["outcome"] = q.outcome
        for name, col in (("actions", "action"), ("tallies", "tally"), ("auth", "auth"), ("sources", "source")):
            values = getattr(q, name)
            if values is not None:
                if not values:
                    conds.append("FALSE")
                    continue
                keys = []
                for i, v in enumerate(sorted(values)):
                    params[f"{name}_{i}"] = v
                    keys.append(f"${name}_{i}")
                conds.append(f'"{col}" IN ({", ".join(keys)})')
        return (" WHERE " + " AND ".join(conds)) if conds else "", params

    def _repos_matching(self, glob: str) -> list[str]:
        import fnmatch

        doc = self._load_manifest()
        files = self._files(doc)
        if not files:
            return []
        rows = self._run("SELECT DISTINCT repository FROM read_parquet($files) WHERE repository IS NOT NULL", {"files": files})
        return sorted(r for r in rows.column("repository").to_pylist() if fnmatch.fnmatchcase(r, glob))

    def search(self, query: Query) -> list[Event]:
        doc = self._load_manifest()
        set_ = self._set_for(doc, query)
        files = self._files(doc, query.since, query.until, set_)
        if not files:
            return []
        where, params = self._where(query)
        order = "DESC" if query.newest_first else "ASC"
        limit = f" LIMIT {int(query.limit)}" if query.limit is not None else ""
        params["files"] = files
        one_pass = f"SELECT {_COLS} FROM read_parquet($files){where} ORDER BY timestamp {order}, id {order}{limit}"
        if query.limit is None or query.limit > TWO_PASS_LIMIT:
            return rows_to_events(self._run(one_pass, params, set_))
        # "The newest N": two passes. First find the N rows, reading only the filtered
        # and ordering columns; then read the whole rows of just those, file by file.
        # In one pass the top-N sort carried every column (raw lines above all) of every
        # candidate row (newest 100 deletes at 10M: 114 -> 48 ms). Without a small limit
        # the second pass costs more than it saves, so the search stays one pass.
        hits = self._run(
            f"SELECT filename, file_row_number FROM read_parquet($files, filename = true, file_row_number = true)"
            f"{where} ORDER BY timestamp {order}, id {order}{limit}",
            params,
            set_,
        )
        if hits.num_rows == 0:
            return []
        try:
            table = self._fetch_rows(hits)
        except duckdb.IOException:
            # a file was retired between the passes: one pass, with a fresh manifest
            table = self._run(one_pass, params, set_)
        direction = "descending" if query.newest_first else "ascending"
        return rows_to_events(table.sort_by([("timestamp", direction), ("id", direction)]))

    def _fetch_rows(self, hits: pa.Table) -> pa.Table:
        """The whole rows at (filename, file_row_number) ``hits``."""
        names = hits["filename"].to_pylist()
        numbers = hits["file_row_number"].to_pylist()
        by_file: dict[str, list[int]] = {}
        for name, n in zip(names, numbers):
            by_file.setdefault(name, []).append(n)
        con = self._con()
        parts = []
        for name, ns in by_file.items():
            parts.append(
                to_arrow(
                    con.execute(
                        f"SELECT {_COLS} FROM read_parquet($f, file_row_number = true) "
                        "WHERE file_row_number IN (SELECT unnest($ns))",
                        {"f": name, "ns": ns},
                    )
                )
            )
        return pa.concat_tables(parts)

    def _rollup_plan(
        self, doc: dict[str, Any], aggregation: Aggregation
    ) -> tuple[list[str], list[str], datetime, datetime] | None:
        """(rollup files of the whole days in range, event files of the partial days at
        its edges, start and end of the whole days), or None when the rollup cannot answer."""
        q = aggregation.query
        if tuple(doc.get("rollup", ())) != ROLLUP_DIMS:
            return None
        if q.user is not None or q.client_ip is not None or (q.repo is not None and "[" in q.repo) or q.limit is not None:
            return None
        if not set(aggregation.group_by) <= set(ROLLUP_DIMS) or self._set_for(doc, q) != "events":
            return None
        rfiles = [f for f in doc["files"] if f.get("set") == ROLLUP_SET]
        if not rfiles:
            return None
        # a rollup file's time range is whole days: from the start of its first to the end of its last
        first = datetime.fromtimestamp(min(f["min_ts"] for f in rfiles), tz=timezone.utc)
        last = datetime.fromtimestamp(max(f["max_ts"] for f in rfiles), tz=timezone.utc)
        lo = first if q.since is None else max(first, _ceil_day(q.since))
        hi = last if q.until is None else min(last, _floor_day(q.until))
        if hi <= lo:
            return None  # no whole day inside the range
        lo_day, hi_day = f"{lo.year:04d}-{lo.month:02d}-{lo.day:02d}", f"{hi.year:04d}-{hi.month:02d}-{hi.day:02d}"

        def whole(day: str) -> bool:
            return lo_day <= day < hi_day  # ISO dates with 4-digit years sort as they read

        rolls = [
            str(self.path / f["name"]) for f in rfiles if f["max_ts"] > lo.timestamp() and f["min_ts"] < hi.timestamp()
        ]
        edges = [
            p
            for f in doc["files"]
            if f.get("set", "events") == "events" and not whole(f["day"])
            for p in self._files({"files": [f]}, q.since, q.until)
        ]
        return rolls, edges, lo, hi

    def aggregate(self, aggregation: Aggregation) -> list[dict[str, Any]]:
        q = aggregation.query
        for g in aggregation.group_by:
            if g not in GROUPABLE:
                raise StoreError(f"cannot group by {g!r}")
        for attempt in range(3):
            doc = self._load_manifest()
            plan = self._rollup_plan(doc, aggregation)
            if plan is None:
                break
            try:
                return self._aggregate_rollup(aggregation, *plan)
            except duckdb.IOException as exc:
                # a compaction retired a file between our manifest read and the scan
                if attempt == 2:
                    raise StoreUnavailable(f"embedded store read failed: {exc}") from exc
            except duckdb.Error as exc:
                raise StoreError(f"embedded store query failed: {exc}") from exc
        set_ = self._set_for(doc, q)
        files = self._files(doc, q.since, q.until, set_)
        if not files:
            return []
        where, params = self._where(q)
        keys = ", ".join(f'"{g}"' for g in aggregation.group_by)
        select = (keys + ", ") if keys else ""
        group = f" GROUP BY {keys} ORDER BY {keys}" if keys else ""
        sql = (
            f"SELECT {select}CAST(coalesce(sum(repeat), 0) AS BIGINT) AS count, "
            f"CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes "
            f"FROM read_parquet($files){where}{group}"
        )
        params["files"] = files
        rows = self._run(sql, params, set_).to_pylist()
        return [r for r in rows if r["count"]]

    def _aggregate_rollup(
        self, aggregation: Aggregation, rolls: list[str], edges: list[str], lo: datetime, hi: datetime
    ) -> list[dict[str, Any]]:
        q = aggregation.query
        keys = ", ".join(f'"{g}"' for g in aggregation.group_by)
        select = (keys + ", ") if keys else ""
        group = f" GROUP BY {keys}" if keys else ""
        where, params = self._where(replace(q, since=None, until=None))
        parts = []
        if rolls:
            rwhere = (where + " AND " if where else " WHERE ") + "day >= $r_lo AND day < $r_hi"
            parts.append(f"SELECT {select}sum(count) AS count, sum(bytes) AS bytes FROM read_parquet($rolls, hive_partitioning = false){rwhere}{group}")
            params.update(rolls=rolls, r_lo=lo.date(), r_hi=hi.date())
        if edges:
            # the same filters, plus the time range, over the partial days (same names, same values)
            ewhere, eparams = self._where(q)
            ewhere = (ewhere + " AND " if ewhere else " WHERE ") + "NOT (timestamp >= $e_lo AND timestamp < $e_hi)"
            params.update(eparams, e_lo=lo, e_hi=hi, edges=edges)
            parts.append(
                f"SELECT {select}sum(repeat) AS count, sum(bytes) AS bytes FROM read_parquet($edges){ewhere}{group}"
            )
        if not parts:
            return []
        order = f" ORDER BY {keys}" if keys else ""
        sql = (
            f"SELECT {select}CAST(coalesce(sum(count), 0) AS BIGINT) AS count, "
            f"CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes FROM ({' UNION ALL '.join(parts)}){group}{order}"
        )
        rows = to_arrow(self._con().execute(sql, params)).to_pylist()
        return [r for r in rows if r["count"]]

    def count(self) -> int:
        doc = self._load_manifest()
        return sum(int(f["rows"]) for f in doc["files"] if f.get("set", "events") == "events")

    def _run(self, sql: str, params: dict[str, Any], set_: str = "events") -> pa.Table:
        for attempt in range(3):
            try:
                return to_arrow(self._con().execute(sql, params))
            except duckdb.IOException as exc:
                # a compaction retired a file between our manifest read and the scan
                if attempt == 2:
                    raise StoreUnavailable(f"embedded store read failed: {exc}") from exc
                params = dict(params)
                doc = self._load_manifest()
                params["files"] = self._files(doc, params.get("since"), params.get("until"), set_)
                if not params["files"]:
                    return pa.table({})
            except duckdb.Error as exc:
                raise StoreError(f"embedded store query failed: {exc}") from exc
        raise AssertionError("unreachable")

    def healthcheck(self) -> Health:
        if not os.access(self.path, os.W_OK):
            raise StoreUnavailable(
                f"store directory {str(self.path)!r} is not writable; fix its permissions or pass another --db"
            )
        doc = self._load_manifest()
        missing = [f["name"] for f in doc["files"] if not (self.path / f["name"]).exists()]
        if missing:
            raise StoreCorrupt(
                f"{len(missing)} file(s) listed in the manifest are missing, e.g. {missing[0]!r}; re-ingest into a new --db"
            )
        return Health(ok=True, detail=f"embedded store at {self.path}", events=self.count())

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- records ---------------------------------------------------------------------
    # Records (storage samples, capacity-action outcomes, report runs) live beside the
    # events, in a set of their own with its own manifest, so neither ever rewrites the
    # other's files:
    #
    #     records.json                         the live record files per kind (replaced atomically)
    #     records/<kind>/<uuid>.parquet        immutable: key, timestamp, data (JSON), seq
    #
    # A put appends one file per kind under the writer lock; ``seq`` grows with every
    # put, so when a (kind, key) is in several files the highest seq is the live one.
    # Every RECORD_COMPACT_AT files of one level are merged into one file of the next
    # level, keeping only the newest version of each key; a read takes the newest
    # version over the (few) files of the kind.

    @property
    def _records_manifest_path(self) -> Path:
        return self.path / RECORDS_MANIFEST

    def _load_records_manifest(self) -> dict[str, Any]:
        try:
            with open(self._records_manifest_path, encoding="utf-8") as fh:
                doc: dict[str, Any] = json.load(fh)
        except FileNotFoundError:
            return {"version": RECORDS_VERSION, "seq": 0, "kinds": {}, "retired": []}
        except (OSError, ValueError) as exc:
            raise StoreCorrupt(
                f"cannot read {str(self._records_manifest_path)!r}: {exc}; restore it from backup "
                "(the events are not affected)"
            ) from exc
        if doc.get("version") != RECORDS_VERSION:
            raise StoreCorrupt(
                f"records manifest version {doc.get('version')!r} is not {RECORDS_VERSION}; use a matching regwatch"
            )
        return doc

    def _save_records_manifest(self, doc: dict[str, Any]) -> None:
        # the same discipline as manifest.json: write aside, fsync, rename over, fsync the directory
        tmp = self.path / f".records.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._records_manifest_path)
        dfd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _write_records_file(self, kind: str, table: pa.Table, level: int) -> dict[str, Any]:
        folder = self.path / "records" / kind
        folder.mkdir(parents=True, exist_ok=True)
        name = f"records/{kind}/{uuid.uuid4().hex}.parquet"
        tmp = self.path / f"{name}.tmp"
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / name)
        ts = table["timestamp"]
        lo, hi = (v.value / 1e6 for v in pc.min_max(ts).values())  # epoch micros -> seconds
        return {"name": name, "rows": table.num_rows, "level": level, "min_ts": lo, "max_ts": hi}

    def put_records(self, records: Sequence[Record]) -> int:
        """Store records; the same (kind, key) again replaces it. Nothing is written
        when one record is bad (StoreError names it)."""
        if not records:
            return 0
        for rec in records:
            why = check_record(rec)
            if why is not None:
                raise StoreError(why)
        by_kind: dict[str, dict[str, Record]] = {}
        for rec in records:
            by_kind.setdefault(rec.kind, {})[rec.key] = rec  # the last one in the batch wins
        try:
            bodies = {
                kind: [_json_dumps(dict(r.data)) for r in recs.values()] for kind, recs in by_kind.items()
            }
        except (TypeError, ValueError) as exc:
            raise StoreError(f"record data is not JSON-able: {exc}") from exc
        written = 0
        with self._writer():
            doc = self._load_records_manifest()
            for kind, recs in by_kind.items():
                seq = int(doc.get("seq", 0)) + 1
                doc["seq"] = seq
                table = pa.table(
                    {
                        "key": pa.array(list(recs), pa.string()),
                        "timestamp": pa.array([r.timestamp for r in recs.values()], pa.timestamp("us", tz="UTC")),
                        "data": pa.array(bodies[kind], pa.string()),
                        "seq": pa.array([seq] * len(recs), pa.int64()),
                    },
                    schema=RECORD_SCHEMA,
                ).sort_by([("timestamp", "ascending"), ("key", "ascending")])
                try:
                    entry = self._write_records_file(kind, table, 0)
                except OSError as exc:
                    raise StoreUnavailable(
                        f"cannot write records under {str(self.path)!r}: {exc.strerror}; free space or fix permissions"
                    ) from exc
                doc.setdefault("kinds", {}).setdefault(kind, []).append(entry)
                written += table.num_rows
            self._save_records_manifest(doc)
            self._compact_records(doc)
        return written

    def _compact_records(self, doc: dict[str, Any]) -> None:
        """Merge RECORD_COMPACT_AT files of a level into one of the next (newest version
        of each key only). An optimisation: a failure leaves the files as they are."""
        changed = False
        for kind, files in doc.get("kinds", {}).items():
            while True:
                levels: dict[int, list[dict[str, Any]]] = {}
                for f in files:
                    levels.setdefault(int(f.get("level", 0)), []).append(f)
                full = [(lvl, fs) for lvl, fs in sorted(levels.items()) if len(fs) >= RECORD_COMPACT_AT]
                if not full:
                    break
                level, old = full[0]
                paths = [str(self.path / f["name"]) for f in old]
                try:
                    merged = to_arrow(
                        self._con().execute(
                            "SELECT key, timestamp, data, seq FROM read_parquet($files) "
                            "QUALIFY row_number() OVER (PARTITION BY key ORDER BY seq DESC) = 1 "
                            "ORDER BY timestamp, key",
                            {"files": paths},
                        )
                    ).cast(RECORD_SCHEMA)
                    entry = self._write_records_file(kind, merged, level + 1)
                except (duckdb.Error, OSError):
                    return
                names = {f["name"] for f in old}
                files[:] = [f for f in files if f["name"] not in names] + [entry]
                now = time.time()
                doc.setdefault("retired", []).extend({"name": n, "at": now} for n in sorted(names))
                changed = True
        retired = doc.get("retired", [])
        now = time.time()
        keep = []
        for r in retired:
            if now - r["at"] > GRACE_SECONDS:
                try:
                    (self.path / r["name"]).unlink()
                except FileNotFoundError:
                    pass
                changed = True
            else:
                keep.append(r)
        doc["retired"] = keep
        if changed:
            self._save_records_manifest(doc)

    def get_records(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        key_prefix: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Record]:
        """Records of ``kind`` with since <= timestamp < until, ordered by (timestamp,
        key) or reversed, at most ``limit``."""
        if not RECORD_KIND.fullmatch(kind):
            raise StoreError(f"record kind {kind!r} is not lower-case letters and '_' (e.g. 'storage_sample')")
        if limit is not None and limit <= 0:
            return []
        for attempt in range(3):
            files = [str(self.path / f["name"]) for f in self._load_records_manifest().get("kinds", {}).get(kind, [])]
            if not files:
                return []
            params: dict[str, Any] = {"files": files}
            inner = ["TRUE"]
            if key_prefix is not None:
                inner.append("starts_with(key, $prefix)")
                params["prefix"] = key_prefix
            outer = ["TRUE"]
            if since is not None:
                outer.append("timestamp >= $since")
                params["since"] = since
            if until is not None:
                outer.append("timestamp < $until")
                params["until"] = until
            order = "DESC" if newest_first else "ASC"
            lim = f" LIMIT {int(limit)}" if limit is not None else ""
            # one file has one version per key (a put or a merge keeps only the newest)
            dedup = "" if len(files) == 1 else " QUALIFY row_number() OVER (PARTITION BY key ORDER BY seq DESC) = 1"
            sql = (
                f"SELECT key, epoch_us(timestamp) AS us, data FROM ("
                f"SELECT key, timestamp, data FROM read_parquet($files) WHERE {' AND '.join(inner)}{dedup}) "
                f"WHERE {' AND '.join(outer)} ORDER BY timestamp {order}, key {order}{lim}"
            )
            try:
                table = to_arrow(self._con().execute(sql, params))
                break
            except duckdb.IOException as exc:
                # a merge retired a file between our manifest read and the scan
                if attempt == 2:
                    raise StoreUnavailable(f"embedded store read of records failed: {exc}") from exc
            except duckdb.Error as exc:
                raise StoreError(f"embedded store records query failed: {exc}") from exc
        keys = table["key"].to_pylist()
        micros = table["us"].to_pylist()
        datas = table["data"].to_pylist()
        loads = _json_loads
        return [
            Record(kind, k, _EPOCH + timedelta(microseconds=us), loads(d)) for k, us, d in zip(keys, micros, datas)
        ]


# -- records (module level) ----------------------------------------------------------
RECORDS_MANIFEST = "records.json"
RECORDS_VERSION = 1
RECORD_COMPACT_AT = 8  # record files per kind and level before they are merged
RECORD_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("data", pa.string()),
        pa.field("seq", pa.int64()),
    ]
)

try:  # optional: several times quicker for the ~100k samples of a 90-day history
    import orjson as _orjson

    def _json_dumps(value: Any) -> str:
        return _orjson.dumps(value).decode()

    _json_loads: Any = _orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency of the service extra

    def _json_dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)

    _json_loads = json.loads
