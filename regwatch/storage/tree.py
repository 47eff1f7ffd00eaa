"""The registry root's own bytes, walked a slice at a time.

Why incremental: a registry tree has about one directory per file (``blobs/sha256/ab/
<digest>/data``, ``_layers/sha256/<digest>/link``), so a full walk of a 1M-file tree is
about 2M ``stat``/``scandir`` calls, several CPU seconds every sample. Two things keep
the walk's cost under a few percent of a core (measured in bench/bench_storage.py):

* **a CPU budget per sample**: :meth:`TreeWalker.step` walks until it has used
  ``budget`` seconds of its thread's CPU time, then stops and keeps its place; a pass
  over a large tree spans several samples, and the total is reported as complete only
  when a pass ends;
* **directory reuse**: a directory whose ``st_mtime_ns`` (and inode) has not changed
  since the previous pass has the same entries, so its files' sizes are taken from
  the previous pass instead of being listed and ``stat``-ed again. Registry files are
  content-addressed and written aside then renamed into place (which changes the
  directory's mtime); files that grow in place (an upload in progress under
  ``_uploads/``) are re-read on every ``full_every``-th pass. At most ``cache_dirs``
  directories are remembered, which bounds the memory (about 0.5 KB a directory).

Bytes are allocated bytes (``st_blocks * 512``, as ``du`` counts them) of the files and
the directories themselves; symbolic links are not followed. Entries that vanish during
the walk (garbage collection, finished uploads) are skipped, not errors.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass


#: directories remembered between passes (about 0.5 KB each): the reuse saves CPU, the
#: cap bounds the memory; directories beyond it are listed again on every pass
CACHE_DIRS = 200_000


@dataclass(frozen=True, slots=True)
class TreeTotal:
    """A pass's result: allocated bytes and the number of files (non-directories)."""

    bytes: int
    files: int


@dataclass(slots=True)
class _Dir:
    ino: int
    mtime_ns: int
    own: int  # the directory's own allocated bytes
    files_bytes: int  # of the non-directory entries directly in it
    files: int
    subdirs: tuple[str, ...]


class RootGone(OSError):
    """The walked root itself vanished or is not a directory."""


class TreeWalker:
    """An incremental ``du -s`` of one directory (not thread-safe: one job owns it)."""

    def __init__(
        self,
        root: str,
        *,
        full_every: int = 12,
        cache_dirs: int = CACHE_DIRS,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        self.root = root
        self.full_every = full_every
        self.cache_dirs = cache_dirs
        self._cpu = cpu
        self._cache: dict[str, _Dir] = {}
        self._next: dict[str, _Dir] = {}
        self._stack: list[str] = []
        self._bytes = 0
        self._files = 0
        self._passes = 0
        self.last: TreeTotal | None = None  # the last complete pass
        self.visited = 0  # directories visited in the current pass (progress)

    @property
    def passes(self) -> int:
        return self._passes

    def reset(self) -> None:
        """Abandon the current pass (the root vanished); the next step starts anew."""
        self._stack = []

    def so_far(self) -> TreeTotal:
        """What the current pass has counted so far."""
        return TreeTotal(self._bytes, self._files)

    def _begin(self) -> None:
        try:
            st = os.stat(self.root)
        except OSError as exc:
            raise RootGone(exc.errno, exc.strerror, self.root) from exc
        if not stat.S_ISDIR(st.st_mode):
            raise RootGone(20, "Not a directory", self.root)
        self._stack = [self.root]
        self._next = {}
        self._bytes = self._files = 0
        self.visited = 0

    def step(self, budget: float) -> TreeTotal | None:
        """Walk for about ``budget`` CPU seconds; the total when a pass ended, else None.

        Raises RootGone when the root itself is gone or not a directory."""
        if not self._stack:
            self._begin()
        full = self.full_every > 0 and self._passes % self.full_every == 0
        start = self._cpu()
        n = 0
        stack = self._stack
        cache = self._cache
        nxt = self._next
        while stack:
            path = stack.pop()
            n += 1
            if n % 64 == 0 and self._cpu() - start >= budget:
                stack.append(path)
                return None
            try:
                st = os.lstat(path)
            except OSError:
                if path == self.root:
                    self._stack = []
                    raise RootGone(2, "No such file or directory", path) from None
                continue  # vanished during the walk
            if not stat.S_ISDIR(st.st_mode):
                continue
            self.visited += 1
            old = cache.get(path)
            if not full and old is not None and old.mtime_ns == st.st_mtime_ns and old.ino == st.st_ino:
                d = old
                d.own = st.st_blocks * 512
            else:
                scanned = self._scan(path, st)
                if scanned is None:
                    continue
                d = scanned
            if len(nxt) < self.cache_dirs:
                nxt[path] = d
            self._bytes += d.own + d.files_bytes
            self._files += d.files
            stack.extend(d.subdirs)
        # the pass is over: directories not seen again are dropped from the cache
        self._cache = nxt
        self._next = {}
        self._passes += 1
        self.last = TreeTotal(self._bytes, self._files)
        return self.last

    @staticmethod
    def _scan(path: str, st: os.stat_result) -> _Dir | None:
        files_bytes = files = 0
        subdirs: list[str] = []
        try:
            with os.scandir(path) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            subdirs.append(e.path)
                            continue
                        files_bytes += e.stat(follow_symlinks=False).st_blocks * 512
                        files += 1
                    except OSError:
                        continue  # vanished between the listing and the stat
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError:
            # unreadable (not as root): count the directory itself, note nothing below
            return _Dir(st.st_ino, st.st_mtime_ns, st.st_blocks * 512, 0, 0, ())
        return _Dir(st.st_ino, st.st_mtime_ns, st.st_blocks * 512, files_bytes, files, tuple(subdirs))
