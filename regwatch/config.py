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
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    harbor_host_tz: str | None = None
    formats: tuple[FormatConfig, ...] = ()


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
    known = {"store", "harbor", "formats"}
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
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return Config(store=store, harbor_host_tz=host_tz, formats=tuple(formats))
