"""The grok patterns shipped in parsing/patterns/distribution.grok and the fast parser agree
on every access line and logrus text line of the real sample."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone

import pytest

import regwatch_testlib as lib
from regwatch.events import Event, RawLine
from regwatch.parsing.distribution import DistributionParser
from regwatch.parsing.grok import compile_grok

LINES = (lib.SAMPLES / "registry-text.log").read_text(encoding="utf-8").splitlines()
ACCESS = compile_grok("%{REGISTRY_ACCESS}")
LOGRUS = compile_grok("%{REGISTRY_LOGRUS}")


def _event(text: str) -> Event | None:
    out = DistributionParser().parse(RawLine("s", "p", text, "fp", 0, len(text)))
    return out if isinstance(out, Event) else None


def _logfmt(fields: str) -> dict[str, str]:
    """An independent reading of the key=value tail (the sample build escapes quotes)."""
    out = {}
    for tok in shlex.split(fields, posix=True):
        k, _, v = tok.partition("=")
        out[k] = v
    return out


def _iso(ts: str) -> datetime:
    """RFC 3339 with up to 9 fractional digits, truncated to microseconds, by hand."""
    main, _, frac = ts.rstrip("Z").partition(".")
    return datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(
        microsecond=int((frac or "0")[:6].ljust(6, "0")), tzinfo=timezone.utc
    )


def test_every_line_matches_one_pattern() -> None:
    unmatched = [l[:100] for l in LINES if ACCESS.match(l) is None and LOGRUS.match(l) is None]
    assert unmatched == []
    assert sum(ACCESS.match(l) is not None for l in LINES) == 112


def test_access_lines() -> None:
    n = 0
    for text in LINES:
        g = ACCESS.match(text)
        if g is None:
            continue
        e = _event(text)
        assert e is not None, text
        assert e.client_ip == g["client_ip"]
        assert e.method == g["method"]
        assert e.path == g["uri"].split("?", 1)[0]
        assert e.status == int(g["status"])
        if e.tally == "blob_upload":
            assert e.bytes == lib.decode_state_offset(g["uri"])  # the upload's size, not the 0 body
        else:
            assert e.bytes == (None if g.get("bytes") in (None, "-") else int(g["bytes"]))
        assert e.user_agent == g["user_agent"]
        assert e.timestamp == datetime.strptime(g["timestamp"], "%d/%b/%Y:%H:%M:%S %z")
        assert e.level is None
        n += 1
    assert n == 112


def test_logrus_lines() -> None:
    n = 0
    for text in LINES:
        g = LOGRUS.match(text)
        if g is None:
            continue
        e = _event(text)
        msg = g["msg"].replace('\\"', '"').replace("\\\\", "\\")
        kv = _logfmt(g.get("fields") or "")
        if e is None:  # startup/noise lines carry no request
            assert "http.request.method" not in kv or not msg.startswith(("response completed", "authorized request", "error auth")), text
            continue
        assert e.level == g["level"]
        assert e.message == msg
        assert e.timestamp == _iso(g["timestamp"])
        if "http.request.method" in kv:
            assert e.method == kv["http.request.method"]
            assert e.path == kv["http.request.uri"].split("?", 1)[0]
            assert e.user_agent == kv["http.request.useragent"]
            assert e.client_ip == kv["http.request.remoteaddr"].rsplit(":", 1)[0]
            assert e.request_id == kv["http.request.id"]
            if "http.response.status" in kv:
                assert e.status == int(kv["http.response.status"])
            if "http.response.written" in kv and e.tally != "blob_upload":
                assert e.bytes == int(kv["http.response.written"])
            if "auth.user.name" in kv:
                assert e.user == kv["auth.user.name"]
            if "err.code" in kv:
                assert e.error_code == kv["err.code"]
            n += 1
    assert n == 316 - 112 - 6  # every request app line (all but the 6 startup lines)


@pytest.mark.parametrize(
    "text",
    [
        lib.logrus_line("2026-11-30T01:40:38.2Z", "error", 'error authenticating user "alice": authentication failure', lib.request_fields("r1", "GET", "/v2/a/manifests/1"), escape=False),
        lib.logrus_line("2026-11-30T01:40:38Z", "warning", "x", {"k": ""}),
    ],
)
def test_logrus_pattern_on_unescaped_and_empty_value_lines(text: str) -> None:
    g = LOGRUS.match(text)
    assert g is not None
    e = _event(text)
    if e is not None:
        assert e.message == g["msg"] and e.level == g["level"]
