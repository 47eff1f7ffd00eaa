"""The records that cross regwatch's stage boundaries.

``RawLine`` (Source → Parser), ``Event`` and ``Dropped`` (Parser → Store), and the
small enums that keep labels bounded.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any


class Action(str, Enum):
    """What a record says happened, in registry terms."""

    PULL = "pull"  # GET manifest
    PULL_HEAD = "pull_head"  # HEAD manifest
    DELETE_LOOKUP = "delete_lookup"  # GET manifest that belongs to a delete-by-tag
    BLOB_PULL = "blob_pull"  # GET blob
    BLOB_HEAD = "blob_head"  # HEAD blob
    PUSH = "push"  # PUT manifest
    BLOB_UPLOAD_START = "blob_upload_start"  # POST uploads/
    BLOB_UPLOAD_CHUNK = "blob_upload_chunk"  # PATCH uploads/<uuid>
    BLOB_UPLOAD = "blob_upload"  # PUT uploads/<uuid>?digest= (completed upload)
    BLOB_UPLOAD_CANCEL = "blob_upload_cancel"  # DELETE uploads/<uuid>
    BLOB_UPLOAD_STATUS = "blob_upload_status"  # GET uploads/<uuid>
    BLOB_MOUNT = "blob_mount"  # POST uploads/?mount=&from=
    DELETE = "delete"  # DELETE manifest (or a Harbor audit delete)
    BLOB_DELETE = "blob_delete"  # DELETE blob
    TAGS_LIST = "tags_list"
    CATALOG = "catalog"
    REFERRERS = "referrers"
    BASE = "base"  # GET /v2/
    AUTH = "auth"  # an authentication outcome with no request of its own
    GC_MARK = "gc_mark"
    GC_DELETE_BLOB = "gc_delete_blob"
    GC_DELETE_MANIFEST = "gc_delete_manifest"
    GC_SUMMARY = "gc_summary"
    AUDIT = "audit"  # a Harbor audit record other than delete/pull/push
    TLS_ERROR = "tls_error"  # Go's "http: TLS handshake error from <ip>:<port>: ..."
    OTHER = "other"


class Outcome(str, Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class Tally(str, Enum):
    """The counting class of a record: each maps to one summary counter.

    The counting rules of domain.md section 2 decide it once, at ingest; the stores
    only group and sum.
    """

    PULL = "pull"
    PULL_FAILED = "pull_failed"
    PUSH = "push"
    PUSH_FAILED = "push_failed"
    DELETE = "delete"
    DELETE_FAILED = "delete_failed"
    BLOB_PULL = "blob_pull"  # bytes pulled
    BLOB_UPLOAD = "blob_upload"  # bytes pushed
    TLS_ERROR = "tls_error"  # a TLS handshake that failed (bad certificate, plain HTTP, scanner)
    NONE = "none"


class AuthClass(str, Enum):
    """How a request fared at the authentication gate."""

    NONE = "none"  # not an auth-relevant record
    CHALLENGE = "challenge"  # GET /v2/ → 401 with no credentials: normal
    ANONYMOUS_DENIAL = "anonymous_denial"  # denied because no usable credentials came
    AUTH_FAILURE = "auth_failure"  # presented credentials were rejected
    AUTH_SUCCESS = "auth_success"


class DropReason(str, Enum):
    """Why a line did not become an event. Bounded: safe as a metric label."""

    # unintentional: something is wrong with the input
    UNPARSABLE = "unparsable"  # looks like text, matches no known format
    BINARY = "binary"  # NUL bytes or mostly non-printable
    INVALID_UTF8 = "invalid_utf8"  # undecodable bytes (kept, decoded with replacement)
    TOO_LONG = "too_long"  # over the line length limit
    TRUNCATED = "truncated"  # truncated gzip / partial record at EOF
    BAD_FIELD = "bad_field"  # a known format with a value that cannot be read (e.g. time)
    IO_ERROR = "io_error"
    EMPTY_FILE = "empty_file"  # a file with no bytes at all
    # intentional: understood, but nothing to count
    MERGED = "merged"  # folded into another record of the same request
    NOISE = "noise"  # a known format with nothing to count (startup, debug, ...)
    BLANK = "blank"


INTENTIONAL = frozenset({DropReason.MERGED, DropReason.NOISE, DropReason.BLANK})


class NoiseKind(str, Enum):
    """What a known line with nothing to count is. Bounded: safe as a metric label."""

    REGISTRY_APP = "registry_app"  # logrus lines that are no request (startup, debug, ...)
    HARBOR_LOG = "harbor_log"  # Harbor logger lines of core, jobservice, registryctl, exporter
    JOB_LOG = "job_log"  # job output that counts nothing (GC and retention steps, scans, ...)
    STACK_TRACE = "stack_trace"  # Go panics and stack frames, one record per physical line
    CONTINUATION = "continuation"  # a later physical line of a multi-line record
    PARTIAL = "partial"  # a piece of a line that the runtime split (CRI P, json-file)
    GO_LOG = "go_log"  # Go standard library log lines other than TLS handshake errors
    NGINX_ERROR = "nginx_error"
    DATABASE = "database"  # harbor-db (PostgreSQL)
    REDIS = "redis"
    SCANNER = "scanner"  # trivy adapter, clair, notary
    PORTAL = "portal"
    LOG_COLLECTOR = "log_collector"  # Harbor's log container (rsyslog, logrotate)
    OTHER_PROGRAM = "other_program"  # a line of a program that is not a registry (a host syslog tag, a leveled or klog line)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class RawLine:
    """One logical line read from a source."""

    source: str  # the input's name (usually the path it came from)
    path: str
    text: str
    fingerprint: str  # identifies the file independent of its name (rotation-safe)
    offset: int  # byte offset of the line's start in the (decompressed) stream
    end: int = 0  # byte offset just after the line
    problem: DropReason | None = None  # set by the source for undecodable/oversized input
    component: str | None = None  # a hint from the source (e.g. harbor file name)


def event_id(fingerprint: str, offset: int, part: int = 0) -> str:
    """A deterministic id from where the record came from: replays map to the same id.

    It is a 48-bit hash of the source's fingerprint followed by the offset and part in
    fixed-width hex, so the ids of one log sort by position. A store can then tell from
    the id range of a batch that a file it holds cannot contain any of them (the usual
    case when a log is read forward), without reading that file's ids."""
    return f"{_source_key(fingerprint)}{offset:012x}{part:02x}"


@functools.lru_cache(maxsize=4096)
def _source_key(fingerprint: str) -> str:
    return hashlib.blake2b(fingerprint.encode(), digest_size=6).hexdigest()


def utc(ts: datetime) -> datetime:
    """Return ``ts`` as tz-aware UTC; a naive value is taken to be UTC already."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class Event:
    """One typed registry event. Times are tz-aware UTC; ``raw`` is already redacted."""

    id: str
    timestamp: datetime
    source: str  # log family: distribution, harbor, harbor-audit, webhook, custom
    component: str  # registry, core, proxy, jobservice, registryctl, portal, audit, gc, ...
    action: str = Action.OTHER.value
    outcome: str = Outcome.UNKNOWN.value
    tally: str = Tally.NONE.value
    auth: str = AuthClass.NONE.value
    repository: str | None = None
    reference: str | None = None  # tag or digest as requested
    digest: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    bytes: int | None = None
    duration_ms: float | None = None
    user: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    level: str | None = None
    message: str | None = None
    host: str | None = None
    repeat: int = 1  # rsyslog "message repeated N times" stands for N records
    raw: str = ""
    log_file: str | None = None
    log_offset: int | None = None

    def with_(self, **changes: Any) -> Event:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Event))


@dataclass(frozen=True, slots=True)
class Dropped:
    """A line that did not become an event, kept for inspection."""

    reason: DropReason
    text: str
    path: str = ""
    offset: int = 0
    detail: str = ""
    fingerprint: str = ""
    kind: str | None = None  # a NoiseKind value for NOISE drops, when known

    @property
    def intentional(self) -> bool:
        return self.reason in INTENTIONAL


@dataclass
class IngestStats:
    """Counters of one ingest run (what `regwatch ingest --json` prints)."""

    files: int = 0
    lines: int = 0
    events: int = 0
    duplicates: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    noise: dict[str, int] = field(default_factory=dict)  # NOISE drops by NoiseKind
    wrappers: dict[str, int] = field(default_factory=dict)  # lines by runtime envelope

    def drop(self, reason: DropReason, n: int = 1, kind: str | None = None) -> None:
        bucket = self.ignored if reason in INTENTIONAL else self.dropped
        bucket[reason.value] = bucket.get(reason.value, 0) + n
        if reason is DropReason.NOISE:
            k = kind or NoiseKind.OTHER.value
            self.noise[k] = self.noise.get(k, 0) + n

    def merge(self, other: IngestStats) -> None:
        """Add the line and drop counters of ``other`` (one block's) to these."""
        self.lines += other.lines
        for mine, theirs in (
            (self.dropped, other.dropped),
            (self.ignored, other.ignored),
            (self.noise, other.noise),
            (self.wrappers, other.wrappers),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "events": self.events,
            "duplicates": self.duplicates,
            "dropped": dict(sorted(self.dropped.items())),
            "ignored": dict(sorted(self.ignored.items())),
            "noise": dict(sorted(self.noise.items())),
            "wrappers": dict(sorted(self.wrappers.items())),
            "bytes_read": self.bytes_read,
        }
