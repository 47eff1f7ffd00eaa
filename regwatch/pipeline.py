"""read → parse → correlate → batch → Store.write → Checkpoint.commit.

The checkpoint moves only after the store has accepted every event before the
committed offset; the correlator says which offset that is (it may still hold the app
lines of a request whose access line has not been read yet).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from regwatch.config import Config
from regwatch.correlate import Correlator
from regwatch.errors import StoreUnavailable
from regwatch.events import DropReason, Dropped, Event, IngestStats, RawLine
from regwatch.formats import make_parser
from regwatch.quarantine import Quarantine
from regwatch.sources.checkpoint import FileCheckpoint
from regwatch.sources.files import FileInfo, expand, file_info, read_lines
from regwatch.stores.base import Store

BATCH = 50_000
Progress = Callable[[int], None]  # called with bytes consumed since the last call


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
        self.drops: list[Dropped] = []

    def add(self, events: Iterable[Event]) -> None:
        self.buf.extend(events)

    def full(self) -> bool:
        return len(self.buf) >= self.opts.batch_size

    def flush(self) -> None:
        if self.buf:
            batch, self.buf = self.buf, []
            delay = self.opts.backoff
            for attempt in range(self.opts.retries + 1):
                try:
                    res = self.store.write(batch)
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
        if self.drops and self.quarantine is not None:
            self.quarantine.keep(self.drops)
        self.drops = []


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
    for info in infos:
        stats.files += 1
        _ingest_file(info, writer, config, opts, checkpoint, progress, now)
    writer.flush()
    return stats


def total_bytes(inputs: Sequence[str]) -> int:
    try:
        return sum(file_info(f).size for f in expand(list(inputs)))
    except Exception:  # noqa: BLE001 - only for the progress bar
        return 0


def _ingest_file(
    info: FileInfo,
    writer: _Writer,
    config: Config,
    opts: IngestOptions,
    checkpoint: FileCheckpoint | None,
    progress: Progress | None,
    now: datetime | None,
) -> None:
    stats = writer.stats
    if info.size == 0:
        stats.drop(DropReason.EMPTY_FILE)
        writer.drops.append(Dropped(DropReason.EMPTY_FILE, "", info.path, 0, "empty file"))
        return
    if _is_audit_export(info) and (opts.fmt in (None, "auto", "harbor-audit")):
        _ingest_audit_export(info, writer, progress)
        return
    start = 0 if (checkpoint is None or opts.from_start) else checkpoint.offset(info.fingerprint)
    mtime = datetime.fromtimestamp(_mtime(info.path), tz=timezone.utc)
    parser = make_parser(opts.fmt, config, fallback_ts=mtime)
    corr = Correlator()
    last_end = start
    reported = start if not info.gzip else 0
    merged_before = 0
    for line in read_lines(info, start):
        stats.lines += 1
        last_end = line.end
        if line.problem is not None:
            stats.drop(line.problem)
            writer.drops.append(_dropped(line, line.problem))
            continue
        out = parser.parse(line)
        if isinstance(out, Dropped):
            stats.drop(out.reason)
            if not out.intentional:
                writer.drops.append(out)
            continue
        writer.add(corr.feed(out))
        if writer.full():
            _commit_batch(writer, corr, checkpoint, info, last_end)
            if progress is not None and not info.gzip:
                progress(last_end - reported)
                reported = last_end
    # lines whose request may still be completed by lines appended later are read again
    # next time; the records flushed now keep their ids then, so nothing counts twice
    held = corr.pending_offset()
    writer.add(corr.flush())
    merged = corr.merged - merged_before
    if merged:
        stats.drop(DropReason.MERGED, merged)
    writer.flush()
    stats.bytes_read += max(0, last_end - start)
    if checkpoint is not None:
        safe = last_end if held is None else min(held, last_end)
        checkpoint.commit({info.fingerprint: (info.path, safe)})
    if progress is not None:
        progress(info.size - reported if info.gzip else last_end - reported)


def _commit_batch(
    writer: _Writer, corr: Correlator, checkpoint: FileCheckpoint | None, info: FileInfo, end: int
) -> None:
    writer.flush()
    if checkpoint is not None:
        held = corr.pending_offset()
        safe = end if held is None else min(end, held)
        checkpoint.commit({info.fingerprint: (info.path, safe)})


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
    if name.endswith(".gz"):
        name = name[:-3]
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
            stats.drop(out.reason)
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
