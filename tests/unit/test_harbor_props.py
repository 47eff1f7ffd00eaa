"""Property tests: the Harbor parsers never raise, whatever they are fed."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwatch.events import Dropped, Event, RawLine
from regwatch.parsing import harbor_audit
from regwatch.parsing.harbor import HarborParser, sniff

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo"]
TAGS = [
    "core",
    "ui",
    "registry",
    "registryctl",
    "proxy",
    "jobservice",
    "portal",
    "postgresql",
    "db",
    "redis",
    "log",
    "audit",
    "nginx",
    "sshd",
    "x",
]
FRAGMENTS = [
    "message repeated 3 times: [ ",
    "]",
    "#011",
    "#033[0m",
    "#377",
    "2024-03-05T10:00:00Z [INFO] ",
    "[ERROR] ",
    "[/x.go:1]",
    '[client IP="1.2.3.4" user agent="a b"]',
    ": ",
    "failed to authenticate user:",
    ", error:",
    "failed to authenticate ",
    "action:delete, resource:",
    '[operator="" time="2024-03-05 10:00:00 +0000 UTC m=+1"]',
    '1.2.3.4 - "GET /v2/ HTTP/1.1" 401 76 "-" "x" 0.001 0.001 .',
    '"PUT /v2/a/b/manifests/1 HTTP/1.1"',
    r"\x5C",
    "| sha256:abc | 1.0 | image |  | a | b | c | DEL |",
    " Repository: a/b ",
    " Dry Run: false",
    "delete blob record from database: 1, sha256:x",
    "The GC job actual frees up 9 MB space.",
    "[4a0c9a43-7f1e-4d5b-9c2a-8e6f0b1d3c57][1/3] ",
    'time="2024-03-05T10:00:00Z" level=info msg="x"',
    "2019/06/03 12:07:13 \x1b[1;44m[D] [server.go:2619] | 1.2.3.4|\x1b[43m 401 \x1b[0m| 3ms| match|",
    "/api/v2.0/projects/a/repositories/b%252Fc/artifacts/sha256:1",
    "?_state=",
    "&digest=",
    "\x00",
    "\ud800",
]

junk = st.text(max_size=300)
fragments = st.lists(st.sampled_from(FRAGMENTS) | junk, max_size=8).map("".join)


@st.composite
def syslog_lines(draw: st.DrawFn) -> str:
    mon = draw(st.sampled_from(MONTHS))
    day = draw(st.integers(0, 40))
    hh, mm, ss = draw(st.integers(0, 99)), draw(st.integers(0, 99)), draw(st.integers(0, 99))
    host = draw(st.sampled_from(["172.18.0.1", "h", "******X******", "<host>"]))
    tag = draw(st.sampled_from(TAGS))
    pid = draw(st.sampled_from(["[1187]", "[1]", "", "[x]"]))
    body = draw(fragments)
    return f"{mon} {day:2d} {hh:02d}:{mm:02d}:{ss:02d} {host} {tag}{pid}: {body}"


def _check(parser: HarborParser, text: str, component: str | None = None) -> None:
    line = RawLine(source="p", path="p", text=text, fingerprint="fp", offset=7, component=component)
    out = parser.parse(line)
    assert isinstance(out, (Event, Dropped))
    if isinstance(out, Event):
        assert out.timestamp.tzinfo is not None and out.timestamp.utcoffset().total_seconds() == 0
        assert out.repeat >= 1
    sniff(text)


@SETTINGS
@given(st.text(max_size=2000))
def test_parse_never_raises_on_any_text(text: str) -> None:
    _check(HarborParser(), text)


@SETTINGS
@given(
    syslog_lines(),
    st.sampled_from([None, ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")]),
    st.sampled_from([None, 1, 2024, 9999]),
    st.sampled_from(["proxy", "registry"]),
)
def test_parse_never_raises_on_syslog_like_lines(
    text: str, tz: ZoneInfo | None, year: int | None, mode: str
) -> None:
    _check(HarborParser(tz, year, count_from=mode), text)  # type: ignore[arg-type]


@SETTINGS
@given(
    st.lists(fragments | syslog_lines(), max_size=20),
    st.sampled_from([None, "core", "registry", "proxy", "jobservice", "audit", "nope"]),
)
def test_one_parser_never_raises_over_a_stream(lines: list[str], component: str | None) -> None:
    p = HarborParser(ZoneInfo("Asia/Tokyo"))
    for text in lines:
        _check(p, text, component)


@SETTINGS
@given(
    st.binary(max_size=3000),
    st.sampled_from(["a.json", "a.jsonl", "a.csv", "a.tsv", "a", "a.json.gz"]),
)
def test_parse_file_never_raises_on_any_bytes(
    tmp_path_factory: object, data: bytes, name: str
) -> None:
    path = Path(tmp_path_factory.mktemp("f")) / name  # type: ignore[attr-defined]
    path.write_bytes(data)
    for r in harbor_audit.parse_file(str(path), "fp"):
        assert isinstance(r, (Event, Dropped))
    harbor_audit.sniff_file(data[:1024], name)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
records = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(-5, 10**20) | st.text(max_size=5) | st.none(),
        "operation": st.sampled_from(["delete", "pull", "create", "push", "login", ""])
        | json_values,
        "op_time": st.sampled_from(["2024-03-05T10:00:00Z", "2024-03-05 10:00:00+00", "x", ""])
        | json_values,
        "resource": st.text(max_size=60) | json_values,
        "resource_type": st.sampled_from(["artifact", "tag", "repository", "project", ""])
        | json_values,
        "username": st.text(max_size=20) | json_values,
        "operation_result": json_values,
        "log_id": json_values,
        "repo_name": json_values,
    },
)


@SETTINGS
@given(st.lists(records | json_values, max_size=10), st.sampled_from(["array", "lines", "csv"]))
def test_parse_file_never_raises_on_structured_junk(
    tmp_path_factory: object, recs: list[object], form: str
) -> None:
    path = Path(tmp_path_factory.mktemp("s")) / "x"  # type: ignore[attr-defined]
    if form == "array":
        path.write_text(json.dumps(recs))
    elif form == "lines":
        path.write_text("\n".join(json.dumps(r) for r in recs))
    else:
        cols = ["id", "operation", "op_time", "resource", "resource_type", "username"]
        rows = [",".join(cols)] + [
            ",".join(str(r.get(c, "")) if isinstance(r, dict) else str(r) for c in cols)
            for r in recs
        ]
        path.write_text("\n".join(rows))
    for r in harbor_audit.parse_file(str(path), "fp"):
        assert isinstance(r, (Event, Dropped))
