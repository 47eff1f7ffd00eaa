"""parsing.base.new_event and replace_event build the same Events as Event(...) and
Event.with_ (they skip the frozen dataclass's __init__ for speed, so they must follow
Event's fields exactly)."""

from __future__ import annotations

import inspect
import pickle
from dataclasses import MISSING, FrozenInstanceError, fields
from datetime import UTC, datetime, timezone

import pytest

from regwatch.events import Event
from regwatch.parsing.base import new_event, replace_event

TS = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _full() -> dict[str, object]:
    values: dict[str, object] = {}
    for i, f in enumerate(fields(Event)):
        if f.name == "timestamp":
            values[f.name] = TS
        elif "int" in str(f.type):
            values[f.name] = 1000 + i
        elif "float" in str(f.type):
            values[f.name] = 0.5 + i
        else:
            values[f.name] = f"v{i}"
    return values


def test_new_event_takes_exactly_events_fields_and_defaults() -> None:
    params = inspect.signature(new_event).parameters
    assert list(params) == [f.name for f in fields(Event)]
    for f in fields(Event):
        want = inspect.Parameter.empty if f.default is MISSING else f.default
        assert params[f.name].default == want, f.name


def test_new_event_equals_event_with_every_field_set_and_with_defaults() -> None:
    full = _full()
    a, b = new_event(**full), Event(**full)  # type: ignore[arg-type]
    assert a == b and hash(a) == hash(b)
    assert [getattr(a, f.name) for f in fields(Event)] == list(full.values())
    minimal = {"id": "x", "timestamp": TS, "source": "distribution", "component": "registry"}
    assert new_event(**minimal) == Event(**minimal)  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(new_event(**minimal))) == Event(**minimal)  # type: ignore[arg-type]


def test_built_events_stay_frozen() -> None:
    ev = new_event(id="x", timestamp=TS, source="s", component="c")
    with pytest.raises(FrozenInstanceError):
        ev.raw = "changed"  # type: ignore[misc]


def test_replace_event_matches_with_() -> None:
    ev = Event(**_full())  # type: ignore[arg-type]
    changes = {"raw": "redacted", "tally": "none", "auth": "none", "status": None}
    out = replace_event(ev, **changes)
    assert out == ev.with_(**changes)
    assert out is not ev and ev.raw == "v25"  # the original is untouched
    with pytest.raises(TypeError, match="no field 'nope'"):
        replace_event(ev, nope=1)
