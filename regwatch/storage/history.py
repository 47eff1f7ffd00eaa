"""The storage history: samples from the store as one DataFrame per path.

What the forecaster (:func:`regwatch.forecast.forecast`), the capacity assessments,
the report and ``regwatch storage`` read. The filesystem series (statvfs) is the
history of a path; the tree walk's numbers ride along as ``tree_bytes`` and ``files``
at the instants they were taken. Harbor's series is under the path ``harbor:<url>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from regwatch.storage.sampler import KIND, StorageSample
from regwatch.stores.base import Store

COLUMNS = ("used_bytes", "capacity_bytes", "complete", "tree_bytes", "files")


def _frame(rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> pd.DataFrame:
    idx = pd.DatetimeIndex([r[0] for r in rows], tz="UTC", name="timestamp") if rows else pd.DatetimeIndex([], tz="UTC", name="timestamp")
    return pd.DataFrame([r[1:] for r in rows], index=idx, columns=list(columns))


def history(
    store: Store,
    path: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, pd.DataFrame]:
    """Per path, a DataFrame indexed by tz-aware UTC timestamps (ascending) with
    ``used_bytes`` and ``capacity_bytes`` (float64, capacity NaN when unknown),
    ``complete`` (bool), ``tree_bytes`` and ``files`` (float64, NaN where no tree
    sample was taken). Raises StoreError."""
    prefix = None if path is None else f"{path}|"
    main: dict[str, list[tuple[Any, ...]]] = {}
    tree: dict[str, dict[Any, tuple[int, int | None, bool]]] = {}
    for rec in store.get_records(KIND, since=since, until=until, key_prefix=prefix):
        s = StorageSample.from_record(rec)
        if s is None or (path is not None and s.path != path):
            continue
        if s.method == "tree":
            tree.setdefault(s.path, {})[s.timestamp] = (s.used_bytes, s.files, s.complete)
        else:
            main.setdefault(s.path, []).append((s.timestamp, s.used_bytes, s.capacity_bytes, s.complete))
    out: dict[str, pd.DataFrame] = {}
    for p in sorted(set(main) | set(tree)):
        rows = main.get(p, [])
        t = tree.get(p, {})
        full = []
        for ts, used, cap, complete in rows:
            tb = t.get(ts)
            full.append((ts, float(used), float("nan") if cap is None else float(cap), bool(complete),
                         float("nan") if tb is None else float(tb[0]),
                         float("nan") if tb is None or tb[1] is None else float(tb[1])))
        df = _frame(full, COLUMNS)
        df = df.astype({"used_bytes": "float64", "capacity_bytes": "float64", "complete": "bool",
                        "tree_bytes": "float64", "files": "float64"})
        out[p] = df.sort_index()
    return out


def tree_history(store: Store, path: str, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """The tree walk's own series of ``path``: ``tree_bytes``, ``files``, ``complete``."""
    rows = []
    for rec in store.get_records(KIND, since=since, until=until, key_prefix=f"{path}|tree|"):
        s = StorageSample.from_record(rec)
        if s is not None and s.path == path:
            rows.append((s.timestamp, float(s.used_bytes), float("nan") if s.files is None else float(s.files), s.complete))
    return _frame(rows, ("tree_bytes", "files", "complete")).sort_index()
