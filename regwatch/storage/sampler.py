"""Storage samples: how full each registry storage path is, over time.

One :class:`StorageSampler` is made per service; its :meth:`~StorageSampler.sample`
runs from the scheduler every ``storage.interval``. For each configured path it takes

* ``statvfs``: the used and total bytes of the filesystem holding the path (what fills
  up, and what the forecaster and the disk alerts read), and
* with ``tree: true``, the registry root's own bytes, walked a slice at a time
  (:mod:`regwatch.storage.tree`), and
* with ``storage.harbor``, Harbor's own accounting (:mod:`regwatch.storage.harbor`).

Each sample is written to the store as a Record of kind ``storage_sample``. A path that
vanished or cannot be read gives a :class:`StorageProblem` (the daemon logs it and
counts it as a metric) and the other paths are sampled as usual.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from regwatch.config import StorageConfig
from regwatch.storage.tree import RootGone, TreeWalker
from regwatch.stores.base import Record, Store

KIND = "storage_sample"
METHODS = ("statvfs", "tree", "harbor")
#: the share of one core the tree walk may use, averaged over the sampling interval
TREE_CPU_SHARE = 0.03
Method = Literal["statvfs", "tree", "harbor"]


@dataclass(frozen=True, slots=True)
class StorageSample:
    """One measurement of one path by one method.

    ``used_bytes``/``capacity_bytes``: the filesystem's (statvfs), the tree's own bytes
    and the filesystem's size (tree), Harbor's total and the sum of its storage quotas
    (harbor; ``None`` capacity when a quota is unlimited). ``complete`` is False for a
    tree total that is not from a whole pass yet. ``files``: the tree's file count.
    """

    timestamp: datetime
    path: str
    used_bytes: int
    capacity_bytes: int | None
    method: Method
    files: int | None = None
    complete: bool = True

    @property
    def key(self) -> str:
        """The record key: one sample per path, method and instant (a retry replaces it)."""
        ts = self.timestamp.astimezone(timezone.utc)
        return f"{self.path}|{self.method}|{ts.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"

    def to_record(self) -> Record:
        return Record(KIND, self.key, self.timestamp, {
            "path": self.path, "method": self.method, "used_bytes": self.used_bytes,
            "capacity_bytes": self.capacity_bytes, "files": self.files, "complete": self.complete,
        })

    @classmethod
    def from_record(cls, rec: Record) -> StorageSample | None:
        """The sample a record holds, or None for data this version cannot read."""
        d = rec.data
        try:
            method = d["method"]
            if method not in METHODS:
                return None
            cap = d.get("capacity_bytes")
            files = d.get("files")
            return cls(rec.timestamp, str(d["path"]), int(d["used_bytes"]), None if cap is None else int(cap),
                       method, None if files is None else int(files), bool(d.get("complete", True)))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class StorageProblem:
    """A path (or Harbor) that could not be sampled this time. ``reason`` is a bounded
    label for the metric (``vanished``, ``not_a_directory``, ``unreadable``, ``harbor``,
    ``store``); ``str()`` is the log line."""

    path: str
    reason: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class SampleResult:
    samples: tuple[StorageSample, ...] = ()
    problems: tuple[StorageProblem, ...] = ()
    written: int = 0


def statvfs_sample(path: str, now: datetime) -> StorageSample | StorageProblem:
    """The filesystem holding ``path`` (which must be a directory): used and size in bytes.

    Used is ``(f_blocks - f_bfree) * f_frsize``, as ``df`` counts it (the root-reserved
    blocks are neither used nor available); capacity is ``f_blocks * f_frsize``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return StorageProblem(path, "vanished", f"storage path {path!r} does not exist (vanished or not mounted); the other paths are sampled")
    except OSError as exc:
        return StorageProblem(path, "unreadable", f"storage path {path!r} cannot be read: {exc.strerror}; fix its permissions")
    if not stat.S_ISDIR(st.st_mode):
        return StorageProblem(path, "not_a_directory",
                              f"storage path {path!r} is not a directory; point storage.paths at the registry's storage root")
    try:
        vfs = os.statvfs(path)
    except OSError as exc:
        reason = "vanished" if exc.errno == errno.ENOENT else "unreadable"
        return StorageProblem(path, reason, f"statvfs of storage path {path!r} failed: {exc.strerror}")
    return StorageSample(now, path, (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize, vfs.f_blocks * vfs.f_frsize, "statvfs")


@dataclass
class StorageSampler:
    """Samples every configured path; keeps the tree walks' state between samples.

    ``harbor_fetch`` is for the Harbor part (default: HTTP with the password from the
    environment, :func:`regwatch.storage.harbor.fetch`); ``environ`` is where the
    password variable is read."""

    cfg: StorageConfig
    store: Store
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    harbor_fetch: Callable[..., Any] | None = None
    _walkers: dict[str, TreeWalker] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for p in self.cfg.paths:
            if p.tree:
                self._walkers[p.path] = TreeWalker(p.path)

    @property
    def tree_budget(self) -> float:
        """CPU seconds one sample's tree walks may use, for all paths together."""
        return max(0.05, self.cfg.interval * TREE_CPU_SHARE)

    def sample(self, now: datetime) -> SampleResult:
        """Measure every path, write the samples, return them with the problems."""
        samples: list[StorageSample] = []
        problems: list[StorageProblem] = []
        walkers = [p for p in self.cfg.paths if p.tree]
        for p in self.cfg.paths:
            got = statvfs_sample(p.path, now)
            if isinstance(got, StorageProblem):
                problems.append(got)
                if p.path in self._walkers:
                    self._walkers[p.path].reset()  # a new pass when the path is back
                continue
            samples.append(got)
            if p.tree:
                tree = self._tree(p.path, now, got.capacity_bytes, self.tree_budget / len(walkers))
                (problems if isinstance(tree, StorageProblem) else samples).append(tree)  # type: ignore[arg-type]
        if self.cfg.harbor is not None:
            from regwatch.storage.harbor import harbor_sample

            got_h = harbor_sample(self.cfg.harbor, now, self.environ, self.harbor_fetch)
            (problems if isinstance(got_h, StorageProblem) else samples).append(got_h)  # type: ignore[arg-type]
        written = 0
        if samples:
            from regwatch.errors import StoreError

            try:
                written = self.store.put_records([s.to_record() for s in samples])
            except StoreError as exc:
                problems.append(StorageProblem("", "store", f"storage samples could not be stored: {exc}"))
        return SampleResult(tuple(samples), tuple(problems), written)

    def _tree(self, path: str, now: datetime, capacity: int | None, budget: float) -> StorageSample | StorageProblem:
        w = self._walkers[path]
        try:
            total = w.step(budget)
        except RootGone as exc:
            return StorageProblem(path, "vanished", f"storage path {path!r} vanished during the tree walk ({exc.strerror})")
        if total is not None:
            return StorageSample(now, path, total.bytes, capacity, "tree", total.files, True)
        if w.last is not None:  # mid-pass: the previous whole pass, marked as such
            return StorageSample(now, path, w.last.bytes, capacity, "tree", w.last.files, False)
        # the first pass is still running: what it has counted so far
        so_far = w.so_far()
        return StorageSample(now, path, so_far.bytes, capacity, "tree", so_far.files, False)
