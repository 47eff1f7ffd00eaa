"""Elasticsearch-specific behaviour: template, daily indices, idempotency, paging, retention."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from regwatch.events import Event
from regwatch.stores.base import Aggregation, Query
from regwatch.stores.elasticsearch import PAGE, SCHEMA_VERSION, ElasticsearchStore

pytestmark = pytest.mark.es
UTC = timezone.utc
T0 = datetime(2024, 4, 1, tzinfo=UTC)


def ev(i: int, ts: datetime, **kw: Any) -> Event:
    return Event(id=f"id{i:06d}", timestamp=ts, source="distribution", component="registry", **kw)


def test_template_is_composable_versioned_and_explicit(es_store: Any, es_client: Any) -> None:
    es_store.setup()
    name = es_store.template_name
    t = es_client.indices.get_index_template(name=name)["index_templates"][0]["index_template"]
    assert t["index_patterns"] == [f"{es_store.index_prefix}-events-*"]
    assert t["composed_of"] == [f"{name}@settings", f"{name}@mappings", f"{name}@custom"]
    assert t["ignore_missing_component_templates"] == [f"{name}@custom"]
    assert t["version"] == SCHEMA_VERSION
    es_store.write([ev(0, T0, action="pull", user="u", client_ip="10.0.0.1", status=200)])
    index = es_store.index_for(T0)
    m = es_client.indices.get_mapping(index=index)[index]["mappings"]
    assert m["dynamic"] == "strict"
    props = m["properties"]
    assert props["@timestamp"]["type"] == "date"
    assert props["event"]["properties"]["action"]["type"] == "keyword"
    assert props["event"]["properties"]["original"] == {"type": "keyword", "index": False, "doc_values": False}
    assert props["http"]["properties"]["response"]["properties"]["status_code"]["type"] == "long"
    assert props["source"]["properties"]["ip"]["type"] == "ip"
    assert props["message"]["type"] == "text"
    assert props["user_agent"]["properties"]["original"]["fields"]["text"]["type"] == "text"
    assert props["regwatch"]["properties"]["repository"]["type"] == "keyword"
    s = es_client.indices.get_settings(index=index)[index]["settings"]["index"]
    assert s["number_of_shards"] == "1" and s["auto_expand_replicas"] == "0-1"


def test_operator_custom_template_is_applied(es_store: Any, es_client: Any) -> None:
    es_client.cluster.put_component_template(
        name=f"{es_store.template_name}@custom",
        template={"settings": {"index": {"refresh_interval": "17s"}}},
    )
    es_store.write([ev(0, T0)])
    index = es_store.index_for(T0)
    assert es_client.indices.get_settings(index=index)[index]["settings"]["index"]["refresh_interval"] == "17s"


def test_replays_are_idempotent_across_days_and_restarts(es_store_factory: Any) -> None:
    """The index is a function of the event's own day, so a replay much later (new
    indices created meanwhile, a new process) still hits the same index and _id."""
    first = es_store_factory()
    old = [ev(i, T0 + timedelta(hours=7 * i)) for i in range(12)]  # spans 4 days
    assert first.write(old).written == 12
    first.write([ev(100, T0 + timedelta(days=30))])  # "today" moves on
    again = es_store_factory(index_prefix=first.index_prefix)  # a restarted collector
    res = again.write(old + [ev(101, T0 + timedelta(days=30, hours=1))])
    assert (res.written, res.duplicates) == (1, 12)
    assert len(again.search(Query())) == 14


def test_search_pages_past_the_result_window(es_store: Any) -> None:
    n = 2 * PAGE + 1234
    # few distinct timestamps: ties broken by id across page and index boundaries
    events = [ev(i, T0 + timedelta(hours=(i % 50))) for i in range(n)]
    assert es_store.write(events).written == n
    asc = sorted(events, key=lambda e: (e.timestamp, e.id))
    assert es_store.search(Query()) == asc
    assert es_store.search(Query(newest_first=True)) == asc[::-1]
    assert es_store.search(Query(limit=PAGE + 7)) == asc[: PAGE + 7]
    assert es_store.search(Query(limit=PAGE)) == asc[:PAGE]
    assert es_store.search(Query(newest_first=True, limit=PAGE + 1)) == asc[::-1][: PAGE + 1]
    since = T0 + timedelta(hours=10)
    assert es_store.search(Query(since=since)) == [e for e in asc if e.timestamp >= since]
    rows = es_store.aggregate(Aggregation(Query(), ("repository",)))
    assert rows == [{"repository": None, "count": n, "bytes": 0}]


def test_aggregate_pages_many_groups(es_store: Any) -> None:
    n = 12_000  # more groups than one composite page
    events = [ev(i, T0, user=f"user{i:05d}", bytes=i, repeat=2) for i in range(n)]
    es_store.write(events)
    rows = es_store.aggregate(Aggregation(Query(), ("user",)))
    assert len(rows) == n
    assert rows[0] == {"user": "user00000", "count": 2, "bytes": 0}
    assert rows[-1] == {"user": f"user{n - 1:05d}", "count": 2, "bytes": n - 1}


def test_bytes_sums_are_exact_below_2_pow_53(es_store: Any) -> None:
    big = 2**52 - 1
    es_store.write([ev(0, T0, bytes=big), ev(1, T0, bytes=1), ev(2, T0, bytes=2**40)])
    assert es_store.aggregate(Aggregation(Query())) == [{"count": 3, "bytes": big + 1 + 2**40}]


def test_prune_deletes_whole_old_days(es_store: Any) -> None:
    es_store.write([ev(i, T0 + timedelta(days=i)) for i in range(5)])
    now = T0 + timedelta(days=4, hours=3)
    deleted = es_store.prune(timedelta(days=2), now=now)
    assert deleted == [es_store.index_for(T0), es_store.index_for(T0 + timedelta(days=1))]
    assert [e.timestamp for e in es_store.search(Query())] == [T0 + timedelta(days=i) for i in (2, 3, 4)]


def test_parallel_bulk_gives_the_same_result(es_store_factory: Any) -> None:
    store: ElasticsearchStore = es_store_factory(bulk_threads=3, bulk_docs=100)
    events = [ev(i, T0 + timedelta(seconds=i)) for i in range(2500)]
    res = store.write(events + events[:10])
    assert (res.written, res.duplicates, res.rejected) == (2500, 10, ())
    assert store.search(Query()) == events


def test_healthcheck_reports_version_and_count(es_store: Any, es_node: dict[str, Any]) -> None:
    es_store.write([ev(0, T0), ev(1, T0)])
    h = es_store.healthcheck()
    assert h.ok and h.events == 2
    if "version" in es_node:
        assert f"Elasticsearch {es_node['version']}" in h.detail
