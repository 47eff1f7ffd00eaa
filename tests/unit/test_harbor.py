"""Unit tests of the Harbor parsers: wrapper, times, counting rules, audit records."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from regwatch.errors import ConfigError
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
from regwatch.parsing import harbor_audit
from regwatch.parsing.harbor import HarborParser, decode_syslog, sniff, unescape_nginx
from regwatch.parsing.harbor_audit import audit_action, parse_audit_time, split_resource

TOKYO = ZoneInfo("Asia/Tokyo")
UA = r"docker/24.0.7 UpstreamClient(Docker-Client/24.0.7 \x5C(linux\x5C))"


def raw(text: str, offset: int = 0, component: str | None = None) -> RawLine:
    return RawLine(
        source="t", path="t", text=text, fingerprint="fp", offset=offset, component=component
    )


def parse(text: str, parser: HarborParser | None = None, **kw: object) -> Event | Dropped:
    p = parser or HarborParser(TOKYO, 2024)
    return p.parse(raw(text, **kw))  # type: ignore[arg-type]


def ev(text: str, parser: HarborParser | None = None) -> Event:
    out = parse(text, parser)
    assert isinstance(out, Event), out
    return out


def proxy(body: str, t: str = "19:00:02") -> str:
    return f"Mar  5 {t} 172.18.0.1 proxy[1187]: {body}"


def core(body: str, t: str = "19:00:03") -> str:
    return f"Mar  5 {t} 172.18.0.1 core[1187]: {body}"


@dataclass(frozen=True)
class FixedClock:
    instant: datetime

    def now(self) -> datetime:
        return self.instant


# --- wrapper ---------------------------------------------------------------------


def test_sniff_accepts_harbor_tags_only() -> None:
    assert sniff(proxy('1.2.3.4 - "GET /v2/ HTTP/1.1" 401 76 "-" "x" 0.001 0.001 .'))
    assert sniff("Mar 11 08:16:12 172.18.0.1 postgresql[4480]: LOG:  ready")
    assert sniff("Jun  3 12:07:13 host ui[1]: x")  # Harbor 1.x core
    assert sniff("2024-03-05T19:00:02.123+09:00 172.18.0.1 core[1187]: x")
    assert not sniff("Mar  5 19:00:02 myhost sshd[123]: Accepted publickey for root")
    assert not sniff('time="2024-03-05T10:00:00Z" level=info msg="x"')
    assert not sniff("2024-03-05T10:00:00Z [INFO] [/x.go:1]: bare logger line")
    assert not sniff("")
    assert HarborParser.sniff is sniff


def test_unknown_tag_is_another_programs_noise_and_blank_is_blank() -> None:
    # a host syslog or journald export holds every program's lines: known, not ours
    out = parse("Mar  5 19:00:02 myhost sshd[123]: Accepted publickey")
    assert isinstance(out, Dropped) and out.reason is DropReason.NOISE
    assert out.kind == "other_program"
    # ... unless the body is a registry component's own line (a container-id tag)
    reg = parse(
        'Mar  5 19:00:02 myhost 3f2a9c1b7d6e[99]: time="2024-03-05T10:00:02Z" level=info '
        'msg="response completed" http.request.method=GET http.request.uri="/v2/" '
        "http.response.status=200"
    )
    assert isinstance(reg, Event) and reg.component == "registry"
    assert parse("   ").reason is DropReason.BLANK  # type: ignore[union-attr]
    assert parse(core("")).reason is DropReason.BLANK  # type: ignore[union-attr]


def test_octal_escapes_decode_control_characters_only() -> None:
    assert decode_syslog("#011/go/src/x.go:1 +0x2") == "\t/go/src/x.go:1 +0x2"
    assert decode_syslog("#033[42m 200 #033[0m") == "\x1b[42m 200 \x1b[0m"
    assert decode_syslog("issue #123 and #177") == "issue #123 and \x7f"
    assert decode_syslog("no escapes") == "no escapes"


def test_nginx_escapes_decode_to_utf8() -> None:
    assert unescape_nginx(r"a \x22b\x22 \x5C") == 'a "b" \\'
    assert unescape_nginx(r"caf\xC3\xA9") == "café"
    assert unescape_nginx(r"\xFF") == "\ufffd"


def test_message_repeated_stands_for_n_records() -> None:
    line = proxy(
        'message repeated 4 times: [ 10.20.30.40 - "GET /v2/ HTTP/1.1" 401 76 "-" "containerd/1.7.13" 0.001 0.001 .]'
    )
    e = ev(line)
    assert e.repeat == 4 and e.auth == AuthClass.CHALLENGE.value and e.client_ip == "10.20.30.40"


def test_problem_lines_are_dropped_with_the_sources_reason() -> None:
    p = HarborParser()
    line = RawLine("t", "t", "x" * 10, "fp", 0, problem=DropReason.TOO_LONG)
    assert p.parse(line).reason is DropReason.TOO_LONG  # type: ignore[union-attr]


# --- times -----------------------------------------------------------------------


def test_prefix_time_uses_host_zone_and_default_year() -> None:
    e = ev(proxy(f'1.2.3.4 - "GET /v2/ HTTP/1.1" 401 76 "-" "{UA}" 0.001 0.001 .'))
    assert e.timestamp == datetime(2024, 3, 5, 10, 0, 2, tzinfo=UTC)
    e = ev(proxy('1.2.3.4 - "GET /v2/ HTTP/1.1" 401 76 "-" "x" 0.001 0.001 .'), HarborParser())
    assert e.timestamp.tzinfo == UTC and e.timestamp.hour == 19  # no hint: UTC


def test_body_time_wins_and_sets_the_year() -> None:
    p = HarborParser(TOKYO, 2019)
    e = ev(
        core(
            "2024-03-05T10:00:03Z [ERROR] [/x.go:1]: failed to authenticate user:a, error:x",
            "19:00:03",
        ),
        p,
    )
    assert e.timestamp == datetime(2024, 3, 5, 10, 0, 3, tzinfo=UTC)
    e = ev(proxy('1.2.3.4 - "GET /v2/ HTTP/1.1" 200 2 "-" "x" 0.001 0.001 .', "19:00:04"), p)
    assert e.timestamp.year == 2024


def test_year_rolls_over_from_december_to_january() -> None:
    p = HarborParser(TOKYO, 2023)
    a = ev('Dec 31 23:59:59 h proxy[1]: 1.2.3.4 - "GET /v2/ HTTP/1.1" 200 2 "-" "x" 0.0 0.0 .', p)
    b = ev('Jan  1 00:00:01 h proxy[1]: 1.2.3.4 - "GET /v2/ HTTP/1.1" 200 2 "-" "x" 0.0 0.0 .', p)
    assert b.timestamp - a.timestamp == timedelta(seconds=2)


def test_year_comes_from_the_injected_clock_when_unknown() -> None:
    clock = FixedClock(datetime(2025, 1, 10, tzinfo=UTC))
    line = 'Dec 30 10:00:00 h proxy[1]: 1.2.3.4 - "GET /v2/ HTTP/1.1" 200 2 "-" "x" 0.0 0.0 .'
    assert ev(line, HarborParser(clock=clock)).timestamp.year == 2024  # December is last year's
    line = 'Jan  9 10:00:00 h proxy[1]: 1.2.3.4 - "GET /v2/ HTTP/1.1" 200 2 "-" "x" 0.0 0.0 .'
    assert ev(line, HarborParser(clock=clock)).timestamp.year == 2025


def test_iso_prefix_carries_its_own_zone() -> None:
    line = '2024-03-05T19:00:02+09:00 172.18.0.1 proxy[1]: 1.2.3.4 - "GET /v2/ HTTP/1.1" 200 2 "-" "x" 0.0 0.0 .'
    assert ev(line, HarborParser()).timestamp == datetime(2024, 3, 5, 10, 0, 2, tzinfo=UTC)


def test_proxy_line_without_any_time_is_a_bad_field() -> None:
    out = HarborParser().parse(raw('1.2.3.4 - "GET /v2/ HTTP/1.0" 401 76 "-" "x" 0.003 0.003 .'))
    assert isinstance(out, Dropped) and out.reason is DropReason.BAD_FIELD


# --- core ------------------------------------------------------------------------


def test_auth_failure_variants() -> None:
    e = ev(
        core(
            '2024-03-05T10:00:03Z [ERROR] [/s/basic_auth.go:72][client IP="192.168.10.21" requestID="r1" user agent="curl/8 (x; y)"]: failed to authenticate user:alice, error:bad'
        )
    )
    assert (e.action, e.outcome, e.auth, e.tally) == ("auth", "failure", "auth_failure", "none")
    assert (e.user, e.client_ip, e.user_agent, e.request_id, e.level) == (
        "alice",
        "192.168.10.21",
        "curl/8 (x; y)",
        "r1",
        "error",
    )
    e = ev(
        core(
            '2023-02-27T02:26:40Z [ERROR] [/s/basic_auth.go:41][requestID="x"]: failed to authenticate robot$ci+b: Failed'
        )
    )
    assert e.user == "robot$ci+b" and e.auth == AuthClass.AUTH_FAILURE.value
    e = ev(core("2024-03-05T10:00:03Z [ERROR] [/s.go:1]: failed to authenticate user:, error:x"))
    assert e.user is None and e.auth == AuthClass.ANONYMOUS_DENIAL.value
    e = ev(core("2024-03-05T10:00:03Z [DEBUG] [/s.go:1]: failed to authenticate user:bob, error:x"))
    assert e.user == "bob" and e.level == "debug"
    e = ev(
        core(
            "2020-09-28T02:37:09Z [ERROR] [/core/controllers/base.go:109]: Error occurred in UserLogin: Failed"
        )
    )
    assert e.user is None and e.auth == AuthClass.AUTH_FAILURE.value
    out = parse(
        core("2024-03-05T10:00:03Z [ERROR] [/x.go:1]: failed to authenticate with registry: boom")
    )
    assert isinstance(out, Dropped) and out.reason is DropReason.NOISE


def test_other_logger_lines_are_noise_and_broken_ones_unparsable() -> None:
    assert parse(core("2024-03-05T10:00:00Z [INFO] [/x.go:1]: hello")).reason is DropReason.NOISE  # type: ignore[union-attr]
    assert parse(core("2024-03-05T10:00 [INFO] cut")).reason is DropReason.UNPARSABLE  # type: ignore[union-attr]
    assert (
        parse(core("Appending internal tls trust CA to ca-bundle ...")).reason is DropReason.NOISE
    )  # type: ignore[union-attr]


def test_beego_access_line_never_counts() -> None:
    line = (
        "Jun  3 12:07:13 h core[1]: 2019/06/03 12:07:13 #033[1;44m[D] [server.go:2619] | 1.2.3.4|"
        "#033[43m 401 #033[0m|   3.176727ms|   match|#033[44m GET     #033[0m /v2/   r:/v2/*#033[0m"
    )
    e = ev(line, HarborParser())
    assert (e.component, e.action, e.status, e.tally, e.auth) == (
        "core",
        "base",
        401,
        "none",
        "none",
    )
    assert e.duration_ms == pytest.approx(3.176727)
    assert e.timestamp == datetime(2019, 6, 3, 12, 7, 13, tzinfo=UTC)


def test_raw_is_redacted() -> None:
    e = ev(
        core(
            "2024-03-05T10:00:03Z [ERROR] [/x.go:1]: failed to authenticate user:a, error:Authorization: Basic YWxpY2U6czNjcjN0"
        )
    )
    assert "YWxpY2U6czNjcjN0" not in e.raw and "[REDACTED]" in e.raw


# --- proxy and the counting rule ---------------------------------------------------


def test_proxy_counts_by_default() -> None:
    e = ev(
        proxy(
            f'1.2.3.4 - "PUT /v2/library/nginx/manifests/1.25 HTTP/1.1" 201 0 "-" "{UA}" 0.091 0.090 .'
        )
    )
    assert (e.action, e.tally, e.repository, e.reference, e.status) == (
        "push",
        "push",
        "library/nginx",
        "1.25",
        201,
    )
    assert e.duration_ms == pytest.approx(91.0) and e.user_agent.endswith(r"\(linux\))")
    e = ev(proxy('1.2.3.4 - "GET /v2/ HTTP/1.1" 401 76 "-" "x" 0.001 0.001 .'))
    assert e.auth == AuthClass.CHALLENGE.value and e.tally == Tally.NONE.value
    e = ev(
        proxy(
            '1.2.3.4 - "DELETE /v2/a/b/manifests/sha256:'
            + "a" * 64
            + ' HTTP/1.1" 202 0 "-" "x" 0.05 0.05 .'
        )
    )
    assert e.tally == Tally.DELETE.value and e.digest == "sha256:" + "a" * 64


def test_registry_mode_counts_the_registry_and_not_the_proxy() -> None:
    p = HarborParser(TOKYO, 2024, count_from="registry")
    e = ev(proxy('1.2.3.4 - "GET /v2/ HTTP/1.1" 401 76 "-" "x" 0.001 0.001 .'), p)
    assert e.auth == AuthClass.NONE.value and e.tally == Tally.NONE.value
    e = ev(proxy('1.2.3.4 - "PUT /v2/l/n/manifests/1 HTTP/1.1" 201 0 "-" "x" 0.1 0.1 .'), p)
    assert e.tally == Tally.NONE.value
    with pytest.raises(ConfigError):
        HarborParser(count_from="nginx")  # type: ignore[arg-type]


def test_registry_tag_delegates_to_the_distribution_parser() -> None:
    pytest.importorskip("regwatch.parsing.distribution")
    line = (
        "Mar  5 19:01:02 172.18.0.1 registry[1187]: 172.18.0.8 - - [05/Mar/2024:10:01:02 +0000] "
        '"PUT /v2/library/nginx/manifests/1.25 HTTP/1.1" 201 0 "" "docker/24"'
    )
    e = ev(line)
    assert (e.source, e.component, e.action, e.tally, e.host) == (
        "harbor",
        "registry",
        "push",
        "none",
        "172.18.0.1",
    )
    assert e.raw.startswith("Mar  5 19:01:02") and e.id == event_id("fp", 0)
    e = ev(line, HarborParser(TOKYO, 2024, count_from="registry"))
    assert e.tally == Tally.PUSH.value
    out = parse("Mar  5 19:01:02 172.18.0.1 registry[1187]: #011/go/src/x/registry.go:86 +0x213")
    assert isinstance(out, Dropped) and out.reason is DropReason.NOISE
    bare = HarborParser().parse(
        raw('time="2024-03-05T10:00:00Z" level=info msg="x"', component="registry")
    )
    assert isinstance(bare, Dropped) and bare.reason is DropReason.NOISE


def test_token_requests_name_the_account() -> None:
    e = ev(
        proxy(
            '1.2.3.4 - "GET /service/token?account=alice&service=harbor-registry HTTP/1.1" 401 66 "-" "x" 0.1 0.1 .'
        )
    )
    assert (e.action, e.outcome, e.user, e.auth) == (
        "auth",
        "failure",
        "alice",
        "none",
    )  # counted from core
    e = ev(
        proxy(
            '1.2.3.4 - "GET /service/token?account=alice&service=harbor-registry HTTP/1.1" 200 900 "-" "x" 0.1 0.1 .'
        )
    )
    assert e.auth == AuthClass.AUTH_SUCCESS.value
    e = ev(
        proxy(
            '1.2.3.4 - "GET /service/token?scope=repository:a/b:pull&service=harbor-registry HTTP/1.1" 200 900 "-" "x" 0.1 0.1 .'
        )
    )
    assert e.user is None and e.auth == AuthClass.NONE.value


def test_harbor_api_deletes_count_as_deletes() -> None:
    d = "sha256:" + "b" * 64
    e = ev(
        proxy(
            f'1.2.3.4 - "DELETE /api/v2.0/projects/team/repositories/backend%252Fapi/artifacts/{d} HTTP/1.1" 200 0 "-" "x" 0.1 0.1 .'
        )
    )
    assert (e.action, e.tally, e.repository, e.reference, e.digest) == (
        "delete",
        "delete",
        "team/backend/api",
        d,
        d,
    )
    e = ev(
        proxy(
            '1.2.3.4 - "DELETE /api/repositories/library/nginx/tags/1.0 HTTP/1.1" 200 0 "-" "x" 0.1 0.1 .'
        )
    )
    assert (e.action, e.tally, e.repository, e.reference) == (
        "delete",
        "delete",
        "library/nginx",
        "1.0",
    )
    e = ev(
        proxy(
            '1.2.3.4 - "DELETE /api/v2.0/projects/team/repositories/x HTTP/1.1" 403 0 "-" "x" 0.1 0.1 .'
        )
    )
    assert e.tally == Tally.DELETE_FAILED.value
    e = ev(proxy('1.2.3.4 - "GET /api/v2.0/projects HTTP/1.1" 200 10 "-" "x" 0.1 0.1 .'))
    assert (e.action, e.tally) == ("other", "none")


def test_static_health_and_garbage_requests_are_noise() -> None:
    for body in (
        '1.2.3.4 - "GET /main.js HTTP/1.1" 200 10 "-" "x" 0.1 0.1 .',
        '1.2.3.4 - "GET /api/v2.0/ping HTTP/1.1" 200 4 "-" "x" 0.0 0.0 .',
        r'1.2.3.4 - "\x16\x03\x01" 400 157 "-" "-" 0.001 - .',
        "2024/03/05 10:09:45 [error] 8#0: *1234 upstream prematurely closed connection",
    ):
        out = parse(proxy(body))
        assert isinstance(out, Dropped) and out.reason is DropReason.NOISE, body
    out = parse(proxy("something else entirely"))
    assert isinstance(out, Dropped) and out.reason is DropReason.UNPARSABLE


def test_upload_bytes_come_from_the_state_token() -> None:
    line = (SAMPLES / "proxy.log").read_text().splitlines()[8]
    e = ev(line)
    assert (e.action, e.tally, e.bytes) == ("blob_upload", "blob_upload", 31457280)


def test_helm_nginx_format_has_its_own_time() -> None:
    line = '[25/Nov/2021:15:28:20 +0000]:10.42.80.0 - "PUT /v2/c/p/manifests/2.1 HTTP/1.1" 201 0 "-" "d" 3.043 3.044 .'
    e = HarborParser().parse(raw(line))
    assert isinstance(e, Event) and e.timestamp == datetime(2021, 11, 25, 15, 28, 20, tzinfo=UTC)
    assert e.component == "proxy" and e.tally == Tally.PUSH.value


# --- jobservice ---------------------------------------------------------------------

SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs" / "harbor"


def job(p: HarborParser, body: str) -> Event | Dropped:
    return p.parse(raw(f"Mar  5 19:30:00 172.18.0.1 jobservice[1187]: {body}"))


ROW = (
    "| sha256:"
    + "c" * 64
    + " | 1.0,old | image |  | 2024/01/01 00:00:00 |  | 2024/01/01 00:00:00 | DEL       |"
)


def test_retention_rows_follow_the_job_context() -> None:
    p = HarborParser(TOKYO, 2024)
    job(p, "2024-03-05T10:30:00Z [INFO] [/pkg/retention/job.go:88]: Run retention process.")
    job(p, " Repository: library/app ")
    job(p, " Dry Run: false")
    e = job(p, ROW)
    assert isinstance(e, Event)
    assert (e.action, e.outcome, e.tally, e.repository, e.reference, e.user) == (
        "delete",
        "success",
        "none",
        "library/app",
        "1.0",
        None,
    )
    assert e.digest == "sha256:" + "c" * 64 and "1.0,old" in (e.message or "")
    job(p, "2024-03-05T10:31:00Z [INFO] [/pkg/retention/job.go:88]: Run retention process.")
    job(p, " Dry Run: true")
    out = job(p, ROW)
    assert isinstance(out, Dropped) and out.reason is DropReason.NOISE
    fresh = job(HarborParser(TOKYO, 2024), ROW)  # context unknown (resumed mid-table)
    assert (
        isinstance(fresh, Event)
        and fresh.outcome == Outcome.UNKNOWN.value
        and fresh.repository is None
    )
    err = job(HarborParser(TOKYO, 2024), ROW.replace("DEL      ", "ERR      "))
    assert isinstance(err, Event) and err.outcome == Outcome.FAILURE.value
    old = job(HarborParser(TOKYO, 2024), "| library/app:1.0 | image |  | a | b | c | DEL |")
    assert isinstance(old, Event) and (old.repository, old.reference) == ("library/app", "1.0")


def test_gc_dry_run_deletes_nothing() -> None:
    p = HarborParser(TOKYO, 2024)
    job(
        p,
        "2024-03-05T11:00:00Z [INFO] [/gc.go:1]: Garbage Collection parameters: [delete_untagged: true, dry_run: true, time_window: 2, workers: 1]",
    )
    out = job(
        p,
        "2024-03-05T11:00:01Z [INFO] [/gc.go:2]: delete the untagged artifact: ProjectID:(1)-RepositoryName(a/b)-MediaType:(m)-Digest:(sha256:1)",
    )
    assert isinstance(out, Dropped) and out.reason is DropReason.NOISE
    e = job(
        p,
        "2024-03-05T11:00:02Z [INFO] [/gc.go:3]: The GC could free up 3 MB space, the size is a rough estimation.",
    )
    assert isinstance(e, Event) and (e.action, e.bytes) == (Action.GC_MARK.value, 3 * 1024 * 1024)


def test_gc_failures_are_events() -> None:
    p = HarborParser(TOKYO, 2024)
    e = job(
        p,
        "2024-03-05T11:00:02Z [ERROR] [/gc.go:1]: failed to execute GC job at sweep phase, error: boom",
    )
    assert isinstance(e, Event) and (e.action, e.outcome) == ("gc_summary", "failure")
    e = job(
        p,
        "2024-03-05T11:00:02Z [ERROR] [/gc.go:1]: failed to delete manifest with v2 API, a/b, sha256:9, boom",
    )
    assert isinstance(e, Event) and (e.action, e.outcome, e.repository, e.digest) == (
        "gc_delete_manifest",
        "failure",
        "a/b",
        "sha256:9",
    )


# --- audit ------------------------------------------------------------------------


def test_forwarded_audit_line() -> None:
    line = (
        "Mar  5 10:01:03 5d4c3b2a1f09 audit[1]: 2024-03-05T10:01:03Z [INFO] [/pkg/audit/manager.go:76]"
        '[operator="alice" resourceType="artifact" time="2024-03-05 19:01:02.5 +0900 JST m=+5.1"]: action:create, resource:library/nginx:1.25'
    )
    e = ev(line, HarborParser())
    assert (e.source, e.component, e.action, e.tally, e.user) == (
        "harbor-audit",
        "audit",
        "push",
        "none",
        "alice",
    )
    assert e.timestamp == datetime(2024, 3, 5, 10, 1, 2, 500000, tzinfo=UTC)
    assert (e.repository, e.reference, e.host) == ("library/nginx", "1.25", "5d4c3b2a1f09")


@pytest.mark.parametrize(
    ("resource", "rtype", "want"),
    [
        ("library/nginx:1.25", "artifact", ("library/nginx", "1.25", None)),
        (
            "library/nginx:sha256:" + "a" * 64,
            "artifact",
            ("library/nginx", "sha256:" + "a" * 64, "sha256:" + "a" * 64),
        ),
        (
            "library/nginx@sha256:" + "a" * 64,
            "artifact",
            ("library/nginx", "sha256:" + "a" * 64, "sha256:" + "a" * 64),
        ),
        ("a/b/c:v1", "tag", ("a/b/c", "v1", None)),
        ("team/backend/api", "repository", ("team/backend/api", None, None)),
        ("3", "project", (None, None, None)),
        ("3", "", (None, None, None)),
        ("team", "", (None, None, None)),
        ("library/nginx", "", ("library/nginx", None, None)),
        ("foo:1.7.1", "artifact", ("foo", "1.7.1", None)),
        ("bob", "user", (None, None, None)),
        ("", "artifact", (None, None, None)),
    ],
)
def test_split_resource(
    resource: str, rtype: str, want: tuple[str | None, str | None, str | None]
) -> None:
    assert split_resource(resource, rtype) == want


def test_audit_action_mapping() -> None:
    assert audit_action("delete", "tag", "a/b:1") is Action.DELETE
    assert audit_action("pull", "artifact", "a/b:1") is Action.PULL
    assert audit_action("create", "artifact", "a/b:1") is Action.PUSH
    assert audit_action("create", "", "a/b:1") is Action.PUSH
    assert audit_action("create", "project", "a") is Action.AUDIT
    assert audit_action("push", None, None) is Action.PUSH
    assert audit_action("login", "user", "a") is Action.AUTH
    assert audit_action("update", "configuration", "c") is Action.AUDIT


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (
            "2023-10-18 07:43:52.72521725 +0000 UTC m=+1256.975537422",
            datetime(2023, 10, 18, 7, 43, 52, 725217),
        ),
        ("2024-03-05T10:01:02.998Z", datetime(2024, 3, 5, 10, 1, 2, 998000)),
        ("2024-03-05 10:01:02.998181", datetime(2024, 3, 5, 10, 1, 2, 998181)),
        ("2024-03-05 19:01:02+09", datetime(2024, 3, 5, 10, 1, 2)),
        ("2024-03-05 15:31:02.5+05:30", datetime(2024, 3, 5, 10, 1, 2, 500000)),
        ("2024-03-05 10:01:02 +0000 UTC", datetime(2024, 3, 5, 10, 1, 2)),
        (1709632862, datetime(2024, 3, 5, 10, 1, 2)),
        ("1709632862000", datetime(2024, 3, 5, 10, 1, 2)),
    ],
)
def test_parse_audit_time(value: object, want: datetime) -> None:
    assert parse_audit_time(value) == want.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "value", [None, "", "yesterday", "05/03/2024", True, "2024-13-40 99:99:99", 0, [1]]
)
def test_parse_audit_time_rejects(value: object) -> None:
    assert parse_audit_time(value) is None


# --- audit exports ---------------------------------------------------------------


def test_sniff_file() -> None:
    for name in (
        "audit-logs.json",
        "audit_log.csv",
        "audit_log.tsv",
        "auditlog-exts.json",
        "audit-logs.broken.jsonl",
        "real/issue-19160-audit_log.tsv",
    ):
        head = (SAMPLES / name).read_bytes()[:4096]
        assert harbor_audit.sniff_file(head, name), name
    assert harbor_audit.sniff_file(
        gzip.compress((SAMPLES / "audit_log.csv").read_bytes())[:300], "x.csv.gz"
    )
    for name in ("core.log", "proxy.log"):
        assert not harbor_audit.sniff_file((SAMPLES / name).read_bytes()[:4096], name), name
    assert not harbor_audit.sniff_file(b"", "x")
    assert not harbor_audit.sniff_file(b"\x1f\x8b\x00garbage", "x.gz")


def _events(path: Path, fp: str = "fp") -> list[Event | Dropped]:
    return list(harbor_audit.parse_file(str(path), fp))


def test_export_ids_come_from_the_record_not_the_file(tmp_path: Path) -> None:
    """The same audit record in two exports (or two files) is one event."""
    csv_ids = [e.id for e in _events(SAMPLES / "audit_log.csv", "fp-a") if isinstance(e, Event)]
    again = [e.id for e in _events(SAMPLES / "audit_log.csv", "fp-b") if isinstance(e, Event)]
    assert csv_ids == again and len(set(csv_ids)) == len(csv_ids)
    tsv_ids = {e.id for e in _events(SAMPLES / "audit_log.tsv", "fp-c") if isinstance(e, Event)}
    api_ids = {e.id for e in _events(SAMPLES / "audit-logs.json", "fp-d") if isinstance(e, Event)}
    assert set(csv_ids) == tsv_ids == api_ids
    f = tmp_path / "noid.jsonl"
    f.write_text(
        json.dumps(
            {
                "operation": "pull",
                "op_time": "2024-03-05T10:00:00Z",
                "resource": "a/b:1",
                "resource_type": "artifact",
                "username": "u",
            }
        )
        + "\n"
    )
    (e,) = _events(f)
    (e2,) = _events(f, "another-file")
    assert isinstance(e, Event) and isinstance(e2, Event) and e.id == e2.id


def test_export_variants(tmp_path: Path) -> None:
    gz = tmp_path / "audit.json.gz"
    gz.write_bytes(gzip.compress((SAMPLES / "audit-logs.json").read_bytes()))
    assert len([e for e in _events(gz) if isinstance(e, Event)]) == 12
    v1 = tmp_path / "logs.json"  # Harbor 1.x /api/logs items
    v1.write_text(
        json.dumps(
            [
                {
                    "log_id": 1637,
                    "username": "admin",
                    "project_id": 1,
                    "repo_name": "library/ubuntu-debug",
                    "repo_tag": "1",
                    "operation": "pull",
                    "op_time": "2021-08-11T06:09:49.334937Z",
                }
            ]
        )
    )
    (e,) = _events(v1)
    assert isinstance(e, Event) and (e.action, e.repository, e.reference) == (
        "pull",
        "library/ubuntu-debug",
        "1",
    )
    csvf = tmp_path / "q.csv"
    csvf.write_text(
        "id,operation,resource_type,resource,username,op_time,operation_result\n"
        '7,delete,artifact,"a/b:1",u,2024-03-05 10:00:00,f\n(1 row)\n'
    )
    (e,) = _events(csvf)
    assert isinstance(e, Event) and e.outcome == Outcome.FAILURE.value and e.action == "delete"
    psql = tmp_path / "p.txt"
    psql.write_text(
        " id | operation | resource_type | resource | username | op_time\n"
        "----+-----------+---------------+----------+----------+--------\n"
        " 5 | pull | artifact | a/b:1 | u | 2024-03-05 10:00:00\n"
    )
    (e,) = _events(psql)
    assert isinstance(e, Event) and e.user == "u" and e.reference == "1"
    nohdr = tmp_path / "n.csv"
    nohdr.write_text("1,2,3\n4,5,6\n")
    (d,) = _events(nohdr)
    assert isinstance(d, Dropped) and d.reason is DropReason.UNPARSABLE
    assert _events(tmp_path / "missing.json")[0].reason is DropReason.IO_ERROR  # type: ignore[union-attr]
    empty = tmp_path / "e.json"
    empty.write_text("")
    assert _events(empty) == []


def test_broken_array_resyncs_on_the_next_record(tmp_path: Path) -> None:
    good = json.loads((SAMPLES / "audit-logs.json").read_text().split("\n]\n")[0] + "\n]")
    text = json.dumps(good[:3], indent=2)
    broken = text.replace('"operation": "create"', '"operation": "create",,', 1)
    f = tmp_path / "b.json"
    f.write_text(broken)
    out = _events(f)
    assert sum(isinstance(e, Event) for e in out) == 2
    assert any(isinstance(e, Dropped) and e.reason is DropReason.UNPARSABLE for e in out)


def test_a_line_without_a_prefix_teaches_no_host_offset() -> None:
    # a bare logger line's body time is not to be set against the prefix of the syslog
    # line before it: they are different moments (it taught +11:00 here)
    p = HarborParser()
    p.parse(raw('Mar  5 19:00:02 172.18.0.1 proxy[1]: 1.2.3.4 - "GET /v2/ HTTP/1.1" 401 87 "-" "x" 0.001 0.001 .'))
    assert p.offset is None
    p.parse_inner(raw("2024-03-05T08:00:02Z [INFO] [/core/main.go:1]: hi"), "2024-03-05T08:00:02Z [INFO] [/core/main.go:1]: hi", None)
    assert p.offset is None
    # a logger line under the prefix does teach it
    p.parse(raw("Mar  5 19:00:03 172.18.0.1 core[2]: 2024-03-05T10:00:03Z [INFO] [/core/main.go:1]: hi"))
    assert p.offset == timedelta(hours=9)
