"""Label values the catalog bounds: the request reason and the capped repository label."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from regwatch.events import AuthClass
from regwatch.metrics.catalog import OTHER

__all__ = ["RepositoryLabels", "request_reason"]


def request_reason(status: int | None, auth: str = AuthClass.NONE.value) -> str:
    """The ``reason`` label of ``regwatch_registry_requests_total`` for a request.

    The auth class decided at ingest comes first (so a challenge 401 is ``challenge``, a
    rejected login ``auth_failure``), then the status: 2xx ``ok``, 3xx ``redirect``, 403
    ``forbidden``, 404 ``not_found``, 429 ``rate_limited``, other 4xx ``client_error``,
    5xx ``server_error``; no status ``unknown``."""
    if auth in (
        AuthClass.CHALLENGE.value,
        AuthClass.AUTH_FAILURE.value,
        AuthClass.ANONYMOUS_DENIAL.value,
    ):
        return auth
    if status is None:
        return "unknown"
    if status < 300:
        return "ok"
    if status < 400:
        return "redirect"
    if status == 401:
        return "anonymous_denial"  # a 401 no auth line explains: no usable credentials
    return {403: "forbidden", 404: "not_found", 429: "rate_limited"}.get(
        status, "server_error" if status >= 500 else "client_error"
    )


class RepositoryLabels:
    """The capped ``repository`` label: at most ``limit`` names, every other one ``"other"``.

    ``seed`` (the repositories with the most requests in the store, biggest first) takes
    the first slots when the service starts; free slots go to repositories in the order
    they are first seen. A name keeps its slot for the life of the process, so a series
    never changes meaning; a restart re-seeds from the store."""

    def __init__(self, limit: int, seed: Iterable[str] = ()) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit!r}")
        self.limit = limit
        self._names: set[str] = set()
        self._lock = threading.Lock()
        for name in seed:
            if len(self._names) >= limit:
                break
            if name and name != OTHER:
                self._names.add(name)

    def __call__(self, repository: str | None) -> str:
        """The label value for ``repository`` (``"other"`` for None, empty or over the cap)."""
        if not repository or repository == OTHER:
            return OTHER
        if repository in self._names:
            return repository
        with self._lock:
            if repository in self._names:
                return repository
            if len(self._names) < self.limit:
                self._names.add(repository)
                return repository
        return OTHER

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._names)
