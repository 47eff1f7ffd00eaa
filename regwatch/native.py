"""The compiled hot path (``native/``, Rust with the standard library only), through ctypes.

``make`` builds it into ``regwatch/_native.so``. When the library is missing or
``REGWATCH_NATIVE=0`` is set, :func:`load` returns None and the ingest uses the DuckDB
fast path and correlator instead; both must give identical events (tests/unit/
test_native.py checks that). Under ``CI=true`` the tests require the library.

Arrow is the boundary: Rust reads Python's Arrow buffers in place, and the columns it
builds become Arrow arrays without a copy (the buffers are freed when the last array
using them is collected). ctypes releases the GIL during each call, so the parse and
store stages still run side by side.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from regwatch.errors import RegwatchError

LIB_NAME = "_native.so"
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


def library_path() -> Path:
    env = os.environ.get("REGWATCH_NATIVE_LIB")
    return Path(env) if env else Path(__file__).with_name(LIB_NAME)


def load() -> Any:
    """The loaded library, or None (not built, or disabled by REGWATCH_NATIVE=0)."""
    global _lib, _tried
    if os.environ.get("REGWATCH_NATIVE", "1") == "0":
        return None
    if _tried:
        return _lib
    _tried = True
    path = library_path()
    if not path.exists():
        return None
    lib = ctypes.CDLL(str(path))
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
    lib.rw_fold_merged.argtypes = [vp]
    lib.rw_fold_merged.restype = i64
    _lib = lib
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

    Returns the rows parsed here, with the columns and values of
    :func:`regwatch.parsing.columnar.fast_parse`, and the seqs left to the per-line parser.
    """
    lib = load()
    if lib is None:
        raise NativeError("the native library is not loaded; build it with `make native`")
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
            raise NativeError("the native library is not loaded; build it with `make native`")
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
