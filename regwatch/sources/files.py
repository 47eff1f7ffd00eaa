"""Read log files (plain or gzip) into RawLines, safely.

* a file is known by its fingerprint (a hash of its first bytes), not its name, so a
  rotated or gzipped copy of the same log maps to the same event ids;
* bad input never raises: NUL-laden or undecodable lines, over-long lines and a
  truncated gzip member become RawLines with ``problem`` set, and the good lines
  around them still come through;
* a logrus text record whose quoted value holds a raw newline spans two physical
  lines; they are joined into one logical line.
"""

from __future__ import annotations

import glob as _glob
import gzip
import hashlib
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from regwatch.errors import InputError
from regwatch.events import DropReason, RawLine

FINGERPRINT_BYTES = 1024
MAX_LINE = 1 << 20  # 1 MiB: longer lines are dropped as too_long (their head is kept)
KEEP_HEAD = 4096
MAX_JOIN = 64  # physical lines one logical record may span
CHUNK = 1 << 20


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
        or low.endswith(_NOT_LOGS)
        or low.startswith(("readme", "notes", "sources", "notifications", "hints"))
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
    """Fingerprint a file by its first (decompressed) bytes. Raises InputError."""
    gz = is_gzip(path)
    try:
        size = os.path.getsize(path)
        with _open(path, gz) as fh:
            try:
                head = fh.read(FINGERPRINT_BYTES)
            except (EOFError, OSError, zlib.error):
                head = b""
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    head = head[:FINGERPRINT_BYTES]
    fp = hashlib.blake2b(head, digest_size=10).hexdigest() if head else "empty"
    return FileInfo(path=path, fingerprint=fp, size=size, gzip=gz)


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


def read_lines(info: FileInfo, start: int = 0, source: str | None = None) -> Iterator[RawLine]:
    """Logical lines of a file from byte offset ``start`` (of the decompressed stream)."""
    src = source or info.path
    fp = info.fingerprint
    pending: RawLine | None = None
    joined = 0
    for text, off, end, problem in _physical(info, start):
        if pending is not None:
            if problem is None and joined < MAX_JOIN and _open_quote(pending.text) and not _record_start(text):
                pending = RawLine(src, info.path, pending.text + "\n" + text, fp, pending.offset, end)
                joined += 1
                continue
            yield pending
            pending = None
        if problem is None and _open_quote(text):
            pending = RawLine(src, info.path, text, fp, off, end)
            joined = 0
            continue
        yield RawLine(src, info.path, text, fp, off, end, problem)
    if pending is not None:
        yield pending


def _physical(info: FileInfo, start: int) -> Iterator[tuple[str, int, int, DropReason | None]]:
    """(text, offset, end, problem) per physical line; never raises on content."""
    try:
        fh = _open(info.path, info.gzip)
    except OSError as exc:
        raise InputError(f"cannot read {info.path!r}: {exc.strerror or exc}") from exc
    with fh:
        pos = 0
        if start:
            if info.gzip:
                # gzip streams cannot seek cheaply; skip by reading
                remaining = start
                while remaining > 0:
                    try:
                        got = fh.read(min(CHUNK, remaining))
                    except (EOFError, OSError, zlib.error):
                        return
                    if not got:
                        return
                    remaining -= len(got)
            else:
                fh.seek(start)
            pos = start
        buf = b""
        overlong: bytes | None = None  # head of a line that is being skipped
        overlong_off = 0
        truncated = False
        while True:
            try:
                chunk = fh.read(CHUNK)
            except (EOFError, OSError, zlib.error):
                chunk = b""
                truncated = True
            if not chunk:
                break
            data = buf + chunk
            base = pos - len(buf)
            i = 0
            while True:
                j = data.find(b"\n", i)
                if j < 0:
                    break
                raw = data[i:j]
                off = base + i
                if overlong is not None:
                    yield overlong.decode("utf-8", "replace"), overlong_off, base + j + 1, DropReason.TOO_LONG
                    overlong = None
                elif j - i > MAX_LINE:
                    yield raw[:KEEP_HEAD].decode("utf-8", "replace"), off, base + j + 1, DropReason.TOO_LONG
                else:
                    text, problem = _decode(raw)
                    yield text, off, base + j + 1, problem
                i = j + 1
            buf = data[i:]
            pos += len(chunk)
            if overlong is None and len(buf) > MAX_LINE:
                overlong = buf[:KEEP_HEAD]
                overlong_off = pos - len(buf)
                buf = b""
            elif overlong is not None:
                buf = b""
        tail_off = pos - len(buf)
        if overlong is not None:
            yield overlong.decode("utf-8", "replace"), overlong_off, pos, DropReason.TOO_LONG
        elif buf:
            text, problem = _decode(buf)
            if truncated:
                problem = DropReason.TRUNCATED
            yield text, tail_off, pos, problem
        elif truncated:
            yield "", pos, pos, DropReason.TRUNCATED


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
