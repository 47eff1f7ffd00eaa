"""The compiled hot path (``native/``, Rust with the standard library only), through ctypes.

``pip install .`` (and ``pip install -e .``, and a wheel) builds it with setuptools-rust
into ``regwatch/_native.<EXT_SUFFIX>`` (e.g. ``_native.cpython-311-x86_64-linux-gnu.so``)
next to this module; see setup.py. ``REGWATCH_NATIVE_LIB=/path/lib.so`` loads another
build instead. When the library is missing or cannot be loaded, :func:`load` returns
None and the ingest uses the DuckDB fast path and correlator instead (both must give
identical events; tests/unit/test_native_*.py check that), and regwatch says so once on
stderr. ``REGWATCH_NATIVE=0`` chooses that path deliberately (no notice). Under
``CI=true`` the tests require the library. :func:`status` tells which path is active and
why (``regwatch check`` prints it).

Arrow is the boundary: Rust reads Python's Arrow buffers in place, and the columns it
builds become Arrow arrays without a copy (the buffers are freed when the last array
using them is collected). ctypes releases the GIL during each call, so the parse and
store stages still run side by side.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from regwatch.errors import RegwatchError

LIB_STEM = "_native"  # the setuptools-rust target regwatch._native
LIB_NAME = "_native.so"  # what `make native` used to copy here (still found)
# ingest throughput of docs/benchmarks.md (5M lines native; 1M lines REGWATCH_NATIVE=0)
NATIVE_LINES_PER_S = 188_948
FALLBACK_LINES_PER_S = 20_016
STR, I64, F64, I32, BOOL, TS_US = range(6)
_TYPES = {
    STR: pa.string(),
    I64: pa.int64(),
    F64: pa.float64(),
    I32: pa.int32(),
    BOOL: pa.bool_(),
    TS_US: pa.timestamp("us", tz="UTC"),
}
_KINDS = {
    pa.string(): STR,
    pa.int64(): I64,
    pa.float64(): F64,
    pa.int32(): I32,
    pa.bool_(): BOOL,
    pa.timestamp("us", tz="UTC"): TS_US,
}


class NativeError(RegwatchError):
    """The compiled library failed on a block (a bug: the caller falls back)."""


class _RwCol(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("name_len", ctypes.c_size_t),
        ("kind", ctypes.c_uint32),
        ("len", ctypes.c_size_t),
        ("nulls", ctypes.c_size_t),
        ("validity", ctypes.c_void_p),
        ("validity_len", ctypes.c_size_t),
        ("offsets", ctypes.c_void_p),
        ("offsets_len", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("data_len", ctypes.c_size_t),
    ]


class InCol(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_uint32),
        ("offset", ctypes.c_int64),
        ("len", ctypes.c_int64),
        ("validity", ctypes.c_void_p),
        ("offsets", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
    ]


_lib: Any = None
_tried = False
_loaded_path: Path | None = None
_why_not: str | None = None  # why the library is not loaded (after load() tried)
_noticed = False


def candidates() -> list[Path]:
    """Where the library may be, in order: $REGWATCH_NATIVE_LIB alone when set, else the
    extension-module names next to this file (what setuptools-rust writes in a wheel, an
    install or an editable install), then the plain ``_native.so``."""
    env = os.environ.get("REGWATCH_NATIVE_LIB")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parent
    names = [LIB_STEM + sfx for sfx in importlib.machinery.EXTENSION_SUFFIXES]
    if LIB_NAME not in names:
        names.append(LIB_NAME)
    return [here / n for n in names]


def library_path() -> Path:
    """The library that is (or would be) loaded: the first candidate that exists."""
    cands = candidates()
    return next((p for p in cands if p.exists()), cands[0])


@dataclass(frozen=True)
class Status:
    active: bool
    path: Path | None  # the loaded library
    reason: str | None  # why the DuckDB fallback is used

    def describe(self) -> str:
        if self.active:
            return f"native core active ({self.path})"
        return f"native core not active: {self.reason}; ingest uses the DuckDB fallback"


def status() -> Status:
    """Which ingest path is active, and why. Does not print the fallback notice."""
    if os.environ.get("REGWATCH_NATIVE", "1") == "0":
        return Status(False, None, "disabled by REGWATCH_NATIVE=0")
    lib = _load(notice=False)
    if lib is not None:
        return Status(True, _loaded_path, None)
    return Status(False, None, _why_not or "not loaded")


def fallback_notice(reason: str) -> str:
    slower = NATIVE_LINES_PER_S / FALLBACK_LINES_PER_S
    return (
        f"regwatch: note: running without the native core ({reason}); ingest uses the DuckDB "
        f"fallback, about {slower:.0f}x slower (measured {FALLBACK_LINES_PER_S / 1000:.0f}k vs "
        f"{NATIVE_LINES_PER_S / 1000:.0f}k lines/s, docs/benchmarks.md). To build it, install Rust "
        f"(cargo on PATH or in ~/.cargo/bin) and reinstall regwatch from source (pip install .)."
    )


def _notice_once() -> None:
    global _noticed
    if not _noticed and _why_not is not None:
        _noticed = True
        print(fallback_notice(_why_not), file=sys.stderr, flush=True)


def load() -> Any:
    """The loaded library, or None (not built, not loadable, or disabled by REGWATCH_NATIVE=0).

    The first time it is found missing or unloadable, one notice goes to stderr."""
    return _load(notice=True)


def _load(*, notice: bool) -> Any:
    global _lib, _tried, _why_not, _loaded_path
    if os.environ.get("REGWATCH_NATIVE", "1") == "0":
        return None
    if _tried:
        if _lib is None and notice:
            _notice_once()
        return _lib
    _tried = True
    cands = candidates()
    path = next((p for p in cands if p.exists()), None)
    if path is None:
        where = str(cands[0]) if len(cands) == 1 else f"no {LIB_STEM}*.so in {cands[0].parent}"
        _why_not = (
            f"REGWATCH_NATIVE_LIB={cands[0]} does not exist" if os.environ.get("REGWATCH_NATIVE_LIB")
            else f"not built: {where}"
        )
        if notice:
            _notice_once()
        return None
    try:
        lib = _bind(ctypes.CDLL(str(path)))
    except (OSError, AttributeError) as exc:  # not a library, wrong arch, an old build
        _why_not = f"{path} cannot be loaded: {exc}"
        if notice:
            _notice_once()
        return None
    _lib, _loaded_path = lib, path
    return lib


def _bind(lib: Any) -> Any:
    vp, i64, sz = ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t
    lib.rw_table_ncols.argtypes = [vp]
    lib.rw_table_ncols.restype = sz
    lib.rw_table_col.argtypes = [vp, sz, ctypes.POINTER(_RwCol)]
    lib.rw_table_col.restype = None
    lib.rw_table_free.argtypes = [vp]
    lib.rw_table_free.restype = None
    lib.rw_parse.argtypes = [vp, i64, i64, vp, i64, ctypes.POINTER(vp), ctypes.POINTER(vp)]
    lib.rw_parse.restype = ctypes.c_int32
    lib.rw_fold_new.argtypes = [ctypes.c_char_p, sz]
    lib.rw_fold_new.restype = vp
    lib.rw_fold_free.argtypes = [vp]
    lib.rw_fold_free.restype = None
    lib.rw_fold_run.argtypes = [
        vp, ctypes.POINTER(InCol), sz, i64,
        vp, i64, i64, vp, vp,
        i64, i64, ctypes.c_int32,
        ctypes.POINTER(vp), ctypes.POINTER(vp),
    ]
    lib.rw_fold_run.restype = ctypes.c_int32
    lib.rw_fold_pending.argtypes = [vp]
    lib.rw_fold_pending.restype = i64
    lib.rw_fold_pending_in.argtypes = [vp, i64, i64]
    lib.rw_fold_pending_in.restype = i64
    lib.rw_fold_set_prefix.argtypes = [vp, ctypes.c_char_p, sz]
    lib.rw_fold_set_prefix.restype = ctypes.c_int32
    lib.rw_fold_merged.argtypes = [vp]
    lib.rw_fold_merged.restype = i64
    return lib


def available() -> bool:
    return load() is not None


class _Owner:
    """Frees a Rust table once no Arrow buffer refers to it any more."""

    __slots__ = ("ptr",)

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr

    def __del__(self) -> None:
        if self.ptr and _lib is not None:
            _lib.rw_table_free(self.ptr)
            self.ptr = 0


def to_table(ptr: int) -> pa.Table:
    """A Rust table as an Arrow table, sharing its memory."""
    lib = _lib
    owner = _Owner(ptr)
    names: list[str] = []
    arrays: list[pa.Array] = []
    col = _RwCol()
    for i in range(lib.rw_table_ncols(ptr)):
        lib.rw_table_col(ptr, i, ctypes.byref(col))
        name = ctypes.string_at(col.name, col.name_len).decode()
        typ = _TYPES[col.kind]
        validity = pa.foreign_buffer(col.validity, col.validity_len, base=owner) if col.nulls else None
        data = pa.foreign_buffer(col.data or 0, col.data_len, base=owner)
        if col.kind == STR:
            offsets = pa.foreign_buffer(col.offsets, col.offsets_len, base=owner)
            arr = pa.Array.from_buffers(typ, col.len, [validity, offsets, data], null_count=col.nulls)
        else:
            arr = pa.Array.from_buffers(typ, col.len, [validity, data], null_count=col.nulls)
        names.append(name)
        arrays.append(arr)
    return pa.table(arrays, names=names)


def in_cols(arrays: list[pa.Array]) -> Any:
    """Borrowed views of single-chunk Arrow arrays, for Rust (keep the arrays alive)."""
    out = (InCol * len(arrays))()
    for k, arr in enumerate(arrays):
        bufs = arr.buffers()
        kind = _KINDS[arr.type]
        c = out[k]
        c.kind = kind
        c.offset = arr.offset
        c.len = len(arr)
        c.validity = bufs[0].address if (bufs[0] is not None and arr.null_count) else None
        if kind == STR:
            c.offsets = bufs[1].address
            c.data = bufs[2].address if bufs[2] is not None else None
        else:
            c.offsets = None
            c.data = bufs[1].address if bufs[1] is not None else None
    return out


def single(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def fast_parse(lines: pa.Array, seq0: int) -> tuple[pa.Table, pa.Array]:
    """Parse a block of lines (a string array; line i has seq ``seq0 + i``).

    Returns the rows parsed here, in the columns of
    :func:`regwatch.parsing.columnar.fast_parse` with the values the per-line parser gives
    each line (``bytes_w`` is the event's bytes: for a completed upload, the size its
    ``_state`` records), and the seqs left to the per-line parser: every line whose shape
    the registry's formatters do not write (see native/src/parse.rs).
    """
    lib = load()
    if lib is None:
        raise NativeError("the native library is not loaded; reinstall regwatch with cargo available (pip install .)")
    lines = single(lines)
    if lines.type != pa.string():
        lines = lines.cast(pa.string())
    bufs = lines.buffers()
    fast_p, slow_p = ctypes.c_void_p(), ctypes.c_void_p()
    data_addr = bufs[2].address if bufs[2] is not None else None
    rc = lib.rw_parse(bufs[1].address, lines.offset, len(lines), data_addr, seq0, ctypes.byref(fast_p), ctypes.byref(slow_p))
    if rc != 0:
        raise NativeError(f"native parse failed on a block of {len(lines)} lines (code {rc})")
    fast = to_table(fast_p.value)
    slow = to_table(slow_p.value)
    return fast, slow.column("seq").combine_chunks() if slow.num_columns else pa.nulls(0, pa.int64())


class Folder:
    """Request folding in Rust, with the rules and carry of
    :class:`regwatch.correlate.BlockCorrelator`, for one log stream.

    :meth:`run` returns (records, other) as tables of the Event fields, with ids and raw
    text filled from the block's lines wherever the observation rows left them empty
    (so a caller redacts the raw text of a secret-bearing line before, not after)."""

    def __init__(self, fingerprint: str) -> None:
        from regwatch.events import _source_key

        lib = load()
        if lib is None:
            raise NativeError("the native library is not loaded; reinstall regwatch with cargo available (pip install .)")
        self._lib = lib
        prefix = _source_key(fingerprint).encode()
        self._ptr = lib.rw_fold_new(prefix, len(prefix))
        if not self._ptr:
            raise NativeError("native folder could not be created")

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr:
            self._lib.rw_fold_free(ptr)
            self._ptr = None

    @property
    def merged(self) -> int:
        return int(self._lib.rw_fold_merged(self._ptr))

    def pending_offset(self) -> int | None:
        v = int(self._lib.rw_fold_pending(self._ptr))
        return None if v < 0 else v

    def pending_in(self, lo: int, hi: int) -> int | None:
        """The smallest offset held among rows whose first line's seq is in [lo, hi)."""
        v = int(self._lib.rw_fold_pending_in(self._ptr, lo, hi))
        return None if v < 0 else v

    def set_fingerprint(self, fingerprint: str) -> None:
        """Ids made from the next block on are the next file's (a rotated family read
        as one stream); rows already carried keep theirs."""
        from regwatch.events import _source_key

        prefix = _source_key(fingerprint).encode()
        if self._lib.rw_fold_set_prefix(self._ptr, prefix, len(prefix)) != 0:
            raise NativeError("native folder could not take the next file's id prefix")

    def run(
        self,
        obs: pa.Table,
        lines: pa.Array | None,
        line_offsets: Any,
        seq0: int,
        *,
        last_seq: int,
        final: bool,
    ) -> tuple[pa.Table, pa.Table]:
        import numpy as np

        from regwatch.correlate import OBS_SCHEMA

        if obs.schema != OBS_SCHEMA:
            obs = obs.select(OBS_SCHEMA.names).cast(OBS_SCHEMA)
        arrays = [single(obs.column(i)) for i in range(obs.num_columns)]
        cols = in_cols(arrays)
        if lines is None or len(lines) == 0:
            from regwatch import arrowkit

            lines = arrowkit.strings([])
            offs = np.zeros(1, np.int64)
        else:
            lines = single(lines)
            offs = np.ascontiguousarray(line_offsets, dtype=np.int64)
        lbufs = lines.buffers()
        recs_p, other_p = ctypes.c_void_p(), ctypes.c_void_p()
        rc = self._lib.rw_fold_run(
            self._ptr, cols, len(arrays), obs.num_rows,
            lbufs[1].address, lines.offset, len(lines),
            lbufs[2].address if lbufs[2] is not None else None,
            offs.ctypes.data,
            seq0, last_seq, 1 if final else 0,
            ctypes.byref(recs_p), ctypes.byref(other_p),
        )
        del arrays, cols
        if rc != 0:
            raise NativeError(f"native request folding failed on {obs.num_rows} rows (code {rc})")
        return to_table(recs_p.value), to_table(other_p.value)
