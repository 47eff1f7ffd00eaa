"""The Store contract: every store gives the same answers as the reference semantics.

Runs against each implementation through the ``store`` fixture (``store_kind`` params
``embedded`` and ``elasticsearch``). The reference is :func:`regwatch.stores.base.matches`
for filters, ``(timestamp, id)`` for order, and :func:`reference_aggregate` below for
aggregations (rows = group fields + ``count`` (sum of repeat) + ``bytes`` (sum of bytes),
ordered by the group values with None last; groups whose count is 0 are left out).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwatch.events import Event
from regwatch.stores.base import GROUPABLE, Aggregation, Health, Query, WriteResult, matches

UTC = timezone.utc
T0 = datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(params=["embedded", pytest.param("elasticsearch", marks=pytest.mark.es)])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(store_kind: str, request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Any]]:
    """Make fresh, empty stores of the parametrized kind (closed after the test)."""
    if store_kind == "elasticsearch":
        yield request.getfixturevalue("es_store_factory")
        return
    try:
        from regwatch.stores.embedded import EmbeddedStore
    except ImportError:
        pytest.skip("regwatch.stores.embedded is not written yet")
    made: list[Any] = []

    def make() -> Any:
        store = EmbeddedStore(tmp_path_factory.mktemp("embedded"))
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()


@pytest.fixture
def store(store_factory: Callable[[], Any]) -> Any:
    return store_factory()


# -- helpers -------------------------------------------------------------------------

_ids = itertools.count()


def ev(seconds: float = 0, **kw: Any) -> Event:
    """An event ``seconds`` after T0 with a fresh unique id; fields overridable."""
    kw.setdefault("id", f"ev{next(_ids):08d}")
    kw.setdefault("timestamp", T0 + timedelta(seconds=seconds))
    kw.setdefault("source", "distribution")
    kw.setdefault("component", "registry")
    return Event(**kw)


def key(e: Event) -> tuple[datetime, str]:
    return (e.timestamp, e.id)


def expected(events: Sequence[Event], q: Query) -> list[Event]:
    out = sorted((e for e in events if matches(q, e)), key=key, reverse=q.newest_first)
    return out if q.limit is None else out[: max(q.limit, 0)]


def reference_aggregate(events: Sequence[Event], agg: Aggregation) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[int]] = {}
    for e in events:
        if matches(agg.query, e):
            g = groups.setdefault(tuple(getattr(e, f) for f in agg.group_by), [0, 0])
            g[0] += e.repeat
            g[1] += e.bytes or 0
    rows = [
        {**dict(zip(agg.group_by, k)), "count": c, "bytes": b}
        for k, (c, b) in sorted(groups.items(), key=lambda kv: [(v is None, v) for v in kv[0]])
    ]
    return [r for r in rows if r["count"]]


def ids(events: Sequence[Event]) -> list[str]:
    return [e.id for e in events]


def sample_events() -> list[Event]:
    """A small varied batch: every field set somewhere, None elsewhere, ties in time."""
    return [
        ev(0, action="pull", tally="pull", outcome="success", repository="library/nginx",
           reference="1.25", digest="sha256:" + "a" * 64, method="GET",
           path="/v2/library/nginx/manifests/1.25", status=200, bytes=7023, duration_ms=3.25,
           user="alice", client_ip="10.0.0.7", user_agent="docker/24.0.7 go/go1.20.10",
           request_id="5f0c1c1e-1c1b-4a53-9b55-2f1f4c8d0e11", level="info",
           message="response completed", host="reg-1", raw='time="..." msg="response completed"',
           log_file="/var/log/registry.log", log_offset=12345),
        ev(0, action="blob_pull", tally="blob_pull", outcome="success",
           repository="library/nginx", status=200, bytes=31_415_926, client_ip="10.0.0.7"),
        ev(1, action="delete", tally="delete", outcome="success", repository="team/app/api",
           reference="sha256:" + "b" * 64, method="DELETE", status=202, user="bob", repeat=1),
        ev(2, action="delete", tally="delete_failed", outcome="failure", repository="team/app",
           method="DELETE", status=404, error_code="MANIFEST_UNKNOWN", user="bob"),
        ev(3, action="auth", auth="auth_failure", outcome="failure", user="mallory",
           client_ip="2001:db8::1", status=401, repeat=3, source="harbor", component="core"),
        ev(4, action="base", auth="challenge", outcome="failure", status=401, client_ip="10.0.0.9"),
        ev(5, action="push", tally="push", outcome="success", repository="team/app",
           reference="v1", status=201, user="alice", source="harbor", component="registry"),
        ev(6, action="other"),  # defaults only
    ]


# -- write / read back ---------------------------------------------------------------


def test_empty_store_answers_empty(store: Any) -> None:
    assert store.search(Query()) == []
    assert store.aggregate(Aggregation(group_by=("action",))) == []
    assert store.aggregate(Aggregation()) == []
    assert store.write([]) == WriteResult()


def test_write_then_search_returns_the_same_events(store: Any) -> None:
    events = sample_events()
    res = store.write(events)
    assert res == WriteResult(written=len(events), duplicates=0, rejected=(), accepted=tuple(e.id for e in events))
    got = store.search(Query())
    assert got == sorted(events, key=key)
    for e in got:
        assert e.timestamp.tzinfo is not None and e.timestamp.utcoffset() == timedelta(0)
        assert type(e.repeat) is int
    by_id = {e.id: e for e in got}
    first = by_id[events[0].id]
    assert type(first.status) is int and type(first.bytes) is int and type(first.log_offset) is int
    assert type(first.duration_ms) is float


def test_rewrite_counts_duplicates_and_stores_nothing_new(store: Any) -> None:
    events = sample_events()
    store.write(events)
    again = store.write(events)
    assert again.written == 0
    assert again.duplicates == len(events)
    assert again.rejected == ()
    assert store.search(Query()) == sorted(events, key=key)
    # a batch mixing new and old events
    new = [ev(10, action="pull"), ev(11, action="pull")]
    mixed = store.write([*events[:3], *new])
    assert (mixed.written, mixed.duplicates) == (2, 3)
    assert len(store.search(Query())) == len(events) + 2


def test_replace_stores_the_new_version_of_a_stored_event(store: Any) -> None:
    """A record built again from lines read again (a pull a later DELETE made a delete
    lookup) replaces the stored one: in search, in the delete audit's set, and in
    aggregates (the embedded store's rollup takes the old counts off)."""
    from dataclasses import replace

    pull = ev(0, action="pull", tally="pull", repository="team/app", bytes=100, user="alice")
    dele = ev(1, action="delete", tally="delete", outcome="success", repository="team/app", user="bob")
    other = ev(2, action="push", tally="push", repository="team/app", bytes=7)
    store.write([pull, dele, other])
    lookup = replace(pull, action="delete_lookup", tally="none")
    failed = replace(dele, outcome="failure", tally="delete_failed")
    new = ev(3, action="pull", tally="pull", repository="team/app", bytes=5)
    res = store.replace([lookup, failed, new])
    assert (res.written, res.duplicates) == (1, 2)
    now = [lookup, failed, other, new]
    assert store.search(Query()) == sorted(now, key=key)
    deletes = Query(actions=frozenset({"delete"}), repo="team/*", user="bob")
    assert store.search(deletes) == [failed]
    for group_by in [("action",), ("tally", "repository"), ()]:
        agg = Aggregation(Query(), group_by)
        assert store.aggregate(agg) == reference_aggregate(now, agg), group_by
    # replacing again changes nothing more
    again = store.replace([lookup])
    assert (again.written, again.duplicates) == (0, 1)
    assert store.search(Query()) == sorted(now, key=key)


def test_duplicate_ids_within_one_batch(store: Any) -> None:
    e = ev(0, action="pull")
    res = store.write([e, e, e])
    assert (res.written, res.duplicates) == (1, 2)
    assert store.search(Query()) == [e]


def test_write_says_which_ids_it_stored(store: Any) -> None:
    """``accepted`` names exactly the new ids, each once (the live metrics count them)."""
    old = [ev(0, action="pull"), ev(1, action="pull")]
    assert sorted(store.write(old).accepted or ()) == sorted(e.id for e in old)
    new = [ev(2, action="push"), ev(3, action="push")]
    res = store.write([old[1], new[0], new[0], new[1], old[0]])
    assert (res.written, res.duplicates) == (2, 3)
    assert res.accepted is not None and sorted(res.accepted) == sorted(e.id for e in new)
    assert store.write(old).accepted == ()


def test_none_fields_round_trip(store: Any) -> None:
    bare = Event(id="bare", timestamp=T0, source="custom", component="x")
    zeroes = ev(1, status=0, bytes=0, duration_ms=0.0, user="", repository="", raw="",
                log_offset=0, repeat=1)
    store.write([bare, zeroes])
    got = store.search(Query())
    assert got == [bare, zeroes]
    assert got[0].user is None and got[0].bytes is None and got[0].duration_ms is None
    assert got[1].user == "" and got[1].bytes == 0


def test_unicode_round_trip(store: Any) -> None:
    events = [
        ev(0, repository="équipe/café", user="jürgen", message="naïve ☃ 😀 \u200b end",
           raw="ключ=значение \x00 tab\t", user_agent="客户端/1.0"),
        ev(1, repository="😀/x", user="😀", reference="тег"),
    ]
    store.write(events)
    assert store.search(Query()) == events
    assert ids(store.search(Query(user="jürgen"))) == [events[0].id]
    assert ids(store.search(Query(repo="équipe/*"))) == [events[0].id]
    assert ids(store.search(Query(repo="?/x"))) == [events[1].id]


def test_microsecond_timestamps_and_timezones(store: Any) -> None:
    other_tz = timezone(timedelta(hours=-4))
    a = ev(0, timestamp=datetime(2024, 3, 10, 23, 59, 59, 999_999, tzinfo=UTC))
    b = ev(0, timestamp=datetime(2024, 3, 10, 20, 0, 0, 1, tzinfo=other_tz))  # 2024-03-11 00:00
    store.write([a, b])
    got = store.search(Query())
    assert got == [a, b]
    assert got[1].timestamp.tzinfo is not None and got[1].timestamp.utcoffset() == timedelta(0)
    assert got[1].timestamp == datetime(2024, 3, 11, 0, 0, 0, 1, tzinfo=UTC)


# -- filters -------------------------------------------------------------------------


def test_since_inclusive_until_exclusive(store: Any) -> None:
    t = T0 + timedelta(hours=1)
    us = timedelta(microseconds=1)
    events = [ev(timestamp=t - us), ev(timestamp=t), ev(timestamp=t + us),
              ev(timestamp=t + timedelta(hours=1))]
    store.write(events)
    assert ids(store.search(Query(since=t))) == ids(events[1:])
    assert ids(store.search(Query(until=t))) == ids(events[:1])
    assert ids(store.search(Query(since=t, until=t + us))) == [events[1].id]
    assert store.search(Query(since=t, until=t)) == []
    assert ids(store.search(Query(since=t - us, until=t + timedelta(hours=1)))) == ids(events[:3])


REPOS = ["library/nginx", "library/nginx-extra", "team/app", "team/app/api", "team",
         "teamx/app", "Team/app", "a*b", "a[b]", "a-b", "a\\b", None]


@pytest.mark.parametrize(
    "glob",
    ["*", "team/*", "team*", "team/*/api", "*app*", "?eam/app", "team", "library/ngin?",
     "library/nginx*", "[!l]*", "[tT]eam/app", "a[*]b", "a[[]b]", "a[!a-z]b", "a[z-a]b",
     "a[-]b", "a\\b", "*\\*", "", "nope/*"],
)
def test_repo_glob(store: Any, glob: str) -> None:
    events = [ev(i, repository=r) for i, r in enumerate(REPOS)]
    store.write(events)
    assert ids(store.search(Query(repo=glob))) == ids(expected(events, Query(repo=glob)))


def test_user_and_set_filters(store: Any) -> None:
    events = sample_events()
    store.write(events)
    for q in [
        Query(user="alice"),
        Query(user="bob"),
        Query(user=""),
        Query(user="Alice"),
        Query(actions=frozenset({"delete", "push"})),
        Query(actions=frozenset()),
        Query(tallies=frozenset({"delete", "delete_failed"})),
        Query(auth=frozenset({"auth_failure", "anonymous_denial"})),
        Query(sources=frozenset({"harbor"})),
        Query(outcome="failure"),
        Query(outcome="success", user="alice", repo="team/*"),
        Query(actions=frozenset({"delete"}), repo="team/*", user="bob", since=T0, until=T0 + timedelta(seconds=2)),
    ]:
        assert ids(store.search(q)) == ids(expected(events, q)), q


def test_client_ip_filter(store: Any) -> None:
    """``Query.client_ip`` is an exact match on the address as logged (IPv4, IPv6 or a
    value that is no address at all), combinable with the other filters and the side sets."""
    events = sample_events() + [
        ev(7, action="auth", auth="auth_failure", outcome="failure", user="eve", client_ip="not-an-ip"),
        ev(8, action="delete", tally="delete", outcome="success", repository="team/app",
           user="bob", client_ip="10.0.0.7"),
    ]
    store.write(events)
    for q in [
        Query(client_ip="10.0.0.7"),
        Query(client_ip="2001:db8::1"),
        Query(client_ip="not-an-ip"),
        Query(client_ip="10.0.0."),
        Query(client_ip=""),
        Query(client_ip="10.0.0.7", actions=frozenset({"delete"})),
        Query(client_ip="2001:db8::1", auth=frozenset({"auth_failure", "anonymous_denial"})),
        Query(client_ip="10.0.0.7", user="alice", repo="library/*"),
    ]:
        assert ids(store.search(q)) == ids(expected(events, q)), q
        agg = Aggregation(q, ("repository",))
        assert store.aggregate(agg) == reference_aggregate(events, agg), agg
    assert len(store.search(Query(client_ip="10.0.0.7"))) == 3


def test_limit_and_newest_first(store: Any) -> None:
    events = [ev(i // 3, action="pull") for i in range(30)]  # ties in time, broken by id
    store.write(events)
    for q in [Query(limit=5), Query(limit=5, newest_first=True), Query(newest_first=True),
              Query(limit=0), Query(limit=100), Query(limit=7, since=T0 + timedelta(seconds=2))]:
        assert ids(store.search(q)) == ids(expected(events, q)), q


# -- aggregate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "group_by",
    [(), ("action",), ("tally",), ("repository",), ("user", "client_ip"), ("status",),
     ("source", "component", "outcome"), ("auth", "error_code", "method"),
     tuple(sorted(GROUPABLE))],
)
def test_aggregate_groups_and_sums(store: Any, group_by: tuple[str, ...]) -> None:
    events = [*sample_events(), ev(7, action="pull", tally="pull", repository="library/nginx",
                                   bytes=None, repeat=5, user="alice"),
              ev(8, action="pull", tally="pull", repository="library/nginx", bytes=10, repeat=2)]
    store.write(events)
    agg = Aggregation(Query(), group_by)
    assert store.aggregate(agg) == reference_aggregate(events, agg)
    filtered = Aggregation(Query(actions=frozenset({"pull", "blob_pull"}), since=T0), group_by)
    assert store.aggregate(filtered) == reference_aggregate(events, filtered)


def test_aggregate_counts_repeat_and_skips_zero_counts(store: Any) -> None:
    events = [ev(0, action="auth", user="u1", repeat=4), ev(1, action="auth", user="u1"),
              ev(2, action="auth", user="u2", repeat=0), ev(3, action="auth", user=None, bytes=5)]
    store.write(events)
    rows = store.aggregate(Aggregation(Query(actions=frozenset({"auth"})), ("user",)))
    assert rows == [{"user": "u1", "count": 5, "bytes": 0}, {"user": None, "count": 1, "bytes": 5}]


def test_aggregate_ignores_limit(store: Any) -> None:
    events = [ev(i, action="pull", repository=f"r/{i % 4}") for i in range(20)]
    store.write(events)
    agg = Aggregation(Query(limit=1, newest_first=True), ("repository",))
    assert store.aggregate(agg) == reference_aggregate(events, Aggregation(Query(), ("repository",)))


# -- volume --------------------------------------------------------------------------


def test_large_batch(store: Any) -> None:
    n = 20_000
    events = [
        ev(i // 7, action=("pull", "blob_pull", "push", "delete")[i % 4],
           tally=("pull", "blob_pull", "push", "delete")[i % 4], repository=f"team{i % 13}/app{i % 5}",
           user=f"user{i % 17}", bytes=i, status=200)
        for i in range(n)
    ]
    res = store.write(events)
    assert (res.written, res.duplicates, res.rejected) == (n, 0, ())
    got = store.search(Query())
    assert len(got) == n and got == sorted(events, key=key)
    q = Query(newest_first=True, limit=12_345, repo="team1*/*")
    assert ids(store.search(q)) == ids(expected(events, q))
    agg = Aggregation(Query(), ("repository", "action"))
    assert store.aggregate(agg) == reference_aggregate(events, agg)
    again = store.write(events)
    assert (again.written, again.duplicates) == (0, n)


def test_healthcheck(store: Any) -> None:
    store.write(sample_events())
    h = store.healthcheck()
    assert isinstance(h, Health) and h.ok and h.detail
    assert h.events in (None, len(sample_events()))


# -- properties ----------------------------------------------------------------------

_TIMES = [T0 + timedelta(seconds=s, microseconds=u)
          for s in (0, 1, 3600, 86_400 - 1, 86_400, 2 * 86_400 + 7) for u in (0, 1)]
_PROP_REPOS = [None, "a", "a/b", "a/b/c", "ab", "b/a", "a-b/c", "A/b", "é/ü", "a[1]", ""]
_GLOB_ALPHABET = "ab/*?[]!-c"


@st.composite
def event_lists(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(0, 25))
    out = []
    for i in range(n):
        out.append(Event(
            id=f"{draw(st.sampled_from('abc'))}{i:03d}",
            timestamp=draw(st.sampled_from(_TIMES)),
            source=draw(st.sampled_from(["distribution", "harbor", "webhook"])),
            component=draw(st.sampled_from(["registry", "core"])),
            action=draw(st.sampled_from(["pull", "push", "delete", "blob_pull", "auth"])),
            outcome=draw(st.sampled_from(["success", "failure", "unknown"])),
            tally=draw(st.sampled_from(["pull", "delete", "none"])),
            auth=draw(st.sampled_from(["none", "auth_failure", "challenge"])),
            repository=draw(st.sampled_from(_PROP_REPOS)),
            user=draw(st.sampled_from([None, "alice", "bob", "", "Ünï"])),
            client_ip=draw(st.sampled_from([None, "10.0.0.1", "::1", "not-an-ip"])),
            status=draw(st.sampled_from([None, 200, 404])),
            bytes=draw(st.one_of(st.none(), st.integers(0, 2**40))),
            repeat=draw(st.integers(0, 4)),
        ))
    return out


def _subset(values: Sequence[str]) -> st.SearchStrategy[frozenset[str] | None]:
    return st.one_of(st.none(), st.frozensets(st.sampled_from(values)))


queries = st.builds(
    Query,
    since=st.one_of(st.none(), st.sampled_from(_TIMES)),
    until=st.one_of(st.none(), st.sampled_from(_TIMES)),
    repo=st.one_of(st.none(), st.sampled_from(["*", "a/*", "a*", "?/b", "[ab]*", "a[!/]*"]),
                   st.text(_GLOB_ALPHABET, max_size=6)),
    user=st.one_of(st.none(), st.sampled_from(["alice", "bob", "", "Ünï", "carol"])),
    client_ip=st.one_of(st.none(), st.sampled_from(["10.0.0.1", "::1", "not-an-ip", "10.0.0.2"])),
    actions=_subset(["pull", "push", "delete", "nope"]),
    tallies=_subset(["pull", "delete", "none"]),
    auth=_subset(["none", "auth_failure"]),
    sources=_subset(["distribution", "harbor"]),
    outcome=st.one_of(st.none(), st.sampled_from(["success", "failure"])),
    limit=st.one_of(st.none(), st.integers(0, 30)),
    newest_first=st.booleans(),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=event_lists(), qs=st.lists(queries, min_size=1, max_size=8),
       group_by=st.lists(st.sampled_from(sorted(GROUPABLE)), max_size=3, unique=True))
def test_property_search_and_aggregate_match_reference(
    store_factory: Callable[[], Any], events: list[Event], qs: list[Query], group_by: list[str]
) -> None:
    store = store_factory()
    res = store.write(events)
    assert res.written == len(events) and not res.rejected
    for q in qs:
        assert store.search(q) == expected(events, q), q
        agg = Aggregation(q, tuple(group_by))
        assert store.aggregate(agg) == reference_aggregate(events, agg), agg


_GLOB_REPOS = sorted({"".join(p) for n in range(4) for p in itertools.product("ab/-", repeat=n)}
                     | {"a[b]", "a*b", "a?b", "ab!", "[a]", "a]b", "a\\b", "üb"})


@pytest.fixture
def glob_store(store: Any) -> tuple[Any, list[Event]]:
    events = [ev(i, repository=r) for i, r in enumerate(_GLOB_REPOS)]
    store.write(events)
    return store, events


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(glob=st.text("ab/-*?[]!\\ü", max_size=7))
def test_property_repo_glob_matches_fnmatch(glob_store: tuple[Any, list[Event]], glob: str) -> None:
    store, events = glob_store
    q = Query(repo=glob)
    assert ids(store.search(q)) == ids(expected(events, q)), glob


# -- records -------------------------------------------------------------------------
# The Records API (storage samples, capacity-action outcomes, report runs): the same
# (kind, key) replaces, filters follow regwatch.stores.base.record_matches and the order
# is (timestamp, key).

from regwatch.errors import StoreError
from regwatch.stores.base import Record, record_matches, record_order


def rec(kind: str, key: str, seconds: float, **data: Any) -> Record:
    return Record(kind, key, T0 + timedelta(seconds=seconds), data)


def test_records_round_trip_in_order_and_by_kind(store: Any) -> None:
    a = [rec("storage_sample", f"/srv/reg|{i:03d}", 300 * (9 - i), used_bytes=10**12 + i, complete=i % 2 == 0,
             nested={"list": [1, 2.5, None, "x"], "üñï": "ok"}) for i in range(10)]
    b = [rec("report_run", "2024-03-10", 5, files=["a.html", "a.json"])]
    assert store.put_records(a + b) == 11
    got = store.get_records("storage_sample")
    assert got == sorted(a, key=record_order)
    assert got[0].timestamp.utcoffset() == timedelta(0)
    assert store.get_records("report_run") == b
    assert store.get_records("capacity_action") == []
    assert store.get_records("storage_sample", newest_first=True) == sorted(a, key=record_order, reverse=True)


def test_records_same_kind_and_key_replaces(store: Any) -> None:
    store.put_records([rec("capacity_action", "ep1|gc", 0, outcome="failed", attempt=1),
                       rec("capacity_action", "ep1|mail", 1, outcome="ok")])
    # again later (a retry), and twice within one batch: the last one wins
    store.put_records([rec("capacity_action", "ep1|gc", 50, outcome="failed", attempt=2),
                       rec("capacity_action", "ep1|gc", 60, outcome="ok", attempt=3)])
    got = store.get_records("capacity_action")
    assert [(r.key, r.data["outcome"]) for r in got] == [("ep1|mail", "ok"), ("ep1|gc", "ok")]
    assert got[1].data["attempt"] == 3 and got[1].timestamp == T0 + timedelta(seconds=60)
    # the same key under another kind is another record
    store.put_records([rec("report_run", "ep1|gc", 0)])
    assert len(store.get_records("capacity_action")) == 2
    # a replaced record that moved out of a time window is gone from that window
    assert store.get_records("capacity_action", until=T0 + timedelta(seconds=10)) == [got[0]]


def test_records_timestamps_are_instants_in_utc(store: Any) -> None:
    plus2 = timezone(timedelta(hours=2))
    t = datetime(2024, 3, 10, 14, 0, 0, 123456, tzinfo=plus2)
    store.put_records([Record("storage_sample", "k", t, {})])
    exact = T0.replace(microsecond=123456)  # the same instant in UTC
    assert store.get_records("storage_sample", until=exact) == []
    (got,) = store.get_records("storage_sample", since=exact, until=exact + timedelta(microseconds=1))
    assert got.timestamp == exact
    assert got.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "bad",
    [
        Record("Storage", "k", T0, {}),
        Record("storage-sample", "k", T0, {}),
        Record("storage_sample", "", T0, {}),
        Record("storage_sample", "k", T0.replace(tzinfo=None), {}),
        Record("storage_sample", "k", T0, {"when": T0}),
        Record("storage_sample", "k", T0, {"x": float("nan")}),
        Record("storage_sample", "k", T0, {1: "int key"}),
        Record("storage_sample", "k\udc80", T0, {}),
    ],
)
def test_records_a_bad_record_rejects_the_batch_whole(store: Any, bad: Record) -> None:
    good = rec("storage_sample", "good", 0, used_bytes=1)
    with pytest.raises(StoreError) as info:
        store.put_records([good, bad])
    assert "\n" not in str(info.value) and "record" in str(info.value)
    assert store.get_records("storage_sample") == []
    assert store.put_records([good]) == 1


def test_records_bad_kind_on_read_is_a_store_error(store: Any) -> None:
    with pytest.raises(StoreError, match="record kind"):
        store.get_records("Not A Kind")


def test_records_many_puts_and_many_rows(store: Any) -> None:
    """Over the embedded store's merges (8 files a level) and the Elasticsearch page (10k)."""
    first = [rec("storage_sample", f"p|{i:06d}", i, used_bytes=i) for i in range(12_000)]
    store.put_records(first)
    for j in range(70):  # one sample a put, as the sampler does; every 7th replaces an old one
        key_ = f"p|{j * 7:06d}" if j % 7 == 0 else f"q|{j:06d}"
        store.put_records([rec("storage_sample", key_, 20_000 + j, used_bytes=-j)])
    got = store.get_records("storage_sample")
    replaced = {f"p|{j * 7:06d}" for j in range(0, 70, 7)}
    assert len(got) == 12_000 + 60
    assert got == sorted(got, key=record_order)
    by_key = {r.key: r for r in got}
    assert all(by_key[k].data["used_bytes"] <= 0 for k in replaced)
    assert by_key["p|000001"].data == {"used_bytes": 1}
    assert len(store.get_records("storage_sample", key_prefix="q|")) == 60
    newest = store.get_records("storage_sample", limit=3, newest_first=True)
    assert [r.key for r in newest] == ["q|000069", "q|000068", "q|000067"]


_rec_kinds = st.sampled_from(["storage_sample", "capacity_action"])
_rec_keys = st.text("ab|/", min_size=1, max_size=4)
_records = st.lists(st.builds(lambda k, key, s, v: rec(k, key, s, v=v), _rec_kinds, _rec_keys,
                              st.integers(0, 40), st.integers(-5, 5)), max_size=40)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(_records, min_size=1, max_size=3),
       since=st.none() | st.integers(0, 40), until=st.none() | st.integers(0, 41),
       prefix=st.none() | st.text("ab|/", max_size=2), limit=st.none() | st.integers(0, 10),
       newest_first=st.booleans())
def test_property_records_match_reference(
    store_factory: Callable[[], Any], batches: list[list[Record]], since: int | None, until: int | None,
    prefix: str | None, limit: int | None, newest_first: bool,
) -> None:
    store = store_factory()
    live: dict[tuple[str, str], Record] = {}
    for batch in batches:
        store.put_records(batch)
        live.update(((r.kind, r.key), r) for r in batch)
    t_since = None if since is None else T0 + timedelta(seconds=since)
    t_until = None if until is None else T0 + timedelta(seconds=until)
    for kind in ("storage_sample", "capacity_action"):
        want = sorted((r for r in live.values() if record_matches(r, kind, t_since, t_until, prefix)),
                      key=record_order, reverse=newest_first)
        if limit is not None:
            want = want[:limit]
        got = store.get_records(kind, since=t_since, until=t_until, key_prefix=prefix, limit=limit,
                                newest_first=newest_first)
        assert got == want
