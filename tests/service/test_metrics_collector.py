"""ServiceMetrics on real sample events: the live traffic counters equal `regwatch summary`
of the same events, backfill moves only stored_events{mode="backfill"}, a replayed batch
is not counted twice (the stream hands on only the rows the store accepted), labels stay
bounded, telemetry counters only go up, a storage path in error is a metric; and the
endpoint: a taken port is one clear error."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from regwatch.errors import RegwatchError
from regwatch.events import Event, IngestStats, Tally
from regwatch.metrics.catalog import OTHER, default_catalog
from regwatch.metrics.collector import ServiceMetrics, SourceTelemetry, serve_metrics
from regwatch.pipeline import ingest
from regwatch.sources.files import file_info
from regwatch.sources.tail import Chunk
from regwatch.storage.sampler import StorageProblem, StorageSample
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore, events_to_table
from regwatch.stream import StreamIngestor
from regwatch.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
LOGS = [
    ROOT / "sample_logs" / "distribution" / "registry-text.log",
    ROOT / "sample_logs" / "distribution" / "registry-json.log",
    *sorted((ROOT / "sample_logs" / "harbor").glob("*.log")),
]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _value(reg: CollectorRegistry, name: str, **labels: str) -> float:
    return sum(
        s.value
        for fam in reg.collect()
        for s in fam.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _label_values(reg: CollectorRegistry, name: str, label: str) -> set[str]:
    return {s.labels[label] for fam in reg.collect() for s in fam.samples if s.name == name}


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = EmbeddedStore(tmp_path_factory.mktemp("metrics-store"))
    ingest([str(p) for p in LOGS], store)
    yield store
    store.close()


SUMMARY_TO_METRIC = {
    "pulls": ("regwatch_image_pulls_total", {}),
    "pulls_failed": ("regwatch_image_pull_failures_total", {}),
    "pushes": ("regwatch_image_pushes_total", {"outcome": "success"}),
    "pushes_failed": ("regwatch_image_pushes_total", {"outcome": "failure"}),
    "deletes": ("regwatch_image_deletes_total", {"outcome": "success"}),
    "deletes_failed": ("regwatch_image_deletes_total", {"outcome": "failure"}),
    "auth_failures": ("regwatch_auth_failures_total", {}),
    "anonymous_denials": ("regwatch_anonymous_denials_total", {}),
    "tls_handshake_errors": ("regwatch_tls_handshake_errors_total", {}),
    "bytes_pulled": ("regwatch_pulled_bytes_total", {}),
    "bytes_pushed": ("regwatch_pushed_bytes_total", {}),
    "challenges": ("regwatch_registry_requests_total", {"reason": "challenge"}),
}


def test_live_counters_equal_the_summary_of_the_same_events(sample_store: Any) -> None:
    events = sample_store.search(Query())
    summary = summarize(sample_store)
    assert summary["pulls"] and summary["auth_failures"] and summary["challenges"] and summary["bytes_pushed"]
    reg = CollectorRegistry()
    m = ServiceMetrics(reg, started=EPOCH)  # every sample event is after the start: live
    table = events_to_table(events)
    for i in range(0, table.num_rows, 37):  # in batches, as the stream writes them
        m.observe_written(table.slice(i, 37))
    for key, (name, labels) in SUMMARY_TO_METRIC.items():
        assert _value(reg, name, **labels) == summary[key], key
    for repo, counts in summary["repositories"].items():
        assert _value(reg, "regwatch_image_pulls_total", repository=repo) == counts["pulls"], repo
        assert _value(reg, "regwatch_pulled_bytes_total", repository=repo) == counts["bytes_pulled"], repo
    assert _value(reg, "regwatch_collector_stored_events_total", mode="live") == len(events)
    assert _value(reg, "regwatch_collector_stored_events_total", mode="backfill") == 0
    # a challenge counts as a request with reason challenge, never as an auth failure
    assert _value(reg, "regwatch_registry_requests_total", action="base", reason="challenge") == summary["challenges"]


def test_backfill_moves_only_stored_events(sample_store: Any) -> None:
    events = sample_store.search(Query())
    newest = max(e.timestamp for e in events)
    reg = CollectorRegistry()
    # started a day after the newest event: everything is older than start - grace
    m = ServiceMetrics(reg, started=newest + timedelta(days=1))
    m.observe_written(events_to_table(events))
    assert _value(reg, "regwatch_collector_stored_events_total", mode="backfill") == len(events)
    assert _value(reg, "regwatch_collector_stored_events_total", mode="live") == 0
    for name, labels in SUMMARY_TO_METRIC.values():
        assert _value(reg, name, **labels) == 0, name
    assert _value(reg, "regwatch_registry_requests_total") == 0


def test_the_live_grace_splits_one_batch(sample_store: Any) -> None:
    events = sorted(sample_store.search(Query()), key=lambda e: e.timestamp)
    mid = events[len(events) // 2].timestamp
    started = mid + timedelta(minutes=5)  # the grace: events at or after `mid` are live
    live = [e for e in events if e.timestamp >= mid]
    reg = CollectorRegistry()
    m = ServiceMetrics(reg, started=started)
    m.observe_written(events_to_table(events))
    assert _value(reg, "regwatch_collector_stored_events_total", mode="live") == len(live)
    assert _value(reg, "regwatch_collector_stored_events_total", mode="backfill") == len(events) - len(live)
    want = sum(e.repeat for e in live if e.tally == Tally.PULL.value)
    assert _value(reg, "regwatch_image_pulls_total") == want


def test_a_replay_after_a_restart_is_handed_on_once(tmp_path: Path) -> None:
    """A process wrote the first part of a log and died before its checkpoint moved; the
    next reads the log again from the start. Its batches hold stored rows and new ones:
    on_written gets only the new, so every event reaches the metrics exactly once."""
    path = ROOT / "sample_logs" / "distribution" / "registry-text.log"
    raw = path.read_bytes()
    fp = file_info(str(path)).fingerprint
    cut = raw.index(b"\n", len(raw) // 2) + 1
    store = EmbeddedStore(tmp_path / "db")
    handed: list[str] = []

    def on_written(t: pa.Table) -> None:
        handed.extend(t["id"].to_pylist())

    try:
        first = StreamIngestor(store, idle_after=1e9, on_written=on_written)
        first.feed([Chunk(fp, str(path), 0, cut, raw[:cut])], now=0.0)
        first.flush(now=0.0)
        assert handed, "the first process wrote nothing"
        before = len(handed)
        # the crash: nothing committed, the next process reads everything again
        second = StreamIngestor(store, idle_after=1e9, on_written=on_written)
        second.feed([Chunk(fp, str(path), 0, len(raw), raw)], now=1.0)
        second.settle()
        second.flush(now=2.0)
        stored = sorted(e.id for e in store.search(Query()))
    finally:
        store.close()
    assert len(handed) > before
    assert sorted(handed) == stored  # each stored event once, none twice


def test_repository_label_is_top_n_plus_other() -> None:
    cat = default_catalog()
    n = cat.repository_top_n
    ts = datetime.now(UTC)
    events = [
        Event(id=f"e{i:05d}", timestamp=ts, source="distribution", component="registry", action="pull", outcome="success",
              tally=Tally.PULL.value, repository=f"team/repo-{i:03d}", method="GET", status=200)
        for i in range(n + 30)
    ]
    reg = CollectorRegistry()
    m = ServiceMetrics(reg, started=ts - timedelta(hours=1))
    m.observe_written(events_to_table(events))
    values = _label_values(reg, "regwatch_image_pulls_total", "repository")
    assert len(values) == n + 1 and OTHER in values
    assert _value(reg, "regwatch_image_pulls_total", repository=OTHER) == 30
    assert _value(reg, "regwatch_image_pulls_total") == n + 30
    assert _value(reg, "regwatch_registry_requests_total", action="pull", outcome="success", reason="ok") == n + 30


def test_the_seed_gives_the_store_s_busiest_repositories_their_slots(sample_store: Any) -> None:
    m = ServiceMetrics(CollectorRegistry(), started=EPOCH, store=sample_store)
    assert set(summarize(sample_store)["repositories"]) <= m.repos.names


def test_telemetry_counters_only_go_up_and_drops_count_by_reason() -> None:
    reg = CollectorRegistry()
    m = ServiceMetrics(reg, started=EPOCH)
    stats = IngestStats(lines=100, dropped={"unparsable": 3}, ignored={"merged": 40, "noise": 5}, noise={"registry_app": 5})
    rows = [type("Row", (), {"lag_bytes": 10, "lag_seconds": 2.5, "last_event_age_seconds": 7.0})()]
    now = datetime.now(UTC)
    m.observe_ingest({"/var/log/reg.log": SourceTelemetry(stats, rows)}, now)
    m.observe_ingest({"/var/log/reg.log": SourceTelemetry(stats, rows)}, now)  # the same totals again
    assert _value(reg, "regwatch_collector_read_lines_total", source="/var/log/reg.log") == 100
    assert _value(reg, "regwatch_collector_dropped_lines_total", reason="unparsable") == 3
    assert _value(reg, "regwatch_collector_dropped_lines_total", reason="merged") == 40
    assert _value(reg, "regwatch_collector_noise_lines_total", kind="registry_app") == 5
    assert _value(reg, "regwatch_collector_lag_bytes", source="/var/log/reg.log") == 10
    assert _value(reg, "regwatch_collector_last_event_age_seconds", source="/var/log/reg.log") == 7.0
    stats.lines = 150
    m.observe_ingest({"/var/log/reg.log": SourceTelemetry(stats, rows)}, now)
    assert _value(reg, "regwatch_collector_read_lines_total", source="/var/log/reg.log") == 150
    # a total that went down (a new ingestor) is a new baseline, never a decrease
    m.observe_ingest({"/var/log/reg.log": SourceTelemetry(IngestStats(lines=20), rows)}, now)
    assert _value(reg, "regwatch_collector_read_lines_total", source="/var/log/reg.log") == 150
    m.set_webhooks({"accepted": 3, "unauthorized": 1}, {"accepted": 7, "duplicate": 2})
    m.set_webhooks({"accepted": 4, "unauthorized": 1}, {"accepted": 9, "duplicate": 2})
    assert _value(reg, "regwatch_webhook_requests_total", outcome="accepted") == 4
    assert _value(reg, "regwatch_webhook_events_total", outcome="accepted") == 9
    m.observe_store_error("write")
    m.observe_store_error("close")
    assert _value(reg, "regwatch_store_errors_total", stage="write") == 2


def test_a_storage_path_in_error_is_a_metric_and_loses_its_stale_gauges(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    m = ServiceMetrics(reg, started=EPOCH)
    now = datetime.now(UTC)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    m.observe_storage([StorageSample(now, a, 80, 100, "statvfs"), StorageSample(now, b, 10, 100, "statvfs"),
                       StorageSample(now, a, 5, 100, "tree")])
    assert _value(reg, "regwatch_storage_used_bytes", path=a) == 80  # the filesystem's, not the tree's
    m.observe_storage([StorageSample(now, b, 20, 100, "statvfs")], [StorageProblem(a, "vanished", f"storage path {a!r} does not exist")])
    assert _value(reg, "regwatch_storage_sample_errors_total", path=a, reason="vanished") == 1
    assert a not in _label_values(reg, "regwatch_storage_used_bytes", "path")
    assert _value(reg, "regwatch_storage_used_bytes", path=b) == 20
    m.observe_forecast(b, "85", "eta", None)
    m.observe_forecast(b, "100", "eta", 3600.0)
    assert _value(reg, "regwatch_storage_time_to_threshold_seconds", path=b, threshold="85", bound="eta") == float("inf")
    assert b'threshold="100"' in generate_latest(reg)


def test_a_taken_port_is_one_clear_error() -> None:
    reg = CollectorRegistry()
    server = serve_metrics(reg, "127.0.0.1:0")
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/metrics")
        with pytest.raises(RegwatchError, match=rf"metrics.listen '127.0.0.1:{server.port}'.*choose a free host:port"):
            serve_metrics(reg, f"127.0.0.1:{server.port}")
    finally:
        server.stop()
    with socket.socket() as s:  # stopped: the port is free again
        s.bind(("127.0.0.1", server.port))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"listen": "9481"}, r"metrics.listen '9481' is not host:port"),
        ({"listen": "127.0.0.1:99999"}, r"metrics.listen '127.0.0.1:99999' is not host:port"),
        ({"listen": "127.0.0.1:9481", "port": 1}, r"unknown key metrics.port"),
        ("127.0.0.1:9481", r"metrics must be a mapping"),
    ],
)
def test_a_bad_metrics_section_is_one_config_error(section: Any, message: str) -> None:
    from regwatch.config import config_from_dict
    from regwatch.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        config_from_dict({"metrics": section})
    assert config_from_dict({"metrics": {"listen": "127.0.0.1:0"}}).metrics.listen == "127.0.0.1:0"  # type: ignore[union-attr]
    assert config_from_dict({}).metrics is None


def _snapshot_totals(store: Any) -> dict[str, float]:
    from regwatch.metrics.collector import snapshot_metrics

    reg = snapshot_metrics(store, datetime.now(UTC))
    return {key: _value(reg, name, **labels) for key, (name, labels) in SUMMARY_TO_METRIC.items()}


def test_the_textfile_snapshot_equals_the_summary(sample_store: Any) -> None:
    summary = summarize(sample_store)
    assert _snapshot_totals(sample_store) == {k: summary[k] for k in SUMMARY_TO_METRIC}


@pytest.mark.es
def test_the_textfile_snapshot_equals_the_summary_on_elasticsearch(sample_store: Any, es_store: Any) -> None:
    """The snapshot asks the store for its grouping: the same over a real Elasticsearch node."""
    es_store.write(sample_store.search(Query()))
    summary = summarize(es_store)
    assert summary["pulls"] > 0
    assert _snapshot_totals(es_store) == {k: summary[k] for k in SUMMARY_TO_METRIC}
