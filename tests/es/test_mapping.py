"""The index template accepts every Event, and what Elasticsearch still rejects is reported."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwatch.events import Event
from regwatch.stores.base import Query
from regwatch.stores.elasticsearch import FIELD_NAMES, IGNORE_ABOVE, MAX_ID_BYTES

pytestmark = pytest.mark.es
UTC = timezone.utc


def same(a: Event, b: Event) -> bool:
    """Event equality where NaN equals NaN (a NaN duration must come back as NaN)."""
    for name in FIELD_NAMES:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y or type(x) is not type(y):
            return False
    return True


# the extremes of datetime, the epoch edges, a leap day: few days, so few indices
DAYS = [date(1, 1, 1), date(1969, 12, 31), date(1970, 1, 1), date(2024, 2, 29), date(9999, 12, 31)]
timestamps = st.builds(
    lambda d, t: datetime.combine(d, t, tzinfo=UTC), st.sampled_from(DAYS), st.times()
)
# arbitrary text, and very long text (over the keyword and term limits)
long_text = st.builds(lambda c, n: c * n, st.characters(), st.integers(IGNORE_ABOVE - 2, 3 * IGNORE_ABOVE))
any_text = st.one_of(st.text(), long_text)
opt_text = st.one_of(st.none(), any_text)
opt_int = st.one_of(st.none(), st.integers(), st.integers(min_value=2**63 - 2), st.integers(max_value=-(2**63)))
events_st = st.builds(
    Event,
    id=st.text(max_size=200),
    timestamp=timestamps,
    source=any_text, component=any_text, action=any_text, outcome=any_text, tally=any_text,
    auth=any_text, repository=opt_text, reference=opt_text, digest=opt_text, method=opt_text,
    path=opt_text, status=opt_int, bytes=opt_int,
    duration_ms=st.one_of(st.none(), st.floats()),  # NaN, ±inf, -0.0, subnormals
    user=opt_text, client_ip=st.one_of(opt_text, st.ip_addresses().map(str)),
    user_agent=opt_text, request_id=opt_text, error_code=opt_text, level=opt_text,
    message=opt_text, host=opt_text, repeat=st.integers(), raw=any_text,
    log_file=opt_text, log_offset=opt_int,
)


@pytest.fixture
def shared_store(es_store_factory: Any) -> Any:
    return es_store_factory()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(batch=st.lists(events_st, max_size=12, unique_by=lambda e: e.id))
def test_mapping_accepts_any_event(shared_store: Any, batch: list[Event]) -> None:
    # a per-example id prefix keeps examples apart in one store (few indices to create)
    tag = uuid.uuid4().hex[:8] + ":"
    batch = [e.with_(id=tag + e.id) for e in batch]
    res = shared_store.write(batch)
    assert res.rejected == (), res.rejected[:1]
    assert res.written == len(batch)
    back = {e.id: e for e in shared_store.search(Query()) if e.id.startswith(tag)}
    assert set(back) == {e.id for e in batch}
    for e in batch:
        assert same(back[e.id], e), (back[e.id], e)


def test_ids_elasticsearch_cannot_take_are_digested(es_store: Any) -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    weird = [Event(id="", timestamp=t, source="s", component="c"),
             Event(id="x" * (MAX_ID_BYTES + 1), timestamp=t, source="s", component="c"),
             Event(id="é" * 300, timestamp=t, source="s", component="c"),
             Event(id="lone \ud800 surrogate", timestamp=t, source="s", component="c", raw="\udfff")]
    res = es_store.write(weird)
    assert (res.written, res.rejected) == (4, ())
    assert es_store.write(weird).duplicates == 4
    assert sorted(es_store.search(Query()), key=lambda e: e.id) == sorted(weird, key=lambda e: e.id)


def test_over_long_values_are_stored_but_not_indexed(es_store: Any) -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    huge = "r" * (IGNORE_ABOVE + 1)
    e = Event(id="long", timestamp=t, source="s", component="c", repository=huge, user=huge,
              bytes=10**30, status=-(10**25))
    assert es_store.write([e]).written == 1
    assert es_store.search(Query()) == [e]
    # documented limitation: not searchable by the over-long value
    assert es_store.search(Query(user=huge)) == []


def test_a_document_elasticsearch_rejects_is_reported_and_the_rest_stored(
    es_store: Any, es_client: Any
) -> None:
    """Force a real mapping rejection: the day's index exists with ``user.name`` as long
    (e.g. created by hand or by an old template). Only the event with a user fails."""
    es_store.setup()
    bad_day = datetime(2030, 1, 1, 12, tzinfo=UTC)
    index = es_store.index_for(bad_day)
    es_client.indices.create(index=index, mappings={"properties": {"user": {"properties": {"name": {"type": "long"}}}}})
    ok_day = datetime(2030, 1, 2, tzinfo=UTC)
    batch = [
        Event(id="a", timestamp=ok_day, source="s", component="c", user="alice"),
        Event(id="b", timestamp=bad_day, source="s", component="c", user="alice"),
        Event(id="c", timestamp=bad_day, source="s", component="c", user=None),
        Event(id="d", timestamp=bad_day, source="s", component="c", user="12345"),
        Event(id="e", timestamp=ok_day + timedelta(hours=1), source="s", component="c"),
    ]
    res = es_store.write(batch)
    assert res.written == 4
    assert len(res.rejected) == 1
    event, reason = res.rejected[0]
    assert event is batch[1]
    assert reason.startswith("400 ")
    assert "user.name" in reason and "long" in reason
    assert [e.id for e in es_store.search(Query())] == ["c", "d", "a", "e"]
    # the rejected event is not silently a duplicate on the next attempt either
    again = es_store.write(batch)
    assert (again.written, again.duplicates, len(again.rejected)) == (0, 4, 1)


def test_time_extremes_and_day_indices(es_store: Any, es_client: Any) -> None:
    events = [Event(id=f"t{i}", timestamp=datetime.combine(d, time(23, 59, 59, 999_999), tzinfo=UTC),
                    source="s", component="c") for i, d in enumerate(DAYS)]
    assert es_store.write(events).written == len(events)
    assert es_store.search(Query()) == events
    assert es_store.indices() == [
        f"{es_store.index_prefix}-events-{d.year:04d}.{d.month:02d}.{d.day:02d}" for d in DAYS
    ]
    q = Query(since=events[1].timestamp, until=events[3].timestamp)
    assert es_store.search(q) == events[1:3]
