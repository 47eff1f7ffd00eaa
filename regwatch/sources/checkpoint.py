"""The checkpoint: file fingerprint → committed byte offset.

Written as tmp, fsync, rename, so a crash leaves either the old or the new state.
It moves only after the store has accepted the events before that offset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from regwatch.errors import CheckpointError

VERSION = 1


class FileCheckpoint:
    """A versioned JSON checkpoint file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._state: dict[str, dict[str, Any]] | None = None

    def load(self) -> dict[str, dict[str, Any]]:
        """Fingerprint → {"offset": int, "path": str}. Raises CheckpointError."""
        if self._state is not None:
            return self._state
        try:
            with open(self.path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            doc = {"version": VERSION, "files": {}}
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"cannot read checkpoint {str(self.path)!r}: {exc}; move it aside to re-read every file from the start"
            ) from exc
        if doc.get("version") != VERSION or not isinstance(doc.get("files"), dict):
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} has version {doc.get('version')!r}, expected {VERSION}; move it aside"
            )
        self._state = doc["files"]
        return self._state

    def offset(self, fingerprint: str) -> int:
        entry = self.load().get(fingerprint)
        return int(entry["offset"]) if entry else 0

    def commit(self, positions: dict[str, tuple[str, int]]) -> None:
        """Record ``fingerprint → (path, offset)`` durably. Offsets never move backwards."""
        state = self.load()
        changed = False
        for fp, (path, offset) in positions.items():
            cur = state.get(fp)
            if cur is None or int(cur["offset"]) < offset:
                state[fp] = {"offset": offset, "path": path}
                changed = True
        if not changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"version": VERSION, "files": state}, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint {str(self.path)!r}: {exc.strerror or exc}") from exc
