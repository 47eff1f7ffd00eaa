"""Named parsers, and per-line auto-detection for mixed streams."""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from regwatch.clock import FixedClock
from regwatch.config import Config, parse_tz
from regwatch.errors import UnknownFormat
from regwatch.events import Dropped, DropReason, Event, NoiseKind, RawLine
from regwatch.parsing import others
from regwatch.parsing.base import Parser, drop, with_text
from regwatch.parsing.distribution import DistributionParser, parse_body
from regwatch.parsing.grok import GrokFormat, GrokParser
from regwatch.parsing.harbor import HarborParser
from regwatch.parsing.timeparse import parse_rfc3339
from regwatch.parsing.wrappers import Joiner, unwrap
from regwatch.sources.files import _open_quote

BUILTIN = ("auto", "distribution", "harbor", "harbor-audit")


class AutoParser:
    """Per-line detection, for any mix of forms in one stream.

    First the runtime envelope comes off (CRI, Docker json-file, ``docker logs
    --timestamps``, ``docker compose logs``, ``kubectl logs --prefix``; partial pieces
    are joined per stream), then the line itself is read:
    a syslog or journald prefix goes to the Harbor parser (its tag, or else its body,
    names the component), the Distribution forms (logrus text and JSON, access, GC) to
    the Distribution parser, and anything else to the Harbor parser's content detection
    (bare component lines on stdout, job logs, nginx, the programs around a registry),
    then to the custom grok formats. Keeps per-stream state: use one instance per file.
    """

    name = "auto"

    def __init__(self, harbor: HarborParser | None, distribution: DistributionParser, custom: list[GrokParser]):
        self.harbor = harbor
        self.distribution = distribution
        self.custom = custom
        self.joiner = Joiner()
        self.wrappers: dict[str, int] = {}
        # lines since the last record this stream recognized, or -1 when the last line
        # was not recognized (see :meth:`saw_record` and :func:`headless`)
        self._since_record = -1
        # the line last read was a registry record (logrus, JSON, access line) that ends
        # on its own line: nothing continues it
        self._closed = False

    def saw_record(self) -> None:
        """The stream's previous line was a registry record the block parser took: a
        record that ends on its line, which nothing continues."""
        self._since_record = -1

    def parse(self, line: RawLine) -> Event | Dropped:
        try:
            out = self._parse(line)
        except Exception as exc:  # noqa: BLE001 - a parser must never raise on input
            out = drop(line, DropReason.UNPARSABLE, type(exc).__name__)
        if isinstance(out, Event):
            self._since_record = -1 if self._closed else 0
            return out
        reason = out.reason
        if reason is DropReason.UNPARSABLE:
            since = self._since_record
            if 0 <= since < MAX_CONTINUATION and headless(out.text):
                # a record's later physical line (a raw newline in a message, a header
                # block, a wrapped error text): filebeat's and fluent-bit's multiline rule
                self._since_record = since + 1
                return replace(out, reason=DropReason.NOISE, kind=NoiseKind.CONTINUATION.value,
                               detail="continues the record before it")
            self._since_record = -1
        elif reason is DropReason.NOISE:
            self._since_record = -1 if self._closed else 0
        elif reason is not DropReason.BLANK and reason is not DropReason.MERGED:
            self._since_record = -1
        return out

    def _parse(self, line: RawLine) -> Event | Dropped:
        text = line.text
        if line.problem is None and text and not text.startswith('time="'):
            # an RFC 3339 syslog line (RSYSLOG_FileFormat) is no docker --timestamps
            # envelope, which always prints nanoseconds in UTC
            u = None if text[0].isdigit() and _syslog_like(text) and not _DOCKER_TIME.match(text) else unwrap(text)
            if u is not None:
                self.wrappers[u.wrapper] = self.wrappers.get(u.wrapper, 0) + 1
                fed = self.joiner.feed(u, line.offset)
                if fed is None:
                    return drop(line, DropReason.MERGED, "partial line, joined with the next", NoiseKind.PARTIAL.value)
                whole, offset = fed
                inner = RawLine(line.source, line.path, whole.text, line.fingerprint, offset, line.end, None, line.component)
                if not whole.text.strip():
                    return drop(inner, DropReason.BLANK)
                out = self._inner(inner, whole.time)
                if (
                    u.wrapper == "docker_ts" and isinstance(out, Dropped) and out.reason is DropReason.UNPARSABLE
                    and not _DOCKER_TIME.match(text)
                ):
                    # a time not in docker's own layout may be the line's own (another
                    # program's "<RFC 3339> WARN ..."): a guessed envelope that leaves
                    # nothing recognizable is undone
                    again = self._inner(line, None)
                    if not (isinstance(again, Dropped) and again.reason is DropReason.UNPARSABLE):
                        self.wrappers[u.wrapper] -= 1
                        return again
                return out
        return self._inner(line, None)

    def _inner(self, line: RawLine, wrapper_ts: datetime | None) -> Event | Dropped:
        text = line.text
        self._closed = False
        if self.harbor is not None and _syslog_like(text):
            # rsyslog writes one record per physical line, each with its prefix
            self._closed = True
            return self.harbor.parse(line)
        dist = self.distribution
        if line.problem is None:
            out = parse_body(text, line, fallback_ts=wrapper_ts or dist.last_ts)
        else:
            out = dist.parse(line)
        if isinstance(out, Event):
            dist.last_ts = out.timestamp
            self._closed = not _open_quote(text)
            return out
        if out.reason is DropReason.NOISE:
            self._closed = not _open_quote(text)
            if "TLS handshake error" in text:
                m = others.tls_message(text)
                ts = _logrus_time(text) or wrapper_ts or dist.last_ts
                if m is not None and ts is not None:
                    return others.tls_event(line, m, ts, source="distribution", component="registry", host=None)
            return out if out.kind else replace(out, kind=NoiseKind.REGISTRY_APP.value)
        if out.reason is not DropReason.UNPARSABLE:
            return out
        if text[:1].isspace() and text.strip():
            # a line indented by whatever copied it (a paste, a support bundle)
            again = self._inner(with_text(line, text.lstrip()), wrapper_ts)
            if not (isinstance(again, Dropped) and again.reason is DropReason.UNPARSABLE):
                return again
        if self.harbor is not None:
            h = self.harbor.parse_inner(line, text, wrapper_ts)
            if not (isinstance(h, Dropped) and h.reason is DropReason.UNPARSABLE):
                return h
        for p in self.custom:
            if p.sniff(text):
                return p.parse(line)
        return out


_LOGRUS_TIME = re.compile(r'(?:^time="|"time":")([^"]+)"')


def _logrus_time(text: str) -> datetime | None:
    m = _LOGRUS_TIME.search(text)
    return parse_rfc3339(m.group(1)) if m is not None else None


# how a log record of its own starts: a time in any of the usual layouts, a level, a
# logrus or JSON record, a client address, a syslog prefix, a request; a physical line
# with none of these that follows a record is that record's continuation
_HEAD = re.compile(
    r"^(?:time=|level=|ts=|msg=|\{|\[(?:\d|[A-Z]{3,}|pod/)|"
    r"\d{4}[-/.]\d\d?[-/.]\d\d?|\d\d?[-/. ](?:\d\d|[A-Z][a-z]{2})[-/. ]\d{2,4}|\d\d?:\d\d:\d\d|"
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*,? +\d|"
    r"(?:TRACE|DEBUG|DEBU|INFO|WARN|WARNING|ERROR|ERRO|FATAL|FATA|PANIC|PANI|CRIT)\b|[IWEF]\d{4} |"
    r"\d{1,3}(?:\.\d{1,3}){3}\b|[0-9a-fA-F]{0,4}:[0-9a-fA-F:]*:|\d+:[XCMS] )"
)
MAX_CONTINUATION = 512  # headless lines taken as one record's continuation at most


def headless(text: str) -> bool:
    """A non-blank line with no record head of its own, and no request in it."""
    return bool(text.strip()) and _HEAD.match(text) is None and others.REQUEST_IN_LINE.search(text) is None


def _syslog_like(text: str) -> bool:
    # "Mmm dd HH:MM:SS " (rsyslog traditional, journald short) or RFC 3339 then a host
    if len(text) <= 16:
        return False
    c0 = text[0]
    if c0.isupper():
        return text[3] == " " and text[1:3].isalpha() and text[9] == ":" and text[12] == ":"
    return c0.isdigit() and text[4] == "-" and text[10] == "T" and _ISO_SYSLOG.match(text) is not None


_ISO_SYSLOG = re.compile(
    r"^\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d) [^\s\[]\S* "
    r"(?:[A-Za-z][\w.\-/]*(?:\[\d+\])?: |[0-9a-f]{12}(?:[0-9a-f]{52})? )"
)
# docker logs --timestamps: RFC3339Nano with all nine digits, in UTC
_DOCKER_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")


# --- the Docker host's clock -------------------------------------------------------

CALIBRATION_BYTES = 256 * 1024
CALIBRATION_LINES = 4000


@dataclass(frozen=True)
class Calibration:
    """What the head of a file says about the clock of its syslog prefixes.

    rsyslog's prefix time has no year and no zone (the Docker host's local time), while
    most bodies carry an absolute time. Lines with both give the host's offset; any body
    time gives the year. A file without such lines (the proxy's: nginx lines have no
    time of their own) borrows both from a sibling file of the same host.
    """

    offset: timedelta | None = None
    ref: datetime | None = None
    hosts: frozenset[str] = frozenset()
    prefixed: bool = False


def calibrate_lines(lines: Iterable[str]) -> Calibration:
    """The host clock that these lines (a file's head) show."""
    try:
        from regwatch.parsing.harbor import HarborParser
    except ImportError:  # pragma: no cover
        return Calibration()
    p = HarborParser()
    for i, text in enumerate(lines):
        if i >= CALIBRATION_LINES:
            break
        if text and (text[0].isupper() or text[0].isdigit()):
            p.parse(RawLine("", "", text, "", 0))
    return Calibration(p.offset, p.ref, frozenset(p.hosts), p.prefixed)


_cal_cache: dict[tuple[str, int, int], Calibration] = {}


def calibrate_file(path: str) -> Calibration:
    """The host clock of a file's head (cached by path, size and mtime). Never raises."""
    try:
        st = os.stat(path)
    except OSError:
        return Calibration()
    key = (path, st.st_size, st.st_mtime_ns)
    hit = _cal_cache.get(key)
    if hit is not None:
        return hit
    try:
        with open(path, "rb") as fh:
            head = fh.read(CALIBRATION_BYTES)
        if head[:2] == b"\x1f\x8b":
            head = zlib.decompressobj(31).decompress(head, CALIBRATION_BYTES)
    except (OSError, zlib.error):
        head = b""
    if b"\0" in head[:4096]:
        cal = Calibration()
    else:
        lines = head.decode("utf-8", "replace").splitlines()
        if len(head) >= CALIBRATION_BYTES and lines:
            lines = lines[:-1]  # the last one may be cut
        cal = calibrate_lines(lines)
    if len(_cal_cache) > 512:
        _cal_cache.clear()
    _cal_cache[key] = cal
    return cal


def host_calibration(path: str) -> Calibration:
    """The clock for a file's prefixes: its own head's, or else that of a sibling file in
    the same directory whose prefixes name the same host (``/var/log/harbor`` holds one
    host's components)."""
    own = calibrate_file(path)
    if own.offset is not None or not own.prefixed:
        return own
    folder = os.path.dirname(os.path.abspath(path))
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return own
    me = os.path.abspath(path)
    for name in names[:200]:
        sib = os.path.join(folder, name)
        if sib == me or not os.path.isfile(sib):
            continue
        cal = calibrate_file(sib)
        if cal.offset is not None and cal.hosts & own.hosts:
            return Calibration(cal.offset, own.ref or cal.ref, own.hosts, True)
    return own


def names(config: Config) -> list[str]:
    return list(BUILTIN) + [f.name for f in config.formats]


def make_parser(
    name: str | None,
    config: Config,
    *,
    fallback_ts: datetime | None = None,
    calibration: Calibration | None = None,
) -> Parser:
    """A fresh parser for one stream. ``fallback_ts`` (the file's mtime) times records
    with no time of their own and sets the year of prefix times when the stream shows
    none; ``calibration`` (see :func:`host_calibration`) is the host clock. Raises
    UnknownFormat naming the allowed values."""
    name = name or "auto"
    custom = [
        GrokParser(GrokFormat(f.name, f.pattern, dict(f.fields), f.time_format, f.component))
        for f in config.formats
    ]
    harbor = _harbor(config, fallback_ts)
    if harbor is not None and calibration is not None:
        harbor.calibrate(calibration.offset, calibration.ref)
    dist = DistributionParser(fallback_ts)
    if name == "auto":
        return AutoParser(harbor, dist, custom)
    if name == "distribution":
        return dist
    if name == "harbor":
        if harbor is None:
            raise UnknownFormat("the harbor parser is not available in this build")
        return harbor
    if name == "harbor-audit":
        return _Unsupported(name)
    for p in custom:
        if p.name == name:
            return p
    raise UnknownFormat(
        f"unknown format {name!r}; choose one of {names(config)!r} or define it under 'formats:' in the config"
    )


class _Unsupported:
    """harbor-audit is file-level (JSON/CSV exports); lines never reach a line parser."""

    def __init__(self, name: str) -> None:
        self.name = name

    def parse(self, line: RawLine) -> Event | Dropped:
        return drop(line, DropReason.UNPARSABLE, "not a Harbor audit export file")


def _harbor(config: Config, now: datetime | None) -> HarborParser | None:
    tz = parse_tz(config.harbor_host_tz) if config.harbor_host_tz else None
    return HarborParser(host_tz=tz, clock=FixedClock(now) if now is not None else None)


ParserFactory = Callable[[], Parser]
