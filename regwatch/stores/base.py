"""The Store protocol and the query model every store answers.

SQL and the Elasticsearch DSL live only in the store modules; everything above them
speaks :class:`Query` and :class:`Aggregation`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
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


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str
    events: int | None = None


@runtime_checkable
class Store(Protocol):
    """Where events live. ``write`` is idempotent on ``Event.id``."""

    def write(self, events: Sequence[Event]) -> WriteResult:
        """Store events; an id already stored counts as a duplicate, not a new event.

        Raises StoreUnavailable when the store cannot take the batch (retryable).
        """
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
