"""DuckDB statements run within a memory limit that bends instead of breaking."""

from __future__ import annotations

import warnings
from typing import Any

import duckdb
import pyarrow as pa

BLOCK_MEMORY_MB = 64  # the ingest's block stages (parse, correlate): a few MB of lines each


def run_sql(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    fetch: bool = True,
    base_mb: int | None = None,
) -> Any:
    """Run (and fetch, as Arrow) a statement on a connection whose memory limit is
    ``base_mb`` (default BLOCK_MEMORY_MB). A statement that needs more (a block of very many
    short lines, a large merge) gets the limit doubled, up to 2 GB, and is run again
    rather than failing; the limit is put back afterwards."""
    base = BLOCK_MEMORY_MB if base_mb is None else base_mb
    limit = base
    try:
        while True:
            try:
                res = con.execute(sql) if params is None else con.execute(sql, params)
                return to_arrow(res) if fetch else None
            except duckdb.OutOfMemoryException:
                if limit >= 2048:
                    raise
                limit *= 2
                con.execute(f"SET memory_limit='{limit}MB'")
    finally:
        if limit != base:
            con.execute(f"SET memory_limit='{base}MB'")


def to_arrow(res: Any) -> pa.Table:
    """A DuckDB result as an Arrow table (the method's name differs across DuckDB versions)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return res.to_arrow_table() if hasattr(res, "to_arrow_table") else res.fetch_arrow_table()
