"""The anomaly model over a real Elasticsearch node flags what it flags over the events:
its hourly grouped counts (composite aggregations with missing buckets) must equal the
embedded store's, null users and repositories included."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_anomaly import END, SCORED, _is, planted

from regwatch.anomaly import anomalies, find, touches_from_events, touches_from_store

pytestmark = pytest.mark.es


def test_elasticsearch_flags_the_planted_hours_like_the_event_path(es_store: Any) -> None:
    events, plants = planted(1)
    result = es_store.write(events)
    assert result.written == len(events)
    flags = anomalies(es_store, since=SCORED, until=END)
    expected = find(events, since=SCORED)
    assert [(a.kind, a.actor, a.hour, a.features, a.reasons) for a in flags] == \
        [(a.kind, a.actor, a.hour, a.features, a.reasons) for a in expected]
    assert all(any(_is(a, p) for a in flags[:5]) for p in plants)
    # the grouped counts of one busy hour, anonymous challenges (no user, no repository) included
    hour = plants[1].hour
    want: Counter[tuple] = Counter()
    for t in touches_from_events(events):
        if t.hour == hour:
            want[t[:6]] += t.records
    got = Counter({t[:6]: t.records for t in touches_from_store(es_store, hour, hour + timedelta(hours=1))})
    assert got == want
    assert any(k[1] is None and k[3] is None for k in got)
