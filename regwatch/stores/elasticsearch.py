"""The Elasticsearch store: events as ECS-style documents in daily indices.

Design (the reasoning and the numbers are in docs/scaling.md):

* **One index per UTC day of the event's own timestamp**, ``<prefix>-events-YYYY.MM.DD``,
  and ``_id`` = the event id, written with ``op_type=create``. The index is a pure
  function of the event, so a replay of the same event always reaches the same index
  and gets a 409 version conflict, which :meth:`ElasticsearchStore.write` counts as a
  duplicate. Data streams and rollover are deliberately not used: they route by the
  time of *writing* to the current backing index, so the same ``_id`` replayed after a
  rollover would land in a new backing index and be stored twice.
* **A composable index template** ``<prefix>-events`` made of the component templates
  ``<prefix>-events@settings`` and ``<prefix>-events@mappings`` (installed and versioned
  by the store) and ``<prefix>-events@custom`` (the operator's: ILM policy, shard count,
  replicas; optional). Mappings are explicit and ``dynamic: strict``.
* **Every Event round-trips exactly**: the ``_source`` is the JSON the store wrote,
  times are exact to the microsecond (``regwatch.timestamp_us``), ints stay ints (also
  beyond 64 bits: numeric fields use ``ignore_malformed``, so an out-of-range value is
  kept in ``_source`` but not indexed), non-finite floats are stored as strings, and
  over-long strings are kept but not indexed (``ignore_above``), so no Event is
  rejected by the mapping.

Field names follow ECS where ECS has a field (``@timestamp``, ``event.action``,
``event.outcome``, ``http.request.method``, ``http.response.status_code``, ``url.path``,
``user.name``, ``source.address``/``source.ip``, ``user_agent.original``, ...); the
regwatch-specific ones live under ``regwatch.``. :data:`FIELD_NAMES` is the full table.
"""

from __future__ import annotations

import hashlib
import importlib
import ipaddress
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from regwatch.errors import ConfigError, StoreError, StoreUnavailable
from regwatch.events import Event
from regwatch.stores.base import RECORD_KIND, Aggregation, Health, Query, Record, WriteResult, check_record

try:
    import elastic_transport
    from elasticsearch import (
        ApiError,
        AuthenticationException,
        AuthorizationException,
        Elasticsearch,
        UnsupportedProductError,
        helpers,
    )
except ImportError:  # pragma: no cover - the optional extra is missing
    Elasticsearch = None  # type: ignore[assignment,misc]

try:  # optional speed-up for building bulk bodies
    _orjson: Any = importlib.import_module("orjson")
except ImportError:
    _orjson = None

__all__ = ["FIELD_NAMES", "SCHEMA_VERSION", "ElasticsearchStore", "glob_to_query", "read_secret_file"]

log = logging.getLogger(__name__)

#: bump when the mappings or settings change; the store re-installs older templates
SCHEMA_VERSION = 1
ECS_VERSION = "8.17.0"

#: Lucene rejects a term longer than 32766 UTF-8 bytes; ``ignore_above`` counts UTF-16
#: units, and one unit is at most 3 UTF-8 bytes (a surrogate pair is 4 bytes for 2).
IGNORE_ABOVE = 32766 // 3
#: ``_id`` is limited to 512 bytes; longer (or empty) ids are replaced by a digest
MAX_ID_BYTES = 512
PAGE = 10_000  # hits per search page (index.max_result_window)
#: the first page is smaller: most audit answers are short, and a 10k-slot sort queue
#: per shard costs milliseconds even when nothing matches
FIRST_PAGE = 1_000
COMPOSITE_PAGE = 5_000  # buckets per composite-aggregation page
PIT_KEEP_ALIVE = "2m"
_MAX_LONG = 2**63 - 1
#: bulk item statuses retried with backoff (overload, a shard briefly unavailable)
_RETRY = frozenset({408, 429, 502, 503, 504})

#: Event field -> document field (flat dotted keys in ``_source``)
FIELD_NAMES: dict[str, str] = {
    "id": "event.id",
    "timestamp": "@timestamp",  # plus regwatch.timestamp_us, exact and sortable
    "source": "event.module",
    "component": "service.name",
    "action": "event.action",
    "outcome": "event.outcome",
    "tally": "regwatch.tally",
    "auth": "regwatch.auth",
    "repository": "regwatch.repository",
    "reference": "regwatch.reference",
    "digest": "regwatch.digest",
    "method": "http.request.method",
    "path": "url.path",
    "status": "http.response.status_code",
    "bytes": "regwatch.bytes",
    "duration_ms": "regwatch.duration_ms",
    "user": "user.name",
    "client_ip": "source.address",  # plus source.ip when the value is an IP address
    "user_agent": "user_agent.original",
    "request_id": "http.request.id",
    "error_code": "error.code",
    "level": "log.level",
    "message": "message",
    "host": "host.name",
    "repeat": "regwatch.repeat",
    "raw": "event.original",
    "log_file": "log.file.path",
    "log_offset": "log.offset",
}
TS_US = "regwatch.timestamp_us"
SOURCE_IP = "source.ip"

# fields copied as they are when not None (the rest are handled one by one)
_PLAIN = tuple(
    (attr, key)
    for attr, key in FIELD_NAMES.items()
    if attr not in {"id", "timestamp", "duration_ms", "client_ip", "raw", "repeat",
                    "source", "component", "action", "outcome", "tally", "auth"}
)
_FLOAT_STRINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_GLOB_SPECIAL = re.compile(r"[*?\[]")


# -- mappings ------------------------------------------------------------------------


def _kw(**extra: Any) -> dict[str, Any]:
    return {"type": "keyword", "ignore_above": IGNORE_ABOVE, **extra}


def _long() -> dict[str, Any]:
    return {"type": "long", "ignore_malformed": True}


def _obj(**props: Any) -> dict[str, Any]:
    return {"properties": props}


MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "date_detection": False,
    "_meta": {"managed_by": "regwatch", "schema_version": SCHEMA_VERSION, "ecs_version": ECS_VERSION},
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "event": _obj(
            id=_kw(),
            module=_kw(),
            action=_kw(),
            outcome=_kw(),
            # ECS: the original line is kept, not indexed (it is the largest field)
            original={"type": "keyword", "index": False, "doc_values": False},
        ),
        "service": _obj(name=_kw()),
        "http": _obj(
            request=_obj(method=_kw(), id=_kw()),
            response=_obj(status_code=_long()),
        ),
        "url": _obj(path=_kw()),
        "user": _obj(name=_kw()),
        "source": _obj(address=_kw(), ip={"type": "ip", "ignore_malformed": True}),
        "user_agent": _obj(original=_kw(fields={"text": {"type": "text"}})),
        "error": _obj(code=_kw()),
        "log": _obj(level=_kw(), offset=_long(), file=_obj(path=_kw())),
        "host": _obj(name=_kw()),
        "regwatch": _obj(
            timestamp_us={"type": "long"},
            tally=_kw(),
            auth=_kw(),
            repository=_kw(),
            reference=_kw(),
            digest=_kw(),
            bytes=_long(),
            duration_ms={"type": "double", "ignore_malformed": True},
            repeat=_long(),
        ),
    },
}

#: the records index (``<prefix>-records``): the data is the caller's, kept in _source only
RECORD_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"managed_by": "regwatch", "schema_version": SCHEMA_VERSION},
    "properties": {
        "kind": {"type": "keyword"},
        "key": {"type": "keyword"},
        "@timestamp": {"type": "date"},
        "timestamp_us": {"type": "long"},
        "data": {"type": "object", "enabled": False},
    },
}

#: query-model field -> document field, for filters and group-by
_GROUP_FIELDS = {
    "source": "event.module",
    "component": "service.name",
    "action": "event.action",
    "outcome": "event.outcome",
    "tally": "regwatch.tally",
    "auth": "regwatch.auth",
    "repository": "regwatch.repository",
    "reference": "regwatch.reference",
    "digest": "regwatch.digest",
    "user": "user.name",
    "client_ip": "source.address",
    "status": "http.response.status_code",
    "error_code": "error.code",
    "method": "http.request.method",
}


def settings(shards: int = 1) -> dict[str, Any]:
    # The codec stays the default (LZ4): measured, best_compression (zstd) saves ~20 % of
    # disk but makes fetching scattered hits (an audit search) ~4x slower; set it in
    # <prefix>-events@custom where disk matters more (docs/scaling.md).
    return {
        "index": {
            "number_of_shards": shards,
            # one replica as soon as there is a second node; green on a single node
            "auto_expand_replicas": "0-1",
        }
    }


# -- documents -----------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _doc_id(event_id: str) -> str:
    """The ``_id``: the event id, or a digest of it when Elasticsearch could not take it."""
    if event_id and (len(event_id) <= 128 or len(event_id.encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES):
        try:
            event_id.encode("utf-8")
            return event_id
        except UnicodeEncodeError:
            pass
    digest = hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"~sha256:{digest}"


def epoch_us(ts: datetime) -> int:
    """Microseconds since the Unix epoch of a datetime (naive is taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return (ts - _EPOCH) // _US


def to_document(ev: Event) -> dict[str, Any]:
    """The ``_source`` of an event (flat ECS-style keys; None fields are left out)."""
    ts = ev.timestamp
    if ts.tzinfo is not timezone.utc:
        ts = ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)
    doc: dict[str, Any] = {
        "@timestamp": ts.isoformat(),
        TS_US: (ts - _EPOCH) // _US,
        "event.id": ev.id,
        "event.module": ev.source,
        "service.name": ev.component,
        "event.action": ev.action,
        "event.outcome": ev.outcome,
        "regwatch.tally": ev.tally,
        "regwatch.auth": ev.auth,
        "regwatch.repeat": ev.repeat,
    }
    for attr, key in _PLAIN:
        value = getattr(ev, attr)
        if value is not None:
            doc[key] = value
    if ev.duration_ms is not None:
        d = ev.duration_ms
        # JSON has no NaN/Infinity; the double field ignores the string, _source keeps it
        doc["regwatch.duration_ms"] = d if math.isfinite(d) else repr(d).replace("inf", "Infinity").replace("nan", "NaN")
    if ev.client_ip is not None:
        doc["source.address"] = ev.client_ip
        if _is_ip(ev.client_ip):
            doc[SOURCE_IP] = ev.client_ip
    if ev.raw:
        doc["event.original"] = ev.raw
    return doc


def _flatten(src: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in src.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def from_document(src: Mapping[str, Any]) -> Event:
    """The Event a ``_source`` written by :func:`to_document` stands for."""
    if any(isinstance(v, Mapping) for v in src.values()):  # written by another tool
        src = _flatten(src)
    if TS_US in src:
        ts = _EPOCH + timedelta(microseconds=src[TS_US])
    else:
        ts = datetime.fromisoformat(src["@timestamp"]).astimezone(timezone.utc)
    kw: dict[str, Any] = {
        "id": src["event.id"],
        "timestamp": ts,
        "source": src["event.module"],
        "component": src["service.name"],
        "action": src["event.action"],
        "outcome": src["event.outcome"],
        "tally": src["regwatch.tally"],
        "auth": src["regwatch.auth"],
        "repeat": src.get("regwatch.repeat", 1),
        "raw": src.get("event.original", ""),
        "client_ip": src.get("source.address"),
    }
    for attr, key in _PLAIN:
        kw[attr] = src.get(key)
    d = src.get("regwatch.duration_ms")
    kw["duration_ms"] = _FLOAT_STRINGS.get(d, d) if isinstance(d, str) else d
    return Event(**kw)


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def _dumps(doc: dict[str, Any]) -> bytes:
    """Compact JSON for a document: orjson when installed (JSON was most of the cost of
    ``write`` on the client), the standard library otherwise and for what orjson refuses
    (integers beyond 64 bits, lone surrogates). Both give the same values back."""
    if _orjson is not None:
        try:
            return bytes(_orjson.dumps(doc))
        except TypeError:
            pass
    try:
        return _encode(doc).encode("utf-8")
    except UnicodeEncodeError:
        # a lone surrogate cannot be UTF-8; as a \\u escape Elasticsearch keeps it verbatim
        return _encode_ascii(doc).encode("ascii")


# -- queries -------------------------------------------------------------------------


def _lucene_escape(ch: str) -> str:
    # only ASCII punctuation is special in Lucene regexps; escaping a letter could turn
    # it into a class shorthand (\d, \w, \s)
    return "\\" + ch if ch.isascii() and not ch.isalnum() else ch


def _bracket(pat: str, i: int) -> tuple[str | None, int]:
    """Translate the ``[...]`` starting after index ``i - 1`` like fnmatch does.

    Returns the Lucene regexp piece (``None``: can never match) and the index after
    the bracket; an unterminated ``[`` is a literal. Mirrors ``fnmatch.translate``
    (including its handling of ``!``, a leading ``]``, hyphens and empty ranges).
    """
    n = len(pat)
    j = i
    if j < n and pat[j] == "!":
        j += 1
    if j < n and pat[j] == "]":
        j += 1
    while j < n and pat[j] != "]":
        j += 1
    if j >= n:
        return _lucene_escape("["), i
    # chunks split at range hyphens, exactly as fnmatch.translate splits them
    chunks: list[str] = []
    k = i + 2 if pat[i] == "!" else i + 1
    start = i
    if "-" in pat[i:j]:
        while True:
            k = pat.find("-", k, j)
            if k < 0:
                break
            chunks.append(pat[start:k])
            start = k + 1
            k = k + 3
        chunk = pat[start:j]
        if chunk:
            chunks.append(chunk)
        else:
            chunks[-1] += "-"
        for m in range(len(chunks) - 1, 0, -1):
            if chunks[m - 1][-1] > chunks[m][0]:
                chunks[m - 1] = chunks[m - 1][:-1] + chunks[m][1:]
                del chunks[m]
    else:
        chunks = [pat[i:j]]
    negate = False
    if chunks[0].startswith("!"):
        negate = True
        chunks[0] = chunks[0][1:]
    # each junction between chunks is a range from the last char before to the first after
    singles: list[str] = []
    ranges: list[tuple[str, str]] = []
    for m, chunk in enumerate(chunks):
        body = chunk
        if m > 0:
            ranges.append((chunks[m - 1][-1], chunk[0]))
            body = body[1:]
        if m < len(chunks) - 1:
            body = body[:-1]
        singles.extend(body)
    if not negate and not singles and not ranges:
        return None, j + 1  # empty set: never matches
    if negate and not singles and not ranges:
        return ".", j + 1  # negated empty set: any character
    parts = [_lucene_escape(c) for c in singles]
    parts += [f"{_lucene_escape(lo)}-{_lucene_escape(hi)}" for lo, hi in ranges]
    return "[" + ("^" if negate else "") + "".join(parts) + "]", j + 1


def glob_to_regexp(pattern: str) -> str | None:
    """A Lucene regexp equivalent to ``fnmatch.fnmatchcase(value, pattern)``; None = no match."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            piece, i = _bracket(pattern, i)
            if piece is None:
                return None
            out.append(piece)
        else:
            out.append(_lucene_escape(c))
    return "".join(out)


def glob_to_query(field: str, pattern: str) -> dict[str, Any]:
    """The query for ``Query.repo``: shell glob semantics (``*`` crosses ``/``)."""
    if not _GLOB_SPECIAL.search(pattern):
        return {"term": {field: pattern}}
    if not pattern.strip("*"):
        return {"exists": {"field": field}}  # any value, the empty string included
    head = pattern[:-1]
    if pattern.endswith("*") and not _GLOB_SPECIAL.search(head):
        return {"prefix": {field: head}}
    if "[" not in pattern:
        # wildcard syntax is the glob syntax, except that backslash escapes there
        return {"wildcard": {field: {"value": pattern.replace("\\", "\\\\")}}}
    regexp = glob_to_regexp(pattern)
    if regexp is None:
        return {"match_none": {}}
    return {"regexp": {field: {"value": regexp, "flags": "NONE"}}}


def _to_query(q: Query) -> dict[str, Any]:
    flt: list[dict[str, Any]] = []
    if q.since is not None or q.until is not None:
        rng: dict[str, int] = {}
        if q.since is not None:
            rng["gte"] = epoch_us(q.since)
        if q.until is not None:
            rng["lt"] = epoch_us(q.until)
        flt.append({"range": {TS_US: rng}})
    if q.repo is not None:
        flt.append(glob_to_query("regwatch.repository", q.repo))
    if q.user is not None:
        flt.append({"term": {"user.name": q.user}})
    if q.client_ip is not None:
        flt.append({"term": {"source.address": q.client_ip}})
    for attr, field in (("actions", "event.action"), ("tallies", "regwatch.tally"),
                        ("auth", "regwatch.auth"), ("sources", "event.module")):
        values = getattr(q, attr)
        if values is not None:
            flt.append({"terms": {field: sorted(values)}})
    if q.outcome is not None:
        flt.append({"term": {"event.outcome": q.outcome}})
    return {"bool": {"filter": flt}} if flt else {"match_all": {}}


# -- configuration -------------------------------------------------------------------


def read_secret_file(path: str | os.PathLike[str], what: str = "secret") -> str:
    """The stripped content of a secret file; raises ConfigError naming the file."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {str(path)!r}: {exc.strerror}") from exc
    if not value:
        raise ConfigError(f"the {what} file {str(path)!r} is empty")
    return value


_PREFIX_OK = re.compile(r"^[a-z0-9][a-z0-9._-]{0,200}$")


class ElasticsearchStore:
    """Events in an Elasticsearch cluster (9.x), one index per UTC day of the event.

    ``write`` is idempotent on ``Event.id``; ``search`` and ``aggregate`` answer the
    shared query model with the same results as the embedded store. Every method
    raises StoreUnavailable (connection, TLS, credentials, overload) with a one-line
    message saying what to do, or StoreError when Elasticsearch refuses a request.
    """

    def __init__(
        self,
        url: str,
        *,
        index_prefix: str = "regwatch",
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_file: str | None = None,
        verify_tls: bool = True,
        refresh: bool = False,
        request_timeout: float = 30,
        shards: int = 1,
        bulk_docs: int = 5000,
        bulk_bytes: int = 10 * 1024 * 1024,
        bulk_threads: int = 1,
        max_retries: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        install_template: bool = True,
    ) -> None:
        """Connect lazily (no request is made here); raises ConfigError for a bad value.

        ``refresh=True`` makes every write visible to search at once (tests). Tuning:
        ``shards`` (primaries per daily index, used when the template is installed),
        ``bulk_docs``/``bulk_bytes`` (per bulk request), ``bulk_threads`` (>1 uses
        ``helpers.parallel_bulk``), ``max_retries``/``initial_backoff``/``max_backoff``
        (429 and 502-504 items), ``install_template=False`` when an admin ran
        :meth:`setup` and the writer may not manage templates.
        """
        if Elasticsearch is None:
            raise ConfigError(
                "the elasticsearch client is not installed: pip install 'regwatch[elasticsearch]'"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"Elasticsearch URL {url!r} is not http(s)://host[:port]; "
                "e.g. --es http://127.0.0.1:9200 or REGWATCH_ES_URL"
            )
        if parts.username or parts.password:
            raise ConfigError(
                f"put Elasticsearch credentials in REGWATCH_ES_USERNAME/REGWATCH_ES_PASSWORD "
                f"or REGWATCH_ES_API_KEY, not in the URL {parts._replace(netloc=parts.hostname).geturl()!r}"
            )
        if not _PREFIX_OK.match(index_prefix):
            raise ConfigError(
                f"index prefix {index_prefix!r} is not a valid index name start: "
                "use lower-case letters, digits, '.', '_' and '-' (e.g. 'regwatch')"
            )
        if api_key is not None and basic_auth is not None:
            raise ConfigError("give either an API key or a username/password, not both")
        if ca_file is not None and not Path(ca_file).is_file():
            raise ConfigError(
                f"CA file {ca_file!r} does not exist; set REGWATCH_ES_CA_FILE (store.ca_file) "
                "to the PEM certificate of the CA that signed the cluster's certificate"
            )
        self.url = url.rstrip("/")
        self.index_prefix = index_prefix
        self.pattern = f"{index_prefix}-events-*"
        self.template_name = f"{index_prefix}-events"
        self.refresh_on_write = refresh
        self.request_timeout = request_timeout
        self.shards = shards
        self.bulk_docs = bulk_docs
        self.bulk_bytes = bulk_bytes
        self.bulk_threads = bulk_threads
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.install_template = install_template
        self._auth_kind = "api_key" if api_key else "basic" if basic_auth else None
        self._username = basic_auth[0] if basic_auth else None
        self._ca_file = ca_file
        self._setup_done = False
        self._lock = threading.Lock()
        self._index_names: dict[date, str] = {}
        self._sleep: Callable[[float], None] = time.sleep
        tls: dict[str, Any] = {"ca_certs": ca_file} if ca_file else {}
        self._es = Elasticsearch(
            self.url,
            api_key=api_key,
            basic_auth=basic_auth,
            verify_certs=verify_tls,
            ssl_show_warn=verify_tls,
            request_timeout=request_timeout,
            # retries of connection errors are safe: every write is create-by-_id
            max_retries=3,
            retry_on_timeout=True,
            **tls,
        )

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        environ: Mapping[str, str] = os.environ,
        **options: Any,
    ) -> ElasticsearchStore:
        """A store configured from ``REGWATCH_ES_*`` variables; ``options`` override them.

        Reads REGWATCH_ES_URL (unless ``url`` is given), REGWATCH_ES_API_KEY or
        REGWATCH_ES_API_KEY_FILE, REGWATCH_ES_USERNAME with REGWATCH_ES_PASSWORD or
        REGWATCH_ES_PASSWORD_FILE, REGWATCH_ES_CA_FILE and REGWATCH_ES_INDEX_PREFIX.
        Raises ConfigError when a variable is missing, contradictory or unreadable.
        """
        url = url or environ.get("REGWATCH_ES_URL")
        if not url:
            raise ConfigError(
                "no Elasticsearch URL: pass --es URL or set REGWATCH_ES_URL "
                "(e.g. http://127.0.0.1:9200)"
            )
        kw: dict[str, Any] = {}
        api_key = environ.get("REGWATCH_ES_API_KEY")
        if environ.get("REGWATCH_ES_API_KEY_FILE"):
            if api_key:
                raise ConfigError("set REGWATCH_ES_API_KEY or REGWATCH_ES_API_KEY_FILE, not both")
            api_key = read_secret_file(environ["REGWATCH_ES_API_KEY_FILE"], "API key")
        user = environ.get("REGWATCH_ES_USERNAME")
        password = environ.get("REGWATCH_ES_PASSWORD")
        if environ.get("REGWATCH_ES_PASSWORD_FILE"):
            if password:
                raise ConfigError("set REGWATCH_ES_PASSWORD or REGWATCH_ES_PASSWORD_FILE, not both")
            password = read_secret_file(environ["REGWATCH_ES_PASSWORD_FILE"], "password")
        if user and not password:
            raise ConfigError(
                "REGWATCH_ES_USERNAME is set but neither REGWATCH_ES_PASSWORD nor "
                "REGWATCH_ES_PASSWORD_FILE is"
            )
        if password and not user:
            raise ConfigError("a password is set but REGWATCH_ES_USERNAME is not")
        if api_key and user:
            raise ConfigError(
                "set either REGWATCH_ES_API_KEY(_FILE) or REGWATCH_ES_USERNAME/PASSWORD, not both"
            )
        if api_key:
            kw["api_key"] = api_key
        if user and password:
            kw["basic_auth"] = (user, password)
        if environ.get("REGWATCH_ES_CA_FILE"):
            kw["ca_file"] = environ["REGWATCH_ES_CA_FILE"]
        if environ.get("REGWATCH_ES_INDEX_PREFIX"):
            kw["index_prefix"] = environ["REGWATCH_ES_INDEX_PREFIX"]
        kw.update(options)
        return cls(url, **kw)

    # -- plumbing --------------------------------------------------------------------

    def __enter__(self) -> ElasticsearchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ElasticsearchStore({self.url!r}, index_prefix={self.index_prefix!r})"

    @property
    def client(self) -> Elasticsearch:
        """The underlying client (for operations outside the Store protocol)."""
        return self._es

    def index_for(self, ts: datetime) -> str:
        """The daily index an event with timestamp ``ts`` is written to."""
        if ts.tzinfo is not None and ts.tzinfo is not timezone.utc:
            ts = ts.astimezone(timezone.utc)
        day = ts.date()
        name = self._index_names.get(day)
        if name is None:
            name = f"{self.index_prefix}-events-{day.year:04d}.{day.month:02d}.{day.day:02d}"
            self._index_names[day] = name
        return name

    def _who(self) -> str:
        if self._auth_kind == "api_key":
            return "the API key"
        if self._auth_kind == "basic":
            return f"user {self._username!r}"
        return "the anonymous user"

    def _explain(self, exc: Exception, doing: str) -> StoreError:
        """One actionable line for a failed request (StoreUnavailable when retryable)."""
        url = self.url
        if isinstance(exc, elastic_transport.TlsError):
            if "wrong version number" in _chain_text(exc).lower():
                return StoreUnavailable(
                    f"{url} does not speak TLS: use http:// instead of https:// in REGWATCH_ES_URL"
                )
            hint = (
                f"check that REGWATCH_ES_CA_FILE ({self._ca_file!r}) is the CA that signed it"
                if self._ca_file
                else "set REGWATCH_ES_CA_FILE (store.ca_file) to the PEM file of the cluster's CA"
            )
            return StoreUnavailable(f"TLS verification failed for {url}: {hint} ({_short(exc)})")
        if isinstance(exc, elastic_transport.ConnectionTimeout):
            return StoreUnavailable(
                f"{url} did not answer within {self.request_timeout:g}s while {doing}: "
                "check the cluster's health and load, or raise request_timeout"
            )
        if isinstance(exc, elastic_transport.ConnectionError):
            text = _chain_text(exc).lower()
            if "refused" in text:
                return StoreUnavailable(
                    f"connection refused at {url}: start Elasticsearch or set REGWATCH_ES_URL"
                )
            if "name or service not known" in text or "resolve" in text or "nodename nor servname" in text:
                return StoreUnavailable(f"cannot resolve the host of {url}: check REGWATCH_ES_URL")
            if "ssl" in text or "wrong version number" in text or "tls" in text:
                return StoreUnavailable(
                    f"TLS problem talking to {url} ({_short(exc)}): use https:// for a TLS "
                    "cluster and http:// otherwise, and REGWATCH_ES_CA_FILE for its CA"
                )
            if "remote end closed" in text or "connection reset" in text or "connection aborted" in text:
                return StoreUnavailable(
                    f"{url} closed the connection while {doing}: if the cluster uses TLS, "
                    "the URL must start with https://"
                )
            return StoreUnavailable(f"cannot connect to {url} while {doing}: {_short(exc)}")
        if isinstance(exc, AuthenticationException):
            if self._auth_kind == "api_key":
                hint = "set REGWATCH_ES_API_KEY (or REGWATCH_ES_API_KEY_FILE) to a valid, unexpired key"
            elif self._auth_kind == "basic":
                hint = (
                    f"check REGWATCH_ES_USERNAME ({self._username!r}) and REGWATCH_ES_PASSWORD "
                    "(or REGWATCH_ES_PASSWORD_FILE)"
                )
            else:
                hint = (
                    "set REGWATCH_ES_API_KEY (or REGWATCH_ES_API_KEY_FILE), or "
                    "REGWATCH_ES_USERNAME and REGWATCH_ES_PASSWORD (or REGWATCH_ES_PASSWORD_FILE)"
                )
            return StoreUnavailable(f"authentication failed at {url} (401): {hint}")
        if isinstance(exc, AuthorizationException):
            return StoreUnavailable(
                f"{self._who()} lacks a privilege for {doing} at {url} (403: {_reason(exc)}): grant the cluster "
                f"privileges monitor and manage_index_templates and the index privileges "
                f"create_doc, create_index, read and view_index_metadata on {self.pattern}"
            )
        if isinstance(exc, UnsupportedProductError):
            return StoreError(f"{url} is not an Elasticsearch 8/9 cluster: {_short(exc)}")
        if isinstance(exc, ApiError):
            status = exc.status_code
            if status == 429 or status >= 500:
                return StoreUnavailable(
                    f"Elasticsearch at {url} is overloaded or unavailable while {doing} "
                    f"({status}: {_reason(exc)}); it will be retried"
                )
            return StoreError(f"Elasticsearch at {url} refused {doing} ({status}: {_reason(exc)})")
        if isinstance(exc, elastic_transport.TransportError):
            return StoreUnavailable(f"cannot talk to {url} while {doing}: {_short(exc)}")
        return StoreError(f"unexpected error while {doing} at {url}: {exc!r}")

    def _call(self, doing: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except (ApiError, elastic_transport.TransportError) as exc:
            raise self._explain(exc, doing) from exc

    # -- setup -----------------------------------------------------------------------

    def setup(self) -> None:
        """Install (or upgrade) the component and index templates; idempotent.

        Needs the ``manage_index_templates`` cluster privilege. A template whose
        version is newer than this code's is left alone.
        """
        es = self._es
        name = self.template_name
        try:
            current = es.options(ignore_status=404).indices.get_index_template(name=name)
        except (ApiError, elastic_transport.TransportError) as exc:
            raise self._explain(exc, "reading the index template") from exc
        for t in current.get("index_templates", []) if current.meta.status == 200 else []:
            if (t["index_template"].get("version") or 0) >= SCHEMA_VERSION:
                return
        meta = {"managed_by": "regwatch", "schema_version": SCHEMA_VERSION}
        self._call("installing the index template", es.cluster.put_component_template,
                   name=f"{name}@settings", template={"settings": settings(self.shards)},
                   version=SCHEMA_VERSION, meta=meta)
        self._call("installing the index template", es.cluster.put_component_template,
                   name=f"{name}@mappings", template={"mappings": MAPPINGS},
                   version=SCHEMA_VERSION, meta=meta)
        self._call("installing the index template", es.indices.put_index_template,
                   name=name, index_patterns=[self.pattern], priority=200,
                   composed_of=[f"{name}@settings", f"{name}@mappings", f"{name}@custom"],
                   ignore_missing_component_templates=[f"{name}@custom"],
                   version=SCHEMA_VERSION, meta=meta)

    def _ensure_setup(self) -> None:
        if self._setup_done or not self.install_template:
            return
        with self._lock:
            if not self._setup_done:
                self.setup()
                self._setup_done = True

    # -- write -----------------------------------------------------------------------

    def _actions(self, events: Sequence[Event], positions: Iterable[int], op: str = "create") -> Iterator[tuple[dict[str, Any], bytes]]:
        for pos in positions:
            ev = events[pos]
            header = {op: {"_index": self.index_for(ev.timestamp), "_id": _doc_id(ev.id)}}
            yield header, _dumps(to_document(ev))

    def _bulk(self, actions: Iterator[Any]) -> Iterable[tuple[bool, dict[str, Any]]]:
        """Send (header, body) pairs through the client's bulk helpers, one result each,
        in order."""
        kw: dict[str, Any] = {
            "chunk_size": self.bulk_docs,
            "max_chunk_bytes": self.bulk_bytes,
            "expand_action_callback": lambda a: a,  # already (header, serialized body)
            "raise_on_error": False,
            "raise_on_exception": False,
        }
        if self.refresh_on_write:
            kw["refresh"] = True
        if self.bulk_threads > 1:
            return helpers.parallel_bulk(self._es, actions, thread_count=self.bulk_threads, **kw)
        # retries are ours (below): the helper's would reorder the results
        return helpers.streaming_bulk(self._es, actions, max_retries=0, **kw)

    def replace(self, events: Sequence[Event]) -> WriteResult:
        """Store events, each replacing a stored event with its id (an ``index`` bulk
        operation instead of ``create``): a record built again from lines read again,
        which a later line changed. ``written`` counts the events that were not stored
        before, ``duplicates`` the ones replaced. An event keeps its timestamp, so it
        lands in the daily index that holds the old one."""
        return self.write(events, _op="index")

    def write(self, events: Sequence[Event], _op: str = "create") -> WriteResult:
        """Bulk-create the events (``_id`` = event id) in their daily indices.

        A 409 conflict is a duplicate (already stored); a document Elasticsearch
        refuses (400, 413, a persistent 500) is returned in ``rejected`` with the reason
        while the rest of the batch is stored; 429 and 502-504 are retried with
        exponential backoff. Raises StoreUnavailable when the cluster still cannot take
        part of the batch after the retries, or for connection, TLS or permission
        problems; writing the same batch again is then safe.
        """
        if not events:
            return WriteResult()
        self._ensure_setup()
        written = duplicates = 0
        rejected: list[tuple[Event, str]] = []
        accepted: list[str] = []
        pending: list[int] = list(range(len(events)))
        attempt = 0
        while pending:
            retry: list[tuple[int, int, str]] = []
            results = self._bulk(self._actions(events, pending, _op))
            try:
                for pos, (ok, item) in zip(pending, results, strict=True):
                    info = next(iter(item.values()))
                    status = info.get("status", 500)
                    if ok and _op == "index" and info.get("result") == "updated":
                        duplicates += 1  # replaced
                    elif ok:
                        written += 1
                        accepted.append(events[pos].id)  # _id may be a digest of it (_doc_id)
                    elif status == 409:
                        duplicates += 1
                    elif status in _RETRY or (status == 500 and attempt < self.max_retries):
                        retry.append((pos, status, _item_reason(info)))
                    elif status in (401, 403, 404):
                        # credentials, privileges, a write block (e.g. the disk flood-stage
                        # watermark) or auto-create disabled: not the document's fault
                        exc = info.get("exception")  # set when the whole request failed
                        if isinstance(exc, ApiError):
                            raise self._explain(exc, "writing events")
                        raise StoreUnavailable(
                            f"Elasticsearch at {self.url} refused writes to {info.get('_index')!r} "
                            f"({status}: {_item_reason(info)}); {written} of {len(events)} events "
                            "were stored, writing the batch again is safe"
                        )
                    else:
                        rejected.append((events[pos], f"{status} {_item_reason(info)}"))
            except elastic_transport.TransportError as exc:
                raise self._explain(exc, "writing events") from exc
            finally:
                # stop parallel_bulk's pool now rather than when the generator is collected
                close = getattr(results, "close", None)
                if close is not None:
                    close()
            if not retry:
                break
            attempt += 1
            if attempt > self.max_retries:
                pos, status, reason = retry[0]
                raise StoreUnavailable(
                    f"Elasticsearch at {self.url} still refuses {len(retry)} of {len(events)} "
                    f"events after {self.max_retries} retries ({status}: {reason}); the others "
                    "are stored and writing the batch again is safe"
                )
            delay = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
            log.warning("retrying %d events in %.1fs after %s", len(retry), delay, retry[0][1])
            self._sleep(delay)
            pending = [pos for pos, _, _ in retry]
        return WriteResult(written=written, duplicates=duplicates, rejected=tuple(rejected), accepted=tuple(accepted))

    def refresh(self) -> None:
        """Make every write so far visible to search (tests; normally not needed)."""
        self._call("refreshing", self._es.indices.refresh, index=self.pattern,
                   ignore_unavailable=True, allow_no_indices=True)

    # -- read ------------------------------------------------------------------------

    def _search(self, doing: str, **body: Any) -> dict[str, Any]:
        resp = self._call(doing, self._es.search, allow_partial_search_results=False, **body)
        shards = resp.get("_shards", {})
        if shards.get("failed"):
            reason = (shards.get("failures") or [{}])[0].get("reason", {})
            raise StoreUnavailable(
                f"{shards['failed']} shard(s) failed while {doing} at {self.url}: "
                f"{reason.get('type')}: {reason.get('reason')}"
            )
        return dict(resp.body)

    def search(self, query: Query) -> list[Event]:
        """Events matching ``query`` ordered by (timestamp, id), or reversed with
        ``newest_first``, at most ``limit``. Pages with search_after over a point in
        time, so any number of events can be returned. Raises StoreUnavailable/StoreError.
        """
        limit = query.limit
        if limit is not None and limit <= 0:
            return []
        order = "desc" if query.newest_first else "asc"
        sort: list[dict[str, Any]] = [{TS_US: order}, {"event.id": order}]
        es_query = _to_query(query)
        size = min(PAGE, limit) if limit is not None else FIRST_PAGE
        resp = self._search("searching events", index=self.pattern, query=es_query, sort=sort,
                            size=size, track_total_hits=False, ignore_unavailable=True,
                            allow_no_indices=True)
        hits = resp["hits"]["hits"]
        out = [from_document(h["_source"]) for h in hits]
        if len(hits) < size or (limit is not None and len(out) >= limit):
            return out
        # More than a page: continue over a point in time, from the last (ts, id) seen.
        # (timestamp, id) is unique (the index is a function of the timestamp, the _id
        # of the id), so the implicit _shard_doc tiebreaker only needs a bound.
        last = hits[-1]["sort"]
        after = [last[0], last[1], _MAX_LONG if order == "asc" else 0]
        pit = self._call("searching events", self._es.open_point_in_time, index=self.pattern,
                         keep_alive=PIT_KEEP_ALIVE, ignore_unavailable=True)
        pit_id = pit["id"]
        try:
            while limit is None or len(out) < limit:
                size = PAGE if limit is None else min(PAGE, limit - len(out))
                resp = self._search("searching events", pit={"id": pit_id, "keep_alive": PIT_KEEP_ALIVE},
                                    query=es_query, sort=[*sort, {"_shard_doc": order}], size=size,
                                    search_after=after, track_total_hits=False)
                pit_id = resp.get("pit_id", pit_id)
                hits = resp["hits"]["hits"]
                out.extend(from_document(h["_source"]) for h in hits)
                if len(hits) < size:
                    break
                after = hits[-1]["sort"]
        finally:
            try:
                self._es.close_point_in_time(id=pit_id)
            except (ApiError, elastic_transport.TransportError):
                pass  # it expires by itself
        return out

    def aggregate(self, aggregation: Aggregation) -> list[dict[str, Any]]:
        """Rows of the group fields plus ``count`` (sum of repeat) and ``bytes`` (sum of
        bytes), ordered by the group values (None last); groups whose count is 0 are
        left out, like the embedded store. ``query.limit``/``newest_first`` do not apply.

        Sums are exact while a group's total stays below 2**53 (Elasticsearch sums in
        double precision). Raises StoreUnavailable/StoreError.
        """
        es_query = _to_query(aggregation.query)
        sums = {"count": {"sum": {"field": "regwatch.repeat"}},
                "bytes": {"sum": {"field": "regwatch.bytes"}}}
        common = {"index": self.pattern, "query": es_query, "size": 0,
                  "ignore_unavailable": True, "allow_no_indices": True}
        if not aggregation.group_by:
            resp = self._search("aggregating events", aggs=sums, track_total_hits=True, **common)
            aggs = resp.get("aggregations")
            if not aggs or not int(aggs["count"]["value"]):
                return []
            return [{"count": int(aggs["count"]["value"]), "bytes": int(aggs["bytes"]["value"])}]
        sources = [
            {g: {"terms": {"field": _GROUP_FIELDS[g], "missing_bucket": True, "missing_order": "last"}}}
            for g in aggregation.group_by
        ]
        rows: list[dict[str, Any]] = []
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": COMPOSITE_PAGE, "sources": sources}
            if after is not None:
                composite["after"] = after
            resp = self._search("aggregating events", track_total_hits=False,
                                aggs={"g": {"composite": composite, "aggs": sums}}, **common)
            agg = (resp.get("aggregations") or {}).get("g")
            if not agg:
                break
            for b in agg["buckets"]:
                count = int(b["count"]["value"])
                if count:
                    rows.append({**b["key"], "count": count, "bytes": int(b["bytes"]["value"])})
            after = agg.get("after_key")
            if after is None or len(agg["buckets"]) < COMPOSITE_PAGE:
                break
        return rows

    def count(self) -> int:
        """The number of stored events (documents)."""
        resp = self._call("counting events", self._es.count, index=self.pattern,
                          ignore_unavailable=True, allow_no_indices=True)
        return int(resp["count"])

    # -- operations ------------------------------------------------------------------

    def indices(self) -> list[str]:
        """The names of this store's daily indices, oldest first."""
        resp = self._call("listing indices", self._es.indices.get, index=self.pattern,
                          ignore_unavailable=True, allow_no_indices=True,
                          expand_wildcards="open,closed", filter_path="*.settings.index.uuid")
        return sorted(resp.body or {})

    def prune(self, older_than: timedelta, *, now: datetime | None = None) -> list[str]:
        """Delete the daily indices whose whole day is older than ``now - older_than``.

        Retention without ILM (the node's distribution may not have it); returns the
        deleted index names. ``now`` defaults to the wall clock (inject a Clock's now).
        """
        now = now or datetime.now(timezone.utc)
        cutoff = (now - older_than).astimezone(timezone.utc).date()
        head = f"{self.index_prefix}-events-"
        old = []
        for name in self.indices():
            try:
                day = datetime.strptime(name[len(head):], "%Y.%m.%d").date()
            except ValueError:
                continue
            if day < cutoff:
                old.append(name)
        for i in range(0, len(old), 50):  # keep URLs short
            self._call("deleting old indices", self._es.indices.delete, index=",".join(old[i:i + 50]))
        return old

    def healthcheck(self) -> Health:
        """Check that the cluster answers and these credentials may use it.

        Raises StoreUnavailable with a one-line message saying what to do (start the
        server, set the URL, the credentials or the CA file). A red cluster gives
        ``Health(ok=False)``.
        """
        doing = "checking the cluster health"
        health = self._call(doing, self._es.cluster.health, timeout="5s")
        nodes = self._call(doing, self._es.nodes.info, node_id="_local", metric="_none",
                           filter_path="nodes.*.version")
        versions = sorted({n.get("version", "?") for n in (nodes.get("nodes") or {}).values()})
        events = self._call("counting events", self._es.count, index=self.pattern,
                            ignore_unavailable=True, allow_no_indices=True)["count"]
        status = health["status"]
        detail = (f"Elasticsearch {'/'.join(versions) or '?'} at {self.url}: cluster "
                  f"{health['cluster_name']!r} is {status}, {health['number_of_nodes']} node(s)")
        if status == "red":
            return Health(ok=False, detail=detail + f", {health['unassigned_shards']} unassigned "
                          "shard(s): see GET _cluster/allocation/explain", events=int(events))
        return Health(ok=True, detail=detail, events=int(events))

    def close(self) -> None:
        self._es.close()

    # -- records ---------------------------------------------------------------------
    # Records (storage samples, capacity-action outcomes, report runs) live in one index
    # of their own, ``<prefix>-records``, with ``_id`` = ``kind:key``: putting the same
    # (kind, key) again overwrites the document, so a retried job doubles nothing. The
    # data is kept in ``_source`` only (not indexed: its shape is the caller's).

    @property
    def records_index(self) -> str:
        return f"{self.index_prefix}-records"

    def _ensure_records_index(self) -> None:
        if getattr(self, "_records_ready", False):
            return
        es = self._es
        try:
            resp = es.options(ignore_status=400).indices.create(
                index=self.records_index, mappings=RECORD_MAPPINGS,
                settings={"index": {"number_of_shards": 1, "number_of_replicas": 0, "auto_expand_replicas": "0-1"}},
            )
        except (ApiError, elastic_transport.TransportError) as exc:
            raise self._explain(exc, "creating the records index") from exc
        if resp.meta.status == 400 and "resource_already_exists" not in json.dumps(resp.body):
            raise StoreError(f"Elasticsearch at {self.url} refused creating {self.records_index!r}: {resp.body}")
        self._records_ready = True

    def put_records(self, records: Sequence[Record]) -> int:
        """Index records (``_id`` = kind:key, replacing an earlier one). Nothing is sent
        when one record is bad (StoreError names it); StoreUnavailable when the cluster
        cannot take them (putting them again is safe)."""
        if not records:
            return 0
        for rec in records:
            why = check_record(rec)
            if why is not None:
                raise StoreError(why)
        latest: dict[tuple[str, str], Record] = {}
        for rec in records:
            latest[(rec.kind, rec.key)] = rec
        actions: list[Any] = []  # (header, serialized body) pairs
        for (kind, key), rec in latest.items():
            ts = rec.timestamp.astimezone(timezone.utc)
            body = {"kind": kind, "key": key, "@timestamp": ts.isoformat(), "timestamp_us": epoch_us(ts),
                    "data": dict(rec.data)}
            actions.append(({"index": {"_index": self.records_index, "_id": _doc_id(f"{kind}:{key}")}}, _dumps(body)))
        self._ensure_records_index()
        written = 0
        try:
            # refresh: a job reads its own records back at once (cooldowns, due reports)
            kw: dict[str, Any] = {
                "chunk_size": self.bulk_docs, "max_chunk_bytes": self.bulk_bytes,
                "expand_action_callback": lambda a: a,  # already (header, serialized body)
                "raise_on_error": False, "raise_on_exception": False, "max_retries": self.max_retries,
                "initial_backoff": self.initial_backoff, "max_backoff": self.max_backoff, "refresh": True,
            }
            for ok, item in helpers.streaming_bulk(self._es, iter(actions), **kw):
                info = next(iter(item.values()))
                if ok:
                    written += 1
                    continue
                exc = info.get("exception")
                if isinstance(exc, (ApiError, elastic_transport.TransportError)):
                    raise self._explain(exc, "writing records")
                status = info.get("status", 500)
                err = (StoreUnavailable if status in _RETRY or status >= 500 or status in (401, 403) else StoreError)
                raise err(
                    f"Elasticsearch at {self.url} refused a record in {self.records_index!r} "
                    f"({status}: {_item_reason(info)}); {written} of {len(actions)} were stored, "
                    "putting them again is safe"
                )
        except elastic_transport.TransportError as exc:
            raise self._explain(exc, "writing records") from exc
        return written

    def get_records(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        key_prefix: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Record]:
        """Records of ``kind`` with since <= timestamp < until, ordered by (timestamp,
        key) or reversed, at most ``limit``; pages with search_after on (time, key)."""
        if not RECORD_KIND.fullmatch(kind):
            raise StoreError(f"record kind {kind!r} is not lower-case letters and '_' (e.g. 'storage_sample')")
        if limit is not None and limit <= 0:
            return []
        filters: list[dict[str, Any]] = [{"term": {"kind": kind}}]
        rng: dict[str, int] = {}
        if since is not None:
            rng["gte"] = epoch_us(since)
        if until is not None:
            rng["lt"] = epoch_us(until)
        if rng:
            filters.append({"range": {"timestamp_us": rng}})
        if key_prefix is not None:
            filters.append({"prefix": {"key": key_prefix}})
        order = "desc" if newest_first else "asc"
        sort = [{"timestamp_us": order}, {"key": order}]
        out: list[Record] = []
        after: list[Any] | None = None
        while limit is None or len(out) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(out))
            extra: dict[str, Any] = {"search_after": after} if after is not None else {}
            resp = self._search("reading records", index=self.records_index, query={"bool": {"filter": filters}},
                                sort=sort, size=size, track_total_hits=False, ignore_unavailable=True,
                                allow_no_indices=True, **extra)
            hits = resp["hits"]["hits"]
            for h in hits:
                src = h["_source"]
                us = int(src["timestamp_us"])
                out.append(Record(src["kind"], src["key"], _EPOCH + timedelta(microseconds=us), src.get("data") or {}))
            if len(hits) < size:
                break
            after = hits[-1]["sort"]
        return out


def _chain_text(exc: BaseException) -> str:
    """The messages of an exception and its causes (the transport's str() is terse)."""
    parts: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(str(getattr(cur, "message", "") or cur))
        cur = cur.__cause__ or cur.__context__
    return " <- ".join(parts)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def _reason(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error")
    if isinstance(err, dict):
        return f"{err.get('type')}: {err.get('reason')}"
    return _short(exc)


def _item_reason(info: Mapping[str, Any]) -> str:
    """One line from a bulk item's error, with its innermost cause."""
    err = info.get("error")
    if isinstance(err, dict):
        text = f"{err.get('type')}: {err.get('reason')}"
        cause = err.get("caused_by")
        while isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
            cause = cause.get("caused_by")
    else:
        text = str(err)
    text = text.replace("\n", " ")
    return text if len(text) <= 1000 else text[:997] + "..."
