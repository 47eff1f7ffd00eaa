"""Request, auth and byte counts per repository (what `regwatch summary` prints)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from regwatch.events import AuthClass, Tally
from regwatch.stores.base import Aggregation, Query, Store

COUNT_KEYS = (
    "pulls",
    "pulls_failed",
    "pushes",
    "pushes_failed",
    "deletes",
    "deletes_failed",
    "auth_failures",
    "anonymous_denials",
    "challenges",
    "bytes_pulled",
    "bytes_pushed",
    "tls_handshake_errors",
)
_BY_TALLY = {
    Tally.PULL.value: "pulls",
    Tally.PULL_FAILED.value: "pulls_failed",
    Tally.PUSH.value: "pushes",
    Tally.PUSH_FAILED.value: "pushes_failed",
    Tally.DELETE.value: "deletes",
    Tally.DELETE_FAILED.value: "deletes_failed",
    Tally.TLS_ERROR.value: "tls_handshake_errors",
}
_BY_AUTH = {
    AuthClass.AUTH_FAILURE.value: "auth_failures",
    AuthClass.ANONYMOUS_DENIAL.value: "anonymous_denials",
    AuthClass.CHALLENGE.value: "challenges",
}


# a TLS handshake fails before any repository is named: a total only
REPO_KEYS = tuple(k for k in COUNT_KEYS if k != "tls_handshake_errors")


def _zero(keys: tuple[str, ...] = COUNT_KEYS) -> dict[str, int]:
    return {k: 0 for k in keys}


def summarize(store: Store, query: Query | None = None) -> dict[str, Any]:
    """Counts over ``query`` (time range and repository glob), overall and per repository.

    The counting rules were applied at ingest (``Event.tally`` and ``Event.auth``); this
    only adds them up. Raises StoreError.
    """
    q = query or Query()
    rows = store.aggregate(Aggregation(q, ("repository", "tally", "auth")))
    total = _zero()
    repos: dict[str, dict[str, int]] = {}
    for r in rows:
        keys = []
        if r["tally"] in _BY_TALLY:
            keys.append((_BY_TALLY[r["tally"]], r["count"]))
        if r["tally"] == Tally.BLOB_PULL.value:
            keys.append(("bytes_pulled", r["bytes"]))
        if r["tally"] == Tally.BLOB_UPLOAD.value:
            keys.append(("bytes_pushed", r["bytes"]))
        if r["auth"] in _BY_AUTH:
            keys.append((_BY_AUTH[r["auth"]], r["count"]))
        if not keys:
            continue
        repo = r["repository"]
        for k, n in keys:
            total[k] += int(n)
            if repo is not None:
                repos.setdefault(repo, _zero(REPO_KEYS))[k] += int(n)
    out: dict[str, Any] = dict(total)
    out["repositories"] = {k: repos[k] for k in sorted(repos)}
    return out


def uncounted_notes(store: Store, query: Query | None = None) -> list[str]:
    """What an operator needs to read zero counts right: records that are there but that
    the counting rules leave to another log. Today one case: Harbor's registry records
    without its proxy's (behind Harbor the proxy counts each request; counting.md §6).
    Raises StoreError."""
    q = query or Query()
    rows = store.aggregate(Aggregation(replace(q, sources=frozenset({"harbor"})), ("component",)))
    by = {r["component"]: int(r["count"]) for r in rows}
    registry, proxy = by.get("registry", 0), by.get("proxy", 0)
    if registry and not proxy:
        return [
            f"{registry:,} records of Harbor's registry log are kept for their detail but not counted: "
            "behind Harbor its proxy counts each request; ingest Harbor's proxy.log too"
        ]
    return []
