"""read → parse → correlate → batch → Store.write → Checkpoint.commit.

The checkpoint moves only after the store has accepted every event before the
committed offset; the correlator says which offset that is (it may still hold the app
lines of a request whose access line has not been read yet).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute

from regwatch import arrowkit, native
from regwatch.config import Config
from regwatch.correlate import OBS_SCHEMA, BlockCorrelator, DuckFolder, events_to_obs
from regwatch.errors import StoreUnavailable
from regwatch.events import Dropped, DropReason, Event, IngestStats, NoiseKind, RawLine
from regwatch.formats import host_calibration, make_parser
from regwatch.parsing import columnar, others
from regwatch.parsing.base import Parser
from regwatch.parsing.harbor import SyslogBlock, strip_syslog_block
from regwatch.parsing.wrappers import strip_block
from regwatch.quarantine import Quarantine
from regwatch.redact import redact
from regwatch.sources.blocks import Block, read_blocks
from regwatch.sources.checkpoint import FileCheckpoint
from regwatch.sources.files import MAX_JOIN, FileInfo, _open_quote, _record_start, expand, file_info, rotation_families
from regwatch.stores.base import Store, WriteResult

BATCH = 20_000
#: checkpoint meta key: fingerprint of the file holding the first line an ingest held at
#: its end → ids of the records it wrote from the held lines (the next ingest replaces them)
PROVISIONAL = "provisional"
MAX_PROVISIONAL = 50_000
# constant columns of fast-path rows, repeated in C rather than built as Python lists
_DISTRIBUTION = arrowkit.string_scalar("distribution")
_HARBOR = arrowkit.string_scalar("harbor")
_NONE = arrowkit.string_scalar("none")
_REGISTRY = arrowkit.string_scalar("registry")
_ONE = arrowkit.int64_scalar(1)
_NOISE = arrowkit.string_scalar("noise")
Progress = Callable[[int], None]  # called with bytes consumed since the last call
# REGWATCH_FASTPATH=0 sends every line to the per-line parser (docs/configuration.md):
# for measuring that path and checking it against the fast one. Read once, at import.
FASTPATH = os.environ.get("REGWATCH_FASTPATH", "1") != "0"


@dataclass
class IngestOptions:
    fmt: str | None = None
    from_start: bool = False
    batch_size: int = BATCH
    retries: int = 5
    backoff: float = 0.5


class _Writer:
    """Batches events into the store, with retry on StoreUnavailable."""

    def __init__(self, store: Store, stats: IngestStats, opts: IngestOptions, quarantine: Quarantine | None):
        self.store = store
        self.stats = stats
        self.opts = opts
        self.quarantine = quarantine
        self.buf: list[Event] = []
        self.tables: list[pa.Table] = []
        self.rows = 0
        self.drops: list[Dropped] = []
        # ids of records an earlier ingest wrote from lines it held at its end: built
        # again now, they replace the stored ones (Store.replace)
        self.replace_ids: set[str] = set()

    def add(self, events: Iterable[Event]) -> None:
        evs = list(events)
        self.buf.extend(evs)
        self.rows += len(evs)

    def add_table(self, table: pa.Table) -> None:
        self.tables.append(table)
        self.rows += table.num_rows

    def full(self) -> bool:
        return self.rows >= self.opts.batch_size

    def flush(self) -> None:
        if self.tables:
            tables, self.tables = self.tables, []
            table = pa.concat_tables(tables)
            if self.replace_ids and table.num_rows:
                table = self._replace(table)
            write_table = getattr(self.store, "write_table", None)
            if write_table is not None:
                self._write(lambda: write_table(table))
            else:
                from regwatch.stores.embedded import rows_to_events

                self.buf.extend(rows_to_events(table))
        self.rows = len(self.buf)
        if self.buf:
            batch, self.buf = self.buf, []
            self.rows = 0
            self._write(lambda: self.store.write(batch))
        if self.drops and self.quarantine is not None:
            self.quarantine.keep(self.drops)
        self.drops = []

    def _replace(self, table: pa.Table) -> pa.Table:
        """Write the rows whose id is in ``replace_ids`` as replacements; the rest."""
        if not hasattr(self.store, "replace_table") and not hasattr(self.store, "replace"):
            return table  # a store that cannot replace: the rows are written (as duplicates)
        mask = pyarrow.compute.is_in(table["id"], value_set=pa.array(sorted(self.replace_ids), pa.string()))
        rep = table.filter(mask)
        if not rep.num_rows:
            return table
        self.replace_ids -= set(rep["id"].to_pylist())
        replace_table = getattr(self.store, "replace_table", None)
        if replace_table is not None:
            self._write(lambda: replace_table(rep))
        else:
            from regwatch.stores.embedded import rows_to_events

            evs = rows_to_events(rep)
            self._write(lambda: self.store.replace(evs))
        return table.filter(pyarrow.compute.invert(mask))

    def _write(self, call: Callable[[], WriteResult]) -> None:
        delay = self.opts.backoff
        for attempt in range(self.opts.retries + 1):
            try:
                res = call()
                break
            except StoreUnavailable:
                if attempt == self.opts.retries:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.stats.events += res.written
        self.stats.duplicates += res.duplicates
        for ev, reason in res.rejected:
            self.stats.drop(DropReason.BAD_FIELD)
            self.drops.append(
                Dropped(DropReason.BAD_FIELD, ev.raw, ev.log_file or "", ev.log_offset or 0, f"store rejected: {reason}")
            )


def ingest(
    inputs: Sequence[str],
    store: Store,
    *,
    config: Config | None = None,
    options: IngestOptions | None = None,
    checkpoint: FileCheckpoint | None = None,
    quarantine: Quarantine | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> IngestStats:
    """Ingest files, directories and globs into ``store``.

    Raises InputError for an unreadable path and UnknownFormat for a bad format name,
    both before any line is read; StoreError if the store fails for good.
    """
    config = config or Config()
    opts = options or IngestOptions()
    make_parser(opts.fmt, config)  # validate the format name before any work
    files = expand(list(inputs))
    infos = [file_info(f) for f in files]
    stats = IngestStats()
    writer = _Writer(store, stats, opts, quarantine)
    # a store that can hold back its compaction until the run ends (the embedded one)
    bulk = getattr(store, "bulk", None)
    with bulk() if bulk is not None else contextlib.nullcontext():
        by_path = {i.path: i for i in infos}
        for family in rotation_families([i.path for i in infos]):
            _ingest_family([by_path[p] for p in family], writer, config, opts, checkpoint, progress, now)
        writer.flush()
    return stats


def total_bytes(inputs: Sequence[str]) -> int:
    try:
        return sum(file_info(f).size for f in expand(list(inputs)))
    except Exception:  # noqa: BLE001 - only for the progress bar
        return 0


def _ingest_family(
    infos: list[FileInfo],
    writer: _Writer,
    config: Config,
    opts: IngestOptions,
    checkpoint: FileCheckpoint | None,
    progress: Progress | None,
    now: datetime | None,
) -> None:
    """Ingest a rotation family (sources/files.py ``rotation_families``), oldest file
    first, as one stream: a request whose lines straddle a rotation is folded as if the
    log had never been cut, as the service does (docs/service.md)."""
    stats = writer.stats
    plan: list[tuple[FileInfo, int]] = []
    copies: list[FileInfo] = []
    for info in infos:
        stats.files += 1
        if info.size == 0:
            stats.drop(DropReason.EMPTY_FILE)
            writer.drops.append(Dropped(DropReason.EMPTY_FILE, "", info.path, 0, "empty file"))
            continue
        if _is_audit_export(info) and (opts.fmt in (None, "auto", "harbor-audit")):
            _ingest_audit_export(info, writer, progress)
            continue
        if any(i.fingerprint == info.fingerprint for i, _ in plan):
            copies.append(info)  # the same content twice (a copy beside its original)
            continue
        plan.append((info, _start_of(info, checkpoint, opts)))
    if plan:
        _ingest_stream(plan, writer, config, opts, checkpoint, progress)
    for info in copies:  # read on its own: its records have the original's ids
        _ingest_stream([(info, _start_of(info, checkpoint, opts))], writer, config, opts, checkpoint, progress)


def _start_of(info: FileInfo, checkpoint: FileCheckpoint | None, opts: IngestOptions) -> int:
    return 0 if (checkpoint is None or opts.from_start) else checkpoint.offset(info.fingerprint)


def safe_offsets(read: list[tuple[str, int, int]], held_at: tuple[str, int] | None) -> dict[str, int]:
    """fingerprint → offset up to which every line's records are final, for the files of
    one stream in reading order, each (fingerprint, where reading began, where it is now):
    up to the first line still held (``held_at``), and nothing of the files after it."""
    out: dict[str, int] = {}
    held_fp = None if held_at is None else held_at[0]
    seen_held = False
    for fp, start, end in read:
        if seen_held:
            out[fp] = start
        elif fp == held_fp:
            assert held_at is not None
            out[fp] = min(end, max(start, held_at[1]))
            seen_held = True
        else:
            out[fp] = end
    return out


def _ingest_stream(
    plan: list[tuple[FileInfo, int]],
    writer: _Writer,
    config: Config,
    opts: IngestOptions,
    checkpoint: FileCheckpoint | None,
    progress: Progress | None,
) -> None:
    """Read the files of ``plan`` (each from its start offset) through one block run."""
    stats = writer.stats
    first = plan[0][0]
    mtime = datetime.fromtimestamp(_mtime(first.path), tz=UTC)
    parser = make_parser(opts.fmt, config, fallback_ts=mtime, calibration=host_calibration(first.path))
    run = _BlockRun(first, parser, writer, use_fast=FASTPATH and opts.fmt in (None, "auto", "distribution"))
    # (fingerprint, start, end so far) of the files begun, in order
    read: list[list] = []  # [fingerprint, start, end]
    paths = {info.fingerprint: info.path for info, _ in plan}
    reported: dict[str, int] = {}

    def blocks() -> Iterator[Block]:
        # runs in the parse stage: the switch happens between the two files' blocks
        for info, start in plan:
            run.switch(info)
            yield from read_blocks(info, start)

    def commit() -> None:
        if checkpoint is not None and read:
            safe = safe_offsets([(fp, s, e) for fp, s, e in read], run.held_at)
            checkpoint.commit({fp: (paths[fp], off) for fp, off in safe.items()})

    provisional: dict[str, list[str]] = {}
    if checkpoint is not None:
        provisional = dict(checkpoint.meta().get(PROVISIONAL) or {})
        for info, _ in plan:
            writer.replace_ids.update(provisional.get(info.fingerprint, ()))
    gz = {info.fingerprint: info.gzip for info, _ in plan}
    starts = {info.fingerprint: start for info, start in plan}
    for parsed in _staged(blocks(), run):
        run.apply(parsed)
        fp = parsed.fingerprint
        if not read or read[-1][0] != fp:
            read.append([fp, starts[fp], starts[fp]])
            reported[fp] = starts[fp] if not gz[fp] else 0
        read[-1][2] = parsed.end
        if writer.full():
            writer.flush()
            commit()
        if progress is not None and not gz[fp]:
            progress(parsed.end - reported[fp])
            reported[fp] = parsed.end
    # lines whose request may still be completed by lines appended later are read again
    # next time; the records flushed now keep their ids then, so nothing counts twice
    # (the records the finish lets go come from those lines: what a later line may still
    # change, e.g. a pull a DELETE written after now makes a delete lookup; their ids are
    # kept, so that the next ingest, reading them again, replaces them)
    held = run.held_at
    before = len(writer.tables)
    run.finish()
    finished = [i for t in writer.tables[before:] if t.num_rows for i in t["id"].to_pylist() if i is not None]
    for k, v in getattr(parser, "wrappers", {}).items():
        stats.wrappers[k] = stats.wrappers.get(k, 0) + v
    writer.flush()
    stats.bytes_read += sum(max(0, e - s) for _, s, e in read)
    if checkpoint is not None and read:
        safe = safe_offsets([(fp, s, e) for fp, s, e in read], held)
        checkpoint.commit({fp: (paths[fp], off) for fp, off in safe.items()})
        kept = {fp: ids for fp, ids in provisional.items() if fp not in paths}
        if held is not None and finished and len(finished) <= MAX_PROVISIONAL:
            kept[held[0]] = finished
        if kept != provisional:
            checkpoint.set_meta(PROVISIONAL, kept)
    if progress is not None:
        for info, start in plan:
            r = next((x for x in read if x[0] == info.fingerprint), None)
            if info.gzip:
                progress(info.size)
            elif r is not None:
                progress(r[2] - reported[info.fingerprint])


@dataclass
class _Parsed:
    """One block after the parse stage."""

    end: int  # the offset just past the block's last line
    stats: IngestStats
    drops: list[Dropped]
    tables: list[pa.Table]  # the records now final, and the pass-through rows
    merged: int  # lines folded into records so far (a running total)
    held_at: tuple[str, int] | None  # (fingerprint, offset) of the first line the folder holds
    fingerprint: str = ""  # the file of this block


AHEAD = 4  # folded blocks the parse stage may hold ready (their records: ~1.5 MB each)


def _staged(blocks: Iterator[Block], run: _BlockRun, ahead: int | None = None) -> Iterator[_Parsed]:
    """Read, parse and fold blocks on a worker thread while the caller stores earlier
    ones. The native parser, zlib, DuckDB and the Parquet writer release the GIL, so the
    two stages use both cores. The worker may run up to ``ahead`` blocks ahead, so it
    keeps going while the caller writes a batch. Order is kept (one worker), and an
    error in the worker is raised here."""
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=max(1, AHEAD if ahead is None else ahead))
    stop = threading.Event()

    def work() -> None:
        try:
            for block in blocks:
                if stop.is_set():
                    return
                q.put(("ok", run.parse(block)))
            q.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            q.put(("err", exc))

    worker = threading.Thread(target=work, name="regwatch-parse", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "err":
                assert isinstance(item, BaseException)
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # let a worker blocked on a full queue see the stop
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


class _BlockRun:
    """Parses and correlates one file block by block."""

    def __init__(self, info: FileInfo, parser: Parser, writer: _Writer, *, use_fast: bool) -> None:
        self.info = info
        self.parser = parser
        self.writer = writer
        self.use_fast = use_fast
        # requests are folded in the parse stage, which leaves the caller's thread to the
        # store: natively, or by the DuckDB correlator when the library is not built
        self.native = native.available()
        self.folder: native.Folder | DuckFolder = (
            native.Folder(info.fingerprint) if self.native else DuckFolder(info.fingerprint)
        )
        self._parse_con: duckdb.DuckDBPyConnection | None = None
        # (fingerprint, offset) of the first line still held, in whichever file of the
        # run it is
        self.held_at: tuple[str, int] | None = None
        self.seq = 0
        self.merged_seen = 0
        self.tail_fast = False  # the last line read was the block parser's
        # the files this run read, in order: (seq of the first line, fingerprint); a
        # rotated family is one stream (:meth:`switch`)
        self.segments: list[tuple[int, str]] = [(0, info.fingerprint)]

    def switch(self, info: FileInfo) -> None:
        """Go on with the next file of the same stream (the next lineage of a rotated
        family): a request whose lines straddle the two files is folded as in one file.
        Ids of its lines are the new file's; lines still held keep their own. Call it in
        the parse stage, between the blocks of the two files."""
        if info.fingerprint != self.info.fingerprint:
            self.folder.set_fingerprint(info.fingerprint)
            if self.segments[-1][0] == self.seq:
                self.segments[-1] = (self.seq, info.fingerprint)
            else:
                self.segments.append((self.seq, info.fingerprint))
        self.info = info

    def _held(self) -> tuple[str, int] | None:
        segs = self.segments
        if len(segs) == 1:
            p = self.folder.pending_offset()
            return None if p is None else (segs[0][1], p)
        for i, (lo, fp) in enumerate(segs):
            hi = segs[i + 1][0] if i + 1 < len(segs) else 1 << 62
            p = self.folder.pending_in(lo, hi)
            if p is not None:
                return fp, p
        return None

    @property
    def _harbor(self) -> Any:
        """The auto parser's Harbor parser (None for any other parser)."""
        return getattr(self.parser, "harbor", None) if getattr(self.parser, "name", "") == "auto" else None

    @property
    def parse_con(self) -> duckdb.DuckDBPyConnection:
        # the parse stage has its own connection: it may run beside the correlation
        if self._parse_con is None:
            self._parse_con = BlockCorrelator.connect()
        return self._parse_con

    def parse(self, block: Block) -> _Parsed:
        """Stage one: parse a block into observation rows. It touches no shared state
        but the parser's own, so the next block's parse may run while the previous
        block is correlated and stored (see :func:`_staged`)."""
        stats = IngestStats()
        drops: list[Dropped] = []
        seq0 = self.seq
        n = len(block)
        self.seq += n
        fast_obs = None
        syslog: SyslogBlock | None = None
        # a block of CRI or docker --timestamps lines sheds the envelope in one pass, so
        # the block parser reads the registry's own lines (Kubernetes, docker logs)
        inner, wrapped, form = block.arrow, None, ""
        joiner = getattr(self.parser, "joiner", None)
        if self.use_fast and n and block.arrow is not None and not (joiner is not None and joiner.pending()):
            inner, wrapped, form = strip_block(block.arrow, block.texts[0])
            if form == "docker_json" and not self.native:  # the DuckDB path takes no nulls
                inner, wrapped, form = block.arrow, None, ""
            if not form and self.native and block.problems is None and self._harbor is not None:
                # Harbor's rsyslog files: the registry's lines are read by the block parser
                syslog = strip_syslog_block(block.arrow, block.texts[0])
                if syslog is not None:
                    inner, form = syslog.bodies, "syslog"
        if self.use_fast and n and self.native:
            # the native parser: the whole block, problem lines given as nulls (it leaves
            # them, and anything else it is unsure of, to the per-line parser)
            if inner is not None:
                arr = inner
            else:
                probs = block.problems
                arr = arrowkit.strings(
                    [None if probs is not None and probs[i] is not None else block.texts[i] for i in range(n)]
                )
            try:
                fast_obs, slow_seqs = native.fast_parse(arr, seq0)
                slow_idx = (arrowkit.int64_numpy(slow_seqs) - seq0).tolist()
            except native.NativeError:
                # never let the fast path cost data: the per-line parser takes the block
                fast_obs, slow_idx = None, list(range(n))
        elif self.use_fast and n:
            if inner is not None:
                lines = pa.table({"seq": _int64(np.arange(seq0, seq0 + n, dtype=np.int64)), "line": inner})
            else:
                idx = range(n) if block.problems is None else [i for i in range(n) if block.problems[i] is None]
                lines = pa.table(
                    {
                        "seq": pa.array([seq0 + i for i in idx], pa.int64()),
                        "line": pa.array([block.texts[i] for i in idx], pa.string()),
                    }
                )
            try:
                fast_obs, slow = columnar.fast_parse(self.parse_con, lines)
            except duckdb.Error:
                # never let the fast path cost data: the per-line parser takes the block
                fast_obs, slow = None, lines.select(["seq"])
            slow_idx = sorted(s - seq0 for s in slow.column("seq").to_pylist())
            if block.problems is not None:
                slow_idx = sorted(set(slow_idx) | {i for i in range(n) if block.problems[i] is not None})
        else:
            slow_idx = list(range(n))
        obs_parts = []
        if fast_obs is not None and fast_obs.num_rows:
            noise = fast_obs.filter(pa.compute.equal(fast_obs["kind"], _NOISE)).num_rows
            if noise:
                stats.drop(DropReason.NOISE, noise, NoiseKind.REGISTRY_APP.value)
            stats.lines += fast_obs.num_rows
            if wrapped is not None:
                taken = int(wrapped[arrowkit.int64_numpy(fast_obs["seq"]) - seq0].sum())
                if taken:
                    stats.wrappers[form] = stats.wrappers.get(form, 0) + taken
            keep = fast_obs.filter(pa.compute.not_equal(fast_obs["kind"], _NOISE))
            if keep.num_rows:
                obs_parts.append(self._fast_to_obs(keep, block, seq0, inner, syslog))
        slow_events = self._slow(block, seq0, slow_idx, fast_obs, stats, drops, syslog)
        if slow_events:
            obs_parts.append(events_to_obs(slow_events))
        obs = pa.concat_tables(obs_parts) if obs_parts else _empty_obs()
        if syslog is not None:
            inner = block.arrow  # a record's raw line is the whole syslog line
        lines = inner if inner is not None else arrowkit.strings(list(block.texts))
        recs, other = self.folder.run(obs, lines, block.offsets, seq0, last_seq=self.seq, final=False)
        # a folded block waits in the queue with its records only (up to AHEAD of them)
        return _Parsed(int(block.ends[-1]), stats, drops, [recs, other], self.folder.merged, self._held(), self.info.fingerprint)

    def apply(self, parsed: _Parsed) -> None:
        """Stage two: count, and hand the block's folded records to the writer."""
        self.writer.stats.merge(parsed.stats)
        self.writer.drops.extend(parsed.drops)
        self._add_folded(parsed.tables, parsed.merged)
        self.held_at = parsed.held_at

    def finish(self) -> None:
        recs, other = self.folder.run(_empty_obs(), None, [], self.seq, last_seq=self.seq, final=True)
        self._add_folded([recs, other], self.folder.merged)
        self.held_at = None

    def _add_folded(self, tables: list[pa.Table], merged_total: int) -> None:
        merged = merged_total - self.merged_seen
        self.merged_seen = merged_total
        if merged:
            self.writer.stats.drop(DropReason.MERGED, merged)
        for t in tables:
            if t.num_rows:
                self.writer.add_table(t)

    def _fast_to_obs(
        self, fo: pa.Table, block: Block, seq0: int, inner: pa.StringArray | None, syslog: SyslogBlock | None = None
    ) -> pa.Table:
        rows = arrowkit.int64_numpy(fo["seq"]) - seq0
        offs = np.asarray(block.offsets, dtype=np.int64)[rows]
        nrows = fo.num_rows
        tally = fo["tally"]
        auth = fo["auth"]
        source, host = pa.repeat(_DISTRIBUTION, nrows), pa.nulls(nrows, pa.string())
        if syslog is not None:
            # as HarborParser._registry: source harbor, the prefix's host, and behind
            # Harbor's own tags the proxy counts the request (count_from "proxy")
            take = arrowkit.int64s(rows)
            source = pa.repeat(_HARBOR, nrows)
            host = syslog.host.take(take)
            if self._harbor is not None and self._harbor.count_from == "proxy":
                behind = syslog.harbor.take(take)
                tally = pa.compute.if_else(behind, _NONE, tally.cast(pa.string()))
                auth = pa.compute.if_else(behind, _NONE, auth.cast(pa.string()))
            inner = None  # raw is the whole line
        # bytes_w is already the event's bytes (a completed upload: the size its _state gives)
        nbytes = fo["bytes_w"]
        cols = {
            "seq": fo["seq"],
            "kind": fo["kind"],
            "mclass": fo["mclass"].cast(pa.int32()),
            "id_seq": fo["seq"],
            "raw_seq": fo["seq"],
            "id": pa.nulls(nrows, pa.string()),
            "timestamp": fo["timestamp"].cast(pa.timestamp("us", tz="UTC")),
            "source": source,
            "component": pa.repeat(_REGISTRY, nrows),
            "action": fo["action"],
            "outcome": fo["outcome"],
            "tally": tally,
            "auth": auth,
            "repository": fo["repository"],
            "reference": fo["reference"],
            "digest": fo["digest"],
            "method": fo["method"],
            "path": fo["path"],
            "status": fo["status"].cast(pa.int64()),
            "bytes": nbytes.cast(pa.int64()),
            "duration_ms": fo["duration_ms"].cast(pa.float64()),
            "user": fo["user_v"],
            "client_ip": fo["client_ip"],
            "user_agent": fo["user_agent"],
            "request_id": fo["request_id"],
            "error_code": fo["error_code"],
            "level": fo["level"].cast(pa.string()),
            "message": fo["message"].cast(pa.string()),
            "host": host,
            "repeat": pa.repeat(_ONE, nrows),
            "raw": self._hinted_raw(fo, block, seq0, inner),
            "log_file": pa.repeat(arrowkit.string_scalar(self.info.path), nrows),
            "log_offset": _int64(offs),
        }
        return pa.table(cols).select([f.name for f in OBS_SCHEMA]).cast(OBS_SCHEMA)

    def _hinted_raw(self, fo: pa.Table, block: Block, seq0: int, inner: pa.StringArray | None) -> pa.Array:
        """The raw column of fast rows: empty (the folder fills in the line as it is) but
        for the few lines that may hold a secret, which are redacted here."""
        nrows = fo.num_rows
        hint = fo["secret_hint"]
        if not pa.compute.any(hint).as_py():
            return pa.nulls(nrows, pa.string())
        seqs = fo["seq"].to_pylist()
        values: list[str | None] = [None] * nrows
        for i, h in enumerate(hint.to_pylist()):
            if h is not False:
                k = seqs[i] - seq0
                values[i] = redact(inner[k].as_py() if inner is not None else block.texts[k])
        return arrowkit.strings(values)

    def _slow(
        self,
        block: Block,
        seq0: int,
        slow_idx: list[int],
        fast_obs: pa.Table | None,
        stats: IngestStats,
        drops: list[Dropped],
        syslog: SyslogBlock | None = None,
    ) -> list[tuple[int, Event]]:
        """The per-line parser over the lines the fast path left, with record joining."""
        info = self.info
        out: list[tuple[int, Event]] = []
        # (seq, epoch micros) of the fast rows with a time, in seq order: a slow line with
        # no year or zone of its own takes them from the latest line before it
        # (only events: the per-line parser's clock is the time of the last event it made,
        # so noise rows do not move it, and a later event moves it back as well as forward)
        fast_seq = fast_us = None
        dist = getattr(self.parser, "distribution", self.parser)
        # the registry lines the block parser took from a syslog block teach the Harbor
        # parser what reading them would have (the year, the host's offset): replayed in
        # line order before each per-line line, and the rest at the block's end
        replay: list[tuple[int, tuple[int, int, int, int, int], datetime | None]] = []
        harbor = self._harbor
        if syslog is not None and fast_obs is not None and fast_obs.num_rows and harbor is not None:
            seqs_l = fast_obs["seq"].to_pylist()
            kinds_l = fast_obs["kind"].cast(pa.string()).to_pylist()
            # times as epoch micros (a timestamp column's to_pylist would import pandas)
            us = pa.compute.cast(fast_obs["timestamp"], pa.int64())
            has_l = pa.compute.is_valid(us).to_pylist()
            us_l = arrowkit.int64_numpy(pa.compute.fill_null(us, arrowkit.int64_scalar(0))).tolist()
            rows_l = zip(seqs_l, kinds_l, has_l, us_l)
            if any(b < a for a, b in zip(seqs_l, seqs_l[1:])):
                rows_l = sorted(rows_l, key=lambda r: r[0])  # type: ignore[assignment]
            for q, k, h, u in rows_l:
                pre = syslog.prefix[q - seq0]
                if pre is not None:
                    t = arrowkit.EPOCH + timedelta(microseconds=u) if h and k != "noise" else None
                    replay.append((q, pre, t))
            fast_obs = None  # they are Harbor's lines: the Distribution parser's clock is not theirs
        r_at = 0

        def replay_to(q: int) -> None:
            nonlocal r_at
            end = r_at
            while end < len(replay) and replay[end][0] < q:
                end += 1
            for k in range(r_at, end):
                _, pre, ts = replay[k]
                if k + 1 < end and ts is not None and replay[k + 1][2] is not None and harbor.quiet_at(pre, replay[k + 1][1]):
                    continue  # the next record's body time sets all this one would
                harbor.saw_block_line(pre, ts)
            r_at = end

        if fast_obs is not None and fast_obs.num_rows:
            ts = fast_obs["timestamp"]
            has = pa.compute.and_(pa.compute.is_valid(ts), pa.compute.not_equal(fast_obs["kind"], _NOISE))
            seqs = arrowkit.int64_numpy(fast_obs["seq"].filter(has))
            micros = arrowkit.int64_numpy(pa.compute.cast(ts.filter(has), pa.int64()))
            order = np.argsort(seqs, kind="stable")
            fast_seq, fast_us = seqs[order], micros[order]
        last_event = -1  # seq of the last event the per-line parser made in this block
        pending: tuple[int, RawLine] | None = None
        joined = 0

        def emit(i: int, line: RawLine) -> None:
            stats.lines += 1
            if line.problem is not None:
                stats.drop(line.problem)
                drops.append(_dropped(line, line.problem))
                return
            nonlocal last_event
            if fast_seq is not None and fast_us is not None and len(fast_seq) and hasattr(dist, "last_ts"):
                k = int(np.searchsorted(fast_seq, seq0 + i, side="left")) - 1
                if k >= 0 and fast_seq[k] > last_event:
                    dist.last_ts = arrowkit.EPOCH + timedelta(microseconds=int(fast_us[k]))
            res = self.parser.parse(line)
            if isinstance(res, Dropped):
                stats.drop(res.reason, kind=res.kind)
                if not res.intentional:
                    drops.append(res)
                return
            last_event = seq0 + i
            out.append((seq0 + i, res))

        prev = -2
        texts, offsets, ends = _line_columns(block, len(slow_idx))
        # the block parser's lines are registry records, which end on their own line:
        # the per-line parser hears of them, so that no headless line after one is taken
        # for its continuation
        saw_record = getattr(self.parser, "saw_record", None)
        last_slow = -1  # the previous per-line index of this block (-1: none yet)
        for i in slow_idx:
            if saw_record is not None and (i > last_slow + 1 if last_slow >= 0 else (i > 0 or self.tail_fast)):
                if pending is not None:
                    emit(pending[0], pending[1])
                    pending = None
                saw_record()
            last_slow = i
            if replay:
                if pending is not None and replay_to_needed(replay, r_at, seq0 + i):
                    emit(pending[0], pending[1])
                    pending = None
                replay_to(seq0 + i)
            problem = block.problems[i] if block.problems is not None else None
            text = texts[i]
            line = RawLine(info.path, info.path, text, info.fingerprint, offsets[i], ends[i], problem)
            if pending is not None:
                pi, pl = pending
                if problem is None and i == prev + 1 and joined < MAX_JOIN and _continues(pl.text, text):
                    pending = (pi, RawLine(pl.source, pl.path, pl.text + "\n" + text, pl.fingerprint, pl.offset, line.end))
                    joined += 1
                    prev = i
                    continue
                emit(pi, pending[1])
                pending = None
            if problem is None and _may_continue(text):
                pending = (i, line)
                joined = 0
            else:
                emit(i, line)
            prev = i
        if pending is not None:
            emit(pending[0], pending[1])
        if replay:
            replay_to(1 << 62)
        if len(block):
            self.tail_fast = not slow_idx or slow_idx[-1] != len(block) - 1
        # the next block starts from the block's last event, fast or not
        if fast_seq is not None and fast_us is not None and len(fast_seq) and fast_seq[-1] > last_event and hasattr(dist, "last_ts"):
            dist.last_ts = arrowkit.EPOCH + timedelta(microseconds=int(fast_us[-1]))
        return out


def replay_to_needed(replay: list, at: int, q: int) -> bool:
    """Whether replayed lines lie before seq ``q`` (a held record must be read first)."""
    return at < len(replay) and replay[at][0] < q


def _line_columns(block: Block, wanted: int) -> tuple[Sequence[str], Sequence[int], Sequence[int]]:
    """A block's texts, offsets and ends as Python lists for the per-line loop: one
    conversion per block rather than one Arrow or numpy scalar per line (texts only when
    more than a few of the block's lines are wanted)."""
    texts = block.texts
    if block.arrow is not None and wanted * 8 > len(block):
        texts = block.arrow.to_pylist()
    offsets = block.offsets.tolist() if isinstance(block.offsets, np.ndarray) else [int(x) for x in block.offsets]
    ends = block.ends.tolist() if isinstance(block.ends, np.ndarray) else [int(x) for x in block.ends]
    return texts, offsets, ends


# a Harbor logger record on its own stream (a job log, a component's stdout): the Go stack
# trace printed after it belongs to it, and stays one record with it
_HARBOR_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d) \[[A-Z]+\]")


def _may_continue(text: str) -> bool:
    """A record that the next physical lines may continue."""
    return _open_quote(text) or (text[:1].isdigit() and _HARBOR_RECORD.match(text) is not None)


def _continues(record: str, text: str) -> bool:
    """Whether physical line ``text`` continues ``record`` (the lines joined so far)."""
    if _record_start(text):
        return False
    if record.startswith('time="'):
        return _open_quote(record)  # a raw newline inside a logrus value
    return others.STACK.match(text) is not None  # frames of a stack trace


def _empty_obs() -> pa.Table:
    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in OBS_SCHEMA], schema=OBS_SCHEMA)



def _int64(values: np.ndarray) -> pa.Array:
    """A numpy int64 array as Arrow, without a copy (and without ``pa.array``, which
    imports pandas to check its argument: tens of MB of memory the ingest does not need)."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def _dropped(line: RawLine, reason: DropReason) -> Dropped:
    return Dropped(reason, line.text, line.path, line.offset, "", line.fingerprint)


def _mtime(path: str) -> float:
    import os

    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def _is_audit_export(info: FileInfo) -> bool:
    name = info.path.lower()
    name = name.removesuffix(".gz")
    if not name.endswith((".json", ".jsonl", ".csv", ".tsv")):
        return False
    try:
        from regwatch.parsing import harbor_audit
    except ImportError:
        return False
    import gzip

    try:
        opener = gzip.open if info.gzip else open
        with opener(info.path, "rb") as fh:  # type: ignore[operator]
            head = fh.read(4096)
    except (OSError, EOFError):
        return False
    return bool(harbor_audit.sniff_file(head, info.path))


def _ingest_audit_export(info: FileInfo, writer: _Writer, progress: Progress | None) -> None:
    from regwatch.parsing import harbor_audit

    stats = writer.stats
    for out in harbor_audit.parse_file(info.path, info.fingerprint):
        stats.lines += 1
        if isinstance(out, Dropped):
            stats.drop(out.reason, kind=out.kind)
            if not out.intentional:
                writer.drops.append(out)
            continue
        writer.add([out])
        if writer.full():
            writer.flush()
    writer.flush()
    stats.bytes_read += info.size
    if progress is not None:
        progress(info.size)
