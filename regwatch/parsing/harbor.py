"""Harbor's component logs as its rsyslog container writes them (domain.md §3).

A line is ``Mmm dd HH:MM:SS <host> <tag>[<pid>]: <body>``. The tag names the component
and decides how the body is read:

========================  ===========================================================
tag                       body
========================  ===========================================================
registry                  Distribution formats, delegated to
                          :func:`regwatch.parsing.distribution.parse_body`
proxy                     nginx ``timed_combined``; no time of its own
core (1.x: ui)            Harbor logger, or beego access lines (ANSI colours)
jobservice, registryctl   Harbor logger; GC and tag-retention job output
audit                     Harbor logger line with ``operator``/``resourceType``/``time``
postgresql/db, redis,     nothing countable: dropped as ``noise``
portal, log, ...
========================  ===========================================================

Harbor logger: ``2024-01-01T00:00:00Z [LEVEL] [/path/file.go:NN][k="v" ...]: message``,
location and field block optional; keys are sorted and may contain spaces (``client
IP``, ``user agent``); values are quoted and not escaped.

rsyslog specials handled here: ``#ooo`` octal escapes of control characters,
``message repeated N times: [ <body>]`` (one Event with ``repeat=N``; the first
occurrence was logged on its own line before), one record per physical line (stack
traces, multi-line messages and tables arrive as separate records).

**Which record counts a request** (``tally``/``auth``; domain.md §2 "count each request
once"). Harbor's nginx (tag ``proxy``) is the front door: every client request passes it
exactly once. The registry component behind it is not a complete record in Harbor:

* Harbor 2.x core answers many registry API requests itself and never forwards them:
  ``DELETE /v2/<name>/manifests/<digest>`` ("just delete the artifact from database",
  ``src/server/registry/manifest.go``), ``/v2/_catalog``, ``tags/list``, the ``GET /v2/``
  challenge and every request its middlewares reject (401/403/404/412: auth, quota,
  immutability, content trust, vulnerability policy);
* the registry also logs Harbor's own traffic: GC deleting manifests through the v2 API
  (user ``harbor_registry_user``, UA ``harbor-registry-client``), replication, core's
  internal lookups; manifest GETs by tag reach it rewritten to the digest;
* in Harbor 1.x nginx sent ``/v2`` straight to the registry, so both saw the same
  requests.

So by default (``count_from="proxy"``) the proxy record carries ``tally`` and the
challenge/anonymous-denial ``auth`` class, and registry-component records are kept for
enrichment with ``tally``/``auth`` ``none``. ``count_from="registry"`` restores the
opposite rule (registry counts, proxy is attribution only).

Authentication failures count from core's ``failed to authenticate ...`` and
``Error occurred in UserLogin`` lines (they name the user; 2.5+ also the client IP). The
proxy's ``GET /service/token?account=<u>`` 401 for the same attempt keeps ``auth``
``none`` so the attempt is counted once. Beego access lines (core's view of requests the
proxy already logged), audit records, GC and retention records never count requests.

Times: the body's own time wins (tz-aware, with a year). Otherwise the prefix time is
used; it has no year and is the Docker host's local time: pass ``host_tz`` and, when the
files do not say, ``default_year``. The year then follows the data: a body time sets it,
and a month going from Dec to Jan moves it forward.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

from regwatch.clock import Clock
from regwatch.errors import ConfigError
from regwatch.events import (
    Action,
    AuthClass,
    Dropped,
    DropReason,
    Event,
    NoiseKind,
    Outcome,
    RawLine,
    Tally,
    event_id,
)
from regwatch.parsing import others
from regwatch.parsing.base import drop, new_event, noise, replace_event, with_text
from regwatch.parsing.harbor_audit import audit_event, parse_audit_time
from regwatch.parsing.registry_api import auth_class_of, classify, outcome_of, split_uri, tally_of
from regwatch.parsing.timeparse import go_duration_ms, parse_clf, parse_rfc3339

SOURCE = "harbor"
CountFrom = Literal["proxy", "registry"]

# syslog tag -> component
_TAGS: dict[str, str] = {
    "core": "core",
    "ui": "core",  # Harbor 1.x
    "registry": "registry",
    "registryctl": "registryctl",
    "proxy": "proxy",
    "nginx": "proxy",
    "jobservice": "jobservice",
    "portal": "portal",
    "postgresql": "db",  # the tag Harbor's docker-compose template sets
    "db": "db",
    "redis": "redis",
    "log": "log",
    "audit": "audit",
    "adminserver": "adminserver",  # Harbor 1.x
    "clair": "clair",
    "clair-adapter": "clair-adapter",
    "trivy-adapter": "trivy-adapter",
    "notary-server": "notary-server",
    "notary-signer": "notary-signer",
    "chartmuseum": "chartmuseum",
    "exporter": "exporter",
    "database": "db",
    "trivy": "trivy-adapter",
    "scanner-trivy": "trivy-adapter",
    "harbor-scanner-trivy": "trivy-adapter",
    "registry-photon": "registry",  # goharbor/registry-photon image
}
# container and pod names (journald, docker's syslog driver, kubectl): goharbor/harbor-core,
# harbor-core, harbor_core_1, harbor-core-6c8d9f7b8-x2k4p, harbor-database-0
_TAG_PREFIX = re.compile(r"^(?:.*/)?(?:goharbor[-_])?(?:harbor[-_])?")
_TAG_SUFFIX = re.compile(r"(?:[-_][0-9a-f]{6,10}[-_][0-9a-z]{5}|[-_][0-9a-z]{5}|[-_]\d+)\Z")
_NOISE_KIND = {
    "portal": NoiseKind.PORTAL.value,
    "db": NoiseKind.DATABASE.value,
    "redis": NoiseKind.REDIS.value,
    "log": NoiseKind.LOG_COLLECTOR.value,
}
_NOISE_COMPONENTS = frozenset(
    {
        "portal",
        "db",
        "redis",
        "log",
        "adminserver",
        "clair",
        "clair-adapter",
        "trivy-adapter",
        "notary-server",
        "notary-signer",
        "chartmuseum",
        "exporter",
    }
)
_LOGGER_COMPONENTS = frozenset({"core", "jobservice", "registryctl", "audit"})
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
}

# --- wrappers ----------------------------------------------------------------------

_PREFIX = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<hh>\d\d):(?P<mm>\d\d):(?P<ss>\d\d) "
    r"(?P<host>[^\s\[]\S*|) (?:(?P<tag>[A-Za-z0-9][\w.\-/]*)(?:\[(?P<pid>\d+)\])?: ?|"
    r"(?P<cid>[0-9a-f]{12}(?:[0-9a-f]{52})?) )(?P<body>.*)\Z",
    re.DOTALL,
)
# RSYSLOG_FileFormat (high-precision) variant of the same wrapper; either may come from
# a template without the colon after the tag when the tag is a container id
_PREFIX_ISO = re.compile(
    r"^(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) "
    r"(?P<host>[^\s\[]\S*) (?:(?P<tag>[A-Za-z0-9][\w.\-/]*)(?:\[(?P<pid>\d+)\])?: ?|"
    r"(?P<cid>[0-9a-f]{12}(?:[0-9a-f]{52})?) )(?P<body>.*)\Z",
    re.DOTALL,
)
_REPEAT = re.compile(r"^message repeated (?P<n>\d+) times: \[ ?(?P<body>.*?)\]?\Z", re.DOTALL)
_OCTAL = re.compile(r"#([0-3][0-7][0-7])")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# --- Harbor logger -----------------------------------------------------------------

_LOGGER = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) \[(?P<level>[A-Z]+)\]"
    r"(?: (?:\[(?P<loc>[^\]\s]+)\])?"
    r"(?:\[(?P<fields>(?:[A-Za-z][\w ]*=\"[^\"]*\" ?)*)\])?:?)? ?(?P<msg>.*)\Z",
    re.DOTALL,
)
_FIELD = re.compile(r'([A-Za-z][\w ]*?)="([^"]*)"')
_OWN_ACCESS = re.compile(r'^\S+ \S+ \S+ \[\d\d/[A-Z][a-z]{2}/\d{4}:[^\]]*\] "')
_LOOKS_LOGGER = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
_LEVELS = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warning",
    "WARN": "warning",
    "ERROR": "error",
    "FATAL": "fatal",
}

# --- core messages -----------------------------------------------------------------

_AUTH_FAIL = re.compile(r"^failed to authenticate user:(?P<u>.*?),? error:(?P<err>.*)\Z", re.DOTALL)
_AUTH_FAIL_OLD = re.compile(r"^failed to authenticate (?P<u>[^\s:]*): (?P<err>.*)\Z", re.DOTALL)
_UI_LOGIN_FAIL = re.compile(r"^Error occurred in UserLogin: (?P<err>.*)\Z", re.DOTALL)
_AUDIT_MSG = re.compile(r"^action:(?P<op>[^,]*), resource:(?P<res>.*)\Z", re.DOTALL)

# --- jobservice: GC ----------------------------------------------------------------

_GC_PREFIX = re.compile(r"^(?:\[[0-9a-fA-F-]{36}\])?(?:\[\d+/\d+\] ?)?")
_GC_BLOB_OK = re.compile(r"^delete blob record from database: (?P<id>\d+), (?P<digest>\S+)\Z")
_GC_BLOB_FAIL = re.compile(r"^failed to delete blob from storage: (?P<digest>[^,\s]+)")
_GC_MF_OK = re.compile(
    r"^delete artifact trash record from database: (?P<id>\d+), (?P<repo>[^,]+), (?P<digest>\S+)\Z"
)
_GC_MF_FAIL = re.compile(
    r"^(?:failed to remove manifest from storage: |failed to delete manifest with v2 API, )"
    r"(?P<repo>[^,]+), (?P<digest>[^,\s]+)"
)
_GC_FREED = re.compile(r"^The GC job actual frees up (?P<mb>\d+) MB space")
_GC_ESTIMATE = re.compile(r"^The GC could free up (?P<mb>\d+) MB space")
_GC_FAILED = re.compile(
    r"^failed to execute (?:GC job at (?P<phase>\w+) phase|mark\(\), error out)"
)
_GC_UNTAGGED = re.compile(
    r"^delete the untagged artifact: ProjectID:\((?P<pid>\d+)\)-RepositoryName\((?P<repo>.*?)\)"
    r"-MediaType:\((?P<mt>.*?)\)-Digest:\((?P<digest>[^)]+)\)\Z"
)
_GC_PARAMS = re.compile(r"^Garbage Collection parameters: \[.*?dry_run: (?P<dry>true|false)")
_MB = 1024 * 1024
# every job message below starts (after the GC step prefix) with one of these words
_JOB_GATE = re.compile(
    r"^(?:\[[^\]]*\])*\s*(?:delete |failed to |The GC |Garbage Collection|Run retention|Load \d)"
)

# --- jobservice: tag retention -----------------------------------------------------

_RET_START = re.compile(r"^Run retention process\.")
_RET_REPO = re.compile(r"^\s*Repository: (?P<repo>\S+)\s*\Z")
_RET_DRY = re.compile(r"^\s*Dry Run: (?P<dry>true|false)\s*\Z")
_RET_ALGO = re.compile(r"^\s*Rule Algorithm: ")
_RET_LOAD = re.compile(r"^Load \d+ candidates from repository (?P<repo>\S+)")
_TABLE_ROW = re.compile(r"^\|.*\|\s*\Z")

# --- stack traces ------------------------------------------------------------------

_STACK = others.STACK  # Go panics and stack frames

# --- nginx (proxy) -----------------------------------------------------------------

_NGINX = re.compile(
    r"^(?:\[(?P<tl>[^\]]+)\]:)?(?P<ip>[^\s\"]+) - (?:(?P<ruser>[^\s\"\[]\S*) )?(?:\[(?P<tl2>[^\]]+)\] )?"
    r'"(?P<req>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<ref>[^"]*)" "(?P<ua>[^"]*)"'
    r"(?: (?P<rt>\d+(?:\.\d+)?|-))?"
    r"(?: (?P<urt>-|\d+(?:\.\d+)?(?:(?:, | : )(?:\d+(?:\.\d+)?|-))*))?"
    r"(?: (?P<pipe>[p.]))?\s*\Z"
)
_REQUEST = re.compile(r"^(?P<method>[A-Z][A-Z_-]*) (?P<uri>\S+)(?: (?P<proto>[A-Z]+/[\d.]+))?\Z")
_NGINX_ERROR = re.compile(
    r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?:debug|info|notice|warn|error|crit|alert|emerg)\] "
)
_XHH = re.compile(rb"\\x([0-9A-Fa-f]{2})")

# --- beego (core's access lines, Harbor 1.x and early 2.x) -------------------------

_BEEGO = re.compile(
    r"^(?P<ts>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?) \[(?P<lvl>[A-Z])\] \[(?P<loc>[^\]]+)\]\s+"
    r"\|\s*(?P<ip>[^|\s]*)\s*\|\s*(?P<status>\d{3})\s*\|\s*(?P<dur>[^|]*?)\s*\|\s*(?P<match>\w+)\s*"
    r"\|\s*(?P<method>[A-Z]+)\s+(?P<path>\S+)(?:\s+r:(?P<route>\S+))?\s*\Z"
)
_BEEGO_ANY = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[[A-Z]\] ")

# --- Harbor API paths seen at the proxy --------------------------------------------

_API_ARTIFACT = re.compile(
    r"^/api/v2\.0/projects/(?P<project>[^/]+)/repositories/(?P<repo>[^/]+)/artifacts/(?P<ref>[^/]+)\Z"
)
_API_REPO = re.compile(r"^/api/v2\.0/projects/(?P<project>[^/]+)/repositories/(?P<repo>[^/]+)\Z")
_API_V1_TAG = re.compile(r"^/api/repositories/(?P<repo>.+)/tags/(?P<tag>[^/]+)\Z")
_API_V1_REPO = re.compile(r"^/api/repositories/(?P<repo>[^?]+?)/?\Z")
_HEALTH_PATHS = frozenset(
    {
        "/api/ping",
        "/api/health",
        "/api/v2.0/ping",
        "/api/v2.0/health",
        "/api/systeminfo",
        "/api/v2.0/systeminfo",
    }
)

_parse_body_fn: Callable[..., Event | Dropped] | None = None
_redact_fn: Callable[[str], str] | None = None


def _redact(text: str) -> str:
    global _redact_fn
    if _redact_fn is None:
        try:
            from regwatch.redact import redact

            _redact_fn = redact
        except ImportError:  # never store an unredacted line
            return ""
    return _redact_fn(text)


def _distribution_parse_body() -> Callable[..., Event | Dropped] | None:
    global _parse_body_fn
    if _parse_body_fn is None:
        try:
            from regwatch.parsing.distribution import parse_body

            _parse_body_fn = parse_body
        except ImportError:
            return None
    return _parse_body_fn


# --- small helpers -----------------------------------------------------------------


def component_of(tag: str | None) -> str | None:
    """The Harbor component a syslog tag (or container or pod name) names, or None when
    it is not Harbor's."""
    if not tag:
        return None
    t = tag.lower()
    c = _TAGS.get(t)
    if c is not None:
        return c
    t = _TAG_PREFIX.sub("", t, count=1)
    for _ in range(2):
        c = _TAGS.get(t)
        if c is not None:
            return c
        cut = _TAG_SUFFIX.sub("", t, count=1)
        if cut == t or not cut:
            break
        t = cut
    return _TAGS.get(t)


def decode_syslog(body: str) -> str:
    """Undo rsyslog's ``#ooo`` escapes of control characters (``#011`` tab, ``#033`` ESC)."""
    if "#" not in body:
        return body

    def _one(m: re.Match[str]) -> str:
        v = int(m.group(1), 8)
        return chr(v) if v < 32 or v == 127 else m.group(0)

    return _OCTAL.sub(_one, body)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text


def unescape_nginx(text: str) -> str:
    """Undo nginx's ``\\xHH`` escapes in logged variables (UTF-8 reassembled)."""
    if "\\x" not in text:
        return text
    raw = _XHH.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8", "surrogatepass"))
    return raw.decode("utf-8", "replace")


def split_fields(block: str | None) -> dict[str, str]:
    """A Harbor logger field block (``k="v" k2="v2"``) as a dict; keys may hold spaces."""
    if not block:
        return {}
    return {k.strip(): v for k, v in _FIELD.findall(block)}


def sniff(text: str) -> bool:
    """Is ``text`` one rsyslog-wrapped line of a Harbor component? Cheap."""
    if not text or not (text[0].isupper() or text[0].isdigit()):
        return False
    m = _PREFIX.match(text) if text[0].isupper() else _PREFIX_ISO.match(text)
    return m is not None and m.group("tag").lower() in _TAGS


@dataclass(slots=True)
class _Ctx:
    line: RawLine
    component: str
    host: str | None
    repeat: int
    prefix: tuple[int, int, int, int, int] | None  # month, day, h, m, s
    prefix_dt: datetime | None  # a prefix that carried its own year and zone
    harbor: bool = True  # a tag of Harbor's own (the proxy counts its registry's requests)


class HarborParser:
    """Parser for Harbor's rsyslog-written component logs (``/var/log/harbor/*.log``).

    Also accepts the same bodies without the syslog wrapper (job log files under
    ``/var/log/jobs``, ``kubectl logs``): the component is then taken from
    ``RawLine.component`` or inferred from the content.

    The parser keeps a little state between lines of one stream: the year of the
    prefix times, the last body time (to time records that have none, such as the rows
    of a retention table), and the retention/GC job context (repository, dry run).
    Use one instance per file.

    Raises :class:`regwatch.errors.ConfigError` for an unknown ``count_from``; ``parse``
    itself never raises.
    """

    name = "harbor"

    def __init__(
        self,
        host_tz: tzinfo | None = None,
        default_year: int | None = None,
        *,
        count_from: CountFrom = "proxy",
        clock: Clock | None = None,
    ) -> None:
        if count_from not in ("proxy", "registry"):
            raise ConfigError(
                f"count_from={count_from!r} is not one of 'proxy', 'registry'; "
                "see regwatch.parsing.harbor for what each counts"
            )
        self.host_tz: tzinfo = host_tz or UTC
        self.default_year = default_year
        self.count_from: CountFrom = count_from
        self._clock = clock
        self._year: int | None = default_year
        self._last_month: int | None = None
        self._last_ts: datetime | None = None
        self._ret_repo: str | None = None
        self._ret_dry: bool | None = None
        self._gc_dry: bool | None = None
        self._bare_logger = False
        # the Docker host's offset from UTC, learned from lines with both a prefix and a
        # body time (or handed in by calibrate(): the head of the file or of a sibling)
        self.offset: timedelta | None = None
        self.ref: datetime | None = None  # a time near the stream's start, for the year
        self.hosts: set[str] = set()
        self.prefixed = False
        self._cur_prefix: tuple[int, int, int, int, int] | None = None
        self._learned_at: tuple[int, ...] = ()
        self._prefix_memo: tuple[object, datetime | None] = (None, None)

    sniff = staticmethod(sniff)

    # -- entry point -------------------------------------------------------------
    def parse(self, line: RawLine) -> Event | Dropped:
        """One line as an Event or a Dropped. Never raises."""
        try:
            return self._parse(line)
        except Exception as exc:  # noqa: BLE001 - a parser must never raise on input
            return drop(line, DropReason.UNPARSABLE, f"{type(exc).__name__}")

    def calibrate(self, offset: timedelta | None, ref: datetime | None) -> None:
        """Start from a known host offset and reference time (see formats.calibrate)."""
        if offset is not None and self.offset is None:
            self.offset = offset
        if ref is not None and self.ref is None:
            self.ref = ref

    def saw_block_line(self, prefix: tuple[int, int, int, int, int], ts: datetime | None) -> None:
        """What reading a registry line under a syslog prefix teaches the parser, for a
        line the block parser took: the year of its prefix month, and with an event's
        body time ``ts``, the year and the host's offset (as :meth:`_registry` does)."""
        self._cur_prefix = prefix  # as _parse leaves it for the lines that follow
        self._year_for(prefix[0])
        if ts is not None:
            self._saw_body_time(ts)

    def quiet_at(self, prefix: tuple[int, int, int, int, int], following: tuple[int, int, int, int, int]) -> bool:
        """Whether a registry record at ``prefix`` with an event, followed by another such
        record at ``following``, changes nothing the second does not set again: the year,
        the offset (learned for this hour already) and the stream's first time are known,
        and the rest (the last body time, the year and month) the second overwrites."""
        return (
            self.offset is not None and self.ref is not None and self._year is not None
            and prefix[:3] == self._learned_at and following[:3] == self._learned_at
        )

    def parse_inner(self, line: RawLine, text: str, wrapper_ts: datetime | None) -> Event | Dropped:
        """A line already taken out of a runtime envelope whose time is ``wrapper_ts``."""
        try:
            if text and (text[0].isupper() or text[0].isdigit()) and (
                _PREFIX.match(text) if text[0].isupper() else _PREFIX_ISO.match(text)
            ):
                return self._parse(line if line.text == text else with_text(line, text))
            # a line without a prefix: a body time it holds is not to be set against the
            # prefix of the line before (that taught a wrong host offset)
            self._cur_prefix = None
            return self._bare(line if line.text == text else with_text(line, text), text, prefix_dt=wrapper_ts)
        except Exception as exc:  # noqa: BLE001 - a parser must never raise on input
            return drop(line, DropReason.UNPARSABLE, f"{type(exc).__name__}")

    def _parse(self, line: RawLine) -> Event | Dropped:
        self._cur_prefix = None
        if line.problem in (
            DropReason.BINARY,
            DropReason.TOO_LONG,
            DropReason.TRUNCATED,
            DropReason.IO_ERROR,
        ):
            return drop(line, line.problem)
        text = line.text.rstrip("\r\n")
        if not text.strip():
            return drop(line, DropReason.BLANK)
        m = _PREFIX.match(text) if text[0].isupper() else None
        prefix: tuple[int, int, int, int, int] | None = None
        prefix_dt: datetime | None = None
        if m is not None:
            mon, day, hh, mm, ss = m.group("mon", "day", "hh", "mm", "ss")  # one call, not five
            month = _MONTHS.get(mon)
            if month is None:
                return drop(line, DropReason.UNPARSABLE, "bad month in syslog prefix")
            prefix = (month, int(day), int(hh), int(mm), int(ss))
        else:
            m = _PREFIX_ISO.match(text) if text[0].isdigit() else None
            if m is not None:
                prefix_dt = parse_rfc3339(m.group("iso"))
        if m is None:
            return self._bare(line, text)
        self.prefixed = True
        host, tag, body = m.group("host", "tag", "body")
        if tag is None:
            # a template without the colon, with docker's syslog driver's default tag (the
            # container id): "<time> <host> 76c20c006df4 <body>"
            tag = m.group("cid")
        self.hosts.add(host)
        self._cur_prefix = prefix
        component = component_of(tag)
        body = decode_syslog(body)
        repeat = 1
        rm = _REPEAT.match(body) if body.startswith("message repeated ") else None
        if rm is not None:
            repeat = max(1, int(rm.group("n")))
            body = rm.group("body")
        if component is None:
            # a journald or host syslog line whose tag is no Harbor name (a container id,
            # a custom tag): the body says what it is
            out = self._bare(line, body.rstrip("\r\n"), host=host, prefix=prefix, prefix_dt=prefix_dt, repeat=repeat)
            if isinstance(out, Dropped) and out.reason is DropReason.UNPARSABLE:
                return noise(line, NoiseKind.OTHER_PROGRAM.value, f"syslog tag {tag[:40]!r}")
            return out
        low = tag.lower()
        ctx = _Ctx(line, component, host, repeat, prefix, prefix_dt, low in _TAGS or "harbor" in low)
        return self._body(ctx, body)

    def _bare(
        self,
        line: RawLine,
        text: str,
        *,
        host: str | None = None,
        prefix: tuple[int, int, int, int, int] | None = None,
        prefix_dt: datetime | None = None,
        repeat: int = 1,
    ) -> Event | Dropped:
        """A component's own line without the syslog wrapper (stdout on Kubernetes or
        docker-compose, job log files): the content says which component wrote it."""
        hint = component_of(line.component) if line.component else None
        body = text

        def ctx(component: str) -> _Ctx:
            return _Ctx(line, component, host, repeat, prefix, prefix_dt)

        if hint is not None:
            return self._body(ctx(hint), body)
        if not body.strip():
            return drop(line, DropReason.BLANK)
        if _LOOKS_LOGGER.match(body) and (_LOGGER.match(body) or not others.known(body)):
            self._bare_logger = True
            return self._logger(ctx("core"), body, infer=True)
        if _NGINX.match(body):
            return self._proxy(ctx("proxy"), body)
        if (
            _TABLE_ROW.match(body)
            or _RET_REPO.match(body)
            or _RET_DRY.match(body)
            or _RET_ALGO.match(body)
        ):
            return self._continuation(ctx("jobservice"), body)
        if _BEEGO_ANY.match(strip_ansi(body)):
            return self._core(ctx("core"), body)
        if _looks_registry(body):
            # no Harbor tag says a Harbor proxy stands in front: a registry's records count
            parse_body = _distribution_parse_body()
            out = (
                parse_body(body, line, host=host, fallback_ts=self._fallback_ts(ctx("registry")))
                if parse_body is not None
                else drop(line, DropReason.UNPARSABLE)
            )
            if isinstance(out, Event):
                self._saw_body_time(out.timestamp)
            if not (isinstance(out, Dropped) and out.reason is DropReason.UNPARSABLE):
                return out
        other = others.classify(
            body, line, fallback_ts=self._fallback_ts(ctx("registry")), source=SOURCE,
            component=None, host=host,
        )
        if other is not None:
            return other
        if self._bare_logger and not others.REQUEST_IN_LINE.search(body):
            # a stream of bare Harbor logger lines: this is the next physical line of a
            # multi-line record (a message that contained a newline); a line with a
            # request in it is no message's tail, and stays unrecognized if nothing read it
            return self._continuation(ctx("jobservice"), body)
        return drop(line, DropReason.UNPARSABLE, "not a Harbor log line")

    # -- time ------------------------------------------------------------------------
    def _prefix_ts(self, ctx: _Ctx) -> datetime | None:
        if ctx.prefix_dt is not None:
            return ctx.prefix_dt
        if ctx.prefix is None:
            return None
        month, day, hh, mm, ss = ctx.prefix
        year = self._year_for(month)
        # consecutive lines mostly share their prefix second: the last conversion is kept
        key = (year, ctx.prefix, self.offset, self.host_tz)
        if key == self._prefix_memo[0]:
            return self._prefix_memo[1]
        try:
            local = datetime(year, month, day, hh, mm, ss, tzinfo=self._tz())
            out: datetime | None = local.astimezone(UTC)
        except (ValueError, OverflowError):
            out = None
        self._prefix_memo = (key, out)
        return out

    def _tz(self) -> tzinfo:
        return timezone(self.offset) if self.offset is not None else self.host_tz

    def _year_for(self, month: int) -> int:
        if self._year is None:
            if self.ref is not None:
                # the year that puts the month nearest a time known from the stream itself
                local_ref = self.ref.astimezone(self._tz())
                year = local_ref.year
                if month - local_ref.month > 6:
                    year -= 1
                elif local_ref.month - month > 6:
                    year += 1
            else:
                now = self._clock.now() if self._clock is not None else datetime.now(UTC)
                local_now = now.astimezone(self._tz())
                year = local_now.year
                if month > local_now.month + 1:  # a date months ahead is last year's
                    year -= 1
            self._year = year
        elif self._last_month is not None and self._last_month - month >= 6:
            self._year += 1  # Dec -> Jan
        self._last_month = month
        return self._year

    def _saw_body_time(self, ts: datetime) -> None:
        """A body time fixes the year of the prefix times that follow, and with the
        prefix of the same line, the host's offset from UTC."""
        self._last_ts = ts
        if self.ref is None:
            self.ref = ts
        prefix = self._cur_prefix
        if prefix is not None and (self.offset is None or prefix[:3] != self._learned_at):
            # once per hour of log is enough (zones change on the hour), and cheap
            learned = _host_offset(prefix, ts)
            if learned is not None:
                self.offset = learned
                self._learned_at = prefix[:3]
        try:
            local = ts.astimezone(self._tz())
        except (ValueError, OverflowError):
            return
        self._year = local.year
        self._last_month = local.month

    def _fallback_ts(self, ctx: _Ctx) -> datetime | None:
        return self._prefix_ts(ctx) or self._last_ts

    # -- dispatch --------------------------------------------------------------------
    def _body(self, ctx: _Ctx, body: str) -> Event | Dropped:
        comp = ctx.component
        if comp in _NOISE_COMPONENTS:
            if "TLS handshake error" in body:
                tls = others.classify(
                    body.strip(), ctx.line, fallback_ts=self._fallback_ts(ctx), source=SOURCE,
                    component=comp, host=ctx.host,
                )
                if isinstance(tls, Event):
                    return tls
            return noise(ctx.line, _NOISE_KIND.get(comp, NoiseKind.SCANNER.value), comp)
        if not body.strip():
            return drop(ctx.line, DropReason.BLANK)
        if comp == "registry":
            return self._registry(ctx, body)
        if comp == "proxy":
            return self._proxy(ctx, body)
        if comp == "core":
            return self._core(ctx, body)
        return self._logger(ctx, body)  # jobservice, registryctl, audit

    def _base(self, ctx: _Ctx, ts: datetime, component: str | None = None) -> dict[str, Any]:
        return {
            "id": event_id(ctx.line.fingerprint, ctx.line.offset),
            "timestamp": ts,
            "source": SOURCE,
            "component": component or ctx.component,
            "host": ctx.host,
            "repeat": ctx.repeat,
            "raw": _redact(ctx.line.text),
            "log_file": ctx.line.path,
            "log_offset": ctx.line.offset,
        }

    # -- registry --------------------------------------------------------------------
    def _registry(self, ctx: _Ctx, body: str) -> Event | Dropped:
        parse_body = _distribution_parse_body()
        if parse_body is None:
            return drop(ctx.line, DropReason.UNPARSABLE, "distribution parser unavailable")
        fallback = self._fallback_ts(ctx)
        out = parse_body(
            body,
            ctx.line,
            source=SOURCE,
            component="registry",
            host=ctx.host,
            fallback_ts=fallback,
            repeat=ctx.repeat,
            redact_body=False,  # raw is the whole line, redacted below
        )
        if isinstance(out, Dropped):
            if out.reason is DropReason.UNPARSABLE and not _looks_registry(body):
                if _STACK.match(body):
                    return noise(ctx.line, NoiseKind.STACK_TRACE.value, "stack trace")
                return noise(ctx.line, NoiseKind.REGISTRY_APP.value, "unstructured registry output")
            if out.reason is DropReason.NOISE and out.kind is None:
                return replace(out, kind=NoiseKind.REGISTRY_APP.value)  # as the block parser counts it
            return out
        self._saw_body_time(out.timestamp)
        changes: dict[str, Any] = {"raw": _redact(ctx.line.text)}
        if self.count_from == "proxy" and ctx.harbor:
            changes["tally"] = Tally.NONE.value
            changes["auth"] = AuthClass.NONE.value
        return replace_event(out, **changes)

    # -- proxy -----------------------------------------------------------------------
    def _proxy(self, ctx: _Ctx, body: str) -> Event | Dropped:
        m = _NGINX.match(body)
        if m is None:
            if _NGINX_ERROR.match(body) or body.startswith("nginx: "):
                return noise(ctx.line, NoiseKind.NGINX_ERROR.value, "nginx error log")
            return drop(ctx.line, DropReason.UNPARSABLE, "not an nginx timed_combined line")
        own = m.group("tl") or m.group("tl2")
        ts = parse_clf(own) if own else self._prefix_ts(ctx)
        if ts is None and not own and ctx.prefix is None:
            # nginx on stdout with no envelope: the stream's last time, else the file's
            ts = self._last_ts or (self._clock.now() if self._clock is not None else None)
        if ts is None:
            return drop(
                ctx.line,
                DropReason.BAD_FIELD,
                "no usable time (proxy lines have none of their own)",
            )
        rq = _REQUEST.match(unescape_nginx(m.group("req")))
        if rq is None:
            return noise(ctx.line, NoiseKind.OTHER.value, "malformed request line")
        method, uri = rq.group("method"), rq.group("uri")
        status = int(m.group("status"))
        sent = int(m.group("bytes")) if m.group("bytes") != "-" else None
        rt = m.group("rt")
        duration = float(rt) * 1000.0 if rt and rt != "-" else None
        ua = unescape_nginx(m.group("ua"))
        return self._request(
            ctx,
            ts,
            method=method,
            uri=uri,
            status=status,
            sent=sent,
            duration_ms=duration,
            client_ip=m.group("ip"),
            user_agent=None if ua in ("-", "") else ua,
            counted=True,
        )

    def _request(
        self,
        ctx: _Ctx,
        ts: datetime,
        *,
        method: str,
        uri: str,
        status: int,
        sent: int | None,
        duration_ms: float | None,
        client_ip: str | None,
        user_agent: str | None,
        counted: bool,
        message: str | None = None,
    ) -> Event | Dropped:
        """A request seen by the proxy (``counted``) or by core's beego access log."""
        path, query = split_uri(uri)
        counts = counted and self.count_from == "proxy"
        base = self._base(ctx, ts)
        common: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "client_ip": client_ip or None,
            "user_agent": user_agent,
            "outcome": outcome_of(status)._value_,
            "message": message,
        }
        if path == "/v2" or path.startswith("/v2/"):
            # ``_value_``: an enum member's value without the ``Enum.value`` descriptor call
            # (about 0.4 µs each, four a proxy line)
            req = classify(method, uri)
            action = req.action._value_
            tally = tally_of(action, status) if counts else Tally.NONE
            auth = auth_class_of(action, status, None) if counts else AuthClass.NONE
            nbytes = req.upload_bytes if tally is Tally.BLOB_UPLOAD else sent
            return new_event(
                **base,
                **common,
                action=action,
                tally=tally._value_,
                auth=auth._value_,
                repository=req.repository,
                reference=req.reference,
                digest=req.digest,
                bytes=nbytes,
            )
        if path.startswith("/service/token"):
            accounts = parse_qs(query).get("account")
            account = accounts[0] if accounts else None
            auth = AuthClass.NONE
            if counts and account and 200 <= status < 300:
                auth = AuthClass.AUTH_SUCCESS
            return new_event(
                **base,
                **common,
                action=Action.AUTH.value,
                tally=Tally.NONE.value,
                auth=auth.value,
                user=account or None,
                bytes=sent,
            )
        if path in _HEALTH_PATHS:
            return noise(ctx.line, NoiseKind.HARBOR_LOG.value, "health check")
        if path.startswith("/api/"):
            action, repo, ref = _harbor_api(method, path)
            tally = (
                tally_of(action.value, status) if counts and action is Action.DELETE else Tally.NONE
            )
            return new_event(
                **base,
                **common,
                action=action.value,
                tally=tally.value,
                auth=AuthClass.NONE.value,
                repository=repo,
                reference=ref,
                digest=ref if ref and ":" in ref else None,
                bytes=sent,
            )
        if path.startswith("/c/"):
            action = (
                Action.AUTH
                if path.rstrip("/") in ("/c/login", "/c/oidc/callback")
                else Action.OTHER
            )
            return new_event(
                **base,
                **common,
                action=action.value,
                tally=Tally.NONE.value,
                auth=AuthClass.NONE.value,
                bytes=sent,
            )
        return noise(ctx.line, NoiseKind.HARBOR_LOG.value, "not a registry or API request")

    # -- core ------------------------------------------------------------------------
    def _core(self, ctx: _Ctx, body: str) -> Event | Dropped:
        if "\x1b" in body or _BEEGO_ANY.match(body):
            plain = strip_ansi(body)
            bm = _BEEGO.match(plain)
            if bm is not None:
                return self._beego(ctx, bm)
            if _BEEGO_ANY.match(plain):
                return noise(ctx.line, NoiseKind.HARBOR_LOG.value, "beego")
            body = plain
        return self._logger(ctx, body)

    def _beego(self, ctx: _Ctx, bm: re.Match[str]) -> Event | Dropped:
        # beego prints the core container's local time, which is UTC in Harbor's images
        ts = parse_rfc3339(bm.group("ts").replace("/", "-"))
        if ts is None:
            return drop(ctx.line, DropReason.BAD_FIELD, "bad beego time")
        self._saw_body_time(ts)
        route = bm.group("route")
        return self._request(
            ctx,
            ts,
            method=bm.group("method"),
            uri=bm.group("path"),
            status=int(bm.group("status")),
            sent=None,
            duration_ms=go_duration_ms(bm.group("dur")),
            client_ip=bm.group("ip"),
            user_agent=None,
            counted=False,
            message=f"beego {bm.group('match')} r:{route}" if route else None,
        )

    # -- Harbor logger (core, jobservice, registryctl, audit) --------------------------
    def _logger(self, ctx: _Ctx, body: str, *, infer: bool = False) -> Event | Dropped:
        lm = _LOGGER.match(body)
        if lm is None:
            return self._continuation(ctx, body)
        ts = parse_rfc3339(lm.group("ts"))
        if ts is None:
            return drop(ctx.line, DropReason.BAD_FIELD, "bad Harbor logger time")
        self._saw_body_time(ts)
        level = _LEVELS.get(lm.group("level"), lm.group("level").lower())
        fields = split_fields(lm.group("fields"))
        msg = lm.group("msg").rstrip("\r\n")
        if "operator" in fields and msg.startswith("action:"):
            return self._audit(ctx, ts, level, fields, msg)
        comp = ctx.component
        auth = self._auth_failure(ctx, ts, level, fields, msg, "core" if infer else comp)
        if auth is not None:
            return auth
        job = self._job(ctx, ts, level, msg, "jobservice" if infer else comp)
        if job is not None:
            return job
        kind = NoiseKind.JOB_LOG if comp == "jobservice" else NoiseKind.HARBOR_LOG
        return noise(ctx.line, kind.value, comp if not infer else "harbor logger")

    def _auth_failure(
        self, ctx: _Ctx, ts: datetime, level: str, fields: dict[str, str], msg: str, component: str
    ) -> Event | None:
        if not msg.startswith(("failed to authenticate ", "Error occurred in UserLogin")):
            return None
        user: str | None
        am = _AUTH_FAIL.match(msg) or _AUTH_FAIL_OLD.match(msg)
        if am is not None:
            user = am.group("u").strip()
            detail = am.group("err")
        else:
            um = _UI_LOGIN_FAIL.match(msg)
            if um is None:
                return None
            user = None  # the UI login line does not name the user
            detail = um.group("err")
        auth = AuthClass.ANONYMOUS_DENIAL if user == "" else AuthClass.AUTH_FAILURE
        return new_event(
            **self._base(ctx, ts, component),
            action=Action.AUTH.value,
            outcome=Outcome.FAILURE.value,
            tally=Tally.NONE.value,
            auth=auth.value,
            user=user or None,
            client_ip=fields.get("client IP") or None,
            user_agent=fields.get("user agent") or None,
            request_id=fields.get("requestID") or None,
            level=level,
            message=msg if len(msg) < 2000 else msg[:2000],
            error_code=detail.strip()[:200] or None,
        )

    def _job(
        self, ctx: _Ctx, ts: datetime, level: str, msg: str, component: str
    ) -> Event | Dropped | None:
        """GC and tag-retention job output; None when the message is neither."""
        if _JOB_GATE.match(msg) is None:
            return None
        if _RET_START.match(msg):
            self._ret_repo, self._ret_dry = None, None
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "retention job start")
        rl = _RET_LOAD.match(msg)
        if rl is not None:
            self._ret_repo = rl.group("repo")
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "retention candidates")
        gp = _GC_PARAMS.match(msg)
        if gp is not None:
            self._gc_dry = gp.group("dry") == "true"
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "gc parameters")
        text = _GC_PREFIX.sub("", msg, count=1) if msg.startswith("[") else msg
        base = self._base(ctx, ts, component)
        common: dict[str, Any] = {
            "level": level,
            "message": text,
            "tally": Tally.NONE.value,
            "auth": AuthClass.NONE.value,
        }
        g = _GC_BLOB_OK.match(text)
        if g is not None:
            return new_event(
                **base,
                **common,
                action=Action.GC_DELETE_BLOB.value,
                outcome=Outcome.SUCCESS.value,
                digest=g.group("digest"),
            )
        g = _GC_BLOB_FAIL.match(text)
        if g is not None:
            return new_event(
                **base,
                **common,
                action=Action.GC_DELETE_BLOB.value,
                outcome=Outcome.FAILURE.value,
                digest=g.group("digest"),
            )
        g = _GC_MF_OK.match(text)
        if g is not None:
            return new_event(
                **base,
                **common,
                action=Action.GC_DELETE_MANIFEST.value,
                outcome=Outcome.SUCCESS.value,
                repository=g.group("repo").strip(),
                digest=g.group("digest"),
                reference=g.group("digest"),
            )
        g = _GC_MF_FAIL.match(text)
        if g is not None:
            return new_event(
                **base,
                **common,
                action=Action.GC_DELETE_MANIFEST.value,
                outcome=Outcome.FAILURE.value,
                repository=g.group("repo").strip(),
                digest=g.group("digest"),
                reference=g.group("digest"),
            )
        g = _GC_FREED.match(text)
        if g is not None:
            return new_event(
                **base,
                **common,
                action=Action.GC_SUMMARY.value,
                outcome=Outcome.SUCCESS.value,
                bytes=int(g.group("mb")) * _MB,
            )
        g = _GC_ESTIMATE.match(text)
        if g is not None:
            # the mark phase's estimate (also the whole result of a dry run): not freed space
            return new_event(
                **base,
                **common,
                action=Action.GC_MARK.value,
                outcome=Outcome.SUCCESS.value,
                bytes=int(g.group("mb")) * _MB,
            )
        g = _GC_FAILED.match(text)
        if g is not None:
            return new_event(
                **base,
                **common,
                action=Action.GC_SUMMARY.value,
                outcome=Outcome.FAILURE.value,
            )
        g = _GC_UNTAGGED.match(text)
        if g is not None:
            if self._gc_dry:
                return noise(ctx.line, NoiseKind.JOB_LOG.value, "gc dry run")
            # GC (delete_untagged) removing an artifact from Harbor: who deleted my image
            return new_event(
                **base,
                **{**common, "message": "GC deleted untagged artifact"},
                action=Action.DELETE.value,
                outcome=(Outcome.UNKNOWN if self._gc_dry is None else Outcome.SUCCESS).value,
                repository=g.group("repo") or None,
                digest=g.group("digest"),
                reference=g.group("digest"),
            )
        return None

    def _audit(
        self, ctx: _Ctx, ts: datetime, level: str, fields: dict[str, str], msg: str
    ) -> Event | Dropped:
        am = _AUDIT_MSG.match(msg)
        if am is None:
            return drop(ctx.line, DropReason.BAD_FIELD, "audit line without action/resource")
        when = parse_audit_time(fields.get("time")) or ts
        return audit_event(
            event_id_=event_id(ctx.line.fingerprint, ctx.line.offset),
            timestamp=when,
            operation=am.group("op").strip(),
            resource_type=fields.get("resourceType"),
            resource=am.group("res").strip(),
            username=fields.get("operator"),
            message=msg,
            raw=_redact(ctx.line.text),
            host=ctx.host,
            level=level,
            repeat=ctx.repeat,
            log_file=ctx.line.path,
            log_offset=ctx.line.offset,
        )

    # -- lines without a logger header ---------------------------------------------------
    def _continuation(self, ctx: _Ctx, body: str) -> Event | Dropped:
        """A physical line of a multi-line record: tables, continuations, stack traces."""
        if _TABLE_ROW.match(body):
            return self._retention_row(ctx, body)
        rr = _RET_REPO.match(body)
        if rr is not None:
            self._ret_repo = rr.group("repo")
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "retention job start")
        rd = _RET_DRY.match(body)
        if rd is not None:
            self._ret_dry = rd.group("dry") == "true"
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "retention job start")
        if _RET_ALGO.match(body):
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "retention job start")
        if _STACK.match(body):
            return noise(ctx.line, NoiseKind.STACK_TRACE.value, "stack trace")
        if _LOOKS_LOGGER.match(body):
            return drop(ctx.line, DropReason.UNPARSABLE, "broken Harbor logger line")
        if _OWN_ACCESS.match(body):
            # a component's own access log (registryctl's health checks from core)
            return noise(ctx.line, NoiseKind.HARBOR_LOG.value, "access line of " + ctx.component)
        return noise(ctx.line, NoiseKind.CONTINUATION.value, "unstructured output")

    def _retention_row(self, ctx: _Ctx, body: str) -> Event | Dropped:
        cells = [c.strip() for c in body.strip().strip("|").split("|")]
        verdict = cells[-1] if cells else ""
        if verdict not in ("DEL", "ERR"):
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "retention table")
        repo = self._ret_repo
        tags: list[str] = []
        digest: str | None = None
        if len(cells) >= 8:  # Digest | Tag | Kind | Labels | Pushed | Pulled | Created | Retention
            digest = cells[0] or None
            tags = [t for t in cells[1].split(",") if t]
        elif len(cells) == 7:  # Harbor 1.9: Artifact (ns/repo:tag) | Kind | labels | ...
            arn = cells[0]
            if ":" in arn:
                repo, _, tag = arn.rpartition(":")
                tags = [tag] if tag else []
        else:
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "retention table")
        if verdict == "DEL" and self._ret_dry:
            return noise(ctx.line, NoiseKind.JOB_LOG.value, "retention dry run")
        ts = self._fallback_ts(ctx)
        if ts is None:
            return drop(ctx.line, DropReason.BAD_FIELD, "retention row with no time")
        if verdict == "ERR":
            outcome = Outcome.FAILURE
        else:
            outcome = Outcome.SUCCESS if self._ret_dry is False else Outcome.UNKNOWN
        label = ",".join(tags) if tags else "untagged"
        return new_event(
            **self._base(ctx, ts, "jobservice"),
            action=Action.DELETE.value,
            outcome=outcome.value,
            tally=Tally.NONE.value,
            auth=AuthClass.NONE.value,
            repository=repo,
            reference=tags[0] if tags else digest,
            digest=digest,
            message=f"tag retention {verdict} ({label})",
        )


def _host_offset(prefix: tuple[int, int, int, int, int], body: datetime) -> timedelta | None:
    """The offset of a year- and zone-less prefix time from the UTC body time of the same
    line, in quarter hours (zones are), or None when they are too far apart to be one
    moment."""
    month, day, hh, mm, ss = prefix
    utc = body.astimezone(UTC).replace(tzinfo=None)
    best: timedelta | None = None
    for year in (utc.year - 1, utc.year, utc.year + 1):
        try:
            d = datetime(year, month, day, hh, mm, ss) - utc
        except ValueError:
            continue
        if best is None or abs(d) < abs(best):
            best = d
    if best is None or abs(best) > timedelta(hours=14, minutes=30):
        return None
    quarter = round(best.total_seconds() / 900.0)
    if abs(best.total_seconds() - quarter * 900.0) > 120:  # more than clock skew
        return None
    return timedelta(seconds=quarter * 900)


def _looks_registry(body: str) -> bool:
    b = body.lstrip()
    return (
        b.startswith(("time=", "{"))
        or bool(re.match(r"^\S+ \S+ \S+ \[\d", b))  # an access line's "[dd/Mon/yyyy:..."
        or bool(re.match(r"^[A-Z]{4}\[\d+\]", b))
    )


def _harbor_api(method: str, path: str) -> tuple[Action, str | None, str | None]:
    """(action, repository, reference) of a Harbor REST API request seen at the proxy.

    Only deletions matter for counting: a user deleting from the UI or the API removes
    the artifact from Harbor without any registry request (GC removes it from storage
    later).
    """
    if method != "DELETE":
        return Action.OTHER, None, None
    m = _API_ARTIFACT.match(path)
    if m is not None:
        repo = unquote(unquote(m.group("repo")))
        return Action.DELETE, f"{unquote(m.group('project'))}/{repo}", unquote(m.group("ref"))
    m = _API_REPO.match(path)
    if m is not None:
        repo = unquote(unquote(m.group("repo")))
        return Action.DELETE, f"{unquote(m.group('project'))}/{repo}", None
    m = _API_V1_TAG.match(path)  # Harbor 1.x
    if m is not None:
        return Action.DELETE, unquote(m.group("repo")), unquote(m.group("tag"))
    m = _API_V1_REPO.match(path)
    if m is not None and "/" in m.group("repo"):
        return Action.DELETE, unquote(m.group("repo")), None
    return Action.OTHER, None, None


# --- the block parser's share of Harbor's rsyslog files ------------------------------
# A registry line under the syslog prefix is a Distribution line: the block parser reads
# its body like a bare one. Only the plain case is taken (a month name, a host, a tag, the
# body a logrus or JSON record or an access line, no octal escape, no CR): everything
# else stays per line.
_MONTH_ALT = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_BLOCK_PREFIX = r"^(?:" + _MONTH_ALT + r") {1,2}\d{1,2} \d\d:\d\d:\d\d [^\s\[]\S* [A-Za-z0-9][\w.\-/]*(?:\[\d+\])?: ?"
_BLOCK_FIELDS = (
    r"^(?P<mon>" + _MONTH_ALT + r") {1,2}(?P<day>\d{1,2}) (?P<hh>\d\d):(?P<mm>\d\d):(?P<ss>\d\d) "
    r"(?P<host>[^\s\[]\S*) (?P<tag>[A-Za-z0-9][\w.\-/]*)(?:\[\d+\])?: ?(?:time=\"|\{\"|\S+ \S+ \S+ \[\d)"
)
_BLOCK_ODD = r"#[0-3][0-7][0-7]|\r"


@dataclass(frozen=True)
class SyslogBlock:
    """The registry lines of a block of rsyslog lines, for the block parser."""

    bodies: Any  # pa.StringArray: the body of each registry line, empty for every other line
    taken: Any  # np.ndarray[bool]: the lines with a body
    host: Any  # pa.StringArray, per line (null where not taken)
    harbor: Any  # pa.BooleanArray, per line: the tag is Harbor's (its proxy counts, not the registry)
    prefix: list[tuple[int, int, int, int, int] | None]  # per line: month, day, hh, mm, ss


def strip_syslog_block(texts: Any, first: str) -> SyslogBlock | None:
    """The bodies of the registry-tagged lines of a block (an Arrow string array without
    nulls) whose first line has a traditional syslog prefix, or None when it has none or
    no line is taken. One vectorised pass (RE2 in Arrow) and a dict lookup per tag."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from regwatch import arrowkit  # pa.array would import pandas to check its argument

    if len(first) < 16 or not first[0].isupper() or _PREFIX.match(first) is None:
        return None
    # every tag that names the registry has the word (core's and the proxy's files skip
    # the pattern pass)
    if not pc.any(pc.match_substring(texts, pattern="registry")).as_py():
        return None
    fields = pc.extract_regex(texts, pattern=_BLOCK_FIELDS)
    ok = pc.is_valid(fields)
    tags = pc.struct_field(fields, "tag")
    registry_tags = [t for t in pc.unique(tags.drop_null()).to_pylist() if component_of(t) == "registry"]
    if not registry_tags:
        return None
    ok = pc.and_(ok, pc.is_in(tags, value_set=arrowkit.strings(registry_tags)))
    if pc.any(pc.match_substring(texts, pattern="#")).as_py() or pc.any(pc.match_substring(texts, pattern="\r")).as_py():
        ok = pc.and_(ok, pc.invert(pc.match_substring_regex(texts, pattern=_BLOCK_ODD)))
    taken = arrowkit.int64_numpy(pc.cast(ok, pa.int64())).astype(bool)
    if not taken.any():
        return None
    stripped = pc.replace_substring_regex(texts, pattern=_BLOCK_PREFIX, replacement="", max_replacements=1)
    # an empty value, not a null: the native parser reads the data, not the validity, and
    # leaves an empty line to the per-line parser (as it does the problem lines)
    bodies = pc.if_else(ok, stripped, arrowkit.string_scalar(""))
    prefix: list[tuple[int, int, int, int, int] | None] = [None] * len(texts)
    idx = np.flatnonzero(taken).tolist()
    sub = fields.take(arrowkit.int64s(idx))
    # the numbers converted in Arrow, the tags judged once each
    nums = [pc.cast(pc.struct_field(sub, k), pa.int64()).to_pylist() for k in ("day", "hh", "mm", "ss")]
    months = [_MONTHS[m] for m in pc.struct_field(sub, "mon").to_pylist()]
    for i, mon, day, hh, mm, ss in zip(idx, months, *nums):
        prefix[i] = (mon, day, hh, mm, ss)
    behind = [t for t in registry_tags if t.lower() in _TAGS or "harbor" in t.lower()]
    harbor = pc.is_in(tags, value_set=arrowkit.strings(behind))
    return SyslogBlock(bodies, taken, pc.struct_field(fields, "host"), harbor, prefix)
