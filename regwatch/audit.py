"""Audit queries: who deleted what, when, from where, and whether it worked."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from regwatch.events import Action, Event
from regwatch.stores.base import Query, Store

DELETE_COLUMNS = (
    "time",
    "user",
    "repository",
    "reference",
    "client_ip",
    "user_agent",
    "outcome",
    "status",
    "source",
    "component",
    "request_id",
    "error_code",
    "raw",
)


def delete_row(ev: Event) -> dict[str, Any]:
    return {
        "time": ev.timestamp.isoformat().replace("+00:00", "Z"),
        "user": ev.user,
        "repository": ev.repository,
        "reference": ev.reference or ev.digest,
        "client_ip": ev.client_ip,
        "user_agent": ev.user_agent,
        "outcome": ev.outcome,
        "status": ev.status,
        "source": ev.source,
        "component": ev.component,
        "request_id": ev.request_id,
        "error_code": ev.error_code,
        "raw": ev.raw,
    }


def deletes(store: Store, query: Query | None = None) -> list[dict[str, Any]]:
    """One row per delete operation (registry DELETE requests and Harbor audit deletes).

    Filters of ``query`` (time range, repository glob, user) apply; rows are oldest
    first. Raises StoreError.
    """
    q = query or Query()
    from dataclasses import replace

    q = replace(q, actions=frozenset({Action.DELETE.value}))
    return [delete_row(e) for e in store.search(q)]


def csv_text(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """Rows as CSV with a header line of ``fields``, no trailing newline."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue().rstrip("\n")


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    """Rows as ``table``, ``json`` (a list of objects) or ``csv``."""
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False)
    if fmt == "csv":
        return csv_text(({k: ("" if r.get(k) is None else r.get(k)) for k in DELETE_COLUMNS} for r in rows), DELETE_COLUMNS)
    cols = ("time", "user", "repository", "reference", "client_ip", "outcome", "status", "source")
    cells = [[_short(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines.append(f"{len(rows)} delete(s)")
    return "\n".join(lines)


def _short(v: Any) -> str:
    if v is None:
        return "-"
    s = str(v)
    if s.startswith("sha256:") and len(s) > 19:
        return s[:19] + "…"
    return s
