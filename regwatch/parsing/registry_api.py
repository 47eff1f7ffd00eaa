"""Classify registry HTTP API requests and apply the counting rules (domain.md §2).

Pure functions: every log family that sees a registry request (Distribution app or
access lines, Harbor's nginx proxy, webhooks) classifies it here, so a rule is written
once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from regwatch.events import Action, AuthClass, Outcome, Tally

_ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags|referrers)(?:/(?P<rest>[^?]*))?$"
)


@dataclass(frozen=True, slots=True)
class Request:
    action: Action
    repository: str | None = None
    reference: str | None = None
    digest: str | None = None
    upload_bytes: int | None = None  # size of a completed upload, from _state


def split_uri(uri: str) -> tuple[str, str]:
    """Split a request URI into (path, query); tolerate absolute URIs."""
    if uri.startswith(("http://", "https://")):
        slash = uri.find("/", uri.find("//") + 2)
        uri = uri[slash:] if slash >= 0 else "/"
    path, _, query = uri.partition("?")
    return path, query


def state_offset(query: str) -> int | None:
    """The uploaded size recorded in an upload's ``_state`` token, if readable.

    ``_state`` is base64url of a 32-byte HMAC followed by JSON with ``Offset``.
    """
    try:
        values = parse_qs(query).get("_state")
        if not values:
            return None
        token = values[0]
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw[32:].decode("utf-8"))
        offset = doc.get("Offset")
        return int(offset) if isinstance(offset, (int, float)) else None
    except (ValueError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return None


def classify(method: str | None, uri: str | None) -> Request:
    """What a (method, URI) pair does in the registry API.

    Cached: a request's app lines and its access line classify the same pair, and
    ``Request`` is immutable."""
    key = (method, uri)
    hit = _cache.get(key)
    if hit is None:
        if len(_cache) >= 4096:
            _cache.clear()
        hit = _cache[key] = _classify(method, uri)
    return hit


_cache: dict[tuple[str | None, str | None], Request] = {}


def _classify(method: str | None, uri: str | None) -> Request:
    if not uri:
        return Request(Action.OTHER)
    path, query = split_uri(uri)
    path = unquote(path)
    m = (method or "").upper()
    if path in ("/v2/", "/v2"):
        return Request(Action.BASE)
    if path.startswith("/v2/_catalog"):
        return Request(Action.CATALOG)
    r = _ROUTE.match(path)
    if r is None:
        return Request(Action.OTHER)
    name, kind, rest = r.group("name"), r.group("kind"), (r.group("rest") or "")
    if kind == "manifests":
        ref = rest or None
        digest = ref if ref and ":" in ref else None
        action = {
            "GET": Action.PULL,
            "HEAD": Action.PULL_HEAD,
            "PUT": Action.PUSH,
            "DELETE": Action.DELETE,
        }.get(m, Action.OTHER)
        return Request(action, name, ref, digest)
    if kind == "blobs/uploads":
        qs = parse_qs(query)
        digest = (qs.get("digest") or [None])[0]
        if not rest:
            if m == "POST" and "mount" in qs:
                return Request(Action.BLOB_MOUNT, name, None, (qs.get("mount") or [None])[0])
            if m == "POST" and digest:
                return Request(Action.BLOB_UPLOAD, name, None, digest)
            return Request(Action.BLOB_UPLOAD_START, name)
        action = {
            "PATCH": Action.BLOB_UPLOAD_CHUNK,
            "PUT": Action.BLOB_UPLOAD,
            "DELETE": Action.BLOB_UPLOAD_CANCEL,
            "GET": Action.BLOB_UPLOAD_STATUS,
        }.get(m, Action.OTHER)
        size = state_offset(query) if action is Action.BLOB_UPLOAD else None
        return Request(action, name, None, digest, size)
    if kind == "blobs":
        action = {"GET": Action.BLOB_PULL, "HEAD": Action.BLOB_HEAD, "DELETE": Action.BLOB_DELETE}.get(
            m, Action.OTHER
        )
        return Request(action, name, None, rest or None)
    if kind == "tags":
        return Request(Action.TAGS_LIST, name)
    return Request(Action.REFERRERS, name, None, rest or None)


def outcome_of(status: int | None) -> Outcome:
    if status is None:
        return Outcome.UNKNOWN
    return Outcome.SUCCESS if status < 400 else Outcome.FAILURE


# action values as plain strings (``Enum.value`` is a descriptor call per use)
_PULL, _PUSH, _DELETE = Action.PULL.value, Action.PUSH.value, Action.DELETE.value
_BLOB_PULL, _BLOB_UPLOAD, _BASE = Action.BLOB_PULL.value, Action.BLOB_UPLOAD.value, Action.BASE.value


def tally_of(action: str, status: int | None) -> Tally:
    """The counting class of a request, from its action and final status."""
    if status is None:
        return Tally.NONE
    ok = status < 400
    if action == _PULL:
        return Tally.PULL if 200 <= status < 300 else (Tally.PULL_FAILED if not ok else Tally.NONE)
    if action == _PUSH:
        return Tally.PUSH if ok else Tally.PUSH_FAILED
    if action == _DELETE:
        return Tally.DELETE if ok else Tally.DELETE_FAILED
    if action == _BLOB_PULL and status in (200, 206):
        return Tally.BLOB_PULL
    if action == _BLOB_UPLOAD and ok:
        return Tally.BLOB_UPLOAD
    return Tally.NONE


_OUTCOME_VALUES = (Outcome.SUCCESS.value, Outcome.FAILURE.value, Outcome.UNKNOWN.value)


def outcome_value(status: int | None) -> str:
    """``outcome_of(status).value``."""
    if status is None:
        return _OUTCOME_VALUES[2]
    return _OUTCOME_VALUES[0] if status < 400 else _OUTCOME_VALUES[1]


def auth_class_of(action: str, status: int | None, user_presented: str | None) -> AuthClass:
    """How a request fared at the auth gate.

    ``user_presented`` is None when no credentials were seen, "" when empty
    credentials were sent, and the name otherwise.
    """
    if status != 401:
        return AuthClass.NONE
    if user_presented:
        return AuthClass.AUTH_FAILURE
    if user_presented is None and action == _BASE:
        return AuthClass.CHALLENGE
    return AuthClass.ANONYMOUS_DENIAL
