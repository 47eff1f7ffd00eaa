"""DistributionParser().parse on every line form of domain.md §1 and NOTES.md §1."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote

import pytest

import regwatch_testlib as lib
from regwatch.events import Dropped, DropReason, Event, RawLine
from regwatch.parsing.distribution import DistributionParser

T0 = datetime(2026, 11, 30, 1, 40, 37, 331905, tzinfo=timezone.utc)
RID = "d6827ba9-24e3-4edd-9dd5-bb96052474cd"


def parse(text: str, fallback: datetime | None = None) -> Event | Dropped:
    return DistributionParser(fallback).parse(RawLine("test", "test.log", text, "fp", 0, len(text)))


def ev(text: str, fallback: datetime | None = None) -> Event:
    out = parse(text, fallback)
    assert isinstance(out, Event), out
    return out


# -- logrus text form -----------------------------------------------------------------------
AUTH_FIELDS = lib.request_fields(
    RID, "GET", "/v2/team-a/app/manifests/1.0", ip="10.1.2.3", **{"vars.name": "team-a/app", "vars.reference": "1.0"}
)


@pytest.mark.parametrize("escape", [True, False], ids=["escaped-quotes", "raw-quotes-2.7-harbor"])
def test_auth_failure_line_both_quotings(escape: bool) -> None:
    line = lib.logrus_line(T0, "error", 'error authenticating user "alice": authentication failure', AUTH_FIELDS, escape=escape)
    assert ('\\"alice\\"' in line) is escape
    e = ev(line)
    assert e.message == 'error authenticating user "alice": authentication failure'
    assert e.user == "alice"
    assert e.auth == "auth_failure"
    assert e.status == 401  # the line has no status field; a rejected credential is a 401
    assert e.level == "error"
    assert e.request_id == RID
    assert e.repository == "team-a/app" and e.reference == "1.0"
    assert e.client_ip == "10.1.2.3"  # ip:port → ip
    assert e.user_agent == "skopeo/1.9.3"
    assert e.timestamp == T0
    assert e.method == "GET" and e.path == "/v2/team-a/app/manifests/1.0"


@pytest.mark.parametrize("escape", [True, False])
def test_empty_user_is_anonymous_denial_not_auth_failure(escape: bool) -> None:
    """skopeo --no-creds answers the challenge with empty Basic credentials (NOTES §2)."""
    line = lib.logrus_line(T0, "error", 'error authenticating user "": authentication failure', AUTH_FIELDS, escape=escape)
    e = ev(line)
    assert e.auth == "anonymous_denial"
    assert not e.user
    assert e.status == 401


@pytest.mark.parametrize("escape", [True, False])
def test_challenge_warning_on_base_vs_repository_route(escape: bool) -> None:
    msg = 'error authorizing context: basic authentication challenge for realm "regwatch-realm": invalid authorization credential'
    base = ev(lib.logrus_line(T0, "warning", msg, lib.request_fields(RID, "GET", "/v2/"), escape=escape))
    assert base.auth == "challenge"
    assert base.status == 401 and base.level == "warning"
    assert base.repository is None
    assert base.message == msg
    repo = ev(lib.logrus_line(T0, "warning", msg, AUTH_FIELDS, escape=escape))
    assert repo.auth == "anonymous_denial"  # header-less request on a repository route
    assert repo.tally == "pull_failed"


def test_empty_values_key_equals_space() -> None:
    fields = lib.request_fields(
        RID,
        "GET",
        "/v2/library/alpine/manifests/3.19",
        ua="",
        **{
            "http.response.status": 200,
            "http.response.written": 419,
            "http.response.contenttype": "",
            "http.response.duration": "5.282503ms",
        },
    )
    line = lib.logrus_line(T0, "info", "response completed", fields)
    assert "http.request.useragent= http.response.contenttype= http.response.duration=" in line
    e = ev(line)
    assert e.user_agent is None
    assert e.status == 200 and e.bytes == 419
    assert e.duration_ms == pytest.approx(5.282503)
    assert e.request_id == RID
    assert e.tally == "pull"
    # the app "response completed" line has no vars.name: the repository comes from the URI
    assert e.repository == "library/alpine" and e.reference == "3.19"


def test_value_quoted_on_one_line_and_bare_on_the_next() -> None:
    bare = ev(
        lib.logrus_line(
            T0,
            "info",
            "response completed",
            lib.request_fields(RID, "GET", "/v2/", **{"http.response.status": 200, "http.response.contenttype": "application/json"}),
        )
    )
    digest = "sha256:" + "ab" * 32
    quoted_line = lib.logrus_line(
        T0,
        "info",
        "response completed",
        lib.request_fields(
            RID,
            "GET",
            f"/v2/team-a/app/manifests/{digest}",
            **{"http.response.status": 200, "http.response.contenttype": "application/json; charset=utf-8", "http.response.written": 7},
        ),
    )
    assert f'http.request.uri="/v2/team-a/app/manifests/{digest}"' in quoted_line
    assert "http.request.uri=/v2/ " in lib.logrus_line(T0, "info", "x", lib.request_fields(RID, "GET", "/v2/"))
    quoted = ev(quoted_line)
    assert bare.path == "/v2/" and bare.action == "base"
    assert quoted.path == f"/v2/team-a/app/manifests/{digest}"
    assert quoted.digest == digest and quoted.reference == digest
    assert quoted.bytes == 7 and quoted.tally == "pull"


@pytest.mark.parametrize("digits", range(10))
def test_fraction_of_0_to_9_digits(digits: int) -> None:
    frac = "123456789"[:digits]
    t = "2026-11-30T01:40:37" + (f".{frac}" if frac else "") + "Z"
    e = ev(lib.logrus_line(t, "info", "response completed", lib.request_fields(RID, "GET", "/v2/", **{"http.response.status": 200})))
    exact = Decimal("37" + (f".{frac}" if frac else ""))
    got = Decimal(e.timestamp.second) + Decimal(e.timestamp.microsecond) / Decimal(10**6)
    assert abs(got - exact) < Decimal("0.000001")
    assert e.timestamp.replace(second=0, microsecond=0) == datetime(2026, 11, 30, 1, 40, tzinfo=timezone.utc)


def test_time_with_offset_is_converted_to_utc() -> None:
    e = ev(lib.logrus_line("2026-11-30T03:40:37.5+02:00", "info", "response completed", lib.request_fields(RID, "GET", "/v2/", **{"http.response.status": 200})))
    assert e.timestamp == datetime(2026, 11, 30, 1, 40, 37, 500000, tzinfo=timezone.utc)


def test_level_warning_is_kept_lower_case() -> None:
    msg = 'error authorizing context: basic authentication challenge for realm "r": invalid authorization credential'
    assert ev(lib.logrus_line(T0, "warning", msg, lib.request_fields(RID, "GET", "/v2/"))).level == "warning"


def test_completed_with_error_carries_user_and_error_code() -> None:
    fields = lib.request_fields(
        RID,
        "GET",
        "/v2/team-a/app/manifests/9.9",
        **{
            "auth.user.name": "alice",
            "err.code": "manifest unknown",
            "err.detail": "unknown tag=9.9",
            "err.message": "manifest unknown",
            "http.response.status": 404,
            "http.response.written": 93,
            "vars.name": "team-a/app",
            "vars.reference": "9.9",
        },
    )
    for escape in (True, False):
        e = ev(lib.logrus_line(T0, "error", "response completed with error", fields, escape=escape))
        assert e.user == "alice"
        assert e.error_code == "manifest unknown"
        assert e.status == 404 and e.outcome == "failure" and e.tally == "pull_failed"
        assert e.auth == "none"  # a 404 is not an auth event


def test_noise_lines_are_intentional_drops() -> None:
    out = parse(lib.logrus_line(T0, "info", "redis not configured", {"go.version": "go1.19.8", "service": "registry"}))
    assert isinstance(out, Dropped) and out.intentional
    assert isinstance(parse(""), Dropped) and parse("").reason is DropReason.BLANK


def test_unreadable_time_is_bad_field() -> None:
    out = parse(lib.logrus_line("yesterday", "info", "response completed", lib.request_fields(RID, "GET", "/v2/", **{"http.response.status": 200})))
    assert isinstance(out, Dropped) and out.reason is DropReason.BAD_FIELD


# -- JSON form ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dur", "ms"),
    [
        ("3.5ms", 3.5),
        ("812µs", 0.812),  # U+00B5 micro sign, as Go prints it
        ("812μs", 0.812),  # U+03BC greek mu
        ("812us", 0.812),
        ("1m51.9s", 111_900.0),
        ("1h2m3s", 3_723_000.0),
        ("250ns", 0.00025),
        ("2s", 2000.0),
    ],
)
def test_json_form_numbers_and_go_durations(dur: str, ms: float) -> None:
    fields = lib.request_fields(
        RID,
        "GET",
        "/v2/team-b/api/blobs/sha256:" + "cd" * 32,
        **{"http.response.status": 200, "http.response.written": 1000894, "http.response.duration": dur},
    )
    e = ev(lib.json_line(T0, "info", "response completed", fields))
    assert e.status == 200 and isinstance(e.status, int)
    assert e.bytes == 1000894
    assert e.duration_ms == pytest.approx(ms)
    assert e.tally == "blob_pull" and e.action == "blob_pull"
    assert e.timestamp == T0
    assert e.client_ip == "10.0.0.1"


def test_json_trace_duration_is_nanoseconds() -> None:
    fields = lib.request_fields(RID, "GET", "/v2/a/manifests/1", **{"http.response.status": 200, "trace.duration": 3_500_000})
    assert ev(lib.json_line(T0, "info", "response completed", fields)).duration_ms == pytest.approx(3.5)


def test_json_auth_failure_line() -> None:
    e = ev(lib.json_line(T0, "error", 'error authenticating user "mallory": authentication failure', AUTH_FIELDS))
    assert e.user == "mallory" and e.auth == "auth_failure" and e.status == 401


def test_json_non_object_or_without_msg_is_unparsable() -> None:
    for text in ("{not json", "[1,2]", '{"level":"info"}', "{}"):
        out = parse(text)
        assert isinstance(out, Dropped) and not out.intentional, text


# -- TTY form ----------------------------------------------------------------------------------
def _tty_lines() -> list[str]:
    return (lib.SAMPLES / "registry-tty.log").read_bytes().decode().split("\n")


def test_tty_auth_failure_line_with_colours_and_crlf() -> None:
    raw = next(l for l in _tty_lines() if 'error authenticating user "alice"' in l)
    assert raw.startswith("\x1b[31mERRO\x1b[0m[") and raw.endswith("\r")
    rid = re.search(r"http\.request\.id\x1b\[0m=([0-9a-f-]+)", raw).group(1)
    when = datetime(2026, 11, 30, 1, 40, 44, tzinfo=timezone.utc)
    e = ev(raw, fallback=when)
    assert e.level == "error"
    assert e.message == 'error authenticating user "alice": authentication failure'
    assert e.user == "alice" and e.auth == "auth_failure" and e.status == 401
    assert e.request_id == rid
    assert e.repository == "library/alpine" and e.reference == "3.19"
    assert e.user_agent == "skopeo/1.9.3"  # no trailing \r
    assert e.timestamp == when  # the TTY form has no absolute time
    assert "\x1b" not in (e.message or "")


def test_tty_levels_and_completed_line() -> None:
    lines = _tty_lines()
    when = datetime(2026, 11, 30, 1, 40, 44, tzinfo=timezone.utc)
    warn = next(l for l in lines if "invalid authorization credential" in l)
    assert ev(warn, when).level == "warning" and ev(warn, when).auth == "challenge"
    put = next(l for l in lines if "response completed " in l and "method\x1b[0m=PUT" in l and "/manifests/" in l)
    e = ev(put, when)
    assert e.level == "info" and e.status == 201 and e.tally == "push"
    assert e.repository == "library/alpine"


def test_tty_without_any_time_is_not_an_event() -> None:
    warn = next(l for l in _tty_lines() if "invalid authorization credential" in l)
    out = parse(warn, None)
    assert isinstance(out, Dropped) and out.reason is DropReason.BAD_FIELD


def test_tty_access_line_with_crlf() -> None:
    raw = next(l for l in _tty_lines() if l.startswith("127.0.0.1 - - [") and '"GET /v2/ ' in l)
    e = ev(raw)
    assert e.status == 401 and e.user_agent == "skopeo/1.9.3" and e.auth == "challenge"


# -- access log --------------------------------------------------------------------------------
def test_access_line_fields() -> None:
    t = datetime(2026, 11, 30, 1, 40, 37, tzinfo=timezone.utc)
    e = ev(lib.access_line("127.0.0.1", t, "GET", "/v2/library/alpine/manifests/3.19", 200, 419, "skopeo/1.9.3"))
    assert (e.client_ip, e.method, e.path, e.status, e.bytes, e.user_agent) == (
        "127.0.0.1", "GET", "/v2/library/alpine/manifests/3.19", 200, 419, "skopeo/1.9.3",
    )
    assert e.timestamp == t and e.level is None
    assert e.tally == "pull" and e.repository == "library/alpine" and e.reference == "3.19"
    assert e.user is None and e.request_id is None


def test_access_line_ipv6_dash_bytes_referer_zone() -> None:
    text = '2001:db8::7 - - [30/Nov/2026:02:40:37 +0100] "HEAD /v2/a/b/manifests/latest HTTP/1.1" 200 - "https://ui.example/x?y=1" "docker/24.0.7 go/go1.20.10 (linux)"'
    e = ev(text)
    assert e.client_ip == "2001:db8::7"
    assert e.bytes is None
    assert e.user_agent == "docker/24.0.7 go/go1.20.10 (linux)"
    assert e.timestamp == datetime(2026, 11, 30, 1, 40, 37, tzinfo=timezone.utc)
    assert e.action == "pull_head" and e.tally == "none"  # a HEAD is never a pull


@pytest.mark.parametrize(
    ("method", "uri", "status", "action", "tally", "auth"),
    [
        ("GET", "/v2/", 401, "base", "none", "challenge"),
        ("GET", "/v2/", 200, "base", "none", "none"),
        ("GET", "/v2/team-b/api/manifests/2.0", 401, "pull", "pull_failed", "anonymous_denial"),
        ("GET", "/v2/team-b/api/manifests/2.0", 404, "pull", "pull_failed", "none"),
        ("GET", "/v2/team-b/api/manifests/2.0", 503, "pull", "pull_failed", "none"),
        ("GET", "/v2/team-b/api/blobs/sha256:" + "1" * 64, 200, "blob_pull", "blob_pull", "none"),
        ("HEAD", "/v2/team-b/api/blobs/sha256:" + "1" * 64, 200, "blob_head", "none", "none"),
        ("PUT", "/v2/team-b/api/manifests/2.0", 201, "push", "push", "none"),
        ("PUT", "/v2/team-b/api/manifests/2.0", 400, "push", "push_failed", "none"),
        ("DELETE", "/v2/team-b/api/manifests/sha256:" + "2" * 64, 202, "delete", "delete", "none"),
        ("DELETE", "/v2/team-a/app/manifests/1.0", 400, "delete", "delete_failed", "none"),
        ("POST", "/v2/team-b/api/blobs/uploads/?from=team-a%2Fapp&mount=sha256%3A" + "3" * 64, 201, "blob_mount", "none", "none"),
        ("POST", "/v2/team-b/api/blobs/uploads/", 202, "blob_upload_start", "none", "none"),
        ("GET", "/v2/team-b/api/tags/list", 200, "tags_list", "none", "none"),
    ],
)
def test_access_classification(method, uri, status, action, tally, auth) -> None:
    e = ev(lib.access_line("10.0.0.9", T0, method, uri, status, 10, "ua"))
    assert (e.action, e.tally, e.auth) == (action, tally, auth)
    assert e.outcome == ("success" if status < 400 else "failure")


# -- _state: bytes pushed -------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [0, 3185, 170780, 1000894, 2**33 + 5])
@pytest.mark.parametrize("pad", ["none", "urlencoded"])
def test_upload_size_from_state_token(offset: int, pad: str) -> None:
    uuid = "547218e1-66d7-4a64-9dcb-e56693c344cc"
    tok = lib.state_token("library/alpine", uuid, offset)
    if pad == "urlencoded":
        tok = quote(tok + "=" * (-len(tok) % 4), safe="")
    digest = "sha256:" + "dd" * 32
    uri = f"/v2/library/alpine/blobs/uploads/{uuid}?_state={tok}&digest={quote(digest, safe='')}"
    assert lib.decode_state_offset(uri) == offset  # the token really says so
    acc = ev(lib.access_line("127.0.0.1", T0, "PUT", uri, 201, 0, "skopeo/1.9.3"))
    assert acc.action == "blob_upload" and acc.tally == "blob_upload"
    assert acc.bytes == offset
    assert acc.digest == digest
    app = ev(lib.logrus_line(T0, "info", "response completed", lib.request_fields(RID, "PUT", uri, **{"http.response.status": 201, "http.response.written": 0})))
    assert app.bytes == offset and app.tally == "blob_upload"


def test_state_of_the_real_sample_put() -> None:
    line = next(l for l in (lib.SAMPLES / "registry-text.log").read_text().splitlines() if '"PUT /v2/library/alpine/blobs/uploads/' in l)
    uri = line.split('"')[1].split(" ")[1]
    assert ev(line).bytes == lib.decode_state_offset(uri) == 3185


def test_patch_is_not_a_completed_upload_and_garbage_state_is_harmless() -> None:
    uuid = "u-1"
    patch = ev(lib.access_line("1.1.1.1", T0, "PATCH", f"/v2/a/blobs/uploads/{uuid}?_state={lib.state_token('a', uuid, 0)}", 202, 0, "ua"))
    assert patch.tally == "none"
    for junk in ("%%%", "AAAA", "not-base64!", lib.state_token("a", uuid, 5)[:20]):
        e = ev(lib.access_line("1.1.1.1", T0, "PUT", f"/v2/a/blobs/uploads/{uuid}?_state={junk}&digest=sha256%3Aab", 201, 0, "ua"))
        assert e.tally == "blob_upload" and e.bytes is None


# -- garbage-collect output ---------------------------------------------------------------------
def test_gc_plain_text_lines() -> None:
    when = datetime(2026, 11, 30, 1, 40, 40, tzinfo=timezone.utc)
    s = ev("7 blobs marked, 3 blobs and 0 manifests eligible for deletion", when)
    assert s.action == "gc_summary" and s.timestamp == when and s.component == "gc"
    for text in (
        "library/alpine: marking manifest sha256:" + "fa" * 32 + " ",  # trailing space, as printed
        "library/alpine: marking blob sha256:" + "3e" * 32,
        "blob eligible for deletion: sha256:" + "1b" * 32,
    ):
        out = parse(text, when)
        assert isinstance(out, Dropped) and out.intentional, text


@pytest.mark.parametrize("form", ["text", "json"])
def test_gc_deleting_blob_line(form: str) -> None:
    hexd = "79f4399a2641ad08bb0e07ff55bcdc08f1681da732834a71c20f96c3c9757227"
    msg = f"Deleting blob: /docker/registry/v2/blobs/sha256/{hexd[:2]}/{hexd}"
    f = {"go.version": "go1.19.8", "instance.id": "x", "service": "registry"}
    line = lib.logrus_line(T0, "info", msg, f) if form == "text" else lib.json_line(T0, "info", msg, f)
    e = ev(line)
    assert e.action == "gc_delete_blob" and e.digest == f"sha256:{hexd}" and e.timestamp == T0


# -- against the real samples ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["registry-text", "registry-json"])
def test_every_sample_line_is_understood(name: str) -> None:
    p = DistributionParser()
    for i, text in enumerate((lib.SAMPLES / f"{name}.log").read_text(encoding="utf-8").splitlines()):
        out = p.parse(RawLine("s", "p", text, "fp", i, 0))
        assert isinstance(out, Event) or out.intentional, (i, text[:120], out)
        if isinstance(out, Event) and out.level is not None and out.method is not None:
            assert out.request_id, text[:120]
            assert out.timestamp.tzinfo is not None
            assert abs(out.timestamp - datetime(2026, 11, 30, 1, 40, 40, tzinfo=timezone.utc)) < timedelta(minutes=5)


# -- token auth (registry behind a token service: Harbor, GitLab) --------------------------------
# registry/auth/token/accesscontroller.go: no bearer header → "authorization token required";
# a token that fails verification → "invalid token" (logged as
# `error authorizing context: invalid token`, seen verbatim in GitLab's and Harbor users' logs,
# right after `token signed by untrusted key with ID: "..."`).
def _token_warning(reason: str, uri: str) -> str:
    f = lib.request_fields(RID, "GET", uri, ip="10.72.11.20", ua="docker/19.03.2 go/go1.12.8")
    if "/manifests/" in uri:
        f.update({"vars.name": "a/b", "vars.reference": "1"})
    return lib.logrus_line(T0, "warning", f"error authorizing context: {reason}", f, escape=False)


@pytest.mark.parametrize(("uri", "auth"), [("/v2/", "challenge"), ("/v2/a/b/manifests/1", "anonymous_denial")])
def test_token_required_is_a_challenge_or_anonymous_denial(uri: str, auth: str) -> None:
    assert ev(_token_warning("authorization token required", uri)).auth == auth


@pytest.mark.parametrize("uri", ["/v2/", "/v2/a/b/manifests/1"])
def test_rejected_bearer_token_is_an_auth_failure(uri: str) -> None:
    e = ev(_token_warning("invalid token", uri))
    assert e.status == 401
    assert e.auth == "auth_failure"


def test_untrusted_key_info_line_with_raw_quotes_is_understood() -> None:
    line = 'time="2019-12-16T07:08:28.160073285Z" level=info msg="token signed by untrusted key with ID: "ZI34:FHLC:U4ZF:XTKV""'
    out = parse(line)
    assert isinstance(out, Event) or out.intentional
