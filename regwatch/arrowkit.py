"""Arrow arrays and scalars built from buffers, not from Python objects.

Converting a Python value to Arrow (``pa.array(list)``, ``pa.scalar``, a Python
constant in a compute call) makes pyarrow import pandas, about 36 MB, which the ingest
has no other use for (its peak memory target is 300 MB). The ingest path builds what it
needs with these helpers instead; tests/unit/test_memory_imports.py checks that an
ingest does not load pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def strings(values: Sequence[str | None]) -> pa.StringArray:
    """A string array (None becomes null)."""
    n = len(values)
    offsets = np.zeros(n + 1, np.int32)
    parts: list[bytes] = []
    valid = np.ones(n, np.bool_)
    pos = 0
    for i, v in enumerate(values):
        if v is None:
            valid[i] = False
        else:
            b = v.encode("utf-8", "surrogatepass")
            parts.append(b)
            pos += len(b)
        offsets[i + 1] = pos
    nulls = n - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(
        pa.string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(b"".join(parts))], null_count=nulls
    )


def string_scalar(value: str) -> pa.Scalar:
    return strings([value])[0]


def int64s(values: Sequence[int] | np.ndarray) -> pa.Array:
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def int64_scalar(value: int) -> pa.Scalar:
    return int64s([value])[0]


def null_scalar(typ: pa.DataType) -> pa.Scalar:
    return pa.nulls(1, typ)[0]


def dates(values: Sequence[date]) -> pa.Array:
    days = np.array([d.toordinal() - _EPOCH_ORDINAL for d in values], dtype=np.int32)
    return pa.Array.from_buffers(pa.date32(), len(days), [None, pa.py_buffer(days)])


def int64_numpy(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A null-free int64 array's values as numpy (without a copy when in one chunk)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    if arr.null_count:
        raise ValueError("int64_numpy needs an array without nulls")
    buf = arr.buffers()[1]
    if buf is None:
        return np.zeros(0, np.int64)
    return np.frombuffer(buf, dtype=np.int64, count=len(arr), offset=arr.offset * 8)



def column(values: Sequence[object], typ: pa.DataType) -> pa.Array:
    """Python values (None for null) as an array of ``typ``: string, int32, int64, float64,
    bool, or timestamp[us] (tz-aware datetimes, or naive ones taken as UTC)."""
    if typ == pa.string():
        return strings(values)  # type: ignore[arg-type]
    n = len(values)
    valid = np.fromiter((v is not None for v in values), dtype=np.bool_, count=n)
    nulls = n - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    if pa.types.is_timestamp(typ):
        data = np.fromiter((_micros(v) if v is not None else 0 for v in values), dtype=np.int64, count=n)  # type: ignore[arg-type]
    elif typ == pa.bool_():
        bits = np.fromiter((bool(v) for v in values), dtype=np.bool_, count=n)
        return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(np.packbits(bits, bitorder="little"))], null_count=nulls)
    else:
        np_type = {pa.int64(): np.int64, pa.int32(): np.int32, pa.float64(): np.float64}[typ]
        data = np.fromiter((v if v is not None else 0 for v in values), dtype=np_type, count=n)
    return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(data)], null_count=nulls)


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros(t: object) -> int:
    assert isinstance(t, datetime)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def table(columns: dict[str, Sequence[object]], schema: pa.Schema) -> pa.Table:
    """Columns of Python values as a table of ``schema``."""
    return pa.Table.from_arrays([column(columns[f.name], f.type) for f in schema], schema=schema)
