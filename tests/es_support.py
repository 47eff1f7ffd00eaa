"""Elasticsearch helpers shared by tests/conftest.py and the test modules.

A module of its own: several directories have a ``conftest.py``, so ``from conftest
import ...`` picks whichever was imported first.
"""

from __future__ import annotations

import os
from typing import Any

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def es_unavailable(reason: str) -> None:
    """Fail (CI=true) or skip (elsewhere) a test that needs an Elasticsearch node."""
    if _in_ci():
        pytest.fail(f"Elasticsearch is required when CI=true: {reason}", pytrace=False)
    pytest.skip(f"no Elasticsearch node: {reason}")



def drop_es_prefix(client: Any, prefix: str) -> None:
    """Delete the indices and templates a store with ``prefix`` created."""
    names = sorted(
        client.options(ignore_status=404)
        .indices.get(index=f"{prefix}-events-*", expand_wildcards="open,closed",
                     filter_path="*.settings.index.uuid")
        .body
        or {}
    )
    for i in range(0, len(names), 50):
        client.options(ignore_status=404).indices.delete(index=",".join(names[i:i + 50]))
    client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-events")
    client.options(ignore_status=404).indices.delete(index=f"{prefix}-records")
    for part in ("settings", "mappings", "custom"):
        client.options(ignore_status=404).cluster.delete_component_template(
            name=f"{prefix}-events@{part}"
        )
