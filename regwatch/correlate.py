"""Count each registry request once (domain.md §2).

The registry writes several app lines per request (``authorized request``, ``response
completed[ with error]``, auth errors), joined by ``http.request.id``, and then one
access line with no id. :class:`Correlator` folds them into one request record:

* app lines are gathered by request id; once the request's final app line is seen it
  waits, keyed by (method, path), for its access line;
* an access line takes the oldest waiting app group with the same method and path and
  a compatible status, and the two become one event (the access line's id);
* an app group that no access line claims within ``window`` lines (access log disabled)
  becomes the request record on its own; an access line nobody claims stands alone.

A second stage turns the manifest GET that a client makes just before deleting the
same repository's manifest (delete by tag) into a ``delete_lookup``: it is part of the
delete, not a pull.

The correlator is fed one stream (one file) in order. ``pending_offset()`` tells the
pipeline the smallest byte offset still held, so the checkpoint never moves past a line
whose record has not been stored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from datetime import timedelta

from regwatch.events import Action, AuthClass, Event, Tally
from regwatch.parsing.distribution import (
    MSG_AUTHORIZED,
)
from regwatch.parsing.registry_api import tally_of

_AUTH_RANK = {
    AuthClass.NONE.value: 0,
    AuthClass.AUTH_SUCCESS.value: 0,
    AuthClass.CHALLENGE.value: 1,
    AuthClass.ANONYMOUS_DENIAL.value: 2,
    AuthClass.AUTH_FAILURE.value: 3,
}
# components whose access and app lines describe the same requests
_REQUEST_COMPONENTS = frozenset({"registry"})


def _stronger_auth(a: str, b: str) -> str:
    return a if _AUTH_RANK.get(a, 0) >= _AUTH_RANK.get(b, 0) else b


@dataclass
class _Group:
    """The app lines of one request id."""

    seq: int
    lines: list[Event] = field(default_factory=list)
    final: Event | None = None  # response completed[ with error] or an auth error
    queued: bool = False
    claimed: bool = False

    @property
    def min_offset(self) -> int:
        return min((e.log_offset or 0) for e in self.lines)

    def status(self) -> int | None:
        return self.final.status if self.final is not None else None


def _key(ev: Event) -> tuple[str | None, str | None]:
    return (ev.method, ev.path)


def _combine(app: _Group, access: Event | None) -> Event:
    """One request record from the app group and (when present) the access line."""
    final = app.final or app.lines[-1]
    auth = AuthClass.NONE.value
    user = None
    repo = ref = digest = None
    request_id = error_code = None
    client_ip = user_agent = None
    duration = None
    for e in app.lines:
        auth = _stronger_auth(e.auth, auth)
        user = user or e.user
        repo = repo or (e.repository if e.message == MSG_AUTHORIZED else None)
        ref = ref or e.reference
        digest = digest or e.digest
        request_id = request_id or e.request_id
        error_code = error_code or e.error_code
        client_ip = client_ip or e.client_ip
        user_agent = user_agent or e.user_agent
        duration = duration if duration is not None else e.duration_ms
    repo = repo or final.repository
    if access is None:
        status = final.status
        tally = final.tally
        if final.message != "response completed" and final.message != "response completed with error":
            tally = tally_of(final.action, status).value
        return replace(
            final,
            level=None,
            auth=auth,
            user=user,
            repository=repo,
            reference=ref,
            digest=digest,
            request_id=request_id,
            error_code=error_code,
            client_ip=client_ip,
            user_agent=user_agent,
            duration_ms=duration,
            tally=tally,
        )
    # the app line's time has sub-second precision; the access line's wins only when the
    # app line had no absolute time of its own (TTY form) and so disagrees by seconds
    ts = final.timestamp if abs(final.timestamp - access.timestamp) <= timedelta(seconds=2) else access.timestamp
    return replace(
        access,
        # the id of the request's final app line: a log read in two steps (app lines in
        # the first, the access line in the second) yields the same id both times
        id=final.id,
        log_offset=app.min_offset,  # where a re-read must start to rebuild this record
        timestamp=ts,
        auth=_stronger_auth(auth, access.auth),
        user=user or access.user,
        repository=repo or access.repository,
        reference=ref or access.reference,
        digest=digest or access.digest,
        request_id=request_id,
        error_code=error_code,
        client_ip=client_ip or access.client_ip,
        user_agent=access.user_agent or user_agent,
        duration_ms=duration,
        message=final.message,
    )


class Correlator:
    """Joins the lines of one request and finds delete lookups, for one ordered stream."""

    def __init__(self, window: int = 2000, lookup_window: timedelta = timedelta(seconds=10)):
        self.window = window
        self.lookup_window = lookup_window
        self._seq = 0
        self._groups: dict[str, _Group] = {}
        self._waiting: dict[tuple[str | None, str | None], deque[_Group]] = {}
        self._order: deque[_Group] = deque()
        self._held: deque[Event] = deque()  # successful pulls that may be delete lookups
        self._last: dict[tuple[str | None, str | None], str] = {}  # client -> last request id
        self.merged = 0  # lines folded into another record

    # -- stage 1 -------------------------------------------------------------------
    def feed(self, ev: Event) -> list[Event]:
        """Take one parsed event; return the records that are now final."""
        self._seq += 1
        out: list[Event] = []
        if ev.component not in _REQUEST_COMPONENTS or ev.method is None:
            out.append(ev)
        elif ev.level is not None:
            self._app(ev)
        else:
            out.append(self._access(ev))
        self._evict(out, self._seq - self.window)
        return self._stage2(out)

    def _app(self, ev: Event) -> None:
        rid = ev.request_id or f"{ev.log_file}:{ev.log_offset}"
        g = self._groups.get(rid)
        if g is None:
            g = _Group(self._seq)
            self._groups[rid] = g
            self._order.append(g)
        g.lines.append(ev)
        if ev.message != MSG_AUTHORIZED:
            # the last of a request's app lines decides; an auth error followed by the
            # challenge warning keeps the stronger auth class in _combine
            if g.final is None:
                g.final = ev
            if not g.queued:
                g.queued = True
                self._waiting.setdefault(_key(ev), deque()).append(g)

    def _access(self, ev: Event) -> Event:
        q = self._waiting.get(_key(ev))
        if q:
            for g in q:
                st = g.status()
                if st is None or st == ev.status:
                    q.remove(g)
                    if not q:
                        del self._waiting[_key(ev)]
                    g.claimed = True
                    self._forget(g)
                    self.merged += len(g.lines)
                    return _combine(g, ev)
        return ev

    def _forget(self, g: _Group) -> None:
        rid = g.lines[0].request_id or f"{g.lines[0].log_file}:{g.lines[0].log_offset}"
        self._groups.pop(rid, None)

    def _evict(self, out: list[Event], older_than: int) -> None:
        while self._order and (self._order[0].seq < older_than or self._order[0].claimed):
            g = self._order.popleft()
            if g.claimed:
                continue
            self._release(g, out)

    def _release(self, g: _Group, out: list[Event]) -> None:
        self._forget(g)
        if g.queued:
            q = self._waiting.get(_key(g.final or g.lines[0]))
            if q is not None and g in q:
                q.remove(g)
                if not q:
                    self._waiting.pop(_key(g.final or g.lines[0]), None)
        if g.final is None:
            # only "authorized request": the request never finished in this stream
            self.merged += len(g.lines)
            return
        self.merged += len(g.lines) - 1
        out.append(_combine(g, None))

    # -- stage 2: delete lookups ----------------------------------------------------
    def _stage2(self, out: list[Event]) -> list[Event]:
        if not out and not self._held:
            return out
        ready: list[Event] = []
        for ev in out:
            client = (ev.client_ip, ev.user_agent) if ev.component in _REQUEST_COMPONENTS else None
            if client is not None and ev.action == Action.DELETE.value:
                self._mark_lookup(client, ev)
            if client is not None and ev.method is not None:
                self._last[client] = ev.id
            if ev.tally == Tally.PULL.value:
                self._held.append(ev)
                continue
            ready.append(ev)
        if out:
            newest = max(e.timestamp for e in out)
            while self._held and self._held[0].timestamp + self.lookup_window < newest:
                ready.append(self._held.popleft())
            if len(self._last) > 10_000:
                self._last.clear()
        return ready

    def _mark_lookup(self, client: tuple[str | None, str | None], delete: Event) -> None:
        """The client's previous request, if it was a GET of a manifest in the same
        repository moments before, looked the digest up for this delete."""
        prev = self._last.get(client)
        if prev is None:
            return
        for i in range(len(self._held) - 1, -1, -1):
            p = self._held[i]
            if p.id != prev:
                continue
            if (
                p.repository == delete.repository
                and delete.timestamp - p.timestamp <= self.lookup_window
                and p.timestamp <= delete.timestamp + timedelta(seconds=1)
            ):
                self._held[i] = replace(p, action=Action.DELETE_LOOKUP.value, tally=Tally.NONE.value)
            return

    # -- end of stream -------------------------------------------------------------
    def flush(self) -> list[Event]:
        """Release everything still held (the stream ended)."""
        out: list[Event] = []
        while self._order:
            g = self._order.popleft()
            if not g.claimed:
                self._release(g, out)
        self._waiting.clear()
        self._groups.clear()
        ready = self._stage2(out)
        ready.extend(self._held)
        self._held.clear()
        return ready

    def pending_offset(self) -> int | None:
        """The smallest source offset of a line whose record is still held."""
        offs = [g.min_offset for g in self._order if not g.claimed]
        offs.extend(e.log_offset or 0 for e in self._held)
        return min(offs) if offs else None
