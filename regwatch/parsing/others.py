"""Lines of the programs around a registry that count no request, told apart by content.

Every container of a Harbor install writes to stdout, and a collector reading a shared
journald export or a support bundle sees all of them. These lines are known noise,
counted by :class:`regwatch.events.NoiseKind`, not unparsable input. One kind is worth
an operator's attention and becomes an event: Go's ``http: TLS handshake error from
<ip>:<port>: <why>`` (clients speaking plain HTTP to a TLS port, bad certificates,
scanners). The registry writes it through Go's standard logger, not logrus.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from regwatch.events import (
    Action,
    AuthClass,
    Dropped,
    Event,
    NoiseKind,
    Outcome,
    RawLine,
    Tally,
    event_id,
)
from regwatch.parsing.base import new_event, noise
from regwatch.parsing.timeparse import parse_rfc3339
from regwatch.redact import redact

# Go's log package: "2006/01/02 15:04:05[.000000] message" (the container's local time: UTC)
_GOLOG = re.compile(r"^(?P<ts>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d{1,9})?) (?P<msg>.*)\Z", re.DOTALL)
# the same through a logger with a prefix (``log.New(w, "redis: ", log.LstdFlags)``: go-redis
# inside core and jobservice, "redis: 2021/02/09 03:02:04 sentinel.go:329: ...")
_GOLOG_PREFIXED = re.compile(r"^[a-z][\w.\-]{0,30}: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d{1,9})? ")
_TLS = re.compile(
    r"http: TLS handshake error from (?P<ip>\[[^\]]+\]|[^\s:]+):(?P<port>\d+): ?(?P<why>.*)\Z",
    re.DOTALL,
)
_NGINX_ERROR = re.compile(
    r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?:debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: "
)
_NGINX_START = re.compile(
    r"^(?:/docker-entrypoint\.sh: |/docker-entrypoint\.d/|\d\d-[\w-]+\.sh: |nginx: \[)"
)
# PostgreSQL: "2024-05-01 10:11:12.123 UTC [1] LOG:  ..." (log_line_prefix '%m [%p] ')
_POSTGRES = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? ?(?:[A-Z]{2,5}|[+-]\d\d(?::?\d\d)?)? \[\d+\] "
    r"(?:[\w@\[\]. -]*? )?(?:LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DETAIL|HINT|STATEMENT|"
    r"CONTEXT|DEBUG\d?|LOCATION):"
)
_POSTGRES_PLAIN = re.compile(
    r"^(?:(?:LOG|ERROR|FATAL|WARNING|DETAIL|HINT|STATEMENT):  |(?:postgres|postmaster|pg_ctl): |PostgreSQL (?:init process|Database directory)|"
    r"The files belonging to this database system|initdb: |waiting for server to |server (?:started|stopped)|"
    r"done\Z|CREATE DATABASE\Z|ALTER ROLE\Z|/usr/local/bin/docker-entrypoint\.sh: )"
)
# Redis 3+: "1:M 01 May 2024 10:11:12.123 * Ready to accept connections"; 2.x "[1] 01 May ..."
_REDIS = re.compile(
    r"^(?:\d+:[XCMS]|\[\d+\]) \d\d? [A-Z][a-z]{2}(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d+)? [.\-*#] "
)
_REDIS_BANNER = re.compile(r"^(?:\s*_\._\s*$|.*Redis (?:is starting|version=)|\s*(?:_\.-``|`-\._|\|    |`-\.__))")
_RSYSLOG = re.compile(r"^(?:rsyslogd(?:\[\d+\])?: |\S*logrotate\b|crond\[\d+\]: )")
_TRIVY = re.compile(r'^\{"level":"[a-z]+","msg":')
# trivy's own CLI output (zap console): "2022-11-07T05:26:33.923Z\tINFO\tmessage"
_ZAP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)\t[A-Z]+\t")
# Bitnami images' entrypoints: "postgresql 07:51:50.50 INFO  ==> ...", " 10:48:37.87 Welcome ..."
_BITNAMI = re.compile(r"^(?:[a-z][\w-]* )?\s?\d\d:\d\d:\d\d\.\d\d(?: |\Z)")
# every Harbor image's entrypoint (install_cert.sh) before the component starts, and the
# shell tools' complaints it prints ("find: '/etc/harbor/ssl': No such file or directory",
# busybox's unquoted "ls: /harbor_cust_cert: No such file or directory")
_HARBOR_ENTRY = re.compile(
    r"^(?:Appending internal tls trust CA to ca-bundle|Internal tls trust CA |"
    r"Appending trust CA|Adding trust CA|/harbor/install_cert\.sh|/home/\w+/install_cert\.sh|"
    r"(?:find|ls|cp|cat|mv|rm|mkdir|chmod|chown|ln|stat|update-ca-certificates): '?/[^:']*'?: "
    r"(?:No such file or directory|Permission denied|Not a directory|File exists)\s*\Z|"
    r"\s*/\S+ Appended\b|(?:Internal tls trust )?CA appending is Done)"
)
# a Go command line's (cobra's) usage text, printed after a bad invocation or config (the
# registry's "configuration error: ...", then "Usage:", its commands and flags)
_USAGE = re.compile(
    r"^(?:configuration error: |Usage:\s*\Z|Flags:\s*\Z|Global Flags:\s*\Z|Available Commands:\s*\Z|"
    r"Aliases:\s*\Z|Examples:\s*\Z|Use \"[\w\- ]+ \[command\] --help\"|"
    r"\s+-\w, --[\w\-]+(?:=\S*)?[: ] |\s+--[\w\-]+(?:=\S*)?[: ] |\s+[\w\-]+(?: \S+)* \[flags\]\s*\Z)"
)
# another program's JSON log record (clair: {"Event":...,"Level":"fatal",...}; zap, bunyan)
_JSON_LEVELED = re.compile(r'^\{.*"(?:level|Level|severity|lvl|loglevel)"\s*:\s*"?[A-Za-z]')
# registry garbage-collect results that name no blob (older forms, and its failure)
_GC_OUTPUT = re.compile(
    r"^(?:\d+ blobs marked, \d+ blobs (?:and \d+ manifests )?eligible for deletion|"
    r"failed to garbage collect: )"
)
STACK = re.compile(
    r"^(?:\t| +(?:/|[\w\-]+(?:\.[\w\-]+)+/)[\w.\-/@]+\.go:\d+(?: \+0x[0-9a-f]+)?\s*\Z|    at |goroutine \d+ \[|panic(?:: |\()|created by |\[signal |exit status \d|"
    r"\[recovered\]|runtime/debug\.Stack|"
    # Harbor's errors package prints its stack one "file:line, function" per line
    r"/[\w.\-/@]+\.go:\d+, [\w.\-/@()*\[\]]+\s*\Z|"
    # a function line: "pkg/path.(*T).Method(args)", "main.main()"; written so that no
    # line costs more than linear time (a split at every dot was quadratic)
    r"(?=[\w.\-/\[\]]*\.)[\w.\-/\[\]]+\(.*\)(?: \+0x[0-9a-f]+)?\s*\Z)"
)


# another program's leveled line, as a node's container logs hold beside the registry's
# (calico "2019-08-21 07:24:33.260 [INFO][41] ipsets.go 356: ...", "2024-05-01 10:11:12,345
# WARN ...", klog "I0821 07:24:33.260123      41 file.go:356] ..."); tried after every form
# of the registry and Harbor, so none of theirs ends here
_LEVEL_TIME = r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? +"
_LEVEL_WORD = r"(?:INFO|WARN(?:ING)?|ERROR|ERRO|DEBUG|DEBU|FATAL|TRACE|NOTICE|CRIT(?:ICAL)?)\b"
_LEVELED = re.compile(_LEVEL_TIME + r"\[?" + _LEVEL_WORD)
# the same with the level bare (zap's console encoder with its tabs turned to spaces); the
# Harbor logger always brackets its level
_LEVELED_BARE = re.compile(_LEVEL_TIME + _LEVEL_WORD)
# go-kit's and the Prometheus ecosystem's logfmt: "level=error ts=2020-05-25T07:43:23.053Z
# caller=file.go:23 msg=..." (or ts first); a community exporter beside Harbor
_LOGFMT = re.compile(
    r"^(?:level=[a-z]+ (?:ts|t|time)=\S+ |(?:ts|t)=\S+ level=[a-z]+ )(?:caller=\S+ )?"
)
# MySQL and MariaDB error log (Harbor 1.x's database and migrator): "2018-01-07 19:59:18
# 139852769384384 [Note] InnoDB: ...", MySQL 5.7 "2018-01-07T19:59:18.123456Z 0 [Note] ..."
_MYSQL = re.compile(
    r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)? +\d+ "
    r"\[(?:Note|Warning|ERROR|System|Info)\] "
)
_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.\-]+:\d+\] ")


# a log shipper beside the registry (fluent-bit): "[2018/10/31 19:24:43] [ info] [engine] ..."
_FLUENT = re.compile(r"^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] \[ ?(?:trace|debug|info|warn|error)\] ")


# a quoted HTTP request anywhere in a line: such a line is a request's record, never the
# tail of another record's message
REQUEST_IN_LINE = re.compile(r'"(?:GET|HEAD|PUT|POST|PATCH|DELETE|OPTIONS) [^"]* HTTP/\d')


def _json_object(text: str) -> bool:
    """A whole JSON object (a cut or broken record stays unrecognized)."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def known(text: str) -> bool:
    """Whether ``text`` is one of the timed forms of this module (cheap)."""
    return bool(
        _ZAP.match(text) or _GOLOG.match(text) or _NGINX_ERROR.match(text) or _POSTGRES.match(text)
        or _LEVELED_BARE.match(text) or _MYSQL.match(text)
    )


def tls_message(msg: str) -> re.Match[str] | None:
    return _TLS.search(msg) if "TLS handshake error" in msg else None


def tls_event(
    line: RawLine, m: re.Match[str], ts: datetime, *, source: str, component: str, host: str | None
) -> Event:
    """A TLS handshake error as an event (client address, reason)."""
    ip = m.group("ip").strip("[]")
    return new_event(
        id=event_id(line.fingerprint, line.offset),
        timestamp=ts,
        source=source,
        component=component,
        action=Action.TLS_ERROR.value,
        outcome=Outcome.FAILURE.value,
        tally=Tally.TLS_ERROR.value,
        auth=AuthClass.NONE.value,
        client_ip=ip,
        error_code="tls handshake error",
        level="error",
        message=("http: TLS handshake error: " + m.group("why").strip())[:300],
        host=host,
        raw=redact(line.text),
        log_file=line.path,
        log_offset=line.offset,
    )


def classify(
    text: str,
    line: RawLine,
    *,
    fallback_ts: datetime | None,
    source: str,
    component: str | None,
    host: str | None,
) -> Event | Dropped | None:
    """An event or a noise drop for a line of a program around the registry, or None when
    ``text`` is none of the forms known here."""
    if not text:
        return None
    c0 = text[0]
    if c0.isdigit():
        if _NGINX_ERROR.match(text):
            return noise(line, NoiseKind.NGINX_ERROR.value, "nginx error log")
        gm = _GOLOG.match(text)
        if gm is not None:
            tm = tls_message(gm.group("msg"))
            if tm is not None:
                ts = parse_rfc3339(gm.group("ts").replace("/", "-").replace(" ", "T") + "Z") or fallback_ts
                if ts is not None:
                    return tls_event(line, tm, ts, source=source, component=component or "registry", host=host)
            return noise(line, NoiseKind.GO_LOG.value, "go log")
        if _POSTGRES.match(text):
            return noise(line, NoiseKind.DATABASE.value, "postgresql")
        if _MYSQL.match(text):
            return noise(line, NoiseKind.DATABASE.value, "mysql")
        if _REDIS.match(text):
            return noise(line, NoiseKind.REDIS.value, "redis")
        if _NGINX_START.match(text):
            return noise(line, NoiseKind.NGINX_ERROR.value, "nginx start")
        if _ZAP.match(text):
            return noise(line, NoiseKind.SCANNER.value, "trivy")
        if _BITNAMI.match(text):
            return noise(line, NoiseKind.OTHER.value, "entrypoint")
        if _GC_OUTPUT.match(text):
            return noise(line, NoiseKind.JOB_LOG.value, "garbage-collect")
        if _LEVELED.match(text):
            return noise(line, NoiseKind.OTHER_PROGRAM.value, "another program's leveled line")
        return None
    if c0.islower() and _GOLOG_PREFIXED.match(text):
        return noise(line, NoiseKind.GO_LOG.value, "go log with a prefix")
    if c0 in "lt" and _LOGFMT.match(text):
        return noise(line, NoiseKind.OTHER_PROGRAM.value, "logfmt line of another program")
    if c0 in "IWEF" and _KLOG.match(text):
        return noise(line, NoiseKind.OTHER_PROGRAM.value, "klog line of another program")
    if c0 == "{" and _JSON_LEVELED.match(text) and _json_object(text):
        return noise(line, NoiseKind.OTHER_PROGRAM.value, "another program's JSON record")
    if c0 == "[":
        if _REDIS.match(text):
            return noise(line, NoiseKind.REDIS.value, "redis")
        if _FLUENT.match(text):
            return noise(line, NoiseKind.LOG_COLLECTOR.value, "fluent-bit")
    tm = tls_message(text)
    if tm is not None and fallback_ts is not None:
        return tls_event(line, tm, fallback_ts, source=source, component=component or "registry", host=host)
    if STACK.match(text):
        return noise(line, NoiseKind.STACK_TRACE.value, "stack trace")
    if _NGINX_START.match(text):
        return noise(line, NoiseKind.NGINX_ERROR.value, "nginx start")
    if _POSTGRES_PLAIN.match(text):
        return noise(line, NoiseKind.DATABASE.value, "postgresql")
    if _REDIS_BANNER.match(text):
        return noise(line, NoiseKind.REDIS.value, "redis")
    if _HARBOR_ENTRY.match(text) or _BITNAMI.match(text):
        return noise(line, NoiseKind.OTHER.value, "entrypoint")
    if _GC_OUTPUT.match(text):
        return noise(line, NoiseKind.JOB_LOG.value, "garbage-collect")
    if _RSYSLOG.match(text):
        return noise(line, NoiseKind.LOG_COLLECTOR.value, "rsyslog")
    if _USAGE.match(text):
        return noise(line, NoiseKind.OTHER.value, "usage text")
    if _TRIVY.match(text):
        return noise(line, NoiseKind.SCANNER.value, "scanner")
    return None
