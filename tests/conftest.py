"""Shared pytest fixtures, one section per subsystem.

Sections:
  1. Elasticsearch: real nodes started by scripts/elasticsearch.py, and store factories.
  (add further sections below; keep each self-contained)
"""

from __future__ import annotations

# =====================================================================================
# 1. Elasticsearch
#
# A plain node (no security) is started once per session, on first use, by
# scripts/elasticsearch.py (Maven Central integ-test-zip, a JDK >= 21, a non-root
# user, 127.0.0.1 on free ports, 512 MiB heap); a second node with security and TLS
# is started only when an auth/TLS test asks for it. Both are stopped at session end.
#
# REGWATCH_TEST_ES_URL=http://host:9200 uses an existing node instead of starting one
# (tests then create and delete only indices/templates under random prefixes).
# When Java, Maven, the download or the start fails: the tests FAIL under CI=true and
# are skipped with the reason otherwise.
# =====================================================================================
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from es_support import _in_ci, drop_es_prefix, es_unavailable  # noqa: F401  (shared with test modules)

ES_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "elasticsearch.py"
ES_START_TIMEOUT = float(os.environ.get("REGWATCH_TEST_ES_TIMEOUT", "240"))


def _start_es_node(secure: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(ES_SCRIPT), "start", "--timeout", str(ES_START_TIMEOUT)]
    if secure:
        cmd.append("--secure")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=ES_START_TIMEOUT + 900, check=False)
    except subprocess.TimeoutExpired:
        es_unavailable(f"{' '.join(cmd)} did not finish")
        raise AssertionError("unreachable")
    if proc.returncode != 0:
        # the script prints the node's log tail on failure: show it in the test output
        sys.stderr.write(proc.stderr)
        kind = {3: "a prerequisite is missing", 4: "the node did not start"}.get(
            proc.returncode, f"exit {proc.returncode}"
        )
        es_unavailable(f"{kind}: {proc.stderr.strip()[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _stop_es_node(info: dict[str, Any]) -> None:
    if info.get("dir"):
        subprocess.run([sys.executable, str(ES_SCRIPT), "stop", "--dir", info["dir"]],
                       capture_output=True, text=True, timeout=120, check=False)


def _require_es_client() -> None:
    try:
        import elasticsearch  # noqa: F401
    except ImportError:
        es_unavailable("the elasticsearch client is not installed (pip install 'regwatch[elasticsearch]')")


@pytest.fixture(scope="session")
def es_node() -> Iterator[dict[str, Any]]:
    """The plain test node: ``{"url": ..., "version": ..., "dir": ..., ...}``."""
    _require_es_client()
    external = os.environ.get("REGWATCH_TEST_ES_URL")
    if external:
        yield {"url": external.rstrip("/"), "external": True}
        return
    info = _start_es_node(secure=False)
    try:
        yield info
    finally:
        _stop_es_node(info)


@pytest.fixture(scope="session")
def es_secure_node() -> Iterator[dict[str, Any]]:
    """A node with security and TLS on HTTP; adds ``username``, ``password``, ``ca_file``."""
    _require_es_client()
    if os.environ.get("REGWATCH_TEST_ES_URL"):
        pytest.skip("the secure-node tests start their own node (REGWATCH_TEST_ES_URL is set)")
    info = _start_es_node(secure=True)
    try:
        yield info
    finally:
        _stop_es_node(info)


@pytest.fixture(scope="session")
def es_client(es_node: dict[str, Any]) -> Iterator[Any]:
    """A raw client on the plain node, for checks below the Store interface."""
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_node["url"], request_timeout=60)
    yield client
    client.close()


@pytest.fixture
def es_store_factory(es_node: dict[str, Any], es_client: Any) -> Iterator[Callable[..., Any]]:
    """Make ElasticsearchStores with fresh random index prefixes (refresh=True);
    everything they created is deleted after the test."""
    from regwatch.stores.elasticsearch import ElasticsearchStore

    made: list[ElasticsearchStore] = []

    def make(**kw: Any) -> ElasticsearchStore:
        kw.setdefault("index_prefix", f"t{uuid.uuid4().hex[:12]}")
        kw.setdefault("refresh", True)
        store = ElasticsearchStore(es_node["url"], **kw)
        made.append(store)
        return store

    yield make
    for store in made:
        drop_es_prefix(es_client, store.index_prefix)
        store.close()


@pytest.fixture
def es_store(es_store_factory: Callable[..., Any]) -> Any:
    return es_store_factory()


# ============================ end of 1. Elasticsearch ================================
