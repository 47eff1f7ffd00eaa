"""The `regwatch` command: thin wrappers over the library.

This is the only module that turns errors into exit codes and messages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regwatch.clock import Clock, SystemClock
from regwatch.config import DEFAULT_DB, Config, load_config
from regwatch.errors import ConfigError, RegwatchError, StoreError
from regwatch.quarantine import Quarantine
from regwatch.sources.checkpoint import FileCheckpoint
from regwatch.stores.base import Query, Store


def _db_path(args: argparse.Namespace, config: Config) -> Path:
    raw = getattr(args, "db", None) or os.environ.get("REGWATCH_DB") or config.store.path or DEFAULT_DB
    return Path(os.path.expanduser(raw))


def _es_url(args: argparse.Namespace, config: Config) -> str | None:
    url = getattr(args, "es", None)
    if url:
        return str(url)
    if config.store.kind == "elasticsearch":
        return config.store.url or os.environ.get("REGWATCH_ES_URL")
    return None


def open_store(args: argparse.Namespace, config: Config, *, create: bool = True) -> tuple[Store, Path]:
    """The store chosen by flags, config and environment, and its state directory.

    With ``create=False`` (read-only commands) a missing embedded store is an error
    rather than a new, empty one: a mistyped --db should not print zeros."""
    url = _es_url(args, config)
    if url:
        try:
            from regwatch.stores.elasticsearch import ElasticsearchStore
        except ImportError as exc:
            raise ConfigError(
                "the Elasticsearch store needs the 'elasticsearch' package; pip install 'regwatch[elasticsearch]'"
            ) from exc
        # only what the config sets explicitly overrides the REGWATCH_ES_* environment
        options: dict[str, Any] = {}
        if config.store.ca_file:
            options["ca_file"] = config.store.ca_file
        if not config.store.verify_tls:
            options["verify_tls"] = False
        if config.store.index_prefix != "regwatch":
            options["index_prefix"] = config.store.index_prefix
        environ = dict(os.environ)
        for key, value in (
            ("REGWATCH_ES_USERNAME", config.store.username),
            ("REGWATCH_ES_API_KEY_FILE", config.store.api_key_file),
            ("REGWATCH_ES_PASSWORD_FILE", config.store.password_file),
        ):
            if value:
                environ[key] = str(value)
        store = ElasticsearchStore.from_env(url=url, environ=environ, **options)
        state_root = os.environ.get("REGWATCH_STATE") or os.path.expanduser("~/.local/state/regwatch")
        key = hashlib.blake2b(f"{url}|{config.store.index_prefix}".encode(), digest_size=6).hexdigest()
        return store, Path(state_root) / f"es-{key}"
    from regwatch.stores.embedded import EmbeddedStore

    db = _db_path(args, config)
    if not create and not any((db / f).exists() for f in ("manifest.json", "checkpoint.json", "records.json")):
        raise StoreError(
            f"no regwatch store at {str(db)!r}; check --db / REGWATCH_DB, or fill it first: regwatch ingest --db {db} PATH..."
        )
    return EmbeddedStore(db), db


def _query(args: argparse.Namespace, clock: Clock) -> Query:
    from regwatch.timeargs import parse_time

    now = clock.now()
    since = parse_time(args.since, now) if getattr(args, "since", None) else None
    until = parse_time(args.until, now) if getattr(args, "until", None) else None
    return Query(since=since, until=until, repo=getattr(args, "repo", None), user=getattr(args, "user", None))


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="ingest", file=sys.stderr, leave=False)


# -- commands -----------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    from regwatch.formats import make_parser
    from regwatch.pipeline import IngestOptions, ingest, total_bytes
    from regwatch.sources.files import expand

    make_parser(args.format, config)  # a bad --format fails before anything else
    expand(args.paths)  # an unreadable path fails before the store is touched
    store, state = open_store(args, config)
    quarantine = Quarantine(state / "quarantine")
    try:
        bar = _progress_bar(total_bytes(args.paths), sys.stderr.isatty() and not args.quiet)
        stats = ingest(
            args.paths,
            store,
            config=config,
            options=IngestOptions(fmt=args.format, from_start=args.from_start),
            checkpoint=FileCheckpoint(state / "checkpoint.json"),
            quarantine=quarantine,
            progress=bar.update if bar is not None else None,
        )
        if bar is not None:
            bar.close()
    finally:
        store.close()
        # bad input (binary, NUL bytes, invalid UTF-8, over-long lines, a cut gzip): one
        # line per file and kind, naming the file and the line; also when ingest failed
        for msg in quarantine.messages():
            print(msg, file=sys.stderr)
    d = stats.to_dict()
    if args.json:
        print(json.dumps(d, sort_keys=True))
    else:
        dropped = ", ".join(f"{k}={v}" for k, v in d["dropped"].items()) or "none"
        print(
            f"{d['files']} file(s), {d['lines']} lines → {d['events']} new events, "
            f"{d['duplicates']} duplicates; dropped: {dropped}"
        )
        if d["noise"]:
            kinds = ", ".join(f"{k}={v}" for k, v in sorted(d["noise"].items(), key=lambda kv: -kv[1]))
            print(f"known lines with nothing to count: {kinds}")
        if d["wrappers"]:
            print("read through runtime envelopes: " + ", ".join(f"{k}={v}" for k, v in d["wrappers"].items()))
        if d["dropped"]:
            print(f"dropped lines are kept in {state / 'quarantine' / 'dropped.jsonl'} (see `regwatch dropped`)")
    return 0


def cmd_summary(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    from regwatch.summary import COUNT_KEYS, summarize, uncounted_notes

    q = _query(args, clock)
    store, _ = open_store(args, config, create=False)
    try:
        out = summarize(store, q)
        notes = uncounted_notes(store, q)
    finally:
        store.close()
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    width = max(len(k) for k in COUNT_KEYS)
    for k in COUNT_KEYS:
        print(f"{k.ljust(width)}  {out[k]:>12,}")
    if out["repositories"]:
        print()
        cols = ("pulls", "pulls_failed", "pushes", "deletes", "deletes_failed", "bytes_pulled", "bytes_pushed")
        rw = max(10, *(len(r) for r in out["repositories"]))
        print("REPOSITORY".ljust(rw) + "".join(c.upper().rjust(16) for c in cols))
        for repo, c in out["repositories"].items():
            print(repo.ljust(rw) + "".join(f"{c[k]:>16,}" for k in cols))
    return 0


def cmd_audit_deletes(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    from regwatch.audit import render
    from regwatch.sources.webhooks import attributed_deletes

    if args.format not in ("table", "json", "csv"):
        raise ConfigError(f"unknown output format {args.format!r}; use --format table, json or csv")
    q = _query(args, clock)
    store, _ = open_store(args, config, create=False)
    try:
        # Distribution's logs name no user for a token-less or htpasswd delete; its
        # notifications do: the rows take the user from the stored webhook events
        rows = attributed_deletes(store, q)
    finally:
        store.close()
    print(render(rows, args.format))
    return 0


def cmd_audit_anomalies(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    from regwatch import anomaly
    from regwatch.timeargs import parse_duration, parse_time

    if args.format not in ("table", "json", "csv"):
        raise ConfigError(f"unknown output format {args.format!r}; use --format table, json or csv")
    now = clock.now()
    since = parse_time(args.since, now) if args.since else now - anomaly.DEFAULT_WINDOW
    until = parse_time(args.until, now) if args.until else now
    if since >= until:
        raise ConfigError(f"--since {args.since or '7d'} is not before --until {args.until or 'now'}; give an earlier --since")
    hours = anomaly.WorkHours.parse(args.work_hours, args.timezone)
    store, _ = open_store(args, config, create=False)
    try:
        flags = anomaly.anomalies(
            store, since=since, until=until, limit=args.limit,
            threshold=anomaly.DEFAULT_THRESHOLD if args.threshold is None else args.threshold,
            work_hours=hours, lookback=parse_duration(args.lookback),
        )
    finally:
        store.close()
    print(anomaly.render(flags, args.format))
    return 0


def cmd_check(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    store, _ = open_store(args, config)
    try:
        health = store.healthcheck()
    finally:
        store.close()
    print(f"config ok; store ok: {health.detail}" + (f" ({health.events} events)" if health.events is not None else ""))
    print(_ingest_path())
    return 0


def _ingest_path() -> str:
    """Which ingest path is active: the native core (and its library) or the DuckDB fallback and why."""
    from regwatch import native

    st = native.status()
    if st.active:
        return f"ingest path: native core ({st.path})"
    slower = native.NATIVE_LINES_PER_S / native.FALLBACK_LINES_PER_S
    return f"ingest path: DuckDB fallback, about {slower:.0f}x slower than the native core ({st.reason})"


def cmd_formats(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    from regwatch.formats import names

    for n in names(config):
        print(n)
    return 0


def cmd_dropped(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    _, state = open_store(args, config)
    rows = Quarantine(state / "quarantine").read(limit=args.limit)
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))
    return 0


def cmd_run(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    """The service (`run`): follow the config's sources until SIGTERM/SIGINT. With
    ``--once``: ingest what is there now (PATHs, else the sources' globs, else
    sample_logs/) and print the summary."""
    if args.once or (args.paths and not config.sources):
        return _run_once(args, config, clock)
    if args.paths:
        raise ConfigError("PATHs go with `regwatch run --once`; the service follows the globs under 'sources:' in the config")
    import logging
    import signal
    import threading

    from regwatch.service.daemon import run_service
    from regwatch.service.status import default_state_dir

    store, state = open_store(args, config)
    db = None if _es_url(args, config) else state
    state_dir = default_state_dir(config, db if db is not None else state)
    logging.basicConfig(level=logging.INFO, format="regwatch: %(message)s", stream=sys.stderr)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    # the Elasticsearch client logs each failed connection with a traceback; the service
    # says once that the store is blocked and why, and again when it is back
    logging.getLogger("elastic_transport").setLevel(logging.CRITICAL)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(svc: Any) -> None:
        print(f"regwatch service started (state: {state_dir}); stop with Ctrl-C or SIGTERM", file=sys.stderr, flush=True)
        for what, url in sorted(svc.listening.items()):
            print(f"  {what}: {url}", file=sys.stderr, flush=True)

    try:
        res = run_service(config, store, state_dir, stop, config_path=args.config, db=db, clock=clock, on_ready=ready)
    finally:
        store.close()
    print(f"regwatch service stopped: {res.lines_read} lines read, {res.events_written} events written", file=sys.stderr)
    return 0


def _run_once(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    paths = list(args.paths)
    if not paths:
        import glob as _glob

        paths = sorted({f for s in config.sources for g in s.paths for f in _glob.glob(g, recursive=True)})
        if not paths and not config.sources:
            paths = ["sample_logs"]
        if not paths:
            raise ConfigError("the globs under 'sources:' match no file now; nothing to ingest")
    args.paths = paths
    args.format = None
    args.json = False
    args.quiet = False
    args.from_start = False
    cmd_ingest(args, config, clock)
    print()
    args.since = args.until = args.repo = None
    return cmd_summary(args, config, clock)


def cmd_status(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    """What the service writes to its state directory, read back; exit 1 when none runs."""
    from regwatch.service.status import default_state_dir, describe, read_status

    if _es_url(args, config):
        _, state = open_store(args, config, create=False)
        db = None
    else:
        db = _db_path(args, config)
        state = db
    state_dir = default_state_dir(config, db if db is not None else state)
    now = clock.now()
    st = read_status(state_dir, now)
    if args.json:
        print(json.dumps(st.to_dict() if st is not None else None, sort_keys=True))
    else:
        print(describe(st, state_dir, now))
    return 0 if st is not None and st.running else 1


def cmd_report(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    """Write the daily report of --date (default: yesterday in the report's zone)."""
    from datetime import date, timedelta

    from regwatch.config import parse_tz
    from regwatch.reports import build_report, write_report

    rc = config.report
    tz_name = args.timezone or (rc.timezone if rc is not None else "UTC")
    tz = parse_tz(tz_name)
    now = clock.now()
    if args.date:
        try:
            day = date.fromisoformat(args.date)
        except ValueError as exc:
            raise ConfigError(f"--date {args.date!r} is not a date; use YYYY-MM-DD") from exc
    else:
        day = now.astimezone(tz).date() - timedelta(days=1)
    out = args.out or (rc.out if rc is not None else "regwatch-reports")
    store, _ = open_store(args, config, create=False)
    try:
        report = build_report(store, day, tz_name, now, top=rc.top_repositories if rc is not None else 10)
    finally:
        store.close()
    html_path, json_path = write_report(report, out)
    print(f"{html_path}\n{json_path}\n{report.headline}")
    return 0


def cmd_forecast(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    """Days until each sampled path reaches 85% and 100% of its capacity, with bounds."""
    from regwatch.capacity import assess_store
    from regwatch.timeargs import parse_duration

    horizon = parse_duration(args.horizon)
    store, _ = open_store(args, config, create=False)
    try:
        rows = assess_store(store, clock.now(), (85.0, 100.0), horizon, path=args.path)
    finally:
        store.close()
    if args.json:
        print(json.dumps([a.to_dict() for a in rows], sort_keys=True))
        return 0
    if not rows:
        where = f"path {args.path!r}" if args.path else "any path"
        print(f"not enough data: no storage samples for {where} in the store (configure storage.paths and run the service)")
        return 0
    days = f"{horizon.total_seconds() / 86400:g} d"
    for path in dict.fromkeys(a.path for a in rows):
        mine = [a for a in rows if a.path == path]
        a0 = mine[0]
        used = f"{a0.used_bytes:,.0f}" if a0.used_bytes is not None else "?"
        cap = f"{a0.capacity_bytes:,.0f}" if a0.capacity_bytes is not None else "?"
        print(f"{path}: {used} of {cap} bytes used")
        for a in mine:
            label = f"{a.threshold:g}%"
            if not a.ok:
                print(f"  {label:>4}: {a.status} ({a.reason})")
                continue

            shown = {}
            for bound in ("eta", "lower", "upper"):
                v = a.days_to(bound)
                shown[bound] = f"{v:.1f} d" if v is not None else f"beyond {days}"
            print(f"  {label:>4}: {shown['eta']} (earliest {shown['lower']}, latest {shown['upper']})")
    return 0


def cmd_storage(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    """The storage history as a table and a sparkline; --sample-now takes one sample first."""
    from regwatch.storage import StorageSampler, history
    from regwatch.storage.render import render, to_json
    from regwatch.timeargs import parse_time

    now = clock.now()
    since = parse_time(args.since, now)
    store, _ = open_store(args, config, create=bool(args.sample_now))
    try:
        if args.sample_now:
            if config.storage is None or not (config.storage.paths or config.storage.harbor):
                raise ConfigError("--sample-now needs storage.paths (or storage.harbor) in --config; see docs/configuration.md")
            res = StorageSampler(config.storage, store).sample(now)
            for p in res.problems:
                print(f"regwatch: storage: {p}", file=sys.stderr)
        hist = history(store, path=args.path, since=since)
    finally:
        store.close()
    if args.json:
        print(json.dumps(to_json(hist), sort_keys=True))
        return 0
    if not any(len(df) for df in hist.values()):
        where = f"path {args.path!r}" if args.path else "any path"
        print(f"no storage samples for {where} since {since:%Y-%m-%d %H:%M} UTC "
              "(configure storage.paths and run the service, or use --sample-now)")
        return 0
    print(render(hist))
    return 0


def cmd_metrics(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    """The catalog metrics computed from the store, for node-exporter's textfile collector
    (--textfile, written atomically) or on stdout (docs/metrics.md, "The textfile")."""
    from prometheus_client import generate_latest

    from regwatch.metrics.collector import snapshot_metrics, write_textfile
    from regwatch.timeargs import parse_time

    now = clock.now()
    since = parse_time(args.since, now) if args.since else None
    store, _ = open_store(args, config, create=False)
    try:
        registry = snapshot_metrics(store, now, since=since)
    finally:
        store.close()
    if args.textfile:
        write_textfile(registry, args.textfile)
    else:
        sys.stdout.write(generate_latest(registry).decode("utf-8"))
    return 0


def cmd_dashboard(args: argparse.Namespace, config: Config, clock: Clock) -> int:
    """Serve the Streamlit dashboard over the store that --config and --db choose (the
    process becomes Streamlit's; Ctrl-C stops it)."""
    from regwatch.dashboard import dashboard_command

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port!r} is not a port number; use 1-65535, e.g. --port 8501")
    db = None if _es_url(args, config) else _db_path(args, config)
    cmd = dashboard_command(args.config, db, args.port, args.host)
    where = f"embedded store at {db}" if db is not None else f"Elasticsearch at {_es_url(args, config)}"
    print(f"regwatch dashboard: http://{args.host}:{args.port}/ ({where}); stop with Ctrl-C", flush=True)
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


# -- parser ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="regwatch", description="Observability and audit analytics for container registries.")
    p.add_argument("--config", help="YAML config file (see docs/configuration.md)")
    sub = p.add_subparsers(dest="command", required=True)

    def store_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", help=f"embedded store directory (default: $REGWATCH_DB or {DEFAULT_DB})")
        sp.add_argument("--es", metavar="URL", help="use the Elasticsearch store at URL (credentials from the environment)")

    def range_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--since", help="start (inclusive): ISO-8601 or relative like 7d, 12h")
        sp.add_argument("--until", help="end (exclusive): ISO-8601 or relative")
        sp.add_argument("--repo", metavar="GLOB", help="repository glob, e.g. 'library/*'")

    s = sub.add_parser("ingest", help="parse log files into the store")
    store_opts(s)
    s.add_argument("--format", help="force a format (default: auto-detect per line); see `regwatch formats`")
    s.add_argument("--json", action="store_true", help="print one JSON object of counts")
    s.add_argument("--from-start", action="store_true", help="ignore the checkpoint and re-read files from the start")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("paths", nargs="+", help="files, directories, globs; .gz is read transparently")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("summary", help="pull/push/delete/auth counts and bytes, per repository")
    store_opts(s)
    range_opts(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_summary)

    a = sub.add_parser("audit", help="audit searches")
    asub = a.add_subparsers(dest="audit_command", required=True)
    d = asub.add_parser("deletes", help="who deleted what, when, from where, and whether it worked")
    store_opts(d)
    range_opts(d)
    d.add_argument("--user", help="only deletes by this user")
    d.add_argument("--format", default="table", help="table (default), json or csv")
    d.set_defaults(func=cmd_audit_deletes)
    an = asub.add_parser("anomalies", help="unusual hours per user and client IP, each with the features that set it apart")
    store_opts(an)
    an.add_argument("--since", help="start (inclusive): ISO-8601 or relative like 7d (default: 7d)")
    an.add_argument("--until", help="end (exclusive): ISO-8601 or relative (default: now)")
    an.add_argument("--threshold", type=float, default=None, help="forest score a flag needs (default 0.6; see docs/anomalies.md)")
    an.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    an.add_argument("--work-hours", default="07-20", metavar="START-END", help="working hours (default 07-20, Monday to Friday)")
    an.add_argument("--timezone", default="UTC", help="time zone of the working hours (default UTC)")
    an.add_argument("--lookback", default="7d", help="history before --since that says what each actor did before (default 7d)")
    an.add_argument("--format", default="table", help="table (default), json or csv")
    an.set_defaults(func=cmd_audit_anomalies)

    c = sub.add_parser("check", help="validate the config and check the store")
    store_opts(c)
    c.set_defaults(func=cmd_check)

    f = sub.add_parser("formats", help="list the log format names --format accepts")
    f.set_defaults(func=cmd_formats)

    dr = sub.add_parser("dropped", help="show lines that could not be used (kept for inspection)")
    store_opts(dr)
    dr.add_argument("--limit", type=int, default=50)
    dr.set_defaults(func=cmd_dropped)

    r = sub.add_parser("run", help="the service: follow the config's sources, receive webhooks, serve metrics (--once: ingest and summarize)")
    store_opts(r)
    r.add_argument("--once", action="store_true", help="ingest what is there now (PATHs, the sources' globs, or sample_logs/) and print the summary")
    r.add_argument("paths", nargs="*", help="with --once: files, directories, globs")
    r.set_defaults(func=cmd_run)

    st = sub.add_parser("status", help="the running service's health: sources, lag, drops, store (exit 1 when none runs)")
    store_opts(st)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    rp = sub.add_parser("report", help="write the daily capacity report (HTML and JSON) of a day")
    store_opts(rp)
    rp.add_argument("--date", help="the day, YYYY-MM-DD (default: yesterday in report.timezone)")
    rp.add_argument("--out", metavar="DIR", help="output directory (default: report.out, else ./regwatch-reports)")
    rp.add_argument("--timezone", help="the zone whose calendar day is reported (default: report.timezone, else UTC)")
    rp.set_defaults(func=cmd_report)

    fc = sub.add_parser("forecast", help="days until each storage path reaches 85%% and 100%%, with bounds")
    store_opts(fc)
    fc.add_argument("--path", help="only this storage path")
    fc.add_argument("--horizon", default="30d", help="how far ahead to look (default 30d)")
    fc.add_argument("--json", action="store_true")
    fc.set_defaults(func=cmd_forecast)

    sg = sub.add_parser("storage", help="the storage history of each path: a table and a sparkline")
    store_opts(sg)
    sg.add_argument("--since", default="7d", help="start: ISO-8601 or relative like 7d (default 7d)")
    sg.add_argument("--path", help="only this storage path")
    sg.add_argument("--json", action="store_true", help="every sample as JSON")
    sg.add_argument("--sample-now", action="store_true", help="take one sample of the config's storage.paths first")
    sg.set_defaults(func=cmd_storage)

    mt = sub.add_parser("metrics", help="the catalog metrics from the store, for node-exporter's textfile collector")
    store_opts(mt)
    mt.add_argument("--textfile", metavar="PATH", help="write them to PATH atomically (e.g. /var/lib/prometheus/node-exporter/regwatch.prom)")
    mt.add_argument("--since", help="count only events since then: ISO-8601 or relative like 1d (default: every stored event)")
    mt.set_defaults(func=cmd_metrics)

    db = sub.add_parser("dashboard", help="serve the operator dashboard (Streamlit) on localhost")
    db.add_argument("--db", help=f"embedded store directory (default: $REGWATCH_DB or {DEFAULT_DB})")
    db.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    db.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; put authentication in front before binding others, see docs/dashboard.md)")
    db.set_defaults(func=cmd_dashboard)
    return p


_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _use_system_allocator() -> None:
    """Arrow's default allocator keeps freed arenas; the system one returns memory, which
    keeps a long ingest's peak RSS flat. glibc gives each thread that allocates its own
    arena (the parse stage, the writer, DuckDB's and Arrow's threads), each keeping freed
    memory; two are enough for two stages and spare the peak 10-40 MB (5M lines)."""
    try:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    except Exception:  # noqa: BLE001 - an optimisation only
        pass
    if "MALLOC_ARENA_MAX" not in os.environ:
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 2)
        except (OSError, AttributeError):  # not glibc: nothing to tune
            pass


def main(argv: Sequence[str] | None = None, clock: Clock | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _use_system_allocator()
    try:
        config = load_config(args.config)
        return int(args.func(args, config, clock or SystemClock()))
    except RegwatchError as exc:
        print(f"regwatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("regwatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
