"""Configuration: YAML (pyyaml) → frozen typed models, every problem reported at once.

Example::

    store:
      kind: embedded            # or elasticsearch
      path: ./regwatch-data     # embedded only
      url: http://127.0.0.1:9200  # elasticsearch only; credentials come from the environment
      ca_file: /etc/ssl/es-ca.pem
      verify_tls: true
      index_prefix: regwatch
    harbor:
      host_tz: "+02:00"         # zone of the rsyslog prefix time (Docker host's local time)
    formats:
      - name: myproxy
        pattern: '%{IPORHOST:ip} %{WORD:verb} %{NOTSPACE:path} %{INT:code}'
        fields: {client_ip: ip, method: verb, uri: path, status: code}
        time_format: "%d/%b/%Y:%H:%M:%S %z"   # optional
        component: proxy
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import yaml

from regwatch.errors import ConfigError

DEFAULT_DB = "~/.local/share/regwatch/db"
_SECRET_KEYS = {"password", "api_key", "apikey", "token", "secret"}


@dataclass(frozen=True)
class StoreConfig:
    kind: str = "embedded"
    path: str | None = None
    url: str | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    index_prefix: str = "regwatch"
    username: str | None = None
    api_key_file: str | None = None  # secrets are read from files, never from the YAML
    password_file: str | None = None


@dataclass(frozen=True)
class FormatConfig:
    name: str
    pattern: str
    fields: tuple[tuple[str, str], ...] = ()
    time_format: str | None = None
    component: str = "custom"


@dataclass(frozen=True)
class SourceConfig:
    """One ``sources:`` entry of the service: globs to follow (docs/tailing.md)."""

    paths: tuple[str, ...]
    format: str = "auto"
    start_at: str = "beginning"  # where a file never seen before is first read: or "end"


@dataclass(frozen=True)
class WebhookConfig:
    """``webhooks:``: the notification receiver of the service (docs/webhooks.md)."""

    listen: str = "127.0.0.1:9480"
    secret_env: str | None = None  # the env var holding the shared Authorization value
    max_body: int = 1 << 20


@dataclass(frozen=True)
class MetricsConfig:
    """``metrics:``: the Prometheus endpoint of the service (docs/metrics.md)."""

    listen: str = "127.0.0.1:9481"  # host:port of /metrics; port 0 picks a free one


@dataclass(frozen=True)
class ServiceConfig:
    """``service:``: how the daemon runs (docs/configuration.md)."""

    state_dir: str | None = None  # checkpoint, status, quarantine; default: <db>/state
    poll_interval: float = 0.25  # seconds between two reads when nothing was new
    idle_flush: float = 1.0  # seconds after which a quiet source's held lines are made queryable
    max_buffered_rows: int = 200_000  # rows waiting for the store before reading pauses
    partial_timeout: float = 5.0  # seconds an unterminated last line is held
    dashboard: bool = False  # start the dashboard beside the service
    dashboard_port: int = 8501


@dataclass(frozen=True)
class ActionConfig:
    """One ``capacity.actions`` entry (docs/forecast.md, "Capacity actions").

    ``kind`` is ``webhook`` (POST a JSON payload to ``url``), ``command`` (run ``argv``
    without a shell, ``{path}``-style placeholders filled in), ``harbor_gc`` (start a
    garbage collection through Harbor's ``/api/v2.0/system/gc/schedule``) or
    ``retention_report`` (repositories and tags not pulled for ``unused_days``).
    Secrets are named by environment variable (``auth_env``), never written here.
    """

    kind: str
    name: str
    url: str | None = None
    argv: tuple[str, ...] = ()
    timeout: float = 10.0
    auth_env: str | None = None  # webhook: the Authorization value; harbor_gc: "user:password"
    delete_untagged: bool = True  # harbor_gc
    workers: int = 1  # harbor_gc
    unused_days: int = 90  # retention_report
    verify_tls: bool = True


@dataclass(frozen=True)
class CapacityConfig:
    """``capacity:``: thresholds, how soon a forecast crossing triggers, and the actions."""

    thresholds: tuple[float, ...] = (85.0, 100.0)  # percent of capacity
    within: float = 7 * 86400.0  # seconds: a crossing forecast sooner than this triggers
    bound: str = "lower"  # which crossing counts: "lower" (earliest plausible) or "eta"
    dry_run: bool = True
    cooldown: float = 86400.0  # seconds: a crossing again this soon after the end is the same episode
    paths: tuple[str, ...] = ()  # storage paths to act on; empty: every sampled path
    actions: tuple[ActionConfig, ...] = ()


@dataclass(frozen=True)
class EmailConfig:
    """``report.email``: SMTP delivery of the daily report (the password from ``password_env``)."""

    smtp_host: str
    to: tuple[str, ...]
    sender: str  # the YAML key is ``from``
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class ReportConfig:
    """``report:``: when the daily report is made, for which zone's day, where it goes."""

    at: str = "07:00"
    timezone: str = "UTC"
    out: str = "regwatch-reports"
    email: EmailConfig | None = None
    webhook: str | None = None
    webhook_auth_env: str | None = None
    top_repositories: int = 10


@dataclass(frozen=True)
class StoragePathConfig:
    """``storage.paths[i]``: a registry storage root; ``tree`` also walks it for the
    registry's own bytes (beside the filesystem's, from statvfs)."""

    path: str
    tree: bool = True


@dataclass(frozen=True)
class HarborStatsConfig:
    """``storage.harbor``: Harbor's statistics and quota API. The password is read from
    the environment variable ``password_env`` when sampling, never kept here."""

    url: str
    username: str
    password_env: str
    verify_tls: bool = True
    timeout: float = 10.0


@dataclass(frozen=True)
class StorageConfig:
    """``storage:``: what the sampling job (regwatch.storage.StorageSampler) measures."""

    interval: float = 300.0  # seconds between samples
    paths: tuple[StoragePathConfig, ...] = ()
    harbor: HarborStatsConfig | None = None


@dataclass(frozen=True)
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    harbor_host_tz: str | None = None
    formats: tuple[FormatConfig, ...] = ()
    sources: tuple[SourceConfig, ...] = ()
    webhooks: WebhookConfig | None = None
    service: ServiceConfig = field(default_factory=ServiceConfig)
    capacity: CapacityConfig | None = None
    report: ReportConfig | None = None
    storage: StorageConfig | None = None
    metrics: MetricsConfig | None = None


def parse_tz(spec: str) -> tzinfo:
    """``UTC``, ``+02:00``/``-0400`` or an IANA name. Raises ConfigError."""
    s = spec.strip()
    if s.upper() in ("UTC", "Z"):
        return timezone.utc
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", s)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(s)
    except Exception as exc:
        raise ConfigError(f"unknown time zone {spec!r}; use UTC, an offset like +02:00, or a name like Europe/Berlin") from exc


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read and validate a YAML config; raises ConfigError listing every problem."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(p)!r}: {exc.strerror}; pass an existing --config file") from exc
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"config {str(p)!r} is not valid YAML: {detail}") from exc
    return config_from_dict(doc, str(p))


def config_from_dict(doc: Any, where: str = "config") -> Config:
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: the top level must be a mapping, got {type(doc).__name__}")
    known = {"store", "harbor", "formats", "sources", "webhooks", "service", "capacity", "report", "storage", "metrics"}
    for k in doc:
        if k not in known:
            problems.append(f"unknown key {k!r} (allowed: {sorted(known)})")
    store = StoreConfig()
    s = doc.get("store") or {}
    if not isinstance(s, dict):
        problems.append("store must be a mapping")
        s = {}
    for k in s:
        if k.lower() in _SECRET_KEYS:
            problems.append(
                f"store.{k} holds a secret in plain text; put it in REGWATCH_ES_PASSWORD(_FILE) or REGWATCH_ES_API_KEY(_FILE) instead"
            )
        elif k not in {"kind", "path", "url", "ca_file", "verify_tls", "index_prefix", "username", "api_key_file", "password_file"}:
            problems.append(f"unknown key store.{k!r}")
    kind = s.get("kind", "embedded")
    if kind not in ("embedded", "elasticsearch"):
        problems.append(f"store.kind {kind!r} is not one of ['elasticsearch', 'embedded']")
    if kind == "elasticsearch" and not s.get("url") and not os.environ.get("REGWATCH_ES_URL"):
        problems.append("store.kind is elasticsearch but store.url is missing (or set REGWATCH_ES_URL)")
    verify = s.get("verify_tls", True)
    if not isinstance(verify, bool):
        problems.append(f"store.verify_tls must be true or false, got {verify!r}")
        verify = True
    store = StoreConfig(
        kind=str(kind),
        path=s.get("path"),
        url=s.get("url"),
        ca_file=s.get("ca_file"),
        verify_tls=verify,
        index_prefix=str(s.get("index_prefix", "regwatch")),
        username=s.get("username"),
        api_key_file=s.get("api_key_file"),
        password_file=s.get("password_file"),
    )
    h = doc.get("harbor") or {}
    host_tz = None
    if not isinstance(h, dict):
        problems.append("harbor must be a mapping")
    else:
        for k in h:
            if k != "host_tz":
                problems.append(f"unknown key harbor.{k!r} (allowed: ['host_tz'])")
        if "host_tz" in h:
            try:
                parse_tz(str(h["host_tz"]))
                host_tz = str(h["host_tz"])
            except ConfigError as exc:
                problems.append(str(exc))
    formats: list[FormatConfig] = []
    raw_formats = doc.get("formats") or []
    if not isinstance(raw_formats, list):
        problems.append("formats must be a list")
        raw_formats = []
    for i, f in enumerate(raw_formats):
        if not isinstance(f, dict) or "name" not in f or "pattern" not in f:
            problems.append(f"formats[{i}] needs at least 'name' and 'pattern'")
            continue
        allowed = {"name", "pattern", "fields", "time_format", "component"}
        for k in f:
            if k not in allowed:
                problems.append(f"unknown key formats[{i}].{k!s} (allowed: {sorted(allowed)})")
        fc = FormatConfig(
            name=str(f["name"]),
            pattern=str(f["pattern"]),
            fields=tuple(sorted((str(k), str(v)) for k, v in (f.get("fields") or {}).items())),
            time_format=f.get("time_format"),
            component=str(f.get("component", "custom")),
        )
        try:
            from regwatch.parsing.grok import GrokFormat

            GrokFormat(fc.name, fc.pattern, dict(fc.fields), fc.time_format, fc.component)
        except ConfigError as exc:
            problems.append(f"formats[{i}]: {exc}")
        formats.append(fc)
    sources = _sources(doc.get("sources"), problems, {f.name for f in formats})
    webhooks = _webhooks(doc.get("webhooks"), problems)
    metrics = _metrics(doc.get("metrics"), problems)
    service = _service(doc.get("service"), problems)
    capacity = _capacity(doc.get("capacity"), problems)
    report = _report(doc.get("report"), problems)
    storage = _storage(doc.get("storage"), problems)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return Config(
        store=store,
        harbor_host_tz=host_tz,
        formats=tuple(formats),
        sources=sources,
        webhooks=webhooks,
        service=service,
        capacity=capacity,
        report=report,
        storage=storage,
        metrics=metrics,
    )


def _unknown(section: str, raw: dict[str, Any], allowed: set[str], problems: list[str]) -> None:
    for k in raw:
        if k not in allowed:
            problems.append(f"unknown key {section}.{k!s} (allowed: {sorted(allowed)})")


def _number(section: str, raw: dict[str, Any], key: str, default: float, problems: list[str], *, minimum: float = 0.0) -> float:
    v = raw.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or v < minimum:
        problems.append(f"{section}.{key} must be a number >= {minimum:g}, got {v!r}")
        return default
    return float(v)


def _sources(raw: Any, problems: list[str], custom: set[str]) -> tuple[SourceConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append("sources must be a list of {paths: [glob, ...]} entries")
        return ()
    out: list[SourceConfig] = []
    from regwatch.formats import BUILTIN

    names = set(BUILTIN) | custom
    for i, s in enumerate(raw):
        where = f"sources[{i}]"
        if not isinstance(s, dict):
            problems.append(f"{where} must be a mapping with 'paths', got {type(s).__name__}")
            continue
        _unknown(where, s, {"paths", "format", "start_at"}, problems)
        paths = s.get("paths")
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p.strip() for p in paths):
            problems.append(f"{where}.paths must be a non-empty list of globs, got {paths!r}")
            continue
        fmt = str(s.get("format", "auto"))
        if fmt != "auto" and fmt not in names:
            problems.append(f"{where}.format {fmt!r} is not a known format; see `regwatch formats` (or use auto)")
        start_at = s.get("start_at", "beginning")
        if start_at not in ("beginning", "end"):
            problems.append(f"{where}.start_at must be 'beginning' or 'end', got {start_at!r}")
            start_at = "beginning"
        out.append(SourceConfig(paths=tuple(os.path.expanduser(p) for p in paths), format=fmt, start_at=str(start_at)))
    return tuple(out)


def _listen_ok(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    host, sep, port = value.rpartition(":")
    return bool(sep) and port.isdigit() and 0 <= int(port) <= 65535 and bool(host.strip("[]"))


def _metrics(raw: Any, problems: list[str]) -> MetricsConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("metrics must be a mapping, e.g. {listen: '127.0.0.1:9481'}")
        return None
    _unknown("metrics", raw, {"listen"}, problems)
    listen = raw.get("listen", "127.0.0.1:9481")
    if not _listen_ok(listen):
        problems.append(f"metrics.listen {listen!r} is not host:port (e.g. '127.0.0.1:9481'; port 0 picks a free one)")
        listen = "127.0.0.1:9481"
    return MetricsConfig(listen=str(listen))


def _webhooks(raw: Any, problems: list[str]) -> WebhookConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("webhooks must be a mapping, e.g. {listen: '127.0.0.1:9480'}")
        return None
    _unknown("webhooks", raw, {"listen", "secret_env", "max_body"}, problems)
    listen = raw.get("listen", "127.0.0.1:9480")
    if not _listen_ok(listen):
        problems.append(f"webhooks.listen {listen!r} is not host:port (e.g. '127.0.0.1:9480')")
        listen = "127.0.0.1:9480"
    secret_env = raw.get("secret_env")
    if secret_env is not None and not (isinstance(secret_env, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", secret_env)):
        problems.append(f"webhooks.secret_env must name an environment variable, got {secret_env!r}")
        secret_env = None
    max_body = int(_number("webhooks", raw, "max_body", 1 << 20, problems, minimum=1024))
    return WebhookConfig(listen=str(listen), secret_env=secret_env, max_body=max_body)


def _service(raw: Any, problems: list[str]) -> ServiceConfig:
    if raw is None:
        return ServiceConfig()
    if not isinstance(raw, dict):
        problems.append("service must be a mapping")
        return ServiceConfig()
    allowed = {"state_dir", "poll_interval", "idle_flush", "max_buffered_rows", "partial_timeout", "dashboard", "dashboard_port"}
    _unknown("service", raw, allowed, problems)
    state_dir = raw.get("state_dir")
    if state_dir is not None and not isinstance(state_dir, str):
        problems.append(f"service.state_dir must be a path, got {state_dir!r}")
        state_dir = None
    dashboard = raw.get("dashboard", False)
    if not isinstance(dashboard, bool):
        problems.append(f"service.dashboard must be true or false, got {dashboard!r}")
        dashboard = False
    port = raw.get("dashboard_port", 8501)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        problems.append(f"service.dashboard_port must be a port number, got {port!r}")
        port = 8501
    return ServiceConfig(
        state_dir=os.path.expanduser(state_dir) if state_dir else None,
        poll_interval=_number("service", raw, "poll_interval", 0.25, problems, minimum=0.01),
        idle_flush=_number("service", raw, "idle_flush", 1.0, problems, minimum=0.0),
        max_buffered_rows=int(_number("service", raw, "max_buffered_rows", 200_000, problems, minimum=1000)),
        partial_timeout=_number("service", raw, "partial_timeout", 5.0, problems, minimum=0.0),
        dashboard=dashboard,
        dashboard_port=port,
    )


#: placeholders a ``command`` action's arguments may use (regwatch.capacity fills them in)
TEMPLATE_FIELDS = frozenset(
    {"path", "threshold", "threshold_bytes", "eta", "lower", "upper", "days", "used_bytes", "capacity_bytes", "episode"}
)
ACTION_KINDS = ("command", "harbor_gc", "retention_report", "webhook")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _duration(section: str, raw: dict[str, Any], key: str, default: float, problems: list[str]) -> float:
    if key not in raw:
        return default
    from regwatch.errors import BadTime
    from regwatch.timeargs import parse_duration

    v = raw[key]
    try:
        seconds = parse_duration(str(v)).total_seconds()
    except BadTime:
        seconds = -1.0
    if isinstance(v, bool) or seconds <= 0:
        problems.append(f"{section}.{key} must be a span like 24h or 7d, got {v!r}")
        return default
    return seconds


def _env_name(section: str, raw: dict[str, Any], key: str, problems: list[str]) -> str | None:
    v = raw.get(key)
    if v is None:
        return None
    if not (isinstance(v, str) and _ENV_NAME.fullmatch(v)):
        problems.append(f"{section}.{key} must name an environment variable (the secret stays out of the file), got {v!r}")
        return None
    return v


def _bool(section: str, raw: dict[str, Any], key: str, default: bool, problems: list[str]) -> bool:
    v = raw.get(key, default)
    if not isinstance(v, bool):
        problems.append(f"{section}.{key} must be true or false, got {v!r}")
        return default
    return v


def _url(section: str, raw: dict[str, Any], key: str, problems: list[str], *, required: bool) -> str | None:
    v = raw.get(key)
    if v is None:
        if required:
            problems.append(f"{section}.{key} is required (an http:// or https:// URL)")
        return None
    if not (isinstance(v, str) and re.match(r"https?://[^/\s]+", v)):
        problems.append(f"{section}.{key} must be an http:// or https:// URL, got {v!r}")
        return None
    return v


def _template_problems(where: str, arg: str) -> list[str]:
    import string

    try:
        names = [f for _, f, _, _ in string.Formatter().parse(arg) if f is not None]
    except ValueError as exc:
        return [f"{where} {arg!r} is not a valid template ({exc}); write a literal brace as {{{{ or }}}}"]
    bad = [n for n in names if n not in TEMPLATE_FIELDS]
    if bad:
        return [f"{where} uses unknown placeholder(s) {bad!r} (allowed: {sorted(TEMPLATE_FIELDS)})"]
    return []


def _action(where: str, a: Any, problems: list[str], seen: set[str]) -> ActionConfig | None:
    if not isinstance(a, dict):
        problems.append(f"{where} must be a mapping with 'kind', got {type(a).__name__}")
        return None
    kind = a.get("kind")
    if kind not in ACTION_KINDS:
        problems.append(f"{where}.kind {kind!r} is not one of {list(ACTION_KINDS)}")
        return None
    allowed = {"kind", "name", "timeout"} | {
        "webhook": {"url", "auth_env", "verify_tls"},
        "command": {"argv"},
        "harbor_gc": {"url", "auth_env", "delete_untagged", "workers", "verify_tls"},
        "retention_report": {"unused_days"},
    }[kind]
    for k in a:
        if k.lower() in _SECRET_KEYS:
            problems.append(f"{where}.{k} holds a secret in plain text; name an environment variable with auth_env instead")
    _unknown(where, {k: v for k, v in a.items() if k.lower() not in _SECRET_KEYS}, allowed, problems)
    name = str(a.get("name") or kind)
    if name in seen:
        problems.append(f"{where}.name {name!r} is used twice; give each action its own name (it keys the cooldown)")
    seen.add(name)
    argv: tuple[str, ...] = ()
    if kind == "command":
        raw_argv = a.get("argv")
        if not isinstance(raw_argv, list) or not raw_argv or not all(isinstance(x, str) for x in raw_argv):
            problems.append(f"{where}.argv must be a non-empty list of strings (run without a shell), got {raw_argv!r}")
        else:
            for j, arg in enumerate(raw_argv):
                problems.extend(_template_problems(f"{where}.argv[{j}]", arg))
            argv = tuple(raw_argv)
    url = _url(where, a, "url", problems, required=kind in ("webhook", "harbor_gc"))
    workers = a.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 5:
        problems.append(f"{where}.workers must be an integer from 1 to 5 (Harbor's limit), got {workers!r}")
        workers = 1
    unused = a.get("unused_days", 90)
    if isinstance(unused, bool) or not isinstance(unused, int) or unused < 1:
        problems.append(f"{where}.unused_days must be a whole number of days >= 1, got {unused!r}")
        unused = 90
    return ActionConfig(
        kind=str(kind),
        name=name,
        url=url,
        argv=argv,
        timeout=_number(where, a, "timeout", 10.0, problems, minimum=0.1),
        auth_env=_env_name(where, a, "auth_env", problems),
        delete_untagged=_bool(where, a, "delete_untagged", True, problems),
        workers=workers,
        unused_days=unused,
        verify_tls=_bool(where, a, "verify_tls", True, problems),
    )


def _capacity(raw: Any, problems: list[str]) -> CapacityConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("capacity must be a mapping, e.g. {thresholds: [85, 100], within: 7d, actions: [...]}")
        return None
    allowed = {"thresholds", "within", "bound", "dry_run", "cooldown", "paths", "actions"}
    _unknown("capacity", raw, allowed, problems)
    thresholds = raw.get("thresholds", [85, 100])
    if (
        not isinstance(thresholds, list)
        or not thresholds
        or not all(isinstance(t, int | float) and not isinstance(t, bool) and 0 < t <= 100 for t in thresholds)
    ):
        problems.append(f"capacity.thresholds must be a list of percentages in (0, 100], got {thresholds!r}")
        thresholds = [85, 100]
    bound = raw.get("bound", "lower")
    if bound not in ("lower", "eta"):
        problems.append(f"capacity.bound must be 'lower' (the earliest plausible crossing) or 'eta', got {bound!r}")
        bound = "lower"
    paths = raw.get("paths", [])
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        problems.append(f"capacity.paths must be a list of storage paths, got {paths!r}")
        paths = []
    raw_actions = raw.get("actions", [])
    if not isinstance(raw_actions, list):
        problems.append("capacity.actions must be a list of {kind: webhook|command|harbor_gc|retention_report, ...}")
        raw_actions = []
    seen: set[str] = set()
    actions = [_action(f"capacity.actions[{i}]", a, problems, seen) for i, a in enumerate(raw_actions)]
    return CapacityConfig(
        thresholds=tuple(sorted({float(t) for t in thresholds})),
        within=_duration("capacity", raw, "within", 7 * 86400.0, problems),
        bound=str(bound),
        dry_run=_bool("capacity", raw, "dry_run", True, problems),
        cooldown=_duration("capacity", raw, "cooldown", 86400.0, problems),
        paths=tuple(paths),
        actions=tuple(a for a in actions if a is not None),
    )


def _email(raw: Any, problems: list[str]) -> EmailConfig | None:
    if raw is None:
        return None
    where = "report.email"
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a mapping with smtp_host, from and to")
        return None
    for k in raw:
        if k.lower() in _SECRET_KEYS:
            problems.append(f"{where}.{k} holds a secret in plain text; name an environment variable with password_env instead")
    _unknown(where, {k: v for k, v in raw.items() if k.lower() not in _SECRET_KEYS},
             {"smtp_host", "port", "from", "to", "starttls", "username", "password_env", "timeout"}, problems)
    host = raw.get("smtp_host")
    if not isinstance(host, str) or not host.strip():
        problems.append(f"{where}.smtp_host is required, got {host!r}")
        host = ""
    to = raw.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(x, str) and "@" in x for x in to):
        problems.append(f"{where}.to must be one address or a list of addresses, got {to!r}")
        to = []
    sender = raw.get("from")
    if not isinstance(sender, str) or "@" not in sender:
        problems.append(f"{where}.from must be an e-mail address, got {sender!r}")
        sender = ""
    port = raw.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        problems.append(f"{where}.port must be a port number, got {port!r}")
        port = 25
    user = raw.get("username")
    if user is not None and not isinstance(user, str):
        problems.append(f"{where}.username must be a string, got {user!r}")
        user = None
    password_env = _env_name(where, raw, "password_env", problems)
    if password_env and not user:
        problems.append(f"{where}.password_env is set but username is not; set both or neither")
    return EmailConfig(
        smtp_host=str(host),
        to=tuple(to),
        sender=str(sender),
        port=port,
        starttls=_bool(where, raw, "starttls", False, problems),
        username=user,
        password_env=password_env,
        timeout=_number(where, raw, "timeout", 30.0, problems, minimum=0.1),
    )


def _report(raw: Any, problems: list[str]) -> ReportConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("report must be a mapping, e.g. {at: '07:00', timezone: Europe/Berlin, out: ./reports}")
        return None
    _unknown("report", raw, {"at", "timezone", "out", "email", "webhook", "webhook_auth_env", "top_repositories"}, problems)
    at = raw.get("at", "07:00")
    if isinstance(at, int) and not isinstance(at, bool) and 0 <= at < 24 * 60:
        at = f"{at // 60:02d}:{at % 60:02d}"  # YAML 1.1 reads an unquoted 07:00 as 420 (base 60)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(at)) if isinstance(at, str) else None
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        problems.append(f"report.at must be a time of day HH:MM (quote it in YAML: '07:00'), got {at!r}")
        at = "07:00"
    tz = str(raw.get("timezone", "UTC"))
    try:
        parse_tz(tz)
    except ConfigError as exc:
        problems.append(f"report.timezone: {exc}")
        tz = "UTC"
    out = raw.get("out", "regwatch-reports")
    if not isinstance(out, str) or not out.strip():
        problems.append(f"report.out must be a directory path, got {out!r}")
        out = "regwatch-reports"
    top = raw.get("top_repositories", 10)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 1000:
        problems.append(f"report.top_repositories must be an integer from 1 to 1000, got {top!r}")
        top = 10
    return ReportConfig(
        at=str(at),
        timezone=tz,
        out=os.path.expanduser(out),
        email=_email(raw.get("email"), problems),
        webhook=_url("report", raw, "webhook", problems, required=False),
        webhook_auth_env=_env_name("report", raw, "webhook_auth_env", problems),
        top_repositories=top,
    )


def _storage(raw: Any, problems: list[str]) -> StorageConfig | None:
    """``storage:`` (regwatch.storage); every problem is collected with its key path."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("storage must be a mapping, e.g. {interval: 5m, paths: [{path: /var/lib/registry}]}")
        return None
    _unknown("storage", raw, {"interval", "paths", "harbor"}, problems)
    interval = _duration("storage", raw, "interval", 300.0, problems)
    paths: list[StoragePathConfig] = []
    items = raw.get("paths", [])
    if not isinstance(items, list):
        problems.append(f"storage.paths must be a list of {{path: DIR, tree: true}} items, got {items!r}")
        items = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"storage.paths[{i}]"
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict):
            problems.append(f"{where} must be a mapping like {{path: /var/lib/registry}}, got {item!r}")
            continue
        _unknown(where, item, {"path", "tree"}, problems)
        path = item.get("path")
        if not isinstance(path, str) or not path.strip():
            problems.append(f"{where}.path must be a directory path, got {path!r}")
            continue
        # a relative path is taken from the working directory the service starts in
        norm = os.path.abspath(os.path.expanduser(path))
        if norm in seen:
            problems.append(f"{where}.path {path!r} is listed twice")
            continue
        seen.add(norm)
        paths.append(StoragePathConfig(norm, _bool(where, item, "tree", True, problems)))
    harbor = None
    h = raw.get("harbor")
    if h is not None:
        if not isinstance(h, dict):
            problems.append("storage.harbor must be a mapping like {url: https://harbor.example.com, username: admin, password_env: HARBOR_PASSWORD}")
        else:
            _unknown("storage.harbor", {k: v for k, v in h.items() if k.lower() not in _SECRET_KEYS},
                     {"url", "username", "password_env", "verify_tls", "timeout"}, problems)
            for k in h:
                if k.lower() in _SECRET_KEYS:
                    problems.append(f"storage.harbor.{k} must not be in the file: name the variable holding it with password_env")
            url = _url("storage.harbor", h, "url", problems, required=True)
            user = h.get("username")
            if not isinstance(user, str) or not user:
                problems.append(f"storage.harbor.username is required (a Harbor user that may read quotas), got {user!r}")
            env = _env_name("storage.harbor", h, "password_env", problems)
            if env is None and "password_env" not in h:
                problems.append("storage.harbor.password_env is required (the environment variable holding the password)")
            verify = _bool("storage.harbor", h, "verify_tls", True, problems)
            timeout = _number("storage.harbor", h, "timeout", 10.0, problems, minimum=0.1)
            if url and isinstance(user, str) and user and env:
                harbor = HarborStatsConfig(url.rstrip("/"), user, env, verify, timeout)
    return StorageConfig(interval=interval, paths=tuple(paths), harbor=harbor)
