"""ElasticsearchStore logic that needs no node: documents, globs, config, retries, errors."""

from __future__ import annotations

import fnmatch
import math
import re
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("elasticsearch")

from regwatch.errors import ConfigError, StoreUnavailable
from regwatch.events import Event
from regwatch.stores.elasticsearch import (
    ElasticsearchStore,
    _dumps,
    from_document,
    glob_to_query,
    glob_to_regexp,
    to_document,
)

UTC = timezone.utc
T = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- documents -----------------------------------------------------------------------


def test_document_uses_ecs_names() -> None:
    e = Event(id="x", timestamp=T, source="distribution", component="registry", action="pull",
              outcome="success", method="GET", status=200, path="/v2/a/manifests/1", user="u",
              client_ip="10.1.2.3", user_agent="docker/24", repository="a", tally="pull",
              auth="none", raw="line", bytes=5, duration_ms=1.5, request_id="r", error_code=None)
    doc = to_document(e)
    assert doc["@timestamp"] == "2024-05-01T12:30:15.123456+00:00"
    assert doc["regwatch.timestamp_us"] == 1714566615123456
    for k in ("event.action", "event.outcome", "http.request.method", "http.response.status_code",
              "url.path", "user.name", "source.ip", "source.address", "user_agent.original",
              "event.original", "regwatch.tally", "regwatch.auth", "regwatch.repository"):
        assert k in doc, k
    assert "error.code" not in doc  # None is left out
    assert from_document(doc) == e


def test_document_round_trip_of_odd_values() -> None:
    for d in (math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308):
        e = Event(id="x", timestamp=T, source="s", component="c", duration_ms=d,
                  client_ip="not an ip", bytes=2**80, status=-1)
        back = from_document(to_document(e))
        assert (math.isnan(back.duration_ms) if math.isnan(d) else back.duration_ms == d)
        assert math.copysign(1, back.duration_ms) == math.copysign(1, d) or math.isnan(d)
        assert back.bytes == 2**80 and back.client_ip == "not an ip"
    assert "source.ip" not in to_document(Event(id="x", timestamp=T, source="s", component="c",
                                                 client_ip="not an ip"))


@pytest.mark.parametrize("value", [1, 2**63 - 1, 2**64, -(2**80), "plain", "ünï 😀", "lone \ud800",
                                   -0.0, 5e-324, None, "\x00\n\"\\"])
def test_json_bodies_round_trip(value: Any) -> None:
    import json

    doc = {"a": value, "b": "x"}
    back = json.loads(_dumps(doc))
    assert back == doc and type(back["a"]) is type(value)


def test_naive_and_other_zone_timestamps_are_utc() -> None:
    naive = Event(id="x", timestamp=datetime(2024, 1, 1, 0, 0), source="s", component="c")
    back = from_document(to_document(naive))
    assert back.timestamp == datetime(2024, 1, 1, tzinfo=UTC)
    other = Event(id="x", timestamp=datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
                  source="s", component="c")
    assert from_document(to_document(other)).timestamp == datetime(2024, 1, 1, tzinfo=UTC)


def test_daily_index_is_chosen_by_the_event_time() -> None:
    s = ElasticsearchStore("http://127.0.0.1:1", index_prefix="rw")
    assert s.index_for(datetime(2024, 2, 29, 23, 59, tzinfo=UTC)) == "rw-events-2024.02.29"
    assert s.index_for(datetime(2024, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))) == "rw-events-2024.02.29"
    assert s.index_for(datetime(1, 1, 1, tzinfo=UTC)) == "rw-events-0001.01.01"


# -- globs ---------------------------------------------------------------------------


def lucene_as_python(regexp: str) -> re.Pattern[str]:
    """The regexps glob_to_regexp emits use only syntax Python reads the same way."""
    return re.compile(regexp, re.DOTALL)


@settings(max_examples=3000, deadline=None)
@given(pattern=st.text("ab/-*?[]!^\\.cé", max_size=8), value=st.text("ab/-*?[]!^\\.cé", max_size=6))
def test_glob_regexp_agrees_with_fnmatch(pattern: str, value: str) -> None:
    rx = glob_to_regexp(pattern)
    expected = fnmatch.fnmatchcase(value, pattern)
    got = False if rx is None else lucene_as_python(rx).fullmatch(value) is not None
    assert got == expected, (pattern, value, rx)


def test_glob_query_shapes() -> None:
    assert glob_to_query("f", "library/nginx") == {"term": {"f": "library/nginx"}}
    assert glob_to_query("f", "team/*") == {"prefix": {"f": "team/"}}
    assert glob_to_query("f", "**") == {"exists": {"field": "f"}}
    assert glob_to_query("f", "*/x") == {"wildcard": {"f": {"value": "*/x"}}}
    assert glob_to_query("f", "a\\*") == {"prefix": {"f": "a\\"}}  # literal backslash
    assert glob_to_query("f", "a\\?*") == {"wildcard": {"f": {"value": "a\\\\?*"}}}
    assert glob_to_query("f", "[ab]*")["regexp"]["f"]["value"] == "[ab].*"
    assert glob_to_query("f", "a[z-a]") == {"match_none": {}}
    assert glob_to_regexp("a[!]") == "a\\[\\!\\]"  # unterminated: literal
    assert glob_to_regexp("x[!]]") == "x[^\\]]"


# -- configuration -------------------------------------------------------------------


def test_from_env_reads_url_key_file_and_ca(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("c2VjcmV0OmtleQ==\n")
    ca = tmp_path / "ca.crt"
    ca.write_text("not really a cert")
    s = ElasticsearchStore.from_env(environ={
        "REGWATCH_ES_URL": "https://es.example:9200", "REGWATCH_ES_API_KEY_FILE": str(key),
        "REGWATCH_ES_CA_FILE": str(ca), "REGWATCH_ES_INDEX_PREFIX": "audit"})
    assert s.url == "https://es.example:9200" and s.index_prefix == "audit"
    assert s._auth_kind == "api_key" and s._ca_file == str(ca)
    s2 = ElasticsearchStore.from_env("http://x:9200", environ={
        "REGWATCH_ES_USERNAME": "u", "REGWATCH_ES_PASSWORD": "p"}, index_prefix="o")
    assert s2._auth_kind == "basic" and s2.index_prefix == "o"


@pytest.mark.parametrize("env, needle", [
    ({}, "REGWATCH_ES_URL"),
    ({"REGWATCH_ES_URL": "http://x", "REGWATCH_ES_USERNAME": "u"}, "REGWATCH_ES_PASSWORD"),
    ({"REGWATCH_ES_URL": "http://x", "REGWATCH_ES_PASSWORD": "p"}, "REGWATCH_ES_USERNAME"),
    ({"REGWATCH_ES_URL": "http://x", "REGWATCH_ES_API_KEY": "k", "REGWATCH_ES_USERNAME": "u",
      "REGWATCH_ES_PASSWORD": "p"}, "not both"),
    ({"REGWATCH_ES_URL": "http://x", "REGWATCH_ES_API_KEY_FILE": "/nonexistent/key"}, "/nonexistent/key"),
    ({"REGWATCH_ES_URL": "http://x", "REGWATCH_ES_CA_FILE": "/nonexistent/ca.crt"}, "REGWATCH_ES_CA_FILE"),
    ({"REGWATCH_ES_URL": "ftp://x"}, "http(s)://"),
    ({"REGWATCH_ES_URL": "http://u:p@x:9200"}, "not in the URL"),
    ({"REGWATCH_ES_URL": "http://x", "REGWATCH_ES_INDEX_PREFIX": "Bad Prefix"}, "index prefix"),
])
def test_from_env_errors_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        ElasticsearchStore.from_env(environ=env)
    assert needle in str(info.value)
    assert "p@" not in str(info.value)  # a password in the URL is not echoed


def test_connection_refused_is_actionable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    s = ElasticsearchStore(url, request_timeout=5)
    s._es = s._es.options(max_retries=0)
    with pytest.raises(StoreUnavailable) as info:
        s.healthcheck()
    assert str(info.value) == f"connection refused at {url}: start Elasticsearch or set REGWATCH_ES_URL"
    with pytest.raises(StoreUnavailable):
        s.write([Event(id="x", timestamp=T, source="s", component="c")])


# -- bulk results: retries, rejections, refusals -------------------------------------


def _item(status: int, error: dict[str, Any] | None = None, **extra: Any) -> tuple[bool, dict[str, Any]]:
    info: dict[str, Any] = {"_index": "i", "_id": "x", "status": status, **extra}
    if error:
        info["error"] = error
    return 200 <= status < 300, {"create": info}


class FakeBulk:
    """Answers each bulk round with the next scripted list of statuses."""

    def __init__(self, rounds: list[list[int]]) -> None:
        self.rounds = rounds
        self.sent: list[int] = []

    def __call__(self, actions: Iterator[Any]) -> list[tuple[bool, dict[str, Any]]]:
        docs = list(actions)
        self.sent.append(len(docs))
        statuses = self.rounds.pop(0)
        assert len(statuses) == len(docs)
        err = {"type": "x_exception", "reason": "because", "caused_by": {"type": "inner", "reason": "why"}}
        return [_item(s, None if s < 300 else err) for s in statuses]


@pytest.fixture
def offline_store() -> ElasticsearchStore:
    s = ElasticsearchStore("http://127.0.0.1:1", install_template=False, initial_backoff=0.1,
                           max_retries=3)
    s.sleeps = []  # type: ignore[attr-defined]
    s._sleep = s.sleeps.append  # type: ignore[attr-defined]
    return s


def _events(n: int) -> list[Event]:
    return [Event(id=f"e{i}", timestamp=T, source="s", component="c") for i in range(n)]


def test_429_and_503_are_retried_with_backoff(offline_store: Any) -> None:
    fake = FakeBulk([[201, 429, 409, 503], [429, 201], [201]])
    offline_store._bulk = fake
    res = offline_store.write(_events(4))
    assert (res.written, res.duplicates, res.rejected) == (3, 1, ())
    assert fake.sent == [4, 2, 1]
    assert offline_store.sleeps == [0.1, 0.2]


def test_rejected_documents_are_kept_with_reason_and_do_not_block(offline_store: Any) -> None:
    offline_store._bulk = FakeBulk([[201, 400, 201, 413]])
    events = _events(4)
    res = offline_store.write(events)
    assert res.written == 2
    assert [e for e, _ in res.rejected] == [events[1], events[3]]
    assert res.rejected[0][1] == "400 x_exception: because (caused by inner: why)"


def test_persistent_overload_raises_unavailable(offline_store: Any) -> None:
    offline_store._bulk = FakeBulk([[201, 429]] + [[429]] * 3)
    with pytest.raises(StoreUnavailable) as info:
        offline_store.write(_events(2))
    assert "1 of 2 events after 3 retries" in str(info.value)
    assert "writing the batch again is safe" in str(info.value)


def test_persistent_500_becomes_a_rejection(offline_store: Any) -> None:
    offline_store._bulk = FakeBulk([[500, 201], [500], [500], [500]])
    res = offline_store.write(_events(2))
    assert res.written == 1 and len(res.rejected) == 1 and res.rejected[0][1].startswith("500 ")


def test_write_block_is_unavailable_not_rejected(offline_store: Any) -> None:
    offline_store._bulk = FakeBulk([[201, 403]])
    with pytest.raises(StoreUnavailable) as info:
        offline_store.write(_events(2))
    assert "refused writes" in str(info.value) and "1 of 2 events were stored" in str(info.value)
