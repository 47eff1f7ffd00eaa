"""The streaming entry point of the pipeline: the service feeds it the tailer's chunks.

One :class:`StreamIngestor` serves one ``sources:`` entry. Per rotation *family* (the
lineages of one live path, oldest first; a lineage is a file content with one
fingerprint, see docs/tailing.md) it keeps the same block machinery that ``regwatch
ingest`` runs over a family of files (``pipeline._BlockRun``: the fast native parse,
the per-line parser, the request folder and correlator) alive from one chunk to the
next, so a request whose app lines arrive in one read and its access line in the next,
or in the next file after a rotation, is folded exactly as in one read. What the folder
still holds (an app line waiting for its access line, a pull that a DELETE may still
turn into a delete lookup) is not written; :meth:`safe_positions` stops before it (and
before every later lineage of the family), so the tailer's checkpoint never passes a
line whose records are not stored. After a restart the tailer re-reads from there and a
new folder rebuilds exactly the held state; event ids are the lineage fingerprint and
byte offset of the record's line, so records written before the restart keep their ids.

A family that has been quiet for ``idle_after`` seconds is *settled*: its folder is
finished as at the end of a file and its records are written, so the last request is
queryable without waiting for more lines. Settling must not change a count, so the
bytes the folder was holding are kept, and when the family goes on (in the same lineage
or, after a rotation, in the next one), the new folder first reads them again (as after
a restart; the records written at the settle come out with the same ids and are
duplicates). A request whose access line came after the settle is then paired as in one
read. A pull that a DELETE may still turn into a delete lookup
(``correlate.LOOKUP_WINDOW`` of log time) is not written at a settle: it waits, and the
checkpoint stays before it, until the family has been quiet for that long in seconds
too (or :meth:`settle` is called), and is rebuilt if the family goes on first.

Output that the store refused stays buffered, in order; :meth:`flush` retries it and
raises :class:`StoreUnavailable` while the store refuses. The caller stops feeding while
:meth:`buffered_rows` is above its bound (backpressure).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
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
from regwatch.pipeline import FASTPATH, _BlockRun, safe_offsets
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
    """Records ready for the store, and the offsets (fingerprint → offset) that are safe
    once they are stored."""

    tables: list[pa.Table]
    events: list[Event]
    drops: list[Dropped]
    safe: dict[str, int]
    at: float = 0.0  # monotonic time it was queued

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables) + len(self.events)


@dataclass
class _Lineage:
    fingerprint: str
    path: str
    family: str
    end: int = 0  # offset just past the last byte fed
    safe: int | None = None  # stored up to here


@dataclass
class _Family:
    """The lineages of one live path (the tailer reads them oldest first): one stream of
    lines, folded by one run, so a request cut by a rotation is folded as in one file."""

    key: str
    members: list[str] = field(default_factory=list)  # lineage fingerprints, in the order first fed
    order: dict[str, int] = field(default_factory=dict)  # fingerprint → its place in that order (kept after a forget)
    run: _BlockRun | None = None
    collector: _Collector | None = None
    cur: str = ""  # the lineage the run reads now
    read: list[list] = field(default_factory=list)  # [fingerprint, start, end] the run read, in order
    last_feed: float = 0.0
    settled: bool = True  # no folder holds anything: the next chunk starts a new run
    out: list[_Out] = field(default_factory=list)
    # the chunks (or their tails) from the folder's first held line on, as fed
    # (fingerprint, start, data): what a new folder reads first when the family goes on
    # after a settle
    tail: list[tuple[str, int, bytes]] = field(default_factory=list)
    refeed: list[tuple[str, int, bytes]] | None = None
    held: list[pa.Table] = field(default_factory=list)  # pulls a DELETE may still claim
    written_at_settle: set[str] = field(default_factory=set)  # ids a re-read must not write again
    skip_until: tuple[int, int] = (0, 0)  # position up to which the re-read's records are checked against them
    behind: bool = False  # settled with a tail: the checkpoint waits at its start for a while
    wrappers_seen: dict[str, int] = field(default_factory=dict)

    def add(self, fingerprint: str) -> None:
        if fingerprint not in self.order:
            self.order[fingerprint] = len(self.order)
        if fingerprint not in self.members:
            self.members.append(fingerprint)

    def pos(self, fingerprint: str, offset: int) -> tuple[int, int]:
        """A place in the family's stream, comparable across its lineages."""
        return (self.order[fingerprint], offset)


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
        # coalescing: :meth:`flush` writes a family's queue once its oldest item has
        # waited ``write_every`` seconds or it holds ``write_rows`` rows, in one write
        # (the embedded store's cost is mostly per write: 5,000-line writes ingest at
        # about 70k lines/s, 20,000-line ones at about 118k)
        self.write_every = write_every
        self.write_rows = write_rows
        self._lineages: dict[str, _Lineage] = {}
        self._families: dict[str, _Family] = {}
        self._polled = float("-inf")  # monotonic time of the last feed() call

    # -- feeding ------------------------------------------------------------------------

    def _start_run(self, fam: _Family, fp: str, start: int) -> None:
        path = self._lineages[fp].path
        info = FileInfo(path=path, fingerprint=fp, size=0, gzip=False)
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
        fam.collector = _Collector(self.stats)
        fam.run = _BlockRun(info, parser, fam.collector, use_fast=FASTPATH and self.fmt in (None, "auto", "distribution"))  # type: ignore[arg-type]
        fam.settled = False
        fam.cur = fp
        fam.read = [[fp, start, start]]

    def _switch(self, fam: _Family, fp: str, start: int) -> None:
        """The run goes on with the family's next lineage."""
        assert fam.run is not None
        fam.run.switch(FileInfo(path=self._lineages[fp].path, fingerprint=fp, size=0, gzip=False))
        fam.cur = fp
        fam.read.append([fp, start, start])

    def _fold(self, fam: _Family, fp: str, start: int, data: bytes) -> None:
        assert fam.run is not None
        body = data[:-1] if data.endswith(b"\n") else data
        if not body and not data:
            return
        parsed = fam.run.parse(_split(body, start))
        fam.run.apply(parsed)
        fam.read[-1][2] = start + len(data)

    def feed(self, chunks: Sequence[Chunk], now: float) -> None:
        """Parse and fold ``chunks`` (in the tailer's order); what is final is queued.
        Call it after every poll, also with no chunks: a family is idle only when polls
        made ``idle_after`` seconds after its last chunk found nothing new for it (a loop
        held up by a slow write must not take a busy family for a quiet one)."""
        self._polled = now
        for c in chunks:
            fp = str(c.fingerprint)
            key = c.family or fp
            fam = self._families.get(key)
            if fam is None:
                fam = self._families[key] = _Family(key)
            lin = self._lineages.get(fp)
            if lin is None:
                lin = self._lineages[fp] = _Lineage(fp, c.path, key, end=c.start)
            fam.add(fp)
            lin.path = c.path
            continuing = c.start == lin.end
            if fam.run is not None and not fam.settled:
                if not continuing or (fp != fam.cur and any(r[0] == fp for r in fam.read)):
                    self._settle(fam)  # not a continuation (cannot happen with one tailer): start over
                elif fp != fam.cur:
                    self._switch(fam, fp, c.start)
            if fam.settled or fam.run is None:
                refeed = fam.refeed if continuing else None
                if refeed is None:
                    self._release(fam)
                first_fp, first_start = (refeed[0][0], refeed[0][1]) if refeed else (fp, c.start)
                self._start_run(fam, first_fp, first_start)
                if refeed:
                    self._refeed(fam, refeed)
                if fam.cur != fp:
                    self._switch(fam, fp, c.start)
            assert fam.run is not None and fam.collector is not None
            fam.last_feed = now
            data = c.data
            if not data:
                continue
            self._fold(fam, fp, c.start, data)
            lin.end = c.end
            self.stats.bytes_read += c.end - c.start
            held = fam.run.held_at
            self._keep_tail(fam, fp, c.start, data, held)
            self._queue(fam, safe_offsets(fam.read, held))

    def _queue(self, fam: _Family, safe: dict[str, int]) -> None:
        assert fam.collector is not None
        tables, events, drops = fam.collector.take()
        if fam.written_at_settle:
            tables = _without(tables, fam.written_at_settle)
            held = fam.run.held_at if fam.run is not None else None
            if held is None or fam.pos(*held) >= fam.skip_until:
                fam.written_at_settle = set()
        fam.out.append(_Out(tables, events, drops, safe, self._polled))

    def _keep_tail(self, fam: _Family, fp: str, start: int, data: bytes, held: tuple[str, int] | None) -> None:
        """Keep the bytes from the folder's first held line (``held``) to the end."""
        if held is None or fam.pos(*held) >= fam.pos(fp, start + len(data)):
            fam.tail = []
            return
        hpos = fam.pos(*held)
        fam.tail.append((fp, start, data))
        while fam.tail and fam.pos(fam.tail[0][0], fam.tail[0][1] + len(fam.tail[0][2])) <= hpos:
            fam.tail.pop(0)
        if not fam.tail or fam.pos(fam.tail[0][0], fam.tail[0][1]) > hpos:
            fam.tail = []  # the held line is no longer in hand: no re-read after a settle
            return
        f0, s0, d0 = fam.tail[0]
        if f0 == held[0] and s0 < held[1]:
            fam.tail[0] = (f0, held[1], d0[held[1] - s0 :])
        if sum(len(d) for _, _, d in fam.tail) > TAIL_MAX:
            # a busy family whose folder holds many seconds of lines (pulls waiting for
            # a possible DELETE): too much to keep; a settle then writes as before
            fam.tail = []

    def _refeed(self, fam: _Family, chunks: list[tuple[str, int, bytes]]) -> None:
        """Read again what the settled folder held, into the new one. Its records were
        written at the settle (the held pulls excepted): they come out with the same ids
        and are duplicates; the lines were counted then and are not counted again."""
        assert fam.run is not None and fam.collector is not None
        real = fam.collector.stats
        fam.collector.stats = IngestStats()
        try:
            for fp, start, data in chunks:
                if fp != fam.cur:
                    self._switch(fam, fp, start)
                self._fold(fam, fp, start, data)
                self._keep_tail(fam, fp, start, data, fam.run.held_at)
        finally:
            fam.collector.stats = real
        tables, _events, _drops = fam.collector.take()  # the drops were kept at the first read
        # what the re-read finishes was written at the settle, but for the held pulls
        keep = pa.array(sorted({i for t in fam.held for i in t["id"].to_pylist()}), pa.string())
        tables = [t.filter(pc.is_in(t["id"], value_set=keep)) for t in tables if t.num_rows]
        held = fam.run.held_at
        fam.out.append(_Out(tables, [], [], safe_offsets(fam.read, held), self._polled))
        fam.held = []  # rebuilt by the new folder
        fam.refeed = None
        fam.behind = False
        fam.skip_until = fam.pos(fam.cur, fam.read[-1][2])
        if held is None:
            fam.written_at_settle = set()
        fam.wrappers_seen = dict(getattr(fam.run.parser, "wrappers", {}))

    def _ends(self, fam: _Family) -> dict[str, int]:
        return {fp: self._lineages[fp].end for fp in fam.members if fp in self._lineages}

    def _settle(self, fam: _Family, *, final: bool = True) -> None:
        """Finish the folder. Not ``final`` (a quiet family): keep what it held for a
        re-read, and hold back the pulls a DELETE may still make delete lookups."""
        if fam.run is None or fam.settled:
            if final:
                self._release(fam)
            return
        fam.run.finish()
        for k, v in getattr(fam.run.parser, "wrappers", {}).items():
            v -= fam.wrappers_seen.get(k, 0)
            if v:
                self.stats.wrappers[k] = self.stats.wrappers.get(k, 0) + v
        fam.wrappers_seen = {}
        assert fam.collector is not None
        if final or not fam.tail:
            self._queue(fam, {fp: e for fp, _, e in fam.read})
            fam.refeed = None
            fam.held = []
            fam.behind = False
            fam.written_at_settle = set()
        else:
            # the records are written; the checkpoint stays at the first held line until
            # the family has been quiet for LOOKUP_WINDOW, so that a restart meanwhile
            # reads the held lines again, as the running service would (see _release)
            tables, events, drops = fam.collector.take()
            if fam.written_at_settle:
                tables = _without(tables, fam.written_at_settle)
            ready, held = _hold_pulls(tables)
            first = (fam.tail[0][0], fam.tail[0][1])
            fam.out.append(_Out(ready, events, drops, safe_offsets(fam.read, first), self._polled))
            fam.held = held
            fam.behind = True
            fam.refeed = fam.tail
            fam.written_at_settle |= {i for t in ready if t.num_rows for i in t["id"].to_pylist()}
        fam.tail = []
        fam.settled = True
        fam.run = None

    def _release(self, fam: _Family) -> None:
        """Write the pulls held back at a settle (no DELETE came for them) and let the
        checkpoint pass the settled lines. The held bytes are kept in memory: should the
        family go on later, they are still read again first."""
        if fam.held or fam.behind:
            fam.out.append(_Out(fam.held, [], [], self._ends(fam), self._polled))
            fam.held = []
            fam.behind = False

    def settle(self, fingerprints: Sequence[str] | None = None) -> None:
        """Finish the folders (all by default) as at the end of a file. With
        ``fingerprints``: the folders that read only these lineages (a folder that also
        read another one of its family goes on)."""
        for fam in self._families.values():
            fps = [r[0] for r in fam.read] if fam.run is not None and not fam.settled else fam.members
            if fingerprints is None or all(fp in fingerprints for fp in fps):
                self._settle(fam)

    # -- writing ------------------------------------------------------------------------

    def flush(self, now: float) -> None:
        """Settle the families quiet for ``idle_after`` s, then write what is queued, in
        order. Raises StoreUnavailable (the queue is kept) while the store refuses."""
        for fam in self._families.values():
            quiet = self._polled - fam.last_feed
            if fam.run is not None and not fam.settled and quiet >= self.idle_after:
                self._settle(fam, final=False)
            if (fam.held or fam.behind) and quiet >= max(self.idle_after, LOOKUP_WINDOW.total_seconds()):
                self._release(fam)
        for fam in self._families.values():
            if not fam.out:
                continue
            if self.write_every > 0 and fam.run is not None and not fam.settled:
                waited = now - fam.out[0].at
                if waited < self.write_every and sum(o.rows for o in fam.out) < self.write_rows:
                    continue
            _coalesce(fam.out)
            self._drain(fam)

    def _drain(self, fam: _Family) -> None:
        while fam.out:
            item = fam.out[0]
            self._write(item)
            fam.out.pop(0)
            for fp, off in item.safe.items():
                lin = self._lineages.get(fp)
                if lin is not None:
                    lin.safe = off if lin.safe is None else max(lin.safe, off)

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
        return sum(o.rows for fam in self._families.values() for o in fam.out)

    def held(self) -> int:
        """Families whose folder holds lines that are not written yet."""
        return sum(
            1
            for fam in self._families.values()
            if fam.held or fam.behind or (fam.run is not None and not fam.settled and fam.run.held_at is not None)
        )

    def forget(self, fingerprint: str) -> None:
        lin = self._lineages.get(fingerprint)
        if lin is None:
            return
        fam = self._families.get(lin.family)
        if fam is not None:
            busy = fam.out or fam.held or fam.behind or (fam.run is not None and not fam.settled)
            if busy or any(fp == fingerprint for fp, _, _ in fam.refeed or ()):
                return
            fam.members.remove(fingerprint)
            if not fam.members:
                del self._families[lin.family]
        del self._lineages[fingerprint]

    def close(self, now: float) -> None:
        """Write what is queued (held lines stay unwritten: the next start re-reads them
        from the checkpoint). Raises StoreUnavailable when the store refuses."""
        for fam in self._families.values():
            self._drain(fam)


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
        _merge_safe(o.safe for o in out),
        out[0].at,
    )
    out[:] = [merged]


def _merge_safe(items: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for safe in items:
        for fp, off in safe.items():
            out[fp] = max(out.get(fp, off), off)
    return out


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
