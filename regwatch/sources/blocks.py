"""Read a log file in blocks of whole lines, for the columnar path.

Bad bytes, over-long lines and a cut gzip never raise and never hide the good lines
around them; the work per line is done by bytes methods in C: split, decode and length.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate

from regwatch.events import DropReason
from regwatch.sources.files import KEEP_HEAD, MAX_LINE, FileInfo, _decode, open_at, skip_to

BLOCK_BYTES = 16 << 20
_CTRL_BLOCK = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Block:
    """Whole lines: ``texts[i]`` starts at byte ``offsets[i]`` and ends before ``ends[i]``."""

    texts: list[str]
    offsets: list[int]
    ends: list[int]
    problems: list[DropReason | None] | None  # None: every line is clean text

    def __len__(self) -> int:
        return len(self.texts)


def _split(body: bytes, base: int) -> Block:
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
    for r in raw:
        if len(r) > MAX_LINE:
            texts.append(r[:KEEP_HEAD].decode("utf-8", "replace"))
            problems.append(DropReason.TOO_LONG)
            continue
        t, p = _decode(r)
        texts.append(t)
        problems.append(p)
    return Block(texts, offsets, ends, problems)


def read_blocks(info: FileInfo, start: int = 0, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Blocks of whole lines from byte ``start`` of the (decompressed) stream."""
    fh = open_at(info)
    with fh:
        if not skip_to(fh, info.gzip, start):
            return
        pos = start
        carry = b""
        skipping: tuple[bytes, int] | None = None  # head and offset of an over-long line
        while True:
            truncated = False
            try:
                chunk = fh.read(block_bytes)
            except (EOFError, OSError, zlib.error):
                chunk = b""
                truncated = True
            if not chunk:
                if skipping is not None:
                    yield Block([skipping[0].decode("utf-8", "replace")], [skipping[1]], [pos], [DropReason.TOO_LONG])
                elif carry:
                    text, problem = _decode(carry)
                    if truncated:
                        problem = DropReason.TRUNCATED
                    elif len(carry) > MAX_LINE:
                        text, problem = carry[:KEEP_HEAD].decode("utf-8", "replace"), DropReason.TOO_LONG
                    yield Block([text], [pos - len(carry)], [pos], [problem])
                elif truncated:
                    yield Block([""], [pos], [pos], [DropReason.TRUNCATED])
                return
            base = pos - len(carry)
            pos += len(chunk)
            if skipping is not None:
                nl = chunk.find(b"\n")
                if nl < 0:
                    continue
                yield Block(
                    [skipping[0].decode("utf-8", "replace")],
                    [skipping[1]],
                    [pos - len(chunk) + nl + 1],
                    [DropReason.TOO_LONG],
                )
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
