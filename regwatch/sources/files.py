"""Read log files (plain or gzip) into RawLines, safely.

* a file is known by its content, not its name, so a rotated or gzipped copy of the
  same log maps to the same checkpoint entry and the same event ids (see "File
  identity" below, and docs/architecture.md);
* bad input never raises: NUL-laden or undecodable lines, over-long lines and a
  truncated gzip member become RawLines with ``problem`` set, and the good lines
  around them still come through;
* a logrus text record whose quoted value holds a raw newline spans two physical
  lines; they are joined into one logical line.

File identity
-------------
Only content identifies a file, and a log only grows at its end: an earlier snapshot
of a log is a prefix of a later one. The fingerprint (``FileInfo.fingerprint``: the
checkpoint key and, with the byte offset, the base of every event id) must therefore
be a hash of a prefix that is *settled*, one that appending can no longer change, yet
long enough to tell different files apart. It is the blake2b of the content up to and
including the file's first **distinctive line**: a complete line that holds a digit
(a time, an id, an address; a line without one, such as a CSV header, ``[`` or a
banner, cannot tell two files apart) and is not one of the lines that
``registry garbage-collect`` prints identically on every run over the same
repositories (repository names, ``marking`` lines, the totals, ``eligible for
deletion`` lines, blank lines). For a log that is its first line; for a GC run it ends
at the first timed ``Deleting blob`` record. So:

* a log keeps its fingerprint, hence its ids and checkpoint entry, from the moment its
  first distinctive line is complete, however small it is then, and a rotated or
  gzipped copy has the same one;
* two GC runs over unchanged repositories differ in their ``Deleting blob`` records,
  so they get different fingerprints;
* at most :data:`FINGERPRINT_MAX` bytes are hashed. A file without a complete
  distinctive line within them has an *unsettled* fingerprint: the hash of all it
  holds so far (a GC dry run, a file still being written). It changes as the file
  grows; the checkpoint records the hashed length of such an entry so that the grown
  file finds it again (``sources/checkpoint.py``), but events read before it settled
  get new ids if the file is read again from the start.

What content alone cannot do: two different files whose content is equal up to and
including their first distinctive line (or over the first FINGERPRINT_MAX bytes) share
a fingerprint, and their events at equal offsets share ids. The checkpoint keeps such
files apart (an entry also stores a hash of the 4 KiB before its offset, see
:func:`anchor`, and a file only resumes from an entry whose bytes it holds there);
the ids cannot be kept apart at file level.
"""

from __future__ import annotations

import glob as _glob
import hashlib
import os
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from regwatch.errors import InputError
from regwatch.events import DropReason

FINGERPRINT_BYTES = 1024  # the head the fingerprint covered before "File identity" (checkpoint migration)
FINGERPRINT_MAX = 16 << 20  # at most this much of a file's head is hashed into its fingerprint
ANCHOR_BYTES = 4096  # bytes before a checkpoint offset that the checkpoint verifies
MAX_LINE = 1 << 20  # 1 MiB: longer lines are dropped as too_long (their head is kept)
KEEP_HEAD = 4096
MAX_JOIN = 64  # physical lines one logical record may span
CHUNK = 1 << 20


class Fingerprint(str):
    """A file fingerprint: the hex ``str`` used as the checkpoint key and in event ids,
    which also remembers the file it was taken from, so that the checkpoint can check
    that an entry stored under it belongs to this file. Anywhere a ``str`` is expected it
    behaves as one (hashing, equality, formatting and JSON see only the hex value).

    ``path``, ``gzip``: the file. ``length``: how many bytes of its head were hashed.
    ``settled``: False while the file has no complete distinctive line within
    FINGERPRINT_MAX bytes (then the whole content was hashed and the fingerprint will
    change as the file grows). ``legacy``: the fingerprint older versions gave the file
    (a hash of its first KiB), to find their checkpoint entries.
    """

    path: str
    gzip: bool
    length: int
    settled: bool
    legacy: str

    def __new__(
        cls, value: str, path: str = "", gz: bool = False, length: int = 0, settled: bool = True, legacy: str = ""
    ) -> "Fingerprint":
        obj = super().__new__(cls, value)
        obj.path, obj.gzip, obj.length, obj.settled, obj.legacy = path, gz, length, settled, legacy
        return obj

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Fingerprint, (str(self), self.path, self.gzip, self.length, self.settled, self.legacy))


# Lines `registry garbage-collect` prints the same way on every run over the same
# repositories (sample_logs/distribution/NOTES.md section 5), and blank lines.
_ALIKE_IN_EVERY_RUN = re.compile(
    rb"[ \t]*"
    rb"|[a-z0-9]+(?:(?:[._]|__|-+|/)[a-z0-9]+)*[ \t]*"
    rb"|\S+: marking (?:manifest|blob) \S+[ \t]*"
    rb"|\d+ blobs marked, \d+ blobs and \d+ manifests eligible for deletion[ \t]*"
    rb"|(?:blob|manifest) eligible for deletion: \S+[ \t]*"
)
_DIGIT = re.compile(rb"[0-9]")


def _distinctive(line: bytes) -> bool:
    """A complete line (without its newline) that can tell one file from another."""
    if line.endswith(b"\r"):
        line = line[:-1]
    return _DIGIT.search(line) is not None and _ALIKE_IN_EVERY_RUN.fullmatch(line) is None


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=10).hexdigest() if data else "empty"


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    fingerprint: str
    size: int
    gzip: bool


_NOT_LOGS = (".md", ".txt", ".py", ".sh", ".yml", ".yaml", ".ipynb", ".parquet")


def _skipped_in_walk(name: str) -> bool:
    """Files a directory walk passes over: docs, expectations and notes beside the logs.

    A file named explicitly on the command line is always read.
    """
    low = name.lower()
    return (
        low.startswith(".")
        or ".expected." in low
        or low.startswith("expected.")
        or low.endswith(_NOT_LOGS)
        or low.startswith(("readme", "notes", "sources", "notifications", "hints", "provenance"))
    )


def expand(inputs: list[str]) -> list[str]:
    """Files named by ``inputs`` (files, directories walked recursively, globs), sorted.

    Raises InputError naming the first input that matches nothing or cannot be read.
    """
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        try:
            is_dir, is_file, exists = p.is_dir(), p.is_file(), p.exists()
        except OSError as exc:
            raise InputError(f"cannot access {item!r}: {exc.strerror or exc}; check the path and its permissions") from exc
        if is_dir:
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and not _skipped_in_walk(f.name))
            out.extend(found)
        elif is_file:
            if not os.access(p, os.R_OK):
                raise InputError(f"cannot read {item!r}: permission denied; fix its permissions or run as a user that can read it")
            out.append(str(p))
        elif any(ch in item for ch in "*?["):
            matched = sorted(f for f in _glob.glob(item, recursive=True) if os.path.isfile(f))
            if not matched:
                raise InputError(f"glob {item!r} matches no file; check the pattern")
            out.extend(matched)
        elif exists:
            raise InputError(f"{item!r} is not a regular file or directory")
        else:
            raise InputError(f"no such file or directory: {item!r}; pass existing log files, directories or globs")
    seen: set[str] = set()
    uniq = []
    for f in out:
        if f not in seen:
            seen.add(f)
            uniq.append(f)
    return uniq


# a rotated copy's name: the live name, then a rotation number or date, maybe .gz
_ROTATED = re.compile(r"^(?P<stem>.+?)(?:[._-](?P<n>\d{1,4})|[._-](?P<date>\d{8}(?:\d{2,6})?|\d{4}-\d{2}-\d{2}))?(?P<gz>\.gz)?$")


def rotation_key(path: str) -> tuple[str, tuple[int, object]]:
    """(family, age) of a log file by its name: ``registry.log``, ``registry.log.1``,
    ``registry.log.2.gz`` and ``registry.log-20240101.gz`` in one directory are one
    family (the live log and its rotated copies, as logrotate names them); ``age`` sorts
    a family oldest first (the highest number, the earliest date, the live log last)."""
    d, name = os.path.split(path)
    m = _ROTATED.match(name)
    if m is None or (m.group("n") is None and m.group("date") is None and m.group("gz") is None):
        return os.path.join(d, name), (3, 0)
    stem = os.path.join(d, m.group("stem"))
    if m.group("date") is not None:
        return stem, (0, m.group("date").replace("-", ""))
    if m.group("n") is not None:
        return stem, (1, -int(m.group("n")))
    return stem, (2, 0)


def rotation_families(paths: list[str]) -> list[list[str]]:
    """``paths`` grouped into rotation families (:func:`rotation_key`), each oldest
    first; families in the order their first file comes in ``paths``."""
    groups: dict[str, list[str]] = {}
    for p in paths:
        groups.setdefault(rotation_key(p)[0], []).append(p)
    return [sorted(g, key=lambda p: rotation_key(p)[1]) for g in groups.values()]


def is_gzip(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"\x1f\x8b"
    except OSError:
        return False


class _GzipReader:
    """Decompresses gzip (all members) incrementally. ``read(n)`` returns at most ``n``
    bytes; a cut stream yields every byte decompressed before the cut, then raises
    EOFError once."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "rb")
        self._d = zlib.decompressobj(wbits=31)
        self._buf = b""
        self._eof = False
        self._error: Exception | None = None

    def _fill(self, n: int) -> None:
        parts = [self._buf]
        size = len(self._buf)
        while size < n and not self._eof:
            comp = self._fh.read(1 << 16)
            if not comp:
                self._eof = True
                if not self._d.eof or self._d.unconsumed_tail:
                    self._error = EOFError("compressed file ended before the end-of-stream marker was reached")
                break
            try:
                chunk = self._d.decompress(comp)
                while self._d.eof and self._d.unused_data:
                    rest = self._d.unused_data
                    self._d = zlib.decompressobj(wbits=31)
                    chunk += self._d.decompress(rest)
            except zlib.error as exc:
                self._eof = True
                self._error = exc
                break
            parts.append(chunk)
            size += len(chunk)
        self._buf = b"".join(parts)

    def read(self, n: int = CHUNK) -> bytes:
        self._fill(n)
        if not self._buf and self._error is not None:
            err, self._error = self._error, None
            raise err
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def __enter__(self) -> "_GzipReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def _open(path: str, gz: bool):  # type: ignore[no-untyped-def]
    return _GzipReader(path) if gz else open(path, "rb")


def file_info(path: str) -> FileInfo:
    """Fingerprint a file by its head (decompressed), see "File identity". Raises InputError."""
    gz = is_gzip(path)
    try:
        size = os.path.getsize(path)
        with _open(path, gz) as fh:
            data, cut, settled = _identity_head(fh)
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    fp = Fingerprint(_hash(data[:cut]), path, gz, cut, settled, _hash(data[:FINGERPRINT_BYTES]))
    return FileInfo(path=path, fingerprint=fp, size=size, gzip=gz)


def _identity_head(fh) -> tuple[bytes, int, bool]:  # type: ignore[no-untyped-def]
    """(the bytes read, how many of them the fingerprint covers, whether that is settled).

    Reads up to the end of the first distinctive line, and at least FINGERPRINT_BYTES
    (for the legacy fingerprint). See "File identity".
    """
    data = bytearray()
    pos = 0  # the lines before pos are complete and not distinctive
    cut: int | None = None
    settled = False
    eof = False
    while True:
        while cut is None:
            nl = data.find(b"\n", pos)
            if nl < 0:
                if len(data) >= FINGERPRINT_MAX:
                    cut, settled = FINGERPRINT_MAX, True
                break
            if _distinctive(data[pos:nl]):
                cut, settled = nl + 1, True
            pos = nl + 1
        if eof or (cut is not None and len(data) >= FINGERPRINT_BYTES):
            break
        try:
            # 4 KiB first (a log's first line), then doubling up to FINGERPRINT_MAX
            more = fh.read(min(max(4096, len(data)), FINGERPRINT_MAX - len(data)) or FINGERPRINT_BYTES)
        except (EOFError, OSError, zlib.error):
            more = b""
        if not more:
            eof = True
            continue
        data += more
    if cut is None:
        cut = len(data)  # no distinctive line yet: all there is, unsettled
    return bytes(data), cut, settled


def prefix_fingerprints(path: str, gz: bool, lengths: list[int]) -> dict[int, str]:
    """The fingerprint an unsettled file had when it held exactly ``n`` bytes, for each ``n``
    in ``lengths`` that this file has; i.e. the hash of its first ``n`` bytes. Never raises."""
    out: dict[int, str] = {}
    want = sorted({n for n in lengths if 0 < n <= FINGERPRINT_MAX})
    if not want:
        return out
    h = hashlib.blake2b(digest_size=10)
    pos = 0
    try:
        with _open(path, gz) as fh:
            for n in want:
                while pos < n:
                    got = fh.read(min(1 << 16, n - pos))
                    if not got:
                        return out
                    h.update(got)
                    pos += len(got)
                out[n] = h.copy().hexdigest()
    except (EOFError, OSError, zlib.error):
        pass
    return out


def window(path: str, gz: bool, offset: int, n: int = ANCHOR_BYTES) -> bytes | None:
    """The bytes ``[max(0, offset - n), offset)`` of a file's (decompressed) content, or None
    when it holds fewer than ``offset`` bytes or cannot be read. Never raises."""
    lo = max(0, offset - n)
    if not gz:
        try:
            with open(path, "rb") as fh:
                fh.seek(lo)
                data = fh.read(offset - lo)
        except OSError:
            return None
        return data if len(data) == offset - lo else None
    return _gz_window(path, lo, offset)


def anchor(path: str, gz: bool, offset: int) -> str | None:
    """A hash of the :data:`ANCHOR_BYTES` before ``offset``: what the checkpoint stores to
    recognise the file an offset belongs to. None when those bytes cannot be read."""
    data = window(path, gz, offset, ANCHOR_BYTES)
    return None if data is None else hashlib.blake2b(data, digest_size=10).hexdigest()


class _GzCursor:
    """A forward-only position in one gzip file's decompressed content that keeps the
    :data:`ANCHOR_BYTES` before it. Windows asked at increasing offsets (one checkpoint
    commit after another) then cost one decompression pass in all, not one per commit.
    The file is closed between calls; only the decompressor state is kept."""

    def __init__(self, path: str, ident: tuple[int, int, int]) -> None:
        self.path = path
        self.ident = ident
        self.reader = _GzipReader(path)
        self.comp_pos = 0
        self.reader._fh.close()
        self.pos = 0
        self.tail = b""

    def window(self, lo: int, hi: int) -> bytes | None:
        if self.pos < hi:
            try:
                fh = open(self.path, "rb")
            except OSError:
                return None
            try:
                fh.seek(self.comp_pos)
                self.reader._fh = fh
                while self.pos < hi:
                    try:
                        got = self.reader.read(min(CHUNK, hi - self.pos))
                    except (EOFError, OSError, zlib.error):
                        got = b""
                    if not got:
                        return None
                    self.pos += len(got)
                    self.tail = (self.tail + got)[-ANCHOR_BYTES:] if len(got) < ANCHOR_BYTES else got[-ANCHOR_BYTES:]
            finally:
                self.comp_pos = fh.tell()
                fh.close()
        if self.pos != hi:
            return None
        return self.tail[len(self.tail) - (hi - lo) :] if hi > lo else b""


_CURSOR: _GzCursor | None = None
_CURSOR_LOCK = threading.Lock()


def _gz_window(path: str, lo: int, hi: int) -> bytes | None:
    """``window`` for a gzip file, through a one-file cursor (files are ingested one by one)."""
    global _CURSOR
    assert hi - lo <= ANCHOR_BYTES
    with _CURSOR_LOCK:
        try:
            st = os.stat(path)
            ident = (st.st_ino, st.st_size, st.st_mtime_ns)
            cur = _CURSOR
            if cur is None or cur.path != path or cur.ident != ident or hi < cur.pos:
                cur = _CURSOR = _GzCursor(path, ident)
        except OSError:
            return None
        return cur.window(lo, hi)


_CTRL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _looks_binary(b: bytes) -> bool:
    """NUL bytes, or more than 10% control characters (tabs and ESC sequences are fine)."""
    if b"\x00" in b:
        return True
    if not b or _CTRL.search(b) is None:
        return False
    sample = b[:512]
    ctrl = len(_CTRL.findall(sample)) - sample.count(b"\x1b")
    return ctrl * 10 > len(sample)


_RECORD_START = re.compile(r'^(?:time="|\{|\S+ \S+ \S+ \[|[A-Z][a-z]{2} [ \d]\d \d\d:|\d{4}[-/]\d\d[-/]\d\d|[A-Z]{4}\[|\x1b\[)')


def _record_start(text: str) -> bool:
    """A physical line that starts a record of its own (never a continuation)."""
    return _RECORD_START.match(text) is not None


def _open_quote(text: str) -> bool:
    """A logrus text record whose quoting is still open (a raw newline inside a value)."""
    return text.startswith('time="') and (text.count('"') - text.count('\\"')) % 2 == 1


def open_at(info: FileInfo):  # type: ignore[no-untyped-def]
    """Open a file for reading (gzip transparently). Raises InputError."""
    try:
        return _open(info.path, info.gzip)
    except OSError as exc:
        raise InputError(f"cannot read {info.path!r}: {exc.strerror or exc}") from exc


def skip_to(fh, gz: bool, start: int) -> bool:  # type: ignore[no-untyped-def]
    """Position ``fh`` at byte ``start`` of the (decompressed) stream; False if it is
    shorter than that or cut before it."""
    if not start:
        return True
    if not gz:
        fh.seek(start)
        return True
    remaining = start  # gzip streams cannot seek cheaply; skip by reading
    while remaining > 0:
        try:
            got = fh.read(min(CHUNK, remaining))
        except (EOFError, OSError, zlib.error):
            return False
        if not got:
            return False
        remaining -= len(got)
    return True


def _decode(raw: bytes) -> tuple[str, DropReason | None]:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        if _looks_binary(raw):
            return text.replace("\x00", "\\x00"), DropReason.BINARY
        return text, DropReason.INVALID_UTF8
    if _looks_binary(raw):
        return text.replace("\x00", "\\x00"), DropReason.BINARY
    return text, None


def describe_problem(
    problem: DropReason,
    raw: bytes | None = None,
    *,
    length: int | None = None,
    error: BaseException | None = None,
    gz: bool = False,
) -> str:
    """What is wrong with a problem line, in words (for the message naming its file and
    line). Called for problem lines only: clean input never pays for it."""
    if problem is DropReason.BINARY:
        if raw is not None and b"\x00" in raw:
            return f"NUL bytes ({raw.count(0):,} in the line): binary data, not text"
        return "binary data (mostly control characters), not text"
    if problem is DropReason.INVALID_UTF8:
        if raw is not None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        return "invalid UTF-8"
    if problem is DropReason.TOO_LONG:
        size = f"{length:,} bytes" if length is not None else "longer"
        return f"a line of {size}, over the {MAX_LINE:,}-byte limit (its first {KEEP_HEAD:,} bytes are kept)"
    if problem is DropReason.TRUNCATED:
        what = "truncated gzip" if gz else "the input cannot be read further"
        why = f" ({error})" if error is not None and str(error) else ""
        return f"{what}{why}: the file ends inside this line"
    return str(problem.value).replace("_", " ")


def count_newlines(info: FileInfo, end: int) -> int | None:
    """How many newlines the first ``end`` bytes of the (decompressed) stream hold: the
    number of the line at ``end`` minus one. None when they cannot be read. Only used to
    number a problem line met after resuming from a checkpoint."""
    n = 0
    left = end
    try:
        with _open(info.path, info.gzip) as fh:
            while left > 0:
                got = fh.read(min(CHUNK, left))
                if not got:
                    return None
                n += got.count(b"\n")
                left -= len(got)
    except (EOFError, OSError, zlib.error):
        return None
    return n
