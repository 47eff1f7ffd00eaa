"""The Parser protocol and helpers shared by the log families."""

from __future__ import annotations

import operator
from collections import deque
from datetime import datetime
from itertools import repeat as _repeat
from typing import Any, Protocol, runtime_checkable

from regwatch.events import (
    EVENT_FIELDS,
    Action,
    AuthClass,
    Dropped,
    DropReason,
    Event,
    Outcome,
    RawLine,
    Tally,
)


@runtime_checkable
class Parser(Protocol):
    """Turns one logical line into an Event or a Dropped. Never raises on bad input."""

    name: str

    def parse(self, line: RawLine) -> Event | Dropped: ...


def drop(line: RawLine, reason: DropReason, detail: str = "", kind: str | None = None) -> Dropped:
    return Dropped(
        reason=reason,
        text=line.text,
        path=line.path,
        offset=line.offset,
        detail=detail,
        fingerprint=line.fingerprint,
        kind=kind,
    )


def noise(line: RawLine, kind: str, detail: str = "") -> Dropped:
    """A known line with nothing to count, of a NoiseKind."""
    return drop(line, DropReason.NOISE, detail, kind)


def with_text(line: RawLine, text: str) -> RawLine:
    """The same line (position, fingerprint, problem) with other text: what is left once
    an envelope or an indent is taken off."""
    return RawLine(line.source, line.path, text, line.fingerprint, line.offset, line.end, line.problem, line.component)


# -- building Events fast ---------------------------------------------------------------
# Event is a frozen dataclass: its generated __init__ sets each of its 28 fields with
# ``object.__setattr__``, about 8 µs an Event, the largest single cost of a per-line parse
# (every registry line is one). The slot descriptors' own ``__set__``, called directly,
# builds the same object in about half of that. tests/unit/test_fast_event.py checks that
# new_event takes exactly Event's fields and defaults and builds equal Events.
_new = Event.__new__
_S = {name: getattr(Event, name).__set__ for name in EVENT_FIELDS}
(
    _s_id, _s_timestamp, _s_source, _s_component, _s_action, _s_outcome, _s_tally, _s_auth,
    _s_repository, _s_reference, _s_digest, _s_method, _s_path, _s_status, _s_bytes,
    _s_duration_ms, _s_user, _s_client_ip, _s_user_agent, _s_request_id, _s_error_code,
    _s_level, _s_message, _s_host, _s_repeat, _s_raw, _s_log_file, _s_log_offset,
) = (_S[name] for name in EVENT_FIELDS)
_ACTION_OTHER = Action.OTHER.value
_OUTCOME_UNKNOWN = Outcome.UNKNOWN.value
_TALLY_NONE = Tally.NONE.value
_AUTH_NONE = AuthClass.NONE.value


def new_event(
    id: str,
    timestamp: datetime,
    source: str,
    component: str,
    action: str = _ACTION_OTHER,
    outcome: str = _OUTCOME_UNKNOWN,
    tally: str = _TALLY_NONE,
    auth: str = _AUTH_NONE,
    repository: str | None = None,
    reference: str | None = None,
    digest: str | None = None,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
    bytes: int | None = None,
    duration_ms: float | None = None,
    user: str | None = None,
    client_ip: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
    error_code: str | None = None,
    level: str | None = None,
    message: str | None = None,
    host: str | None = None,
    repeat: int = 1,
    raw: str = "",
    log_file: str | None = None,
    log_offset: int | None = None,
) -> Event:
    """``Event(...)`` with the same arguments, built without the frozen ``__init__``."""
    ev = _new(Event)
    _s_id(ev, id)
    _s_timestamp(ev, timestamp)
    _s_source(ev, source)
    _s_component(ev, component)
    _s_action(ev, action)
    _s_outcome(ev, outcome)
    _s_tally(ev, tally)
    _s_auth(ev, auth)
    _s_repository(ev, repository)
    _s_reference(ev, reference)
    _s_digest(ev, digest)
    _s_method(ev, method)
    _s_path(ev, path)
    _s_status(ev, status)
    _s_bytes(ev, bytes)
    _s_duration_ms(ev, duration_ms)
    _s_user(ev, user)
    _s_client_ip(ev, client_ip)
    _s_user_agent(ev, user_agent)
    _s_request_id(ev, request_id)
    _s_error_code(ev, error_code)
    _s_level(ev, level)
    _s_message(ev, message)
    _s_host(ev, host)
    _s_repeat(ev, repeat)
    _s_raw(ev, raw)
    _s_log_file(ev, log_file)
    _s_log_offset(ev, log_offset)
    return ev


_VALUES = operator.attrgetter(*EVENT_FIELDS)
_INDEX = {name: i for i, name in enumerate(EVENT_FIELDS)}
_SETTERS = tuple(_S[name] for name in EVENT_FIELDS)


def replace_event(ev: Event, **changes: Any) -> Event:
    """``ev.with_(**changes)`` (``dataclasses.replace``, about 15 µs) at a fifth of the
    cost. Raises TypeError for a name that is no Event field, as replace does."""
    values = list(_VALUES(ev))
    for name, value in changes.items():
        i = _INDEX.get(name)
        if i is None:
            raise TypeError(f"Event has no field {name!r}")
        values[i] = value
    out = _new(Event)
    deque(map(operator.call, _SETTERS, _repeat(out, len(_SETTERS)), values), 0)
    return out
