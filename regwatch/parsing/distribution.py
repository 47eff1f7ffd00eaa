"""The CNCF Distribution registry's log family (domain.md §1).

One stream interleaves the logrus app log (text, JSON or TTY form), the Apache
combined access log and ``garbage-collect`` output. :class:`DistributionParser`
turns one line into one Event or Dropped; joining the app and access lines of one
request is the correlator's job (``regwatch.correlate``).

App-line events keep ``level`` and ``message`` set so the correlator can tell them
apart; access-line events have ``level`` None.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from regwatch.events import (
    Action,
    AuthClass,
    Dropped,
    DropReason,
    Event,
    Outcome,
    RawLine,
    Tally,
    event_id,
)
from regwatch.parsing.base import drop, new_event
from regwatch.parsing.registry_api import auth_class_of, classify, outcome_value, tally_of
from regwatch.parsing.timeparse import go_duration_ms, parse_clf, parse_rfc3339
from regwatch.redact import redact

SOURCE = "distribution"

# msg values the correlator keys on
MSG_AUTHORIZED = "authorized request"
MSG_COMPLETED = "response completed"
MSG_COMPLETED_ERR = "response completed with error"
MSG_AUTH_FAILED_PREFIX = "error authenticating user "
MSG_CHALLENGE_PREFIX = "error authorizing context"
REQUEST_MSGS = frozenset({MSG_AUTHORIZED, MSG_COMPLETED, MSG_COMPLETED_ERR})

ACCESS_RE = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) (?P<uri>\S+)(?: (?P<proto>[^"]*))?" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-)(?: "(?P<ref>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)")?'
)
# the end of msg="...": a quote followed by " key=" or the end of the line. Inner quotes
# are escaped by some builds (\") and not by others (2.7/2.8 upstream, Harbor).
_MSG_END = re.compile(r'(?<!\\)"(?= [a-z][\w.]*=|\s*$)')
# a quoted value is ``[^"\\]*(?:\\.[^"\\]*)*`` (the unrolled form of ``(?:[^"\\]|\\.)*``:
# the same matches, without an alternation per character, which halves the cost)
_KV = re.compile(r' ([a-z_][\w.]*)=(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^ ]*))')
_TTY = re.compile(r"^(?P<lvl>[A-Z]{4})\[(?P<secs>\d+)\] (?P<msg>.*?)(?:  +| (?=[a-z][\w.]*=)|$)")
_AUTH_USER = re.compile(r'^error authenticating user \\?"(?P<u>.*?)\\?": ')
_GC_MARK = re.compile(r"^(?P<repo>\S+) ?: marking (?P<what>manifest|blob) (?P<digest>\S+)")
_GC_ELIGIBLE = re.compile(r"^(?P<what>blob|manifest) eligible for deletion: (?P<digest>\S+)")
_GC_SUMMARY = re.compile(
    r"^(?P<marked>\d+) blobs marked, (?P<blobs>\d+) blobs and (?P<manifests>\d+) manifests eligible for deletion"
)
_BLOB_PATH_DIGEST = re.compile(r"/blobs/(?P<algo>[a-z0-9]+)/[0-9a-f]{2}/(?P<hex>[0-9a-f]+)")
_MANIFEST_PATH = re.compile(
    r"/repositories/(?P<repo>.+?)/_manifests/revisions/(?P<algo>[a-z0-9]+)/(?P<hex>[0-9a-f]+)"
)
_GC_REPO_LINE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+|/)[a-z0-9]+)*\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TTY_LEVELS = {"INFO": "info", "WARN": "warning", "ERRO": "error", "DEBU": "debug", "FATA": "fatal", "PANI": "panic", "TRAC": "trace"}


REJECTED_TOKEN_MARKERS = ("invalid token", "malformed token")


def rejected_token(msg: str) -> bool:
    """An ``error authorizing context`` that refused a presented bearer token (as opposed
    to ``authorization token required``, the challenge to a request that sent none)."""
    return any(m in msg for m in REJECTED_TOKEN_MARKERS)


def _unescape(v: str) -> str:
    if "\\" in v:
        return v.replace('\\"', '"').replace("\\\\", "\\").replace("\\n", "\n").replace("\\t", "\t")
    return v


def split_logrus(text: str) -> dict[str, str] | None:
    """Fields of a logrus text line (``time="..." level=.. msg="..." k=v ...``)."""
    if not text.startswith('time="'):
        return None
    end_t = text.find('"', 6)
    if end_t < 0:
        return None
    fields: dict[str, str] = {"time": text[6:end_t]}
    rest = text[end_t + 1 :]
    pos = rest.find(" msg=")
    head = rest if pos < 0 else rest[:pos]
    # findall gives "" for a group that did not take part: an empty quoted value and an
    # empty bare one are both ""
    for k, q, b in _KV.findall(head):
        fields[k] = _unescape(q) if q else b
    if pos < 0:
        return fields if "level" in fields else None
    after = rest[pos + 5 :]
    if after.startswith('"'):
        m_end = _MSG_END.search(after, 1)
        if m_end is None:
            fields["msg"] = _unescape(after[1:].rstrip('"'))
            return fields
        fields["msg"] = _unescape(after[1 : m_end.start()])
        tail = after[m_end.start() + 1 :]
    else:
        sp = after.find(" ")
        fields["msg"] = after if sp < 0 else after[:sp]
        tail = "" if sp < 0 else after[sp:]
    for k, q, b in _KV.findall(tail):
        fields[k] = _unescape(q) if q else b
    return fields


def split_tty(text: str) -> dict[str, str] | None:
    """Fields of a TTY-form line: ``INFO[0024] msg   key=value``; no absolute time."""
    m = _TTY.match(text)
    if m is None:
        return None
    fields = {"level": _TTY_LEVELS.get(m.group("lvl"), m.group("lvl").lower()), "msg": m.group("msg").strip()}
    tail = text[m.end() - 1 :] if m.end() > 0 else ""
    for kv in _KV.finditer(" " + tail.lstrip() if not tail.startswith(" ") else tail):
        fields[kv.group(1)] = _unescape(kv.group(2)) if kv.group(2) is not None else kv.group(3)
    return fields


def split_json(text: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or "msg" not in doc:
        return None
    return doc


def _int(v: Any) -> int | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def _host(addr: str | None) -> str | None:
    """``127.0.0.1:5000`` → ``127.0.0.1``; ``[::1]:5000`` → ``::1``; first of an XFF list."""
    if not addr:
        return None
    hit = _host_cache.get(addr)
    if hit is None:
        if len(_host_cache) >= 4096:
            _host_cache.clear()
        hit = _host_cache[addr] = (_host_of(addr),)
    return hit[0]


_host_cache: dict[str, tuple[str | None]] = {}


def _host_of(addr: str) -> str | None:
    addr = addr.split(",")[0].strip()
    if addr.startswith("["):
        return addr[1 : addr.find("]")] if "]" in addr else addr
    if addr.count(":") == 1:
        return addr.split(":")[0]
    return addr


def _str(v: Any) -> str | None:
    if v is None:
        return None
    s = v if isinstance(v, str) else str(v)
    return s if s != "" else None


def app_event(
    fields: dict[str, Any],
    line: RawLine,
    *,
    ts: datetime | None,
    source: str,
    component: str,
    host: str | None,
    repeat: int,
    raw: str,
    all_str: bool = False,
) -> Event | Dropped:
    """An app-log line (any form) as an Event, or a NOISE drop when it counts nothing.
    ``all_str``: every value of ``fields`` is a ``str`` (the text and TTY forms)."""
    msg = _str(fields.get("msg")) or ""
    level = _str(fields.get("level"))
    if ts is None:
        return drop(line, DropReason.BAD_FIELD, "no usable timestamp")
    if not msg.startswith(_DELETING):
        return _request_event(fields, line, ts, source, component, host, repeat, raw, msg, level, all_str)
    base = dict(
        id=event_id(line.fingerprint, line.offset),
        timestamp=ts,
        source=source,
        component=component,
        level=level,
        message=msg,
        host=host,
        repeat=repeat,
        raw=raw,
        log_file=line.path,
        log_offset=line.offset,
    )
    if msg.startswith("Deleting blob: ") or msg.startswith("Deleting manifest"):
        path = msg.split(": ", 1)[1] if ": " in msg else msg
        bm = _BLOB_PATH_DIGEST.search(path)
        mm = _MANIFEST_PATH.search(path)
        if mm is not None:
            return new_event(
                **base,  # type: ignore[arg-type]
                action=Action.GC_DELETE_MANIFEST.value,
                outcome=Outcome.SUCCESS.value,
                repository=mm.group("repo"),
                digest=f"{mm.group('algo')}:{mm.group('hex')}",
            )
        return new_event(
            **base,  # type: ignore[arg-type]
            action=Action.GC_DELETE_BLOB.value,
            outcome=Outcome.SUCCESS.value,
            digest=f"{bm.group('algo')}:{bm.group('hex')}" if bm else None,
        )


# enum values as plain constants (``Enum.value`` is a descriptor call, ~0.4 µs each)
_DELETING = ("Deleting blob: ", "Deleting manifest")
_AUTH_NONE = AuthClass.NONE.value
_AUTH_FAILURE = AuthClass.AUTH_FAILURE.value
_AUTH_ANON = AuthClass.ANONYMOUS_DENIAL.value
_TALLY_NONE = Tally.NONE.value
_REQUEST_KEYS = (
    "http.request.method", "http.request.uri", "auth.user.name", "vars.name", "vars.reference", "vars.digest",
    "http.request.remoteaddr", "http.request.useragent", "http.request.id", "err.code",
)


def _request_event(
    fields: dict[str, Any],
    line: RawLine,
    ts: datetime,
    source: str,
    component: str,
    host: str | None,
    repeat: int,
    raw: str,
    msg: str,
    level: str | None,
    all_str: bool,
) -> Event | Dropped:
    """The request-scoped app line of :func:`app_event` (every one but GC deletions)."""
    get = fields.get
    if all_str:  # _str(v) of a str or None is ``v or None``
        method, uri, user, name, ref, dig, addr, ua, rid, err = [get(k) or None for k in _REQUEST_KEYS]
    else:
        method, uri, user, name, ref, dig, addr, ua, rid, err = [_str(get(k)) for k in _REQUEST_KEYS]
    if method is None or uri is None:
        return drop(line, DropReason.NOISE)
    req = classify(method, uri)
    status = _int(get("http.response.status"))
    auth = _AUTH_NONE
    if msg.startswith(MSG_AUTH_FAILED_PREFIX):
        um = _AUTH_USER.match(msg)
        user = um.group("u") if um else None
        status = 401
        auth = _AUTH_FAILURE if user else _AUTH_ANON
    elif msg.startswith(MSG_CHALLENGE_PREFIX):
        status = 401
        if rejected_token(msg):
            auth = _AUTH_FAILURE  # a bearer token was presented and refused
        else:
            auth = auth_class_of(req.action.value, 401, None).value
    elif msg not in REQUEST_MSGS:
        # other request-scoped app lines (e.g. upload purges, storage errors): not counted
        return drop(line, DropReason.NOISE)
    repo = name or req.repository
    ref = ref or req.reference
    digest = dig or req.digest
    dur = get("http.response.duration")
    duration_ms = go_duration_ms(dur) if isinstance(dur, str) else None
    if duration_ms is None and isinstance(get("trace.duration"), (int, float)):
        duration_ms = float(fields["trace.duration"]) / 1e6
    written = _int(get("http.response.written"))
    action = req.action._value_
    if msg != MSG_AUTHORIZED:
        tally_e = tally_of(action, status)
        tally = tally_e._value_
        nbytes = req.upload_bytes if tally_e is Tally.BLOB_UPLOAD else written
    else:
        tally = _TALLY_NONE
        nbytes = written
    return new_event(
        id=event_id(line.fingerprint, line.offset),
        timestamp=ts,
        source=source,
        component=component,
        level=level,
        message=msg,
        host=host,
        repeat=repeat,
        raw=raw,
        log_file=line.path,
        log_offset=line.offset,
        action=action,
        outcome=outcome_value(status),
        tally=tally,
        auth=auth,
        repository=repo,
        reference=ref,
        digest=digest,
        method=method,
        path=uri.split("?", 1)[0],
        status=status,
        bytes=nbytes,
        duration_ms=duration_ms,
        user=user,
        client_ip=_host(addr),
        user_agent=ua,
        request_id=rid,
        error_code=err,
    )


def access_event(
    m: re.Match[str],
    line: RawLine,
    *,
    source: str,
    component: str,
    host: str | None,
    repeat: int,
    raw: str,
) -> Event | Dropped:
    ts = parse_clf(m.group("ts"))
    if ts is None:
        return drop(line, DropReason.BAD_FIELD, "bad access-log time")
    method, uri = m.group("method"), m.group("uri")
    status = int(m.group("status"))
    b = m.group("bytes")
    written = int(b) if b != "-" else None
    req = classify(method, uri)
    action = req.action._value_
    tally = tally_of(action, status)
    nbytes = req.upload_bytes if tally is Tally.BLOB_UPLOAD else written
    user = m.group("user")
    ua = m.group("ua")
    return new_event(
        id=event_id(line.fingerprint, line.offset),
        timestamp=ts,
        source=source,
        component=component,
        action=action,
        outcome=outcome_value(status),
        tally=tally._value_,
        auth=_AUTH_NONE if status != 401 else auth_class_of(action, status, None).value,
        repository=req.repository,
        reference=req.reference,
        digest=req.digest,
        method=method,
        path=uri.split("?", 1)[0],
        status=status,
        bytes=nbytes,
        user=None if user in ("-", "") else user,
        client_ip=_host(m.group("ip")),
        user_agent=_unescape(ua) if ua else None,
        host=host,
        repeat=repeat,
        raw=raw,
        log_file=line.path,
        log_offset=line.offset,
    )


def gc_event(
    text: str,
    line: RawLine,
    *,
    ts: datetime | None,
    source: str,
    host: str | None,
    repeat: int,
) -> Event | Dropped | None:
    """Plain-text ``registry garbage-collect`` output; None when not GC output."""
    m = _GC_SUMMARY.match(text)
    mark = _GC_MARK.match(text) if m is None else None
    elig = _GC_ELIGIBLE.match(text) if m is None and mark is None else None
    if m is None and mark is None and elig is None:
        return None
    if mark is not None:
        return drop(line, DropReason.NOISE)
    if ts is None:
        return drop(line, DropReason.BAD_FIELD, "GC output before any timestamped line")
    base = dict(
        id=event_id(line.fingerprint, line.offset),
        timestamp=ts,
        source=source,
        component="gc",
        outcome=Outcome.SUCCESS.value,
        host=host,
        repeat=repeat,
        raw=text,
        message=text,
        log_file=line.path,
        log_offset=line.offset,
    )
    if elig is not None:
        # "eligible" is what a dry run reports too; the deletion itself is "Deleting blob"
        return drop(line, DropReason.NOISE)
    assert m is not None
    return new_event(**base, action=Action.GC_SUMMARY.value, bytes=None)  # type: ignore[arg-type]


def parse_body(
    body: str,
    line: RawLine,
    *,
    source: str = SOURCE,
    component: str = "registry",
    host: str | None = None,
    fallback_ts: datetime | None = None,
    repeat: int = 1,
    redact_body: bool = True,
) -> Event | Dropped:
    """Parse one Distribution record (app, access or GC line) already stripped of any wrapper.

    Never raises on bad input. ``fallback_ts`` times records that carry no absolute
    time of their own (TTY form, GC plain text). ``redact_body=False`` leaves ``raw``
    empty for a caller that stores its own redacted text (the whole wrapped line) in the
    event: redaction is a few µs a line, not worth doing twice.
    """
    try:
        return _parse_body(body, line, source, component, host, fallback_ts, repeat, redact_body)
    except Exception as exc:  # noqa: BLE001 - a parser must never raise on input
        return drop(line, DropReason.UNPARSABLE, f"{type(exc).__name__}")


def _parse_body(
    body: str,
    line: RawLine,
    source: str,
    component: str,
    host: str | None,
    fallback_ts: datetime | None,
    repeat: int,
    redact_body: bool = True,
) -> Event | Dropped:
    text = body.rstrip("\r\n")
    red = redact if redact_body else _no_raw
    if text.startswith("\x1b"):
        text = _ANSI.sub("", text)  # the TTY form is coloured
    if not text or text.isspace():  # the same as ``not text.strip()``, without a copy
        return drop(line, DropReason.BLANK)
    c0 = text[0]
    if c0 == "t":
        fields = split_logrus(text)
        if fields is not None:
            ts = parse_rfc3339(fields.get("time", "")) or None
            return app_event(
                fields, line, ts=ts, source=source, component=component, host=host,
                repeat=repeat, raw=red(text), all_str=True,
            )
    elif c0 == "{":
        doc = split_json(text)
        if doc is not None:
            t = doc.get("time")
            ts = parse_rfc3339(t) if isinstance(t, str) else None
            return app_event(
                doc, line, ts=ts, source=source, component=component, host=host,
                repeat=repeat, raw=red(text),
            )
        return drop(line, DropReason.UNPARSABLE, "not a logrus JSON object")
    elif c0.isupper() and len(text) > 6 and text[4] == "[":
        fields = split_tty(text)
        if fields is not None:
            return app_event(
                fields, line, ts=fallback_ts, source=source, component=component, host=host,
                repeat=repeat, raw=red(text), all_str=True,
            )
    m = ACCESS_RE.match(text)
    if m is not None:
        return access_event(
            m, line, source=source, component=component, host=host, repeat=repeat, raw=red(text)
        )
    gc = gc_event(text, line, ts=fallback_ts, source=source, host=host, repeat=repeat)
    if gc is not None:
        return gc
    if _GC_REPO_LINE.match(text):
        # garbage-collect prints each repository's name on a line of its own before marking
        return drop(line, DropReason.NOISE)
    return drop(line, DropReason.UNPARSABLE)


def _no_raw(text: str) -> str:
    return ""


class DistributionParser:
    """Parser for a standalone Distribution registry's stream (any mix of its forms).

    Keeps the last absolute time it saw, to time the TTY form and GC output.
    """

    name = "distribution"

    def __init__(self, fallback_ts: datetime | None = None) -> None:
        self.last_ts = fallback_ts

    def parse(self, line: RawLine) -> Event | Dropped:
        out = parse_body(line.text, line, fallback_ts=self.last_ts)
        if isinstance(out, Event):
            self.last_ts = out.timestamp
        return out

    @staticmethod
    def sniff(text: str) -> bool:
        return (
            text.startswith('time="')
            or (text.startswith("{") and '"msg"' in text)
            or ACCESS_RE.match(text) is not None
            or (len(text) > 6 and text[4] == "[" and text[:4].isupper())
            or _GC_SUMMARY.match(text) is not None
            or _GC_MARK.match(text) is not None
            or _GC_ELIGIBLE.match(text) is not None
        )
