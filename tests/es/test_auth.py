"""Credentials and TLS against a node with security enabled (started on first use)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from regwatch.errors import StoreUnavailable
from regwatch.events import Event
from regwatch.stores.base import Query
from regwatch.stores.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.es
T = datetime(2024, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def admin(es_secure_node: dict[str, Any]) -> Iterator[Any]:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_secure_node["url"], ca_certs=es_secure_node["ca_file"],
                           basic_auth=(es_secure_node["username"], es_secure_node["password"]))
    yield client
    client.close()


@pytest.fixture
def prefix(admin: Any) -> Iterator[str]:
    p = f"a{uuid.uuid4().hex[:10]}"
    yield p
    admin.options(ignore_status=404).indices.delete(index=f"{p}-events-*")
    admin.options(ignore_status=404).indices.delete_index_template(name=f"{p}-events")
    for part in ("settings", "mappings"):
        admin.options(ignore_status=404).cluster.delete_component_template(name=f"{p}-events@{part}")


def _event() -> Event:
    return Event(id=uuid.uuid4().hex, timestamp=T, source="s", component="c", user="alice")


def _unavailable(store: ElasticsearchStore) -> str:
    store._es = store._es.options(max_retries=0)
    with pytest.raises(StoreUnavailable) as info:
        store.healthcheck()
    return str(info.value)


def test_basic_auth_and_ca_file_work(es_secure_node: dict[str, Any], prefix: str) -> None:
    n = es_secure_node
    with ElasticsearchStore(n["url"], index_prefix=prefix, ca_file=n["ca_file"], refresh=True,
                            basic_auth=(n["username"], n["password"])) as store:
        assert store.healthcheck().ok
        e = _event()
        assert store.write([e]).written == 1
        assert store.search(Query()) == [e]


def test_password_file_from_env(es_secure_node: dict[str, Any], prefix: str, tmp_path: Path) -> None:
    pw = tmp_path / "es.password"
    pw.write_text(es_secure_node["password"] + "\n")
    env = {"REGWATCH_ES_URL": es_secure_node["url"], "REGWATCH_ES_USERNAME": es_secure_node["username"],
           "REGWATCH_ES_PASSWORD_FILE": str(pw), "REGWATCH_ES_CA_FILE": es_secure_node["ca_file"],
           "REGWATCH_ES_INDEX_PREFIX": prefix}
    with ElasticsearchStore.from_env(environ=env, refresh=True) as store:
        assert store.healthcheck().ok
        assert store.write([_event()]).written == 1


# A working API key cannot be tested here: the integ-test-zip lacks the analysis-common
# module that the .security index mapping needs, so the node cannot create API keys.
# test_bad_api_key_names_the_variable covers the ApiKey header path and its message.


def test_missing_credentials_name_the_variables(es_secure_node: dict[str, Any]) -> None:
    msg = _unavailable(ElasticsearchStore(es_secure_node["url"], ca_file=es_secure_node["ca_file"]))
    assert msg.startswith(f"authentication failed at {es_secure_node['url']} (401)")
    assert "REGWATCH_ES_API_KEY" in msg and "REGWATCH_ES_USERNAME" in msg


def test_wrong_password_names_the_variables(es_secure_node: dict[str, Any]) -> None:
    n = es_secure_node
    msg = _unavailable(ElasticsearchStore(n["url"], ca_file=n["ca_file"],
                                          basic_auth=(n["username"], "wrong")))
    assert "REGWATCH_ES_PASSWORD" in msg and repr(n["username"]) in msg
    assert "wrong" not in msg.replace("wrong version", "")


def test_bad_api_key_names_the_variable(es_secure_node: dict[str, Any]) -> None:
    msg = _unavailable(ElasticsearchStore(es_secure_node["url"], ca_file=es_secure_node["ca_file"],
                                          api_key="bm90OmFrZXk="))
    assert "REGWATCH_ES_API_KEY" in msg and "401" in msg


def test_unknown_ca_mentions_the_ca_file_option(es_secure_node: dict[str, Any]) -> None:
    msg = _unavailable(ElasticsearchStore(es_secure_node["url"]))
    assert msg.startswith(f"TLS verification failed for {es_secure_node['url']}")
    assert "REGWATCH_ES_CA_FILE" in msg


def test_plain_http_to_a_tls_node_says_https(es_secure_node: dict[str, Any]) -> None:
    msg = _unavailable(ElasticsearchStore(es_secure_node["url"].replace("https://", "http://")))
    assert "https://" in msg


def test_verify_tls_off(es_secure_node: dict[str, Any]) -> None:
    n = es_secure_node
    store = ElasticsearchStore(n["url"], verify_tls=False, basic_auth=(n["username"], n["password"]))
    assert store.healthcheck().ok


def test_missing_privilege_says_which(es_secure_node: dict[str, Any], prefix: str) -> None:
    n = es_secure_node
    reader = ElasticsearchStore(n["url"], ca_file=n["ca_file"], index_prefix=prefix,
                                basic_auth=(n["reader_username"], n["reader_password"]))
    assert reader.healthcheck().ok  # monitor is enough to look
    with pytest.raises(StoreUnavailable) as info:
        reader.write([_event()])
    msg = str(info.value)
    assert f"user {n['reader_username']!r} lacks a privilege for installing the index template" in msg
    assert "manage_index_templates" in msg
    # with the template installed by an admin, the write itself is refused
    ElasticsearchStore(n["url"], ca_file=n["ca_file"], index_prefix=prefix,
                       basic_auth=(n["username"], n["password"])).setup()
    reader._setup_done = True
    with pytest.raises(StoreUnavailable) as info:
        reader.write([_event()])
    assert "403" in str(info.value) and "create_doc" in str(info.value)
