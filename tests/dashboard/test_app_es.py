"""The dashboard on the Elasticsearch store, chosen by the config as the CLI chooses it:
the Overview's numbers are ``summarize`` of the same store, and the Audit page finds the
seeded deletes. A real node (tests/conftest.py); CI=true fails without one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import (
    NOW,
    SAMPLES,
    app_test,
    assert_clean,
    frame_rows,
    metrics,
    seeded_events,
)

from regwatch import insights
from regwatch.dashboard_app.common import fmt_bytes, fmt_int
from regwatch.sources.webhooks import attributed_deletes
from regwatch.stores.base import Query
from regwatch.summary import summarize

pytestmark = pytest.mark.es


def test_overview_and_audit_on_elasticsearch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             es_node: dict[str, Any], es_store_factory: Callable[..., Any]) -> None:
    from regwatch.pipeline import ingest

    store = es_store_factory()
    ingest([str(p) for p in SAMPLES], store)
    store.write(seeded_events())
    config = tmp_path / "regwatch.yaml"
    config.write_text(f"store:\n  kind: elasticsearch\n  url: {es_node['url']}\n  index_prefix: {store.index_prefix}\n")
    monkeypatch.setenv("REGWATCH_STATE", str(tmp_path / "state"))

    at = app_test(monkeypatch, None, config=config)
    at.run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Overview"]
    bounds = insights.event_bounds(store)
    assert bounds is not None
    since, until = bounds[0], bounds[1] + timedelta(microseconds=1)
    s = summarize(store, Query(since=since, until=until))
    m = metrics(at)
    assert m["Pulls"] == fmt_int(s["pulls"]) and s["pulls"] > 0
    assert m["Pushes"] == fmt_int(s["pushes"]) and m["Deletes"] == fmt_int(s["deletes"])
    assert m["Bytes pulled"] == fmt_bytes(s["bytes_pulled"])

    at.sidebar.selectbox(key="range").set_value("Last hour")
    at.run()
    assert metrics(at)["Auth failures per minute"] == f"{34 / 60:.2f}"

    at.switch_page("views/audit.py")
    at.run()
    assert_clean(at)
    expected = [insights.inert_row(r) for r in attributed_deletes(store, Query(since=NOW - timedelta(hours=1), until=NOW))]
    shown = frame_rows(at.dataframe[0].value)
    assert [r["request_id"] for r in shown] == [r["request_id"] for r in expected] == [f"hostile-{i}" for i in range(4)]
    at.text_input(key="audit_ip").set_value("192.0.2.66")
    at.radio(key="audit_kind").set_value("auth failures")
    at.run()
    assert metrics(at)["Matching auth failures"] == "4"  # the client_ip filter, answered by Elasticsearch
