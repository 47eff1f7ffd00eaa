"""The fast path and the per-line parser give identical events, whichever path a line takes.

The per-line parser (regwatch/parsing/distribution.py, through the ``auto`` parser the
ingest uses) is the reference. Two levels:

- line by line: every line the native block parser (native/src/parse.rs) takes must give
  the values the per-line parser gives it (kind, time, every Event field the row carries;
  and a line it does not flag as possibly secret-bearing must be one redaction leaves
  alone), and it must leave alone every line the per-line parser would drop. Over the real
  captures, both generators' output and hypothesis-generated lines from bench/realgen.py
  (as written, and edited at random);
- whole ingests: ``regwatch ingest`` with the native fast path and with
  ``REGWATCH_FASTPATH=0`` (every line to the per-line parser) store the same events, all
  fields including ids and raw text, and report the same counts: over every log in
  sample_logs/ and over generated logs in both formatters.

It also checks bench/realgen.py's line shapes against the real captures (in
``--auth basic`` mode, the captures' htpasswd setup): every request-line shape (message,
key order, which values are quoted) the generator writes occurs in the captures, and every
request-line shape of the captures that the scenario the generator models produces is
written by the generator.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import regwatch_testlib as lib
from regwatch import native
from regwatch.config import Config
from regwatch.correlate import message_class
from regwatch.events import Dropped, DropReason, Event, RawLine
from regwatch.formats import make_parser
from regwatch.redact import redact
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "sample_logs" / "distribution"
SAMPLES = sorted(DIST.glob("*.log"))

lib.require_native()


def _realgen() -> Any:
    spec = importlib.util.spec_from_file_location("regwatch_bench_realgen", ROOT / "bench" / "realgen.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


realgen = _realgen()


def gen_lines(n: int, seed: int, fmt: str = "text", auth: str = "token") -> list[str]:
    return list(realgen.generate(n, seed, fmt, auth))


# ---------------------------------------------------------------------------------------
# line by line

_CONFIG = Config()


def _per_line(line: str) -> Event | Dropped:
    parser = make_parser(None, _CONFIG)
    return parser.parse(RawLine("t.log", "t.log", line, "fp", 0, len(line.encode()) + 1))


_FIELDS = {  # native row column -> Event attribute
    "level": "level", "message": "message", "action": "action", "outcome": "outcome", "tally": "tally",
    "auth": "auth", "repository": "repository", "reference": "reference", "digest": "digest",
    "method": "method", "path": "path", "status": "status", "bytes_w": "bytes", "duration_ms": "duration_ms",
    "user_v": "user", "client_ip": "client_ip", "user_agent": "user_agent", "request_id": "request_id",
    "error_code": "error_code",
}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def check_row(r: dict[str, Any], line: str) -> None:
    """One native row (timestamps as integer microseconds) against the per-line parser."""
    ref = _per_line(line)
    if r["kind"] == "noise":
        assert isinstance(ref, Dropped) and ref.reason is DropReason.NOISE, (line, ref)
        return
    assert isinstance(ref, Event), ("taken by the fast path, dropped by the per-line parser", line, ref)
    assert r["kind"] == ("access" if ref.level is None else "app"), line
    assert r["mclass"] == (-1 if ref.level is None else message_class(ref.message)), line
    assert r["timestamp"] == _micros(ref), (line, r["timestamp"], ref.timestamp)
    for col, attr in _FIELDS.items():
        v, want = r[col], getattr(ref, attr)
        assert _same(v, want), (col, v, want, line)
    if not r["secret_hint"]:
        assert redact(line) == line, line


def rows_of(fast: pa.Table) -> list[dict[str, Any]]:
    i = fast.schema.get_field_index("timestamp")
    return fast.set_column(i, "timestamp", fast.column(i).cast(pa.int64())).to_pylist()


def check_lines(lines: list[str]) -> int:
    """Compare native.fast_parse with the per-line parser on one block; returns the number
    of lines the native parser took."""
    fast, slow = native.fast_parse(pa.array(lines, pa.string()), 0)
    rows = rows_of(fast)
    taken = {r["seq"] for r in rows}
    assert taken.isdisjoint(slow.to_pylist()) and taken | set(slow.to_pylist()) == set(range(len(lines)))
    for r in rows:
        check_row(r, lines[r["seq"]])
    return len(rows)


def lib_epoch() -> Any:
    from datetime import datetime, timezone

    return datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros(ev: Event) -> int:
    d = ev.timestamp - lib_epoch()
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_real_captures_line_by_line(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    taken = check_lines(lines)
    if path.name.startswith("registry-") and "tty" not in path.name:
        assert taken == len(lines)  # every line of the text and json captures


ALL_LOGS = sorted(p for p in (ROOT / "sample_logs").rglob("*") if p.is_file() and p.suffix in (".log", ".txt", ".gz"))


def test_every_sample_line_line_by_line() -> None:
    # every line of every log under sample_logs/ (the real captures, the corpus of logs
    # from issue threads, Harbor samples), as the ingest reads it
    from regwatch.sources.blocks import read_blocks
    from regwatch.sources.files import file_info

    taken = total = 0
    for path in ALL_LOGS:
        for b in read_blocks(file_info(str(path)), 0):
            texts = [t for i, t in enumerate(b.texts) if b.problems is None or b.problems[i] is None]
            if texts:
                taken += check_lines(texts)
                total += len(texts)
    assert total > 1400 and taken > 650, (total, taken)


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("auth", ["token", "basic"])
def test_generated_line_by_line(fmt: str, auth: str) -> None:
    lines = gen_lines(6000, 3, fmt, auth)
    assert check_lines(lines) == len(lines)


def test_synth_line_by_line() -> None:
    lines = lib.synth_lines(6000, 4)
    assert check_lines(lines) == len(lines)


# values the registry writes that the fast path must take, each compared with the
# per-line parser (durations in every unit, composite ones, µs quoted, keys in any order
# or missing, percent-encoded queries, upload sizes from _state, escapes, IPv6 and
# forwarded addresses)
_T = 'time="2026-03-02T08:00:00.5Z" level=info msg="response completed" '
_Q = ('http.request.id=r1 http.request.method={m} http.request.remoteaddr="{ra}" http.request.uri="{uri}" '
      'http.request.useragent="{ua}"')
_STATE = realgen.Gen(1, "text", "token").state("a/b", "u1", 3185, "2026-03-02T08:00:00Z").replace("=", "%3D")
EDGE = [
    _T + _Q.format(m="GET", ra="10.0.0.1:5", uri="/v2/a/manifests/v1", ua="x") + f" http.response.duration={d} "
    "http.response.status=200 http.response.written=12"
    for d in ("812ns", '"812.5µs"', '"3μs"', "4.075367ms", "1.5s", "1m51.9s", "2h0m0.5s", "0s", "7us", '""', "")
] + [
    # keys in another order, or missing
    'time="2026-03-02T08:00:00Z" level=error msg="response completed with error" auth.user.name=bob '
    'err.code="manifest unknown" http.response.status=404 ' + _Q.format(m="GET", ra="10.0.0.1:5", uri="/v2/a/manifests/x", ua="u"),
    'time="2026-03-02T08:00:00Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/a/manifests/x '
    "http.response.status=200",
    'time="2026-03-02T08:00:00Z" level=info msg="authorized request" http.request.uri=/v2/a/blobs/sha256:1 http.request.method=HEAD',
    # uploads, mounts, percent-encoded query values
    _T + _Q.format(m="PUT", ra="10.0.0.1:5", uri=f"/v2/a/b/blobs/uploads/u1?_state={_STATE}&digest=sha256%3Aab", ua="x")
    + ' http.response.duration=1ms http.response.status=201 http.response.written=0',
    _T + _Q.format(m="PUT", ra="10.0.0.1:5", uri=f"/v2/a/b/blobs/uploads/u1?_state={_STATE}&digest=sha256%3Aab", ua="x")
    + ' http.response.duration=1ms http.response.status=400 http.response.written=0',
    _T + _Q.format(m="POST", ra="10.0.0.1:5", uri="/v2/a/blobs/uploads/?from=b%2Fc&mount=sha256%3A12", ua="x")
    + ' http.response.duration=1ms http.response.status=201 http.response.written=0',
    _T + _Q.format(m="POST", ra="10.0.0.1:5", uri="/v2/a/blobs/uploads/?mount=&mount=sha256:9&digest=sha256:1", ua="x")
    + ' http.response.duration=1ms http.response.status=201 http.response.written=0',
    _T + _Q.format(m="POST", ra="10.0.0.1:5", uri="/v2/a/blobs/uploads/?digest=sha256:2", ua="x")
    + ' http.response.duration=1ms http.response.status=201 http.response.written=7',
    # addresses and agents
    _T + _Q.format(m="GET", ra="[::1]:5000", uri="/v2/", ua="docker/24.0.7 UpstreamClient(Docker-Client/24.0.7 \\\\(linux\\\\))")
    + " http.response.duration=1ms http.response.status=200 http.response.written=2",
    _T + _Q.format(m="GET", ra="10.1.2.3, 10.0.0.1:5", uri="/v2/", ua="a \\\"q\\\"") + " http.response.duration=1ms "
    "http.response.status=200 http.response.written=2",
    '10.0.0.1 - alice [02/Mar/2026:08:00:00 +0000] "GET /v2/a/manifests/v1 HTTP/1.1" 200 1609 "" '
    '"docker/24.0.7 UpstreamClient(Docker-Client/24.0.7 \\\\(linux\\\\))"',
    f'10.0.0.1 - - [02/Mar/2026:08:00:00 +0000] "PUT /v2/a/b/blobs/uploads/u1?_state={_STATE}&digest=sha256%3Aab HTTP/1.1" 201 0 "" "x"',
    '10.0.0.1 - - [02/mar/2026:08:00:00 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "x"',
    '10.0.0.1 - - [02/Mar/2026:08:00:00 +0000] "GET https://h/v2/ HTTP/1.1" 401 87 "" "x"',
    # JSON formatter
    '{"http.request.method":"GET","http.request.uri":"/v2/a/blobs/uploads/?from=b\\u0026mount=sha256:1","level":"info",'
    '"msg":"response completed","http.response.status":201,"time":"2026-03-02T08:00:00Z","trace.duration":1500000}',
    '{"http.request.method":"GET","http.request.uri":"/v2/a/manifests/x","level":"info","msg":"response completed",'
    '"http.response.status":200,"http.response.duration":"812.5µs","time":"2026-03-02T08:00:00Z","x":{"y":[1,2.5e3,null,true]}}',
    '{"http.request.method":"GET","http.request.uri":"/v2/a/manifests/x","level":"info","msg":"response completed",'
    '"http.response.status":"200","time":"2026-03-02T08:00:00Z"}',
    '{"http.request.method":"GET","http.request.uri":"/v2/a/manifests/x","msg":"response completed","time":"2026-03-02T08:00:00Z"}',
    '{"level":"info","msg":"x","time":"2026-03-02T08:00:00Z","msg":"authorized request"}',
    '{"http.request.method":"GET","http.request.uri":"/v2/","level":"info","msg":"response completed",'
    '"http.response.status":4294967496,"http.response.written":-5,"time":"2026-03-02T08:00:00Z"}',
    '{"http.request.method":"GET","http.request.uri":"/v2/","level":"info","msg":"response completed",'
    '"http.response.status":-401,"http.response.written":123456789012345678,"time":"2026-03-02T08:00:00Z"}',
    '{"level":"info","msg":"a \\ud83d\\ude00 \\u00e9","time":"2026-03-02T08:00:00Z"}',
    '{"level":"info","msg":"a","time":"2026-03-02T08:00:00Z"} x',
    ' {"level":"info","msg":"a","time":"2026-03-02T08:00:00Z"}',
    # unescaped inner quotes (upstream 2.7/2.8 and Harbor builds), trailing spaces
    'time="2026-03-02T08:00:00Z" level=warning msg="error authorizing context: basic authentication challenge for realm '
    '"harbor-registry-basic-realm": invalid authorization credential" go.version=go1.20.4 http.request.id=r1 '
    "http.request.method=GET http.request.remoteaddr=10.5.30.91 http.request.uri=/v2/ http.request.useragent=docker/20.10",
    'time="2026-03-02T08:00:00Z" level=error msg="error authenticating user "admin": authentication failure" '
    "http.request.method=GET http.request.uri=/v2/a/manifests/x vars.name=a",
    'time="2026-03-02T08:00:00Z" level=info msg="a "b" c=d" e=f',
    'time="2026-03-02T08:00:00Z" level=info msg="a \\" b" e=f',
    'time="2026-03-02T08:00:00Z" level=info msg="x"  ',
    'time="2026-03-02T08:00:00Z" level=info msg="authorized request" http.request.method=GET http.request.uri=/v2/  ',
    'time="2026-03-02T08:00:00Z" level=info msg="a" ké=1 m="x" http.request.method=GET',
    # shapes left to the per-line parser: they must be (or give the same values)
    'time="2026-03-02T08:00:00Z" level=info',
    'time="2026-03-02T08:00:00Z" level=info msg=bare http.request.method=GET',
    'time="2026-03-02T08:00:00Z" level=info msg="a" msg="b"',
    'time="2026-03-02T08:00:00Z" level=info msg="authorized request" http.request.method=get http.request.uri=/v2/',
    'time="2026-03-02T08:00:00Z" level=info msg="authorized request" http.request.method=GET http.request.uri=/v2/a%2Fb/tags/list',
    'time="2026-03-02T08:00:00Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/ '
    "http.response.status=99999999999",
    'time="2026-03-02T08:00:00Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/ '
    "http.response.duration=-1ms",
    'time="0001-01-01T00:00:00+01:00" level=info msg="x"',
    "time=\"2026-03-02T08:00:00Z\" level=info msg=\"x\" k=a\u00a0b",
]


def test_edge_lines() -> None:
    taken = check_lines(EDGE)
    assert taken >= 26  # all but the shapes the fast path leaves to the per-line parser


# hypothesis: realgen lines (any seed, formatter and auth mode), as written and edited
_FRAGS = ['"', "\\", '\\"', "\\\\", " ", "=", ":", "%", "%3A", "%2", "+", "?", "&", "\\u0026", "/", "µs", "ms", "1m", "ns",
          "é", "\u00a0", "\t", "{", "}", ",", "[", "]", "null", "1.5", "-", " auth.user.name=", " http.request.uri=",
          ' "http.request.uri":', " http.response.status=", ' "http.response.status":', " msg=", '"msg":', " vars.name=",
          "_state=", "&digest=", "mount=", "/blobs/uploads/", "/manifests/", "token=", "eyJ", "Nov", "nov", "[", "::1"]


@st.composite
def generated(draw: Any) -> list[str]:
    seed = draw(st.integers(0, 2**32 - 1))
    fmt = draw(st.sampled_from(["text", "json"]))
    auth = draw(st.sampled_from(["token", "basic"]))
    lines = gen_lines(draw(st.integers(1, 60)), seed, fmt, auth)
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    out = []
    for line in lines:
        if draw(st.booleans()):
            for _ in range(rng.randint(1, 3)):
                pos = rng.randint(0, len(line))
                r = rng.random()
                if r < 0.5:
                    line = line[:pos] + rng.choice(_FRAGS) + line[pos:]
                elif r < 0.8:
                    line = line[:pos] + line[pos + rng.randint(1, 6):]
                else:
                    f = rng.choice(_FRAGS)
                    line = line[:pos] + f + line[pos + len(f):]
        out.append(line)
    return out


PROP = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROP
@given(generated())
def test_generated_lines_match_per_line_parser(lines: list[str]) -> None:
    check_lines(lines)


# ---------------------------------------------------------------------------------------
# whole ingests: native fast path against every line through the per-line parser


def _ingest(paths: list[Path], db: Path, fastpath: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    env = dict(os.environ, REGWATCH_FASTPATH="1" if fastpath else "0", REGWATCH_NATIVE="1")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    p = subprocess.run([sys.executable, "-m", "regwatch", "ingest", "--db", str(db), "--json", "--quiet",
                        *map(str, paths)], capture_output=True, text=True, env=env, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr
    stats = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
    store = EmbeddedStore(str(db))
    rows = sorted(({f: getattr(e, f) for f in e.__slots__} for e in store.search(Query())), key=lambda r: r["id"])
    store.close()
    return stats, rows


def _same_ingest(tmp_path: Path, paths: list[Path]) -> int:
    s_fast, r_fast = _ingest(paths, tmp_path / "fast", True)
    s_slow, r_slow = _ingest(paths, tmp_path / "slow", False)
    assert s_fast == s_slow
    assert len(r_fast) == len(r_slow)
    for a, b in zip(r_slow, r_fast):
        assert a == b
    return len(r_fast)


def test_every_sample_log_same_events(tmp_path: Path) -> None:
    n = _same_ingest(tmp_path, [ROOT / "sample_logs"])
    assert n > 300


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_generated_logs_same_events(tmp_path: Path, fmt: str) -> None:
    log = tmp_path / f"gen-{fmt}.log"
    log.write_text("\n".join(gen_lines(30_000, 5, fmt)) + "\n", encoding="utf-8")
    assert _same_ingest(tmp_path, [log]) > 8000


def test_generated_basic_auth_and_synth_same_events(tmp_path: Path) -> None:
    a = tmp_path / "basic.log"
    a.write_text("\n".join(gen_lines(10_000, 6, "text", "basic")) + "\n", encoding="utf-8")
    b = tmp_path / "synth.log"
    b.write_text("\n".join(lib.synth_lines(10_000, 7)) + "\n", encoding="utf-8")
    assert _same_ingest(tmp_path, [a, b]) > 5000


# ---------------------------------------------------------------------------------------
# the generator's shapes against the real captures

_KV = re.compile(r' ([a-z_][\w.]*)=(?:"((?:[^"\\]|\\.)*)"|([^ ]*))')
_REQUEST_MSG = re.compile(r"^(authorized request|response completed( with error)?|error authenticating user|error authorizing context)")


def _msg_class(msg: str) -> str:
    m = _REQUEST_MSG.match(msg)
    return m.group(0) if m else ""


def shape(line: str) -> tuple[Any, ...] | None:
    """A request line's shape: its message kind, level, keys in order and how each value
    is written (q: quoted, b: bare, e: empty; JSON: the value's type). None for other lines."""
    if line.startswith('time="'):
        m = re.match(r'time="[^"]*" level=([a-z]+) msg="((?:[^"\\]|\\.)*)"(.*)$', line)
        if m is None or not _msg_class(m.group(2)):
            return None
        keys = tuple((k, "q" if line[mm.start(2) - 1:mm.start(2)] == '"' else ("e" if b == "" else "b"))
                     for mm in _KV.finditer(m.group(3)) for k, q, b in [mm.groups()])
        return ("text", m.group(1), _msg_class(m.group(2)), keys)
    if line.startswith("{"):
        d = json.loads(line)
        if not _msg_class(d.get("msg", "")):
            return None
        return ("json", d["level"], _msg_class(d["msg"]), tuple((k, type(v).__name__) for k, v in d.items()))
    m = re.match(r'^\S+ - (\S+) \[[^\]]+\] "[A-Z]+ \S+ HTTP/1\.1" \d{3} \d+ "" "(?:[^"\\]|\\.)*"$', line)
    return ("access", "user" if m.group(1) != "-" else "-") if m else None


# keys whose quoting depends on the value, not the formatter (the captures use 127.0.0.1
# and skopeo; the generator other hosts and agents): compared without their quoting
_VALUE_DEPENDENT = {"http.request.host", "http.request.useragent", "http.request.uri", "vars.reference",
                    "vars.name", "http.response.contenttype", "http.response.duration", "vars.uuid", "vars.digest",
                    "err.detail", "err.message", "err.code", "auth.user.name", "http.request.remoteaddr",
                    "http.request.contenttype", "http.request.id"}


def _normal(s: tuple[Any, ...]) -> tuple[Any, ...]:
    if s[0] != "text":
        return s
    return s[:3] + (tuple((k, "*" if k in _VALUE_DEPENDENT else q) for k, q in s[3]),)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_generator_shapes_are_the_real_ones(fmt: str) -> None:
    real_lines = (DIST / f"registry-{fmt}.log").read_text(encoding="utf-8").splitlines()
    real = {_normal(s) for s in map(shape, real_lines) if s is not None}
    gen = {_normal(s) for s in map(shape, gen_lines(40_000, 9, fmt, "basic")) if s is not None}
    assert len(real) >= 15
    # every request-line shape the generator writes is one the real registry writes
    assert gen <= real, sorted(gen - real, key=str)[:5]
    # and every one the real registry wrote under skopeo and the capture script's clients
    # (pulls, pushes, mounts, deletes, failed logins, challenges) the generator writes too
    assert real <= gen, sorted(real - gen, key=str)[:5]


def test_token_mode_adds_only_the_user() -> None:
    # --auth token is --auth basic plus auth.user.name on every authorized line and the
    # user in the access line; nothing else about a shape changes
    basic = {_normal(s) for s in map(shape, gen_lines(20_000, 9, "text", "basic")) if s is not None}
    token = {_normal(s) for s in map(shape, gen_lines(20_000, 9, "text", "token")) if s is not None}

    def without_user(s: tuple[Any, ...]) -> tuple[Any, ...]:
        if s[0] == "access":
            return ("access", "-")
        return s[:3] + (tuple(kq for kq in s[3] if kq[0] != "auth.user.name"),)

    assert {without_user(s) for s in token if s[0] == "access" or s[2] != "error authorizing context"} <= {
        without_user(s) for s in basic}
    assert ("access", "user") in token and ("access", "user") not in basic


def test_text_values_quoted_as_logrus_does() -> None:
    # logrus quotes a value only when it has a character outside [A-Za-z0-9-._/@^+]; the
    # generator's rule, checked against every value of the text capture
    for line in (DIST / "registry-text.log").read_text(encoding="utf-8").splitlines():
        if not line.startswith('time="'):
            continue
        for mm in _KV.finditer(line.split(' msg="', 1)[1].split('" ', 1)[-1] if ' msg="' in line else ""):
            k, q, b = mm.groups()
            if q is not None:
                import codecs

                raw = codecs.decode(q.replace('\\"', '"'), "unicode_escape") if "\\" in q else q
                assert realgen.text_value(raw) == f'"{q}"', (k, q)
            elif b:
                assert realgen.text_value(b) == b, (k, b)


# ---------------------------------------------------------------------------------------
# a fresh capture from the real registry (htpasswd auth, so auth.user.name appears): the
# generator's shapes are its shapes, the fast path takes its text and JSON lines, and both
# paths store the same events


@pytest.fixture(scope="module")
def fresh_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    missing = [t for t in ("docker-registry", "skopeo", "htpasswd") if shutil.which(t) is None]
    if missing:
        msg = f"a fresh capture needs {', '.join(missing)} (apt-get install docker-registry skopeo apache2-utils)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    out = tmp_path_factory.mktemp("fresh-capture")
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_distribution_samples.py"), "--out", str(out),
                        "--no-tty"], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fresh_capture_shapes_and_paths(fresh_capture: Path, fmt: str) -> None:
    lines = (fresh_capture / f"registry-{fmt}.log").read_text(encoding="utf-8").splitlines()
    assert any("auth.user.name" in ln for ln in lines)
    real = {_normal(s) for s in map(shape, lines) if s is not None}
    gen = {_normal(s) for s in map(shape, gen_lines(40_000, 9, fmt, "basic")) if s is not None}
    assert gen == real, (sorted(gen - real, key=str)[:3], sorted(real - gen, key=str)[:3])
    assert check_lines(lines) == len(lines)


@pytest.mark.e2e
def test_fresh_capture_same_events(fresh_capture: Path, tmp_path: Path) -> None:
    assert _same_ingest(tmp_path, [fresh_capture]) > 200
