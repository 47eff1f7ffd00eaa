"""The streaming entry point of the pipeline: the service feeds it the tailer's chunks.

One :class:`StreamIngestor` serves one ``sources:`` entry. Per lineage (a file content
with one fingerprint, see docs/tailing.md) it keeps the same block machinery that
``regwatch ingest`` runs over a whole file (``pipeline._BlockRun``: the fast native
parse, the per-line parser, the request folder and correlator) alive from one chunk to
the next, so a request whose app lines arrive in one read and its access line in the
next is folded exactly as in one read. What the folder still holds (an app line waiting
for its access line, a pull that a DELETE may still turn into a delete lookup) is not
written; :meth:`safe_positions` stops before it, so the tailer's checkpoint never passes
a line whose records are not stored. After a restart the tailer re-reads from there and
a new folder rebuilds exactly the held state; event ids are the lineage fingerprint and
byte offset of the record's line, so records written before the restart keep their ids.

A lineage that has been quiet for ``idle_after`` seconds is *settled*: its folder is
finished as at the end of a file and its records are written, so the last request is
queryable without waiting for more lines. Settling must not change a count, so the
bytes the folder was holding are kept, and when the lineage goes on, the new folder
first reads them again (as after a restart; the records written at the settle come out
with the same ids and are duplicates). A request whose access line came after the settle
is then paired as in one read. A pull that a DELETE may still turn into a delete lookup
(``correlate.LOOKUP_WINDOW`` of log time) is not written at a settle: it waits, and the
checkpoint stays before it, until the lineage has been quiet for that long in seconds
too (or :meth:`settle` is called), and is rebuilt if the lineage goes on first.
Lineages are correlated separately: a request cut in two by a rotation is counted as
``regwatch ingest`` counts the two files (docs/service.md, "Limits").

Output that the store refused stays buffered, in order; :meth:`flush` retries it and
raises :class:`StoreUnavailable` while the store refuses. The caller stops feeding while
:meth:`buffered_rows` is above its bound (backpressure).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from regwatch.config import Config
from regwatch.correlate import LOOKUP_WINDOW
from regwatch.errors import StoreError, StoreUnavailable
from regwatch.events import Dropped, Event, IngestStats
from regwatch.formats import host_calibration, make_parser
from regwatch.parsing.timeparse import parse_clf, parse_rfc3339
from regwatch.pipeline import FASTPATH, _BlockRun
from regwatch.quarantine import Quarantine
from regwatch.sources.blocks import _split
from regwatch.sources.files import FileInfo
from regwatch.sources.tail import Chunk
from regwatch.stores.base import Store, WriteResult


class _Collector:
    """What ``_BlockRun`` hands its output to (the part of ``pipeline._Writer`` it uses)."""

    def __init__(self, stats: IngestStats) -> None:
        self.stats = stats
        self.tables: list[pa.Table] = []
        self.events: list[Event] = []
        self.drops: list[Dropped] = []

    def add_table(self, table: pa.Table) -> None:
        self.tables.append(table)

    def add(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def take(self) -> tuple[list[pa.Table], list[Event], list[Dropped]]:
        out = (self.tables, self.events, self.drops)
        self.tables, self.events, self.drops = [], [], []
        return out


@dataclass
class _Out:
    """Records ready for the store, and the offset that is safe once they are stored."""

    tables: list[pa.Table]
    events: list[Event]
    drops: list[Dropped]
    safe: int
    at: float = 0.0  # monotonic time it was queued

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables) + len(self.events)


@dataclass
class _Lineage:
    fingerprint: str
    path: str
    run: _BlockRun | None = None
    collector: _Collector | None = None
    end: int = 0  # offset just past the last byte fed
    last_feed: float = 0.0
    settled: bool = True  # no folder holds anything: the next chunk starts a new run
    safe: int | None = None  # stored up to here
    out: list[_Out] = field(default_factory=list)
    # the chunks (or their tails) from the folder's first held line on, as fed: what a
    # new folder reads first when the lineage goes on after a settle
    tail: list[tuple[int, bytes]] = field(default_factory=list)
    refeed: list[tuple[int, bytes]] | None = None
    held: list[pa.Table] = field(default_factory=list)  # pulls a DELETE may still claim
    written_at_settle: set[str] = field(default_factory=set)  # ids a re-read must not write again
    skip_until: int = 0  # offset up to which the re-read's records are checked against them
    behind: bool = False  # settled with a tail: the checkpoint waits at its start for a while
    wrappers_seen: dict[str, int] = field(default_factory=dict)


class StreamIngestor:
    """See the module docstring. ``now`` arguments are monotonic seconds."""

    def __init__(
        self,
        store: Store,
        *,
        config: Config | None = None,
        fmt: str | None = None,
        quarantine: Quarantine | None = None,
        stats: IngestStats | None = None,
        idle_after: float = 1.0,
        on_written: Callable[[pa.Table], None] | None = None,
        write_every: float = 0.0,
        write_rows: int = 50_000,
    ) -> None:
        self.store = store
        self.config = config or Config()
        self.fmt = fmt
        make_parser(fmt, self.config)  # a bad format name fails before any line is read
        self.quarantine = quarantine
        self.stats = stats if stats is not None else IngestStats()
        self.idle_after = idle_after
        self.on_written = on_written
        # coalescing: :meth:`flush` writes a lineage's queue once its oldest item has
        # waited ``write_every`` seconds or it holds ``write_rows`` rows, in one write
        # (the embedded store's cost is mostly per write: 5,000-line writes ingest at
        # about 70k lines/s, 20,000-line ones at about 118k)
        self.write_every = write_every
        self.write_rows = write_rows
        self._lineages: dict[str, _Lineage] = {}
        self._polled = float("-inf")  # monotonic time of the last feed() call

    # -- feeding ------------------------------------------------------------------------

    def _start_run(self, lin: _Lineage, path: str, start: int) -> None:
        info = FileInfo(path=path, fingerprint=lin.fingerprint, size=0, gzip=False)
        try:
            mtime = datetime.fromtimestamp(os.stat(path).st_mtime, tz=UTC)
        except OSError:
            mtime = None
        parser = make_parser(self.fmt, self.config, fallback_ts=mtime, calibration=host_calibration(path))
        dist = getattr(parser, "distribution", parser)
        if start > 0 and hasattr(dist, "last_ts"):
            # a run that starts inside the file (a restart, a re-read after a settle):
            # the lines with no time of their own (the TTY form, GC output) take the last
            # time written before them, as they would have in one read of the file
            before = _time_before(path, start)
            if before is not None:
                dist.last_ts = before
        lin.collector = _Collector(self.stats)
        lin.run = _BlockRun(info, parser, lin.collector, use_fast=FASTPATH and self.fmt in (None, "auto", "distribution"))  # type: ignore[arg-type]
        lin.settled = False

    def feed(self, chunks: Sequence[Chunk], now: float) -> None:
        """Parse and fold ``chunks`` (in the tailer's order); what is final is queued.
        Call it after every poll, also with no chunks: a lineage is idle only when polls
        made ``idle_after`` seconds after its last chunk found nothing new for it (a loop
        held up by a slow write must not take a busy lineage for a quiet one)."""
        self._polled = now
        for c in chunks:
            fp = str(c.fingerprint)
            lin = self._lineages.get(fp)
            if lin is None:
                lin = self._lineages[fp] = _Lineage(fp, c.path, end=c.start)
            if lin.run is not None and not lin.settled and c.start != lin.end:
                self._settle(lin)  # not a continuation (cannot happen with one tailer): start over
            if lin.settled or lin.run is None:
                refeed = lin.refeed if c.start == lin.end else None
                if refeed is None:
                    self._release(lin)
                self._start_run(lin, c.path, refeed[0][0] if refeed else c.start)
                if refeed:
                    self._refeed(lin, refeed, c.path)
            assert lin.run is not None and lin.collector is not None
            lin.path = c.path
            lin.last_feed = now
            data = c.data
            body = data[:-1] if data.endswith(b"\n") else data
            if not body and not data:
                continue
            block = _split(body, c.start)
            parsed = lin.run.parse(block)
            lin.run.apply(parsed)
            lin.end = c.end
            self.stats.bytes_read += c.end - c.start
            held = lin.run.pending
            safe = c.end if held is None else min(c.end, held)
            self._keep_tail(lin, c.start, data, held)
            self._queue(lin, safe)

    def _queue(self, lin: _Lineage, safe: int) -> None:
        assert lin.collector is not None
        tables, events, drops = lin.collector.take()
        if lin.written_at_settle:
            tables = _without(tables, lin.written_at_settle)
            pending = lin.run.pending if lin.run is not None else None
            if pending is None or pending >= lin.skip_until:
                lin.written_at_settle = set()
        lin.out.append(_Out(tables, events, drops, safe, self._polled))

    def _keep_tail(self, lin: _Lineage, start: int, data: bytes, held: int | None) -> None:
        """Keep the bytes from the folder's first held line (``held``) to the end."""
        if held is None or held >= start + len(data):
            lin.tail = []
            return
        lin.tail.append((start, data))
        while lin.tail and lin.tail[0][0] + len(lin.tail[0][1]) <= held:
            lin.tail.pop(0)
        if not lin.tail or lin.tail[0][0] > held:
            lin.tail = []  # the held line is no longer in hand: no re-read after a settle
            return
        s0, d0 = lin.tail[0]
        if s0 < held:
            lin.tail[0] = (held, d0[held - s0 :])
        if sum(len(d) for _, d in lin.tail) > TAIL_MAX:
            # a busy lineage whose folder holds many seconds of lines (pulls waiting for
            # a possible DELETE): too much to keep; a settle then writes as before
            lin.tail = []

    def _refeed(self, lin: _Lineage, chunks: list[tuple[int, bytes]], path: str) -> None:
        """Read again what the settled folder held, into the new one. Its records were
        written at the settle (the held pulls excepted): they come out with the same ids
        and are duplicates; the lines were counted then and are not counted again."""
        assert lin.run is not None and lin.collector is not None
        real = lin.collector.stats
        lin.collector.stats = IngestStats()
        try:
            for start, data in chunks:
                body = data[:-1] if data.endswith(b"\n") else data
                if not body and not data:
                    continue
                parsed = lin.run.parse(_split(body, start))
                lin.run.apply(parsed)
                self._keep_tail(lin, start, data, lin.run.pending)
        finally:
            lin.collector.stats = real
        tables, _events, _drops = lin.collector.take()  # the drops were kept at the first read
        # what the re-read finishes was written at the settle, but for the held pulls
        keep = pa.array(sorted({i for t in lin.held for i in t["id"].to_pylist()}), pa.string())
        tables = [t.filter(pc.is_in(t["id"], value_set=keep)) for t in tables if t.num_rows]
        held = lin.run.pending
        lin.out.append(_Out(tables, [], [], lin.end if held is None else min(lin.end, held), self._polled))
        lin.held = []  # rebuilt by the new folder
        lin.refeed = None
        lin.behind = False
        lin.skip_until = lin.end
        if held is None:
            lin.written_at_settle = set()
        lin.wrappers_seen = dict(getattr(lin.run.parser, "wrappers", {}))

    def _settle(self, lin: _Lineage, *, final: bool = True) -> None:
        """Finish the folder. Not ``final`` (a quiet lineage): keep what it held for a
        re-read, and hold back the pulls a DELETE may still make delete lookups."""
        if lin.run is None or lin.settled:
            if final:
                self._release(lin)
            return
        lin.run.finish()
        for k, v in getattr(lin.run.parser, "wrappers", {}).items():
            v -= lin.wrappers_seen.get(k, 0)
            if v:
                self.stats.wrappers[k] = self.stats.wrappers.get(k, 0) + v
        lin.wrappers_seen = {}
        assert lin.collector is not None
        if final or not lin.tail:
            self._queue(lin, lin.end)
            lin.refeed = None
            lin.held = []
            lin.behind = False
            lin.written_at_settle = set()
        else:
            # the records are written; the checkpoint stays at the first held line until
            # the lineage has been quiet for LOOKUP_WINDOW, so that a restart meanwhile
            # reads the held lines again, as the running service would (see _release)
            tables, events, drops = lin.collector.take()
            if lin.written_at_settle:
                tables = _without(tables, lin.written_at_settle)
            ready, held = _hold_pulls(tables)
            lin.out.append(_Out(ready, events, drops, lin.tail[0][0], self._polled))
            lin.held = held
            lin.behind = True
            lin.refeed = lin.tail
            lin.written_at_settle |= {i for t in ready if t.num_rows for i in t["id"].to_pylist()}
        lin.tail = []
        lin.settled = True
        lin.run = None

    def _release(self, lin: _Lineage) -> None:
        """Write the pulls held back at a settle (no DELETE came for them) and let the
        checkpoint pass the settled lines. The held bytes are kept in memory: should the
        lineage go on later, they are still read again first."""
        if lin.held or lin.behind:
            lin.out.append(_Out(lin.held, [], [], lin.end, self._polled))
            lin.held = []
            lin.behind = False

    def settle(self, fingerprints: Sequence[str] | None = None) -> None:
        """Finish the folders of these lineages (all by default) as at the end of a file."""
        for fp, lin in self._lineages.items():
            if fingerprints is None or fp in fingerprints:
                self._settle(lin)

    # -- writing ------------------------------------------------------------------------

    def flush(self, now: float) -> None:
        """Settle the lineages quiet for ``idle_after`` s, then write what is queued, in
        order. Raises StoreUnavailable (the queue is kept) while the store refuses."""
        for lin in self._lineages.values():
            quiet = self._polled - lin.last_feed
            if lin.run is not None and not lin.settled and quiet >= self.idle_after:
                self._settle(lin, final=False)
            if (lin.held or lin.behind) and quiet >= max(self.idle_after, LOOKUP_WINDOW.total_seconds()):
                self._release(lin)
        for lin in self._lineages.values():
            if not lin.out:
                continue
            if self.write_every > 0 and lin.run is not None and not lin.settled:
                waited = now - lin.out[0].at
                if waited < self.write_every and sum(o.rows for o in lin.out) < self.write_rows:
                    continue
            _coalesce(lin.out)
            while lin.out:
                item = lin.out[0]
                self._write(item)
                lin.out.pop(0)
                lin.safe = item.safe if lin.safe is None else max(lin.safe, item.safe)

    def _write(self, item: _Out) -> None:
        try:
            for t in item.tables:
                if not t.num_rows:
                    continue
                write_table = getattr(self.store, "write_table", None)
                if write_table is not None:
                    res: WriteResult = write_table(t)
                else:
                    from regwatch.stores.embedded import rows_to_events

                    res = self.store.write(rows_to_events(t))
                self._count(res, t)
            if item.events:
                res = self.store.write(item.events)
                self._count(res, None, item.events)
        except StoreUnavailable:
            raise
        except (StoreError, OSError) as exc:
            raise StoreUnavailable(f"the store refused a write: {exc}") from exc
        item.tables, item.events = [], []  # written: a retry after a later failure skips them
        if item.drops and self.quarantine is not None:
            self.quarantine.keep(item.drops)
        item.drops = []

    def _count(self, res: WriteResult, table: pa.Table | None, events: Sequence[Event] = ()) -> None:
        self.stats.events += res.written
        self.stats.duplicates += res.duplicates
        if self.on_written is None or not res.written:
            return
        if table is None:
            from regwatch.stores.embedded import events_to_table

            table = events_to_table(list(events))
        self.on_written(_accepted(table, res.written, res.accepted))

    # -- what the caller commits ----------------------------------------------------------

    def safe_positions(self) -> dict[str, int]:
        """fingerprint → offset before which every line's records are stored and nothing
        is held: what the caller passes to ``Tailer.commit``."""
        return {fp: lin.safe for fp, lin in self._lineages.items() if lin.safe is not None}

    def buffered_rows(self) -> int:
        return sum(o.rows for lin in self._lineages.values() for o in lin.out)

    def held(self) -> int:
        """Lineages whose folder holds lines that are not written yet."""
        return sum(
            1
            for lin in self._lineages.values()
            if lin.held or lin.behind or (lin.run is not None and not lin.settled and lin.run.pending is not None)
        )

    def forget(self, fingerprint: str) -> None:
        lin = self._lineages.get(fingerprint)
        if lin is not None and not lin.out and not lin.held and not lin.behind and (lin.settled or lin.run is None):
            del self._lineages[fingerprint]

    def close(self, now: float) -> None:
        """Write what is queued (held lines stay unwritten: the next start re-reads them
        from the checkpoint). Raises StoreUnavailable when the store refuses."""
        for lin in self._lineages.values():
            while lin.out:
                item = lin.out[0]
                self._write(item)
                lin.out.pop(0)
                lin.safe = item.safe if lin.safe is None else max(lin.safe, item.safe)


def _coalesce(out: list[_Out]) -> None:
    """Merge the queued items into one (tables of one schema concatenated), so that
    they go to the store in one write; the merged item is safe where the last one was."""
    if len(out) < 2:
        return
    by_schema: dict[pa.Schema, list[pa.Table]] = {}
    order: list[pa.Schema] = []
    for o in out:
        for t in o.tables:
            if not t.num_rows:
                continue
            key = t.schema
            if key not in by_schema:
                by_schema[key] = []
                order.append(key)
            by_schema[key].append(t)
    tables = [pa.concat_tables(by_schema[k]) for k in order]
    merged = _Out(
        tables,
        [e for o in out for e in o.events],
        [d for o in out for d in o.drops],
        max(o.safe for o in out),
        out[0].at,
    )
    out[:] = [merged]


def _without(tables: list[pa.Table], ids: set[str]) -> list[pa.Table]:
    """The rows whose id is not in ``ids``."""
    drop = pa.array(sorted(ids), pa.string())
    return [t.filter(pc.invert(pc.is_in(t["id"], value_set=drop))) for t in tables if t.num_rows]


_TIME_FIELD = re.compile(rb'(?:time="|"time":\s*")([0-9][^"]{9,40})"')
_CLF_TIME = re.compile(rb"\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]")
_LEAD_TIME = re.compile(rb"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[^ ]*)")
LOOK_BACK = 64 * 1024
#: most bytes kept per lineage to read again after a settle
TAIL_MAX = 4 * 1024 * 1024


def _time_before(path: str, offset: int) -> datetime | None:
    """The last absolute time written in the ``LOOK_BACK`` bytes before ``offset``: a
    logrus ``time=``, a JSON ``"time"``, an access line's ``[02/Jan/2006:15:04:05 -0700]``
    or a line-leading RFC 3339 time (CRI and ``docker --timestamps`` prefixes)."""
    try:
        with open(path, "rb") as fh:
            start = max(0, offset - LOOK_BACK)
            fh.seek(start)
            data = fh.read(offset - start)
    except OSError:
        return None
    for line in reversed(data.split(b"\n")):
        for rx, conv in ((_TIME_FIELD, parse_rfc3339), (_CLF_TIME, parse_clf), (_LEAD_TIME, parse_rfc3339)):
            m = rx.search(line)
            if m is not None:
                ts = conv(m.group(1).decode("ascii", "replace"))
                if ts is not None:
                    return ts
    return None


def _hold_pulls(tables: list[pa.Table]) -> tuple[list[pa.Table], list[pa.Table]]:
    """Split a finished folder's records: the pulls within LOOKUP_WINDOW of its newest
    record (a DELETE may still follow them), and the rest."""
    ts = [t["timestamp"] for t in tables if t.num_rows and "tally" in t.column_names]
    if not ts:
        return tables, []
    newest = max((v for v in (pc.max(c).as_py() for c in ts) if v is not None), default=None)
    if newest is None:
        return tables, []
    cut = pa.scalar(newest - LOOKUP_WINDOW, type=ts[0].type)
    ready: list[pa.Table] = []
    held: list[pa.Table] = []
    for t in tables:
        if not t.num_rows or "tally" not in t.column_names:
            ready.append(t)
            continue
        mask = pc.and_kleene(pc.equal(t["tally"], "pull"), pc.greater(t["timestamp"], cut))
        mask = pc.fill_null(mask, False)
        h = t.filter(mask)
        if h.num_rows:
            held.append(h)
            ready.append(t.filter(pc.invert(mask)))
        else:
            ready.append(t)
    return ready, held


def _accepted(table: pa.Table, written: int, accepted: Sequence[str] | None = None) -> pa.Table:
    """The rows of ``table`` that the store accepted as new, when it took ``written`` of
    them: ``on_written`` (the live metrics) must not count a replayed row twice.

    Both shipped stores say which ids they stored (``WriteResult.accepted``): those rows,
    each id once. A store that gives only the count falls back to the rule below.
    The count alone does not say which rows were new. A batch that repeats an id holds
    it once; when that accounts for every duplicate the rows are exact. Otherwise the
    duplicates are a replay after a restart: the previous process stored the lineage up
    to some line and the checkpoint had not moved yet, so the stored rows are the first
    ones, and ids sort by position in the lineage (``events.event_id``): the new rows are
    the ``written`` highest ids."""
    if written >= table.num_rows:
        return table
    import pyarrow.compute as pc

    if accepted is not None:
        rows = table.filter(pc.is_in(table["id"], value_set=pa.array(list(accepted), pa.string())))
        if rows.num_rows == len(accepted):
            return rows
        first = pa.table({"id": rows["id"], "_i": pa.array(range(rows.num_rows), pa.int64())}).group_by("id").aggregate([("_i", "min")])
        keep = first["_i_min"]
        return rows.take(pc.take(keep, pc.sort_indices(keep)))

    ids = table["id"]
    if pc.count_distinct(ids).as_py() != table.num_rows:
        first = pa.table({"id": ids, "_i": pa.array(range(table.num_rows), pa.int64())}).group_by("id").aggregate([("_i", "min")])
        keep = first["_i_min"]
        table = table.take(pc.take(keep, pc.sort_indices(keep)))
        if table.num_rows == written:
            return table
    order = pc.sort_indices(table, sort_keys=[("id", "ascending")])
    return table.take(order[table.num_rows - written:])


__all__ = ["StreamIngestor"]
