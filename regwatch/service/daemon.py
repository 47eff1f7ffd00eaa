"""The long-running service: `regwatch run`.

One loop on the main thread owns the order of things, so the rule of design.md holds
without locks in the hot path: **read → feed → write → commit**, and the checkpoint
moves only to offsets whose lines the store has accepted (``StreamIngestor.
safe_positions``). Around it:

* a :class:`~regwatch.sources.tail.Tailer` and a streaming ingestor per ``sources:``
  entry (each with its own checkpoint file, so two entries never overwrite each other's
  offsets);
* the webhook receiver (its own threads) puts what it parsed on a bounded queue; the
  loop stores it, so a full queue answers 503 and the registry redelivers later;
* ``/metrics`` (prometheus-client) and APScheduler 3.x jobs (storage sampling, forecast
  gauges, capacity actions, the daily report), which reach the store through one lock;
* a status file, rewritten once a second (``status.py``).

When the store is down the loop stops reading (backpressure: what was read stays in
the ingestor's bounded buffer, nothing new is read), retries with exponential backoff
up to 30 s, and says ``blocked`` and why in its status. SIGTERM or SIGINT set ``stop``:
the loop finishes the batch in hand, writes what it can, commits and returns.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from regwatch.clock import Clock, SystemClock
from regwatch.config import Config, SourceConfig
from regwatch.errors import RegwatchError, StoreError, StoreUnavailable
from regwatch.events import Event, IngestStats
from regwatch.quarantine import Quarantine
from regwatch.service.status import ServiceStatus, SourceStatus, write_status
from regwatch.sources.tail import Problem, TailConfig, Tailer
from regwatch.stores.base import Store

log = logging.getLogger("regwatch.service")

MAX_BACKOFF = 30.0
STATUS_EVERY = 1.0
WRITE_EVERY = 0.25  # seconds a source's parsed records may wait to go to the store in one write
WEBHOOK_QUEUE = 10_000  # webhook events waiting for the store; beyond: 503 and redelivery
_MAX_PROBLEMS = 50
IDLE_TRIM_AFTER = 5.0  # seconds with nothing read before freed memory goes back to the OS


def _trim_memory() -> None:
    """Give the memory a burst of reading freed back to the system (glibc and Arrow keep
    freed pages for reuse): an idle service holds what it needs, not its busiest moment."""
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except Exception:  # noqa: BLE001 - an optimisation only
        pass
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return
    _page_out_code(libc)


MADV_PAGEOUT = 21  # Linux 5.4+


def _page_out_code(libc: Any) -> None:
    """Hand the library code pages a burst touched back to the page cache
    (``madvise(MADV_PAGEOUT)`` on read-only file mappings): clean pages, refaulted from the
    page cache in microseconds when the next burst needs them; what an idle process keeps
    resident is then what it uses while idle."""
    import ctypes

    try:
        with open("/proc/self/maps") as fh:
            maps = fh.read().splitlines()
    except OSError:
        return
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for line in maps:
        parts = line.split()
        if len(parts) < 6 or not parts[5].startswith("/") or "w" in parts[1]:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        libc.madvise(lo, hi - lo, MADV_PAGEOUT)


class LockedStore:
    """The store seen by the scheduler's and the dashboard's threads: one call at a time
    with the loop's writes (the embedded store's DuckDB connection is not shared across
    threads). Attribute access passes through, so every Store method is available."""

    def __init__(self, store: Store, lock: threading.RLock) -> None:
        self._store = store
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def _stream_ingestor() -> Any:
    try:
        from regwatch.stream import StreamIngestor
    except ImportError:
        from regwatch.pipeline import StreamIngestor  # type: ignore[attr-defined,no-redef]
    return StreamIngestor


@dataclass
class _Source:
    config: SourceConfig
    tailer: Tailer
    ingestor: Any
    stats: IngestStats
    newest: datetime | None = None  # newest stored event time
    waiting_since: dict[str, float] = field(default_factory=dict)  # fp → monotonic time its unstored bytes began


@dataclass
class RunSummary:
    lines_read: int
    events_written: int
    blocked_seconds: float


class Service:
    """Compose the service from the config. ``run(stop)`` blocks until ``stop`` is set.

    ``clock`` gives wall time (status, live-metrics cut-off, scheduling); ``monotonic``
    the loop's timers. ``registry`` is the prometheus-client registry to fill (a fresh
    one per service by default, so tests can run several in one process)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        state_dir: str | os.PathLike[str],
        *,
        config_path: str | None = None,
        db: Path | None = None,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        registry: Any = None,
    ) -> None:
        if not config.sources and config.webhooks is None:
            raise RegwatchError(
                "nothing to do: the config has no 'sources:' to follow and no 'webhooks:' to receive; "
                "see docs/configuration.md (or use `regwatch run --once PATH...` for a one-shot ingest)"
            )
        self.config = config
        self.raw_store = store
        self.lock = threading.RLock()
        self.store = LockedStore(store, self.lock)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = config_path
        self.db = db
        self.clock = clock or SystemClock()
        self.monotonic = monotonic
        self.started = self.clock.now()
        self.quarantine = Quarantine(self.state_dir / "quarantine")
        self.problems: list[str] = []
        self.store_errors: dict[str, int] = {}
        self.blocked: str | None = None
        self.blocked_since: float | None = None
        self.blocked_total = 0.0
        self.lines_read = 0
        self.events_written = 0
        self.listening: dict[str, str] = {}
        self._webhook_q: queue.Queue[list[Event]] = queue.Queue(maxsize=WEBHOOK_QUEUE)
        self._webhook_pending: list[Event] = []
        self.webhook_counts: dict[str, int] = {}
        self.receiver: Any = None
        self.metrics: Any = None
        self.metrics_server: Any = None
        self.scheduler: Any = None
        self.dashboard: subprocess.Popen[bytes] | None = None
        self._next_status = 0.0
        self._last_read = 0.0
        self._busy_since_trim = False
        self._retry_at = 0.0
        self._backoff = 0.5
        self._setup_metrics(registry)
        self.sources = [self._make_source(i, s) for i, s in enumerate(config.sources)]

    # -- set-up ---------------------------------------------------------------------

    def _setup_metrics(self, registry: Any) -> None:
        try:
            from prometheus_client import CollectorRegistry

            from regwatch.metrics.collector import ServiceMetrics
        except ImportError:  # the metrics layer is optional in a trimmed install
            return
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ServiceMetrics(self.registry, started=self.started, store=self.store)

    def _make_source(self, i: int, sc: SourceConfig) -> _Source:
        key = hashlib.blake2b("\0".join(sc.paths).encode(), digest_size=5).hexdigest()
        tcfg = TailConfig(
            paths=sc.paths,
            start_at="end" if sc.start_at == "end" else "beginning",
            partial_timeout=self.config.service.partial_timeout,
        )
        tailer = Tailer(tcfg, self.state_dir / f"tail-{i}-{key}.json", on_problem=self._problem, on_resolved=self._resolved)
        stats = IngestStats()
        on_written = self._written_hook(i)
        ingestor = _stream_ingestor()(
            self.raw_store,
            config=self.config,
            fmt=None if sc.format == "auto" else sc.format,
            quarantine=self.quarantine,
            stats=stats,
            idle_after=self.config.service.idle_flush,
            on_written=on_written,
            write_every=min(WRITE_EVERY, self.config.service.idle_flush or WRITE_EVERY),
        )
        return _Source(sc, tailer, ingestor, stats)

    def _written_hook(self, i: int) -> Callable[[Any], None]:
        def hook(table: Any) -> None:
            src = self.sources[i] if i < len(self.sources) else None
            n = int(table.num_rows)
            self.events_written += n
            if src is not None and n:
                newest = _newest(table)
                if newest is not None and (src.newest is None or newest > src.newest):
                    src.newest = newest
            if self.metrics is not None:
                try:
                    self.metrics.observe_written(table)
                except Exception as exc:  # noqa: BLE001 - the metrics must never stop the stored data
                    self._metrics_failed("observe_written", exc)

        return hook

    def _metrics_failed(self, what: str, exc: Exception) -> None:
        """A metrics update failed: said once per kind, the loop and the store go on."""
        msg = f"metrics: {what} failed: {type(exc).__name__}: {exc}"
        if msg not in self.problems:
            log.warning("%s", msg)
            if len(self.problems) < _MAX_PROBLEMS:
                self.problems.append(msg)

    def _problem(self, p: Problem) -> None:
        msg = f"{p.kind}: {p.message}"
        log.warning("%s", msg)
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(msg)

    def _resolved(self, p: Problem) -> None:
        """A tailer problem that went away (a glob that matches a file now): no longer
        shown by ``regwatch status``."""
        msg = f"{p.kind}: {p.message}"
        if msg in self.problems:
            self.problems.remove(msg)
            log.info("resolved: %s", msg)

    def _start_webhooks(self) -> None:
        wc = self.config.webhooks
        if wc is None:
            return
        from regwatch.sources.webhooks import WebhookReceiver

        secret = os.environ.get(wc.secret_env) if wc.secret_env else None
        if wc.secret_env and not secret:
            raise RegwatchError(f"webhooks.secret_env names {wc.secret_env!r}, but that environment variable is not set; export it or drop secret_env")

        def sink(events: list[Event]) -> None:
            self._webhook_q.put_nowait(events)  # queue.Full → 503: the registry redelivers

        self.receiver = WebhookReceiver(wc.listen, sink, secret=secret, max_body=wc.max_body, clock=self.clock, metrics=self.webhook_counts)
        try:
            self.receiver.start()
        except OSError as exc:
            raise RegwatchError(f"webhooks.listen {wc.listen!r}: cannot listen there ({exc.strerror}); choose a free host:port") from exc
        self.listening["webhooks"] = self.receiver.url

    def _start_metrics(self) -> None:
        mc = getattr(self.config, "metrics", None)
        if self.metrics is None or mc is None or not getattr(mc, "listen", None):
            return
        from regwatch.metrics.collector import serve_metrics

        self.metrics_server = serve_metrics(self.registry, mc.listen)
        self.listening["metrics"] = f"{self.metrics_server.url}"

    def _start_scheduler(self) -> None:
        jobs = self._jobs()
        if not jobs:
            return
        from apscheduler.schedulers.background import BackgroundScheduler

        sched = BackgroundScheduler(timezone=timezone.utc, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        for fn, trigger, kwargs in jobs:
            sched.add_job(self._guard(fn), trigger, **kwargs)
        sched.start()
        self.scheduler = sched

    def _guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        name = getattr(fn, "__name__", "job")

        def run() -> None:
            try:
                fn()
            except StoreError as exc:
                self.store_errors[f"job_{name}"] = self.store_errors.get(f"job_{name}", 0) + 1
                if self.metrics is not None:
                    self.metrics.observe_store_error("query")
                log.warning("%s: store error: %s", name, exc)
            except Exception as exc:  # noqa: BLE001 - a job must never kill the service
                log.warning("%s failed: %s: %s", name, type(exc).__name__, exc)
                if len(self.problems) < _MAX_PROBLEMS:
                    self.problems.append(f"{name} failed: {type(exc).__name__}: {exc}")

        run.__name__ = name
        return run

    def _jobs(self) -> list[tuple[Callable[[], None], Any, dict[str, Any]]]:
        jobs: list[tuple[Callable[[], None], Any, dict[str, Any]]] = []
        storage = getattr(self.config, "storage", None)
        if storage is not None and getattr(storage, "paths", None):
            from apscheduler.triggers.interval import IntervalTrigger

            from regwatch.storage import StorageSampler

            sampler = StorageSampler(storage, self.store)
            interval = _seconds(getattr(storage, "interval", 300))

            def storage_sample() -> None:
                res = sampler.sample(self.clock.now())
                for p in getattr(res, "problems", ()):
                    log.warning("storage: %s", p)
                if self.metrics is not None:
                    self.metrics.observe_storage(res.samples, getattr(res, "problems", ()))
                self._capacity()

            jobs.append((storage_sample, IntervalTrigger(seconds=interval), {"next_run_time": datetime.now(timezone.utc) + timedelta(seconds=1)}))
        report = getattr(self.config, "report", None)
        if report is not None and getattr(report, "at", None):
            from apscheduler.triggers.cron import CronTrigger

            hh, mm = (int(x) for x in str(report.at).split(":")[:2])

            def daily_report() -> None:
                self._report()

            jobs.append((daily_report, CronTrigger(hour=hh, minute=mm, timezone=str(report.timezone)), {}))

            def catch_up_report() -> None:
                self._report(catch_up=True)

            jobs.append((catch_up_report, "date", {"run_date": datetime.now(timezone.utc) + timedelta(seconds=2)}))
        return jobs

    def _capacity(self) -> None:
        try:
            from regwatch.capacity import evaluate_capacity, forecast_gauges
        except ImportError:
            try:
                from regwatch.forecast.actions import evaluate_capacity, forecast_gauges  # type: ignore[no-redef]
            except ImportError:
                return
        now = self.clock.now()
        if self.metrics is not None:
            for path, threshold, bound, seconds in forecast_gauges(self.store, now):
                self.metrics.observe_forecast(path, threshold, bound, seconds)
        cap = getattr(self.config, "capacity", None)
        if cap is not None:
            for outcome in evaluate_capacity(self.store, cap, now):
                log.info("capacity action: %s", outcome)

    def _report(self, catch_up: bool = False) -> None:
        from regwatch.reports import due_reports, run_report

        now = self.clock.now()
        cfg = getattr(self.config, "report", None)
        if cfg is None:
            return
        days = due_reports(self.store, cfg, now)
        for day in days[-1:] if catch_up else days:
            run = run_report(self.store, cfg, day, now)
            log.info("daily report for %s: %s", day, run)

    def _start_dashboard(self) -> None:
        sc = self.config.service
        if not sc.dashboard:
            return
        try:
            from regwatch.dashboard import dashboard_command
        except ImportError:
            self._problem(Problem("dashboard", "", "the dashboard is not installed in this build"))
            return
        cmd = dashboard_command(self.config_path, self.db, sc.dashboard_port)
        self.dashboard = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.listening["dashboard"] = f"http://127.0.0.1:{sc.dashboard_port}"

    # -- the loop -------------------------------------------------------------------

    def run(self, stop: threading.Event, *, on_ready: Callable[[Service], None] | None = None) -> RunSummary:
        self._start_webhooks()
        try:
            self._start_metrics()
            self._start_scheduler()
            self._start_dashboard()
            if on_ready is not None:
                on_ready(self)
            for g in (g for s in self.sources for g in s.config.paths):
                log.info("following %s", g)
            for what, url in sorted(self.listening.items()):
                log.info("%s: %s", what, url)
            self._loop(stop)
        finally:
            self.close()
        return RunSummary(self.lines_read, self.events_written, self.blocked_total)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            wait = self.step()
            if wait > 0:
                stop.wait(wait)
        self.finish()

    def step(self) -> float:
        """One pass of the loop: status, write what is ready, commit, read what is new.
        Returns how long to wait before the next pass (0: go on at once)."""
        sc = self.config.service
        now_m = self.monotonic()
        if now_m >= self._next_status:
            self._write_status(now_m)
            self._next_status = now_m + STATUS_EVERY
        if self.blocked is not None and now_m < self._retry_at:
            return min(0.25, self._retry_at - now_m)
        if not self._write_out(now_m):
            self._retry_at = now_m + self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            return 0.0
        self._backoff = 0.5
        self._commit()
        read_any = False
        for src in self.sources:
            if src.ingestor.buffered_rows() >= sc.max_buffered_rows:
                continue  # backpressure: the store has not taken what was read
            chunks = src.tailer.poll()
            if chunks:
                read_any = True
                for c in chunks:
                    self.lines_read += c.data.count(b"\n") + (1 if c.partial else 0)
                    src.waiting_since.setdefault(str(c.fingerprint), now_m)
            src.ingestor.feed(chunks, now_m)  # also when empty: that is how it tells a quiet source
        if not read_any and self._webhook_q.empty():
            if self._busy_since_trim and now_m - self._last_read >= IDLE_TRIM_AFTER:
                release = getattr(self.raw_store, "release_memory", None)
                if release is not None:
                    with self.lock:
                        release()
                _trim_memory()
                self._busy_since_trim = False
            return sc.poll_interval
        self._last_read = now_m
        self._busy_since_trim = True
        return 0.0

    def finish(self) -> None:
        """Finish the batch in hand: write what can be written and commit it."""
        now_m = self.monotonic()
        for src in self.sources:
            try:
                src.ingestor.close(now_m)
            except StoreError as exc:
                self._store_failed("close", exc, now_m)
        self._write_out(now_m)
        self._commit()
        self._write_status(now_m, running=False)

    def _write_out(self, now_m: float) -> bool:
        """Write the webhook events and each ingestor's ready output. False when the
        store refused (the service is then blocked until a retry succeeds)."""
        try:
            while True:
                try:
                    self._webhook_pending.extend(self._webhook_q.get_nowait())
                except queue.Empty:
                    break
                if len(self._webhook_pending) >= 5000:
                    break
            if self._webhook_pending:
                with self.lock:
                    res = self.raw_store.write(self._webhook_pending)
                self.events_written += res.written
                if self.metrics is not None:
                    self.metrics.observe_webhook_written(res.written, max(e.timestamp for e in self._webhook_pending), self.clock.now())
                self._webhook_pending = []
            with self.lock:
                for src in self.sources:
                    src.ingestor.flush(now_m)
        except (StoreUnavailable, StoreError, OSError) as exc:
            self._store_failed("write", exc, now_m)
            return False
        if self.blocked is not None:
            log.warning("store available again after %.1fs; resuming", now_m - (self.blocked_since or now_m))
            self.blocked_total += now_m - (self.blocked_since or now_m)
            self.blocked = None
            self.blocked_since = None
        return True

    def _store_failed(self, stage: str, exc: BaseException, now_m: float) -> None:
        self.store_errors[stage] = self.store_errors.get(stage, 0) + 1
        if self.metrics is not None:
            self.metrics.observe_store_error(stage)
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        if self.blocked is None:
            log.warning("store refused a write (%s); reading is paused and retried with backoff: %s", stage, reason)
            self.blocked_since = now_m
        self.blocked = reason

    def _commit(self) -> None:
        for src in self.sources:
            safe = src.ingestor.safe_positions()
            if safe:
                src.tailer.commit(safe)
            committed = src.tailer.positions()
            read = src.tailer.read_positions()
            for fp in list(src.waiting_since):
                if fp not in read or committed.get(fp, ("", 0))[1] >= read[fp][1]:
                    del src.waiting_since[fp]

    def _source_status(self, now_m: float, now: datetime) -> list[SourceStatus]:
        out: list[SourceStatus] = []
        for src in self.sources:
            committed = src.tailer.positions()
            for fp, (path, offset) in src.tailer.read_positions().items():
                try:
                    size = os.stat(path).st_size
                except OSError:
                    size = offset
                done = committed.get(fp, (path, 0))[1]
                waited = src.waiting_since.get(fp)
                lag_b = max(0, size - done)
                age = (now - src.newest).total_seconds() if src.newest is not None else None
                out.append(
                    SourceStatus(
                        path=path,
                        fingerprint=fp,
                        offset=offset,
                        size=size,
                        lag_bytes=lag_b,
                        lag_seconds=(now_m - waited) if (waited is not None and lag_b) else 0.0,
                        last_event_age_seconds=age,
                    )
                )
        return out

    def _write_status(self, now_m: float, *, running: bool = True) -> None:
        now = self.clock.now()
        drops: dict[str, int] = {}
        noise: dict[str, int] = {}
        for src in self.sources:
            for k, v in src.stats.dropped.items():
                drops[k] = drops.get(k, 0) + v
            for k, v in src.stats.noise.items():
                noise[k] = noise.get(k, 0) + v
        sources = self._source_status(now_m, now)
        st = ServiceStatus(
            pid=os.getpid(),
            started=self.started,
            updated=now,
            running=running,
            sources=tuple(sources),
            lines_read=self.lines_read,
            events_written=self.events_written,
            drops=drops,
            noise=noise,
            store_ok=self.blocked is None,
            store_blocked_reason=self.blocked,
            store_errors=dict(self.store_errors),
            webhooks={k: v for k, v in self.webhook_counts.items()},
            problems=tuple(self.problems),
            listening=dict(self.listening),
        )
        if self.metrics is not None:
            from regwatch.metrics.collector import SourceTelemetry

            try:
                per: dict[str, SourceTelemetry] = {}
                for src in self.sources:
                    fps = set(src.tailer.read_positions())
                    per[source_label(src.config)] = SourceTelemetry(src.stats, [r for r in sources if r.fingerprint in fps])
                self.metrics.observe_ingest(per, now, webhook=self.receiver is not None)
                events = getattr(self.receiver, "event_metrics", None) or {}
                self.metrics.set_webhooks(dict(self.webhook_counts), dict(events))
            except Exception as exc:  # noqa: BLE001 - telemetry must never stop the loop
                self._metrics_failed("observe_ingest", exc)
        try:
            write_status(self.state_dir, st)
        except OSError as exc:
            log.warning("cannot write the status file in %s: %s", self.state_dir, exc)

    def close(self) -> None:
        """Stop the receiver, scheduler, metrics server and dashboard; close the tailers."""
        if self.receiver is not None:
            self.receiver.stop()
            # events taken by the receiver and answered 200 must be stored
            try:
                self._write_out(self.monotonic())
            except Exception:  # noqa: BLE001
                pass
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if self.dashboard is not None:
            self.dashboard.terminate()
            try:
                self.dashboard.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.dashboard.kill()
        for src in self.sources:
            src.tailer.close()


def source_label(sc: SourceConfig) -> str:
    """The ``source`` label of a ``sources:`` entry in the metrics: its globs."""
    return ",".join(sc.paths)


def _newest(table: Any) -> datetime | None:
    """The newest ``timestamp`` of an Event table. Through int64 micros: a timestamp
    scalar's ``as_py`` with a zone imports pandas (~80 MB the idle service would keep)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        us = pc.max(pc.cast(pc.cast(table["timestamp"], pa.timestamp("us", tz="UTC")), pa.int64())).as_py()
    except Exception:  # noqa: BLE001 - telemetry only
        return None
    return None if us is None else datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(us))


def _seconds(v: Any) -> float:
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, int | float):
        return float(v)
    from regwatch.timeargs import parse_duration

    return parse_duration(str(v)).total_seconds()


def run_service(
    config: Config,
    store: Store,
    state_dir: str | os.PathLike[str],
    stop: threading.Event,
    *,
    config_path: str | None = None,
    db: Path | None = None,
    clock: Clock | None = None,
    on_ready: Callable[[Service], None] | None = None,
) -> RunSummary:
    """Build the service and run it until ``stop`` is set (the CLI sets it on SIGTERM)."""
    svc = Service(config, store, state_dir, config_path=config_path, db=db, clock=clock)
    return svc.run(stop, on_ready=on_ready)


__all__ = ["LockedStore", "RunSummary", "Service", "run_service"]
