"""Registry webhooks: parse Distribution and Harbor notifications, receive them over HTTP,
and join them to log events to attribute requests to users.

Distribution 2.8 logs the user of a request only when it failed; its notifications
(``notifications.endpoints`` in the registry config) carry ``actor.name``, the target
repository, digest and tag, and the request id of every successful push, pull, mount and
delete. Harbor's project webhooks carry the operator of artifact pushes, pulls and
deletes, plus scan, quota and replication outcomes.

The pieces, each usable alone:

- :func:`parse_distribution` and :func:`parse_harbor`: a request body → events, or
  :class:`WebhookError` with a short reason. Every webhook event has tally ``none`` and
  auth ``none``: the same requests are already counted from the logs, and a notification
  is attribution, not a second count (docs/counting.md, "Webhooks").
- :class:`WebhookReceiver`: a small HTTP endpoint (stdlib ``ThreadingHTTPServer``,
  loopback by default) that checks a shared secret, bounds the body, parses, drops
  redeliveries it has already seen and hands new events to a sink.
- :func:`attribute` (events) and :func:`attribute_rows` (``audit.delete_row`` rows):
  fill a missing user from the webhook event with the same request id, else the same
  repository and digest a few seconds apart. :func:`attributed_deletes` is the whole
  ``audit deletes`` query with attribution.

Event ids are derived from the notification's own identity (Distribution's event id,
a CloudEvents id, or the content of a Harbor default-format payload), so a redelivery
maps to the same id and the store keeps it once. Secrets never enter an event: the
``Authorization`` header is compared and forgotten, and ``raw`` is the redacted JSON of
the one notification an event came from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

from regwatch.clock import Clock, SystemClock
from regwatch.errors import RegwatchError
from regwatch.events import Action, AuthClass, Event, Outcome, Tally, utc
from regwatch.parsing.timeparse import parse_rfc3339
from regwatch.redact import redact
from regwatch.stores.base import Query, Store

__all__ = [
    "DISTRIBUTION_MEDIA_TYPE",
    "DISTRIBUTION_SOURCE",
    "HARBOR_SOURCE",
    "OUTCOMES",
    "WEBHOOK_SOURCES",
    "WebhookError",
    "WebhookReceiver",
    "attribute",
    "attribute_rows",
    "attributed_deletes",
    "parse_distribution",
    "parse_harbor",
    "webhook_query",
]

log = logging.getLogger("regwatch.webhooks")

DISTRIBUTION_SOURCE = "distribution-webhook"
HARBOR_SOURCE = "harbor-webhook"
WEBHOOK_SOURCES = frozenset({DISTRIBUTION_SOURCE, HARBOR_SOURCE})
DISTRIBUTION_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
_JSON_TYPES = frozenset({DISTRIBUTION_MEDIA_TYPE, "application/json"})

#: request outcomes of the receiver: the only values of its ``outcome`` label
OUTCOMES = (
    "accepted",  # 200, at least one new event handed to the sink
    "duplicate",  # 200, every event was seen before: nothing handed on
    "bad_request",  # 400 (malformed body, unsupported content type) and 411
    "unauthorized",  # 401, missing or wrong Authorization
    "too_large",  # 413
    "method_not_allowed",  # 405, anything but POST
    "not_found",  # 404, a path that is no route
    "unavailable",  # 503, the sink refused the batch (full queue): the sender retries
)
MAX_BODY = 1 << 20
DEDUPE_SIZE = 65_536
#: how far apart a log event and a webhook event may be for the repository+digest match
ATTRIBUTION_WINDOW = timedelta(seconds=5)


class WebhookError(RegwatchError):
    """A webhook body that cannot be read; ``reason`` is short and safe to send back."""

    exit_code = 3

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- parsing


def _webhook_id(kind: str, key: str) -> str:
    """26 hex characters, the width of :func:`regwatch.events.event_id`'s ids."""
    return hashlib.blake2b(f"{kind}\x00{key}".encode(), digest_size=13).hexdigest()


def _load(body: bytes) -> Any:
    if not body:
        raise WebhookError("empty body")
    try:
        text = body.decode("utf-8")  # RFC 8259: JSON between systems is UTF-8
    except UnicodeDecodeError as exc:
        raise WebhookError(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WebhookError(f"body is not JSON ({exc.msg} at char {exc.pos})") from None
    except ValueError:
        raise WebhookError("body is not JSON") from None


def _str(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v)
    return s or None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _host_of(addr: str | None) -> str | None:
    """``ip:port`` / ``[v6]:port`` / bare ip → ip."""
    if not addr:
        return None
    if addr.startswith("["):
        end = addr.find("]")
        return addr[1:end] if end > 0 else addr
    if addr.count(":") == 1:
        return addr.rsplit(":", 1)[0]
    return addr  # a bare IPv6 address (several colons) or a bare IPv4 one


def _raw(obj: Any) -> str:
    return redact(json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False))


def _content_type_ok(content_type: str | None) -> bool:
    if content_type is None:
        return True  # a bare POST; the body still has to be an envelope
    base = content_type.split(";", 1)[0].strip().lower()
    return base in _JSON_TYPES or base == ""


def parse_distribution(
    body: bytes, content_type: str | None = DISTRIBUTION_MEDIA_TYPE
) -> list[Event]:
    """A Distribution notification envelope (``{"events": [...]}``) → one event each.

    ``content_type`` is the request's Content-Type (parameters ignored); the registry
    sends ``application/vnd.docker.distribution.events.v1+json``, and
    ``application/json`` or none is accepted too. Raises :class:`WebhookError` for
    another content type, a body that is not such an envelope, or an event without an
    id, action or valid timestamp (the whole envelope is refused: the registry retries
    it as a unit).
    """
    if not _content_type_ok(content_type):
        raise WebhookError(
            f"content type {str(content_type)[:80]!r} is not {DISTRIBUTION_MEDIA_TYPE!r} or 'application/json'"
        )
    doc = _load(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise WebhookError('not a Distribution envelope: expected an object with an "events" list')
    out: list[Event] = []
    for i, ev in enumerate(doc["events"]):
        if not isinstance(ev, dict):
            raise WebhookError(f"events[{i}] is not an object")
        out.append(_distribution_event(ev, i))
    return out


def _sub(ev: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = ev.get(key)
    return v if isinstance(v, dict) else {}


_MANIFEST_ACTIONS = {"push": Action.PUSH, "pull": Action.PULL, "delete": Action.DELETE}
_BLOB_ACTIONS = {"push": Action.BLOB_UPLOAD, "pull": Action.BLOB_PULL, "delete": Action.BLOB_DELETE}


def _distribution_event(ev: Mapping[str, Any], i: int) -> Event:
    nid = _str(ev.get("id"))
    if nid is None:
        raise WebhookError(f"events[{i}] has no id")
    verb = _str(ev.get("action"))
    if verb is None:
        raise WebhookError(f"events[{i}] has no action")
    ts_text = ev.get("timestamp")
    ts = parse_rfc3339(ts_text) if isinstance(ts_text, str) else None
    if ts is None:
        raise WebhookError(f"events[{i}] has no valid timestamp: {str(ts_text)[:40]!r}")
    target, request, actor, source = (_sub(ev, k) for k in ("target", "request", "actor", "source"))
    method = _str(request.get("method"))
    url = _str(target.get("url"))
    path = urlsplit(url).path if url else None
    is_blob = bool(path and "/blobs/" in path)
    if verb == "mount":
        action = Action.BLOB_MOUNT
    elif is_blob:
        action = _BLOB_ACTIONS.get(verb, Action.OTHER)
        if action is Action.BLOB_PULL and method == "HEAD":
            action = Action.BLOB_HEAD
    else:
        # a delete carries no url or media type: manifest, tag and blob deletes look alike
        # (only the request id tells them apart, through the log); "delete" covers them
        action = _MANIFEST_ACTIONS.get(verb, Action.OTHER)
        if action is Action.PULL and method == "HEAD":
            action = Action.PULL_HEAD
    digest = _str(target.get("digest"))
    tag = _str(target.get("tag"))
    size = _int(target.get("size"))
    if size is None:
        size = _int(target.get("length"))
    return Event(
        id=_webhook_id(DISTRIBUTION_SOURCE, nid),
        timestamp=ts,
        source=DISTRIBUTION_SOURCE,
        component="notifications",
        action=action.value,
        outcome=Outcome.SUCCESS.value,  # the registry notifies only what it did
        tally=Tally.NONE.value,
        auth=AuthClass.NONE.value,
        repository=_str(target.get("repository")),
        reference=tag or digest,
        digest=digest,
        method=method,
        path=path,
        bytes=size,
        user=_str(actor.get("name")),
        client_ip=_host_of(_str(request.get("addr"))),
        user_agent=_str(request.get("useragent")),
        request_id=_str(request.get("id")),
        message=f"{verb} {target.get('mediaType')}" if target.get("mediaType") else verb,
        host=_str(source.get("addr")),
        raw=_raw(ev),
    )


# Harbor: the default payload and the CloudEvents one (2.8+), mapped to one vocabulary.
_HARBOR_KINDS: dict[str, str] = {
    "PUSH_ARTIFACT": "PUSH_ARTIFACT",
    "PULL_ARTIFACT": "PULL_ARTIFACT",
    "DELETE_ARTIFACT": "DELETE_ARTIFACT",
    "harbor.artifact.pushed": "PUSH_ARTIFACT",
    "harbor.artifact.pulled": "PULL_ARTIFACT",
    "harbor.artifact.deleted": "DELETE_ARTIFACT",
    "harbor.scan.completed": "SCANNING_COMPLETED",
    "harbor.scan.failed": "SCANNING_FAILED",
    "harbor.scan.stopped": "SCANNING_STOPPED",
    "harbor.quota.exceed": "QUOTA_EXCEED",
    "harbor.quota.warning": "QUOTA_WARNING",
    "harbor.replication.status.changed": "REPLICATION",
    "harbor.tag_retention.finished": "TAG_RETENTION",
}
_ARTIFACT_ACTIONS = {
    "PUSH_ARTIFACT": Action.PUSH,
    "PULL_ARTIFACT": Action.PULL,
    "DELETE_ARTIFACT": Action.DELETE,
}
_SCAN_OUTCOMES = {
    "SCANNING_COMPLETED": Outcome.SUCCESS,
    "SCANNING_FAILED": Outcome.FAILURE,
    "SCANNING_STOPPED": Outcome.UNKNOWN,
}
_JOB_OUTCOMES = {
    "success": Outcome.SUCCESS,
    "succeed": Outcome.SUCCESS,
    "error": Outcome.FAILURE,
    "failed": Outcome.FAILURE,
    "failure": Outcome.FAILURE,
    "stopped": Outcome.FAILURE,
}


def parse_harbor(body: bytes) -> list[Event]:
    """A Harbor webhook payload → events (one per artifact it names, at least one).

    Reads the default format (``type``, ``occur_at``, ``operator``, ``event_data``) and
    the CloudEvents format (``specversion``, ``id``, ``type`` ``harbor.*``, ``time``,
    ``data``, ``operator``). Artifact pushes, pulls and deletes become ``push``/``pull``/
    ``delete`` events with the operator as user; scans, quotas, replication, retention
    and unknown types become ``audit`` events with the outcome and a short message.
    Raises :class:`WebhookError` for a body that is not such a payload.
    """
    doc = _load(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise WebhookError('not a Harbor payload: expected an object with a "type"')
    cloud = "specversion" in doc
    kind = _HARBOR_KINDS.get(doc["type"], doc["type"])
    if cloud:
        data = doc.get("data")
        ts = parse_rfc3339(doc["time"]) if isinstance(doc.get("time"), str) else None
        request_id = _str(doc.get("requestid"))
    else:
        data = doc.get("event_data")
        occur = doc.get("occur_at")
        ts = (
            datetime.fromtimestamp(occur, tz=UTC)
            if isinstance(occur, (int, float)) and not isinstance(occur, bool)
            else None
        )
        request_id = None
    if ts is None:
        raise WebhookError("Harbor payload has no valid occur_at/time")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WebhookError("Harbor event_data/data is not an object")
    operator = _str(doc.get("operator"))
    # the identity of the notification: CloudEvents gives one; the default format is
    # identified by its content (a retry sends the same bytes of the same payload)
    ident = _str(doc.get("id")) if cloud else None
    ident = ident or json.dumps(doc, sort_keys=True, separators=(",", ":"))
    repo_doc = _sub(data, "repository")
    repository = _str(repo_doc.get("repo_full_name"))
    if repository is None and repo_doc.get("namespace") and repo_doc.get("name"):
        repository = f"{repo_doc['namespace']}/{repo_doc['name']}"
    base = Event(
        id="",
        timestamp=ts,
        source=HARBOR_SOURCE,
        component="core",
        tally=Tally.NONE.value,
        auth=AuthClass.NONE.value,
        repository=repository,
        user=operator,
        request_id=request_id,
    )
    resources = [r for r in data.get("resources") or [] if isinstance(r, dict)]
    items: list[Event] = []
    if kind in _ARTIFACT_ACTIONS:
        for r in resources or [{}]:
            items.append(_harbor_artifact(base, r, _ARTIFACT_ACTIONS[kind], kind))
    elif kind in _SCAN_OUTCOMES:
        for r in resources or [{}]:
            ev = _harbor_artifact(base, r, Action.AUDIT, kind)
            items.append(
                ev.with_(outcome=_scan_outcome(kind, r).value, message=_scan_message(kind, r))
            )
    elif kind in ("QUOTA_EXCEED", "QUOTA_WARNING"):
        details = _str(_sub(data, "custom_attributes").get("Details"))
        outcome = Outcome.FAILURE if kind == "QUOTA_EXCEED" else Outcome.UNKNOWN
        for r in resources or [{}]:
            ev = _harbor_artifact(base, r, Action.AUDIT, kind)
            items.append(
                ev.with_(
                    outcome=outcome.value,
                    error_code=kind.lower(),
                    message=f"{kind}: {details}" if details else kind,
                )
            )
    elif kind == "REPLICATION":
        items.extend(_harbor_replication(base, _sub(data, "replication")))
    else:
        items.append(base.with_(action=Action.AUDIT.value, message=kind))
    raw = _raw(doc)
    return [
        ev.with_(
            id=_webhook_id(HARBOR_SOURCE, f"{ident}\x00{n}"), raw=raw, message=ev.message or kind
        )
        for n, ev in enumerate(items)
    ]


def _harbor_artifact(base: Event, r: Mapping[str, Any], action: Action, kind: str) -> Event:
    digest = _str(r.get("digest"))
    tag = _str(r.get("tag"))
    if tag and tag == digest:
        tag = None  # Harbor puts the digest in "tag" for untagged artifacts
    url = _str(r.get("resource_url"))
    repository = base.repository
    if repository is None and url:
        # host/namespace/name:tag or host/namespace/name@digest
        rest = url.split("/", 1)[1] if "/" in url else url
        repository = rest.split("@", 1)[0].rsplit(":", 1)[0] or None
    return base.with_(
        action=action.value,
        outcome=Outcome.SUCCESS.value,
        repository=repository,
        reference=tag or digest,
        digest=digest,
        path=url,
        message=kind,
    )


def _scan_outcome(kind: str, r: Mapping[str, Any]) -> Outcome:
    outcome = _SCAN_OUTCOMES[kind]
    for report in (_sub(r, "scan_overview") or {}).values():
        if isinstance(report, dict):
            status = str(report.get("scan_status") or "").lower()
            if status in ("error", "failed"):
                return Outcome.FAILURE
    return outcome


def _scan_message(kind: str, r: Mapping[str, Any]) -> str:
    parts = [kind]
    for report in (_sub(r, "scan_overview") or {}).values():
        if not isinstance(report, dict):
            continue
        for key in ("scan_status", "severity"):
            if report.get(key):
                parts.append(f"{key}={report[key]}")
        summary = report.get("summary")
        if isinstance(summary, dict) and isinstance(summary.get("total"), int):
            parts.append(f"total={summary['total']}")
        break
    return " ".join(parts)


def _harbor_replication(base: Event, rep: Mapping[str, Any]) -> list[Event]:
    status = _str(rep.get("job_status")) or ""
    outcome = _JOB_OUTCOMES.get(status.lower(), Outcome.UNKNOWN)
    src, dst = _sub(rep, "src_resource"), _sub(rep, "dest_resource")
    namespace = _str(src.get("namespace")) or _str(dst.get("namespace"))
    message = (
        f"REPLICATION {status or '?'} {src.get('endpoint') or '?'} -> {dst.get('endpoint') or '?'}"
        f" trigger={rep.get('trigger_type') or '?'}"
    )
    # the operator of a replication payload is its trigger (MANUAL, SCHEDULED, EVENT_BASED);
    # the person is the policy's creator
    user = _str(rep.get("policy_creator")) or base.user
    ev = base.with_(action=Action.AUDIT.value, outcome=outcome.value, user=user, message=message)
    arts = [
        a
        for key in ("successful_artifact", "failed_artifact")
        for a in rep.get(key) or []
        if isinstance(a, dict)
    ]
    if not arts:
        return [ev]
    out = []
    for a in arts:
        name_tag = _str(a.get("name_tag")) or ""
        # "busybox:v1" or "test10g [2 item(s) in total]"
        name = name_tag.split(" ", 1)[0].split(":", 1)[0]
        ref = (
            name_tag.split(" ", 1)[0].split(":", 1)[1] if ":" in name_tag.split(" ", 1)[0] else None
        )
        repo = f"{namespace}/{name}" if namespace and name else (name or None)
        a_outcome = _JOB_OUTCOMES.get(str(a.get("status") or "").lower(), outcome)
        out.append(
            ev.with_(
                repository=repo,
                reference=ref,
                outcome=a_outcome.value,
                error_code=_str(a.get("fail_reason")),
            )
        )
    return out


# --------------------------------------------------------------------------- receiver


Sink = Callable[[list[Event]], None]


class _LRU:
    """A bounded set of recently seen ids (oldest forgotten first)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        if key in self._d:
            self._d.move_to_end(key)
            return True
        return False

    def add(self, key: str) -> None:
        self._d[key] = None
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


class WebhookReceiver:
    """An HTTP endpoint for registry notifications; events go to ``sink``.

    ``listen`` is ``host:port`` (``127.0.0.1:0`` by default: loopback, a free port, see
    :attr:`port`). Routes, POST only:

    - ``/distribution`` (and ``/``): :func:`parse_distribution` with the request's
      Content-Type;
    - ``/harbor``: :func:`parse_harbor`.

    Every request is answered at once: 200 once the sink took the new events (or when
    every event was a redelivery already seen: the sink is not called again); 400 with
    the reason for a body that cannot be read; 401 for a missing or wrong
    ``Authorization`` when ``secret`` is set (compared in constant time, never stored or
    logged); 405 for another method; 404 for another path; 411 without Content-Length;
    413 when Content-Length exceeds ``max_body``; 503 when the sink raised (a full
    queue: the registry retries later, and the ids are not remembered so the retry is
    taken). Each answer adds one to ``metrics[outcome]`` (:data:`OUTCOMES`);
    ``event_metrics`` counts events ``accepted`` and ``duplicate``.

    The sink is called from the request thread, one call at a time (under the receiver's
    lock, which also makes the dedupe exact under concurrent redeliveries), so it must
    not block: put the batch on a bounded queue and return, or raise to refuse it.
    ``clock`` times the ``last_event_at`` health field.
    """

    def __init__(
        self,
        listen: str = "127.0.0.1:0",
        sink: Sink | None = None,
        *,
        secret: str | None = None,
        max_body: int = MAX_BODY,
        clock: Clock | None = None,
        metrics: MutableMapping[str, int] | None = None,
        event_metrics: MutableMapping[str, int] | None = None,
        dedupe_size: int = DEDUPE_SIZE,
        timeout: float = 10.0,
    ) -> None:
        if sink is None:
            raise ValueError("WebhookReceiver needs a sink: a callable taking a list of events")
        host, sep, port_text = listen.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"listen {listen!r} is not host:port (e.g. '127.0.0.1:9480')")
        self.host = host.strip("[]") or "127.0.0.1"
        self._want_port = int(port_text)
        self.sink = sink
        self._secret = secret.encode() if secret else None
        self.max_body = max_body
        self.clock: Clock = clock or SystemClock()
        self.metrics: MutableMapping[str, int] = metrics if metrics is not None else {}
        for o in OUTCOMES:
            self.metrics.setdefault(o, 0)
        self.event_metrics: MutableMapping[str, int] = (
            event_metrics if event_metrics is not None else {}
        )
        for o in ("accepted", "duplicate"):
            self.event_metrics.setdefault(o, 0)
        self.timeout = timeout
        self.last_event_at: datetime | None = None
        self._seen = _LRU(dedupe_size)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.routes: dict[str, Callable[[bytes, str | None], list[Event]]] = {
            "/": parse_distribution,
            "/distribution": parse_distribution,
            "/harbor": lambda body, _ct: parse_harbor(body),
        }

    # -- lifecycle

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`; the requested one before)."""
        if self._server is not None:
            return int(self._server.server_address[1])
        return self._want_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Bind and serve on a daemon thread. Raises OSError when the address is taken."""
        if self._server is not None:
            return self
        handler = _make_handler(self)
        server_cls = _V6Server if ":" in self.host else _Server
        self._server = server_cls((self.host, self._want_port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop
            name=f"webhooks:{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("webhook receiver listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (requests in flight finish)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the work of one request (called from the handler)

    def _authorized(self, header: str | None) -> bool:
        if self._secret is None:
            return True
        if header is None:
            return False
        return hmac.compare_digest(header.encode("utf-8", "surrogateescape"), self._secret)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.metrics[outcome] = self.metrics.get(outcome, 0) + 1

    def _deliver(self, events: list[Event]) -> str:
        """Hand the unseen events to the sink; the request outcome."""
        with self._lock:
            fresh: list[Event] = []
            batch_ids: set[str] = set()
            for ev in events:
                if ev.id in self._seen or ev.id in batch_ids:
                    continue
                batch_ids.add(ev.id)
                fresh.append(ev)
            dup = len(events) - len(fresh)
            if not fresh:
                self.event_metrics["duplicate"] = self.event_metrics.get("duplicate", 0) + dup
                self.metrics["duplicate"] = self.metrics.get("duplicate", 0) + 1
                return "duplicate"
            try:
                self.sink(fresh)
            except Exception as exc:  # noqa: BLE001 - any refusal of the sink is a 503
                log.warning("webhook sink refused %d event(s): %s", len(fresh), type(exc).__name__)
                self.metrics["unavailable"] = self.metrics.get("unavailable", 0) + 1
                return "unavailable"
            for ev in fresh:
                self._seen.add(ev.id)
            self.event_metrics["accepted"] = self.event_metrics.get("accepted", 0) + len(fresh)
            self.event_metrics["duplicate"] = self.event_metrics.get("duplicate", 0) + dup
            self.metrics["accepted"] = self.metrics.get("accepted", 0) + 1
            self.last_event_at = self.clock.now()
            return "accepted"


class _Server(ThreadingHTTPServer):
    """A sender that goes away mid-request (a registry restarting with a keep-alive
    connection open) is routine: one debug line, not socketserver's traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("webhook client %s went away: %s", client_address, exc)
            return
        log.warning("webhook request from %s failed: %s: %s", client_address, type(exc).__name__, exc)


class _V6Server(_Server):
    address_family = socket.AF_INET6


_DRAIN_LIMIT = 64 << 20


def _make_handler(rx: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the registry reuses its connection
        server_version = "regwatch-webhooks"
        sys_version = ""
        timeout = rx.timeout

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request line only ever reaches our own debug log, below

        def _answer(
            self,
            status: int,
            outcome: str,
            text: str = "",
            *,
            count: bool = True,
            extra: Iterable[tuple[str, str]] = (),
        ) -> None:
            if count:
                rx._count(outcome)
            body = (
                json.dumps({"outcome": outcome, "reason": text})
                if text
                else json.dumps({"outcome": outcome})
            )
            data = (body + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            log.debug(
                "webhook %s %s -> %d %s",
                self.command,
                self.path.split("?", 1)[0][:200],
                status,
                outcome,
            )

        def _length(self) -> int | None:
            value = self.headers.get("Content-Length")
            if value is None or not value.strip().isdigit():
                return None
            return int(value)

        def _discard_body(self, limit: int) -> None:
            """Read and drop a body we will not use (up to ``limit`` bytes), so closing
            does not reset the connection under the client before it reads our answer."""
            n = self._length()
            if n is None or n > limit:
                self.close_connection = True
                return
            try:
                while n > 0:
                    chunk = self.rfile.read(min(n, 1 << 16))
                    if not chunk:
                        break
                    n -= len(chunk)
            except OSError:  # a timeout or a reset: nothing more to read
                self.close_connection = True

        def _refuse(
            self, status: int, outcome: str, text: str = "", extra: Iterable[tuple[str, str]] = ()
        ) -> None:
            # an unauthenticated client makes us read at most max_body bytes
            self._discard_body(rx.max_body)
            self._answer(status, outcome, text, extra=extra)

        def do_POST(self) -> None:
            route = rx.routes.get(self.path.split("?", 1)[0].rstrip("/") or "/")
            if route is None:
                self._refuse(404, "not_found", "no such route; POST to /distribution or /harbor")
                return
            if not rx._authorized(self.headers.get("Authorization")):
                self._refuse(401, "unauthorized", "missing or wrong Authorization")
                return
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self.close_connection = True
                self._answer(
                    411, "bad_request", "Content-Length required (chunked bodies are not read)"
                )
                return
            n = self._length()
            if n is None:
                self.close_connection = True
                self._answer(411, "bad_request", "Content-Length required")
                return
            if n > rx.max_body:
                self._answer(
                    413,
                    "too_large",
                    f"body of {n} bytes is over the limit of {rx.max_body}",
                    extra=[("Connection", "close")],
                )
                self._discard_body(_DRAIN_LIMIT)
                self.close_connection = True
                return
            try:
                body = self.rfile.read(n)
            except OSError:  # the client stalled past the timeout, or went away
                self.close_connection = True
                rx._count("bad_request")
                return
            if len(body) < n:
                self.close_connection = True
                self._answer(400, "bad_request", f"body ended after {len(body)} of {n} bytes")
                return
            try:
                events = route(body, self.headers.get("Content-Type"))
            except WebhookError as exc:
                self._answer(400, "bad_request", exc.reason)
                return
            outcome = rx._deliver(events)
            if outcome == "unavailable":
                self._answer(
                    503,
                    outcome,
                    "the event queue is full; retry later",
                    count=False,
                    extra=[("Retry-After", "1")],
                )
            else:
                self._answer(200, outcome, count=False)

        def _not_allowed(self) -> None:
            self._refuse(405, "method_not_allowed", "POST only", extra=[("Allow", "POST")])

        do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

        def do_HEAD(self) -> None:
            rx._count("method_not_allowed")
            self.send_response(405)
            self.send_header("Allow", "POST")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


# --------------------------------------------------------------------------- attribution

# which log actions a webhook action can attribute when matched by repository + digest
_FAMILY = {
    Action.PULL.value: "pull",
    Action.DELETE_LOOKUP.value: "pull",
    Action.PUSH.value: "push",
    Action.DELETE.value: "delete",
}


def _family(action: str | None) -> str | None:
    return _FAMILY.get(action or "")


def _refs(d: Mapping[str, Any] | Event) -> set[str]:
    get = d.get if isinstance(d, Mapping) else (lambda k: getattr(d, k, None))
    return {v for v in (get("digest"), get("reference")) if v}


def _as_time(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return utc(v)
    if isinstance(v, str):
        return parse_rfc3339(v)
    return None


class _Index:
    """Webhook events with a user, looked up by request id and by (repository, ref)."""

    def __init__(self, webhook_events: Iterable[Event]) -> None:
        self.by_request: dict[str, Event] = {}
        self.by_ref: dict[tuple[str, str, str], list[Event]] = {}
        for w in webhook_events:
            if not w.user:
                continue
            if w.request_id:
                self.by_request.setdefault(w.request_id, w)
            fam = _family(w.action)
            if fam and w.repository:
                for ref in _refs(w):
                    self.by_ref.setdefault((fam, w.repository, ref), []).append(w)

    def find(
        self,
        request_id: str | None,
        action: str | None,
        repository: str | None,
        refs: set[str],
        ts: datetime | None,
        window: timedelta,
    ) -> tuple[Event, str] | None:
        if request_id and request_id in self.by_request:
            return self.by_request[request_id], "request_id"
        fam = _family(action)
        if fam is None or repository is None or ts is None:
            return None
        best: Event | None = None
        for ref in refs:
            for w in self.by_ref.get((fam, repository, ref), ()):
                gap = abs(w.timestamp - ts)
                if gap <= window and (best is None or gap < abs(best.timestamp - ts)):
                    best = w
        return (best, "repository+digest") if best is not None else None


def attribute(
    log_events: Sequence[Event],
    webhook_events: Iterable[Event],
    *,
    window: timedelta = ATTRIBUTION_WINDOW,
) -> list[Event]:
    """``log_events`` with a missing user filled in from ``webhook_events``.

    A log event without a user takes the user of the webhook event with the same request
    id (Distribution's notifications carry the registry's ``http.request.id``); failing
    that, a pull, push or delete takes the user of the nearest webhook event of the same
    kind with the same repository and digest (or tag) at most ``window`` apart (Harbor's
    payloads have no request id). Events that have a user, or find no match, are
    returned as they are. The copies keep their ids: this is for presenting and
    exporting, not for writing back (the store keeps the first version of an id).
    """
    index = _Index(webhook_events)
    out: list[Event] = []
    for ev in log_events:
        if ev.user or ev.source in WEBHOOK_SOURCES:
            out.append(ev)
            continue
        hit = index.find(ev.request_id, ev.action, ev.repository, _refs(ev), ev.timestamp, window)
        out.append(replace(ev, user=hit[0].user) if hit else ev)
    return out


def attribute_rows(
    rows: Sequence[Mapping[str, Any]],
    webhook_events: Iterable[Event],
    *,
    window: timedelta = ATTRIBUTION_WINDOW,
    action: str = Action.DELETE.value,
    annotate: bool = False,
) -> list[dict[str, Any]]:
    """``audit`` rows (:func:`regwatch.audit.delete_row`) with a missing user filled in.

    The same rules as :func:`attribute`, on rows: ``request_id``, else ``repository`` and
    ``reference`` (a digest or tag) within ``window`` of ``time``; ``action`` is the
    action the rows are of (deletes by default). With ``annotate`` each row gets
    ``user_from``: ``"log"``, ``"webhook:request_id"``, ``"webhook:repository+digest"``
    or ``None``. Returns new dicts; ``rows`` is not changed.
    """
    index = _Index(webhook_events)
    out: list[dict[str, Any]] = []
    for row in rows:
        new = dict(row)
        how: str | None = "log" if row.get("user") else None
        if not row.get("user") and row.get("source") not in WEBHOOK_SOURCES:
            hit = index.find(
                row.get("request_id"),
                action,
                row.get("repository"),
                _refs(row),
                _as_time(row.get("time")),
                window,
            )
            if hit:
                new["user"] = hit[0].user
                how = f"webhook:{hit[1]}"
        if annotate:
            new["user_from"] = how
        out.append(new)
    return out


def webhook_query(query: Query | None = None, *, window: timedelta = ATTRIBUTION_WINDOW) -> Query:
    """The store query for the webhook events that can attribute the results of ``query``:
    webhook sources, the same repository glob, the time range widened by ``window``, and
    no user filter (the user is what is looked for)."""
    q = query or Query()
    return Query(
        since=q.since - window if q.since is not None else None,
        until=q.until + window if q.until is not None else None,
        repo=q.repo,
        actions=q.actions,
        sources=WEBHOOK_SOURCES,
    )


def attributed_deletes(
    store: Store,
    query: Query | None = None,
    *,
    window: timedelta = ATTRIBUTION_WINDOW,
    annotate: bool = False,
) -> list[dict[str, Any]]:
    """``regwatch.audit.deletes`` with users from webhook events.

    Log deletes without a user get one from the stored webhook events; webhook deletes
    themselves are not listed next to the log record they attribute (one registry DELETE
    sends two notifications, for the digest and the tag); a webhook delete that no log
    record matched (its log was not ingested) is listed once per request. ``query.user``
    is applied after attribution, so ``--user alice`` finds alice's attributed deletes.
    Raises StoreError.
    """
    from regwatch.audit import delete_row

    q = replace(query or Query(), actions=frozenset({Action.DELETE.value}))
    user = q.user
    found = store.search(replace(q, user=None))
    hooks = [
        e for e in store.search(webhook_query(q, window=window)) if e.source in WEBHOOK_SOURCES
    ]
    logs = [e for e in found if e.source not in WEBHOOK_SOURCES]
    rows = attribute_rows([delete_row(e) for e in logs], hooks, window=window, annotate=annotate)
    used_requests = {r.get("request_id") for r in rows if r.get("request_id")}
    log_refs: dict[tuple[str | None, str], list[datetime]] = {}
    for e in logs:
        for ref in _refs(e):
            log_refs.setdefault((e.repository, ref), []).append(e.timestamp)
    orphans: dict[str, Event] = {}
    for w in hooks:
        if w.action != Action.DELETE.value:
            continue
        if (w.request_id and w.request_id in used_requests) or any(
            abs(t - w.timestamp) <= window
            for ref in _refs(w)
            for t in log_refs.get((w.repository, ref), ())
        ):
            continue
        key = w.request_id or w.id
        kept = orphans.get(key)
        if kept is None or (w.digest and not kept.digest):
            orphans[key] = w  # of the digest and tag notifications, show the digest one
    for w in orphans.values():
        row = delete_row(w)
        if annotate:
            row["user_from"] = "webhook"
        rows.append(row)
    if user is not None:
        rows = [r for r in rows if r.get("user") == user]
    rows.sort(key=lambda r: _as_time(r.get("time")) or datetime.min.replace(tzinfo=UTC))
    return rows
