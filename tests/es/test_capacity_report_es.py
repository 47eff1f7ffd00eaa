"""Capacity actions and the daily report on a real Elasticsearch node: the same episodes,
the same made-up-once schedule, and the same report figures as the embedded store."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from report_data import DAY_START, day_events, storage_records  # noqa: E402

from regwatch.capacity import OK, Assessment, evaluate_capacity, forecast_gauges  # noqa: E402
from regwatch.config import ActionConfig, CapacityConfig, ReportConfig  # noqa: E402
from regwatch.reports import build_report, due_reports, run_report  # noqa: E402
from regwatch.stores.embedded import EmbeddedStore  # noqa: E402

pytestmark = pytest.mark.es
NOW = DAY_START + timedelta(days=1, hours=7)


def _a(days: float | None, now: datetime) -> Assessment:
    t = now + timedelta(days=days) if days is not None else None
    return Assessment("/data", 85.0, 3.4e12, "ok", "t", now, 3.1e12, 4e12, eta=t, lower=t, upper=t)


def test_episodes_and_cooldown_on_elasticsearch(es_store: Any, tmp_path: Path) -> None:
    marker = tmp_path / "fired"
    cfg = CapacityConfig(dry_run=False, actions=(ActionConfig("command", "m", argv=(
        sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')")),))
    t = NOW
    assert [o.outcome for o in evaluate_capacity(es_store, cfg, t, assessments=[_a(2, t)])] == [OK]
    t += timedelta(hours=1)
    assert evaluate_capacity(es_store, cfg, t, assessments=[_a(2, t)]) == []
    t += timedelta(hours=1)
    evaluate_capacity(es_store, cfg, t, assessments=[_a(None, t)])  # ends
    t += timedelta(days=3)  # past the cooldown: a new episode
    assert [o.outcome for o in evaluate_capacity(es_store, cfg, t, assessments=[_a(2, t)])] == [OK]
    assert marker.read_text() == "xx"


def test_report_and_schedule_match_the_embedded_store(es_store: Any, tmp_path: Path) -> None:
    emb = EmbeddedStore(tmp_path / "db")
    for s in (es_store, emb):
        s.write(day_events())
        s.put_records(storage_records())
    a = build_report(es_store, DAY_START.date(), "UTC", NOW).to_dict()
    b = build_report(emb, DAY_START.date(), "UTC", NOW).to_dict()
    for key in ("events", "totals", "growth", "trends", "pull_failures", "auth_failures", "empty", "headline"):
        assert a[key] == b[key], key
    assert [(d["user"], d["repository"]) for d in a["deletes"]] == [(d["user"], d["repository"]) for d in b["deletes"]]
    assert a["storage"][0]["thresholds"]["100"]["days"] == pytest.approx(b["storage"][0]["thresholds"]["100"]["days"])
    assert sorted(forecast_gauges(es_store, NOW)) == sorted(forecast_gauges(emb, NOW))

    cfg = ReportConfig(at="07:00", timezone="UTC", out=str(tmp_path / "out"))
    now = datetime(2026, 3, 11, 7, 1, tzinfo=timezone.utc)
    assert due_reports(es_store, cfg, now) == [date(2026, 3, 10)]
    run_report(es_store, cfg, date(2026, 3, 10), now)
    assert due_reports(es_store, cfg, now + timedelta(hours=1)) == []
    assert due_reports(es_store, cfg, now + timedelta(days=3)) == [date(2026, 3, 13)]
    emb.close()
