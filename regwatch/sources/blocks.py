"""Read a log file in blocks of whole lines, for the columnar path.

Bad bytes, over-long lines and a cut gzip never raise and never hide the good lines
around them; the work per line is done by bytes methods in C: split, decode and length.

Line numbers cost nothing on clean input: a block knows how many lines it holds, so the
number of its first line is a running sum (counted from the file's start only when a
resumed read meets its first problem). For each problem line the block also says what is
wrong (``details``), and :data:`PROBLEM_LINES` keeps (path, offset) -> (line, detail)
until the quarantine takes it, so the message about the line can name it.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regwatch.events import DropReason
from regwatch.sources.files import (
    KEEP_HEAD,
    MAX_LINE,
    FileInfo,
    _decode,
    count_newlines,
    describe_problem,
    open_at,
    skip_to,
)

BLOCK_BYTES = 2 << 20  # 2 MiB (~5.7k registry lines): with the native parser, 1M lines at 184k lines/s and 258 MB peak (4 MiB: 197k, 293 MB)
_CTRL_BLOCK = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# maps every control byte but tab and LF, and CR, to 0 (one C pass instead of a regex scan)
_CLEAN_TABLE = bytes(0 if (b < 32 and b not in (9, 10)) or b == 127 else 1 for b in range(256))


class _ArrowTexts(Sequence[str]):
    """``texts`` of a clean block, read from its Arrow array only when asked."""

    def __init__(self, arr: pa.StringArray) -> None:
        self.arr = arr

    def __len__(self) -> int:
        return len(self.arr)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return self.arr[i].to_pylist()
        return self.arr[i].as_py()


@dataclass
class Block:
    """Whole lines: ``texts[i]`` starts at byte ``offsets[i]`` and ends before ``ends[i]``.

    A clean block (valid UTF-8, no control bytes, no CR, no over-long line) also has
    ``arrow``, its lines as one Arrow string array built straight from the bytes read, so
    the columnar path never makes a Python object per line."""

    texts: Sequence[str]
    offsets: Sequence[int]
    ends: Sequence[int]
    problems: list[DropReason | None] | None  # None: every line is clean text
    arrow: pa.StringArray | None = None
    # with ``problems``: what is wrong with each problem line (None for the good ones)
    details: list[str | None] | None = None
    first_line: int | None = None  # 1-based number of texts[0] in the file (read_blocks sets it)

    def __len__(self) -> int:
        return len(self.texts)


def _split_arrow(body: bytes, base: int) -> Block | None:
    """The clean fast case of :func:`_split`, or None when the block needs the per-line care."""
    if 0 in body.translate(_CLEAN_TABLE):  # a control byte or CR: per-line care
        return None
    data = body + b"\n"
    nl = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    starts = np.empty(len(nl) + 1, np.int64)
    starts[0] = 0
    starts[1:] = nl + 1
    if int(np.diff(starts).max()) > MAX_LINE + 1:
        return None
    arr = pa.StringArray.from_buffers(len(nl), pa.py_buffer(starts.astype(np.int32)), pa.py_buffer(data))
    try:
        arr.validate(full=True)  # UTF-8
    except pa.ArrowInvalid:
        return None
    arr = pc.utf8_rtrim(arr, characters="\n")
    ends = base + starts[1:]
    offsets = base + starts[:-1]
    return Block(_ArrowTexts(arr), offsets, ends, None, arr)


def _split(body: bytes, base: int) -> Block:
    if len(body) < (1 << 31) - 1:
        fast = _split_arrow(body, base)
        if fast is not None:
            return fast
    raw = body.split(b"\n")
    lens = [len(r) + 1 for r in raw]
    ends = [base + e for e in accumulate(lens)]
    offsets = [e - n for e, n in zip(ends, lens)]
    if body.isascii() and _CTRL_BLOCK.search(body) is None and max(lens) <= MAX_LINE:
        texts = body.decode("ascii").split("\n")
        if b"\r" in body:
            texts = [t[:-1] if t.endswith("\r") else t for t in texts]
        return Block(texts, offsets, ends, None)
    texts = []
    problems: list[DropReason | None] = []
    details: list[str | None] = []
    for r in raw:
        if len(r) > MAX_LINE:
            texts.append(r[:KEEP_HEAD].decode("utf-8", "replace"))
            problems.append(DropReason.TOO_LONG)
            details.append(describe_problem(DropReason.TOO_LONG, length=len(r)))
            continue
        t, p = _decode(r)
        texts.append(t)
        problems.append(p)
        details.append(None if p is None else describe_problem(p, r))
    return Block(texts, offsets, ends, problems, details=details)


class ProblemLines:
    """(path, byte offset) -> (line number, detail) of the problem lines read, until the
    quarantine takes them (bounded: past ``cap`` entries, new ones are not kept)."""

    def __init__(self, cap: int = 100_000) -> None:
        self.cap = cap
        self._d: dict[tuple[str, int], tuple[int | None, str]] = {}
        self._lock = threading.Lock()

    def note(self, path: str, block: Block) -> None:
        assert block.problems is not None
        details = block.details or [None] * len(block)
        with self._lock:
            for i, p in enumerate(block.problems):
                if p is not None and len(self._d) < self.cap:
                    line = None if block.first_line is None else block.first_line + i
                    self._d[(path, int(block.offsets[i]))] = (line, details[i] or describe_problem(p))

    def take(self, path: str, offset: int) -> tuple[int | None, str] | None:
        with self._lock:
            return self._d.pop((path, offset), None)

    def forget(self, path: str) -> None:
        with self._lock:
            for k in [k for k in self._d if k[0] == path]:
                del self._d[k]


PROBLEM_LINES = ProblemLines()


def read_blocks(info: FileInfo, start: int = 0, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Blocks of whole lines from byte ``start`` of the (decompressed) stream, each with
    the number of its first line; the problem lines are noted in :data:`PROBLEM_LINES`."""
    PROBLEM_LINES.forget(info.path)
    line: int | None = 1 if start == 0 else None  # unknown until needed after a resume
    for block in _read_blocks(info, start, block_bytes):
        if block.problems is not None:
            if line is None:
                n = count_newlines(info, start)
                line = None if n is None else n + 1
            block.first_line = line
            PROBLEM_LINES.note(info.path, block)
        else:
            block.first_line = line
        if line is not None:
            line += len(block)
        yield block


def _read_blocks(info: FileInfo, start: int, block_bytes: int) -> Iterator[Block]:
    fh = open_at(info)
    with fh:
        if not skip_to(fh, info.gzip, start):
            return
        pos = start
        carry = b""
        skipping: tuple[bytes, int] | None = None  # head and offset of an over-long line
        while True:
            cut_off: Exception | None = None
            try:
                chunk = fh.read(block_bytes)
            except (EOFError, OSError, zlib.error) as exc:
                chunk = b""
                cut_off = exc
            if not chunk:
                if skipping is not None:
                    yield _too_long(skipping, pos, newline=False)
                elif carry:
                    text, problem = _decode(carry)
                    detail = None if problem is None else describe_problem(problem, carry)
                    if cut_off is not None:
                        problem, detail = DropReason.TRUNCATED, describe_problem(DropReason.TRUNCATED, error=cut_off, gz=info.gzip)
                    elif len(carry) > MAX_LINE:
                        text, problem = carry[:KEEP_HEAD].decode("utf-8", "replace"), DropReason.TOO_LONG
                        detail = describe_problem(problem, length=len(carry))
                    yield Block([text], [pos - len(carry)], [pos], [problem], details=[detail])
                elif cut_off is not None:
                    detail = describe_problem(DropReason.TRUNCATED, error=cut_off, gz=info.gzip)
                    yield Block([""], [pos], [pos], [DropReason.TRUNCATED], details=[detail])
                return
            base = pos - len(carry)
            pos += len(chunk)
            if skipping is not None:
                nl = chunk.find(b"\n")
                if nl < 0:
                    continue
                yield _too_long(skipping, pos - len(chunk) + nl + 1, newline=True)
                skipping = None
                carry = b""
                data = chunk[nl + 1 :]
                base = pos - len(data)
            else:
                data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > MAX_LINE:
                    skipping = (data[:KEEP_HEAD], base)
                    carry = b""
                else:
                    carry = data
                continue
            body, carry = data[:cut], data[cut + 1 :]
            if body or cut == 0:
                yield _split(body, base)
            if len(carry) > MAX_LINE:
                skipping = (carry[:KEEP_HEAD], pos - len(carry))
                carry = b""


def _too_long(skipping: tuple[bytes, int], end: int, *, newline: bool) -> Block:
    """The block of one over-long line (its head kept) that ends at byte ``end``."""
    head, start = skipping
    detail = describe_problem(DropReason.TOO_LONG, length=end - start - (1 if newline else 0))
    return Block([head.decode("utf-8", "replace")], [start], [end], [DropReason.TOO_LONG], details=[detail])
