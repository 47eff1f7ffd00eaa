"""What fills the catalog metrics: the running service (:class:`ServiceMetrics`), the
``/metrics`` endpoint (:func:`serve_metrics`) and the one-shot textfile
(:func:`snapshot_metrics`, :func:`write_textfile`).

Everything the service exports is kept in memory and updated by ``observe_*`` calls made
where the service already has the data (a batch the store accepted, the status pass once
a second, a storage sample, a forecast): a scrape reads the counters and never the store,
so its cost does not grow with the store.

The traffic counters and the textfile count with one function, :func:`apply_groups`,
over rows shaped like the store's aggregation (group fields plus ``count``, the sum of
``repeat``, and ``bytes``): a live batch is grouped by the same fields in memory, the
textfile asks the store. The counting rules are those of ``regwatch summary``
(``regwatch.summary``): they were decided at ingest on ``tally`` and ``auth``, and the
metrics only add them up, so for live events the counters equal the summary.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from regwatch.errors import RegwatchError
from regwatch.events import Action, AuthClass, DropReason, IngestStats, NoiseKind, Tally
from regwatch.metrics.catalog import OTHER, Catalog, default_catalog
from regwatch.metrics.labels import RepositoryLabels, request_reason
from regwatch.metrics.live import LIVE_GRACE
from regwatch.metrics.registry import Metrics, build_metrics
from regwatch.stores.base import Aggregation, Query, Store

__all__ = [
    "GROUP_FIELDS",
    "MetricsServer",
    "ServiceMetrics",
    "apply_groups",
    "group_table",
    "is_request",
    "serve_metrics",
    "snapshot_metrics",
    "write_textfile",
]

log = logging.getLogger("regwatch.metrics")

# the fields a batch (or the store, for the textfile) is grouped by before counting
GROUP_FIELDS = ("source", "component", "method", "action", "outcome", "status", "tally", "auth", "repository")

# records that are no client request of the registry API: an auth outcome of its own,
# garbage collection, audit records, TLS handshakes that never became a request
_NOT_REQUESTS = frozenset(
    {
        Action.AUTH.value,
        Action.GC_MARK.value,
        Action.GC_DELETE_BLOB.value,
        Action.GC_DELETE_MANIFEST.value,
        Action.GC_SUMMARY.value,
        Action.AUDIT.value,
        Action.TLS_ERROR.value,
    }
)
_PULL_FAILURE_REASONS = frozenset(
    {"auth_failure", "anonymous_denial", "forbidden", "not_found", "rate_limited", "client_error", "server_error"}
)
_STORE_STAGES = {"write": "write", "close": "write", "checkpoint": "checkpoint", "query": "query", "healthcheck": "healthcheck"}
_INF = float("inf")


def is_request(source: str | None, component: str | None, method: str | None, action: str | None) -> bool:
    """True when a record is one client request of the registry API, to be counted once
    in ``regwatch_registry_requests_total``.

    A request has an HTTP method and an action that is a request (not an auth outcome,
    GC or audit record, or TLS error). Behind Harbor only the proxy's record counts
    (docs/counting.md section 6): the ``registry`` component's and core's access lines of
    the same request are attribution. Webhook notifications describe requests the log
    already counts, so they never count here."""
    if not method or action in _NOT_REQUESTS or (source or "").endswith("webhook"):
        return False
    return not (source == "harbor" and component != "proxy")


def apply_groups(metrics: Metrics, repos: RepositoryLabels, rows: Iterable[Mapping[str, Any]], action_values: frozenset[str]) -> None:
    """Add grouped rows (GROUP_FIELDS plus ``count`` and ``bytes``) to the traffic counters.

    ``count`` is the number of records the rows stand for (the sum of ``repeat``), as in
    the store's aggregation; the mapping from ``tally``/``auth`` to counters is the one of
    ``regwatch.summary``."""
    requests = metrics.counter("regwatch_registry_requests_total")
    pulls = metrics.counter("regwatch_image_pulls_total")
    pull_failures = metrics.counter("regwatch_image_pull_failures_total")
    pushes = metrics.counter("regwatch_image_pushes_total")
    deletes = metrics.counter("regwatch_image_deletes_total")
    auth_failures = metrics.counter("regwatch_auth_failures_total")
    denials = metrics.counter("regwatch_anonymous_denials_total")
    tls = metrics.counter("regwatch_tls_handshake_errors_total")
    pulled = metrics.counter("regwatch_pulled_bytes_total")
    pushed = metrics.counter("regwatch_pushed_bytes_total")
    for r in rows:
        n = int(r.get("count") or 0)
        if n <= 0:
            continue
        tally, auth = r.get("tally"), r.get("auth")
        status = r.get("status")
        status = None if status is None else int(status)
        repo = r.get("repository")
        if is_request(r.get("source"), r.get("component"), r.get("method"), r.get("action")):
            action = r.get("action") if r.get("action") in action_values else OTHER
            outcome = r.get("outcome") if r.get("outcome") in ("success", "failure") else "unknown"
            requests.labels(action, outcome, request_reason(status, auth or AuthClass.NONE.value)).inc(n)
        if tally == Tally.PULL.value:
            pulls.labels(repos(repo)).inc(n)
        elif tally == Tally.PULL_FAILED.value:
            reason = request_reason(status, auth or AuthClass.NONE.value)
            pull_failures.labels(repos(repo), reason if reason in _PULL_FAILURE_REASONS else "client_error").inc(n)
        elif tally in (Tally.PUSH.value, Tally.PUSH_FAILED.value):
            pushes.labels(repos(repo), "success" if tally == Tally.PUSH.value else "failure").inc(n)
        elif tally in (Tally.DELETE.value, Tally.DELETE_FAILED.value):
            deletes.labels(repos(repo), "success" if tally == Tally.DELETE.value else "failure").inc(n)
        elif tally == Tally.TLS_ERROR.value:
            tls.inc(n)
        elif tally == Tally.BLOB_PULL.value and r.get("bytes"):
            pulled.labels(repos(repo)).inc(int(r["bytes"]))
        elif tally == Tally.BLOB_UPLOAD.value and r.get("bytes"):
            pushed.labels(repos(repo)).inc(int(r["bytes"]))
        if auth == AuthClass.AUTH_FAILURE.value:
            auth_failures.inc(n)
        elif auth == AuthClass.ANONYMOUS_DENIAL.value:
            denials.inc(n)


def group_table(table: pa.Table) -> list[dict[str, Any]]:
    """A batch of Event rows grouped by :data:`GROUP_FIELDS`, with ``count`` (the sum of
    ``repeat``) and ``bytes`` (the sum of ``bytes``): the rows the store's aggregation
    gives for the same events. Only rows with a tally, an auth class or a method can move
    a counter, so the others are left out before grouping."""
    if table.num_rows == 0:
        return []
    t = table.select([*GROUP_FIELDS, "repeat", "bytes"])
    keep = pc.or_(
        pc.or_(pc.not_equal(t["tally"], Tally.NONE.value), pc.not_equal(t["auth"], AuthClass.NONE.value)),
        pc.is_valid(t["method"]),
    )
    t = t.filter(pc.fill_null(keep, True))
    if t.num_rows == 0:
        return []
    g = t.group_by(list(GROUP_FIELDS), use_threads=False).aggregate([("repeat", "sum"), ("bytes", "sum")])
    names = {"repeat_sum": "count", "bytes_sum": "bytes"}
    rows: list[dict[str, Any]] = g.rename_columns([names.get(c, c) for c in g.column_names]).to_pylist()
    return rows


class _Samples(Protocol):
    path: str
    used_bytes: int
    capacity_bytes: int | None
    method: str


@dataclass(frozen=True, slots=True)
class SourceTelemetry:
    """One configured log source as the service's status pass sees it: its ingest counters
    and the status rows of the file lineages it follows."""

    stats: IngestStats
    rows: Sequence[Any] = ()  # regwatch.service.status.SourceStatus


class ServiceMetrics:
    """The catalog metrics of a running service, in ``registry``.

    ``started`` is the service's start (tz-aware): events older than ``started - grace``
    are backfill (docs/metrics.md, Backfill). ``store`` seeds the repository label with
    the repositories with the most requests in the store (once, at construction; a store
    that cannot answer leaves the seed empty)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        started: datetime,
        store: Store | None = None,
        catalog: Catalog | None = None,
        grace: timedelta = LIVE_GRACE,
    ) -> None:
        self.catalog = catalog if catalog is not None else default_catalog()
        self.metrics = build_metrics(registry, self.catalog)
        self.started = started
        self.cutoff = started - grace
        self._cutoff_us = int(self.cutoff.timestamp() * 1_000_000)
        self.repos = RepositoryLabels(self.catalog.repository_top_n, _top_repositories(store))
        self._actions = frozenset(self.catalog["regwatch_registry_requests_total"].labels[0].values)
        self._seen: dict[tuple[str, tuple[str, ...]], float] = {}
        self._storage_paths: set[str] = set()
        self._webhook_last: datetime | None = None
        self._lock = threading.Lock()
        self.metrics.gauge("regwatch_collector_start_time_seconds").set(started.timestamp())
        # the pull series the failure-ratio alert divides by exist from the start at 0: a
        # series born at its first value hides that increase from rate() and increase()
        spec = self.catalog["regwatch_registry_requests_total"]
        requests = self.metrics.counter(spec.name)
        for outcome in spec.labels[1].values:
            for reason in spec.labels[2].values:
                requests.labels(Action.PULL.value, outcome, reason)

    # -- events the store accepted ----------------------------------------------------

    def observe_written(self, table: pa.Table) -> None:
        """Count a batch the store just accepted as new (only new rows: the stream hands on
        the accepted ones). Live rows move the traffic counters; every row moves
        ``regwatch_collector_stored_events_total`` by its mode."""
        n = table.num_rows
        if n == 0:
            return
        ts = pc.cast(pc.cast(table["timestamp"], pa.timestamp("us", tz="UTC")), pa.int64())
        live_mask = pc.fill_null(pc.greater_equal(ts, self._cutoff_us), False)
        live = table.filter(live_mask)
        stored = self.metrics.counter("regwatch_collector_stored_events_total")
        if live.num_rows:
            stored.labels("live").inc(live.num_rows)
        if n - live.num_rows:
            stored.labels("backfill").inc(n - live.num_rows)
        if live.num_rows:
            apply_groups(self.metrics, self.repos, group_table(live), self._actions)

    def observe_webhook_written(self, written: int, newest: datetime | None, now: datetime) -> None:
        """Webhook events the store accepted: they carry no tally or auth (every one is
        counted from the log instead), so only ``stored_events`` moves; ``now`` is the
        time of the batch, the webhook source's last event age starts from it."""
        if written <= 0:
            return
        mode = "live" if newest is None or newest >= self.cutoff else "backfill"
        self.metrics.counter("regwatch_collector_stored_events_total").labels(mode).inc(written)
        self._webhook_last = now

    # -- the collector's own telemetry ------------------------------------------------

    def _to_total(self, name: str, labels: tuple[str, ...], total: float) -> None:
        """Bring a counter to a running total seen elsewhere (the ingest stats), by the
        difference: counters only go up, and a total that went down (a new ingestor)
        becomes the new baseline."""
        key = (name, labels)
        with self._lock:
            last = self._seen.get(key, 0.0)
            self._seen[key] = total
        if total > last:
            c = self.metrics.counter(name)
            (c.labels(*labels) if labels else c).inc(total - last)

    def observe_ingest(self, sources: Mapping[str, SourceTelemetry], now: datetime, *, webhook: bool = False) -> None:
        """The status pass: lines read per source, drops by reason and noise by kind (all
        sources, backfill included), and the lag and last event age of each source.
        ``webhook`` adds the source "webhook" (the receiver) to the last event age."""
        drops: dict[str, int] = {}
        noise: dict[str, int] = {}
        lag_b = self.metrics.gauge("regwatch_collector_lag_bytes")
        lag_s = self.metrics.gauge("regwatch_collector_lag_seconds")
        age = self.metrics.gauge("regwatch_collector_last_event_age_seconds")
        for label, src in sources.items():
            self._to_total("regwatch_collector_read_lines_total", (label,), src.stats.lines)
            for bucket in (src.stats.dropped, src.stats.ignored):
                for k, v in bucket.items():
                    drops[k] = drops.get(k, 0) + v
            for k, v in src.stats.noise.items():
                noise[k] = noise.get(k, 0) + v
            lag_b.labels(label).set(sum(int(r.lag_bytes or 0) for r in src.rows))
            lag_s.labels(label).set(max((float(r.lag_seconds or 0.0) for r in src.rows), default=0.0))
            ages = [float(r.last_event_age_seconds) for r in src.rows if r.last_event_age_seconds is not None]
            if ages:
                age.labels(label).set(max(0.0, min(ages)))
        for reason in DropReason:
            self._to_total("regwatch_collector_dropped_lines_total", (reason.value,), drops.get(reason.value, 0))
        for kind in NoiseKind:
            self._to_total("regwatch_collector_noise_lines_total", (kind.value,), noise.get(kind.value, 0))
        if webhook and self._webhook_last is not None:
            age.labels("webhook").set(max(0.0, (now - self._webhook_last).total_seconds()))

    def observe_store_error(self, stage: str) -> None:
        """A failed store operation (``write``, ``close``, ``checkpoint``, ``query``,
        ``healthcheck``; ``close`` is the final write)."""
        self.metrics.counter("regwatch_store_errors_total").labels(_STORE_STAGES.get(stage, "write")).inc()

    def set_webhooks(self, counts: Mapping[str, int], events: Mapping[str, int] | None = None) -> None:
        """The webhook receiver's running totals: requests by outcome and events by
        outcome (accepted, duplicate)."""
        spec = self.catalog["regwatch_webhook_requests_total"].labels[0].values
        for outcome in spec:
            self._to_total("regwatch_webhook_requests_total", (outcome,), counts.get(outcome, 0))
        for outcome in ("accepted", "duplicate"):
            self._to_total("regwatch_webhook_events_total", (outcome,), (events or {}).get(outcome, 0))

    # -- storage and forecast ---------------------------------------------------------

    def observe_storage(self, samples: Sequence[_Samples], problems: Sequence[Any] = ()) -> None:
        """The last storage sample of each path: used and capacity bytes (the filesystem's
        statvfs sample; another method only when a path has no statvfs sample). A path
        that could not be sampled counts in ``regwatch_storage_sample_errors_total`` and
        loses its used/capacity series (a stale value would keep an alert on old data);
        the caller logs the problem's line."""
        used = self.metrics.gauge("regwatch_storage_used_bytes")
        cap = self.metrics.gauge("regwatch_storage_capacity_bytes")
        best: dict[str, _Samples] = {}
        for s in samples:
            if not s.path:
                continue
            if s.path not in best or (s.method == "statvfs" and best[s.path].method != "statvfs"):
                best[s.path] = s
        for path, s in best.items():
            used.labels(path).set(s.used_bytes)
            if s.capacity_bytes is not None:
                cap.labels(path).set(s.capacity_bytes)
            self._storage_paths.add(path)
        errors = self.metrics.counter("regwatch_storage_sample_errors_total")
        for p in problems:
            path = getattr(p, "path", "") or getattr(p, "reason", "") or OTHER
            reason = getattr(p, "reason", "unreadable")
            allowed = self.catalog["regwatch_storage_sample_errors_total"].labels[1].values
            errors.labels(path, reason if reason in allowed else "unreadable").inc()
            if path in self._storage_paths and path not in best:
                for g in (used, cap):
                    try:
                        g.remove(path)
                    except KeyError:
                        pass
                self._storage_paths.discard(path)

    def observe_forecast(self, path: str, threshold: str, bound: str, seconds: float | None) -> None:
        """One forecast row (``regwatch.capacity.forecast_gauges``): None is +Inf."""
        self.metrics.gauge("regwatch_storage_time_to_threshold_seconds").labels(path, str(threshold), bound).set(
            _INF if seconds is None else float(seconds)
        )


def _top_repositories(store: Store | None, limit: int = 500) -> list[str]:
    """The repositories with the most requests in the store, biggest first (the seed of the
    repository label). Empty when there is no store or it cannot answer now."""
    if store is None:
        return []
    try:
        rows = store.aggregate(Aggregation(Query(), ("repository",)))
    except Exception as exc:  # noqa: BLE001 - a seed only: the label fills as events come
        log.warning("metrics: cannot read the busiest repositories from the store (%s); the repository label starts empty", exc)
        return []
    rows = [r for r in rows if r.get("repository")]
    rows.sort(key=lambda r: (-int(r.get("count") or 0), str(r["repository"])))
    return [str(r["repository"]) for r in rows[:limit]]


# -- the endpoint ------------------------------------------------------------------------


class MetricsServer:
    """A running ``/metrics`` endpoint: ``url`` (``http://host:port/metrics``), ``stop()``."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        host = str(host)
        self.host = host
        self.port = int(port)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, listen: str = "127.0.0.1:9481") -> MetricsServer:
    """Serve ``registry`` in the Prometheus text format on ``listen`` (``host:port``, port 0
    picks a free one) at ``/metrics``, from a daemon thread. Raises RegwatchError when the
    address cannot be used (a port taken, a host that is not local)."""
    host, sep, port_s = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not port_s.isdigit() or not host:
        raise RegwatchError(f"metrics.listen {listen!r} is not host:port; use e.g. 127.0.0.1:9481")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics is served here")
                return
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    import socket

    if ":" in host:
        Server.address_family = socket.AF_INET6
    try:
        server = Server((host, int(port_s)), Handler)
    except OSError as exc:
        raise RegwatchError(
            f"metrics.listen {listen!r}: cannot listen there ({exc.strerror}); choose a free host:port (port 0 picks one)"
        ) from exc
    thread = threading.Thread(target=server.serve_forever, name="regwatch-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


# -- the textfile ------------------------------------------------------------------------


def snapshot_metrics(store: Store, now: datetime, *, since: datetime | None = None, catalog: Catalog | None = None) -> CollectorRegistry:
    """A registry holding what the store says now, for node-exporter's textfile collector
    (docs/metrics.md, The textfile): the traffic counters over every stored event (or
    those since ``since``), backfill included, since a snapshot has no start to be
    backfill of; the storage gauges from each path's last sample; the forecast gauges.
    The collector's telemetry describes a running service and is left out. Raises
    StoreError."""
    catalog = catalog if catalog is not None else default_catalog()
    registry = CollectorRegistry()
    metrics = build_metrics(registry, catalog)
    rows = store.aggregate(Aggregation(Query(since=since), GROUP_FIELDS))
    repos = RepositoryLabels(catalog.repository_top_n, _top_repositories(store))
    actions = frozenset(catalog["regwatch_registry_requests_total"].labels[0].values)
    apply_groups(metrics, repos, rows, actions)
    try:
        from regwatch.storage import history
    except ImportError:  # pragma: no cover - a trimmed install
        history = None  # type: ignore[assignment]
    if history is not None:
        for path, df in history(store).items():
            if len(df):
                last = df.iloc[-1]
                metrics.gauge("regwatch_storage_used_bytes").labels(path).set(float(last["used_bytes"]))
                if last["capacity_bytes"] == last["capacity_bytes"]:  # not NaN
                    metrics.gauge("regwatch_storage_capacity_bytes").labels(path).set(float(last["capacity_bytes"]))
    try:
        from regwatch.capacity import forecast_gauges
    except ImportError:  # pragma: no cover
        forecast_gauges = None  # type: ignore[assignment]
    if forecast_gauges is not None:
        g = metrics.gauge("regwatch_storage_time_to_threshold_seconds")
        for path, threshold, bound, seconds in forecast_gauges(store, now):
            g.labels(path, str(threshold), bound).set(_INF if seconds is None else float(seconds))
    return registry


_SNAPSHOT_PREFIXES = ("regwatch_collector_", "regwatch_store_errors", "regwatch_webhook_", "regwatch_storage_sample_errors")


def write_textfile(registry: CollectorRegistry, path: str | os.PathLike[str]) -> Path:
    """Write ``registry`` in the text format to ``path`` atomically (a temporary file in the
    same directory, then a rename), so the textfile collector never reads half a file.
    The service-only families (collector telemetry) are left out. Raises RegwatchError
    when the directory cannot be written."""
    target = Path(path)
    text = _without_families(generate_latest(registry).decode("utf-8"), _SNAPSHOT_PREFIXES)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or Path("."))
    except OSError as exc:
        raise RegwatchError(f"--textfile {str(target)!r}: cannot write in {str(target.parent)!r} ({exc.strerror}); pick a writable directory") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise RegwatchError(f"--textfile {str(target)!r}: cannot write it ({exc.strerror})") from exc
    return target


def _without_families(text: str, prefixes: tuple[str, ...]) -> str:
    out: list[str] = []
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("# ") and len(line.split(" ", 3)) > 2 else line.split("{", 1)[0].split(" ", 1)[0]
        if name.startswith(prefixes):
            continue
        out.append(line)
    return "\n".join(out) + "\n"
