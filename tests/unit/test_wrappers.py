"""Runtime envelopes: the same lines behind CRI, json-file, docker --timestamps and a
journald prefix count exactly as the bare lines do, with no hint of the wrapper."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from regwatch.config import Config
from regwatch.events import Dropped, Event, RawLine
from regwatch.formats import make_parser
from regwatch.parsing.wrappers import Joiner, unwrap
from regwatch.pipeline import ingest
from regwatch.stores.embedded import EmbeddedStore
from regwatch.summary import summarize

ROOT = Path(__file__).resolve().parents[2] / "sample_logs"
DIST = sorted((ROOT / "distribution").glob("registry-*.log"))
T0 = datetime(2026, 11, 30, 1, 0, 0, tzinfo=UTC)


def _stamp(i: int) -> str:
    return (T0 + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def cri(lines: list[str], split: int = 0) -> str:
    """kubelet's format; with ``split``, lines longer than it are cut into P pieces."""
    out = []
    for i, line in enumerate(lines):
        stream = "stderr" if i % 3 else "stdout"
        pieces = [line[k : k + split] for k in range(0, len(line), split)] if split and line else [line]
        for p in pieces[:-1]:
            out.append(f"{_stamp(i)} {stream} P {p}")
        out.append(f"{_stamp(i)} {stream} F {pieces[-1]}")
    return "\n".join(out) + "\n"


def docker_json(lines: list[str], split: int = 0) -> str:
    out = []
    for i, line in enumerate(lines):
        pieces = [line[k : k + split] for k in range(0, len(line), split)] if split and line else [line]
        for j, p in enumerate(pieces):
            last = j == len(pieces) - 1
            out.append(json.dumps({"log": p + ("\n" if last else ""), "stream": "stderr", "time": _stamp(i)}))
    return "\n".join(out) + "\n"


def docker_ts(lines: list[str]) -> str:
    return "".join(f"{_stamp(i)} {line}\n" for i, line in enumerate(lines))


def journald(lines: list[str]) -> str:
    return "".join(
        f"Nov 30 01:00:{i % 60:02d} node-7 registry-5d8f9c7b6-x2k4p[812]: {line}\n" for i, line in enumerate(lines)
    )


def _summary(tmp: Path, name: str, text: str) -> dict:
    f = tmp / name
    f.write_text(text)
    store = EmbeddedStore(str(tmp / f"db-{name}"))
    ingest([str(f)], store)
    return summarize(store)


@pytest.mark.parametrize("log", DIST, ids=lambda p: p.name)
@pytest.mark.parametrize(
    "wrap",
    [
        ("cri", lambda ls: cri(ls)),
        ("cri-partial", lambda ls: cri(ls, split=37)),
        ("json-file", lambda ls: docker_json(ls)),
        ("json-file-partial", lambda ls: docker_json(ls, split=50)),
        ("docker-ts", docker_ts),
    ],
    ids=lambda w: w[0],
)
def test_wrapped_registry_log_counts_as_the_bare_one(tmp_path: Path, log: Path, wrap) -> None:
    lines = log.read_text().splitlines()
    bare = _summary(tmp_path, "bare.log", log.read_text())
    assert bare["pulls"] + bare["pushes"] > 0
    assert _summary(tmp_path, f"{wrap[0]}.log", wrap[1](lines)) == bare


def test_a_journald_export_of_a_registry_counts_as_the_bare_one(tmp_path: Path) -> None:
    log = ROOT / "distribution" / "registry-text.log"
    lines = log.read_text().splitlines()
    bare = _summary(tmp_path, "bare.log", log.read_text())
    got = _summary(tmp_path, "journal.log", journald(lines))
    # a registry pod's own stream counts itself (behind Harbor's own tags the proxy counts)
    assert got == bare


def test_unwrap_forms() -> None:
    u = unwrap('2024-05-01T10:11:12.123456789Z stdout F time="x" level=info msg="hi"')
    assert u is not None and u.wrapper == "cri" and u.stream == "stdout" and not u.partial
    assert u.text == 'time="x" level=info msg="hi"' and u.time == datetime(2024, 5, 1, 10, 11, 12, 123456, tzinfo=UTC)
    p = unwrap("2024-05-01T10:11:12.1Z stderr P abc")
    assert p is not None and p.partial and p.text == "abc"
    j = unwrap('{"log":"10.0.0.1 - - [x]\\n","stream":"stdout","time":"2024-05-01T10:11:12.5Z"}')
    assert j is not None and j.wrapper == "docker_json" and j.text == "10.0.0.1 - - [x]" and not j.partial
    d = unwrap("2024-05-01T10:11:12.000000001Z 2024-05-01T10:11:12Z [INFO] [/core/main.go:1]: hi")
    assert d is not None and d.wrapper == "docker_ts" and d.text.startswith("2024-05-01T10:11:12Z [INFO]")
    # the Harbor logger's own time is not an envelope, nor is a registry JSON line
    assert unwrap("2024-05-01T10:11:12Z [INFO] [/core/main.go:1]: hi") is None
    assert unwrap("2024-05-01T10:11:12.5Z [INFO] [/core/main.go:1]: hi") is None
    assert unwrap('{"level":"info","msg":"hi","time":"2024-05-01T10:11:12Z"}') is None
    assert unwrap("") is None and unwrap("{not json") is None


def test_joiner_joins_per_stream_and_bounds_memory() -> None:
    j = Joiner()
    a = unwrap("2024-05-01T10:11:12.1Z stdout P ab")
    b = unwrap("2024-05-01T10:11:12.1Z stderr F other")
    c = unwrap("2024-05-01T10:11:12.2Z stdout F cd")
    assert a and b and c
    assert j.feed(a, 0) is None
    out_b = j.feed(b, 40)
    assert out_b is not None and out_b[0].text == "other" and out_b[1] == 40
    out_c = j.feed(c, 80)
    assert out_c is not None and out_c[0].text == "abcd" and out_c[1] == 0 and not j.pending()
    for i in range(200):
        r = j.feed(a, i)
        assert r is None or len(r[0].text) == 2 * 64


def test_bare_harbor_components_on_stdout_are_recognized() -> None:
    p = make_parser("auto", Config())
    lines = {
        "2024-05-01T10:11:12Z [INFO] [/pkg/task/dao/execution.go:471]: scanned out 1 executions": "noise",
        '2024-05-01T10:11:12Z [ERROR] [/server/middleware/security/basic_auth.go:72][client IP="10.1.2.3" '
        'requestID="r1" user agent="docker/24"]: failed to authenticate user:bob, error:Failed': "auth",
        '10.1.2.3 - "GET /v2/ HTTP/1.1" 401 76 "-" "docker/24.0.7" 0.002 0.002 .': "base",  # timed by the line before
        "2024/05/01 10:11:12 [error] 8#0: *1 upstream timed out": "noise",
        "2024/05/01 10:11:12 http: TLS handshake error from 10.9.8.7:51234: EOF": "tls_error",
        "2024-05-01 10:11:12.123 UTC [1] LOG:  database system is ready to accept connections": "noise",
        "1:M 01 May 2024 10:11:12.123 * Ready to accept connections": "noise",
        "goroutine 1 [running]:": "noise",
    }
    for text, want in lines.items():
        out = p.parse(RawLine("f", "f", text, "fp", 0))
        got = out.reason.value if isinstance(out, Dropped) else out.action
        assert got == want, text
    tls = p.parse(RawLine("f", "f", "2024/05/01 10:11:12 http: TLS handshake error from [::1]:443: tls: bad certificate", "fp", 9))
    assert isinstance(tls, Event) and tls.client_ip == "::1" and tls.tally == "tls_error"


def compose(lines: list[str], service: str = "registry", timestamps: bool = False) -> str:
    """`docker compose logs` (padded service name, a bar), optionally with --timestamps."""
    return "".join(
        f"{service:<18}| {_stamp(i) + ' ' if timestamps else ''}{line}\n" for i, line in enumerate(lines)
    )


def kubectl_prefix(lines: list[str]) -> str:
    return "".join(f"[pod/registry-5d8f9c7b6-x2k4p/registry] {line}\n" for line in lines)


@pytest.mark.parametrize(
    "wrap",
    [
        ("compose", lambda ls: compose(ls)),
        ("compose-ts", lambda ls: compose(ls, timestamps=True)),
        ("kubectl-prefix", kubectl_prefix),
    ],
    ids=lambda w: w[0],
)
def test_compose_and_kubectl_prefixes_count_as_the_bare_log(tmp_path: Path, wrap) -> None:
    log = ROOT / "distribution" / "registry-text.log"
    bare = _summary(tmp_path, "bare.log", log.read_text())
    assert _summary(tmp_path, f"{wrap[0]}.log", wrap[1](log.read_text().splitlines())) == bare


def test_compose_prefix_forms() -> None:
    u = unwrap("harbor-core  | 2024-05-01T10:11:12Z [INFO] [/core/main.go:1]: hi")
    assert u is not None and u.wrapper == "compose" and u.text.startswith("2024-05-01T10:11:12Z [INFO]")
    c = unwrap("\x1b[36mharbor-jobservice  |\x1b[0m 2024-05-01T10:11:12Z [INFO] hi")
    assert c is not None and c.text == "2024-05-01T10:11:12Z [INFO] hi"
    t = unwrap('nginx  | 2024-05-01T10:11:12.5Z 10.0.0.1 - "GET /v2/ HTTP/1.1" 401 76 "-" "d" 0.1 0.1 .')
    assert t is not None and t.time == datetime(2024, 5, 1, 10, 11, 12, 500000, tzinfo=UTC)
    k = unwrap("[pod/harbor-core-5d8f9c7b6-x2k4p/core] 2024-05-01T10:11:12Z [INFO] hi")
    assert k is not None and k.wrapper == "kubectl" and k.text == "2024-05-01T10:11:12Z [INFO] hi"
    for not_wrapped in ("Mar  5 19:00:02 172.18.0.1 core[1187]: x", "INFO[0000] x | y", "| sha256:a | 1.0 |"):
        assert unwrap(not_wrapped) is None, not_wrapped


def test_rfc3339_syslog_lines_are_not_taken_for_docker_timestamps() -> None:
    from regwatch.config import Config
    from regwatch.events import Event, RawLine
    from regwatch.formats import make_parser

    def parse(text: str):  # noqa: ANN202
        return make_parser(None, Config()).parse(RawLine("t", "t", text, "fp", 0))

    proxy = '1.2.3.4 - "GET /v2/ HTTP/1.1" 401 87 "-" "docker/24.0" 0.002 0.002 .'
    # RSYSLOG_FileFormat: microseconds and the host's offset (docker prints nanoseconds in UTC)
    ev = parse(f"2024-03-05T19:00:02.123456+09:00 172.18.0.1 proxy[1]: {proxy}")
    assert isinstance(ev, Event) and ev.component == "proxy" and ev.status == 401
    assert ev.timestamp == datetime(2024, 3, 5, 10, 0, 2, 123456, tzinfo=UTC)
    # a template without the colon after the tag, with the syslog driver's container id as tag
    core = parse("2021-02-09T04:02:04.428997+01:00 harbor-core 76c20c006df4 2021-02-09T03:02:04Z [INFO] "
                 "[/core/main.go:221]: Version: v2.1.2, Git commit: fcc6751d")
    assert core.reason.value == "noise" and core.kind == "harbor_log", core  # type: ignore[union-attr]
    # docker --timestamps still is one: nine digits and Z
    reg = parse('2019-04-05T07:40:32.353662000Z 172.17.0.1 - - [05/Apr/2019:07:38:32 +0000] '
                '"GET /v2/ HTTP/1.1" 401 87 "" "docker/1.12.6"')
    assert isinstance(reg, Event) and reg.component == "registry"
