"""Harbor audit records: exports of the audit log (domain.md §3, "Audit records").

Three shapes carry the same record (id, operation, resource_type, resource, username,
op_time):

* the REST API ``GET /api/v2.0/audit-logs`` (a JSON array per page; pages saved one
  after another, pretty-printed or as JSON Lines). Its items have **no** ``project_id``;
  ``op_time`` is RFC 3339. Harbor 2.13+ adds ``/api/v2.0/auditlog-exts`` whose items
  also carry ``operation_description`` and ``operation_result`` (a boolean). Harbor 1.x
  ``/api/logs`` items (``log_id``, ``repo_name``, ``repo_tag``) are accepted too;
* a dump of the ``audit_log`` (or ``audit_log_ext``) table as CSV or TSV with a header
  row (psql ``\\copy ... csv header``, ``COPY ... (format text, header)``, or a GUI
  export). ``op_time`` is ``timestamp`` without a zone in Harbor's schema: a zone-less
  value is UTC;
* forwarded syslog lines (tag ``audit``), parsed by :mod:`regwatch.parsing.harbor` with
  the helpers here.

Counting: an audit record never counts (``tally`` is always ``none``). The request it
describes is counted from the request logs (see :mod:`regwatch.parsing.harbor`); the
audit record adds who did it. ``pull``/``create`` (artifact) map to the ``pull`` and
``push`` actions so that audit searches read naturally, but stay uncounted.

The resource is ``<repo>:<tag>``, ``<repo>:<digest>`` (Harbor 2.x) or ``<repo>@<digest>``
(recent versions, pulls by digest), a repository name, a project name, or a bare
project id (a project deleted by a user whose name Harbor did not record).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from regwatch.events import (
    Action,
    AuthClass,
    Dropped,
    DropReason,
    Event,
    Outcome,
    Tally,
    event_id,
)

SOURCE = "harbor-audit"
COMPONENT = "audit"

_ARTIFACT_TYPES = frozenset({"artifact", "tag", ""})
_DIGEST_REF = re.compile(
    r"^(?P<repo>[^@]+?):(?P<ref>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})$"
)
_GO_TIME = re.compile(
    r"^(?P<d>\d{4}-\d\d-\d\d)[ T](?P<t>\d\d:\d\d:\d\d)(?:[.,](?P<f>\d{1,9}))?"
    r"\s*(?P<z>Z|z|UTC|[+-]\d\d(?::?\d\d)?)?(?:\s+(?P<abbr>[A-Za-z][A-Za-z0-9+\-]*))?"
    r"(?:\s+m=[+-]?[\d.]+)?\s*$"
)
_EPOCH = re.compile(r"^\d{9,13}(?:\.\d+)?$")


# --- shared by the forwarded-line parser -------------------------------------------


def parse_audit_time(value: Any) -> datetime | None:
    """An audit ``op_time`` or forwarded ``time`` as tz-aware UTC; None when unreadable.

    Accepts RFC 3339, Go's ``time.String()`` (``2023-10-18 07:43:52.72521725 +0000 UTC
    m=+1256.97``), PostgreSQL text (``2024-03-05 10:01:02.998181[+00]``) and Unix epoch
    seconds or milliseconds. A value without a zone is UTC.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not s:
        return None
    if _EPOCH.match(s):
        return _from_epoch(float(s))
    m = _GO_TIME.match(s)
    if m is None:
        return None
    try:
        y, mo, d = (int(p) for p in m.group("d").split("-"))
        hh, mi, ss = (int(p) for p in m.group("t").split(":"))
        us = int((m.group("f") or "0")[:6].ljust(6, "0"))
        tz = _zone(m.group("z"))
        return datetime(y, mo, d, hh, mi, ss, us, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _from_epoch(v: float) -> datetime | None:
    if v <= 0:
        return None
    if v > 1e11:  # milliseconds
        v = v / 1000.0
    try:
        return datetime.fromtimestamp(v, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _zone(spec: str | None) -> timezone:
    if not spec or spec in ("Z", "z", "UTC"):
        return UTC
    sign = -1 if spec[0] == "-" else 1
    digits = spec[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def audit_action(operation: str | None, resource_type: str | None, resource: str | None) -> Action:
    """The domain action of an audit operation (never counted: see the module docstring)."""
    op = (operation or "").strip().lower()
    rt = (resource_type or "").strip().lower()
    if op == "delete":
        return Action.DELETE
    if op == "pull":
        return Action.PULL
    if op == "push":  # Harbor 1.x access_log
        return Action.PUSH
    if op == "create":
        # push is "create artifact"; pre-2.6 forwarded lines carry no resource type
        if rt == "artifact" or (rt == "" and _looks_like_artifact(resource)):
            return Action.PUSH
        return Action.AUDIT
    if op in ("login", "logout"):
        return Action.AUTH
    return Action.AUDIT


def _looks_like_artifact(resource: str | None) -> bool:
    r = resource or ""
    return "/" in r and (":" in r or "@" in r)


def split_resource(
    resource: str | None, resource_type: str | None
) -> tuple[str | None, str | None, str | None]:
    """(repository, reference, digest) named by an audit resource, when it names any."""
    res = (resource or "").strip()
    rt = (resource_type or "").strip().lower()
    if not res:
        return None, None, None
    if rt == "repository":
        return res, None, None
    if rt not in _ARTIFACT_TYPES:
        return None, None, None  # project, user, robot, configuration, ...
    if "@" in res:
        repo, _, ref = res.partition("@")
        return (repo or None), (ref or None), (ref if ":" in ref else None)
    m = _DIGEST_REF.match(res)
    if m is not None:
        return m.group("repo"), m.group("ref"), m.group("ref")
    if ":" in res:
        repo, _, tag = res.rpartition(":")
        if rt == "" and "/" not in repo:
            return None, None, None
        return (repo or None), (tag or None), None
    if rt == "" and "/" not in res:
        return None, None, None  # a project name or a bare project id
    if rt == "":
        return res, None, None
    return res, None, None


def audit_event(
    *,
    event_id_: str,
    timestamp: datetime,
    operation: str,
    resource_type: str | None,
    resource: str | None,
    username: str | None,
    outcome: Outcome = Outcome.SUCCESS,
    message: str | None = None,
    raw: str = "",
    host: str | None = None,
    level: str | None = None,
    client_ip: str | None = None,
    user_agent: str | None = None,
    repeat: int = 1,
    log_file: str | None = None,
    log_offset: int | None = None,
) -> Event:
    """One audit record as an (uncounted) Event."""
    repo, ref, digest = split_resource(resource, resource_type)
    action = audit_action(operation, resource_type, resource)
    rt = (resource_type or "").strip()
    if message is None:
        message = " ".join(p for p in (operation, rt, resource or "") if p)
    return Event(
        id=event_id_,
        timestamp=timestamp,
        source=SOURCE,
        component=COMPONENT,
        action=action.value,
        outcome=outcome.value,
        tally=Tally.NONE.value,
        auth=AuthClass.NONE.value,
        repository=repo,
        reference=ref,
        digest=digest,
        user=username or None,
        client_ip=client_ip or None,
        user_agent=user_agent or None,
        level=level,
        message=message,
        host=host,
        repeat=repeat,
        raw=raw,
        log_file=log_file,
        log_offset=log_offset,
    )


# --- exports -----------------------------------------------------------------------

_HEADER_COLS = frozenset({"operation", "op_time"})
_TRUE = frozenset({"true", "t", "1", "yes", "y", "success", "succeeded"})
_FALSE = frozenset({"false", "f", "0", "no", "n", "failure", "failed", "fail"})
_MAX_TEXT = 4000


def sniff_file(head: bytes, path: str) -> bool:
    """Whether a file that starts with ``head`` is a Harbor audit export. Never raises."""
    try:
        data = head
        if data[:2] == b"\x1f\x8b":
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, 1 << 16)
        text = data.decode("utf-8", "replace").lstrip("\ufeff").lstrip()
        if not text:
            return False
        low = text.lower()
        if text[0] in "[{":
            return '"op_time"' in low and '"operation"' in low
        first = text.splitlines()[0]
        cols = {c.strip().strip('"').lower() for c in re.split(r"[\t,|;\s]+", first) if c.strip()}
        return _HEADER_COLS <= cols and bool(cols & {"username", "resource", "resource_type"})
    except Exception:  # noqa: BLE001 - a sniffer answers, it does not raise
        return False


def parse_file(path: str, fingerprint: str) -> Iterator[Event | Dropped]:
    """Yield one Event per audit record of an export at ``path``; bad records are Dropped.

    Never raises: an unreadable file yields one ``io_error`` drop; an unexpected failure
    ends the iteration with one ``unparsable`` drop.
    """
    try:
        yield from _parse_file(path, fingerprint)
    except Exception as exc:  # noqa: BLE001 - a parser must never raise on input
        yield Dropped(
            reason=DropReason.UNPARSABLE,
            text="",
            path=path,
            offset=0,
            detail=f"{type(exc).__name__}",
            fingerprint=fingerprint,
        )


def _parse_file(path: str, fingerprint: str) -> Iterator[Event | Dropped]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                yield _drop(DropReason.TRUNCATED, "", path, 0, fingerprint, "bad or truncated gzip")
                return
    except OSError as exc:
        yield _drop(DropReason.IO_ERROR, "", path, 0, fingerprint, f"{type(exc).__name__}")
        return
    text = data.decode("utf-8", "replace")
    text = text.removeprefix("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        return
    if stripped[0] in "[{":
        yield from _parse_json(text, path, fingerprint)
    else:
        yield from _parse_delimited(text, path, fingerprint)


def _drop(
    reason: DropReason, text: str, path: str, offset: int, fingerprint: str, detail: str = ""
) -> Dropped:
    return Dropped(
        reason=reason,
        text=text[:_MAX_TEXT],
        path=path,
        offset=offset,
        detail=detail,
        fingerprint=fingerprint,
    )


# the next record: a new line starting at column 0 (JSON Lines) or an object in an array
_RESYNC = re.compile(r"\n(?=\S)|(?:\n|,|\[)\s*(?=\{)")
_SKIP = " \t\r\n,]"


def _parse_json(text: str, path: str, fingerprint: str) -> Iterator[Event | Dropped]:
    """Concatenated JSON values (arrays of records or records), resyncing after garbage."""
    dec = json.JSONDecoder()
    n = len(text)
    pos = 0
    index = 0
    while pos < n:
        while pos < n and text[pos] in _SKIP:
            pos += 1
        if pos >= n:
            break
        try:
            value, end = dec.raw_decode(text, pos)
        except (ValueError, RecursionError):
            if text[pos] == "[":
                pos += 1  # a broken array: read its records one at a time
                continue
            m = _RESYNC.search(text, pos + 1)
            stop = m.end() if m is not None else n
            yield _drop(DropReason.UNPARSABLE, text[pos:stop], path, index, fingerprint, "not JSON")
            index += 1
            pos = stop
            continue
        items = value if isinstance(value, list) else [value]
        for rec in items:
            yield _record(rec, path, fingerprint, index, None)
            index += 1
        pos = end


def _parse_delimited(text: str, path: str, fingerprint: str) -> Iterator[Event | Dropped]:
    first_nl = text.find("\n")
    first = text if first_nl < 0 else text[:first_nl]
    delim = _delimiter(first, path)
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    header: list[str] | None = None
    index = 0
    for row in reader:
        if not row or all(not c.strip() for c in row):
            continue
        if header is None:
            header = _header(row)
            if not (_HEADER_COLS <= set(header)):
                yield _drop(
                    DropReason.UNPARSABLE,
                    delim.join(row),
                    path,
                    0,
                    fingerprint,
                    "no header with operation and op_time",
                )
                return
            continue
        line_text = delim.join(row)
        if _is_footer(row):
            continue
        cells = [c.strip() for c in row]
        if len(cells) != len(header):
            yield _drop(
                DropReason.BAD_FIELD,
                line_text,
                path,
                index,
                fingerprint,
                f"{len(cells)} fields, header has {len(header)}",
            )
            index += 1
            continue
        rec = {k: (None if v in ("", "\\N", "NULL") else v) for k, v in zip(header, cells)}
        yield _record(rec, path, fingerprint, index, line_text)
        index += 1


def _delimiter(first: str, path: str) -> str:
    counts = {d: first.count(d) for d in ("\t", ",", "|", ";")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] == 0:
        return "\t" if path.lower().endswith((".tsv", ".tsv.gz", ".tab")) else ","
    return best


def _header(row: list[str]) -> list[str]:
    cols: list[str] = []
    for cell in row:
        # column names never contain spaces; a cell holding two names is a copy artefact
        for part in cell.replace('"', " ").split():
            cols.append(part.strip().lower())
    return cols


def _is_footer(row: list[str]) -> bool:
    joined = "".join(row).strip()
    return bool(re.fullmatch(r"\(\d+ rows?\)", joined)) or bool(re.fullmatch(r"[-+|\s]+", joined))


def _s(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        s = v.strip()
        return s or None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"\s*\d{1,18}\s*", v):
        return int(v)
    return None


def _outcome(rec: Mapping[str, Any]) -> Outcome:
    for key in ("operation_result", "op_result", "is_successful"):
        if key not in rec:
            continue
        v = rec[key]
        if isinstance(v, bool):
            return Outcome.SUCCESS if v else Outcome.FAILURE
        if isinstance(v, (int, float)):
            return Outcome.SUCCESS if v else Outcome.FAILURE
        if isinstance(v, str):
            low = v.strip().lower()
            if low in _TRUE:
                return Outcome.SUCCESS
            if low in _FALSE:
                return Outcome.FAILURE
        return Outcome.UNKNOWN
    return Outcome.SUCCESS


def _record(
    rec: Any, path: str, fingerprint: str, index: int, line_text: str | None
) -> Event | Dropped:
    if line_text is None:
        try:
            line_text = json.dumps(rec, sort_keys=True, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            line_text = repr(rec)[:_MAX_TEXT]
    if not isinstance(rec, Mapping):
        return _drop(DropReason.BAD_FIELD, line_text, path, index, fingerprint, "not an object")
    rec = {str(k).strip().lower(): v for k, v in rec.items()}
    operation = _s(rec.get("operation"))
    if operation is None:
        return _drop(DropReason.BAD_FIELD, line_text, path, index, fingerprint, "no operation")
    ts = parse_audit_time(rec.get("op_time"))
    if ts is None and rec.get("op_time_unix"):
        ts = parse_audit_time(rec.get("op_time_unix"))
    if ts is None:
        return _drop(
            DropReason.BAD_FIELD,
            line_text,
            path,
            index,
            fingerprint,
            f"op_time {str(rec.get('op_time'))[:60]!r} is not a time",
        )
    rid = _int(rec.get("id"))
    if not rid:
        rid = _int(rec.get("log_id")) or None
    resource = _s(rec.get("resource"))
    resource_type = _s(rec.get("resource_type"))
    if resource is None and _s(rec.get("repo_name")):  # Harbor 1.x /api/logs
        tag = _s(rec.get("repo_tag"))
        resource = f"{_s(rec.get('repo_name'))}:{tag}" if tag else _s(rec.get("repo_name"))
        resource_type = resource_type or ("artifact" if tag else "repository")
    description = _s(rec.get("operation_description")) or _s(rec.get("op_desc"))
    try:
        from regwatch.redact import redact

        raw = redact(line_text)
    except ImportError:  # never store an unredacted line
        raw = ""
    # The same audit record exported twice (API JSON, a table dump, ...) must be one event:
    # its id comes from what the record says, not from the file it was found in.
    key = "|".join(
        str(v)
        for v in (rid, ts.replace(microsecond=0).isoformat(), operation, resource, _s(rec.get("username")))
    )
    eid = event_id("harbor-audit|" + key, 0, 2)
    return audit_event(
        event_id_=eid,
        timestamp=ts,
        operation=operation,
        resource_type=resource_type,
        resource=resource,
        username=_s(rec.get("username")),
        outcome=_outcome(rec),
        message=description,
        raw=raw,
        client_ip=_s(rec.get("client_ip")),
        user_agent=_s(rec.get("user_agent")),
        log_file=path,
        log_offset=index,
    )
