"""The checkpoint: file fingerprint → committed byte offset.

Written as tmp, fsync, rename, so a crash leaves either the old or the new state.
It moves only after the store has accepted the events before that offset.

Which file an entry belongs to (see "File identity" in ``sources/files.py`` and in
docs/architecture.md). Given a :class:`~regwatch.sources.files.Fingerprint`, which knows
its file, :meth:`FileCheckpoint.offset` picks the entry this file continues:

* entries are keyed by fingerprint, and different files can share one. So an entry also
  stores ``anchor``, a hash of the 4 KiB before its offset, and a file resumes only
  from an entry whose anchor bytes it holds at that offset, i.e. whose read prefix it
  extends (the one with the largest offset, if several do). A file that extends none
  is read from 0 and its commits go to an entry of its own, ``<fingerprint>~<n>``;
* an entry written while its file's fingerprint was unsettled stores ``head``, the
  number of bytes that fingerprint covered; a file whose first ``head`` bytes hash to
  that entry's key is the same file, grown, and resumes from it;
* an entry written by an older version has no anchor: it is trusted as before, and a
  file with no entry under its fingerprint also looks under its legacy fingerprint
  (the hash of its first KiB that those versions used).

A plain ``str`` fingerprint (no file known) gets the old behaviour: the entry under
that key, unchecked.

Format (version 1; the extra fields are optional): ``{"version": 1, "files": {key:
{"offset": n, "path": p, "anchor": h, "head": n}}, "meta": {...}}``. ``meta`` is free-form
state of the process that owns the checkpoint (the tailer records its globs there, see
docs/tailing.md); versions that do not know it ignore it.

For a reader that no longer holds the file an offset belongs to (the tailer commits a
chunk after the live file was truncated, or its rotated copy deleted), ``commit`` takes
the anchors precomputed from the bytes read (:func:`anchor_of`), instead of reading them
back from ``fp.path``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from regwatch.errors import CheckpointError
from regwatch.sources.files import ANCHOR_BYTES, Fingerprint, anchor, prefix_fingerprints, window

VERSION = 1
_SEP = "~"  # <fingerprint>~<n>: another file with the same fingerprint


def anchor_of(before: bytes) -> str:
    """The anchor of an offset, from the (up to) :data:`ANCHOR_BYTES` of content before it
    (pass exactly ``content[max(0, offset - ANCHOR_BYTES):offset]``): equal to what
    :func:`~regwatch.sources.files.anchor` reads back from the file."""
    return hashlib.blake2b(before[-ANCHOR_BYTES:] if len(before) > ANCHOR_BYTES else before, digest_size=10).hexdigest()


def _knows_file(fp: str) -> bool:
    return isinstance(fp, Fingerprint) and bool(fp.path)


class FileCheckpoint:
    """A versioned JSON checkpoint file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._state: dict[str, dict[str, Any]] | None = None
        self._index: dict[str, list[str]] | None = None  # fingerprint → its keys
        self._heads: set[int] = set()  # the "head" lengths of young entries
        self._meta: dict[str, Any] = {}

    def load(self) -> dict[str, dict[str, Any]]:
        """Key → {"offset": int, "path": str[, "anchor": str, "head": int]}. Raises CheckpointError."""
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
        meta = doc.get("meta")
        self._meta = meta if isinstance(meta, dict) else {}
        return self._state

    def meta(self) -> dict[str, Any]:
        """The free-form ``meta`` section (a copy). Raises CheckpointError."""
        self.load()
        return dict(self._meta)

    def set_meta(self, key: str, value: Any) -> None:
        """Set ``meta[key]`` (JSON-serialisable) and write the checkpoint durably. Raises CheckpointError."""
        self.load()
        self._meta[key] = value
        self._write()

    def find(self, fingerprint: str) -> int | None:
        """Like :meth:`offset`, but None when no entry belongs to this file (never read,
        or only other files with its fingerprint were); a ``str`` key is looked up unchecked."""
        state = self.load()
        if not _knows_file(fingerprint):
            entry = state.get(fingerprint)
            return int(entry["offset"]) if entry else None
        source, _ = self._choose(fingerprint)  # type: ignore[arg-type]
        return int(state[source]["offset"]) if source is not None else None

    def offset(self, fingerprint: str) -> int:
        """Where to resume reading the file ``fingerprint`` was taken from (0: from the start)."""
        state = self.load()
        if not _knows_file(fingerprint):
            entry = state.get(fingerprint)
            return int(entry["offset"]) if entry else 0
        source, _ = self._choose(fingerprint)  # type: ignore[arg-type]
        return int(state[source]["offset"]) if source is not None else 0

    def commit(self, positions: dict[str, tuple[str, int]], anchors: dict[str, str] | None = None) -> None:
        """Record ``fingerprint → (path, offset)`` durably. Offsets never move backwards.

        ``anchors``: fingerprint → the anchor of its offset (:func:`anchor_of`), for a
        caller that has the bytes before the offset; the file is then not read. Raises
        CheckpointError."""
        state = self.load()
        changed = False
        for fp, (path, offset) in positions.items():
            if not _knows_file(fp):
                cur = state.get(fp)
                if cur is None or int(cur["offset"]) < offset:
                    state[fp] = {"offset": offset, "path": path}
                    changed = True
                continue
            assert isinstance(fp, Fingerprint)
            source, target = self._choose(fp)
            if target is None:
                target = self._free_key(fp)
            self._remember(fp, target, target)  # from now on that entry is this file's
            cur = state.get(target)
            if cur is not None and int(cur["offset"]) >= offset:
                continue
            entry: dict[str, Any] = {"offset": offset, "path": path}
            a = anchors.get(fp) if anchors else None
            if a is None:
                a = anchor(fp.path, fp.gzip, offset)
            if a is not None:
                entry["anchor"] = a
            if not fp.settled:
                entry["head"] = fp.length
                self._heads.add(fp.length)
            state[target] = entry
            changed = True
        if not changed:
            return
        self._write()

    def _write(self) -> None:
        state = self.load()
        doc: dict[str, Any] = {"version": VERSION, "files": state}
        if self._meta:
            doc["meta"] = self._meta
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            # the rename itself is durable only once the directory is synced
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint {str(self.path)!r}: {exc.strerror or exc}") from exc

    # -- which entry belongs to this file --------------------------------------------

    def _keys(self, base: str) -> list[str]:
        """The keys stored under fingerprint ``base``: ``base`` and ``base~1``, ``base~2``, ..."""
        if self._index is None:
            self._index = {}
            for k, e in self.load().items():
                fp, sep, n = k.rpartition(_SEP)
                self._index.setdefault(fp if sep and n.isdigit() else k, []).append(k)
                if isinstance(e.get("head"), int):
                    self._heads.add(e["head"])
        return self._index.get(base, [])

    def _free_key(self, fp: str) -> str:
        keys = self._keys(str(fp))
        key, n = str(fp), 0
        while key in keys:
            n += 1
            key = f"{fp}{_SEP}{n}"
        keys.append(key)
        self._index.setdefault(str(fp), keys)  # type: ignore[union-attr]
        return key

    def _matches(self, fp: Fingerprint, entry: dict[str, Any]) -> bool:
        """Whether the file holds, just before the entry's offset, the bytes it recorded."""
        want = entry.get("anchor")
        if want is None:
            return True  # written before anchors existed: trusted, as it always was
        data = window(fp.path, fp.gzip, int(entry["offset"]))
        return data is not None and hashlib.blake2b(data, digest_size=10).hexdigest() == want

    def _best(self, fp: Fingerprint, keys: list[str], head: int | None = None) -> str | None:
        state = self.load()
        found = None
        # ascending offsets: a gzip file is then decompressed once for all of them
        for k in sorted(keys, key=lambda k: int(state[k]["offset"])):
            e = state[k]
            if head is not None and e.get("head") != head:
                continue
            if self._matches(fp, e):
                found = k
        return found

    def _remember(self, fp: Fingerprint, source: str | None, target: str | None) -> None:
        # kept on the fingerprint, which lives for one pass over its file: the entry chosen
        # when reading starts is the one the commits of that pass go to
        fp.__dict__.setdefault("_checkpoint_choice", {})[str(self.path)] = (source, target)

    def _choose(self, fp: Fingerprint) -> tuple[str | None, str | None]:
        """(key to resume from, key to commit to) for the file ``fp`` was taken from."""
        memo = fp.__dict__.get("_checkpoint_choice", {}).get(str(self.path))
        if memo is not None:
            return memo  # type: ignore[no-any-return]
        state = self.load()
        own = self._best(fp, self._keys(fp))
        choice: tuple[str | None, str | None] = (own, own)
        if own is None:
            # the same file, read while its fingerprint was unsettled (shorter head)
            heads = sorted(n for n in self._heads if n < fp.length)
            for n, key in sorted(prefix_fingerprints(fp.path, fp.gzip, heads).items(), reverse=True):
                young = self._best(fp, self._keys(key), head=n)
                if young is not None:
                    choice = (young, None)
                    break
            else:
                old = state.get(fp.legacy) if fp.legacy and fp.legacy != fp else None
                if old is not None and "anchor" not in old:
                    choice = (fp.legacy, None)  # written by a version before file identity
        self._remember(fp, *choice)
        return choice
