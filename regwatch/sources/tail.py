"""Follow log files by glob, through rotation, truncation and compression.

A :class:`Tailer` watches a list of globs. Each :meth:`Tailer.poll` is one non-blocking
pass: it lists what the globs match (and the siblings of each match, where rotated
copies live), reads what is new, at most ``max_bytes`` in all, and returns
:class:`Chunk`\\ s of whole lines, each with its file fingerprint and its byte range. The
caller stores the lines, then calls :meth:`Tailer.commit` with the chunk ends it stored;
only then does the checkpoint move (``sources/checkpoint.py``, written atomically), so a
restart resumes exactly at the committed offsets and re-reads what was read but not
committed.

Everything is keyed by the file's fingerprint (``sources/files.py``, "File identity"),
not by its path or inode: a *lineage* is the content with one fingerprint, wherever it
lives. A live log, the ``.1`` it is renamed or copied to, and the ``.1.gz`` made from that
are the same lineage and are read as one stream of offsets, from whichever of those files
holds the bytes after the lineage's offset. Hence:

* rename rotation: the renamed file keeps its fingerprint and its open fd; it is read to
  its end (also after it is deleted), and the new file, another lineage, is read from 0;
* copytruncate: the live inode's head changes, so it becomes a new lineage; the old one
  is drained from the copy (``.1`` or ``.1.gz``, found by fingerprint among the glob
  match's siblings) from the saved offset. Lineages of one live path (a *family*) are
  read oldest first, so the copy's lines come before the truncated file's;
* every read first compares the bytes just before its offset with the bytes the lineage
  read there (or, from 0, the head with the fingerprint), so a file truncated and grown
  again between two polls is never read as the continuation of what it held before.

A file is read only once its fingerprint is *settled* (its first distinctive line is
complete): an empty file, or one whose first line is still being written, is waited for.
Keying such a file by inode until it settles would give its first lines an identity that
changes under them, and checkpoint entries nobody finds again. The cost: a file whose
first 16 MiB hold no line with a digit is never read (a tailed registry or Harbor log
starts with a timestamp). See docs/tailing.md.
"""

from __future__ import annotations

import argparse
import contextlib
import glob as _glob
import os
import re
import stat as _stat
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Self

from regwatch.errors import RegwatchError
from regwatch.sources.checkpoint import FileCheckpoint, anchor_of
from regwatch.sources.files import (
    ANCHOR_BYTES,
    CHUNK,
    FINGERPRINT_BYTES,
    MAX_LINE,
    Fingerprint,
    _GzipReader,
    _hash,
    _identity_head,
    window,
)

CHECK_BYTES = 256  # bytes before a read offset compared with what the lineage read there
META_GLOBS = "tail_globs"  # checkpoint meta key: glob → wall time it was first followed
MTIME_SLACK = 2.0  # seconds: a rotated copy modified this long before a glob was first followed still counts
_SIBLING_SEPARATORS = ".-_"  # registry.log.1, registry.log-20240101, registry.log_1
_MAX_PROBLEMS = 1000
LOST_AFTER = 5  # polls in a row a lineage's files are not found before it is dropped (its family waits meanwhile)

StartAt = Literal["beginning", "end"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes ``[start, end)`` of the lineage ``fingerprint``, read from ``path``.

    ``data`` holds whole lines, each ending in ``\\n``, except when ``partial``: then its
    last line had no newline after ``partial_timeout`` (or is longer than MAX_LINE) and is
    emitted as it is; the next chunk of the lineage starts with the rest of that line."""

    fingerprint: Fingerprint
    path: str
    start: int
    end: int
    data: bytes
    partial: bool = False
    # the live path whose lineages this one belongs to (its rotation family): lineages
    # of one family come oldest first and are one stream of lines (regwatch/stream.py)
    family: str = ""

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """(offset, line without its newline) for each line of ``data``."""
        pos = self.start
        body = self.data[:-1] if self.data.endswith(b"\n") else self.data
        for line in body.split(b"\n"):
            yield pos, line
            pos += len(line) + 1


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the tailer cannot do, reported once. ``kind``: ``no_match`` (a glob
    matches no file: rechecked every poll), ``unreadable`` (open failed, e.g. permission
    denied: retried every poll), ``not_regular`` (a FIFO, socket or device matched),
    ``lost`` (a lineage vanished before all its bytes were read, e.g. a truncated log
    whose copy was not found), ``mismatch`` (a file with a lineage's fingerprint does not
    hold the bytes that lineage read: another file with the same first line)."""

    kind: str
    path: str
    message: str


@dataclass(frozen=True)
class TailConfig:
    """``paths``: globs (``**`` allowed). ``start_at``: where a file that was never seen
    starts, see docs/tailing.md. ``max_bytes``: read per poll, in all. ``max_uncommitted``:
    poll reads nothing while this much has been returned and not committed.
    ``partial_timeout``: seconds an unterminated last line is held. ``close_inactive``:
    seconds after which a file that left the globs and is read to its end, but still
    exists, is closed (a deleted one is closed as soon as it is read to its end)."""

    paths: tuple[str, ...]
    start_at: StartAt = "beginning"
    max_bytes: int = 4 << 20
    max_uncommitted: int = 64 << 20
    partial_timeout: float = 5.0
    close_inactive: float = 300.0

    def __post_init__(self) -> None:
        if self.start_at not in ("beginning", "end"):
            raise RegwatchError(f"start_at {self.start_at!r} is not one of 'beginning', 'end'")
        if self.max_bytes <= 0 or self.max_uncommitted <= 0:
            raise RegwatchError(f"max_bytes and max_uncommitted must be > 0, got {self.max_bytes!r}, {self.max_uncommitted!r}")


class _PRead:
    """A file-like ``read`` over an fd with pread (the fd's position is never used)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pos = fd, 0

    def read(self, n: int) -> bytes:
        got = os.pread(self.fd, n, self.pos)
        self.pos += len(got)
        return got


class _Transient(Exception):
    """A file could not be read this poll because it was renamed meanwhile."""


@dataclass
class _Gz:
    stamp: tuple[int, int]
    reader: _GzipReader | None = None
    pos: int = 0  # decompressed position of the reader
    carry: bytes = b""  # bytes [pos - len(carry), pos) read and not emitted
    end: int | None = None  # decompressed length, once read to a clean end
    cut: int | None = None  # the stream is cut here (still being written, or damaged)

    def close(self) -> None:
        if self.reader is not None:
            self.reader._fh.close()
            self.reader = None


@dataclass(eq=False)
class _Inode:
    key: tuple[int, int]
    path: str
    origin: str  # the glob match this file is (live) or is a sibling of
    glob: str  # the glob that matched it (or its origin)
    live: bool = False
    in_scan: bool = True
    size: int = 0
    mtime: int = 0
    nlink: int = 1
    gz: bool | None = None  # None until it holds two bytes
    fd: int | None = None
    fp: Fingerprint | None = None
    fp_stamp: tuple[int, int] | None = None
    fp_size: int = 0
    gzs: _Gz | None = None
    changed_at: float = 0.0
    unresolved: bool = False  # this poll could not fingerprint it for a transient reason (a rename race)
    found: tuple[Fingerprint, int | None] | None = None  # the checkpoint's answer for fp

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.gzs is not None:
            self.gzs.close()
            self.gzs = None


@dataclass(eq=False)
class _Lineage:
    fp: Fingerprint
    family: str
    seq: int
    offset: int  # returned up to here
    committed: int
    path: str
    buf: bytearray = field(default_factory=bytearray)  # content [buf_start, offset)
    buf_start: int = 0
    partial_at: int | None = None
    partial_since: float = 0.0
    seen_size: int = 0
    missing: int = 0  # polls in a row that found none of its files

    def before(self, k: int) -> bytes:
        """The last ``k`` bytes before ``offset`` (fewer if not held)."""
        return bytes(self.buf[-k:]) if k > 0 else b""


_NUMBER = re.compile(r"\d+")
_PROC_FD = os.path.isdir("/proc/self/fd")


def _age(ino: _Inode) -> tuple[int, int, int]:
    """Sorts files of one origin oldest first: rotated copies before the live file, the
    copies by their rotation suffix (``.2`` before ``.1``, ``-20240101`` before
    ``-20240102``), then by mtime. Not by mtime first: it is coarse (a copy and the lines
    written to the truncated file right after share one) and a compressed copy is
    written after lines that follow it (logrotate gzips after the truncation)."""
    if ino.live:
        return (1, 0, ino.mtime)
    m = _NUMBER.search(os.path.basename(ino.path)[len(os.path.basename(ino.origin)) :])
    n = int(m.group()) if m else 0
    return (0, -n if n < 10000 else n, ino.mtime)


class Tailer:
    """Follows ``config.paths``; see the module docstring and docs/tailing.md.

    ``checkpoint``: where committed offsets live (a :class:`FileCheckpoint` or its path).
    ``on_problem``: called once per :class:`Problem` (also kept in ``problems``).
    ``clock``: monotonic seconds, for the partial-line and close timeouts.
    Raises CheckpointError when the checkpoint cannot be read or written."""

    def __init__(
        self,
        config: TailConfig,
        checkpoint: FileCheckpoint | str | os.PathLike[str],
        *,
        on_problem: Callable[[Problem], None] | None = None,
        on_resolved: Callable[[Problem], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.checkpoint = checkpoint if isinstance(checkpoint, FileCheckpoint) else FileCheckpoint(checkpoint)
        self.on_problem = on_problem
        self.on_resolved = on_resolved  # a problem that went away (a glob that matches now)
        self.clock = clock
        self.wall_clock = wall_clock
        self.problems: list[Problem] = []
        self._reported: set[tuple[str, str]] = set()
        self._inodes: dict[tuple[int, int], _Inode] = {}
        self._lineages: dict[str, _Lineage] = {}
        self._seq = 0
        self._polls = 0
        self._turn = 0
        self._listed: dict[str, tuple[set[str], set[str]]] = {}  # dir → (names, origins) of the last scan
        known = self.checkpoint.meta().get(META_GLOBS)
        self._known_globs: dict[str, float] = dict(known) if isinstance(known, dict) else {}
        self._new_globs = {g: 0.0 for g in config.paths if g not in self._known_globs}

    # -- public ----------------------------------------------------------------------

    def poll(self) -> list[Chunk]:
        """One pass over the globs: the chunks of whole lines read since the last poll
        (at most ``max_bytes`` in all; nothing while ``max_uncommitted`` is reached)."""
        now = self.clock()
        first = self._polls == 0
        self._polls += 1
        if first and self._new_globs:
            wall = self.wall_clock()
            self._new_globs = {g: wall for g in self._new_globs}
            self.checkpoint.set_meta(META_GLOBS, {**self._known_globs, **self._new_globs})
        raced = self._scan(now)
        for ino in list(self._inodes.values()):
            self._refresh_fp(ino)
        # a directory listed while logrotate renames in it may show a file under neither
        # name: listed again now, a change means its families wait for the next poll
        for d, (names, origins) in self._listed.items():
            try:
                again = set(os.listdir(d or "."))
            except OSError:
                again = set()
            if again != names:
                raced |= origins
        groups: dict[str, list[_Inode]] = {}
        for ino in self._inodes.values():
            if ino.fp is not None:
                groups.setdefault(str(ino.fp), []).append(ino)
        # a family with a file that could not be identified now waits for the next poll:
        # reading its newer files first would put their lines before older ones
        # (a file listed and renamed before its stat, or one that had a lineage's bytes
        # and is not found now, may be under a new name at the next poll)
        blocked = raced | {ino.origin for ino in self._inodes.values() if ino.in_scan and ino.unresolved}
        for key, lin in self._lineages.items():
            lin.missing = lin.missing + 1 if key not in groups else 0
            # a lineage read to its end whose file was renamed since (logrotate moving .1
            # to .2) is reported under the name that holds it now, not the old one
            inos = groups.get(key)
            if inos and lin.path not in {i.path for i in inos}:
                lin.path = inos[0].path
            if lin.missing:
                # while one of its lineages is not found (its file is under a rename),
                # the family waits: a newer lineage read now would come before it
                blocked.add(lin.family)
        self._adopt(groups, first, blocked)
        chunks = self._read_all(groups, now, blocked)
        self._tidy(groups, now)
        return chunks

    def commit(self, positions: Mapping[str, int]) -> None:
        """Make ``fingerprint → offset`` durable (e.g. ``{c.fingerprint: c.end}`` for the
        chunks the store accepted): the offset must be one this tailer returned up to, and
        the checkpoint never moves backwards. A fingerprint no longer followed (its files
        are gone and all it returned was committed) is ignored. Raises CheckpointError when
        the checkpoint cannot be written."""
        batch: dict[str, tuple[str, int]] = {}
        anchors: dict[str, str] = {}
        moved: list[tuple[_Lineage, int]] = []
        for key, off in positions.items():
            lin = self._lineages.get(str(key))
            if lin is None:
                continue  # no longer followed: dropped once all it returned was committed
            off = min(int(off), lin.offset)
            if off <= lin.committed:
                continue
            lo = max(0, off - ANCHOR_BYTES)
            batch[lin.fp] = (lin.path, off)
            anchors[lin.fp] = anchor_of(bytes(lin.buf[lo - lin.buf_start : off - lin.buf_start]))
            moved.append((lin, off))
        if not batch:
            return
        self.checkpoint.commit(batch, anchors)
        for lin, off in moved:
            lin.committed = off
            lo = max(0, off - ANCHOR_BYTES)
            del lin.buf[: lo - lin.buf_start]
            lin.buf_start = lo

    def commit_chunks(self, chunks: list[Chunk]) -> None:
        """:meth:`commit` of the end of each lineage's last chunk in ``chunks``."""
        self.commit({c.fingerprint: c.end for c in chunks})

    def positions(self) -> dict[str, tuple[str, int]]:
        """Committed ``fingerprint → (path, offset)`` of the lineages followed now."""
        return {lin.fp: (lin.path, lin.committed) for lin in self._lineages.values()}

    def read_positions(self) -> dict[str, tuple[str, int]]:
        """``fingerprint → (path, offset)`` returned so far (committed or not)."""
        return {lin.fp: (lin.path, lin.offset) for lin in self._lineages.values()}

    def uncommitted(self) -> int:
        """Bytes returned by poll and not committed yet."""
        return sum(lin.offset - lin.committed for lin in self._lineages.values())

    def open_files(self) -> int:
        """Files held open now (plain files by fd, gzip files by their reader)."""
        return sum(1 for i in self._inodes.values() if i.fd is not None or (i.gzs is not None and i.gzs.reader is not None))

    def close(self) -> None:
        for ino in self._inodes.values():
            ino.close()
        self._inodes.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- problems --------------------------------------------------------------------

    def _problem(self, kind: str, path: str, message: str, once_key: str | None = None) -> None:
        k = (kind, once_key if once_key is not None else path)
        if k in self._reported:
            return
        self._reported.add(k)
        p = Problem(kind, path, message)
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(p)
        if self.on_problem is not None:
            self.on_problem(p)

    # -- the scan --------------------------------------------------------------------

    def _scan(self, now: float) -> set[str]:
        """Lists the globs and siblings; returns the origins whose listing raced a rename."""
        raced: set[str] = set()
        found: dict[tuple[int, int], tuple[str, os.stat_result, str, str, bool]] = {}
        live_paths: list[tuple[str, str]] = []
        for g in self.config.paths:
            matched = 0
            for m in sorted(_glob.glob(os.path.expanduser(g), recursive=True)):
                try:
                    st = os.stat(m)
                except OSError:
                    raced.add(m)  # gone since the listing
                    continue
                if _stat.S_ISDIR(st.st_mode):
                    continue
                if not _stat.S_ISREG(st.st_mode):
                    self._problem("not_regular", m, f"{m!r} is not a regular file (a FIFO, socket or device); it is not read")
                    continue
                matched += 1
                key = (st.st_dev, st.st_ino)
                if key not in found:
                    found[key] = (m, st, m, g, True)
                    live_paths.append((m, g))
            if matched:
                if ("no_match", g) in self._reported:
                    self._reported.discard(("no_match", g))
                    gone = [p for p in self.problems if p.kind == "no_match" and p.path == g]
                    self.problems = [p for p in self.problems if not (p.kind == "no_match" and p.path == g)]
                    if self.on_resolved is not None:
                        for p in gone:
                            self.on_resolved(p)
            else:
                self._problem("no_match", g, f"glob {g!r} matches no file yet; it is checked again at every poll")
        listings: dict[str, list[str]] = {}
        self._listed = {}
        for m, g in live_paths:
            d, base = os.path.split(m)
            if d not in listings:
                try:
                    listings[d] = os.listdir(d or ".")
                except OSError:
                    listings[d] = []
                self._listed[d] = (set(listings[d]), set())
            self._listed[d][1].add(m)
            for name in listings[d]:
                if len(name) > len(base) and name.startswith(base) and name[len(base)] in _SIBLING_SEPARATORS:
                    p = os.path.join(d, name)
                    try:
                        st = os.stat(p)
                    except OSError:
                        raced.add(m)  # renamed since the listing (.1 → .2)
                        continue
                    key = (st.st_dev, st.st_ino)
                    if _stat.S_ISREG(st.st_mode) and key not in found:
                        found[key] = (p, st, m, g, False)
        for ino in self._inodes.values():
            ino.in_scan = False
        for key, (fpath, st, origin, g, live) in found.items():
            known = self._inodes.get(key)
            if known is None:
                known = self._inodes[key] = _Inode(key, fpath, origin, g, changed_at=now)
            ino = known
            ino.path, ino.in_scan, ino.live = fpath, True, live
            if live:
                ino.glob, ino.origin = g, origin
            self._stamp(ino, st.st_size, st.st_mtime_ns, st.st_nlink, now)
        for ino in self._inodes.values():
            if not ino.in_scan:
                ino.live = False
                if ino.fd is not None:
                    try:
                        st = os.fstat(ino.fd)
                    except OSError:
                        continue
                    self._stamp(ino, st.st_size, st.st_mtime_ns, st.st_nlink, now)
        return raced

    @staticmethod
    def _stamp(ino: _Inode, size: int, mtime: int, nlink: int, now: float) -> None:
        if (size, mtime) != (ino.size, ino.mtime):
            ino.changed_at = now
        ino.size, ino.mtime, ino.nlink = size, mtime, nlink

    # -- identity --------------------------------------------------------------------

    def _open(self, ino: _Inode) -> bool:
        if ino.fd is not None:
            return True
        if not ino.in_scan:
            return False
        try:
            fd = os.open(ino.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            ino.unresolved = True  # renamed or deleted since the scan
            return False
        except OSError as exc:
            self._problem(
                "unreadable",
                ino.path,
                f"cannot read {ino.path!r}: {exc.strerror or exc}; it is retried at every poll (fix its permissions)",
                once_key=f"{ino.path}:{ino.key}",
            )
            return False
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != ino.key:  # the name moved to another file since the scan
            os.close(fd)
            ino.unresolved = True
            return False
        self._reported.discard(("unreadable", f"{ino.path}:{ino.key}"))
        ino.fd = fd
        return True

    def _refresh_fp(self, ino: _Inode) -> None:
        ino.unresolved = False
        stamp = (ino.size, ino.mtime)
        if ino.fp_stamp == stamp:
            return
        if ino.fp is not None and ino.gz is False and ino.fd is not None and ino.size >= ino.fp_size:
            try:  # grown: the same lineage while its head is unchanged (one small pread)
                if _hash(os.pread(ino.fd, ino.fp.length, 0)) == ino.fp:
                    ino.fp_stamp, ino.fp_size = stamp, ino.size
                    return
            except OSError:
                pass
        ino.fp, ino.fp_stamp, ino.fp_size = None, stamp, ino.size
        if ino.fd is None:
            ino.gz = None  # no fd held: its inode number may since be another file's
        if ino.size < 2:
            return  # empty (just created, or truncated): waited for
        if ino.gz is None or ino.gz is False:
            if not self._open(ino):
                ino.fp_stamp = None  # retried next poll
                return
            assert ino.fd is not None
            try:
                ino.gz = os.pread(ino.fd, 2, 0) == b"\x1f\x8b"
            except OSError:
                ino.fp_stamp = None
                return
            if ino.gz:
                os.close(ino.fd)
                ino.fd = None
        try:
            if ino.gz:
                try:
                    reader = _GzipReader(ino.path)
                except FileNotFoundError:
                    ino.fp_stamp, ino.unresolved = None, True
                    return
                try:
                    st = os.fstat(reader._fh.fileno())
                    if (st.st_dev, st.st_ino) != ino.key:
                        ino.fp_stamp, ino.unresolved = None, True
                        return
                    data, cut, settled = _identity_head(reader)
                finally:
                    reader._fh.close()
            else:
                assert ino.fd is not None
                data, cut, settled = _identity_head(_PRead(ino.fd))
        except OSError as exc:
            self._problem("unreadable", ino.path, f"cannot read {ino.path!r}: {exc.strerror or exc}", once_key=f"{ino.path}:{ino.key}")
            ino.fp_stamp = None
            return
        if settled:
            ino.fp = Fingerprint(_hash(data[:cut]), ino.path, bool(ino.gz), cut, True, _hash(data[:FINGERPRINT_BYTES]))

    @contextlib.contextmanager
    def _pinned(self, ino: _Inode) -> Iterator[str | None]:
        """A path that names this very file while the block runs (``/proc/self/fd/N``), so
        that the checkpoint's reads of it cannot meet another file renamed to its name
        meanwhile; None (and ``unresolved``) when it cannot be opened now."""
        fd, opened = ino.fd, False
        if fd is None:
            try:
                fd = os.open(ino.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError:
                ino.unresolved = True
                yield None
                return
            opened = True
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != ino.key:
                os.close(fd)
                ino.unresolved = True
                yield None
                return
        try:
            yield f"/proc/self/fd/{fd}" if _PROC_FD else ino.path
        finally:
            if opened:
                os.close(fd)

    def _find(self, ino: _Inode) -> int | None:
        """The checkpoint offset of this file's lineage, or None."""
        assert ino.fp is not None
        if ino.found is not None and ino.found[0] is ino.fp:
            return ino.found[1]
        with self._pinned(ino) as path:
            if path is None:
                return None
            real, ino.fp.path = ino.fp.path, path
            try:
                off = self.checkpoint.find(ino.fp)
            finally:
                ino.fp.path = real
        ino.found = (ino.fp, off)
        return off

    # -- lineages --------------------------------------------------------------------

    def _adopt(self, groups: dict[str, list[_Inode]], first: bool, blocked: set[str]) -> None:
        """Lineages for the fingerprints seen for the first time: those the checkpoint
        knows (any file); new ones with a file a glob matches; and rotated copies of
        content never seen that were modified after their glob was first followed (a
        log rotated away before a poll saw it, e.g. while the tailer was down). Older
        rotated copies were there before the tailer: they are not read."""
        fresh: list[tuple[tuple[int, int, int, int], _Lineage]] = []
        found: dict[str, tuple[int, _Inode] | None] = {}
        for key, inos in groups.items():
            if key in self._lineages:
                continue
            best: tuple[int, _Inode] | None = None
            for ino in inos:
                off = self._find(ino)
                if off is not None and (best is None or off > best[0]):
                    best = (off, ino)
            found[key] = best
        for key in found:
            if any(i.unresolved for i in groups[key]):
                # a file renamed under the lookup (logrotate's .1 -> .2 shift): its family
                # waits a poll, else a newer file of it would be read before this one
                blocked.update(i.origin for i in groups[key])
        for key, best in found.items():
            inos = groups[key]
            if any(i.unresolved for i in inos):
                continue  # decided at the next poll, when each of its files could be checked
            live = [i for i in inos if i.live]
            if best is not None:
                off, src = best
                assert src.fp is not None
                lin = _Lineage(src.fp, (live[0] if live else src).origin, 0, off, off, src.path)
                before = b""
                if off:
                    with self._pinned(src) as path:
                        before = (window(path, bool(src.gz), off, ANCHOR_BYTES) if path else None) or b""
                lin.buf, lin.buf_start = bytearray(before), off - len(before)
                rank = 0
            elif any(i.origin in blocked for i in inos):
                continue  # an older file of its family is not identified yet: it may come first
            elif live:
                src = max(live, key=lambda i: i.size)
                assert src.fp is not None
                lin = _Lineage(src.fp, src.origin, 0, 0, 0, src.path)
                if first and self.config.start_at == "end" and src.glob in self._new_globs:
                    self._start_at_end(lin, src)
                rank = 1
            elif any(i.mtime / 1e9 >= self._following_since(i.glob) - MTIME_SLACK for i in inos):
                src = max(inos, key=lambda i: i.mtime)
                assert src.fp is not None
                lin = _Lineage(src.fp, src.origin, 0, 0, 0, src.path)
                rank = 1
            else:
                continue  # an old rotated copy of no lineage followed: not ours to read
            oldest = min(inos, key=_age)
            fresh.append(((rank, *_age(oldest)), lin))
        for _, lin in sorted(fresh, key=lambda t: t[0]):
            self._seq += 1
            lin.seq = self._seq
            self._lineages[str(lin.fp)] = lin

    def _following_since(self, glob: str) -> float:
        return self._known_globs.get(glob, self._new_globs.get(glob, 0.0))

    def _start_at_end(self, lin: _Lineage, src: _Inode) -> None:
        """Skip a file that was there before the tailer: to the end of its last complete
        line, committed at once (else a restart would read it from 0)."""
        if src.gz:
            size, nl_end = 0, 0
            try:
                with _GzipReader(src.path) as r:
                    while got := r.read(CHUNK):
                        nl = got.rfind(b"\n")
                        if nl >= 0:
                            nl_end = size + nl + 1
                        size += len(got)
            except (EOFError, OSError, zlib.error):
                pass
            off = nl_end
        else:
            assert src.fd is not None
            size = src.size
            lo = max(0, size - MAX_LINE)
            tail = os.pread(src.fd, size - lo, lo)
            nl = tail.rfind(b"\n")
            off = lo + nl + 1 if nl >= 0 else size
        before = window(src.path, bool(src.gz), off, ANCHOR_BYTES) or b""
        lin.offset = lin.committed = off
        lin.buf, lin.buf_start = bytearray(before), off - len(before)
        assert src.fp is not None
        self.checkpoint.commit({src.fp: (src.path, off)}, {src.fp: anchor_of(before)})

    # -- reading ---------------------------------------------------------------------

    def _read_all(self, groups: dict[str, list[_Inode]], now: float, blocked: set[str]) -> list[Chunk]:
        if self.uncommitted() >= self.config.max_uncommitted:
            return []
        families: dict[str, list[_Lineage]] = {}
        for lin in self._lineages.values():
            if lin.family not in blocked:
                families.setdefault(lin.family, []).append(lin)

        def oldest_first(lin: _Lineage) -> tuple[tuple[int, int, int], int]:
            # where its files are now; one only read through its fd (renamed out of the
            # names or deleted) is the oldest, unless a copy of it is still among them
            # (a .1 replaced by its .1.gz)
            inos = groups.get(str(lin.fp), [])
            ages = [_age(i) for i in inos if i.in_scan]
            return min(ages, default=(-1, 0, 0)), lin.seq

        order = sorted(families)
        if order:
            self._turn = (self._turn + 1) % len(order)
            order = order[self._turn :] + order[: self._turn]
        budget = self.config.max_bytes
        chunks: list[Chunk] = []
        for fam in order:
            for lin in sorted(families[fam], key=oldest_first):
                if budget <= 0:
                    return chunks
                chunk, more = self._read(lin, groups.get(str(lin.fp), []), budget, now)
                if chunk is not None:
                    chunks.append(chunk)
                    budget -= len(chunk.data)
                if more:
                    break  # an older lineage of this family has more: the newer ones wait
        return chunks

    def _read(self, lin: _Lineage, inos: list[_Inode], budget: int, now: float) -> tuple[Chunk | None, bool]:
        plain = sorted((i for i in inos if i.gz is False and (i.fd is not None or self._open(i))), key=lambda i: -i.size)
        for ino in plain:
            assert ino.fd is not None
            try:
                size = os.fstat(ino.fd).st_size
            except OSError:
                continue
            lin.seen_size = max(lin.seen_size, size)
            if size <= lin.offset:
                continue
            avail = size - lin.offset
            k = min(CHECK_BYTES, lin.offset - lin.buf_start)
            try:
                raw = os.pread(ino.fd, k + min(budget, avail), lin.offset - k)
                if raw.rfind(b"\n", k) < 0 and len(raw) - k < avail:  # one line over the budget
                    raw = os.pread(ino.fd, k + min(avail, MAX_LINE + 1), lin.offset - k)
            except OSError:
                continue
            if not self._continues(lin, ino, raw, k):
                continue
            data = raw[k:]
            return self._emit(lin, ino, data, len(data) >= avail, now)
        for ino in inos:
            if ino.gz:
                try:
                    got = self._read_gz(lin, ino, budget)
                except _Transient:
                    return None, True  # may hold more: the family's newer lineages wait
                if got is not None:
                    data, at_end, cut = got
                    return self._emit(lin, ino, data, at_end, now, cut)
        return None, False

    def _continues(self, lin: _Lineage, ino: _Inode, raw: bytes, k: int) -> bool:
        """Whether ``raw`` (``k`` bytes before the lineage offset, then new bytes) continues
        what the lineage read; if not, the file is fingerprinted again at the next poll."""
        if k:
            ok = len(raw) >= k and raw[:k] == lin.before(k)
        elif lin.offset == 0:
            ok = len(raw) >= lin.fp.length and _hash(raw[: lin.fp.length]) == lin.fp
        else:
            ok = True  # nothing held to compare (a checkpoint entry whose window is gone)
        if not ok:
            ino.fp_stamp = None
            if ino.in_scan and ino.size >= ino.fp_size:
                self._problem(
                    "mismatch",
                    ino.path,
                    f"{ino.path!r} has the fingerprint of a file read before but not its bytes at offset {lin.offset}; "
                    "it is fingerprinted again",
                    once_key=f"{ino.path}:{ino.key}:{lin.offset}",
                )
        return ok

    def _read_gz(self, lin: _Lineage, ino: _Inode, budget: int) -> tuple[bytes, bool, bool] | None:
        """(bytes from the lineage offset, read to a clean end, cut) of a gzip file, or None.
        The reader stays open between polls, so a file is decompressed once in all."""
        stamp = (ino.size, ino.mtime)
        g = ino.gzs
        if g is None or g.stamp != stamp:
            if g is not None:
                g.close()
            g = ino.gzs = _Gz(stamp)
        if (g.end is not None and g.end <= lin.offset) or (g.cut is not None and g.cut <= lin.offset):
            return None
        if g.reader is None or g.pos - len(g.carry) != lin.offset:
            g.close()
            g.carry, g.pos = b"", 0
            k = min(CHECK_BYTES, lin.offset - lin.buf_start)
            try:
                g.reader = _GzipReader(ino.path)
                st = os.fstat(g.reader._fh.fileno())
                if (st.st_dev, st.st_ino) != ino.key:
                    g.close()
                    if ino.in_scan:
                        raise _Transient  # renamed since the scan: its name is another file's now
                    return None
                skipped = self._gz_skip(g, lin.offset - k)
                head = self._gz_take(g, k) if skipped else b""
            except FileNotFoundError:
                g.close()
                if ino.in_scan:
                    raise _Transient from None  # renamed since the scan (.1.gz → .2.gz)
                return None
            except OSError:
                g.close()
                return None
            if not skipped or len(head) < k:
                g.cut = g.pos if g.end is None else None
                g.close()
                return None
            if k and not self._continues(lin, ino, head, k):
                g.close()
                return None
        data = bytearray(g.carry)
        g.carry = b""
        at_end = cut = False
        while True:
            want = budget - len(data)
            if want <= 0:
                if data.find(b"\n") >= 0 or len(data) > MAX_LINE:
                    break
                want = CHUNK
            try:
                got = g.reader.read(min(CHUNK, want)) if g.reader is not None else b""
            except (EOFError, OSError, zlib.error):
                g.cut, cut = g.pos, True  # still being written (or damaged): more when it changes
                break
            if not got:
                if g.cut is None:
                    g.end, at_end = g.pos, True
                else:
                    cut = True
                break
            g.pos += len(got)
            data += got
        return bytes(data), at_end, cut

    @staticmethod
    def _gz_skip(g: _Gz, n: int) -> bool:
        assert g.reader is not None
        while g.pos < n:
            try:
                got = g.reader.read(min(CHUNK, n - g.pos))
            except (EOFError, OSError, zlib.error):
                return False
            if not got:
                g.end = g.pos
                return False
            g.pos += len(got)
        return True

    @staticmethod
    def _gz_take(g: _Gz, k: int) -> bytes:
        assert g.reader is not None
        out = b""
        while len(out) < k:
            try:
                got = g.reader.read(k - len(out))
            except (EOFError, OSError, zlib.error):
                break
            if not got:
                break
            out += got
        g.pos += len(out)
        return out

    def _emit(
        self, lin: _Lineage, ino: _Inode, data: bytes, at_end: bool, now: float, cut_off: bool = False
    ) -> tuple[Chunk | None, bool]:
        """The chunk of whole lines at the start of ``data`` (read at the lineage offset),
        and whether the file holds more after it. ``at_end``: ``data`` reaches the end of
        the file (an unterminated rest is then held, up to the timeout). ``cut_off``: a
        gzip stream cut there (its rest is held until the file changes)."""
        if cut_off:
            cut = data.rfind(b"\n")
            self._keep_gz_carry(ino, data[cut + 1 :])
            if cut < 0:
                return None, False
            body = data[: cut + 1]
            start = lin.offset
            lin.offset += len(body)
            lin.buf += body
            lin.path = ino.path
            return Chunk(lin.fp, ino.path, start, lin.offset, body, family=lin.family), False
        cut = data.rfind(b"\n")
        partial = False
        if cut >= 0:
            body = data[: cut + 1]
            if at_end and cut + 1 < len(data) and lin.partial_at != lin.offset + cut + 1:
                lin.partial_at, lin.partial_since = lin.offset + cut + 1, now
        elif len(data) > MAX_LINE:
            body, partial = data, True  # an over-long line: emitted as it is (the parser drops it as too long)
        elif at_end:
            if lin.partial_at != lin.offset:
                lin.partial_at, lin.partial_since = lin.offset, now
            if now - lin.partial_since < self.config.partial_timeout:
                self._keep_gz_carry(ino, data)
                return None, False
            body, partial = data, True
        else:
            self._keep_gz_carry(ino, data)
            return None, False
        self._keep_gz_carry(ino, data[len(body) :])
        start = lin.offset
        lin.offset += len(body)
        lin.buf += body
        lin.path = ino.path
        if partial:
            lin.partial_at = None
        more = not at_end
        return Chunk(lin.fp, ino.path, start, lin.offset, body, partial, lin.family), more

    @staticmethod
    def _keep_gz_carry(ino: _Inode, rest: bytes) -> None:
        if ino.gz and ino.gzs is not None:
            ino.gzs.carry = rest

    # -- closing ---------------------------------------------------------------------

    def _tidy(self, groups: dict[str, list[_Inode]], now: float) -> None:
        for key, ino in list(self._inodes.items()):
            lin = self._lineages.get(str(ino.fp)) if ino.fp is not None else None
            if lin is None:
                drained = True
            elif ino.gz:
                g = ino.gzs
                drained = g is not None and g.end is not None and lin.offset >= g.end
            else:
                drained = lin.offset >= ino.size
            drained = drained or (lin is not None and lin.partial_at == lin.offset)
            idle = now - ino.changed_at >= self.config.close_inactive
            if ino.in_scan:
                if lin is None and not ino.live:
                    ino.close()  # an old copy of nothing followed: nothing kept open
                elif drained and ino.gz and ino.gzs is not None:
                    ino.gzs.close()  # read to its end (which it remembers): reopened if it changes
                elif drained and not ino.live and idle and ino.fd is not None:
                    os.close(ino.fd)  # a rotated copy read to its end: reopened by name if it changes
                    ino.fd = None
                continue
            if ino.gz or ino.fd is None or (drained and (ino.nlink == 0 or idle)):
                ino.close()  # a gzip file is reopened by name only: gone with it
                del self._inodes[key]
        present = {str(i.fp) for i in self._inodes.values() if i.fp is not None}
        for fp_key, lin in list(self._lineages.items()):
            if fp_key not in present and lin.missing >= LOST_AFTER and lin.committed >= lin.offset:
                if lin.offset < lin.seen_size:
                    self._problem(
                        "lost",
                        lin.path,
                        f"the file read as {lin.path!r} is gone (truncated or deleted, no rotated copy found) "
                        f"after {lin.offset:,} of its {lin.seen_size:,} bytes were read",
                        once_key=fp_key,
                    )
                del self._lineages[fp_key]


# -- a small tail loop: python -m regwatch.sources.tail ------------------------------


def _run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m regwatch.sources.tail",
        description="Follow GLOBs; append each line to --out as 'fingerprint<TAB>offset<TAB>line', fsync, then commit.",
    )
    ap.add_argument("--state", required=True, help="directory for the checkpoint (tail-checkpoint.json)")
    ap.add_argument("--out", required=True, help="file the lines are appended to")
    ap.add_argument("--start-at", choices=("beginning", "end"), default="beginning")
    ap.add_argument("--max-bytes", type=int, default=4 << 20)
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between polls that found nothing")
    ap.add_argument("--partial-timeout", type=float, default=5.0)
    ap.add_argument("--once", action="store_true", help="exit after two polls in a row found nothing")
    ap.add_argument("globs", nargs="+")
    args = ap.parse_args(argv)
    cfg = TailConfig(tuple(args.globs), args.start_at, args.max_bytes, partial_timeout=args.partial_timeout)

    def report(p: Problem) -> None:
        print(f"regwatch tail: {p.kind}: {p.message}", file=sys.stderr, flush=True)

    os.makedirs(args.state, exist_ok=True)
    _cut_torn_row(args.out)
    idle = 0
    with Tailer(cfg, os.path.join(args.state, "tail-checkpoint.json"), on_problem=report) as tailer, open(args.out, "ab") as out:
        while True:
            chunks = tailer.poll()
            if not chunks:
                idle += 1
                if args.once and idle >= 2:
                    return 0
                time.sleep(args.interval)
                continue
            idle = 0
            for c in chunks:
                lines = [b"%s\t%d\t%s\n" % (str(c.fingerprint).encode(), off, line) for off, line in c.lines()]
                out.write(b"".join(lines))
            out.flush()
            os.fsync(out.fileno())
            tailer.commit_chunks(chunks)


def _cut_torn_row(path: str) -> None:
    """A loop killed inside its write leaves a torn last row (a write to a file can stop
    short on SIGKILL). That row's chunk was never committed, so it is read again: the
    torn bytes are cut off before anything is appended after them."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        end = size
        while end > 0:
            lo = max(0, end - CHUNK)
            got = os.pread(fd, end - lo, lo)
            nl = got.rfind(b"\n")
            if nl >= 0:
                end = lo + nl + 1
                break
            end = lo
        if end < size:
            os.ftruncate(fd, end)
            os.fsync(fd)
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except RegwatchError as exc:
        print(f"regwatch tail: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Chunk", "Problem", "StartAt", "TailConfig", "Tailer", "main"]
