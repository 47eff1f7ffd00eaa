"""Lines of the programs around the registry, read through auto-detection: known noise by
kind (counted, not quarantined), while a registry or Harbor line is never taken for one."""

from __future__ import annotations

import pytest

from regwatch.config import Config
from regwatch.events import Dropped, DropReason, Event, RawLine
from regwatch.formats import make_parser


def parse(text: str) -> Event | Dropped:
    p = make_parser(None, Config())
    out = p.parse(RawLine(source="t", path="t", text=text, fingerprint="fp", offset=0))
    return out  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # a container entrypoint's shell tools (GNU quotes the path, busybox does not)
        ("find: '/etc/harbor/ssl': No such file or directory", "other"),
        ("find: /etc/harbor/ssl: No such file or directory", "other"),
        ("ls: /harbor_cust_cert: No such file or directory", "other"),
        ("chown: /var/log/jobs: Permission denied", "other"),
        # a Go stack frame whose tab a shipper or a paste turned into spaces
        ("        /go/src/github.com/docker/distribution/registry/handlers/app.go:316 +0x1c5d", "stack_trace"),
        ("\t/usr/local/go/src/net/http/server.go:1995 +0x2f", "stack_trace"),
        # other programs' leveled lines beside the registry's in a node's container logs
        ('2019-08-21 07:24:33.260 [INFO][41] ipsets.go 356: Finished resync family="inet"', "other_program"),
        ("2024-05-01 10:11:12,345 WARN [main] o.a.k.Something - slow", "other_program"),
        ("2024-05-01 10:11:12.123+02:00 ERROR controller failed", "other_program"),
        ("I0821 07:24:33.260123      41 reflector.go:356] Listing and watching", "other_program"),
        # a frame of a binary built with -trimpath: the module path, not an absolute one
        ("        github.com/distribution/distribution/v3/registry/handlers/app.go:288 +0x1edd", "stack_trace"),
        ("\tgithub.com/goharbor/harbor/src/core/main.go:150 +0x56", "stack_trace"),
        # Go's log package behind a prefix (go-redis inside core and jobservice)
        ('redis: 2021/02/09 03:02:04 sentinel.go:329: sentinel: discovered new sentinel="70d4e65a"', "go_log"),
        # the entrypoint's custom-CA messages of every Harbor image
        (" /harbor_cust_cert/ca.crt Appended ...", "other"),
        ("CA appending is Done.", "other"),
        # postgres's own program prefix before its multi-line messages
        ("postgres: could not find the database system", "database"),
        ("ls: /harbor_cust_cert: No such file or directory ", "other"),  # a trailing space
        # a Go command line's usage text after a bad invocation or config
        ("configuration error: configuration path unspecified", "other"),
        ("Usage:", "other"),
        ("  registry garbage-collect <config> [flags]", "other"),
        ("  -d, --dry-run=false: do everything except remove the blobs", "other"),
        # another program's JSON record (clair)
        ('{"Event":"pgsql: could not open database","Level":"fatal","Location":"main.go:97","Time":"2019-01-09"}',
         "other_program"),
        # go-kit logfmt of a community exporter, MySQL/MariaDB of Harbor 1.x's database
        ('level=error ts=2020-05-25T07:43:23.059Z caller=harbor_exporter.go:109 msg="Error handling request"',
         "other_program"),
        ("ts=2020-05-25T07:43:23.059Z level=info msg=started", "other_program"),
        ("2018-01-07 19:59:18 139852769384384 [Note] InnoDB: Uses event mutexes", "database"),
        ("2018-01-07T19:59:18.123456Z 0 [Warning] TIMESTAMP with implicit DEFAULT value is deprecated", "database"),
        # Harbor's errors package: its stack one "file:line, function" per line
        ("/harbor/src/pkg/scan/report/manager.go:153, github.com/goharbor/harbor/src/pkg/scan/report.(*basicManager).Delete",
         "stack_trace"),
        # zap's console line with its tabs turned into spaces: its time is no docker envelope
        ('2020-10-07T16:29:18.041Z        WARN    [858] Request served    {"path": "/x", "status": 404}',
         "other_program"),
    ],
)
def test_known_lines_of_other_programs_are_noise_by_kind(text: str, kind: str) -> None:
    out = parse(text)
    assert isinstance(out, Dropped) and out.reason is DropReason.NOISE, out
    assert out.kind == kind


@pytest.mark.parametrize(
    "text",
    [
        "find: /etc/harbor/ssl: something else happened",  # not a known complaint
        "ls /harbor_cust_cert",
        "2019-08-21 07:24:33.260 the service started",  # a time, but no level
        "I0821 this is not klog",
        "redis: the cache is cold",  # a prefix, but no Go log time after it
        "github.com/goharbor/harbor/src/core/main.go is where it starts",  # a path, not a frame
        "Usage: see the manual",
        "level=error is what it said",  # logfmt needs its time key
        "2018-01-07 19:59:18 [Note] no thread id",
        '{"path": "/x", "status": 404}',  # JSON, but no level: no log record
    ],
)
def test_lookalikes_stay_unrecognized(text: str) -> None:
    out = parse(text)
    assert isinstance(out, Dropped) and out.reason is not DropReason.NOISE, out


def test_harbor_and_registry_lines_are_not_taken_for_other_programs() -> None:
    h = parse("2024-05-01T10:11:12Z [ERROR] [/core/controllers/base.go:110]: failed to get user")
    assert not (isinstance(h, Dropped) and h.kind == "other_program"), h
    r = parse('time="2024-05-01T10:11:12Z" level=info msg="response completed" http.request.method=GET '
              'http.request.uri="/v2/" http.response.status=200')
    assert isinstance(r, Event) and r.component == "registry"


def test_harbor_lines_in_forms_seen_in_the_wild() -> None:
    from regwatch.parsing.harbor import HarborParser

    # a failed basic auth whose comma the poster's masking removed still names the user
    fail = parse('2025-09-05T16:14:46Z [ERROR] [/server/middleware/security/basic_auth.go:72][client IP="10.7.3.12" '
                 'user agent="docker/19.03.11"]: failed to authenticate user:USER error:Failed to authenticate user')
    assert isinstance(fail, Event) and fail.user == "USER" and fail.client_ip == "10.7.3.12", fail
    # registryctl's own access log under rsyslog is Harbor's noise, not a continuation
    hp = HarborParser()
    out = hp.parse(RawLine("t", "t", 'Jun 24 17:39:35 172.30.0.1 registryctl[1350]: 127.0.0.1 - - '
                           '[24/Jun/2020:09:39:35 +0000] "GET /api/health HTTP/1.1" 200 9', "fp", 0))
    assert isinstance(out, Dropped) and out.kind == "harbor_log", out
    # garbage-collect's mark line with a space before the colon
    gc = parse("myimage : marking blob sha256:6df02cd4a5e421225aa96cf1be299a9f0e3d22154376442e7505f42b7d38149f")
    assert not (isinstance(gc, Dropped) and gc.reason is DropReason.UNPARSABLE), gc


def test_a_cut_json_record_stays_unrecognized() -> None:
    out = parse('{"Event":"pgsql: could not open database","Level":"fatal","Location":"main.go:9')
    assert isinstance(out, Dropped) and out.reason is DropReason.UNPARSABLE, out


def test_a_syslog_line_with_an_empty_host_is_read() -> None:
    out = parse("Dec  5 00:03:00  jobservice[13934]: 2021-12-05T00:03:00Z [INFO] "
                "[/jobservice/job/impl/gc/garbage_collection.go:273]: delete manifest from storage: sha256:abc")
    assert isinstance(out, Dropped) and out.reason is DropReason.NOISE and out.kind == "job_log", out
