"""Dropped lines are kept for inspection, redacted and capped in size.

Lines the reader could not take as text (binary data, NUL bytes, invalid UTF-8, an
over-long line, a truncated gzip) also get their 1-based line number in the file (from
:data:`regwatch.sources.blocks.PROBLEM_LINES`), and :meth:`Quarantine.messages` says
what went wrong, one line per file and kind of problem, naming the file and the line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from regwatch.events import Dropped, DropReason
from regwatch.redact import redact

KEEP = 4096
# the problems of the reading layer: their offsets are byte offsets in the file's
# (decompressed) content, and the reader numbered their lines
READ_PROBLEMS = frozenset({DropReason.BINARY, DropReason.INVALID_UTF8, DropReason.TOO_LONG, DropReason.TRUNCATED})


@dataclass
class Problem:
    """The lines of one file with one kind of read problem (what the message reports)."""

    path: str
    reason: DropReason
    count: int
    first_line: int | None
    first_offset: int
    detail: str
    last_line: int | None

    def message(self) -> str:
        where = f"line {self.first_line}" if self.first_line is not None else f"byte offset {self.first_offset}"
        text = f"regwatch: warning: {self.path}: {where}: {self.detail}"
        if self.reason is DropReason.TRUNCATED:
            return text + "; that partial line is dropped, the lines before it are kept"
        if self.count == 1:
            return text + "; that line is dropped, the lines around it are kept"
        span = f" (lines {self.first_line}-{self.last_line})" if self.last_line is not None else ""
        return text + f"; {self.count:,} {self.reason.value} lines in this file{span}, each dropped; the other lines are read as usual"


class Quarantine:
    """Appends unintentional drops to ``<dir>/dropped.jsonl``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.problems: dict[tuple[str, DropReason], Problem] = {}

    @property
    def file(self) -> Path:
        return self.dir / "dropped.jsonl"

    def keep(self, drops: Iterable[Dropped]) -> int:
        rows = []
        for d in drops:
            if d.intentional:
                continue
            row: dict[str, object] = {
                "reason": d.reason.value,
                "path": d.path,
                "offset": d.offset,
                "detail": d.detail,
                "text": redact(d.text[:KEEP]),
                "truncated": len(d.text) > KEEP or d.reason is DropReason.TOO_LONG,
            }
            if d.reason in READ_PROBLEMS and not d.detail:
                line, detail = self._note(d)
                row["detail"] = detail
                if line is not None:
                    row["line"] = line
            rows.append(json.dumps(row, ensure_ascii=False))
        if not rows:
            return 0
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.file, "a", encoding="utf-8") as fh:
            fh.write("\n".join(rows) + "\n")
        return len(rows)

    def _note(self, d: Dropped) -> tuple[int | None, str]:
        from regwatch.sources.blocks import PROBLEM_LINES
        from regwatch.sources.files import describe_problem

        found = PROBLEM_LINES.take(d.path, d.offset)
        line, detail = found if found is not None else (None, describe_problem(d.reason))
        key = (d.path, d.reason)
        p = self.problems.get(key)
        if p is None:
            self.problems[key] = Problem(d.path, d.reason, 1, line, d.offset, detail, line)
        else:
            p.count += 1
            if line is not None and (p.last_line is None or line > p.last_line):
                p.last_line = line
        return line, detail

    def messages(self, limit: int = 20) -> list[str]:
        """One line per file and kind of read problem met by :meth:`keep`, naming the file
        and the (first) line; at most ``limit`` lines, then one saying how many more."""
        probs = sorted(self.problems.values(), key=lambda p: (p.path, p.first_offset))
        out = [p.message() for p in probs[:limit]]
        if len(probs) > limit:
            rest = probs[limit:]
            files = len({p.path for p in rest})
            out.append(
                f"regwatch: warning: {len(rest)} more kind(s) of bad input in {files} file(s); "
                f"`regwatch dropped` lists every dropped line with its file and line"
            )
        return out

    def read(self, limit: int | None = None) -> list[dict[str, object]]:
        if not self.file.exists():
            return []
        out: list[dict[str, object]] = []
        with open(self.file, encoding="utf-8") as fh:
            for line in fh:
                if limit is not None and len(out) >= limit:
                    break
                out.append(json.loads(line))
        return out
