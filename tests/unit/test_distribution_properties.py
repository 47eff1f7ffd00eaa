"""Property tests: the parser and the pipeline never raise on any input, and every line read
is accounted for exactly once in the ingest counters."""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import regwatch_testlib as lib
from regwatch.events import Dropped, Event, RawLine
from regwatch.parsing.distribution import DistributionParser
from regwatch.pipeline import ingest
from regwatch.quarantine import Quarantine
from regwatch.stores.embedded import EmbeddedStore

KNOWN_KEYS = [
    "time",
    "level",
    "msg",
    "http.request.method",
    "http.request.uri",
    "http.request.id",
    "http.request.remoteaddr",
    "http.request.useragent",
    "http.response.status",
    "http.response.written",
    "http.response.duration",
    "trace.duration",
    "auth.user.name",
    "err.code",
    "vars.name",
    "vars.reference",
    "vars.digest",
]
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "GET",
            "PUT",
            "DELETE",
            "/v2/",
            "/v2/a/manifests/1",
            "/v2/a/blobs/uploads/u?_state=%%%&digest=x",
            "9999-12-31T23:59:59.999999999-23:59",
            "0001-01-01T00:00:00+23:59",
            "2026-11-30T01:40:37Z",
            'error authenticating user "',
            "error authorizing context",
            "1m1m1m1.1.1s",
            "response completed",
            "authorized request",
        ]
    ),
)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=6)

near_miss = st.one_of(
    st.text(),
    st.builds(lambda s: 'time="' + s, st.text()),
    st.builds(lambda a, b: f'time="{a}" level={b} msg="{b}', st.text(max_size=40), st.text(max_size=40)),
    st.builds(lambda s: "{" + s, st.text()),
    st.builds(
        lambda d: json.dumps(d),
        st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=10),
    ),
    st.builds(
        lambda ip, ts, req, st_, b, rest: f'{ip} - - [{ts}] "{req}" {st_} {b} {rest}',
        st.text(max_size=20),
        st.one_of(st.text(max_size=30), st.just("30/Nov/2026:01:40:37 +0000"), st.just("99/Foo/0000:99:99:99 +9999")),
        st.one_of(st.text(max_size=40), st.just("GET /v2/a/manifests/1 HTTP/1.1")),
        st.integers(min_value=0, max_value=999),
        st.one_of(st.just("-"), st.integers(min_value=0, max_value=2**80).map(str)),
        st.text(max_size=40),
    ),
    st.builds(lambda lvl, s: f"{lvl}[0000] {s}", st.sampled_from(["INFO", "WARN", "ERRO", "XXXX", "\x1b[31mERRO\x1b[0m"]), st.text()),
    st.builds(lambda a, s: f"{a} blobs marked, {s}", st.integers(), st.text(max_size=30)),
    st.builds(lambda s: "Deleting blob: " + s, st.text(max_size=40)),
)


@settings(max_examples=250, deadline=None)
@given(near_miss, st.sampled_from([None, "2026-11-30T01:40:37Z"]))
def test_parse_never_raises(text: str, fallback: str | None) -> None:
    from datetime import datetime

    fb = datetime.fromisoformat(fallback.replace("Z", "+00:00")) if fallback else None
    out = DistributionParser(fb).parse(RawLine("s", "p", text, "fp", 0, len(text)))
    assert isinstance(out, (Event, Dropped))
    if isinstance(out, Event):
        assert out.timestamp.tzinfo is not None
        assert out.timestamp.utcoffset() == timezone.utc.utcoffset(None)
        assert out.status is None or isinstance(out.status, int)
        assert out.bytes is None or isinstance(out.bytes, int)


_GOOD = (lib.SAMPLES / "registry-text.log").read_bytes().splitlines(keepends=True)
good_chunks = st.lists(st.sampled_from(_GOOD), max_size=8).map(b"".join)
file_bytes = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.one_of(good_chunks, st.binary(max_size=200), st.sampled_from([b"\n", b"\r\n", b"\x00", b"\xff\xfe", b'time="'])), max_size=12).map(b"".join),
)


def _check_ingest(data: bytes, gz: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / ("in.log.gz" if gz else "in.log")
        p.write_bytes(gzip.compress(data) if gz else data)
        store = EmbeddedStore(Path(d) / "db")
        stats = ingest([str(p)], store, quarantine=Quarantine(Path(d) / "q")).to_dict()
        assert lib.accounting_gap(stats) == 0, stats
        assert stats["events"] == store.count()
        # a second pass from the start finds only duplicates
        again = ingest([str(p)], store).to_dict()
        assert again["events"] == 0, again
        assert again["duplicates"] == stats["events"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_bytes)
def test_pipeline_never_raises_and_accounts_for_every_line(data: bytes) -> None:
    _check_ingest(data, gz=False)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_bytes)
def test_pipeline_gzip_input(data: bytes) -> None:
    _check_ingest(data, gz=True)
