"""Dropped lines are kept for inspection, redacted and capped in size."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from regwatch.events import Dropped, DropReason
from regwatch.redact import redact

KEEP = 4096


class Quarantine:
    """Appends unintentional drops to ``<dir>/dropped.jsonl``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    @property
    def file(self) -> Path:
        return self.dir / "dropped.jsonl"

    def keep(self, drops: Iterable[Dropped]) -> int:
        rows = [
            json.dumps(
                {
                    "reason": d.reason.value,
                    "path": d.path,
                    "offset": d.offset,
                    "detail": d.detail,
                    "text": redact(d.text[:KEEP]),
                    "truncated": len(d.text) > KEEP or d.reason is DropReason.TOO_LONG,
                },
                ensure_ascii=False,
            )
            for d in drops
            if not d.intentional
        ]
        if not rows:
            return 0
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.file, "a", encoding="utf-8") as fh:
            fh.write("\n".join(rows) + "\n")
        return len(rows)

    def read(self, limit: int | None = None) -> list[dict[str, object]]:
        if not self.file.exists():
            return []
        out = []
        with open(self.file, encoding="utf-8") as fh:
            for line in fh:
                if limit is not None and len(out) >= limit:
                    break
                out.append(json.loads(line))
        return out
