"""The Store protocol and the query model every store answers.

SQL and the Elasticsearch DSL live only in the store modules; everything above them
speaks :class:`Query` and :class:`Aggregation`.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from regwatch.events import Event

#: fields a query may group by (all keyword-like, bounded or user-chosen)
GROUPABLE = frozenset(
    {
        "source",
        "component",
        "action",
        "outcome",
        "tally",
        "auth",
        "repository",
        "user",
        "client_ip",
        "status",
        "error_code",
        "method",
        "reference",
        "digest",
    }
)


@dataclass(frozen=True, slots=True)
class Query:
    """A filter over events. ``None`` means "no constraint".

    ``since`` is inclusive and ``until`` exclusive. ``repo`` is a shell-style glob
    (``*`` and ``?``, matched against the whole repository name, ``*`` crosses ``/``).
    """

    since: datetime | None = None
    until: datetime | None = None
    repo: str | None = None
    user: str | None = None
    client_ip: str | None = None  # exact match, like ``user`` (the address as logged)
    actions: frozenset[str] | None = None
    tallies: frozenset[str] | None = None
    auth: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    outcome: str | None = None
    limit: int | None = None
    newest_first: bool = False


@dataclass(frozen=True, slots=True)
class Aggregation:
    """Group the events matching ``query`` by ``group_by`` fields.

    Each result row has the group fields plus ``count`` (the number of records the
    events stand for, i.e. the sum of ``repeat``) and ``bytes`` (the sum of ``bytes``).
    """

    query: Query = field(default_factory=Query)
    group_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad = [g for g in self.group_by if g not in GROUPABLE]
        if bad:
            raise ValueError(f"cannot group by {bad!r}; allowed: {sorted(GROUPABLE)}")


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: int = 0
    duplicates: int = 0
    rejected: tuple[tuple[Event, str], ...] = ()
    #: the ids stored as new by this write (each once), when the store says which;
    #: ``None``: only the count is known
    accepted: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str
    events: int | None = None


# -- records -------------------------------------------------------------------------
#: a record kind: a bounded set of lower-case names ("storage_sample", "capacity_action", ...)
RECORD_KIND = re.compile(r"[a-z_]+")
MAX_RECORD_KEY = 400  # characters; the Elasticsearch ``_id`` (kind:key) must stay under 512 bytes


@dataclass(frozen=True, slots=True)
class Record:
    """One piece of data that is not a log event: a storage sample, the outcome of a
    capacity action, a report run.

    ``(kind, key)`` identifies it: putting the same pair again replaces the stored
    record, so a job that retries after a crash writes the same key and nothing is
    doubled. ``timestamp`` is tz-aware; ``data`` must be JSON-able (it is stored as JSON
    and read back as plain dicts, lists, strings, numbers, booleans and None).
    """

    kind: str
    key: str
    timestamp: datetime
    data: Mapping[str, Any]


def check_record(rec: Record) -> str | None:
    """Why ``rec`` cannot be stored (one line naming the bad value), or None.

    Every store calls this before writing anything, so a bad record in a batch
    rejects the batch whole instead of storing part of it."""
    if not isinstance(rec, Record):
        return f"{rec!r} is not a Record"
    if not isinstance(rec.kind, str) or not RECORD_KIND.fullmatch(rec.kind):
        return f"record kind {rec.kind!r} is not lower-case letters and '_' (e.g. 'storage_sample')"
    if not isinstance(rec.key, str) or not rec.key or len(rec.key) > MAX_RECORD_KEY:
        return f"record key {rec.key!r} of kind {rec.kind!r} must be a non-empty string of at most {MAX_RECORD_KEY} characters"
    try:
        rec.key.encode("utf-8")
    except UnicodeEncodeError:
        return f"record key {rec.key!r} of kind {rec.kind!r} is not valid Unicode text"
    if not isinstance(rec.timestamp, datetime) or rec.timestamp.utcoffset() is None:
        return f"record {rec.kind}/{rec.key}: timestamp {rec.timestamp!r} must be a tz-aware datetime"
    if not isinstance(rec.data, Mapping):
        return f"record {rec.kind}/{rec.key}: data must be a mapping, not {type(rec.data).__name__}"
    bad = _not_jsonable(rec.data)
    if bad is not None:
        return f"record {rec.kind}/{rec.key}: data is not JSON-able ({bad})"
    return None


def _not_jsonable(value: Any, depth: int = 0) -> str | None:
    if depth > 32:
        return "nested deeper than 32 levels"
    if value is None or isinstance(value, (bool, str, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"non-finite number {value!r}"
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"key {k!r} is not a string"
            why = _not_jsonable(v, depth + 1)
            if why is not None:
                return why
        return None
    if isinstance(value, (list, tuple)):
        for v in value:
            why = _not_jsonable(v, depth + 1)
            if why is not None:
                return why
        return None
    return f"{type(value).__name__} value {value!r}"


def record_matches(
    rec: Record,
    kind: str,
    since: datetime | None = None,
    until: datetime | None = None,
    key_prefix: str | None = None,
) -> bool:
    """The reference semantics of :meth:`Store.get_records` over one record (``since``
    inclusive, ``until`` exclusive), used by the contract tests."""
    if rec.kind != kind:
        return False
    if since is not None and rec.timestamp < since:
        return False
    if until is not None and rec.timestamp >= until:
        return False
    return key_prefix is None or rec.key.startswith(key_prefix)


def record_order(rec: Record) -> tuple[datetime, str]:
    """The order :meth:`Store.get_records` returns records in: (timestamp, key)."""
    return (rec.timestamp, rec.key)



@runtime_checkable
class Store(Protocol):
    """Where events live. ``write`` is idempotent on ``Event.id``."""

    def write(self, events: Sequence[Event]) -> WriteResult:
        """Store events; an id already stored counts as a duplicate, not a new event.

        Raises StoreUnavailable when the store cannot take the batch (retryable).
        """
        ...

    def replace(self, events: Sequence[Event]) -> WriteResult:
        """Store events, each replacing a stored event with its id: a record built
        again from lines read again, which a later line changed (a pull that a DELETE
        written after the last ``regwatch ingest`` made a delete lookup). ``written``
        counts the events not stored before, ``duplicates`` the ones replaced."""
        ...

    def search(self, query: Query) -> list[Event]:
        """Events matching ``query``, ordered by (timestamp, id)."""
        ...

    def aggregate(self, aggregation: Aggregation) -> list[dict[str, Any]]:
        """Grouped counts and byte sums."""
        ...

    def healthcheck(self) -> Health:
        """Raise StoreUnavailable with an actionable message when the store is unusable."""
        ...

    def put_records(self, records: Sequence[Record]) -> int:
        """Store records; a ``(kind, key)`` already stored (or repeated later in the
        batch) is replaced. Returns how many were written. Raises StoreError naming the
        first bad record (nothing is written then), StoreUnavailable when the store
        cannot take them (retryable; putting them again is safe)."""
        ...

    def get_records(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        key_prefix: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Record]:
        """Records of ``kind`` with ``since <= timestamp < until`` and keys starting with
        ``key_prefix``, ordered by (timestamp, key) or reversed, at most ``limit``."""
        ...

    def close(self) -> None: ...


def repo_matches(glob: str, repo: str | None) -> bool:
    """The reference semantics of ``Query.repo`` (stores must agree with it)."""
    return repo is not None and fnmatch.fnmatchcase(repo, glob)


def matches(query: Query, ev: Event) -> bool:
    """The reference semantics of a Query over one event, used by contract tests."""
    if query.since is not None and ev.timestamp < query.since:
        return False
    if query.until is not None and ev.timestamp >= query.until:
        return False
    if query.repo is not None and not repo_matches(query.repo, ev.repository):
        return False
    if query.user is not None and ev.user != query.user:
        return False
    if query.client_ip is not None and ev.client_ip != query.client_ip:
        return False
    if query.actions is not None and ev.action not in query.actions:
        return False
    if query.tallies is not None and ev.tally not in query.tallies:
        return False
    if query.auth is not None and ev.auth not in query.auth:
        return False
    if query.sources is not None and ev.source not in query.sources:
        return False
    if query.outcome is not None and ev.outcome != query.outcome:
        return False
    return True
